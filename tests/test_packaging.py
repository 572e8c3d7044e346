"""What ``pip install ticketbert`` brings and puts where: the core prunes a Hugging Face model
with the recipes' dependencies absent, the wheel holds only ``ticketbert``, and a missing extra
is one line naming the install that fixes it."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE_ONLY = ("ray", "mlflow", "optuna", "scipy", "matplotlib", "datasets", "pandas", "pyarrow")
CORE_PACKAGES = ("ticketbert.models", "ticketbert.pruning", "ticketbert.integrations")
RECIPE_SIDE = ("ticketbert.config", "ticketbert.data", "ticketbert.tasks", "ticketbert.training", "ticketbert.run",
               "ticketbert.tracking", "ticketbert.sweep", "ticketbert.analysis")

BLOCKER = '''
import sys

class Hidden:
    # a finder as before, except that the blocked packages are not found: as if not installed
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

sys.meta_path[:] = [Hidden(finder) for finder in sys.meta_path]
'''


def run_blocked(code: str, blocked=RECIPE_ONLY, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=blocked) + code], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_core_prunes_a_hugging_face_model_without_the_recipes_dependencies(tmp_path):
    code = f'''
import pkgutil, importlib, torch
import ticketbert
for package in {CORE_PACKAGES!r}:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
from transformers import BertConfig, BertForSequenceClassification
torch.manual_seed(0)
model = BertForSequenceClassification(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2,
    num_attention_heads=4, intermediate_size=64, num_labels=2))
ids = torch.randint(1, 64, (8, 6))
batch = dict(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.randint(0, 2, (8,)))
report = ticketbert.prune(model, "heads", 0.2, data=[batch])
assert report.removed, report
ticketbert.prune(model, "magnitude", 0.5)
ticketbert.save_pruned(model, {str(tmp_path / "pruned")!r})
again = ticketbert.load_pruned({str(tmp_path / "pruned")!r})
assert type(again) is BertForSequenceClassification
recipe = sorted(name for name in sys.modules if name.startswith({RECIPE_SIDE!r}))
print("recipe modules:", recipe)
'''
    done = run_blocked(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "recipe modules: []" in done.stdout


@pytest.mark.parametrize("command, extra", [
    (["ticketbert.train", "--help"], None),
    (["ticketbert.train", "train.epochs=1"], "train"),
    (["ticketbert.sweep"], "sweep"),
    (["ticketbert.analysis", "--experiment", "x"], "analysis"),
    (["ticketbert.posthoc", "--model", "nowhere"], "train"),
])
def test_a_missing_extra_is_one_line_naming_the_install(command, extra):
    code = f"import runpy, sys; sys.argv = {command!r}; runpy.run_module({command[0]!r}, run_name='__main__')"
    done = run_blocked(code)
    if extra is None:
        assert done.returncode == 0 and "usage" in done.stdout
        return
    assert done.returncode == 2, done.stderr[-2000:]
    message = (done.stdout + done.stderr).strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert f"pip install 'ticketbert[{extra}]'" in message


def test_the_library_says_which_extra_an_import_needs():
    done = run_blocked("import ticketbert.tracking", blocked=("mlflow",))
    assert done.returncode != 0
    assert "MissingExtra: MLflow tracking (ticketbert.tracking) needs mlflow: pip install 'ticketbert[train]'" \
        in done.stderr


def test_the_wheel_holds_only_ticketbert(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, = tmp_path.glob("ticketbert-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"ticketbert", wheel.name.split("-py3")[0] + ".dist-info"}
    for needed in ("ticketbert/py.typed", "ticketbert/sweep/quickstart.yaml", "ticketbert/data/sample/sts-dev.csv",
                   "ticketbert/pruning/methods/catalog.py"):
        assert needed in names
    assert any(name.endswith("licenses/LICENSE") for name in names)


def test_the_checkouts_short_commands_reach_the_package():
    for module in ("tune.sweep", "analysis"):
        done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and "usage: python -m ticketbert." in done.stdout, done.stderr[-2000:]

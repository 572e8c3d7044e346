"""Each pruning method is declared once (``ticketbert.pruning.methods``): nothing else compares
method names, a method of one's own is one file, and the descriptions read without torch."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import ticketbert
from ticketbert.config import ConfigError, load_config
from ticketbert.pruning.methods import describe, descriptions, method_names

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("ticketbert", "tune", "analysis", "bench")
DESCRIBED_IN = {ROOT / "ticketbert" / "pruning" / "methods" / name for name in ("description.py", "catalog.py")}

TOY_METHOD = '''
"""A method of one's own, in one file: every weight scored at random (a baseline)."""
import torch

from ticketbert.pruning.masks import attach_masks, magnitude_scores, plan_masks
from ticketbert.pruning.methods import MethodDescription, register
from ticketbert.pruning.methods.base import MaskPlan, Method, WeightScores


class RandomWeights(Method):
    name = "random"

    def limit(self, model):
        return 1.0

    def score(self, model, criterion, calibration, *, include=(), exclude=()):
        generator = torch.Generator().manual_seed(0)
        values = {k: torch.rand(v.shape, generator=generator) for k, v in magnitude_scores(model).items()}
        return WeightScores(self.name, criterion, sum(v.numel() for v in values.values()), 0.0, values)

    def plan(self, scores, sparsity, scope, exclude=None, **options):
        return MaskPlan(self.name, scores.criterion, sparsity, plan_masks(scores.values, sparsity, scope))

    def apply(self, model, plan):
        attach_masks(model, plan.masks)
        return []


register(MethodDescription(name="random", summary="weights pruned at random", units=(), criteria=("l1",),
                           default_criterion="l1", implementation="toy_method:RandomWeights"),
                           implementation=RandomWeights())
'''


def method_comparisons(path: Path) -> list[str]:
    """``x == "heads"``, ``method not in ("none", "magnitude")``: comparisons of a method-ish
    name (a variable, attribute or key called ``method``) with a string literal."""
    names = set(method_names()) | {"none"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        literals = {n.value for o in operands for n in ast.walk(o) if isinstance(n, ast.Constant)
                    and isinstance(n.value, str)}
        methodish = any(
            (isinstance(o, ast.Name) and "method" in o.id) or (isinstance(o, ast.Attribute) and "method" in o.attr)
            or (isinstance(o, ast.Subscript) and isinstance(o.slice, ast.Constant) and o.slice.value == "method")
            for o in operands)
        if methodish and literals & names:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_method_name_comparisons_outside_the_descriptions():
    files = [p for top in PRODUCT for p in (ROOT / top).rglob("*.py") if p not in DESCRIBED_IN]
    assert len(files) > 40
    found = [hit for path in files for hit in method_comparisons(path)]
    assert found == []


def test_the_detector_finds_comparisons(tmp_path):
    code = tmp_path / "bad.py"
    code.write_text('def f(method, config, point):\n    a = method == "heads"\n'
                    '    b = config.prune.method not in ("none", "magnitude")\n    c = point["method"] != "ffn"\n'
                    '    d = kind == "ffn"\n')
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys.modules[__name__], "ROOT", tmp_path)
        assert len(method_comparisons(code)) == 3  # kind == "ffn" compares a unit kind, not a method


def test_descriptions_read_without_torch():
    code = ("import sys; from ticketbert.pruning.methods import descriptions; from ticketbert.config import "
            "load_config; load_config(None, ['prune.method=heads+ffn']); print(len(descriptions()), "
            "[m for m in ('torch', 'transformers') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(" ", 1)[1].strip() == "[]"


def test_every_description_names_a_working_implementation():
    for described in descriptions():
        implementation = described.method()
        assert implementation.name == described.name
        assert implementation.description is described


@pytest.mark.parametrize("overrides, message", [
    (["prune.method=magnitude", "prune.criterion=taylor"], "method 'magnitude' ranks units by l1"),
    (["prune.method=heads+ffn", "prune.mode=early_bird"], "method 'heads+ffn' runs in mode posthoc"),
    (["prune.method=layers", "prune.scope=layer"], "method 'layers' plans with scope global"),
    (["prune.method=magnitude", "prune.budget=flops"], "budget applies to method heads+ffn, not 'magnitude'"),
    (["prune.method=ffn", "prune.mode=imp"], "method 'ffn' runs in mode posthoc or early_bird, not 'imp'"),
    (["prune.method=pruneall"], "unknown method 'pruneall'; known: none, magnitude"),
    (["plugins=[no_such_module]"], "plugins: cannot import 'no_such_module'"),
])
def test_the_config_checks_read_the_descriptions(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")) as error:
        load_config(None, overrides)
    assert len(str(error.value).splitlines()) == 1


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    (tmp_path / "toy_method.py").write_text(TOY_METHOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    yield tmp_path
    sys.modules.pop("toy_method", None)
    from ticketbert.pruning.methods import description
    description._DESCRIPTIONS.pop("random", None)
    description._IMPLEMENTATIONS.pop("random", None)


def test_a_method_of_ones_own_is_one_file(toy_plugin):
    with pytest.raises(ConfigError, match="unknown method 'random'"):
        load_config(None, ["prune.method=random", "prune.sparsity=0.5"])
    config = load_config(None, ["plugins=[toy_method]", "prune.method=random", "prune.sparsity=0.5"])
    assert config.prune.method == "random" and describe("random").summary == "weights pruned at random"
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    report = ticketbert.prune(model, "random", 0.5)
    assert report.achieved_sparsity == pytest.approx(0.5, abs=0.01)
    assert float((model[0].weight == 0).float().mean()) == pytest.approx(0.5, abs=0.1)
    with pytest.raises(ValueError, match="method 'random' runs in mode posthoc, not 'early_bird'"):
        ticketbert.EarlyBirdPruner("random", 0.5)
    assert torch.equal(report.masks["0.weight"], model[0].weight_mask.bool())


@pytest.mark.ray
def test_a_method_of_ones_own_is_swept(toy_plugin, tiny_encoder_dir, tmp_path):
    args = [f"storage={tmp_path / 'ray'}", f"model.encoder={tiny_encoder_dir}", "data.source=synthetic",
            "data.synthetic_examples=32", "data.train_eval_examples=16", "train.epochs=1", "train.lr=1e-3",
            "train.batch_size={sst: 8, para: 8, sts: 8}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "grid.tasks=[sst]", "grid.methods=[none,random,magnitude]", "grid.sparsities=[0.5]", "grid.seeds=[0]",
            "plugins=[toy_method]", "name=toy"]
    done = subprocess.run([sys.executable, "-m", "ticketbert.sweep", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    import mlflow
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
    pruned = {r.data.tags["method"]: r for r in runs if r.data.tags.get("stage") == "prune"}
    assert set(pruned) == {"random", "magnitude"}
    for run in pruned.values():
        assert run.info.status == "FINISHED"
        assert run.data.metrics["achieved_sparsity"] == pytest.approx(0.5, abs=0.01)
        assert "dev/accuracy" in run.data.metrics

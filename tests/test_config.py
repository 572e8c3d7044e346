import subprocess
import sys
from pathlib import Path

import pytest

from ticketbert.config import DEFAULT_BATCH_SIZE, ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


RUN_CONFIGS = sorted([*CONFIGS.glob("single/*.yaml"), CONFIGS / "multitask.yaml", CONFIGS / "reference.yaml"])


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_shipped_run_configs_load(path):
    load_config(path)


@pytest.mark.parametrize("override, field", [
    ("train.lr=-1", "train.lr"),
    ("train.lr=abc", "train.lr"),
    ("train.epochs=0", "train.epochs"),
    ("train.tasks=[sst,imdb]", "train.tasks"),
    ("train.tasks=[]", "train.tasks"),
    ("train.tasks=[sst,sst]", "train.tasks"),
    ("train.batch_size={sst: 0}", "train.batch_size"),
    ("train.device=tpu", "train.device"),
    ("train.bf16=maybe", "train.bf16"),
    ("train.sampling=random", "train.sampling"),
    ("train.unknown=1", "train.unknown"),
    ("bogus=1", "bogus"),
    ("data.max_length=4", "data.max_length"),
    ("data.source=ftp", "data.source"),
    ("model.pooling=max", "model.pooling"),
    ("model.dropout=1.5", "model.dropout"),
    ("model.para_encoder=tri", "tasks.para.encoding"),  # replaced by the task declaration
    ("prune.sparsity=1.2", "prune.sparsity"),
    ("prune.method=random", "prune.method"),
    ("prune.criterion=entropy", "prune.criterion"),
    ("prune.levels=[0.1,1.5]", "prune.levels.1"),
    ("prune.mode=magic", "prune.mode"),
    ("prune.early_bird_draws=sometimes", "prune.early_bird_draws"),
    ("prune.early_bird_search_lr=0", "prune.early_bird_search_lr"),
])
def test_bad_field_is_one_line_naming_it(override, field):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert f": {field}:" in message


def test_early_bird_search_follows_you_et_al_and_training_draws_need_gradients():
    prune = load_config(None, []).prune
    assert (prune.early_bird_window, prune.early_bird_epsilon, prune.early_bird_draws) == (5, 0.1, "auto")
    for method, criterion in (("magnitude", "null"), ("ffn", "l1"), ("layers", "loss_increment")):
        with pytest.raises(ConfigError, match="prune.early_bird_draws: training draws sum gate gradients"):
            load_config(None, [f"prune.method={method}", f"prune.criterion={criterion}", "prune.mode=early_bird",
                               "prune.early_bird_draws=training"])


def test_batch_size_defaults_for_tasks_without_an_entry():
    train = load_config(None, ["train.tasks=[sst,sts]", "train.batch_size={sst: 8}"]).train
    assert (train.batch_size_of("sst"), train.batch_size_of("sts")) == (8, DEFAULT_BATCH_SIZE)


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(None, ["train.lr"])


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {lr: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("train:\n  lr: 0\n")
    with pytest.raises(ConfigError, match=r"wrong.yaml: train.lr"):
        load_config(wrong)


def test_overrides_merge_into_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.001\n  epochs: 5\n")
    config = load_config(path, ["train.epochs=2", "train.tasks=[sst,para]"])
    assert config.train.lr == 0.001 and config.train.epochs == 2 and config.train.tasks == ["sst", "para"]


def test_installed_package_imports_from_any_directory(tmp_path):
    """Other projects import ``ticketbert``: it must resolve to the package, not a namespace."""
    code = "import ticketbert, ticketbert.sweep, ticketbert.analysis; print(ticketbert.__file__, " \
           "ticketbert.sweep.__file__, ticketbert.analysis.__file__); from ticketbert import EarlyBirdPruner, prune"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "None" not in done.stdout


@pytest.mark.parametrize("settings, message", [
    ({"method": "layers", "mode": "early_bird", "early_bird_draws": "training"}, "criterion 'loss_increment'"),
    ({"method": "ffn", "mode": "posthoc", "early_bird_search_lr": 1e-4}, "early_bird_search_lr applies to"),
    ({"method": "ffn", "mode": "posthoc", "early_bird_draws": "calibration"}, "early_bird_draws applies to"),
])
def test_early_bird_options_outside_their_mode_are_refused(settings, message):
    from ticketbert.config import PruneConfig

    with pytest.raises(ValueError, match=message):
        PruneConfig(**settings)

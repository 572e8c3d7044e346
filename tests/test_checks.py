"""Bad input is answered before any work: every command line checks its config and what the run
needs (encoder, device, folders, MLflow store, options it would never read) and answers with one
line naming the field, exit code 2, no traceback, before torch, transformers, Ray or MLflow load."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ticketbert.checks import cuda_device_count

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "ray", "mlflow")
# runs a command module like `python -m`, then writes which heavy modules it imported
WRAPPER = f"""
import atexit, os, runpy, sys
def report():
    with open(os.environ["CHECKS_IMPORTED"], "w") as handle:
        handle.write(" ".join(m for m in {HEAVY!r} if m in sys.modules))
atexit.register(report)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""
NO_CUDA = cuda_device_count() == 0
NO_SERVER = "http://127.0.0.1:9"  # the discard port: nothing listens, refused at once
SEARCH_LR = "search.space={{train.lr: {{low: 1.0e-5, high: {high}, log: true}}}}"

# (command, arguments, the field the one line must name); {file} is a plain file, {tmp} a folder
BAD_INPUTS = [
    ("ticketbert.train", ["train.lr=-1"], "train.lr"),
    ("ticketbert.train", ["train.epochs=1.5"], "train.epochs"),
    ("ticketbert.train", ["train.device=cuda:abc"], "train.device"),
    pytest.param("ticketbert.train", ["train.device=cuda"], "train.device",
                 marks=pytest.mark.skipif(not NO_CUDA, reason="CUDA is available here")),
    ("ticketbert.train", ["train.device=cuda:7"], "train.device"),
    ("ticketbert.train", ["train.weight_decay=.inf"], "train.weight_decay"),
    ("ticketbert.train", ["train.max_grad_norm=.nan"], "train.max_grad_norm"),
    ("ticketbert.train", ["prune.distill_alpha=.inf"], "prune.distill_alpha"),
    ("ticketbert.train", ["model.encoder=/does/not/exist"], "model.encoder"),
    ("ticketbert.train", ["model.encoder=nobody/no-such-model"], "model.encoder"),
    ("ticketbert.train", ["model.encoder={tmp}"], "model.encoder"),
    ("ticketbert.train", ["prune.sparsity=0.5"], "prune.sparsity"),
    ("ticketbert.train", ["prune.levels=[0.1,0.2]"], "prune.levels"),
    ("ticketbert.train", ["prune.method=magnitude", "prune.sparsity=0.5", "prune.early_bird_window=3"],
     "prune.early_bird_window"),
    ("ticketbert.train", ["prune.method=magnitude", "prune.mode=early_bird", "prune.sparsity=0.5",
                          "prune.recovery_epochs=1"], "prune.recovery_epochs"),
    ("ticketbert.train", ["prune.method=magnitude", "prune.sparsity=0.5", "prune.imp_rounds=5"], "prune.imp_rounds"),
    ("ticketbert.train", ["prune.method=heads", "prune.mode=imp"], "prune"),
    ("ticketbert.train", ["prune.method=heads", "prune.sparsity=0.6"], "prune.sparsity"),  # heads hold 1/3
    ("ticketbert.train", ["prune.method=layers", "prune.sparsity=0.9"], "prune.sparsity"),  # one of 6 stays
    ("ticketbert.train", ["prune.method=layers", "prune.scope=layer", "prune.sparsity=0.3"], "prune"),
    ("ticketbert.train", ["prune.method=magnitude", "prune.sparsity=0.5", "prune.repair=lstsq"], "prune"),
    ("ticketbert.train", ["output_dir={file}/runs"], "output_dir"),
    ("ticketbert.train", [f"tracking.uri={NO_SERVER}"], "tracking.uri"),
    ("ticketbert.train", ["tracking.uri=sqlit:///x.db"], "tracking.uri"),
    ("ticketbert.train", ["data.dir=/does/not/exist"], "data.dir"),
    ("ticketbert.train", ["train.tasks=[sst,sst]"], "train.tasks"),
    ("ticketbert.train", ["bogus=1"], "bogus"),
    ("ticketbert.train", ["--config", "/does/not/exist.yaml"], "/does/not/exist.yaml"),
    ("ticketbert.posthoc", ["--model", "{tmp}", "--methods", "bogus"], "--methods"),
    ("ticketbert.posthoc", ["--model", "{tmp}", "--levels=-0.1"], "--levels"),
    ("ticketbert.posthoc", ["--model", "{tmp}", "--levels", "0.5,1.0"], "--levels"),
    ("ticketbert.posthoc", ["--model", "{tmp}", "--levels", "nan"], "--levels"),
    ("ticketbert.posthoc", ["--model", "{tmp}", "--levels", "0.1,abc"], "--levels"),
    ("ticketbert.posthoc", ["--model", "/does/not/exist"], "--model"),
    ("ticketbert.posthoc", ["--model", "{tmp}"], "--model"),
    ("ticketbert.posthoc", ["--model", "{tmp}", "--criterion", "heads=entropy"], "--criterion"),
    ("ticketbert.posthoc", ["--model", "{tmp}", "--methods", "heads", "--criterion", "ffn=taylor"], "--criterion"),
    ("ticketbert.posthoc", ["--model", "{tmp}", "train.lr=.inf"], "train.lr"),
    ("tune.sweep", ["grid.seeds=[0,0]"], "grid.seeds"),
    ("tune.sweep", ["grid.sparsities=[0.3,0.3]"], "grid.sparsities"),
    ("tune.sweep", ["grid.methods=[heads,heads]"], "grid.methods"),
    ("tune.sweep", ["grid.tasks=[sst,sst]"], "grid.tasks"),
    ("tune.sweep", [SEARCH_LR.format(high=2.0)], "search.space.train.lr.high"),
    ("tune.sweep", ["search.space={train.epochs: {low: 1, high: 3}}"], "search.space.train.epochs"),
    ("tune.sweep", ["search.space={model.dropout: {low: 0.1, high: 1.5}}"], "search.space.model.dropout.high"),
    ("tune.sweep", ["search.space={train.weight_decay: {low: -1, high: 0.1}}"], "search.space.train.weight_decay.low"),
    ("tune.sweep", ["search.metric=dev/typo"], "search.metric"),
    ("tune.sweep", ["search.space={prune.early_bird_interval: {low: 5, high: 20, integer: true}}"],
     "search.space.prune.early_bird_interval"),
    ("tune.sweep", ["grid.mode=imp", "grid.methods=[magnitude]", "prune.recovery_epochs=1"],
     "base.prune.recovery_epochs"),
    ("tune.sweep", ["prune.levels=[0.1]"], "base.prune.levels"),
    ("tune.sweep", ["train.weight_decay=.inf"], "base.train.weight_decay"),
    ("tune.sweep", ["storage={file}/ray"], "storage"),
    ("tune.sweep", ["model.encoder=/does/not/exist"], "model.encoder"),
    ("tune.sweep", [f"tracking.uri={NO_SERVER}"], "tracking.uri"),
    ("tune.sweep", ["prune.sparsity=0.5"], "prune.sparsity"),
    pytest.param("tune.sweep", ["train.device=cuda"], "train.device",
                 marks=pytest.mark.skipif(not NO_CUDA, reason="CUDA is available here")),
]


def run_command(module: str, arguments: list[str], cwd: Path,
                timeout: float = 30) -> tuple[subprocess.CompletedProcess, list[str], float]:
    """Run ``python -m module arguments`` in ``cwd``: the process, the heavy modules it imported, seconds."""
    imported = cwd / "imported.txt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CHECKS_IMPORTED": str(imported), "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    began = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", WRAPPER, module, *arguments], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=timeout)
    return process, imported.read_text().split(), time.perf_counter() - began


@pytest.fixture
def places(tmp_path) -> dict[str, str]:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "configs").symlink_to(ROOT / "configs")  # the sweep's default config, as in a checkout
    return {"file": str(tmp_path / "a-file"), "tmp": str(tmp_path / "empty")}


def test_the_table_is_large_enough():
    assert len(BAD_INPUTS) >= 30
    assert {getattr(case, "values", case)[0] for case in BAD_INPUTS} == {
        "ticketbert.train", "ticketbert.posthoc", "tune.sweep"}


@pytest.mark.parametrize("module, arguments, field", BAD_INPUTS)
def test_bad_input_is_one_line_before_any_heavy_import(module, arguments, field, places, tmp_path):
    arguments = [a.replace("{file}", places["file"]).replace("{tmp}", places["tmp"]) for a in arguments]
    process, imported, seconds = run_command(module, arguments, tmp_path)
    lines = process.stderr.strip().splitlines()
    assert process.returncode == 2, process.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), process.stderr
    assert field in lines[0] and "Traceback" not in process.stderr
    assert imported == [], f"{module} imported {imported} before answering"
    assert seconds < 5


@pytest.mark.parametrize("module, arguments, expected", [
    ("ticketbert.train", ["--check", "train.lr=3e-5"], "lr: 3.0e-05"),
    ("ticketbert.posthoc", ["--check", "--model", "{encoder}", "--methods", "magnitude", "heads",
                            "--levels", "0.2,0.4"],
     "levels: [0.2, 0.4]"),
    ("tune.sweep", ["--check", "grid.methods=[magnitude,heads]", "grid.sparsities=[0.2]", "prune.repair=lstsq"],
     "method: heads"),
])
def test_check_prints_the_resolved_run_and_runs_nothing(module, arguments, expected, places, tmp_path):
    from ticketbert.defaults import DEFAULT_ENCODER, resolve_encoder

    arguments = [a.replace("{encoder}", resolve_encoder(DEFAULT_ENCODER)) for a in arguments]
    process, imported, seconds = run_command(module, [*arguments, f"output_dir={tmp_path / 'runs'}"]
                                             if module == "ticketbert.train" else arguments, tmp_path)
    assert process.returncode == 0, process.stderr
    assert "checked; nothing run" in process.stdout and expected in process.stdout
    assert imported == [] and seconds < 5
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlruns").exists()
    if module == "tune.sweep":  # repair: heads takes it, magnitude does not; said once
        assert process.stdout.count("note: base.prune.repair applies to heads; magnitude ignore it") == 1


def test_the_search_metrics_are_what_the_tasks_report():
    """The metrics a search may rank by come from the tasks' declarations: what their evaluation reports."""
    import numpy as np

    from ticketbert.sweep.checks import logged_metrics
    from ticketbert.tasks import shipped_definitions, shipped_task

    for name, definition in shipped_definitions().items():
        reported = shipped_task(name).metrics(np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 1.0]))
        allowed = logged_metrics([definition])
        assert {f"dev/{metric}" for metric in reported} <= allowed and f"dev/{definition.primary}" in allowed


def test_search_bounds_come_from_the_fields_own_metadata():
    from ticketbert.sweep.checks import field_bounds, is_integer_field, run_field

    assert field_bounds(run_field("train.lr")) == [(">", 0.0), ("<=", 1.0)]
    assert field_bounds(run_field("model.dropout")) == [(">=", 0.0), ("<", 1.0)]
    assert is_integer_field(run_field("train.epochs")) and not is_integer_field(run_field("train.lr"))
    assert is_integer_field(run_field("prune.early_bird_max_steps"))


def test_reachable_sparsity_follows_the_method_descriptions():
    from ticketbert.checks import EncoderShape, encoder_shape, reachable_sparsity
    from ticketbert.pruning.methods.description import describe

    bert = encoder_shape({"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536})
    assert bert == EncoderShape(6, 4 * 384 * 384, 2 * 384 * 1536)
    limits = {m: reachable_sparsity(describe(m), bert) for m in ("magnitude", "heads", "ffn", "layers", "heads+ffn")}
    assert limits == pytest.approx({"magnitude": 1.0, "heads": 1 / 3, "ffn": 2 / 3, "layers": 5 / 6, "heads+ffn": 1.0})
    distil = encoder_shape({"model_type": "distilbert", "dim": 768, "n_layers": 6, "hidden_dim": 3072})
    assert reachable_sparsity(describe("heads"), distil) == pytest.approx(1 / 3)
    modern = encoder_shape({"model_type": "modernbert", "hidden_size": 768, "num_hidden_layers": 22,
                            "intermediate_size": 1152})
    assert reachable_sparsity(describe("heads"), modern) == pytest.approx(4 * 768 / (4 * 768 + 3 * 1152))
    assert encoder_shape({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64,
                          "ticketbert_structure": {}}) is None  # pruned per layer: not a uniform shape


def test_reachable_sparsity_matches_the_methods_own_limit(tiny_model):
    from ticketbert.checks import encoder_shape, reachable_sparsity
    from ticketbert.pruning import method_limit
    from ticketbert.pruning.methods.description import describe

    shape = encoder_shape(tiny_model.encoder.config.to_dict())
    for method in ("heads", "ffn", "layers"):
        assert reachable_sparsity(describe(method), shape) == pytest.approx(method_limit(tiny_model, method))


def test_an_option_some_methods_ignore_is_fine_and_one_none_reads_is_not():
    from ticketbert.config import ConfigError
    from ticketbert.sweep.checks import option_notes
    from ticketbert.sweep.config import load_sweep_config

    both = load_sweep_config(None, ["grid.methods=[magnitude,heads]", "prune.recovery_epochs=1"])
    assert option_notes(both) == []  # read by every post-hoc method
    early = load_sweep_config(None, ["grid.mode=early_bird", "grid.methods=[magnitude,heads]",
                                     "prune.early_bird_window=3", "prune.recovery_epochs=1"])
    with pytest.raises(ConfigError, match=r"^base\.prune\.recovery_epochs: 1 does nothing"):
        option_notes(early)


def test_device_index_is_checked_against_the_visible_devices(monkeypatch):
    from ticketbert import checks
    from ticketbert.config import ConfigError

    monkeypatch.setattr(checks, "cuda_device_count", lambda: 2)
    checks.check_device("cuda:1")
    with pytest.raises(ConfigError, match=r"train\.device: 'cuda:2' but 2 CUDA device\(s\)"):
        checks.check_device("cuda:2")
    monkeypatch.setattr(checks, "cuda_device_count", lambda: 0)
    checks.check_device("cpu"), checks.check_device("auto")
    with pytest.raises(ConfigError, match="no CUDA device is visible"):
        checks.check_device("cuda")


def test_an_mlflow_server_that_answers_passes(tmp_path):
    import http.server
    import threading

    from ticketbert.checks import check_tracking
    from ticketbert.config import TrackingConfig

    (tmp_path / "health").write_text("OK")  # what an MLflow server answers on /health
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        check_tracking(TrackingConfig(uri=f"http://127.0.0.1:{server.server_port}"))
    finally:
        server.shutdown()
    check_tracking(TrackingConfig(uri=f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"))
    check_tracking(TrackingConfig(uri=NO_SERVER, enabled=False))  # tracking off: never contacted


def test_levels_are_read_by_posthoc(tmp_path):
    from ticketbert.defaults import DEFAULT_ENCODER, resolve_encoder

    process, _, _ = run_command("ticketbert.posthoc", ["--check", "--model", resolve_encoder(DEFAULT_ENCODER),
                                                       "prune.levels=[0.3,0.6]"], tmp_path)
    assert process.returncode == 0 and "levels: [0.3, 0.6]" in process.stdout

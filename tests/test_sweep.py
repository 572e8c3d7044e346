"""python -m tune.sweep: grid expansion, validation before Ray, a tiny sweep end to end,
resume after interruption, and the MLflow UI serving the sweep's runs."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import ray

from ticketbert.config import ConfigError
from ticketbert.sweep.config import ResourcesConfig, load_sweep_config
from ticketbert.sweep.resources import plan_resources, structured_limits
from ticketbert.sweep.sweep import main

ROOT = Path(__file__).resolve().parents[1]


def test_grid_expansion():
    config = load_sweep_config(None, ["grid.tasks=[sst,sts]", "grid.methods=[none,magnitude,heads]",
                                      "grid.sparsities=[0.0,0.2,0.4]", "grid.seeds=[0,1]",
                                      "grid.criteria={heads: loss_increment}"])
    trials = config.trials()
    assert len(trials) == 2 * 2 * (1 + 3 + 3)  # dense baseline once per task and seed
    assert {t.criterion for t in trials if t.method == "heads"} == {"loss_increment"}
    assert len(config.groups()) == 4


def test_levels_a_method_cannot_reach_are_skipped_with_a_note():
    config = load_sweep_config(ROOT / "configs" / "study.yaml", ["grid.tasks=[sts]", "grid.seeds=[0]",
                                                                 "grid.methods=[magnitude,ffn,heads+ffn]"])
    kept, notes = structured_limits(config)
    reached = {(p.method, p.sparsity) for p in kept}
    assert ("heads+ffn", 0.9) in reached and ("magnitude", 0.9) in reached and ("ffn", 0.6) in reached
    assert notes == [f"skipped sts/ffn@{s:g}: ffn reaches at most 66.7%" for s in (0.7, 0.8, 0.9)]


@pytest.mark.parametrize("override, message", [
    ("grid.sparsities=[0.2,1.5]", "grid.sparsities"),
    ("grid.tasks=[sst,imdb]", "grid.tasks: unknown task"),
    ("grid.methods=[pruneall]", "grid.methods.0"),
    ("resources.cpus_per_trial=0", "resources.cpus_per_trial"),
    ("train.lr=-1", "base.train.lr"),
    ("grid.mode=imp", "runs in mode posthoc"),
    ("search.space={train.batch_size: {low: 1, high: 2}}", "not searchable"),
])
def test_bad_sweep_config_fails_before_ray(override, message, capsys):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_sweep_config(ROOT / "configs" / "quickstart.yaml", [override])
    assert main([override]) == 2
    assert message.split(".")[0] in capsys.readouterr().err
    assert not ray.is_initialized()


def test_resources_from_hardware():
    assert plan_resources(ResourcesConfig(), hardware=(2, 0)).as_dict() == {"cpu": 1.0, "gpu": 0.0}
    gpu = plan_resources(ResourcesConfig(trials_per_gpu=4), hardware=(16, 2))
    assert gpu.gpu == 0.25 and gpu.max_concurrent == 8
    with pytest.raises(ValueError, match="gpus_per_trial=1 but the cluster has no GPU"):
        plan_resources(ResourcesConfig(gpus_per_trial=1), hardware=(2, 0))
    with pytest.raises(ValueError, match="cpus_per_trial=4 but the cluster has 2 CPUs"):
        plan_resources(ResourcesConfig(cpus_per_trial=4), hardware=(2, 0))


def test_impossible_resources_fail_before_ray(capsys):
    assert main(["resources.gpus_per_trial=1"]) == 2
    assert "no GPU" in capsys.readouterr().err and not ray.is_initialized()


def sweep_args(tmp: Path, encoder: Path, name: str, extra=()) -> list[str]:
    return [f"name={name}", f"storage={tmp / 'ray'}", f"model.encoder={encoder}", "data.source=synthetic",
            "data.synthetic_examples=32", "data.train_eval_examples=16", "train.epochs=1", "train.lr=1e-3",
            "train.batch_size={sst: 8, para: 8, sts: 8}", f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
            "prune.calibration_examples=8", "grid.tasks=[sst]", *extra]


def child_runs(tmp: Path, name: str):
    client = mlflow.MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    if experiment is None:  # the sweep has not created it yet
        return []
    return [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("mode") != "sweep"]


@pytest.mark.ray
def test_tiny_sweep_end_to_end(tiny_encoder_dir, tmp_path, capsys):
    args = sweep_args(tmp_path, tiny_encoder_dir, "tiny", [
        "grid.methods=[none,magnitude,heads+ffn]", "grid.criteria={heads+ffn: fisher}", "grid.sparsities=[0.0,0.25]",
        "grid.seeds=[0]",
        "search.space={train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}}", "search.num_samples=2"])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best dev metric" in out and "training FLOPs sst/s0" in out
    # the console: progress lines, not Ray's status blocks; where the results are and what to run next
    assert "== Status ==" not in out and "Trial status" not in out
    assert "[dense-0] 2/2 done, 0 running, 0 failed" in out and "[prune] 4/4 done, 0 running, 0 failed" in out
    assert f"browse: mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'} --host 127.0.0.1 --port 5000 --workers 1" in out
    assert "runs table: http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning" in out
    assert "analyse: python -m analysis --experiment tiny" in out
    assert out.count("SYNTHETIC DATA") == 2 and len(out.splitlines()) < 40
    # disk: finished trials keep their final model, not their training checkpoints
    storage = tmp_path / "ray" / "tiny"
    assert not list(storage.rglob("trainer_state.pt")) and not list(storage.rglob("checkpoint"))
    assert len(list(storage.glob("*/dense/*/model/heads.safetensors"))) == 2
    runs = child_runs(tmp_path, "tiny")
    stages = [r.data.tags["stage"] for r in runs]
    # Optuna tried two learning rates for the dense fine-tune; the best one is shared by all 4 pruning trials
    assert stages.count("dense") == 2 and stages.count("prune") == 4
    dense_lrs = {r.data.params["train.lr"] for r in runs if r.data.tags["stage"] == "dense"}
    assert len(dense_lrs) == 2 and "0.001" not in dense_lrs
    for run in runs:
        assert run.info.status == "FINISHED" and "dev/accuracy" in run.data.metrics
        assert run.data.tags["mlflow.parentRunId"]
    pruned = [r for r in runs if r.data.tags["stage"] == "prune"]
    assert {(r.data.tags["method"], r.data.tags["sparsity"]) for r in pruned} == {
        ("magnitude", "0.0"), ("magnitude", "0.25"), ("heads+ffn", "0.0"), ("heads+ffn", "0.25")}
    assert {r.data.tags["criterion"] for r in pruned if r.data.tags["method"] == "heads+ffn"} == {"fisher"}
    assert all("speedup" in r.data.metrics and "achieved_sparsity" in r.data.metrics for r in pruned)


def kill_leftovers(session: int) -> None:
    """SIGKILL what is left of the process session ``session`` (Ray processes of a killed driver)."""
    listing = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout.split()
    for pid, sid in zip(listing[::2], listing[1::2]):
        if int(sid) == session and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.ray
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_resume_after_interruption_runs_only_the_rest(stop, tiny_encoder_dir, tmp_path):
    """Ctrl-C, SIGTERM (preemption) or SIGKILL of the driver mid-stage, then --resume: every trial
    once, none lost; after SIGINT and SIGTERM, trials finished before were not run again."""
    levels = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    args = sweep_args(tmp_path, tiny_encoder_dir, "resumable", [  # each trial recovers for an epoch: seconds long
        "grid.methods=[magnitude]", f"grid.sparsities={levels}", "resources.max_concurrent_trials=1",
        "prune.recovery_epochs=1", "data.synthetic_examples=400"])
    # this checkout's code (not an installed copy), in the driver and in Ray's workers
    env = {**os.environ, "RAY_AIR_NEW_OUTPUT": "0", "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "first.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "ticketbert.sweep", *args], cwd=tmp_path, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 400
    while time.time() < deadline:  # interrupt once some but not all pruning trials finished
        if list((tmp_path / "ray" / "resumable").glob("*/tune/prune")):  # the store is set up by then
            done = [r for r in child_runs(tmp_path, "resumable") if r.data.tags.get("stage") == "prune"
                    and r.info.status == "FINISHED"]
            if done:
                break
        assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(0.2)
    if stop == signal.SIGTERM:  # to the driver (`kill PID`, a scheduler); Ray's own processes stop with it
        process.send_signal(stop)
    else:  # Ctrl-C reaches the whole group (Ray's processes ignore it); SIGKILL: everything dies at once
        os.killpg(process.pid, stop)
    process.wait(timeout=120)
    if stop != signal.SIGKILL:  # said as an interruption, the parent run KILLED, no summary of "failed" trials
        first = (tmp_path / "first.log").read_text()
        assert process.returncode == 130 and "rerun the same command with --resume" in first, first[-3000:]
        assert "failed trials" not in first
    if stop == signal.SIGKILL:
        time.sleep(2)  # Ray's processes share the driver's fate; whatever outlived it goes now
        kill_leftovers(process.pid)
    before = {r.data.tags["ticketbert.run_key"]: r.info.end_time for r in child_runs(tmp_path, "resumable")
              if r.info.status == "FINISHED"}
    assert 1 <= sum(k.count("magnitude") for k in before) < len(levels)
    finished = subprocess.run([sys.executable, "-m", "ticketbert.sweep", "--resume", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    runs = child_runs(tmp_path, "resumable")
    keys = [r.data.tags["ticketbert.run_key"] for r in runs]
    assert len(keys) == len(set(keys)) == 1 + len(levels)  # the dense fine-tune + every pruning trial, once
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in runs:  # trials finished before a handled interruption were not run again
        if stop != signal.SIGKILL and run.data.tags["ticketbert.run_key"] in before:
            assert run.info.end_time == before[run.data.tags["ticketbert.run_key"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ray
def test_mlflow_ui_serves_the_sweeps_runs(tiny_encoder_dir, tmp_path):
    assert main(sweep_args(tmp_path, tiny_encoder_dir, "served", ["grid.methods=[magnitude]",
                                                                   "grid.sparsities=[0.5]"])) == 0
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                               f"sqlite:///{tmp_path / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/experiments/get-by-name?experiment_name=served", timeout=2) as r:
                    experiment = json.load(r)["experiment"]
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not come up")
        request = urllib.request.Request(f"{base}/runs/search", method="POST",
                                         data=json.dumps({"experiment_ids": [experiment["experiment_id"]]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            runs = json.load(r)["runs"]
        assert len(runs) == 3  # the sweep's parent, its dense fine-tune and its one pruning trial
        names = {m["key"] for run in runs for m in run["data"].get("metrics", [])}
        assert {"dev/accuracy", "achieved_sparsity", "speedup"} <= names
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml") if "\ngrid:" in p.read_text()))
def test_shipped_sweep_configs_validate(name):
    config = load_sweep_config(ROOT / "configs" / name)
    assert config.trials()


# imported through the run config's `plugins` in every process of the sweep: the first trial
# process to import it holds GIGABYTES of touched memory until Ray's memory monitor kills it
MEMORY_HOG = '''
import os, pathlib, time
import numpy as np
import ray

marker = pathlib.Path(os.environ["HOG_MARKER"])
if ray._private.worker.global_worker.mode == ray.WORKER_MODE and not marker.exists():
    marker.write_text(str(os.getpid()))
    block = np.ones(int(os.environ["HOG_BYTES"]), dtype=np.uint8)
    time.sleep(60)  # the monitor (every 250 ms) kills this worker long before
'''


def memory_used_fraction() -> tuple[float, int]:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    total = int(info["MemTotal"].split()[0]) * 1024
    return 1 - int(info["MemAvailable"].split()[0]) * 1024 / total, total


@pytest.mark.ray
def test_a_trial_past_rays_memory_monitor_is_retried_and_the_sweep_finishes(tiny_encoder_dir, tmp_path):
    used, total = memory_used_fraction()
    margin, hog = 2.5 * 2**30, 5 * 2**30  # Ray and a trial stay under the margin; the hog goes past it
    if (1 - used) * total < hog + margin + 2**30:
        pytest.skip("not enough free memory to push one trial past the monitor safely")
    (tmp_path / "memory_hog.py").write_text(MEMORY_HOG)
    args = sweep_args(tmp_path, tiny_encoder_dir, "hog", ["grid.methods=[magnitude]", "grid.sparsities=[0.5]",
                                                          "plugins=[memory_hog]", "max_failures=3"])
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{tmp_path}", "RAY_AIR_NEW_OUTPUT": "0", "TQDM_DISABLE": "1",
           "HOG_MARKER": str(tmp_path / "hogged"), "HOG_BYTES": str(int(hog)),
           "RAY_memory_usage_threshold": f"{used + margin / total:.3f}", "RAY_memory_monitor_refresh_ms": "250"}
    done = subprocess.run([sys.executable, "-m", "tune.sweep", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (tmp_path / "hogged").exists()
    assert "Ray killed a trial's worker for lack of memory; restoring the experiment" in done.stdout
    runs = child_runs(tmp_path, "hog")
    keys = [r.data.tags["ticketbert.run_key"] for r in runs]
    assert len(keys) == len(set(keys)) == 2 and all(r.info.status == "FINISHED" for r in runs)  # dense + pruned

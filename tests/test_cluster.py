"""A sweep on a two-node Ray cluster with an MLflow server, and a worker node killed mid-sweep.

Both nodes run on this machine (loopback only, short temp dirs for Ray's unix sockets): a head
node and a worker node with one CPU each, so two concurrent trials must land on both. Slow
(two sweeps, a cluster and a server start): ``python -m pytest -q -m cluster tests/test_cluster.py``.

Each pruning trial recovers for 40 short epochs (~15 s): Tune reuses a warm trial actor for the
next trial rather than wait for a new one, so with trials shorter than a cold actor's start
(imports: 5 s on an idle machine, 20 s and more on a busy one) every trial ran on the first node
and the worker could finish its trial before the test killed it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import mlflow
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.cluster]
ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, interval: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class LocalCluster:
    """``ray start --head`` plus worker nodes started with ``--block`` in their own process
    group (so that one can be killed whole), and an ``mlflow server`` on SQLite."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                    "PYTHONPATH": str(ROOT)}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.workers: dict[str, subprocess.Popen] = {}
        self.server: subprocess.Popen | None = None
        self.tracking_uri = ""

    def ray(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True, timeout=120, **kwargs)

    def start_head(self) -> None:
        done = self.ray("start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
                        "--num-cpus", "1", "--resources", json.dumps({"head_node": 1}),
                        "--temp-dir", str(self.root / "h"), "--include-dashboard", "false", "--disable-usage-stats")
        assert done.returncode == 0, done.stdout + done.stderr

    def add_worker(self, name: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")
        worker = subprocess.Popen(
            [RAY, "start", "--address", self.address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
             "--resources", json.dumps({name: 1}), "--temp-dir", str(self.root / name), "--block"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers[name] = worker
        return worker

    def node_ids(self) -> dict[str, str]:
        """Alive nodes: custom resource name (head_node or a worker's name) -> node id."""
        probe = ("import json, ray; ray.init(address='%s', logging_level='ERROR'); print(json.dumps("
                 "{[k for k in n['Resources'] if k.startswith(('head_node', 'w'))][0]: n['NodeID'] "
                 "for n in ray.nodes() if n['Alive']}))" % self.address)
        done = subprocess.run([sys.executable, "-c", probe], env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start_mlflow(self) -> None:
        port = free_port()
        self.server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.tracking_uri = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        wait_for(up, 120, "the mlflow server")

    @staticmethod
    def kill(process: subprocess.Popen | None, temp_dir: Path | None = None) -> None:
        """SIGKILL a process group and every process started with ``temp_dir`` in its command
        line (a node's raylet, GCS, agents, which Ray puts in groups of their own; its trial
        workers exit with their raylet). Never ``ray stop``: that kills every Ray instance on the
        machine, other users' sweeps included."""
        pids = {process.pid} if process is not None else set()
        if temp_dir is not None:
            for entry in Path("/proc").iterdir():
                try:
                    if entry.name.isdigit() and f"{temp_dir}/".encode() in (entry / "cmdline").read_bytes():
                        pids.add(int(entry.name))
                except OSError:
                    continue
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL) if process is not None and pid == process.pid else os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if process is not None:
            process.wait(timeout=60)

    def stop(self) -> None:
        for name, worker in self.workers.items():
            self.kill(worker, self.root / name)
        self.kill(None, self.root / "h")
        if self.server is not None:
            self.kill(self.server)


@pytest.fixture
def cluster():
    root = Path(tempfile.mkdtemp(prefix="tbc", dir="/tmp"))  # /tmp/tbcXXXXXXXX: short socket paths
    local = LocalCluster(root)
    try:
        local.start_head()
        local.add_worker("w1")
        wait_for(lambda: len(local.node_ids()) == 2, 120, "two nodes")
        local.start_mlflow()
        yield local
    finally:
        local.stop()
        shutil.rmtree(root, ignore_errors=True)


def sweep_command(cluster: LocalCluster, name: str, encoder: Path, sparsities: list[float]) -> list[str]:
    return [sys.executable, "-m", "ticketbert.sweep", "--address", cluster.address, f"name={name}",
            f"storage={cluster.root / 'ray'}", f"model.encoder={encoder}", "train.epochs=1", "train.lr=1e-3",
            "train.batch_size={sst: 8, para: 8, sts: 8}", "data.max_train_examples=192", "data.max_dev_examples=32",
            "data.train_eval_examples=16", "prune.calibration_examples=8", "grid.tasks=[sst]",
            "grid.methods=[magnitude]", f"grid.sparsities={sparsities}", "prune.recovery_epochs=40",
            "max_failures=2"]


def child_runs(cluster: LocalCluster, name: str):
    client = mlflow.MlflowClient(cluster.tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    return [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("mode") != "sweep"]


def test_sweep_spreads_over_two_nodes_and_survives_a_dead_worker(cluster, tiny_encoder_dir, tmp_path):
    nodes = cluster.node_ids()
    env = {**cluster.env, "MLFLOW_TRACKING_URI": cluster.tracking_uri}

    # 1. a real-data sweep (the bundled sample) on both nodes, every run in the server
    levels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    started = time.time()
    done = subprocess.run(sweep_command(cluster, "two-nodes", tiny_encoder_dir, levels), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    figures = {"two_nodes_wall_s": round(time.time() - started, 1)}
    (tmp_path / "two-nodes.log").write_text(done.stdout + done.stderr)  # kept by pytest's tmp_path retention
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"at {cluster.tracking_uri}" in done.stdout
    runs = child_runs(cluster, "two-nodes")
    assert len(runs) == 1 + len(levels) and all(r.info.status == "FINISHED" for r in runs)
    used = Counter(r.data.tags["ray_node_id"] for r in runs)
    figures["two_nodes_runs_per_node"] = {name: used[node] for name, node in nodes.items()}
    assert set(used) == set(nodes.values()), (used, nodes)  # trials ran on both nodes
    assert {r.data.tags["data_source"] for r in runs} == {"sample"}

    # 2. the same with the worker node killed while it runs a pruning trial
    levels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    log = open(tmp_path / "killed.log", "w")
    started = time.time()
    sweep = subprocess.Popen(sweep_command(cluster, "dead-worker", tiny_encoder_dir, levels), cwd=tmp_path, env=env,
                             stdout=log, stderr=subprocess.STDOUT)

    def running_on_worker():
        assert sweep.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        return [r.info.run_id for r in child_runs(cluster, "dead-worker") if r.info.status == "RUNNING"
                and r.data.tags.get("stage") == "prune" and r.data.tags.get("ray_node_id") == nodes["w1"]]

    wait_for(running_on_worker, 400, "a pruning trial on the worker node")
    figures["killed_worker_after_s"] = round(time.time() - started, 1)
    killed_at_ms = time.time() * 1000
    cluster.kill(cluster.workers["w1"], cluster.root / "w1")
    assert sweep.wait(timeout=600) == 0, (tmp_path / "killed.log").read_text()[-3000:]
    figures["dead_worker_wall_s"] = round(time.time() - started, 1)
    output = (tmp_path / "killed.log").read_text()
    lost = re.findall(r"trial (\S+) failed \(attempt 1\)", output)  # the progress output names each lost attempt
    assert lost
    runs = child_runs(cluster, "dead-worker")
    keys = [r.data.tags["ticketbert.run_key"] for r in runs]
    assert len(keys) == len(set(keys)) == 1 + len(levels)  # one run per grid point: none lost, none doubled
    assert all(r.info.status == "FINISHED" for r in runs)
    figures["dead_worker_runs_per_node"] = dict(Counter(
        {v: k for k, v in nodes.items()}.get(r.data.tags["ray_node_id"], "?") for r in runs))
    figures["retried"] = lost
    (tmp_path / "figures.json").write_text(json.dumps(figures, indent=1))
    for run in runs:
        if run.data.tags["ray_node_id"] == nodes["w1"]:  # what the worker finished, it finished before it died
            assert run.info.end_time < killed_at_ms
        if any(f":dead-worker-{label}:" in run.data.tags["ticketbert.run_key"] for label in lost):
            assert run.data.tags["ray_node_id"] == nodes["head_node"]  # retried on the head, in the same run
    assert {r.data.tags["sparsity"] for r in runs if r.data.tags["stage"] == "prune"} == {str(s) for s in levels}

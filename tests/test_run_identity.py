"""Runs are keyed by what was run: a sweep over other data never touches another's runs.

Case 1 of issue 12: a real-data sweep, then a synthetic one under the same name in the same
MLflow store; before run keys covered the data, the second reopened the first's runs and
appended synthetic metrics to them.
"""

import hashlib

import mlflow
import pytest

from ticketbert.config import ConfigError, load_config
from ticketbert.data import SAMPLE_DIR, data_fingerprint
from ticketbert.run import config_digest
from ticketbert.sweep.config import load_sweep_config
from ticketbert.sweep.instance import open_instance
from ticketbert.sweep.sweep import main
from ticketbert.tasks import shipped_definitions

SST = {"sst": shipped_definitions()["sst"]}


def test_data_fingerprint_covers_source_and_file_contents(tmp_path):
    sample = load_config(None, ["data.source=sample"])
    assert data_fingerprint(sample.data, SST).startswith("sample:")
    copy = tmp_path / "data"
    copy.mkdir()
    for name in ("ids-sst-train.csv", "ids-sst-dev.csv"):
        (copy / name).write_bytes((SAMPLE_DIR / name).read_bytes())
    same_files = load_config(None, ["data.source=csv", f"data.dir={copy}"])
    # the same bytes elsewhere: the same content hash, another source label and run digest
    assert data_fingerprint(same_files.data, SST).split(":")[1] == data_fingerprint(sample.data, SST).split(":")[1]
    before = config_digest(same_files)
    with (copy / "ids-sst-dev.csv").open("a") as handle:
        handle.write("9999\tabc\tA changed dev set .\t3\n")
    assert config_digest(same_files) != before  # one more dev row: another run
    synthetic = load_config(None, ["data.source=synthetic"])
    more = load_config(None, ["data.source=synthetic", "data.synthetic_examples=601"])
    assert data_fingerprint(synthetic.data, SST) != data_fingerprint(more.data, SST)
    assert config_digest(synthetic) != config_digest(load_config(None, ["data.source=sample"]))


def test_run_digest_covers_the_trained_tasks_definitions_only(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"s": "good", "y": "pos"}\n{"s": "bad", "y": "neg"}\n')
    declared = ["tasks.mine.kind=classification", "tasks.mine.text=s", "tasks.mine.label=y",
                f"tasks.mine.files.train={tmp_path / 't.jsonl'}"]
    plain = config_digest(load_config(None, ["train.tasks=[mine]", *declared]))
    assert plain == config_digest(load_config(None, ["train.tasks=[mine]", *declared]))
    relabelled = config_digest(load_config(None, ["train.tasks=[mine]", *declared, "tasks.mine.labels=[pos,neg]"]))
    assert relabelled != plain  # a changed label map: another run, another dense model
    sst_only = config_digest(load_config(None, []))
    assert config_digest(load_config(None, declared)) == sst_only  # a declared task it does not train: same run
    assert config_digest(load_config(None, ["tasks.sst.metrics=[accuracy]"])) != sst_only


def store_snapshot(uri: str, experiment: str) -> dict[str, dict]:
    """Every run of ``experiment``: tags, status and full history of every metric."""
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    snapshot = {}
    for run in client.search_runs([found.experiment_id]):
        histories = {key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
                     for key in run.data.metrics}
        snapshot[run.info.run_id] = {"tags": dict(run.data.tags), "status": run.info.status, "metrics": histories,
                                     "params": dict(run.data.params)}
    return snapshot


def tree_hashes(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.mark.ray
def test_synthetic_sweep_leaves_the_real_sweeps_runs_intact(tiny_encoder_dir, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["name=quick", f"storage={tmp_path / 'ray'}", f"model.encoder={tiny_encoder_dir}", "train.epochs=1",
              "train.lr=1e-3", "train.batch_size={sst: 8, para: 8, sts: 8}", f"tracking.uri={uri}",
              "data.max_train_examples=24", "data.max_dev_examples=16", "data.train_eval_examples=8",
              "data.synthetic_examples=24", "prune.calibration_examples=8", "grid.tasks=[sst]",
              "grid.methods=[magnitude]", "grid.sparsities=[0.5]"]
    assert main(common) == 0  # no data.dir: the bundled real sample
    real_out = capsys.readouterr().out
    assert "bundled real-data sample" in real_out and "SYNTHETIC" not in real_out
    real = store_snapshot(uri, "quick")
    assert len(real) == 3  # parent, dense fine-tune, pruning trial
    assert {r["tags"]["synthetic_data"] for r in real.values()} == {"False"}
    assert {r["tags"]["data_source"] for r in real.values()} == {"sample"}
    real_files = tree_hashes(tmp_path / "ray" / "quick")

    assert main([*common, "data.source=synthetic"]) == 0
    synthetic_out = capsys.readouterr().out
    assert synthetic_out.count("SYNTHETIC DATA") == 2  # the banner above and below the final table
    both = store_snapshot(uri, "quick")
    assert {run_id: both[run_id] for run_id in real} == real  # every real run: same tags, params, histories
    new = {run_id: run for run_id, run in both.items() if run_id not in real}
    assert len(new) == 3
    assert {r["tags"]["synthetic_data"] for r in new.values()} == {"True"}
    assert all(r["tags"]["mlflow.runName"].startswith("[synthetic] ") for r in new.values())
    keys = [r["tags"]["ticketbert.run_key"] for r in both.values()]
    assert len(set(keys)) == 6
    after = tree_hashes(tmp_path / "ray" / "quick")
    assert {k: after[k] for k in real_files} == real_files  # the real sweep's models and Tune files untouched


def test_only_resume_reopens_a_sweep_instance(tmp_path):
    config = load_sweep_config(None, [f"storage={tmp_path}", "grid.sparsities=[0.5]"])
    base = config.base.model_dump(mode="json")
    first = open_instance(config, base, resume=False)
    (first.tune_dir / "prune").mkdir(parents=True)
    second = open_instance(config, base, resume=False)  # the same settings again, not resumed: a new instance
    assert second.root != first.root and second.parent_key != first.parent_key
    assert second.trial_key("x") != first.trial_key("x")
    assert open_instance(config, base, resume=True).root == first.root  # the latest one with Tune state
    other = load_sweep_config(None, [f"storage={tmp_path}", "grid.sparsities=[0.6]"])
    with pytest.raises(ConfigError, match="no sweep 'sweep' with these settings and data"):
        open_instance(other, other.base.model_dump(mode="json"), resume=True)

"""Tasks declared in YAML: file formats, labels (list, mapping, inferred), kinds and encodings,
bad declarations (one line naming task, field, file, row; before torch), save/load."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from ticketbert.config import ConfigError, DataConfig, ModelConfig, load_config
from ticketbert.data import DataError, collate, encode_task, read_run_data, read_task
from ticketbert.pruning import load_pruned, prune, save_pruned
from ticketbert.tasks import TaskDefinition
from ticketbert.tasks.model import build_model

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = [("a fine film", "pos"), ("dull and long", "neg"), ("a warm , funny story", "pos"),
           ("nothing works here", "neg"), ("the cast shines", "pos"), ("a tired plot", "neg")]
PAIRS = [("a cat sits", "a cat is sitting", 4.5), ("a dog runs", "the market fell", 0.2),
         ("kids play", "children are playing", 4.8), ("rain today", "a man cooks", 0.0),
         ("he sings", "he is singing", 5.0), ("a red car", "a blue bike", 1.1)]


def write(path: Path, rows: list[dict], fmt: str | None = None) -> Path:
    """``rows`` as a file of the format its extension names (or ``fmt``)."""
    fmt = fmt or path.suffix.lstrip(".")
    if fmt in ("csv", "tsv"):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="," if fmt == "csv" else "\t")
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def review_rows(rows=REVIEWS) -> list[dict]:
    return [{"review": text, "sentiment": label} for text, label in rows]


def pair_rows(rows=PAIRS) -> list[dict]:
    return [{"first": a, "second": b, "score": score} for a, b, score in rows]


def review_task(tmp_path: Path, fmt: str = "jsonl", **fields) -> TaskDefinition:
    files = {split: write(tmp_path / f"{split}.{fmt}", review_rows()) for split in ("train", "dev")}
    return TaskDefinition.model_validate({"kind": "classification", "text": "review", "label": "sentiment",
                                          "labels": ["neg", "pos"], "files": files, **fields})


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_every_file_format_reads_the_same_examples(tmp_path, fmt):
    raw = read_task(DataConfig(), "reviews", review_task(tmp_path, fmt))
    assert [e.texts for e in raw.train] == [(text,) for text, _ in REVIEWS]
    assert [e.label for e in raw.train] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]  # labels [neg, pos]: pos is id 1
    assert raw.dev == raw.train and raw.task.num_labels == 2


def test_a_saved_datasets_folder_with_renamed_columns(tmp_path):
    import datasets

    rows = {"sentence": [text for text, _ in REVIEWS], "polarity": [label for _, label in REVIEWS]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows),
                          "validation": datasets.Dataset.from_dict(rows)}).save_to_disk(tmp_path / "reviews")
    config = load_config(None, ["train.tasks=[r]", "tasks.r.kind=classification", "tasks.r.text=review",
                                "tasks.r.label=sentiment", "tasks.r.labels=[neg,pos]", f"tasks.r.dataset.path={tmp_path / 'reviews'}",
                                "tasks.r.dataset.columns={review: sentence, sentiment: polarity}"])
    (raw,) = read_run_data(config)
    assert [e.texts[0] for e in raw.dev] == rows["sentence"] and [e.label for e in raw.train] == [1.0, 0.0] * 3


def test_label_list_mapping_num_labels_and_inference(tmp_path):
    mapped = read_task(DataConfig(), "r", review_task(tmp_path, labels={"pos": 0, "neg": 1}))
    assert [e.label for e in mapped.train][:2] == [0.0, 1.0]
    with pytest.warns(UserWarning, match=r"task r: labels inferred from train: \['neg', 'pos'\] \(ids 0\.\.1\)"):
        inferred = read_task(DataConfig(), "r", review_task(tmp_path, labels=None))
    assert [e.label for e in inferred.train][:2] == [1.0, 0.0] and inferred.task.codec.names == ("neg", "pos")
    numbered = [{"review": text, "sentiment": i % 3} for i, (text, _) in enumerate(REVIEWS)]
    files = {"train": write(tmp_path / "n.jsonl", numbered)}
    declared = TaskDefinition.model_validate({"kind": "classification", "text": "review", "label": "sentiment",
                                              "num_labels": 3, "files": files, "dev_fraction": 0.34})
    with pytest.warns(UserWarning, match=r"task n: no dev split declared: 2 of 6 train rows held out as dev"):
        raw = read_task(DataConfig(), "n", declared, seed=1)
    assert len(raw.train) == 4 and len(raw.dev) == 2
    assert sorted(e.texts for e in raw.train + raw.dev) == sorted((t,) for t, _ in REVIEWS)
    assert {e.label for e in raw.train + raw.dev} == {0.0, 1.0, 2.0}


# kind, text, encoding, head, loss -> outputs per example, segments
SHAPES = [
    ("classification", "review", "cross", None, None, 2, 1),
    ("classification", ["first", "second"], "cross", None, None, 2, 1),
    ("classification", ["first", "second"], "bi", None, None, 2, 2),
    ("classification", ["first", "second"], "bi", "logit", "bce", 1, 2),
    ("regression", ["first", "second"], "bi", None, None, 1, 2),
    ("regression", ["first", "second"], "cross", None, "l1", 1, 1),
    ("regression", ["first", "second"], "bi", "cosine", "l1", 1, 2),
]


@pytest.mark.parametrize("kind, text, encoding, head, loss, outputs, segments", SHAPES)
def test_kinds_and_encodings_train_through_one_path(tmp_path, tiny_encoder_dir, tokenizer, kind, text, encoding,
                                                    head, loss, outputs, segments):
    rows = [{"review": a, "first": a, "second": b, "score": s, "same": "yes" if s > 2 else "no"} for a, b, s in PAIRS]
    files = {"train": write(tmp_path / "train.parquet", rows), "dev": write(tmp_path / "dev.parquet", rows)}
    declaration = {"kind": kind, "text": text, "label": "score" if kind == "regression" else "same", "files": files,
                   "encoding": encoding, "head": head, "loss": loss}
    if kind == "regression":
        declaration["range"] = [0, 5]
    else:
        declaration["labels"] = ["no", "yes"]
    definition = TaskDefinition.model_validate({k: v for k, v in declaration.items() if v is not None})
    raw = read_task(DataConfig(), "t", definition)
    data = encode_task(raw, tokenizer, DataConfig(max_length=16))
    model = build_model(ModelConfig(encoder=str(tiny_encoder_dir), dropout=0.0), [raw.task])
    batch = collate(data.train, list(range(len(PAIRS))), tokenizer.pad_token_id)
    assert batch.segments == segments and batch.input_ids.shape[0] == segments * len(PAIRS)
    out = model("t", batch)
    assert out.shape == ((len(PAIRS), outputs) if outputs > 1 else (len(PAIRS),))
    loss_value = model.task_loss("t", batch)
    assert torch.isfinite(loss_value) and loss_value.requires_grad
    metrics = raw.task.metrics(raw.task.predict(out.detach()).numpy(), batch.labels.numpy())
    assert set(metrics) == ({"pearson", "spearman"} if kind == "regression" else {"accuracy", "f1_macro"})


def test_declared_task_model_saves_and_reloads_with_its_definition(tmp_path, tiny_encoder_dir, tokenizer):
    config = load_config(None, [f"model.encoder={tiny_encoder_dir}", "model.dropout=0.0", "train.tasks=[reviews]",
                                "tasks.reviews.kind=classification", "tasks.reviews.text=review",
                                "tasks.reviews.label=sentiment", "tasks.reviews.labels=[pos,neg,mixed]",
                                f"tasks.reviews.files.train={write(tmp_path / 'r.csv', review_rows())}"])
    with pytest.warns(UserWarning, match="no dev split"):
        raw = read_run_data(config)[0]
    data = encode_task(raw, tokenizer, config.data)
    model = build_model(config.model, [raw.task]).eval()
    prune(model, "heads", 0.25, criterion="l1")
    batch = collate(data.train, list(range(len(data.train))), tokenizer.pad_token_id)
    loaded = load_pruned(save_pruned(model, tmp_path / "saved")).eval()
    assert json.loads((tmp_path / "saved" / "ticketbert.json").read_text())["task_definitions"]["reviews"]["labels"] == [
        "pos", "neg", "mixed"]
    assert loaded.task_specs["reviews"] == raw.task and loaded.heads["reviews"].classifier.out_features == 3
    with torch.no_grad():
        torch.testing.assert_close(loaded("reviews", batch), model("reviews", batch))


def test_old_paraphrase_model_settings_load_as_the_task_declaration():
    with pytest.warns(FutureWarning, match=r"model.para_encoder is replaced by tasks.para.encoding"):
        config = load_config(None, ["model.para_encoder=cross", "model.para_features=concat", "train.tasks=[para]"])
    para = config.task_definition("para")
    assert (para.encoding, para.features, para.head, para.loss) == ("cross", "concat", "logit", "bce")
    assert config.task_definition("sst").encoding == "cross"


# ---- bad declarations: one line naming task, field, file and row, before torch is imported ----

GOOD = "review,sentiment\na fine film,pos\ndull and long,neg\n"
BAD_FILES = [  # (what, train file text, dev file text, declaration changes, message)
    ("missing column", "text,sentiment\na,pos\nb,neg\n", GOOD, {},
     r"train\.csv: task mine: missing column\(s\) \['review'\]; columns found: \['text', 'sentiment'\]"),
    ("label not in labels", "review,sentiment\na,pos\nb,maybe\n", GOOD, {},
     r"train\.csv: line 3: column sentiment: label 'maybe' is not one of the labels \['neg', 'pos'\] \(task mine\)"),
    ("dev label train never had", GOOD, "review,sentiment\na,pos\nb,meh\n", {"labels": None},
     r"dev\.csv: line 3: column sentiment: dev label 'meh' never appears in train .*\(task mine\)"),
    ("empty text with on_malformed error", "review,sentiment\na,pos\n,neg\n", GOOD, {"on_malformed": "error"},
     r"train\.csv: line 3: empty review \(task mine, on_malformed: error\)"),
    ("not UTF-8", None, GOOD, {}, r"train\.csv: line 4: not UTF-8 text \(byte 0xe9"),
    ("integer labels out of range", "review,sentiment\na,1\nb,2\n", "review,sentiment\na,0\n",
     {"labels": None, "num_labels": 2}, r"train\.csv: line 3: column sentiment: label must be an integer in 0\.\.1, got '2'"),
]
BAD_SCORES = ["high", "nan", "inf", "-inf", "1e999", "7", "-0.5"]


def run_cli(module: str, args: list[str]) -> tuple[int, str, dict]:
    """``module``'s ``main(args)`` in a fresh interpreter: exit code, stderr, and whether torch
    was imported plus the seconds ``main`` took."""
    probe = textwrap.dedent(f"""
        import json, sys, time
        from {module} import main
        start = time.perf_counter()
        code = main({args!r})
        print(json.dumps({{"code": code, "torch": "torch" in sys.modules, "seconds": time.perf_counter() - start}}))
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr.strip(), json.loads(done.stdout.strip().splitlines()[-1])


def config_file(tmp_path: Path, declaration: dict, tasks=("mine",)) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"tasks": {"mine": declaration}, "train": {"tasks": list(tasks)}}))
    return path


@pytest.mark.parametrize("what, train, dev, changes, message", BAD_FILES, ids=[row[0] for row in BAD_FILES])
def test_bad_rows_fail_in_one_line_naming_task_file_row_and_column(tmp_path, what, train, dev, changes, message):
    (tmp_path / "train.csv").write_bytes(train.encode() if train else GOOD.encode() + "caf\xe9,pos\n".encode("latin-1"))
    (tmp_path / "dev.csv").write_text(dev)
    declaration = {"kind": "classification", "text": "review", "label": "sentiment", "labels": ["neg", "pos"],
                   "files": {"train": "train.csv", "dev": "dev.csv"}, **changes}
    declaration = {k: v for k, v in declaration.items() if v is not None}
    with pytest.raises(DataError, match=message) as info:
        read_run_data(load_config(config_file(tmp_path, declaration)))
    assert len(str(info.value).splitlines()) == 1 and str(tmp_path) in str(info.value)


@pytest.mark.parametrize("score", BAD_SCORES)
def test_bad_scores_fail_naming_row_and_column(tmp_path, score):
    rows = [{"first": "a", "second": "b", "score": 1.5}, {"first": "c", "second": "d", "score": score}]
    write(tmp_path / "train.csv", rows)
    declaration = {"kind": "regression", "text": ["first", "second"], "label": "score", "range": [0, 5],
                   "files": {"train": "train.csv", "dev": "train.csv"}}
    expected = rf"score '{score}' outside range \[0, 5\]" if score in ("7", "-0.5") else "expected a (finite )?number"
    with pytest.raises(DataError, match=rf"train\.csv: line 3: column score: {expected}.*\(task mine\)"):
        read_run_data(load_config(config_file(tmp_path, declaration)))


BAD_DECLARATIONS = [  # (declaration changes, message)
    ({"metrics": ["pearson"]}, r"tasks\.mine: metrics: pearson \(pearson\) applies to regression tasks, not classification"),
    ({"primary": "f1"}, r"tasks\.mine: primary: 'f1' is not one of the metrics"),
    ({"metrics": ["bleu"]}, r"tasks\.mine: unknown metric 'bleu'; known: accuracy, f1_binary"),
    ({"loss": "bce", "labels": ["a", "b", "c"]}, r"tasks\.mine: loss: bce needs one output, head linear gives one per class"),
    ({"head": "logit", "loss": "bce", "labels": ["a", "b", "c"]}, r"tasks\.mine: loss: bce needs 2 labels, the task has 3"),
    ({"head": "cosine"}, r"tasks\.mine: head: cosine serves regression tasks, not classification"),
    ({"range": [0, 1]}, r"tasks\.mine: range: applies to regression tasks"),
    ({"kind": "ranking"}, r"tasks\.mine: kind: unknown task kind 'ranking'"),
    ({"files": {"dev": "dev.csv"}}, r"tasks\.mine\.files: files needs a train file"),
    ({"text": ["a", "b", "c"]}, r"tasks\.mine\.text: one column, or a list of two for a pair \(got \['a', 'b', 'c'\]\)"),
    ({"labels": {"pos": 0, "neg": 2}}, r"tasks\.mine: labels: ids must be 0\.\.n-1"),
]


@pytest.mark.parametrize("changes, message", BAD_DECLARATIONS)
def test_bad_declarations_fail_on_load_naming_task_and_field(tmp_path, changes, message):
    declaration = {"kind": "classification", "text": "review", "label": "sentiment", "labels": ["neg", "pos"],
                   "files": {"train": "train.csv", "dev": "dev.csv"}, **changes}
    with pytest.raises(ConfigError, match=message) as info:
        load_config(config_file(tmp_path, declaration))
    assert len(str(info.value).splitlines()) == 1


def test_unknown_task_and_unreadable_files_name_them(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.tasks: unknown task 'other'; declared: \['mine'\]"):
        load_config(config_file(tmp_path, {"kind": "regression", "text": "a", "label": "b",
                                           "files": {"train": "t.csv"}}, tasks=["other"]))
    (tmp_path / "t.parquet").write_text("not parquet")
    (tmp_path / "t.jsonl").write_text('{"a": "x", "b": 1}\n{"a": "y", "b": \n')
    for name, message in (("t.parquet", r"t\.parquet: not a readable Parquet file"),
                          ("t.jsonl", r"t\.jsonl: line 2: not valid JSON"), ("gone.csv", r"gone\.csv: file not found"),
                          ("t.xlsx", r"t\.xlsx: unknown file type '\.xlsx'")):
        path = config_file(tmp_path, {"kind": "regression", "text": "a", "label": "b", "files": {"train": name}})
        with pytest.raises(DataError, match=message):
            read_run_data(load_config(path))


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_bad_declaration_fails_in_the_cli_before_torch(tmp_path, command):
    (tmp_path / "train.csv").write_text("review,sentiment\na fine film,pos\nb,maybe\n")
    declaration = {"kind": "classification", "text": "review", "label": "sentiment", "labels": ["neg", "pos"],
                   "files": {"train": "train.csv", "dev": "train.csv"}}
    if command == "train":
        code, err, probe = run_cli("ticketbert.train", ["--config", str(config_file(tmp_path, declaration))])
    else:
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump({"tasks": {"mine": declaration}, "grid": {"tasks": ["mine"]}}))
        code, err, probe = run_cli("ticketbert.sweep.sweep", ["--config", str(path)])
    assert code == 0 and probe["code"] == 2 and not probe["torch"]
    assert err.splitlines() == [f"error: {tmp_path / 'train.csv'}: line 3: column sentiment: label 'maybe' is not one "
                                f"of the labels ['neg', 'pos'] (task mine)"]
    assert probe["seconds"] < 2.0


# ---- downstream: multitask, distilled recovery, IMP on declared tasks ----

def declared_run(tmp_path: Path, encoder: Path, *overrides: str):
    """A RunConfig over a declared pair-regression task ``scores`` (JSONL, range 0-5)."""
    rows = pair_rows(PAIRS * 4)
    for split in ("train", "dev"):
        write(tmp_path / f"{split}.jsonl", rows)
    return load_config(None, [
        f"model.encoder={encoder}", "data.source=synthetic", "data.synthetic_examples=24", "data.train_eval_examples=8",
        "train.epochs=1", "train.lr=1e-3", "train.progress=false", f"output_dir={tmp_path / 'runs'}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", "prune.calibration_examples=8",
        "tasks.scores.kind=regression", "tasks.scores.text=[first,second]", "tasks.scores.label=score",
        "tasks.scores.range=[0,5]", f"tasks.scores.files.train={tmp_path / 'train.jsonl'}",
        f"tasks.scores.files.dev={tmp_path / 'dev.jsonl'}", *overrides])


def test_multitask_with_a_shipped_and_a_declared_task(tmp_path, tiny_encoder_dir):
    from ticketbert.run import run_training

    config = declared_run(tmp_path, tiny_encoder_dir, "train.tasks=[sst,scores]", "train.batch_size={sst: 8}")
    assert config.train.batch_size_of("scores") == 32  # the default for a task without an entry
    metrics = run_training(config).metrics
    assert {"dev/sst/accuracy", "dev/scores/pearson", "dev/scores/spearman"} <= set(metrics)
    assert metrics["dev/overall"] == pytest.approx((metrics["dev/sst/accuracy"] + metrics["dev/scores/pearson"]) / 2)


@pytest.mark.parametrize("mode", ["distilled recovery", "imp"])
def test_pruning_modes_on_a_declared_task(tmp_path, tiny_encoder_dir, mode):
    from ticketbert.run import run_dir, run_training

    settings = {"distilled recovery": ["prune.method=ffn", "prune.sparsity=0.5", "prune.recovery_epochs=1",
                                       "prune.distill_alpha=0.5"],
                "imp": ["prune.method=magnitude", "prune.sparsity=0.5", "prune.mode=imp", "prune.imp_rounds=2"]}[mode]
    config = declared_run(tmp_path, tiny_encoder_dir, "train.tasks=[scores]", *settings)
    result = run_training(config)
    assert result.metrics["achieved_sparsity"] == pytest.approx(0.5, abs=0.05) and "dev/pearson" in result.metrics
    # the saved model (post-hoc: the shared dense one) rebuilds its head from the stored definition
    saved = result.model_dir or run_dir(config) / "dense" / "model"
    assert load_pruned(saved).task_specs["scores"].codec.range == (0, 5)
    if mode == "distilled recovery":
        assert result.metrics["recovery_teacher_flops"] > 0

import warnings

import pytest
import torch

from conftest import REAL_DATA
from ticketbert.config import DataConfig
from ticketbert.data import (SAMPLE_DIR, DataError, DataLocation, encode, length_grouped_batches, read_task, resolve_source,
                             synthetic_split, collate)
from ticketbert.data.task_rows import read_dataset_cells, read_file_cells, to_examples
from ticketbert.tasks import shipped_definitions, shipped_task

needs_real_data = pytest.mark.skipif(not REAL_DATA.is_dir(), reason="../shared/data not present")


def read_csv_split(task, directory, split):
    """Examples of a shipped task's CS224N file of ``split`` in ``directory``."""
    cells = read_file_cells(task, shipped_definitions()[task], split, DataLocation("csv", directory))
    return to_examples(cells, shipped_task(task).parse_label, task, shipped_task(task).label_column)


@needs_real_data
def test_real_quora_bad_rows_are_skipped_and_named():
    with pytest.warns(UserWarning) as record:
        examples = read_csv_split("para", REAL_DATA, "train")
    message = str(record[0].message)
    assert "quora-train.csv" in message and "skipped 2 malformed row(s)" in message
    assert "line 11624" in message and "line 15428" in message
    assert len(examples) == 16214 - 2
    assert {e.label for e in examples} == {0.0, 1.0}


@needs_real_data
@pytest.mark.parametrize("task, split, rows", [("sst", "train", 8544), ("sst", "dev", 1101), ("para", "dev", 4000),
                                               ("sts", "train", 6040), ("sts", "dev", 863)])
def test_real_files_read_completely(task, split, rows):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        examples = read_csv_split(task, REAL_DATA, split)
    assert len(examples) == rows
    assert all(all(text for text in e.texts) for e in examples)


@needs_real_data
def test_real_first_rows_match_file():
    sst = read_csv_split("sst", REAL_DATA, "dev")
    assert sst[0].texts == ("It 's a lovely film with lovely performances by Buy and Accorsi .",)
    assert sst[0].label == 3.0
    sts = read_csv_split("sts", REAL_DATA, "dev")
    assert sts[1].label == 4.6


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"ids-sst-train.csv: file not found"):
        read_csv_split("sst", tmp_path, "train")


def test_empty_file_names_it(tmp_path):
    write(tmp_path / "ids-sst-train.csv", "")
    with pytest.raises(DataError, match=r"ids-sst-train.csv: empty file"):
        read_csv_split("sst", tmp_path, "train")


def test_missing_column_names_it(tmp_path):
    write(tmp_path / "sts-dev.csv", "\tid\tsentence1\tsentence2\n0\ta\tx\ty\n")
    with pytest.raises(DataError, match=r"sts-dev.csv: task sts: missing column\(s\) \['similarity'\]; columns found: \['', 'id', 'sentence1', 'sentence2'\]"):
        read_csv_split("sts", tmp_path, "dev")


@pytest.mark.parametrize("task, file, header, bad_row", [
    ("sst", "ids-sst-train.csv", "\tid\tsentence\tsentiment", "1\tb\tbad\t7"),
    ("para", "quora-train.csv", "\tid\tsentence1\tsentence2\tis_duplicate", "1\tb\tx\ty\t0.5"),
    ("sts", "sts-train.csv", "\tid\tsentence1\tsentence2\tsimilarity", "1\tb\tx\ty\t5.5"),
    ("sts", "sts-train.csv", "\tid\tsentence1\tsentence2\tsimilarity", "1\tb\tx\ty\thigh"),
])
def test_label_out_of_range_names_file_and_line(tmp_path, task, file, header, bad_row):
    good = {"sst": "0\ta\tfine\t2", "para": "0\ta\tx\ty\t1.0", "sts": "0\ta\tx\ty\t3.2"}[task]
    write(tmp_path / file, f"{header}\n{good}\n{bad_row}\n")
    with pytest.raises(DataError, match=rf"{file}: line 3: "):
        read_csv_split(task, tmp_path, "train")


def test_malformed_rows_skipped_with_count(tmp_path):
    write(tmp_path / "sts-train.csv", "\tid\tsentence1\tsentence2\tsimilarity\n0\ta\tx\ty\t1.0\n"
          "1\tb\t\ty\t2.0\n2\tc\tx\ty\t\n3\td\tx\n")
    with pytest.warns(UserWarning, match=r"skipped 3 malformed row\(s\): line 3 \(empty sentence1\); "
                                         r"line 4 \(empty similarity\); line 5 \(3 fields, expected 5\)"):
        examples = read_csv_split("sts", tmp_path, "train")
    assert len(examples) == 1


def test_source_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("TICKETBERT_DATA_DIR", raising=False)
    assert resolve_source(DataConfig()) == ("sample", SAMPLE_DIR)  # never synthetic unless asked for
    assert resolve_source(DataConfig(source="synthetic")) == ("synthetic", None)
    monkeypatch.setenv("TICKETBERT_DATA_DIR", str(tmp_path))
    assert resolve_source(DataConfig()) == ("csv", tmp_path)
    with pytest.raises(DataError, match="data directory not found"):
        resolve_source(DataConfig(dir=tmp_path / "nope"))
    monkeypatch.delenv("TICKETBERT_DATA_DIR")
    with pytest.raises(DataError, match="neither data.dir nor"):
        resolve_source(DataConfig(source="csv"))


def test_synthetic_is_deterministic_and_labelled():
    for task, labels in (("sst", {0, 1, 2, 3, 4}), ("para", {0, 1}), ("sts", {0, 1, 2, 3, 4, 5})):
        first = synthetic_split(task, "train", 200, seed=3)
        assert first == synthetic_split(task, "train", 200, seed=3)
        assert first != synthetic_split(task, "dev", 200, seed=3)
        assert {int(e.label) for e in first} == labels
        for e in first:
            shipped_task(task).parse_label(str(e.label))


def test_caps_are_seeded_subsamples(monkeypatch):
    monkeypatch.delenv("TICKETBERT_DATA_DIR", raising=False)
    config = DataConfig(synthetic_examples=50, max_train_examples=10, max_dev_examples=5)
    raw = read_task(config, "sst", shipped_definitions()["sst"], seed=0)
    assert len(raw.train) == 10 and len(raw.dev) == 5
    assert raw.train == read_task(config, "sst", shipped_definitions()["sst"], seed=0).train


def test_length_grouped_batches_cover_every_example_once():
    lengths = [int(x) for x in torch.randint(3, 60, (517,))]
    batches = length_grouped_batches(lengths, 16, torch.Generator().manual_seed(0), group_factor=4)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(517))
    # inside a batch lengths are close: sorted within mega-batches
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 15
    again = length_grouped_batches(lengths, 16, torch.Generator().manual_seed(0), group_factor=4)
    assert again == batches
    evaluation = length_grouped_batches(lengths, 16, None)
    assert sorted(i for b in evaluation for i in b) == list(range(517))


def test_encode_and_collate_pad_dynamically(tokenizer):
    examples = synthetic_split("para", "train", 6)
    split = encode(examples, tokenizer, 2, max_length=64)
    batch = collate(split, [0, 3, 5], tokenizer.pad_token_id)
    assert batch.segments == 2 and batch.input_ids.shape[0] == 6
    width = max(len(split.segments[s][i]) for s in range(2) for i in (0, 3, 5))
    assert batch.input_ids.shape[1] == width
    assert batch.attention_mask.sum() == sum(len(split.segments[s][i]) for s in range(2) for i in (0, 3, 5))
    assert torch.equal(batch.labels, split.labels[[0, 3, 5]])
    cross = encode(examples, tokenizer, 1, max_length=64)
    assert len(cross.segments) == 1 and 1 in cross.token_types[0][0]


def test_hub_source_maps_columns_and_skips_bad_rows(monkeypatch):
    """The hub path (online only) with ``datasets.load_dataset`` replaced by an in-memory Dataset."""
    import datasets

    calls = []

    def fake_load_dataset(path, name, split):
        calls.append((path, name, split))
        return datasets.Dataset.from_dict({"sentence1": ["a cat", "", "a dog"], "sentence2": ["a cat", "x", "a pig"],
                                           "label": [4.2, 3.0, 1.0], "idx": [0, 1, 2]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    with pytest.warns(UserWarning, match=r"nyu-mll/glue/stsb \(dev\): skipped 1 malformed row\(s\): row 2 \(empty sentence1\)"):
        cells = read_dataset_cells("sts", shipped_definitions()["sts"], "dev")
    examples = to_examples(cells, shipped_task("sts").parse_label, "sts", "similarity")
    assert calls == [("nyu-mll/glue", "stsb", "validation")]
    assert [e.texts for e in examples] == [("a cat", "a cat"), ("a dog", "a pig")] and examples[0].label == 4.2


def test_swap_pairs_doubles_pair_training_data_only(monkeypatch):
    monkeypatch.delenv("TICKETBERT_DATA_DIR", raising=False)
    plain = read_task(DataConfig(source="synthetic", synthetic_examples=20), "para", shipped_definitions()["para"])
    swapped = read_task(DataConfig(source="synthetic", synthetic_examples=20, swap_pairs=True), "para", shipped_definitions()["para"])
    assert swapped.train[:20] == plain.train and swapped.dev == plain.dev
    assert [e.texts for e in swapped.train[20:]] == [e.texts[::-1] for e in plain.train]
    assert len(read_task(DataConfig(source="synthetic", synthetic_examples=20, swap_pairs=True), "sst", shipped_definitions()["sst"]).train) == 20

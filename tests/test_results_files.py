"""Results that cannot drift: provenance of results files, and results pages generated from them."""

import hashlib
import json

import pytest

from bench import pages
from bench.common import RUNS, results_path
from ticketbert.provenance import collect, data_record, program_name, write_results


@pytest.mark.parametrize("page", pages.PAGES_LIST, ids=lambda p: p.name)
def test_committed_results_page_is_what_its_files_generate(page):
    committed = pages.PAGES / f"{page.name}.md"
    assert committed.read_text() == pages.render(page), f"{committed} is stale: run python -m bench.pages"


def test_check_mode_fails_on_a_stale_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pages, "PAGES", tmp_path)
    assert pages.main(["--check"]) == 1  # no page at all
    for page in pages.PAGES_LIST:
        (tmp_path / f"{page.name}.md").write_text(pages.render(page))
    assert pages.main(["--check"]) == 0
    (tmp_path / "pruning_latency.md").write_text(pages.render(pages.page_named("pruning_latency")).replace("1.32x", "1.40x"))
    assert pages.main(["--check"]) == 1
    assert "pruning_latency.md" in capsys.readouterr().err


def test_page_numbers_follow_their_file():
    record = pages.load("train_throughput")
    fixed = record["results"]["fixed max-length padding"]["tokens_per_s"]
    text = pages.render(pages.page_named("train_throughput"))
    assert f"| fixed max-length padding | fp32 | {fixed:,.0f} | 1.00x |" in text
    assert "425 " not in text and "5,308" not in text  # figures no committed file backs


def test_pages_name_no_folder_of_the_machine_that_ran_the_bench():
    record = {"provenance": {"command": "python -m bench.pruning --model /home/u/runs/sst/model --data-dir /data/cs224n",
                             "data": {"source": "csv", "requested": "/data/cs224n", "fingerprint": "ab12"}}}
    text = "\n".join(pages.provenance_lines("pruning", record))
    assert "--model <model> --data-dir <cs224n>" in text and "data: csv, <cs224n>; fingerprint ab12" in text
    assert "/home/" not in text and "/data" not in text
    uri = pages.without_paths("--tracking-uri sqlite:////home/u/mlruns/mlflow.db --out bench/results/x.json")
    assert uri == "--tracking-uri sqlite:///<mlflow.db> --out bench/results/x.json"


@pytest.mark.parametrize("path", sorted(pages.RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_every_committed_results_file_records_its_provenance(path):
    provenance = json.loads(path.read_text())["provenance"]
    assert {"command", "data", "packages", "hardware", "threads", "created"} <= provenance.keys()
    assert provenance["command"].startswith("python -m ")
    assert {"source", "fingerprint"} <= provenance["data"].keys()


def test_provenance_round_trip_and_fingerprint(tmp_path):
    files = [tmp_path / "b.csv", tmp_path / "a.csv"]
    for i, f in enumerate(files):
        f.write_text(f"id,text\n{i},x\n")
    record = data_record(None, "sample", tmp_path, files, substituted="the bundled sample")
    digests = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert record.files == digests
    expected = hashlib.sha256(";".join(f"{n}={d}" for n, d in sorted(digests.items())).encode()).hexdigest()[:16]
    assert record.fingerprint == expected
    provenance = collect(record, threads=3, argv=[str(pages.ROOT / "bench" / "pruning.py"), "--model", "a dir"])
    assert provenance.command == "python -m bench.pruning --model 'a dir'"
    out = write_results(tmp_path / "r.json", provenance, {"rows": [1]})
    written = json.loads(out.read_text())
    assert written["rows"] == [1]
    assert written["provenance"]["data"]["fingerprint"] == expected
    assert written["provenance"]["data"]["substituted"] == "the bundled sample"
    assert written["provenance"]["threads"] == 3
    (tmp_path / "a.csv").write_text("id,text\n0,y\n")
    assert data_record(None, "sample", tmp_path, files).fingerprint != expected


def test_commands_are_recorded_as_they_were_started():
    assert program_name(str(pages.ROOT / "analysis" / "__main__.py")) == "-m analysis"
    assert program_name(str(pages.ROOT / "bench" / "pages.py")) == "-m bench.pages"
    assert program_name("my script.py") == "'my script.py'"


def test_results_go_to_a_new_file_unless_out_is_given(tmp_path):
    default = results_path("pruning", None)
    assert default.parent == RUNS and default.name.startswith("pruning-") and default.suffix == ".json"
    assert results_path("pruning", tmp_path / "x.json") == tmp_path / "x.json"


def test_a_bench_without_its_data_says_it_reads_the_sample(monkeypatch, capsys):
    from bench.common import bench_config, record_data
    from ticketbert.data import SAMPLE_DIR

    monkeypatch.delenv("TICKETBERT_DATA_DIR", raising=False)
    record = record_data(bench_config(["sst"], None))
    assert record.source == "sample" and "bundled sample" in record.substituted
    assert set(record.files) == {"ids-sst-train.csv", "ids-sst-dev.csv"}
    assert "WARNING: not the data asked for" in capsys.readouterr().out
    asked = record_data(bench_config(["sst", "sts"], SAMPLE_DIR))  # a CS224N-format folder, as asked
    assert asked.source == "csv" and asked.substituted is None and asked.requested == str(SAMPLE_DIR)
    assert asked.files["ids-sst-train.csv"] == record.files["ids-sst-train.csv"] and len(asked.files) == 4
    assert "WARNING" not in capsys.readouterr().out

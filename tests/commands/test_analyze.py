"""``backline analyze``: the main job end to end, exit codes, evidence store, formats."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from backline.cli import app
from backline.report import write_reports  # noqa: F401  (the renderers the command uses)
from backline.testing import project_root

runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
SCHEMA = json.loads((project_root() / "src/backline/report/report.schema.json").read_text())
LOG = (b"2024-05-01T10:00:00Z INFO service starting\n"
       b"2024-05-01T10:00:01Z ERROR connection to db-01:5432 refused\n"
       b"2024-05-01T10:00:02Z ERROR connection to db-01:5432 refused\n")


def _bundle(tmp_path: Path, corpus: Path) -> Path:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("net/refused.pcapng", (corpus / "net/cs_tcp_refuseconnection.pcapng").read_bytes())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("logs/app.log", LOG)
        z.writestr("inner.zip", inner.getvalue())
        z.writestr(zipfile.ZipInfo("../outside.txt"), b"escape\n")
        z.writestr("notes/empty.log", b"")
    p = tmp_path / "bundle.zip"
    p.write_bytes(buf.getvalue())
    return p


def test_json_report_of_a_nested_bundle(tmp_path, corpus):
    res = runner.invoke(app, ["analyze", str(_bundle(tmp_path, corpus)), "--format", "json", "-q"])
    assert res.exit_code == 0, res.stderr if hasattr(res, "stderr") else res.output
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, SCHEMA)
    kinds = {a["path"]: a["kind"] for a in doc["artifacts"]}
    assert kinds["bundle.zip!/logs/app.log"] == "text_log"
    assert kinds["bundle.zip!/inner.zip!/net/refused.pcapng"] == "capture"
    assert any("outside.txt" in r["path"] for r in doc["refusals"])
    # every artifact has a status: ran, or skipped with a reason
    for art in doc["artifacts"]:
        assert art["runs"] or not art["known"], art["path"]   # unknown = case-wide findings section
    empty = next(a for a in doc["artifacts"] if a["path"].endswith("empty.log"))
    assert empty["problems"] and all(r["status"] == "skipped" for r in empty["runs"])


def test_out_dir_writes_all_formats(tmp_path, corpus):
    out = tmp_path / "report"
    res = runner.invoke(app, ["analyze", str(_bundle(tmp_path, corpus)), "--out", str(out), "-q"])
    assert res.exit_code == 0
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.html", "report.md"}
    html = (out / "report.html").read_text()
    assert "bundle.zip!/logs/app.log" in html
    jsonschema.validate(json.loads((out / "report.json").read_text()), SCHEMA)


def test_exit_codes(tmp_path, corpus):
    bundle = _bundle(tmp_path, corpus)
    missing = runner.invoke(app, ["analyze", str(tmp_path / "nope.zip")])
    assert missing.exit_code == 2
    assert runner.invoke(app, ["analyze", str(bundle), "--tz", "Mars/Olympus"]).exit_code == 2
    assert runner.invoke(app, ["analyze", str(bundle), "--format", "pdf"]).exit_code == 2
    assert runner.invoke(app, ["analyze", str(bundle), "--fail-on", "sometimes"]).exit_code == 2
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / "zero.log").write_bytes(b"")
    assert runner.invoke(app, ["analyze", str(empty_dir), "-q"]).exit_code == 2
    res = runner.invoke(app, ["analyze", str(bundle), "--format", "json", "-q", "--fail-on", "info"])
    doc = json.loads(res.stdout)
    assert res.exit_code == (1 if doc["findings"] else 0)
    res = runner.invoke(app, ["analyze", str(bundle), "--format", "json", "-q", "--fail-on", "critical"])
    crit = [f for f in json.loads(res.stdout)["findings"] if f["severity"] == "critical"]
    assert res.exit_code == (1 if crit else 0)


def test_same_file_is_stored_once(tmp_path, corpus):
    bundle = _bundle(tmp_path, corpus)
    blobs = Path(os.environ["BACKLINE_HOME"]) / "blobs" / "sha256"

    def count() -> int:
        return sum(1 for p in blobs.rglob("*") if p.is_file())

    assert runner.invoke(app, ["analyze", str(bundle), "-q"]).exit_code == 0
    first = count()
    assert first >= 2
    assert runner.invoke(app, ["analyze", str(bundle), "-q"]).exit_code == 0
    assert count() == first
    (tmp_path / "copy.log").write_bytes(LOG)          # same bytes under another name
    assert runner.invoke(app, ["analyze", str(tmp_path / "copy.log"), "-q"]).exit_code == 0
    assert count() == first


@pytest.mark.slow
def test_whole_corpus_is_classified_and_every_artifact_has_a_status(corpus):
    """The issue's acceptance run: ``backline analyze ../shared/corpus --format json``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "classify_truth", project_root() / "tests/evidence/test_classify.py")
    truth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(truth)        # the truth table written from SOURCES.md

    res = runner.invoke(app, ["analyze", str(corpus), "--format", "json", "-q", "--no-store", "--jobs", "2"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, SCHEMA)
    arts = [a for a in doc["artifacts"] if a["known"]]
    assert len(arts) == sum(1 for p in corpus.rglob("*") if p.is_file())
    wrong = []
    for art in arts:
        rel = art["path"].split("/", 1)[1]        # drop the leading "corpus/"
        kind, fmt = truth._truth(rel)
        if art["kind"] != kind.value:
            wrong.append((rel, art["kind"], kind.value))
        assert art["runs"], rel
    assert not wrong
    failed = [(r["analyzer"], a["path"], r["reason"]) for a in doc["artifacts"] for r in a["runs"]
              if r["status"] == "failed"]
    # the deliberately malformed dumps may fail with a clear reason; nothing else may
    assert all("invalid-" in p for _, p, _ in failed), failed


def test_jobs_2_reads_one_large_log_in_byte_ranges_with_the_same_report(tmp_path, monkeypatch):
    from tests.analyzers.logs.test_ranges import make_log

    log = tmp_path / "server.log"
    make_log(log, n=5000)
    monkeypatch.setenv("BACKLINE_LOGS_SPLIT_MIN_BYTES", "100000")     # the ~0.5 MB log is split
    docs = {}
    for jobs in ("1", "2"):
        res = runner.invoke(app, ["analyze", str(log), "--format", "json", "-q", "--no-store", "--no-kb-pack",
                                  "--jobs", jobs])
        assert res.exit_code in (0, 1), res.output
        docs[jobs] = json.loads(res.stdout)
    runs = [r for a in docs["2"]["artifacts"] for r in a["runs"]]
    assert not any("one pass" in w for r in runs for w in r.get("warnings", [])), runs

    def view(doc):
        facts = [f for f in doc["facts"] if f["name"] != "log.parquet"]
        return doc["findings"], facts, doc["events"]

    assert view(docs["1"]) == view(docs["2"])
    assert len(docs["1"]["findings"]) > 3


def test_an_unreachable_scheduler_exits_2_naming_it(tmp_path):
    from backline.testing import free_port

    port = free_port()
    log = tmp_path / "a.log"
    log.write_bytes(LOG)
    res = runner.invoke(app, ["analyze", str(log), "-q", "--no-store", "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert res.exit_code == 2
    out = res.output + (res.stderr if hasattr(res, "stderr") else "")
    assert f"tcp://127.0.0.1:{port}" in out and "Traceback" not in out


def test_the_results_held_to_the_end_are_kept_out_of_the_garbage_collectors_walks(tmp_path):
    """The command keeps every task's result until it exits: each result, as it arrives, is
    moved out of the cyclic collector's full walks (gc.freeze); the report is unchanged."""
    import gc

    log = tmp_path / "a.log"
    log.write_bytes(LOG)
    gc.unfreeze()
    try:
        res = runner.invoke(app, ["analyze", str(log), "-q", "--no-store", "--format", "json"])
        assert res.exit_code == 0, res.output
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    doc = json.loads(res.stdout)
    assert doc["events"] and doc["summary"]["runs"]["by_status"]["ok"] >= 1

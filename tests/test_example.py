"""The example case (made by scripts/make_example.py from real failing programs) tells its story.

Expectations are read from the evidence itself (the log lines, the access log), not typed in:
the port the log says was refused is the one the capture shows refused, the number of HTTP 500
lines in the access log is the number of 500 responses in the capture, and so on.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from backline.model import RunStatus
from backline.pipeline import AnalyzeOptions, analyze
from backline.testing import project_root

CASE = project_root() / "examples" / "case-001"


@pytest.fixture(scope="module")
def result():
    return analyze([CASE], AnalyzeOptions(jobs=1))


def _member(name: str) -> str:
    return zipfile.ZipFile(CASE / "bundle.zip").read(name).decode()


def _by_code(result, code):
    return [f for f in result.findings if f.code == code]


def test_every_artifact_is_read(result):
    kinds = {a.path.rsplit("/", 1)[-1]: a.kind.value for a in result.artifacts}
    assert kinds["orders-service.log"] == "text_log"
    assert kinds["orders-lo.pcap"] == "capture"
    assert kinds["core.stockcalc"] == "elf_core"
    assert kinds["stockcalc"] == "executable"
    assert kinds["orders-crash.txt"] == "crash_trace"
    assert not [r for r in result.runs if r.status is RunStatus.FAILED]


def test_refused_database_port_in_log_and_capture_agree(result):
    log = _member("logs/orders-service.log")
    ports = set(re.findall(r"connection to reservation database [\d.]+:(\d+) failed", log))
    assert len(ports) == 1
    (refused,) = _by_code(result, "NET.TCP.RST_TO_SYN")
    assert f":{ports.pop()}" in refused.title
    assert all(r.locator.startswith("packet:") for r in refused.evidence)


def test_http_500s_in_access_log_and_capture_agree(result):
    access = _member("logs/inventory-access.log")
    n500 = len(re.findall(r'" 500 ', access))
    assert n500 >= 1
    (http5xx,) = _by_code(result, "NET.HTTP.5XX")
    assert http5xx.count == n500


def test_native_crash_is_blamed_on_the_null_dereference(result):
    (crash,) = _by_code(result, "DUMP.CRASH")
    assert "SIGSEGV" in crash.title and "reserve" in crash.title
    assert crash.data.get("problem_class", "").startswith("NULL_POINTER")
    assert crash.evidence[0].locator == "thread:0/frame:0"


def test_python_exception_found_in_crash_file_and_in_log(result):
    found = {Path(f.artifact).name: f for f in _by_code(result, "DUMP.PYTHON_EXCEPTION")}
    assert {"orders-crash.txt", "orders-service.log"} <= set(found)
    assert all("RuntimeError" in f.title and "ConnectionRefusedError" in f.title for f in found.values())


def test_the_incident_is_correlated_across_evidence(result):
    incidents = _by_code(result, "CASE.CORRELATED_INCIDENT")
    assert incidents
    arts = {Path(r.artifact).name for r in incidents[0].evidence}
    assert {"orders-service.log", "orders-lo.pcap"} <= arts


def test_the_slow_backend_answer_is_pointed_at(result):
    log = _member("logs/orders-service.log")
    slow_sku = re.search(r"WARNING .* stock lookup (SKU-\d+) took (\d+) ms", log)
    assert slow_sku, "the example's log records one slow lookup"
    (slow,) = _by_code(result, "NET.HTTP.SLOW")
    assert slow.evidence, "a slow-response finding must point at the slow answer"
    assert slow_sku.group(1) in slow.evidence[0].excerpt
    assert slow.evidence[0].locator.startswith("packet:")


def test_the_diagnosis_opens_with_the_refused_database_port_and_its_chain(result):
    """The example's root cause: nothing listens on the database port the log names.  The
    report opens with it, and its chain reaches the log's connection errors and the exception."""
    from rich.console import Console
    import io

    from backline.report import build_report, render_text

    log = _member("logs/orders-service.log")
    port = re.search(r"connection to reservation database [\d.]+:(\d+) failed", log).group(1)
    d = result.diagnosis
    top = d.top
    assert top.code == "NET.TCP.RST_TO_SYN" and top.finding == 0
    assert result.findings[0].code == "NET.TCP.RST_TO_SYN"
    assert f"Nothing listening on 127.0.0.1:{port}" in top.title
    assert top.confidence > 0.5
    effects = {result.findings[link.effect].code for link in top.chain}
    assert {"LOG.ERROR_TEMPLATE", "DUMP.PYTHON_EXCEPTION"} <= effects
    first = top.chain[0]
    assert ("endpoint", f"127.0.0.1:{port}") in first.joined_on
    assert result.findings[first.effect].artifact.endswith("orders-service.log")
    # the unrelated native crash is not blamed
    assert result.findings[d.causes[1].finding].code != "NET.TCP.RST_TO_SYN"
    assert all(c.confidence < top.confidence for c in d.causes[1:])
    out = io.StringIO()
    render_text(build_report(result), Console(file=out, width=120))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Probable root cause") and f"127.0.0.1:{port}" in lines[1]
    # its share of the analysis time is measured by benchmarks/diagnosis_bench.py (docs/diagnosis.md);
    # here only that it is reported
    assert d.duration_s > 0

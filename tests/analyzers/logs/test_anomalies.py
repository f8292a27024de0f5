"""Findings quality on real logs: error templates count only error records, and
"logging stops after an error" needs an error that ends a program.

Oracles: the example case's logs (examples/case-001, made by real programs:
Python ``http.server`` answering 200 and 500, an orders service that dies on an
unhandled exception), loghub Apache (its ``[error]`` / ``[notice]`` level
field), and access-log lines written here with known status codes.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs.anomalies import stop_reason
from backline.analyzers.logs.records import read_records
from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.text_analyzer import analyze_text_log
from backline.model import Event, Finding

REPO = Path(__file__).resolve().parents[3]
BUNDLE = REPO / "examples" / "case-001" / "bundle.zip"


def _example(tmp_path: Path, name: str) -> Path:
    p = tmp_path / name
    p.write_bytes(zipfile.ZipFile(BUNDLE).read(f"logs/{name}"))
    return p


def _findings(out, code, kind=None):
    return [o for o in out if isinstance(o, Finding) and o.code == code
            and (kind is None or o.data.get("kind") == kind)]


def _lines(p: Path) -> list[str]:
    return p.read_text(encoding="utf-8", errors="replace").splitlines()


def _status(line: str) -> int:
    return int(re.search(r'" (\d{3}) ', line).group(1))


def test_access_log_error_template_counts_only_5xx(tmp_path):
    p = _example(tmp_path, "inventory-access.log")
    lines = _lines(p)
    errors = [i for i, t in enumerate(lines, 1) if _status(t) >= 500]
    assert len(errors) == 2 and len(lines) == 8              # the example: 6 answered 200, 2 answered 500
    out = list(analyze_text_log(p, "inventory-access.log", AnalysisContext()))
    [f] = _findings(out, "LOG.ERROR_TEMPLATE")
    assert f.count == len(errors) and f.title.startswith(f"{len(errors)}x ")
    assert [e.locator for e in f.evidence] == [f"line:{n}" for n in errors]
    assert f.data["template"] == '"GET <*> HTTP/1.1" <*> -'  # the template itself stays
    assert f.data["template_records"] == len(lines) and f.data["error_records"] == len(errors)
    assert f.first_seen is not None and f.data["first_line"] == errors[0]


def test_access_log_status_classes(tmp_path):
    """5xx = error, 4xx = warning, others info - for any access log, by its status codes."""
    statuses = [200, 404, 200, 503, 301, 404, 500, 200, 403, 502, 200, 200]
    p = tmp_path / "access.log"
    p.write_text("".join(f'10.0.0.{i} - - [10/Oct/2000:13:55:{i:02d} -0700] "GET /a/{i} HTTP/1.0" {s} 2326\n'
                         for i, s in enumerate(statuses)))
    out = list(analyze_text_log(p, "access.log", AnalysisContext()))
    errs = _findings(out, "LOG.ERROR_TEMPLATE")
    want = [i for i, s in enumerate(statuses, 1) if s >= 500]
    assert sum(f.count for f in errs) == len(want)
    assert sorted(int(e.locator[5:]) for f in errs for e in f.evidence) == want
    kinds = {o.ref.locator: o.kind for o in out if isinstance(o, Event)}
    assert kinds == {f"line:{i}": ("log.error" if s >= 500 else "log.warning")
                     for i, s in enumerate(statuses, 1) if s >= 400}


def test_apache_error_templates_count_error_records(corpus):
    p = corpus / "logs" / "loghub-2k" / "Apache" / "Apache_2k.log"
    lines = _lines(p)
    level = {i: re.match(r"\[[^\]]*\] \[(\w+)\]", t).group(1) for i, t in enumerate(lines, 1)}
    out = list(analyze_text_log(p, "Apache_2k.log", AnalysisContext()))
    errs = _findings(out, "LOG.ERROR_TEMPLATE")
    assert errs
    # every error record is in exactly one error template (fewer than 10 error templates here)
    assert sum(f.count for f in errs) == sum(1 for v in level.values() if v == "error")
    for f in errs:
        assert all(level[int(e.locator[5:])] == "error" for e in f.evidence)
        assert f.data["error_records"] <= f.data["template_records"]


def test_access_log_that_ends_on_a_500_is_not_a_stop(tmp_path):
    p = _example(tmp_path, "inventory-access.log")
    assert _status(_lines(p)[-1]) >= 500                      # the file's last record is an error
    out = list(analyze_text_log(p, "inventory-access.log", AnalysisContext()))
    assert _findings(out, "LOG.SILENCE", "stops") == []


def test_apache_sample_that_ends_on_an_error_is_not_a_stop(corpus):
    p = corpus / "logs" / "loghub-2k" / "Apache" / "Apache_2k.log"
    assert "[error]" in _lines(p)[-1]
    out = list(analyze_text_log(p, "Apache_2k.log", AnalysisContext()))
    assert _findings(out, "LOG.SILENCE", "stops") == []


def test_service_that_dies_on_an_exception_stops(tmp_path):
    """orders-service.log: an ERROR with a traceback, then one INFO line 4 ms later."""
    p = _example(tmp_path, "orders-service.log")
    recs = list(read_records(open_log(p)))
    err = [r for r in recs if r.level == "ERROR"][-1]
    assert recs.index(err) == len(recs) - 2
    out = list(analyze_text_log(p, "orders-service.log", AnalysisContext()))
    [f] = _findings(out, "LOG.SILENCE", "stops")
    assert f.evidence[0].locator == f"line:{err.line}"
    assert f.evidence[-1].locator == f"line:{recs[-1].line}"
    assert f.data["reason"] == "stack_trace"


@pytest.mark.parametrize("level,message,reason", [
    ("FATAL", "disk gone", "fatal"),
    ("CRITICAL", "cannot continue", "fatal"),
    ("ERROR", "worker crashed, exiting", "wording"),
    ("ERROR", "request failed: timeout", ""),
    ("ERROR", '"GET /x HTTP/1.1" 500 -', ""),
    ("ERROR", "child process exited with code 1", ""),      # another process ended, not this one
    ("ERROR", "upstream stopped responding", ""),
    ("ERROR", "uncaught exception in handler", "wording"),
])
def test_stop_reason(tmp_path, level, message, reason):
    p = tmp_path / "a.log"
    p.write_text(f"2024-01-02 03:04:05,000 {level} [main] app.X: {message}\n")
    [rec] = read_records(open_log(p))
    assert stop_reason(rec) == reason

"""Stack traces inside logs become crash findings (logs.text + the dumps text parser).

Oracles: real traces from the corpus (made by OpenJDK, CPython and Mono, see
dumps SOURCES.md) embedded in log lines written here; a log written now by the
running CPython's ``logging`` module; and the example case's orders-service.log.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from backline.analyzers.base import AnalysisContext
from backline.analyzers.dumps.text import parse_text_crash_text
from backline.analyzers.dumps.text.analyzer import describe
from backline.analyzers.logs import crashes as crashes_mod
from backline.analyzers.logs.text_analyzer import LogsTextAnalyzer, analyze_text_log
from backline.model import Finding, Severity

T0 = datetime(2025, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
ART = "bundle!/app.log"
REPO = Path(__file__).resolve().parents[3]


def _crash_findings(out):
    return [o for o in out if isinstance(o, Finding) and o.code.startswith("DUMP.")]


def _lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


@pytest.fixture(scope="module")
def gen(corpus) -> Path:
    return corpus / "dumps/text/gen"


@pytest.fixture(scope="module")
def mixed(gen, tmp_path_factory):
    """A log4j-style log with real Java, Python and .NET traces after error lines."""
    traces = {name: (gen / name).read_text(encoding="utf-8").strip("\n").split("\n")
              for name in ("java_caused_by.txt", "py_traceback_explicit.txt",
                           "py_traceback_implicit.txt", "dotnet_mono_inner_exception.txt")}
    plan = ["java_caused_by.txt", "py_traceback_explicit.txt", "java_caused_by.txt",
            "dotnet_mono_inner_exception.txt", "py_traceback_implicit.txt", "java_caused_by.txt"]
    lines: list[str] = []
    starts: dict[str, list[tuple[int, datetime]]] = {}   # trace file -> (line of its head, ts)
    t = T0
    for i, name in enumerate(plan):
        for k in range(20):
            t += timedelta(seconds=1)
            lines.append(f"{t:%Y-%m-%d %H:%M:%S},{k:03d} INFO  [worker-{k % 3}] svc.Loop - tick {i * 20 + k} ok")
        t += timedelta(seconds=1)
        lines.append(f"{t:%Y-%m-%d %H:%M:%S},500 ERROR [main] svc.Boot - request failed, see trace")
        starts.setdefault(name, []).append((len(lines) + 1, t.replace(microsecond=500_000)))
        lines.extend(traces[name])
    lines.append(f"{t:%Y-%m-%d %H:%M:%S},900 INFO  [main] svc.Boot - done")
    d = tmp_path_factory.mktemp("crashlog")
    p = d / "app.log"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ctx = AnalysisContext()
    out = list(analyze_text_log(p, ART, ctx))
    return p, starts, out, ctx


def test_each_trace_kind_becomes_its_crash_finding(mixed, gen):
    p, starts, out, _ = mixed
    found = _crash_findings(out)
    by_type = {f.data["exception_type"]: f for f in found}
    assert set(by_type) == {"java.io.UncheckedIOException", "ValueError", "AttributeError",
                            "System.InvalidOperationException"}
    assert by_type["java.io.UncheckedIOException"].code == "DUMP.JAVA_EXCEPTION"
    assert by_type["ValueError"].code == "DUMP.PYTHON_EXCEPTION"
    assert by_type["AttributeError"].code == "DUMP.PYTHON_EXCEPTION"
    assert by_type["System.InvalidOperationException"].code == "DUMP.DOTNET_EXCEPTION"
    assert all(f.severity == Severity.HIGH and f.analyzer == "logs.text" and f.artifact == ART for f in found)
    # the same reading as the dumps area gives the trace file on its own
    for name, typ in (("java_caused_by.txt", "java.io.UncheckedIOException"),
                      ("py_traceback_explicit.txt", "ValueError"),
                      ("py_traceback_implicit.txt", "AttributeError"),
                      ("dotnet_mono_inner_exception.txt", "System.InvalidOperationException")):
        [alone] = parse_text_crash_text((gen / name).read_text(encoding="utf-8"))
        f = by_type[typ]
        assert f.title == describe(alone)
        assert f.detail == alone.signature and f.data["signature"] == alone.signature
        assert f.data["causes"] == [c.type for c in alone.exception.causes]


def test_grouped_by_signature_with_count_and_first_last_seen(mixed):
    p, starts, out, _ = mixed
    java = next(f for f in _crash_findings(out) if f.code == "DUMP.JAVA_EXCEPTION")
    occ = starts["java_caused_by.txt"]
    assert java.count == java.data["count"] == 3
    assert java.first_seen == occ[0][1] and java.last_seen == occ[-1][1]
    assert [r.locator for r in java.evidence] == [f"line:{n}" for n, _ in occ]
    text = _lines_of(p)
    for ref in java.evidence:
        n = int(ref.locator.split(":")[1])
        assert text[n - 1].startswith('Exception in thread "main" java.io.UncheckedIOException')
        assert ref.excerpt == "java.io.UncheckedIOException: service failed to start"
    assert java.data["first_line"] == occ[0][0] and java.data["last_line"] == occ[-1][0]
    # most frequent first
    assert _crash_findings(out)[0] is java


def test_python_trace_points_at_traceback_line(mixed):
    p, starts, out, _ = mixed
    text = _lines_of(p)
    py = [f for f in _crash_findings(out) if f.code == "DUMP.PYTHON_EXCEPTION"]
    assert len(py) == 2 and all(f.count == 1 for f in py)
    for f in py:
        n = int(f.evidence[0].locator.split(":")[1])
        assert text[n - 1] == "Traceback (most recent call last):"
        assert f.first_seen == f.last_seen is not None
    val = next(f for f in py if f.data["exception_type"] == "ValueError")
    assert val.evidence[0].excerpt == "ValueError: settings file is not valid JSON"
    assert val.data["causes"] == ["json.decoder.JSONDecodeError"]


def test_dotnet_trace_line_in_log_matches_its_line_in_the_trace(mixed, gen):
    p, starts, out, _ = mixed
    [alone] = parse_text_crash_text((gen / "dotnet_mono_inner_exception.txt").read_text(encoding="utf-8"))
    # the fixture dropped the trace file's leading blank line
    [(head, _)] = starts["dotnet_mono_inner_exception.txt"]
    net = next(f for f in _crash_findings(out) if f.code == "DUMP.DOTNET_EXCEPTION")
    assert net.evidence[0].locator == f"line:{head + alone.extra['line'] - 2}"
    assert _lines_of(p)[head + alone.extra["line"] - 3].startswith("System.InvalidOperationException:")


def test_stack_trace_facts_still_emitted(mixed):
    from backline.model import Fact
    _, starts, out, _ = mixed
    facts = [o.value for o in out if isinstance(o, Fact) and o.name == "log.stack_trace"]
    assert sorted(f["kind"] for f in facts) == ["dotnet", "java", "java", "java", "python", "python"]


def test_runtime_python_logging_log(tmp_path):
    """A log written now by CPython's logging.exception: the runtime is the oracle."""
    log = tmp_path / "worker.log"
    script = (
        "import logging, sys\n"
        "logging.basicConfig(filename=sys.argv[1], level=logging.INFO,\n"
        "    format='%(asctime)s %(levelname)s [%(threadName)s] %(name)s - %(message)s')\n"
        "log = logging.getLogger('jobs')\n"
        "def load(cfg):\n"
        "    return cfg['port']\n"
        "def start(job):\n"
        "    try:\n"
        "        load({})\n"
        "    except KeyError as e:\n"
        "        raise RuntimeError(f'job {job} cannot start') from e\n"
        "for job in range(40):\n"
        "    log.info('job %d queued', job)\n"
        "    if job % 10 == 3:\n"
        "        try:\n"
        "            start(job)\n"
        "        except Exception:\n"
        "            log.exception('job %d failed', job)\n"
        "    if job == 25:\n"
        "        try:\n"
        "            1 / 0\n"
        "        except ZeroDivisionError:\n"
        "            log.exception('stats failed')\n")
    subprocess.run([sys.executable, "-c", script, str(log)], check=True, timeout=60)
    text = _lines_of(log)
    tb_lines = [i + 1 for i, ln in enumerate(text) if ln == "Traceback (most recent call last):"]
    out = list(analyze_text_log(log, "worker.log", AnalysisContext()))
    found = {f.data["exception_type"]: f for f in _crash_findings(out)}
    assert set(found) == {"RuntimeError", "ZeroDivisionError"}
    rt, zd = found["RuntimeError"], found["ZeroDivisionError"]
    assert rt.count == 4 and zd.count == 1
    assert rt.data["causes"] == ["KeyError"]
    # chained traces print two "Traceback" headers; the finding points at the first of each
    rt_lines = [int(r.locator[5:]) for r in rt.evidence]
    assert set(rt_lines) <= set(tb_lines) and rt_lines == sorted(rt_lines)
    assert rt.data["first_line"] == tb_lines[0]
    assert rt.evidence[0].excerpt == "RuntimeError: job 3 cannot start"
    assert zd.evidence[0].excerpt == "ZeroDivisionError: division by zero"
    assert rt.first_seen is not None and rt.first_seen <= zd.first_seen <= rt.last_seen
    assert rt.data["last_line"] > zd.data["first_line"] > rt.data["first_line"]


def test_example_case_orders_service_log(tmp_path):
    p = tmp_path / "orders-service.log"
    p.write_bytes(zipfile.ZipFile(REPO / "examples/case-001/bundle.zip").read("logs/orders-service.log"))
    text = _lines_of(p)
    first_tb = text.index("Traceback (most recent call last):") + 1
    [f] = _crash_findings(analyze_text_log(p, "bundle.zip!/logs/orders-service.log", AnalysisContext()))
    assert f.code == "DUMP.PYTHON_EXCEPTION"
    assert f.evidence[0].locator == f"line:{first_tb}"
    assert f.evidence[0].excerpt.startswith("RuntimeError: cannot reserve stock for order 88123")
    assert f.data["causes"] == ["ConnectionRefusedError"]
    assert "root cause ConnectionRefusedError" in f.title
    head = text[first_tb - 2]                     # the log record the traceback belongs to
    assert f.first_seen == datetime.strptime(head[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=timezone.utc)


def test_log_without_traces_has_no_crash_findings(tmp_path):
    p = tmp_path / "plain.log"
    p.write_text("".join(f"2025-01-01 00:00:{i:02d},000 ERROR [m] x - failed {i}\n" for i in range(50)))
    assert _crash_findings(analyze_text_log(p, "plain.log", AnalysisContext())) == []


def test_parse_cap_warns(gen, tmp_path, monkeypatch):
    monkeypatch.setattr(crashes_mod, "MAX_PARSED", 2)
    trace = (gen / "java_caused_by.txt").read_text(encoding="utf-8").strip("\n")
    p = tmp_path / "many.log"
    # "unhandled error" heads: no caching by the trace lines, every record is parsed
    p.write_text("".join(f"2025-01-01 00:00:{i:02d},000 ERROR [m] x - unhandled error\n{trace}\n"
                         for i in range(5)))
    ctx = AnalysisContext()
    [f] = _crash_findings(analyze_text_log(p, "many.log", ctx))
    assert f.count == 2
    assert any("3 stack trace(s) past the first 2 not parsed" in w for w in ctx.warnings)


def test_analyzer_declares_crash_codes():
    assert {"DUMP.JAVA_EXCEPTION", "DUMP.PYTHON_EXCEPTION", "DUMP.DOTNET_EXCEPTION"} <= LogsTextAnalyzer.emits


def test_trace_parser_failure_is_a_warning_not_a_crash(gen, tmp_path, monkeypatch):
    def broken(text, source=""):
        raise ValueError("parser bug")
    monkeypatch.setattr(crashes_mod, "parse_text_crash_text", broken)
    trace = (gen / "java_caused_by.txt").read_text(encoding="utf-8").strip("\n")
    p = tmp_path / "bad.log"
    p.write_text(f"2025-01-01 00:00:00,000 ERROR [m] x - boom\n{trace}\n"
                 "2025-01-01 00:00:01,000 INFO [m] x - ok\n")
    ctx = AnalysisContext()
    out = list(analyze_text_log(p, "bad.log", ctx))
    assert _crash_findings(out) == []
    assert any(isinstance(o, Finding) and o.code == "LOG.FIRST_ERROR" for o in out)
    assert any("1 stack trace(s) could not be parsed (ValueError: parser bug)" in w for w in ctx.warnings)


def test_parsed_text_is_bounded(gen, tmp_path, monkeypatch):
    trace = (gen / "py_traceback_implicit.txt").read_text(encoding="utf-8").strip("\n")
    monkeypatch.setattr(crashes_mod, "MAX_PARSED_CHARS", 2 * len(trace))
    p = tmp_path / "dense.log"
    p.write_text("".join(f"2025-01-01 00:00:{i:02d},000 ERROR [m] x - fatal\n{trace}\n" for i in range(6)))
    ctx = AnalysisContext()
    [f] = _crash_findings(analyze_text_log(p, "dense.log", ctx))
    assert f.count == 2          # two record texts (head line + trace) pass the character budget
    assert any("4 stack trace(s) past the first 2 not parsed" in w for w in ctx.warnings)


def test_same_trace_under_other_head_lines_is_parsed_once(gen, tmp_path, monkeypatch):
    calls = []
    real = crashes_mod.parse_text_crash_text

    def counting(text, source=""):
        calls.append(text)
        return real(text, source)
    monkeypatch.setattr(crashes_mod, "parse_text_crash_text", counting)
    java = (gen / "java_caused_by.txt").read_text(encoding="utf-8").strip("\n")
    lines: list[str] = []
    heads = []
    for i in range(30):
        lines.append(f"2025-01-01 00:{i:02d}:00,000 ERROR [m] x - request {i} failed")
        heads.append(len(lines) + 1)
        lines.extend(java.split("\n"))
    # the exception in the head line itself (frames follow): the head takes part, no rest cache
    lines.append("2025-01-01 01:00:00,000 ERROR [m] x - failed: java.lang.IllegalStateException: bad state")
    lines.append("\tat a.B.run(B.java:10)")
    p = tmp_path / "repeat.log"
    p.write_text("\n".join(lines) + "\n")
    found = {f.data["exception_type"]: f for f in _crash_findings(analyze_text_log(p, "r.log", AnalysisContext()))}
    assert found["java.io.UncheckedIOException"].count == 30
    assert found["java.io.UncheckedIOException"].data["last_line"] == heads[-1]
    assert found["java.lang.IllegalStateException"].evidence[0].locator == f"line:{len(lines) - 1}"
    assert len(calls) == 2


def test_each_signature_has_a_timeline_event_at_its_first_occurrence(mixed):
    from backline.model import Event, TsQuality
    p, starts, out, _ = mixed
    found = _crash_findings(out)
    events = [o for o in out if isinstance(o, Event) and o.kind.startswith("dump.")]
    assert len(events) == len(found) == 4
    by_loc = {e.ref.locator: e for e in events}
    for f in found:
        e = by_loc[f"line:{f.data['first_line']}"]
        assert e.kind == "dump.exception" and e.severity == f.severity and e.summary == f.title
        assert e.ref == f.evidence[0] and e.artifact == ART and e.analyzer == "logs.text"
        assert e.ts == f.first_seen and e.ts_quality is TsQuality.EXACT
    java_first_line, java_first_ts = starts["java_caused_by.txt"][0]
    assert by_loc[f"line:{java_first_line}"].ts == java_first_ts


def test_crash_event_correlates_with_other_evidence(tmp_path):
    """The example's orders service dies on a traceback while the backend answers 500:
    the crash event and the access log's error events form one incident."""
    from backline.knowledge.correlate import correlate
    from backline.model import Event
    bundle = zipfile.ZipFile(REPO / "examples/case-001/bundle.zip")
    svc, acc = tmp_path / "orders-service.log", tmp_path / "inventory-access.log"
    svc.write_bytes(bundle.read("logs/orders-service.log"))
    acc.write_bytes(bundle.read("logs/inventory-access.log"))
    svc_out = list(analyze_text_log(svc, "orders-service.log", AnalysisContext()))
    [crash] = [o for o in svc_out if isinstance(o, Event) and o.kind == "dump.exception"]
    [f] = _crash_findings(svc_out)
    assert crash.ref.locator == f.evidence[0].locator == f"line:{_lines_of(svc).index('Traceback (most recent call last):') + 1}"
    acc_events = [o for o in analyze_text_log(acc, "inventory-access.log", AnalysisContext())
                  if isinstance(o, Event)]
    [incident] = correlate([crash, *acc_events])
    assert incident.data["event_kinds"]["dump.exception"] == 1
    assert set(incident.data["artifacts"]) == {"orders-service.log", "inventory-access.log"}
    assert crash.ref in incident.evidence

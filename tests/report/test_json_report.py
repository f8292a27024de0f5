from __future__ import annotations

import copy
import json
import re

import jsonschema
import pytest

from backline.model import SCHEMA_VERSION
from backline.report import build_report, load_schema, render_json
from backline.report.json_report import iso, jsonable

from .samples import HOSTILE, empty_result, fixed_clock, hostile_result, many_events_result, rich_result

Z_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


@pytest.fixture(scope="module")
def validator():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _doc(result):
    return json.loads(render_json(build_report(result, now=fixed_clock)))


@pytest.mark.parametrize("make", [empty_result, rich_result, hostile_result,
                                  lambda: many_events_result(5000)],
                         ids=["empty", "rich", "hostile", "many"])
def test_reports_validate_against_the_schema(validator, make):
    doc = _doc(make())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    assert doc["schema_version"] == SCHEMA_VERSION


def _set(doc, path, value):
    """A copy of ``doc`` with ``path`` set to ``value`` (``_DELETE`` deletes it)."""
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize("path, value", [
    (("schema_version",), _DELETE),
    (("findings", 0, "severity"), "catastrophic"),
    (("generated_at",), "2024-03-15 08:00:00+01:00"),
    (("findings", 0, "evidence", 0, "surprise"), 1),
    (("summary", "findings", "total"), -1),
    (("events", 0, "ts_quality"), "guessed"),
])
def test_schema_is_not_vacuous(validator, path, value):
    doc = _doc(rich_result())
    assert validator.is_valid(doc)
    assert not validator.is_valid(_set(doc, path, value))


def test_content_matches_the_result():
    result = rich_result()
    doc = _doc(result)
    assert doc["inputs"] == ["/cases/4711/bundle.zip"]
    assert doc["summary"]["findings"]["by_severity"] == {"critical": 1, "high": 1, "medium": 1,
                                                          "low": 1, "info": 1}
    assert doc["summary"]["runs"]["by_status"] == {"ok": 2, "failed": 1, "skipped": 1}
    assert len(doc["events"]) == len(result.events) and len(doc["facts"]) == len(result.facts)
    first = doc["findings"][0]
    assert (first["code"], first["severity"], first["count"]) == ("NET.TCP.RST_TO_SYN", "critical", 12)
    assert first["evidence"] == [{"artifact": "bundle.zip!/net/trace.pcapng", "locator": "packet:5531",
                                  "excerpt": "10.0.0.5:443 -> 10.0.0.9:51234 [RST, ACK]"}]
    dmp = next(a for a in doc["artifacts"] if a["path"].endswith("svc.dmp"))
    assert dmp["status"] == "failed" and dmp["runs"][0]["reason"].startswith("FormatError")
    assert dmp["compression"] == "gzip" and dmp["kind"] == "minidump"
    assert doc["refusals"][0] == {"path": "bundle.zip!/../etc/passwd", "reason": "path escapes the work folder"}
    assert doc["options"]["symbols"] == ["/syms"]


def test_datetimes_are_utc_with_z():
    doc = _doc(rich_result())
    stamps = [doc["generated_at"], doc["summary"]["time_span"]["start"], doc["findings"][1]["first_seen"]]
    stamps += [e["ts"] for e in doc["events"] if e["ts"]]
    assert stamps and all(Z_TIME.match(s) for s in stamps)
    assert doc["generated_at"] == "2024-03-15T08:00:00Z"


def test_awkward_values_become_json():
    facts = {f["name"]: f["value"] for f in _doc(rich_result())["facts"]}
    assert facts["net.rtt_ms"] == "nan"
    assert facts["log.levels"] == ["ERROR", "INFO"]
    assert facts["raw.magic"] == "4d444d50"
    assert facts["log.span"] == {"start": "2024-03-14T09:26:53Z", "end": "2024-03-14T11:26:53Z"}


def test_hostile_strings_survive_verbatim():
    doc = _doc(hostile_result())
    assert doc["findings"][0]["title"] == HOSTILE
    assert doc["refusals"][0]["reason"] == HOSTILE


def test_deep_nesting_is_cut():
    deep: list = []
    cur = deep
    for _ in range(100):
        cur.append([])
        cur = cur[0]
    out = json.dumps(jsonable(deep))
    assert "<nested too deep>" in out


def test_iso_handles_none_and_naive():
    from datetime import datetime
    assert iso(None) is None
    assert iso(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05Z"


def test_every_schema_field_is_documented():
    from backline.testing import project_root
    doc = (project_root() / "docs" / "report-json.md").read_text()
    names: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(load_schema())
    missing = sorted(n for n in names
                     if not re.search(rf"`(?:[\w.]+\.)?{re.escape(n)}(?:`|\.[\w.]+`|`,)", doc))
    assert not missing


def _events_as_before(report, indent=2) -> str:
    """The events array as the report wrote it before events were encoded directly: each event's
    dictionary through ``json.JSONEncoder`` (the reference the direct encoder must match)."""
    from backline.report.json_report import _event

    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    pad = "\n" + " " * (2 * indent)
    return "[" + pad + ("," + pad).join(dumps(_event(e)) for e in report.events) + "\n" + " " * indent + "]"


def _odd_events():
    """Events the direct encoder must write as the general path does: quotes, control characters,
    lone surrogates, non-ASCII, no time, another time zone, microseconds, no reference or excerpt,
    a subclass, a field that is not a string."""
    from dataclasses import dataclass
    from datetime import datetime, timedelta, timezone

    from backline.model import Event, EvidenceRef, Severity
    from backline.model.core import TsQuality

    @dataclass(frozen=True, slots=True)
    class Sub(Event):
        pass

    t = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    texts = ['plain', 'quo"te \\ back', 'tab\tnew\nline\x00\x1f\x7f', 'lone \udc80 surrogate', 'ünï€😀',
             '\u2028\u2029', '']
    out = []
    for i, s in enumerate(texts):
        out += [
            Event(t + timedelta(microseconds=i * 250_001), f"a{s}.log", f"log.{s}", s, Severity(i % 5),
                  EvidenceRef(f"a{s}.log", f"line:{i}", s), TsQuality.EXACT, "logs.text"),
            Event(None, "b.log", "log.error", s, Severity.HIGH, None, TsQuality.INFERRED, s),
            Event(t.astimezone(timezone(timedelta(hours=-5))), "c.log", "k", s, Severity.LOW,
                  EvidenceRef("c.log", "line:1", None)),
            Event(t.replace(tzinfo=None), "d.log", "k", s),
            Sub(t, "e.log", "k", s),
        ]
    out.append(Event(t, "f.log", "k", 42, Severity.INFO, EvidenceRef("f.log", 7, 1.5)))   # type: ignore[arg-type]
    out.append(Event(t, 5, "k", "an artifact that is a number"))                          # type: ignore[arg-type]
    out.append(Event(t, "g.log", "k", "a reference's artifact that is not text", Severity.INFO,
                     EvidenceRef(("g.log",), "line:1", "x")))                             # type: ignore[arg-type]
    out.append(Event(t, "g.log", "k", "the same names again", Severity.INFO, EvidenceRef("g.log", "line:2", "x")))
    return out


def test_events_are_written_byte_for_byte_as_the_general_encoder_does():
    from backline.model import AnalysisResult
    from backline.report import iter_json
    from backline.report.json_report import _EventEncoder, _event

    events = tuple(_odd_events())
    general = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    direct = _EventEncoder(general)
    for e in events:
        assert direct(e) == general(_event(e)), e
    # the whole report, more events than one piece holds, none lost or doubled at the seams
    many = tuple(e for e in events if isinstance(e.artifact, str)) * 40    # a report sorts by artifact
    result = AnalysisResult(inputs=(), artifacts=(), runs=(), findings=(), events=many, facts=())
    report = build_report(result, now=fixed_clock)
    text = "".join(iter_json(report))
    assert _events_as_before(report) in text
    assert json.loads(text)["events"] == [json.loads(general(_event(e))) for e in report.events]


def test_event_texts_made_ahead_give_the_same_report_whatever_order_they_were_made_in():
    import random

    from backline.report import iter_json
    from backline.report.json_report import EventTexts

    result = many_events_result(n=3000, artifacts=7)
    plain = "".join(iter_json(build_report(result, now=fixed_clock)))
    events = list(result.events)
    for seed in (1, 2):
        # made in pieces, in an order that is not the report's, some events never made ahead
        random.Random(seed).shuffle(events)
        texts = EventTexts()
        for at in range(0, 2600, 500):
            texts.add(events[at:min(at + 500, 2600)])
        assert len(texts) == 2600
        ahead = "".join(iter_json(build_report(result, now=fixed_clock, event_texts=texts)))
        assert ahead == plain
    # the texts made ahead are the ones written (not made again)
    texts = EventTexts()
    texts.add(result.events[:1])
    key = id(result.events[0])
    texts._texts[key] = texts._texts[key].replace('"ts": ', '"ts":  ')
    marked = "".join(iter_json(build_report(result, now=fixed_clock, event_texts=texts)))
    assert marked.count('"ts":  ') == 1 and marked.replace('"ts":  ', '"ts": ') == plain


def test_event_texts_stop_making_texts_ahead_past_their_bound():
    from backline.report import iter_json
    from backline.report.json_report import EventTexts

    result = many_events_result(n=300, artifacts=3)
    texts = EventTexts(max_events=250)
    texts.add(result.events[:200])
    texts.add(result.events[200:])          # would pass the bound: made when the report is written
    assert len(texts) == 200
    assert "".join(iter_json(build_report(result, now=fixed_clock, event_texts=texts))) == \
        "".join(iter_json(build_report(result, now=fixed_clock)))

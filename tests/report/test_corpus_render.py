"""Render a report of real log data (loghub Apache 2k) and check it against the
ground truth shipped with it (the structured CSV: time, level, template per line)."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import datetime, timezone

import jsonschema
import pytest
from markupsafe import escape

from backline.model import AnalysisResult, Artifact, ArtifactKind, Event, EvidenceRef, Finding, Severity
from backline.report import build_report, load_schema, render_html, render_json, render_markdown

from .samples import fixed_clock

PATH = "apache.tar.gz!/Apache_2k.log"


@pytest.fixture(scope="module")
def apache(corpus):
    folder = corpus / "logs" / "loghub-2k" / "Apache"
    raw = (folder / "Apache_2k.log").read_text(encoding="utf-8").splitlines()
    with open(folder / "Apache_2k.log_structured_corrected.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(raw) == 2000
    return raw, rows


def _ts(text: str) -> datetime:
    return datetime.strptime(text, "%a %b %d %H:%M:%S %Y").replace(tzinfo=timezone.utc)


def _result(raw, rows) -> AnalysisResult:
    events, by_template = [], defaultdict(list)
    for row in rows:
        n = int(row["LineId"])
        sev = Severity.parse(row["Level"])
        ref = EvidenceRef.line(PATH, n, raw[n - 1])
        events.append(Event(_ts(row["Time"]), PATH, f"log.{row['Level']}", row["Content"], sev, ref))
        if sev >= Severity.HIGH:
            by_template[row["EventTemplate"]].append((n, row))
    findings = tuple(
        Finding("LOG.ERROR_TEMPLATE", template, Severity.HIGH, PATH,
                tuple(EvidenceRef.line(PATH, n, raw[n - 1]) for n, _ in hits[:3]),
                count=len(hits), first_seen=_ts(hits[0][1]["Time"]), last_seen=_ts(hits[-1][1]["Time"]))
        for template, hits in by_template.items())
    artifact = Artifact(PATH, ArtifactKind.TEXT_LOG, size=sum(len(r) + 1 for r in raw), sha256="0" * 64)
    return AnalysisResult(inputs=("apache.tar.gz",), artifacts=(artifact,), runs=(), findings=findings,
                          events=tuple(events), facts=())


def test_real_log_report_matches_the_ground_truth(apache):
    raw, rows = apache
    report = build_report(_result(raw, rows), now=fixed_clock)
    levels = Counter(Severity.parse(r["Level"]) for r in rows)
    times = [_ts(r["Time"]) for r in rows]

    doc = json.loads(render_json(report))
    jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["summary"]["events"]["total"] == len(rows)
    assert doc["summary"]["time_span"] == {"start": min(times).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                           "end": max(times).strftime("%Y-%m-%dT%H:%M:%SZ")}
    # the timeline accounts for every line, by level
    hist = doc["timeline"]["histogram"]
    for sev in Severity:
        assert sum(b[int(sev)] for b in hist) == levels.get(sev, 0)
    # one finding per error template, occurrences add up to the error lines
    error_templates = {r["EventTemplate"] for r in rows if Severity.parse(r["Level"]) >= Severity.HIGH}
    assert doc["summary"]["findings"]["total"] == len(error_templates)
    assert doc["summary"]["findings"]["occurrences"] == levels[Severity.HIGH]
    counts = [f["count"] for f in doc["findings"]]
    assert counts == sorted(counts, reverse=True)

    html = render_html(report)
    for f in report.findings[:20]:
        assert str(escape(f.evidence[0].excerpt)) in html
    md = render_markdown(report)
    assert md.count("#### HIGH") == len(error_templates)

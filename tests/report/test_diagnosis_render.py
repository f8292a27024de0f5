"""The diagnosis in every report: first, with its chain; in the JSON schema; loaded back."""

from __future__ import annotations

import dataclasses
import io
import json

import jsonschema
from rich.console import Console

from backline.model import ChainLink, ClockSkew, Diagnosis, EvidenceRef, NextStep, ProbableCause
from backline.report import build_report, load_schema, render_html, render_json, render_markdown, render_text
from backline.report.load import load_result

from .samples import HOSTILE, fixed_clock


def _with_diagnosis(result, title="Nothing listening on 10.0.0.5:443"):
    """The rich sample with a diagnosis naming its last finding (lowest in severity order)."""
    n = len(result.findings)
    cause, effect = n - 1, 0
    ref = result.findings[effect].evidence[0] if result.findings[effect].evidence else EvidenceRef("x", "line:1")
    d = Diagnosis(
        causes=(ProbableCause(title=title, confidence=0.82, code=result.findings[cause].code, finding=cause,
                              chain=(ChainLink(cause, effect, "refused-explains-client-errors", "because",
                                               (("endpoint", "10.0.0.5:443"),), (ref,), "effect title",
                                               "connection errors naming 10.0.0.5:443", 1.0),),
                              evidence=result.findings[cause].evidence[:1],
                              next_steps=(NextStep("confirm", "check it"), NextStep("ask", "was it down?")),
                              signal="conn_refused", reasons=("prior",)),
                ProbableCause("a lone crash", 0.3, result.findings[effect].code, effect)),
        incident_start=result.findings[0].first_seen, incident_end=None,
        skews=(ClockSkew("a.log", "net.pcap", 2.5, 3),), duration_s=0.01)
    return dataclasses.replace(result, diagnosis=d), cause


def test_causes_come_first_and_indices_follow(rich):
    result, cause = _with_diagnosis(rich)
    report = build_report(result, now=fixed_clock)
    d = report.diagnosis
    assert report.findings[0] is result.findings[cause]
    assert d.causes[0].finding == 0
    link = d.causes[0].chain[0]
    assert report.findings[link.effect] is result.findings[0] and report.findings[link.cause] is report.findings[0]
    assert report.findings[d.causes[1].finding] is result.findings[0]


def test_json_carries_the_diagnosis_valid_and_loads_back(rich):
    result, _ = _with_diagnosis(rich)
    doc = json.loads(render_json(build_report(result, now=fixed_clock)))
    jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker()).validate(doc)
    pc = doc["diagnosis"]["probable_causes"][0]
    assert {"title", "confidence", "code", "finding", "chain", "evidence", "next_steps"} <= set(pc)
    assert doc["findings"][pc["finding"]]["code"] == pc["code"]
    assert pc["chain"][0]["joined_on"] == [{"kind": "endpoint", "value": "10.0.0.5:443"}]
    assert doc["diagnosis"]["clock_skews"][0]["offset_s"] == 2.5
    again = load_result(doc)
    assert again.diagnosis.causes == build_report(result, now=fixed_clock).diagnosis.causes
    assert json.loads(render_json(build_report(again, now=fixed_clock))) == doc


def test_reports_without_a_diagnosis_still_load_and_validate(rich):
    doc = json.loads(render_json(build_report(rich, now=fixed_clock)))
    assert doc["diagnosis"] is None
    del doc["diagnosis"]                             # as written before the diagnosis existed
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    assert load_result(doc).diagnosis is None


def test_every_renderer_puts_the_probable_cause_at_the_top(rich):
    result, _ = _with_diagnosis(rich)
    report = build_report(result, now=fixed_clock)
    out = io.StringIO()
    render_text(report, Console(file=out, width=100))
    text = out.getvalue()
    assert text.splitlines()[0].startswith("Probable root cause (confidence 0.82)")
    assert "connection errors naming 10.0.0.5:443" in text and "also possible (0.30)" in text
    md = render_markdown(report)
    assert md.index("## Probable root cause") < md.index("## Findings")
    assert "- \u2192 connection errors naming 10.0.0.5:443" in md and "**ask**: was it down?" in md
    html = render_html(report)
    assert html.index('id="diagnosis"') < html.index('id="findings"') < html.index('id="timeline"')
    assert 'href="#finding-1"' in html and "Other possible causes" in html


def test_no_diagnosis_no_section(rich):
    report = build_report(rich, now=fixed_clock)
    out = io.StringIO()
    render_text(report, Console(file=out, width=100))
    assert "root cause" not in out.getvalue().lower()
    assert "Probable root cause" not in render_markdown(report)
    assert 'id="diagnosis"' not in render_html(report)


def test_hostile_text_in_a_cause_is_escaped(rich):
    result, _ = _with_diagnosis(rich, title=HOSTILE)
    report = build_report(result, now=fixed_clock)
    html = render_html(report)
    assert "<script>alert" not in html and "<img src=https://evil" not in html
    md = render_markdown(report)
    assert "<script>" not in md
    out = io.StringIO()
    render_text(report, Console(file=out, width=100, force_terminal=True))
    assert "\x1b[31mansi" not in out.getvalue()


def test_a_weak_top_cause_reads_no_confident_root_cause_with_the_candidates_listed(rich):
    result, _ = _with_diagnosis(rich)
    weak = tuple(dataclasses.replace(c, confidence=conf)
                 for c, conf in zip(result.diagnosis.causes, (0.37, 0.2)))
    result = dataclasses.replace(result, diagnosis=dataclasses.replace(result.diagnosis, causes=weak))
    report = build_report(result, now=fixed_clock)
    out = io.StringIO()
    render_text(report, Console(file=out, width=100))
    text = out.getvalue()
    assert text.splitlines()[0] == "No confident root cause"
    assert "Probable root cause" not in text and "Possible root cause" not in text
    assert "(0.37) Nothing listening on 10.0.0.5:443" in text and "(0.20) a lone crash" in text
    assert "connection errors naming" not in text          # no chain is put forward
    md = render_markdown(report)
    assert md.index("## No confident root cause") < md.index("## Findings")
    assert "Probable root cause" not in md and "| 0.37 | Nothing listening on 10.0.0.5:443" in md
    html = render_html(report)
    assert "<h2>No confident root cause</h2>" in html and "Probable root cause</h2>" not in html
    assert html.count('<details class="cause alt">') == 2
    doc = json.loads(render_json(report))                 # the JSON is the same data, unchanged
    assert [c["confidence"] for c in doc["diagnosis"]["probable_causes"]] == [0.37, 0.2]


def test_a_confident_top_cause_keeps_its_heading_at_the_threshold(rich):
    result, _ = _with_diagnosis(rich)
    causes = (dataclasses.replace(result.diagnosis.causes[0], confidence=0.5), result.diagnosis.causes[1])
    result = dataclasses.replace(result, diagnosis=dataclasses.replace(result.diagnosis, causes=causes))
    out = io.StringIO()
    render_text(build_report(result, now=fixed_clock), Console(file=out, width=100))
    assert out.getvalue().splitlines()[0].startswith("Probable root cause (confidence 0.50)")

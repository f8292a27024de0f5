"""Odd values analyzers might hand over: every renderer copes, the JSON stays valid."""

from __future__ import annotations

import io
import json
import random
from datetime import datetime, timedelta, timezone

import jsonschema
from rich.console import Console

from backline.model import (
    AnalysisResult,
    AnalyzerRun,
    Artifact,
    ArtifactKind,
    Event,
    EvidenceRef,
    Fact,
    Finding,
    Refusal,
    RunStatus,
    Severity,
    TsQuality,
)
from backline.report import build_report, load_schema, render_html, render_json, render_markdown, render_text
from backline.report.load import load_result

ALPHABET = "ab<>&\"'|`*_[]#\\\n\r\t\x00\x1b\x7f\u202e\udcff\u00e9\u4e2d\U0001f600 "


def _s(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, n)))


def _ts(rng: random.Random):
    choice = rng.random()
    if choice < 0.2:
        return None
    if choice < 0.3:
        return datetime(2024, 1, 1) + timedelta(seconds=rng.uniform(0, 1e5))       # naive
    tz = timezone(timedelta(hours=rng.randint(-12, 14)))
    return datetime(2024, 1, 1, tzinfo=tz) + timedelta(seconds=rng.uniform(-1e6, 1e6))


def _result(rng: random.Random) -> AnalysisResult:
    paths = [_s(rng) for _ in range(rng.randint(0, 4))]
    arts = tuple(Artifact(p, rng.choice(list(ArtifactKind)), rng.randint(0, 10**12), _s(rng),
                          problems=tuple(_s(rng) for _ in range(rng.randint(0, 2))),
                          time_start=_ts(rng), time_end=_ts(rng), meta={_s(rng): _s(rng)}) for p in paths)
    refs = lambda: tuple(EvidenceRef(_s(rng), _s(rng), rng.choice([None, _s(rng, 200)]))  # noqa: E731
                         for _ in range(rng.randint(0, 3)))
    pool = paths + [_s(rng)]
    return AnalysisResult(
        inputs=tuple(_s(rng) for _ in range(rng.randint(0, 3))),
        artifacts=arts,
        runs=tuple(AnalyzerRun(_s(rng), _s(rng), rng.choice(pool), rng.choice(list(RunStatus)), _s(rng), _s(rng, 80),
                               rng.choice([0.0, 1.5, float("nan"), float("inf")]), warnings=(_s(rng),))
                   for _ in range(rng.randint(0, 5))),
        findings=tuple(Finding(_s(rng) or "X", _s(rng, 60), rng.choice(list(Severity)), rng.choice(pool), refs(),
                               _s(rng, 100), rng.randint(-3, 10**9), _ts(rng), _ts(rng), _s(rng),
                               {_s(rng): rng.choice([_s(rng), 1.5, float("nan"), [1, {"a": b"\x00"}], None])})
                       for _ in range(rng.randint(0, 6))),
        events=tuple(Event(_ts(rng), rng.choice(pool), _s(rng), _s(rng, 40), rng.choice(list(Severity)),
                           rng.choice([None, *refs()]), rng.choice(list(TsQuality)), _s(rng))
                     for _ in range(rng.randint(0, 60))),
        facts=tuple(Fact(_s(rng) or "f", rng.choice([_s(rng), 3, float("-inf"), {1: 2}, (1, 2)]), rng.choice(pool))
                    for _ in range(rng.randint(0, 4))),
        refusals=tuple(Refusal(_s(rng), _s(rng)) for _ in range(rng.randint(0, 2))),
        started_at=_ts(rng), finished_at=_ts(rng),
        options={_s(rng): _s(rng)},
    )


def test_random_odd_results_render_everywhere():
    rng = random.Random(20261127)
    validator = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())
    for _ in range(60):
        report = build_report(_result(rng))
        doc = json.loads(render_json(report))
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert not errors, errors[:3]
        load_result(doc)                                     # and reads back
        html = render_html(report)
        assert html.count("<script") == 1 and "\x1b" not in html and "\x00" not in html
        md = render_markdown(report)
        assert "\x1b" not in md and "\x00" not in md
        buf = io.StringIO()
        render_text(report, Console(file=buf, width=100, color_system=None))
        assert "\x1b" not in buf.getvalue()

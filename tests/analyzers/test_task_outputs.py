"""What a task makes for the report's side besides its events (the clock-skew digests of its
artifacts) changes nothing in the report: the same JSON, byte for byte, as when the report's
side computes everything itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backline.knowledge.diagnosis import engine
from backline import pipeline
from backline.pipeline import AnalyzeOptions, analyze
from backline.report import build_report, iter_json

ROOT = Path(__file__).resolve().parents[2]


def fixed_clock():
    from datetime import datetime, timezone
    return datetime(2026, 1, 1, tzinfo=timezone.utc)


def _stable(text: str) -> dict:
    """The report without what differs between two runs of the same analysis (times it ran, run durations)."""
    doc = json.loads(text)
    doc["summary"].pop("analysis")
    if doc.get("diagnosis"):
        doc["diagnosis"].pop("duration_s")
    for a in doc["artifacts"]:
        for r in a["runs"]:
            r.pop("duration_s")
    return doc


def _events_text(text: str) -> str:
    return text[text.index('"events": ['):text.index('"events_included"')]


@pytest.fixture
def bundle(tmp_path, corpus):
    ev = tmp_path / "evidence"
    ev.mkdir()
    shutil.copy(ROOT / "examples" / "case-001" / "bundle.zip", ev / "case.zip")
    for system in ("Apache", "OpenSSH", "HDFS"):
        src = next((corpus / "logs" / "loghub-2k" / system).glob("*.log"), None)
        assert src is not None, f"corpus log of {system} not found under {corpus}"
        shutil.copy(src, ev / f"{system}.log")
    return ev


@pytest.mark.parametrize("isolate", [True, False])
def test_the_report_is_the_same_with_what_the_tasks_make(bundle, tmp_path, monkeypatch, isolate):
    seen = []
    skews = engine.estimate_skews

    def watch(*a, **k):
        seen.append(k.get("digests"))
        return skews(*a, **k)

    monkeypatch.setattr(engine, "estimate_skews", watch)
    texts = {}
    for made in (True, False):
        if not made:           # the report's side reads every event for the skews itself
            whole = pipeline._diagnose
            monkeypatch.setattr(pipeline, "_diagnose", lambda f, e, x, a, skew=None: whole(f, e, x, a))
        res = analyze([bundle], AnalyzeOptions(work_dir=tmp_path / f"w-{made}", jobs=1, isolate=isolate))
        texts[made] = "".join(iter_json(build_report(res, now=fixed_clock)))
        assert len(res.events) > 1000
    assert seen[0] and not seen[1]                               # digests reached the skew estimate, or not
    assert json.loads(texts[True])["diagnosis"]["probable_causes"]
    assert _events_text(texts[True]) == _events_text(texts[False])
    assert _stable(texts[True].replace(str(tmp_path / "w-True"), "W")) == \
        _stable(texts[False].replace(str(tmp_path / "w-False"), "W"))

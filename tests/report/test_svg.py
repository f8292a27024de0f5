from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from backline.model import Event, Severity
from backline.report.svg import SEVERITY_COLOUR, bucket_text, lane_labels, timeline_svg
from backline.report.timeline import build_timeline

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _xml(svg: str) -> ET.Element:
    return ET.fromstring(svg)          # well-formed XML, so escaping is complete


def test_empty_timeline_says_so():
    root = _xml(timeline_svg(build_timeline([])))
    assert "No events" in "".join(root.itertext())


def test_lanes_cells_and_titles():
    events = [Event(T0 + timedelta(minutes=i), "x/a.log", "k", "s", Severity.INFO) for i in range(60)]
    events.append(Event(T0 + timedelta(minutes=30), "x/b.log", "k", "s", Severity.CRITICAL))
    events.append(Event(None, "x/b.log", "k", "s"))
    svg = timeline_svg(build_timeline(events, n_buckets=30))
    root = _xml(svg)
    text = "".join(root.itertext())
    assert "a.log" in text and "b.log" in text and "undated" in text
    crit = [r for r in root.iter("rect") if r.get("fill") == SEVERITY_COLOUR[Severity.CRITICAL]]
    assert len(crit) == 2                                   # density band + b.log lane
    titles = [t.text for t in root.iter("title") if t.text and "b.log" in t.text and "event" in t.text]
    assert any("1 event: 1 critical" in t for t in titles)


def test_hostile_names_are_escaped():
    name = 'logs/<script>alert(1)</script>&"\x1b.log'
    svg = timeline_svg(build_timeline([Event(T0, name, "k", "s", Severity.HIGH)]))
    assert "<script" not in svg and "\x1b" not in svg
    root = _xml(svg)
    assert any(t.text and "<script>alert(1)</script>" in t.text for t in root.iter("title"))


def test_size_does_not_grow_with_events():
    small = [Event(T0 + timedelta(seconds=i), f"n{i % 30}.log", "k", "s", Severity(i % 5)) for i in range(3000)]
    large = [Event(T0 + timedelta(seconds=i / 100), f"n{i % 30}.log", "k", "s", Severity(i % 5))
             for i in range(300_000)]
    a, b = timeline_svg(build_timeline(small)), timeline_svg(build_timeline(large))
    assert len(b) < 1.5 * len(a)
    assert len(re.findall("<rect", b)) <= 2 * 24 * 120 + 120 * 5 + 60


def test_labels_tell_same_names_apart():
    assert lane_labels(["b.zip!/n1/app.log", "b.zip!/n2/app.log"]) == ["n1/app.log", "n2/app.log"]
    assert len(lane_labels(["x/" + "y" * 100 + ".log"])[0]) == 34
    assert lane_labels(["", "a.log"]) == ["(case-wide)", "a.log"]


def test_bucket_text():
    seconds = (0.25, 30, 734, 7200, 3 * 86400)
    assert [bucket_text(s) for s in seconds] == ["250 ms", "30 s", "12.2 min", "2.0 h", "3.0 d"]

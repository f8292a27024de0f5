from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backline.model import Event, Severity
from backline.report.timeline import OTHER_LANE, build_timeline, nice_ticks, tick_label

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def ev(seconds: float | None, artifact: str = "a.log", sev: Severity = Severity.INFO) -> Event:
    ts = None if seconds is None else T0 + timedelta(seconds=seconds)
    return Event(ts, artifact, "k", "s", sev)


def test_no_events():
    tl = build_timeline([])
    assert tl.empty and tl.lanes == () and tl.start is None and tl.histogram == ()


def test_only_undated_events():
    tl = build_timeline([ev(None), ev(None, "b.log")])
    assert tl.dated == 0 and tl.undated == 2 and tl.start is None
    assert [(lane.artifact, lane.undated, lane.cells) for lane in tl.lanes] == [("a.log", 1, ()), ("b.log", 1, ())]


def test_one_event_gets_a_window_around_it():
    tl = build_timeline([ev(0, sev=Severity.HIGH)])
    assert tl.start < T0 < tl.end
    assert (tl.end - tl.start).total_seconds() == pytest.approx(60)
    (cell,) = tl.lanes[0].cells
    assert cell.total == 1 and cell.max_severity is Severity.HIGH
    assert sum(map(sum, tl.histogram)) == 1


def test_counts_are_conserved_and_in_the_right_bucket():
    events = [ev(i * 10.0, f"n{i % 3}.log", Severity(i % 5)) for i in range(1000)]
    events += [ev(None, "n0.log")] * 7
    tl = build_timeline(events, n_buckets=50)
    assert tl.dated == 1000 and tl.undated == 7
    assert sum(map(sum, tl.histogram)) == 1000
    assert sum(c.total for lane in tl.lanes for c in lane.cells) == 1000
    assert sum(lane.total for lane in tl.lanes) == 1007
    # per severity, the histogram agrees with the input
    for sev in Severity:
        assert sum(h[int(sev)] for h in tl.histogram) == sum(1 for e in events if e.ts and e.severity is sev)
    # each event lands in the bucket whose time range holds it
    for e in events[:50]:
        idx = next(i for i in range(tl.n_buckets) if tl.bucket_start(i) <= e.ts < tl.bucket_start(i + 1))
        lane = next(lane for lane in tl.lanes if lane.artifact == e.artifact)
        assert any(c.bucket == idx for c in lane.cells)


def test_many_events_stay_bounded():
    events = [ev(i * 0.5, f"n{i % 100}.log") for i in range(100_000)]
    tl = build_timeline(events, n_buckets=120, max_lanes=24)
    assert len(tl.lanes) == 24 and tl.lanes[-1].artifact == OTHER_LANE
    assert tl.lanes[-1].merged == 77 and tl.other_artifacts == 77
    assert sum(len(lane.cells) for lane in tl.lanes) <= 24 * 120
    assert sum(c.total for lane in tl.lanes for c in lane.cells) == 100_000


def test_lane_merge_keeps_the_severe_artifacts():
    events = [ev(i, f"quiet{i}.log") for i in range(30) for _ in range(5)]
    events.append(ev(3, "rare-but-critical.log", Severity.CRITICAL))
    tl = build_timeline(events, max_lanes=5)
    assert "rare-but-critical.log" in [lane.artifact for lane in tl.lanes]


def test_far_outliers_are_clipped_and_counted():
    events = [ev(i) for i in range(1000)] + [ev(-50 * 365 * 86400.0)]    # a record stamped ~1974
    tl = build_timeline(events)
    assert tl.clipped_before == 1 and tl.clipped_after == 0
    assert tl.start > T0 - timedelta(days=1)
    assert sum(map(sum, tl.histogram)) == 1000


def test_artifact_order_decides_lane_order():
    events = [ev(0, "late.log"), ev(100, "early.log")]
    assert [lane.artifact for lane in build_timeline(events).lanes] == ["late.log", "early.log"]
    ordered = build_timeline(events, artifact_order={"early.log": 0, "late.log": 1})
    assert [lane.artifact for lane in ordered.lanes] == ["early.log", "late.log"]


def test_naive_timestamps_are_taken_as_utc():
    tl = build_timeline([Event(datetime(2024, 1, 1), "a", "k", "s")])
    assert tl.start.tzinfo is not None and tl.dated == 1


@pytest.mark.parametrize("span, label", [(30, "00:00:10"), (3600, "00:10"), (10 * 86400, "Jan 02"),
                                         (400 * 86400, "2024-03-01")])
def test_ticks_are_round_and_inside(span, label):
    start = T0 + timedelta(seconds=1)
    end = start + timedelta(seconds=span)
    ticks = nice_ticks(start, end)
    assert 2 <= len(ticks) <= 8
    assert all(start <= t <= end for t in ticks)
    steps = {(b - a).total_seconds() for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1 or span >= 30 * 86400
    assert label in [tick_label(t, span) for t in ticks]


def test_midnight_tick_names_the_day():
    start = datetime(2024, 1, 1, 18, 0, tzinfo=timezone.utc)
    ticks = nice_ticks(start, start + timedelta(hours=12))
    labels = [tick_label(t, 12 * 3600) for t in ticks]
    assert "Jan 02" in labels and "20:00" in labels


@pytest.mark.parametrize("years", [(1, 9999), (9999,), (1,), (1970, 1970, 9999)])
def test_extreme_timestamps_do_not_break_the_chart(years):
    from backline.model import AnalysisResult
    from backline.report import build_report, render_html
    events = [Event(datetime(y, 12 if y == 9999 else 1, 31 if y == 9999 else 1, tzinfo=timezone.utc), "a", "k", "s")
              for y in years]
    report = build_report(AnalysisResult((), (), (), (), tuple(events), ()))
    tl = report.timeline
    assert tl.dated == len(events)
    assert sum(map(sum, tl.histogram)) + tl.clipped_before + tl.clipped_after == len(events)
    assert "<svg" in render_html(report)

"""Cross-artifact incidents from the timeline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from backline.knowledge.correlate import CODE, CorrelationSettings, correlate
from backline.model import Event, EvidenceRef, Severity

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def ev(sec: float, art: str, sev=Severity.HIGH, summary="x", ref=True) -> Event:
    return Event(T0 + timedelta(seconds=sec), art, "k", summary, sev,
                 EvidenceRef.line(art, int(sec) + 1) if ref else None)


def test_one_artifact_is_not_an_incident():
    assert correlate([ev(0, "a.log"), ev(1, "a.log"), ev(2, "a.log")]) == []


def test_quiet_gap_splits_incidents_and_worst_comes_first():
    events = [ev(0, "a.log", Severity.MEDIUM), ev(3, "b.pcap", Severity.MEDIUM),
              ev(100, "a.log"), ev(101, "core", Severity.CRITICAL), ev(102, "b.pcap")]
    found = correlate(events)
    assert [f.code for f in found] == [CODE, CODE]
    first, second = found
    assert first.severity is Severity.CRITICAL and first.count == 3
    assert first.first_seen == T0 + timedelta(seconds=100) and first.last_seen == T0 + timedelta(seconds=102)
    assert {r.artifact for r in first.evidence} == {"a.log", "core", "b.pcap"}
    assert second.severity is Severity.MEDIUM and second.count == 2
    assert first.artifact == ""                       # case-wide, not one artifact's


def test_low_severity_and_undated_events_are_ignored():
    events = [ev(0, "a.log", Severity.LOW), ev(1, "b.log", Severity.INFO),
              Event(None, "c.log", "k", "undated", Severity.CRITICAL)]
    assert correlate(events) == []


def test_evidence_without_ref_points_at_the_time():
    found = correlate([ev(0, "a.log"), ev(1, "b.evtx", ref=False, summary="disk error")])
    refs = {r.artifact: r for r in found[0].evidence}
    assert refs["b.evtx"].locator.startswith("time:2024-05-01T10:00:01")
    assert refs["b.evtx"].excerpt == "disk error"


def test_caps():
    events = []
    for i in range(30):
        events += [ev(i * 100, "a.log"), ev(i * 100 + 1, "b.log")]
    assert len(correlate(events)) == CorrelationSettings().max_incidents
    many = [ev(0.1 * i, f"f{i}.log") for i in range(20)]
    (only,) = correlate(many)
    assert len(only.evidence) == CorrelationSettings().max_evidence and only.count == 20


def test_each_artifacts_evidence_is_its_worst_earliest_event_as_before():
    """The evidence of an incident: per artifact the worst event, the earliest of equals, the first met
    on an exact tie - what a scan of the cluster per artifact chose, now in one pass."""
    import random

    rnd = random.Random(7)
    t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    events = [Event(t0 + timedelta(seconds=rnd.randrange(0, 400) / 4), f"a{rnd.randrange(6)}.log", "log.error",
                    f"e{i}", rnd.choice((Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)),
                    EvidenceRef(f"a{i}", f"line:{i}", f"x{i}")) for i in range(3000)]
    (found,) = correlate(events)
    cluster = sorted(events, key=lambda e: e.ts)
    artifacts = list(dict.fromkeys(e.artifact for e in cluster))
    firsts = sorted((max((e for e in cluster if e.artifact == a), key=lambda e: (e.severity, -e.ts.timestamp()))
                     for a in artifacts), key=lambda e: e.ts)
    assert [r.locator for r in found.evidence] == [e.ref.locator for e in firsts[:8]]
    assert len({e.ts for e in events}) < len(events)          # ties in time and severity were there to break

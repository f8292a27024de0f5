"""Timeline correlation: problems seen at the same time in different evidence.

An escalation engineer's first question about a bundle is "what happened at
the same moment elsewhere?": the log error, the reset in the capture and the
crash a second later are one incident, not three.  This module clusters the
timeline events of warning level and above by time (a new cluster starts
after a quiet gap of ``window``) and reports every cluster that spans at
least two artifacts as one ``CASE.CORRELATED_INCIDENT`` finding, with the
first event of each artifact as evidence.

>>> from datetime import datetime, timedelta, timezone
>>> from backline.model import Event, EvidenceRef, Severity
>>> t0 = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
>>> ev = [Event(t0, "app.log", "log.error", "db refused", Severity.HIGH, EvidenceRef.line("app.log", 8)),
...       Event(t0 + timedelta(seconds=1), "net.pcap", "net.rst", "RST to SYN :5432", Severity.HIGH,
...             EvidenceRef.packet("net.pcap", 40)),
...       Event(t0 + timedelta(hours=1), "app.log", "log.error", "later", Severity.HIGH)]
>>> [f.code for f in correlate(ev)], [str(r) for r in correlate(ev)[0].evidence]
(['CASE.CORRELATED_INCIDENT'], ['app.log line:8', 'net.pcap packet:40'])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence

from backline.model import Event, EvidenceRef, Finding, Severity

CODE = "CASE.CORRELATED_INCIDENT"
ANALYZER = "knowledge.correlate"


@dataclass(frozen=True, slots=True)
class CorrelationSettings:
    window: timedelta = timedelta(seconds=10)   # quiet gap that ends an incident
    min_severity: Severity = Severity.MEDIUM
    min_artifacts: int = 2
    max_incidents: int = 10
    max_evidence: int = 8


def _clusters(events: Sequence[Event], window: timedelta) -> list[list[Event]]:
    out: list[list[Event]] = []
    for e in events:
        if out and e.ts - out[-1][-1].ts <= window:
            out[-1].append(e)
        else:
            out.append([e])
    return out


def _evidence(e: Event) -> EvidenceRef:
    """The event's own reference (with its summary as excerpt when it has none), or its time."""
    if e.ref is None:
        return EvidenceRef(e.artifact, f"time:{e.ts.isoformat()}", e.summary)
    return e.ref if e.ref.excerpt else EvidenceRef(e.ref.artifact, e.ref.locator, e.summary)


def correlate(events: Sequence[Event], settings: CorrelationSettings | None = None) -> list[Finding]:
    """Incidents that show in two or more artifacts within ``settings.window`` of each other."""
    s = settings or CorrelationSettings()
    notable = sorted((e for e in events if e.ts is not None and e.severity >= s.min_severity),
                     key=lambda e: e.ts)
    incidents = []
    for cluster in _clusters(notable, s.window):
        artifacts = list(dict.fromkeys(e.artifact for e in cluster))
        if len(artifacts) < s.min_artifacts:
            continue
        incidents.append((cluster, artifacts))
    # The most severe and most widely seen incidents first.
    incidents.sort(key=lambda it: (-max(e.severity for e in it[0]), -len(it[1]), it[0][0].ts))
    findings = []
    for cluster, artifacts in incidents[: s.max_incidents]:
        # per artifact its worst event, the earliest of those (the first one met on a tie): one pass
        # over the cluster, which can hold every event of a busy bundle
        best: dict[str, tuple[tuple, Event]] = {}
        for e in cluster:
            key = (e.severity, -e.ts.timestamp())
            held = best.get(e.artifact)
            if held is None or key > held[0]:
                best[e.artifact] = (key, e)
        firsts = [best[art][1] for art in artifacts]
        firsts.sort(key=lambda e: e.ts)
        refs = tuple(_evidence(e) for e in firsts[: s.max_evidence])
        start, end = cluster[0].ts, cluster[-1].ts
        span = (end - start).total_seconds()
        kinds = Counter(e.kind for e in cluster)
        names = ", ".join(a.rsplit("/", 1)[-1] for a in artifacts[:4]) + (" ..." if len(artifacts) > 4 else "")
        findings.append(Finding(
            code=CODE,
            title=f"{len(cluster)} problems in {len(artifacts)} artifacts within {span:.0f} s: {names}",
            severity=max(e.severity for e in cluster),
            artifact="",
            evidence=refs,
            detail="; ".join(f"{e.ts.strftime('%H:%M:%S')} {e.artifact.rsplit('/', 1)[-1]}: {e.summary[:120]}"
                             for e in firsts[: s.max_evidence]),
            count=len(cluster),
            first_seen=start,
            last_seen=end,
            analyzer=ANALYZER,
            data={"artifacts": artifacts, "event_kinds": dict(kinds.most_common(10)),
                  "window_s": s.window.total_seconds()},
        ))
    return findings

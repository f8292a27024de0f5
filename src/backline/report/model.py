"""The report model: one view of an :class:`AnalysisResult` that every
renderer (terminal, JSON, Markdown, HTML) reads.

:func:`build_report` does all sorting, grouping and counting, so renderers
only lay things out.

>>> from backline.model import AnalysisResult, Finding, Severity
>>> result = AnalysisResult(inputs=("bundle.zip",), artifacts=(), runs=(), events=(), facts=(),
...     findings=(Finding("A.LOW", "minor", Severity.LOW, "x.log"),
...               Finding("B.CRIT", "bad", Severity.CRITICAL, "x.log")))
>>> report = build_report(result)
>>> [f.code for f in report.findings]
['B.CRIT', 'A.LOW']
>>> report.summary.headline()
'1 critical, 1 low findings in 0 artifacts'
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import attrgetter
from typing import Callable, Mapping

from backline import __version__
from backline.model import (
    AnalysisResult,
    AnalyzerRun,
    Artifact,
    Event,
    Fact,
    Finding,
    Refusal,
    RunStatus,
    Severity,
    utc,
)
from backline.model.diagnosis import Diagnosis, causes_first
from backline.report.known_issues import known_issue_findings
from backline.report.timeline import Timeline, build_timeline

#: Severities from worst to mildest: the order reports list them in.
SEVERITY_ORDER: tuple[Severity, ...] = tuple(sorted(Severity, reverse=True))


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts and spans for the report header."""

    artifacts: int
    artifacts_by_kind: Mapping[str, int]           # kind value -> count, most first
    unreadable_artifacts: int                     # not materialised or with problems
    analyzed_artifacts: int                       # with at least one analyzer run that was ok
    findings: int
    findings_by_severity: Mapping[str, int]       # every severity label, worst first
    occurrences: int                              # sum of finding counts
    runs_by_status: Mapping[str, int]             # "ok" / "failed" / "skipped"
    events: int
    undated_events: int
    facts: int
    refusals: int
    time_start: datetime | None                   # span of the evidence (events, artifacts, findings)
    time_end: datetime | None
    started_at: datetime | None                   # when the analysis ran
    finished_at: datetime | None

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return max(0.0, (self.finished_at - self.started_at).total_seconds())
        return None

    @property
    def highest_severity(self) -> Severity | None:
        for sev in SEVERITY_ORDER:
            if self.findings_by_severity.get(sev.label):
                return sev
        return None

    def headline(self) -> str:
        """``3 critical, 5 high findings in 12 artifacts``, or ``No findings in 12
        artifacts`` (``... (3 analysed)`` when analyzers read only some of them)."""
        parts = [f"{n} {label}" for label, n in self.findings_by_severity.items() if n]
        noun = "artifact" if self.artifacts == 1 else "artifacts"
        if not parts:
            if self.analyzed_artifacts < self.artifacts:
                return f"No findings in {self.artifacts} {noun} ({self.analyzed_artifacts} analysed)"
            return f"No findings in {self.artifacts} {noun}"
        word = "finding" if self.findings == 1 else "findings"
        return f"{', '.join(parts)} {word} in {self.artifacts} {noun}"


@dataclass(frozen=True, slots=True)
class ArtifactSection:
    """Everything the report says about one artifact.

    ``artifact`` is ``None`` for a section of findings/facts that name a
    path which is not one of the analysed artifacts (case-wide findings of
    correlation rules, for example); ``path`` is always set.
    """

    path: str
    artifact: Artifact | None
    runs: tuple[AnalyzerRun, ...]
    findings: tuple[Finding, ...]
    facts: tuple[Fact, ...]
    events: int
    status: str                                   # see :func:`section_status`

    @property
    def anchor(self) -> str:
        """A stable HTML id for this section."""
        return _anchor(self.path)

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)


def _anchor(path: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in path.lower())
    slug = "-".join(p for p in slug.split("-") if p)[:60]
    digest = hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"artifact-{slug}-{digest}" if slug else f"artifact-{digest}"


@dataclass(frozen=True, slots=True)
class Report:
    """The report of one analysis; see :func:`build_report`."""

    schema_version: str
    backline_version: str
    generated_at: datetime
    inputs: tuple[str, ...]
    options: Mapping[str, object]
    summary: Summary
    findings: tuple[Finding, ...]                 # probable causes first, then worst first, most frequent
    artifacts: tuple[ArtifactSection, ...]        # in analysis order; extra sections last
    runs: tuple[AnalyzerRun, ...]
    events: tuple[Event, ...]                     # by time; undated last
    facts: tuple[Fact, ...]
    refusals: tuple[Refusal, ...]
    timeline: Timeline
    failed_runs: tuple[AnalyzerRun, ...] = field(default=())
    #: probable root causes; their ``finding`` indices point into ``findings`` (None: not diagnosed)
    diagnosis: Diagnosis | None = None
    known_issues: tuple[Finding, ...] = field(default=())   # KB.MATCH / KB.NOT_AFFECTED, matches first
    #: the events' JSON texts made ahead (a json_report.EventTexts, or None): the JSON report
    #: uses them instead of making them again; nothing else reads them
    event_texts: object | None = field(default=None, compare=False, repr=False)

    def findings_at(self, severity: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is severity)


def finding_sort_key(f: Finding) -> tuple:
    """Worst first, then most frequent, then by code and artifact."""
    return (-int(f.severity), -f.count, f.code, f.artifact, f.title)


def section_status(artifact: Artifact | None, runs: tuple[AnalyzerRun, ...]) -> str:
    """One word for an artifact's state.

    ``unreadable`` (not materialised), ``failed`` (every run failed),
    ``partial`` (some runs failed), ``analyzed`` (at least one run ok),
    ``skipped`` (runs were all skipped), ``not analyzed`` (no analyzer applied),
    ``case-wide`` (no artifact: findings that span the evidence, e.g. correlated incidents).
    """
    if artifact is None and not runs:
        return "case-wide"
    if artifact is not None and not artifact.readable:
        return "unreadable"
    statuses = Counter(r.status for r in runs)
    if statuses[RunStatus.FAILED] and not statuses[RunStatus.OK]:
        return "failed"
    if statuses[RunStatus.FAILED]:
        return "partial"
    if statuses[RunStatus.OK]:
        return "analyzed"
    if statuses[RunStatus.SKIPPED]:
        return "skipped"
    return "not analyzed"


def sort_events(events: tuple[Event, ...]) -> tuple[tuple[Event, ...], int]:
    """Events by time (stable), undated last; also returns the undated count."""
    dated = [e for e in events if e.ts is not None]
    undated = [e for e in events if e.ts is None]
    if any(e.ts.tzinfo is None for e in dated):              # type: ignore[union-attr]
        dated.sort(key=lambda e: utc(e.ts))                 # type: ignore[arg-type,return-value]
    else:                                                   # aware datetimes compare across zones
        dated.sort(key=attrgetter("ts"))
    return tuple(dated) + tuple(undated), len(undated)


def _span(values: list[datetime | None]) -> tuple[datetime | None, datetime | None]:
    dated = [utc(v) for v in values if v is not None]
    if not dated:
        return None, None
    return min(dated), max(dated)  # type: ignore[type-var]


def build_report(result: AnalysisResult, *, now: Callable[[], datetime] | None = None,
                 timeline_buckets: int = 120, timeline_lanes: int = 24, event_texts: object | None = None) -> Report:
    """Build the report model of ``result``.

    ``now`` is the clock used for ``generated_at`` (default: the real UTC
    clock); pass a fixed one for reproducible output.  ``event_texts``: the
    events' JSON texts made while the analysis ran (:class:`.json_report.EventTexts`).
    """
    generated_at = utc((now or (lambda: datetime.now(timezone.utc)))())
    assert generated_at is not None

    findings, diagnosis = causes_first(result.findings, result.diagnosis, finding_sort_key)
    events, undated = sort_events(tuple(result.events))

    by_sev = Counter(f.severity for f in findings)
    kinds = Counter(a.kind.value for a in result.artifacts)
    run_status = Counter(r.status.value for r in result.runs)
    time_values: list[datetime | None] = []
    if len(events) > undated:                               # sorted: first and last dated event
        time_values += [events[0].ts, events[len(events) - undated - 1].ts]
    for a in result.artifacts:
        time_values += [a.time_start, a.time_end]
    for f in findings:
        time_values += [f.first_seen, f.last_seen]
    t_start, t_end = _span(time_values)

    summary = Summary(
        artifacts=len(result.artifacts),
        artifacts_by_kind=dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        unreadable_artifacts=sum(1 for a in result.artifacts if not a.readable or a.problems),
        analyzed_artifacts=len({r.artifact for r in result.runs if r.status is RunStatus.OK}
                               & {a.path for a in result.artifacts}),
        findings=len(findings),
        findings_by_severity={s.label: by_sev.get(s, 0) for s in SEVERITY_ORDER},
        occurrences=sum(max(0, f.count) for f in findings),
        runs_by_status={s.value: run_status.get(s.value, 0) for s in RunStatus},
        events=len(result.events),
        undated_events=undated,
        facts=len(result.facts),
        refusals=len(result.refusals),
        time_start=t_start,
        time_end=t_end,
        started_at=utc(result.started_at),
        finished_at=utc(result.finished_at),
    )

    # group per artifact, keeping the analysis order of artifacts
    runs_of: dict[str, list[AnalyzerRun]] = {}
    findings_of: dict[str, list[Finding]] = {}
    facts_of: dict[str, list[Fact]] = {}
    events_of: Counter[str] = Counter(e.artifact for e in result.events)
    for r in result.runs:
        runs_of.setdefault(r.artifact, []).append(r)
    for f in findings:
        findings_of.setdefault(f.artifact, []).append(f)
    for fa in result.facts:
        facts_of.setdefault(fa.artifact, []).append(fa)

    sections: list[ArtifactSection] = []
    known: set[str] = set()
    for a in result.artifacts:
        if a.path in known:
            continue
        known.add(a.path)
        runs = tuple(runs_of.get(a.path, ()))
        sections.append(ArtifactSection(
            a.path, a, runs, tuple(findings_of.get(a.path, ())), tuple(facts_of.get(a.path, ())),
            events_of.get(a.path, 0), section_status(a, runs)))
    extra = [p for p in (*findings_of, *facts_of, *runs_of) if p not in known]
    for path in dict.fromkeys(extra):
        runs = tuple(runs_of.get(path, ()))
        sections.append(ArtifactSection(
            path, None, runs, tuple(findings_of.get(path, ())), tuple(facts_of.get(path, ())),
            events_of.get(path, 0), section_status(None, runs)))

    order = {s.path: i for i, s in enumerate(sections)}
    timeline = build_timeline(result.events, n_buckets=timeline_buckets,
                              max_lanes=timeline_lanes, artifact_order=order)
    return Report(
        schema_version=result.schema_version,
        backline_version=result.backline_version or __version__,
        generated_at=generated_at,
        inputs=tuple(result.inputs),
        options=dict(result.options),
        summary=summary,
        findings=findings,
        artifacts=tuple(sections),
        runs=tuple(result.runs),
        events=events,
        facts=tuple(result.facts),
        refusals=tuple(result.refusals),
        timeline=timeline,
        failed_runs=tuple(r for r in result.runs if r.status is RunStatus.FAILED),
        diagnosis=diagnosis,
        known_issues=known_issue_findings(findings),
        event_texts=event_texts,
    )

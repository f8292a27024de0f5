"""The main job as a library call: evidence paths in, :class:`AnalysisResult` out.

>>> from pathlib import Path
>>> opts = AnalyzeOptions(jobs=1)                       # doctest: +SKIP
>>> result = analyze([Path("bundle.zip")], opts)        # doctest: +SKIP
>>> [f.code for f in result.findings]                   # doctest: +SKIP

Steps: intake (expand archives safely, classify every file, store it in the
content-addressed store) -> run every applicable analyzer on every artifact
(failures isolated) -> correlate -> diagnose (probable root causes, their findings
first) -> sort findings and events -> one immutable result.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backline import __version__
from backline.analyzers.logs.anomalies import stops_at_collection
from backline.analyzers.registry import all_analyzer_classes
from backline.analyzers.runner import (DEFAULT_MAX_EVENTS, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, ProgressFn,
                                      RunSettings, TaskResult, run_all)
from backline.errors import UsageError
from backline.knowledge.correlate import correlate
from backline.knowledge.diagnosis import diagnose
from backline.model import (AnalysisResult, AnalyzerRun, Artifact, ArtifactKind, Diagnosis, Event, RunStatus,
                            causes_first)
from backline.model.diagnosis import DIAGNOSIS_VERSION
from backline.storage.blobs import BlobStore


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    """Settings of one analysis.

    ``work_dir``: scratch folder for extracted files and analyzer outputs
    (a temporary folder, removed afterwards, when None).  ``store``: the
    content-addressed evidence store (None = do not store).  ``analyzers``:
    restrict to these analyzer names (None = all).
    """

    work_dir: Path | None = None
    tz: str = "UTC"
    jobs: int = 1
    store: BlobStore | None = None
    limits: object | None = None            # backline.evidence.IntakeLimits
    symbol_paths: tuple[Path, ...] = ()
    binary_paths: tuple[Path, ...] = ()
    analyzers: tuple[str, ...] | None = None
    max_events_per_artifact: int = DEFAULT_MAX_EVENTS
    keep_work_dir: bool = False
    timeout_s: float | None = DEFAULT_TIMEOUT_S   # per analyzer and artifact; None = no limit
    memory_mb: int | None = DEFAULT_MEMORY_MB     # memory (RLIMIT_DATA) of one task process; None = no limit
    isolate: bool = False                   # every task in a worker process with hard limits, even with jobs=1
    correlate: bool = True                  # cross-artifact incident findings (knowledge.correlate)
    diagnose: bool = True                   # probable root causes and their chains (knowledge.diagnosis)
    kb: tuple = ()                          # known issues to match (backline.knowledge.kb.KnownIssue)
    product: str | None = None              # the customer's product and version, for known issues'
    product_version: str | None = None      # affected ranges and fixed-in versions
    scheduler: str | None = None            # Dask scheduler address: run on that cluster (analyzers.cluster)


def check_tz(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r} (use an IANA name such as UTC or Europe/Berlin)") from None
    return name


def _sort_key_ts(ts: datetime | None) -> tuple[int, datetime]:
    return (0, ts) if ts is not None else (1, datetime.min.replace(tzinfo=timezone.utc))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_UNDATED = 1 << 62          # after every dated event (year 9999 is ~2.5e17 microseconds)


class _EventOrder:
    """The report's event order (by time, undated last, then artifact: :func:`_sort_key_ts`)
    worked out ahead: each task's events get their sort keys as its result arrives, as plain
    integer microseconds, so that the sort after the last task compares integers instead of
    datetimes.  Same order as sorting on ``(_sort_key_ts(e.ts), e.artifact)``; anything that
    does not fit (a naive time) and the sort is done the usual way."""

    __slots__ = ("keys", "usable")

    def __init__(self) -> None:
        self.keys: dict[int, tuple] = {}
        self.usable = True

    def add(self, events: Sequence[Event]) -> None:
        if not self.usable:
            return
        keys = self.keys
        try:
            for e in events:
                ts = e.ts
                keys[id(e)] = (_UNDATED if ts is None else (ts - _EPOCH) // _US, e.artifact)
        except (TypeError, AttributeError, OverflowError):     # a naive or odd time stamp
            self.usable = False
            self.keys = {}

    def sorted(self, events: Sequence[Event]) -> list[Event]:
        keys = self.keys
        if self.usable and len(keys) == len(events):
            try:
                return sorted(events, key=lambda e: keys[id(e)])
            except KeyError:            # an event that was not added (one object listed twice)
                pass
        return sorted(events, key=lambda e: (_sort_key_ts(e.ts), e.artifact))


def analyze(
    paths: Sequence[Path],
    options: AnalyzeOptions | None = None,
    *,
    intake_progress: Callable[[str], None] | None = None,
    progress: ProgressFn | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
) -> AnalysisResult:
    """Analyse the evidence at ``paths``.  Raises UsageError for bad options and
    NothingReadable (from intake) when no path holds anything readable.

    ``on_result`` is called with each analyzer task's result as it arrives (in the order
    the tasks end, which varies; see :func:`.analyzers.runner.run_all`): a caller that
    makes something of every event (the JSON report's text) can do it while the other
    tasks still run."""
    from backline.evidence import collect

    options = options or AnalyzeOptions()
    check_tz(options.tz)
    if options.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    started = datetime.now(timezone.utc)

    own_tmp = options.work_dir is None
    try:
        work_dir = Path(tempfile.mkdtemp(prefix="backline-")) if own_tmp else Path(options.work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = "a temporary folder" if own_tmp else str(options.work_dir)
        raise UsageError(f"cannot create the work folder {where}: {exc.strerror or exc}") from None
    connecting = None
    if options.scheduler:
        from backline.analyzers.cluster import Connecting

        # Dask's import and the hand-shake with the scheduler while the intake runs
        connecting = Connecting(options.scheduler)
    try:
        intake = collect([Path(p) for p in paths], work_dir / "evidence", limits=options.limits,
                         store=options.store, progress=intake_progress)
        classes = all_analyzer_classes()
        if options.analyzers is not None:
            wanted = set(options.analyzers)
            unknown = wanted - {c.name for c in classes}
            if unknown:
                raise UsageError(f"unknown analyzer(s): {', '.join(sorted(unknown))}")
            classes = [c for c in classes if c.name in wanted]
        bundle_bins, bundle_syms = provide_bundle_files(intake.artifacts, work_dir)
        settings = RunSettings(
            tz=options.tz,
            work_dir=str(work_dir / "runs"),
            symbol_paths=tuple(str(p) for p in (*options.symbol_paths, *bundle_syms)),
            binary_paths=tuple(str(p) for p in (*options.binary_paths, *bundle_bins)),
            max_events=options.max_events_per_artifact,
            timeout_s=options.timeout_s,
            memory_mb=options.memory_mb,
            isolate=options.isolate,
        )
        # on a cluster the results arrive while the other tasks run elsewhere: what is made of
        # each (the events' sort keys here, the caller's on_result) is made then, not after the last
        order = _EventOrder() if options.scheduler else None

        def arrived(res: TaskResult) -> None:
            if order is not None:
                order.add(res.events)
            if on_result is not None:
                on_result(res)

        out = run_all(intake.artifacts, classes, settings, jobs=options.jobs, progress=progress,
                      scheduler=options.scheduler, on_result=arrived, connecting=connecting)
    finally:
        if connecting is not None:
            connecting.close()          # (already closed when the analysis ran on the cluster)
        if own_tmp and not options.keep_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)

    artifacts = _with_time_ranges(intake.artifacts, out.events)
    # a log that ends when the bundle ends was cut by the collection, not silenced
    found = stops_at_collection(out.findings, _latest_time(artifacts, out.findings))
    # Knowledge: the same incident seen in several pieces of evidence at once.
    case_findings = correlate(out.events) if options.correlate else []
    kb_summary = None
    if options.kb:
        # Knowledge: known issues recognised in the findings and facts (never in the raw files).
        from backline.knowledge.kb.apply import apply_known_issues

        kb_found, kb_summary = apply_known_issues(options.kb, [*found, *case_findings], out.facts,
                                                  product=options.product, version=options.product_version)
        case_findings = [*case_findings, *kb_found]
    findings = sorted([*found, *case_findings], key=lambda f: (-int(f.severity), -f.count, f.code, f.artifact))
    events = order.sorted(out.events) if order is not None else \
        sorted(out.events, key=lambda e: (_sort_key_ts(e.ts), e.artifact))
    # Knowledge: which finding probably caused the others; those come first.
    diagnosis = None
    runs = list(out.runs)
    if options.diagnose:
        diagnosis, run = _diagnose(findings, events, out.facts, artifacts, out.skew)
        if run is not None:
            runs.append(run)
        ordered, diagnosis = causes_first(findings, diagnosis)
        findings = list(ordered)
    return AnalysisResult(
        inputs=intake.inputs,
        artifacts=artifacts,
        runs=tuple(runs),
        findings=tuple(findings),
        events=tuple(events),
        facts=tuple(out.facts),
        refusals=tuple(intake.refusals),
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        options={"tz": options.tz, "jobs": options.jobs,
                 "analyzers": list(options.analyzers) if options.analyzers else None,
                 **({"kb": kb_summary} if kb_summary is not None else {}),
                 **({"product": options.product} if options.product else {}),
                 **({"product_version": options.product_version} if options.product_version else {})},
        backline_version=__version__,
        diagnosis=diagnosis,
    )


def _diagnose(findings, events, facts, artifacts, skew=None) -> tuple[Diagnosis | None, AnalyzerRun | None]:
    """The diagnosis, or - should it fail on strange input - none, with a failed case-wide run that
    says why (failures are data: the analysis and its findings stand without it).  ``skew``: the
    clock-skew digests the tasks made of their artifacts' events (``events`` in time order)."""
    try:
        return diagnose(findings, events, facts, artifacts, skew_digests=skew), None
    except Exception as exc:  # noqa: BLE001 - a diagnosis bug must not cost the analysis
        return None, AnalyzerRun(analyzer="knowledge.diagnosis", version=DIAGNOSIS_VERSION, artifact="",
                                 status=RunStatus.FAILED, reason=f"{type(exc).__name__}: {exc}"[:500],
                                 traceback=traceback.format_exc()[-20000:])


def provide_bundle_files(artifacts: Sequence[Artifact], work_dir: Path) -> tuple[list[Path], list[Path]]:
    """Executables and Breakpad symbol files that came inside the evidence are handed to the
    dump analyzers (as ``--binaries`` / ``--symbols`` folders) under their original names.

    Analyzers never search the bundle themselves; the engine provides their inputs.
    """
    bins_dir, syms_dir = work_dir / "bundle-binaries", work_dir / "bundle-symbols"
    bins: list[Path] = []
    syms: list[Path] = []
    for art in artifacts:
        if not art.readable:
            continue
        try:
            if art.kind is ArtifactKind.EXECUTABLE:
                target = bins_dir / art.name
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(Path(art.local_path).resolve())
                bins = [bins_dir]
            elif art.kind is ArtifactKind.SYMBOLS:
                with open(art.local_path, "rb") as f:
                    head = f.readline(4096).decode("utf-8", "replace").split()
                # MODULE <os> <arch> <debug id> <debug file name>
                if len(head) >= 5 and head[0] == "MODULE":
                    debug_id, name = head[3], " ".join(head[4:])
                    if "/" in name or "\\" in name or name in (".", "..") or "/" in debug_id:
                        continue
                    stem = name[:-4] if name.lower().endswith(".pdb") else name
                    target = syms_dir / name / debug_id / f"{stem}.sym"
                    if not target.exists():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.symlink_to(Path(art.local_path).resolve())
                    syms = [syms_dir]
        except OSError:
            continue
    return bins, syms


def _latest_time(artifacts: Sequence[Artifact], findings) -> datetime | None:
    """The latest time stamp the bundle holds (an artifact's end, a finding's last time)."""
    times = [t for t in (*(a.time_end for a in artifacts), *(f.last_seen for f in findings))
             if t is not None and t.tzinfo is not None]
    return max(times) if times else None


def _with_time_ranges(artifacts: Sequence[Artifact], events: Sequence[Event]) -> tuple[Artifact, ...]:
    """Widen each artifact's known time range with the times of its events."""
    span: dict[str, list[datetime]] = {}
    for e in events:
        if e.ts is None:
            continue
        s = span.setdefault(e.artifact, [e.ts, e.ts])
        if e.ts < s[0]:
            s[0] = e.ts
        if e.ts > s[1]:
            s[1] = e.ts
    out = []
    for a in artifacts:
        s = span.get(a.path)
        if s:
            lo = min(x for x in (a.time_start, s[0]) if x is not None)
            hi = max(x for x in (a.time_end, s[1]) if x is not None)
            a = dataclasses.replace(a, time_start=lo, time_end=hi)
        out.append(a)
    return tuple(out)


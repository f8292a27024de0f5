"""Run analyzers over artifacts, in parallel, with failures isolated.

Every (artifact, analyzer) pair is one task.  A task that raises becomes an
:class:`AnalyzerRun` with ``status=failed``, the reason and the traceback;
the run goes on.  With ``jobs > 1`` tasks run in a process pool; a worker
that dies outright (a crash inside a native library) fails only the task it
was running, the pool is rebuilt and the remaining tasks continue.

Every artifact ends up with at least one run record: the analyzers that
applied, or a ``skipped`` record saying why nothing ran (unreadable file, no
analyzer for its kind).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from backline.analyzers.base import AnalysisContext, Analyzer
from backline.errors import BacklineError
from backline.model import AnalyzerRun, Artifact, Event, Fact, Finding, RunStatus

#: Most events kept per task; the rest are counted in a warning.
DEFAULT_MAX_EVENTS = 20_000
#: Most findings kept per task (a runaway analyzer cannot flood the report).
MAX_FINDINGS = 2_000
MAX_FACTS = 5_000
#: Time limit of one analyzer on one artifact (None = no limit).
DEFAULT_TIMEOUT_S = 900.0


class AnalyzerTimeout(BaseException):
    """Raised inside an analyzer that ran past its time limit.  A BaseException, so an
    analyzer's own ``except Exception`` (used to skip one bad record) cannot swallow it."""


class _TimeLimit:
    """Interrupt the Python code of an analyzer after ``seconds`` (SIGALRM; main thread of a
    Unix process only, elsewhere no limit).  Native code is interrupted when it returns to Python."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.armed = False

    def _fire(self, signum, frame):  # noqa: ARG002 - signal handler signature
        raise AnalyzerTimeout(f"time limit of {self.seconds:g} s reached")

    def __enter__(self):
        if (self.seconds and hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()):
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True
        return self

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Picklable settings every task gets (turned into an AnalysisContext in the worker)."""

    tz: str = "UTC"
    work_dir: str | None = None
    symbol_paths: tuple[str, ...] = ()
    binary_paths: tuple[str, ...] = ()
    options: tuple[tuple[str, object], ...] = ()
    max_events: int = DEFAULT_MAX_EVENTS
    timeout_s: float | None = DEFAULT_TIMEOUT_S


@dataclass(slots=True)
class TaskResult:
    run: AnalyzerRun
    events: list[Event] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)


@dataclass(slots=True)
class RunnerOutput:
    runs: list[AnalyzerRun] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)

    def add(self, r: TaskResult) -> None:
        self.runs.append(r.run)
        self.events.extend(r.events)
        self.findings.extend(r.findings)
        self.facts.extend(r.facts)


def _safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return keep[-80:] or "artifact"


def run_task(cls: type[Analyzer], artifact: Artifact, settings: RunSettings, index: int = 0) -> TaskResult:
    """Run one analyzer on one artifact; never raises (except KeyboardInterrupt)."""
    started = time.perf_counter()
    work_dir = None
    if settings.work_dir:
        work_dir = Path(settings.work_dir) / f"{index:05d}-{_safe_name(cls.name)}-{_safe_name(artifact.name)}"
        work_dir.mkdir(parents=True, exist_ok=True)
    ctx = AnalysisContext(
        tz=ZoneInfo(settings.tz),
        work_dir=work_dir,
        symbol_paths=tuple(Path(p) for p in settings.symbol_paths),
        binary_paths=tuple(Path(p) for p in settings.binary_paths),
        options=dict(settings.options),
        max_events=settings.max_events,
    )
    result = TaskResult(run=AnalyzerRun(cls.name, cls.version, artifact.path, RunStatus.OK))
    dropped = {"events": 0, "findings": 0, "facts": 0}
    status, reason, tb = RunStatus.OK, "", ""
    try:
        with _TimeLimit(settings.timeout_s):
            analyzer = cls()
            for item in analyzer.analyze(artifact, ctx):
                if isinstance(item, Event):
                    if len(result.events) < settings.max_events:
                        result.events.append(_stamp(item, cls.name))
                    else:
                        dropped["events"] += 1
                elif isinstance(item, Finding):
                    if len(result.findings) < MAX_FINDINGS:
                        result.findings.append(_stamp(item, cls.name))
                    else:
                        dropped["findings"] += 1
                elif isinstance(item, Fact):
                    if len(result.facts) < MAX_FACTS:
                        result.facts.append(_stamp(item, cls.name))
                    else:
                        dropped["facts"] += 1
                else:
                    raise TypeError(f"analyzer yielded {type(item).__name__}, expected Event, Finding or Fact")
    except KeyboardInterrupt:
        raise
    except BacklineError as exc:  # the input is bad, and the message says where: no traceback
        status = RunStatus.FAILED
        reason = f"{type(exc).__name__}: {exc}"
    except (Exception, AnalyzerTimeout) as exc:  # failure isolation: this is data, not a crash
        status = RunStatus.FAILED
        reason = f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc(limit=30)
    warnings = list(ctx.warnings)
    for what, n in dropped.items():
        if n:
            warnings.append(f"{n} more {what} not kept (limit reached)")
    result.run = AnalyzerRun(
        analyzer=cls.name,
        version=cls.version,
        artifact=artifact.path,
        status=status,
        reason=reason,
        traceback=tb,
        duration_s=round(time.perf_counter() - started, 4),
        events=len(result.events) + dropped["events"],
        findings=len(result.findings) + dropped["findings"],
        facts=len(result.facts) + dropped["facts"],
        warnings=tuple(warnings),
    )
    return result


def _stamp(item, analyzer_name: str):
    """Fill in the analyzer name when the analyzer left it empty."""
    if getattr(item, "analyzer", "x") == "":
        return replace(item, analyzer=analyzer_name)
    return item


def _skipped(artifact: Artifact, analyzer: str, reason: str) -> TaskResult:
    return TaskResult(run=AnalyzerRun(analyzer, "", artifact.path, RunStatus.SKIPPED, reason=reason))


def plan(artifacts: Sequence[Artifact], analyzers: Sequence[type[Analyzer]]):
    """Split into tasks to run and skipped records (one per artifact nothing applies to)."""
    instances = [(cls, cls()) for cls in analyzers]
    tasks: list[tuple[type[Analyzer], Artifact]] = []
    skipped: list[TaskResult] = []
    for art in artifacts:
        if not art.readable:
            why = "; ".join(art.problems) or "not readable"
            skipped.append(_skipped(art, "intake", why))
            continue
        matched = False
        for cls, inst in instances:
            try:
                ok = inst.applies_to(art)
            except Exception as exc:  # an applies_to bug must not stop the run
                skipped.append(TaskResult(run=AnalyzerRun(
                    cls.name, cls.version, art.path, RunStatus.FAILED,
                    reason=f"applies_to raised {type(exc).__name__}: {exc}",
                    traceback=traceback.format_exc(limit=10))))
                continue
            if ok:
                tasks.append((cls, art))
                matched = True
        if not matched:
            why = f"no analyzer for kind '{art.kind.value}'"
            if art.problems:   # e.g. a zero-byte or damaged file: say that, not only the kind
                why += f" ({'; '.join(art.problems)})"
            skipped.append(_skipped(art, "(none)", why))
    return tasks, skipped


ProgressFn = Callable[[str, int, int], None]   # (description, done, total)


def run_all(
    artifacts: Sequence[Artifact],
    analyzers: Sequence[type[Analyzer]],
    settings: RunSettings,
    *,
    jobs: int = 1,
    progress: ProgressFn | None = None,
    scheduler: str | None = None,
) -> RunnerOutput:
    """Run every applicable analyzer on every artifact (on the Dask cluster whose
    scheduler is at ``scheduler``, when given: :mod:`.cluster`)."""
    tasks, skipped = plan(artifacts, analyzers)
    out = RunnerOutput()
    for s in skipped:
        out.add(s)
    total = len(tasks)
    done = 0

    def tick(desc: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(desc, done, total)

    if scheduler:
        from backline.analyzers.cluster import run_on_cluster

        for r in run_on_cluster(tasks, settings, scheduler, tick):
            out.add(r)
        return out

    if jobs <= 1 or total <= 1:
        if jobs > 1:
            # one task: the processes go to it (a large log is read in byte ranges)
            settings = with_split_jobs(settings, jobs)
        for i, (cls, art) in enumerate(tasks):
            out.add(run_task(cls, art, settings, i))
            tick(f"{cls.name} {art.path}")
        return out

    pending = list(enumerate(tasks))
    # Longest first keeps both workers busy to the end.
    pending.sort(key=lambda it: -(it[1][1].size or 0))
    while pending:
        with ProcessPoolExecutor(max_workers=min(jobs, os.cpu_count() or jobs)) as pool:
            futures: dict[Future, tuple[int, tuple[type[Analyzer], Artifact]]] = {}
            for item in pending:
                futures[pool.submit(run_task, item[1][0], item[1][1], settings, item[0])] = item
            pending = []
            broken = False
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in finished:
                    idx, (cls, art) = futures[fut]
                    try:
                        out.add(fut.result())
                        tick(f"{cls.name} {art.path}")
                    except BrokenProcessPool:
                        broken = True
                        pending.append((idx, (cls, art)))
            if broken:
                # The pool died under some task.  Run the unfinished ones one by
                # one in fresh single-worker pools so the culprit is identified.
                for idx, (cls, art) in pending:
                    out.add(_run_isolated(cls, art, settings, idx))
                    tick(f"{cls.name} {art.path}")
                pending = []
    return out


def with_split_jobs(settings: RunSettings, jobs: int, executor=None) -> RunSettings:
    """``settings`` with the processes (or executor) one analyzer may use for one artifact
    (``logs.text`` reads a large log in byte ranges with them)."""
    opts = dict(settings.options)
    logs = dict(opts.get("logs.text") or {})
    logs["jobs"] = jobs
    if executor is not None:
        logs["executor"] = executor
    opts["logs.text"] = logs
    return replace(settings, options=tuple(opts.items()))


def _run_isolated(cls: type[Analyzer], art: Artifact, settings: RunSettings, idx: int) -> TaskResult:
    try:
        with ProcessPoolExecutor(max_workers=1) as pool:
            return pool.submit(run_task, cls, art, settings, idx).result()
    except BrokenProcessPool:
        return TaskResult(run=AnalyzerRun(
            cls.name, cls.version, art.path, RunStatus.FAILED,
            reason="the analyzer's worker process died (crash in native code or out of memory)"))


"""Run analyzers over artifacts, in parallel, with failures isolated.

Every (artifact, analyzer) pair is one task.  A task that raises becomes an
:class:`AnalyzerRun` with ``status=failed``, the reason and the traceback;
the run goes on.  With ``jobs > 1`` or ``isolate`` every task runs in its own
worker process (:mod:`backline.analyzers.isolation`) with hard limits: a task
past its time limit is killed even inside native code, a task past the memory
limit (its address space) is stopped by the kernel, and a task process that dies
outright (a crash inside a native library) fails only that task.  Such a task
is recorded as failed with the reason, and an ``ANALYZER.LIMIT_REACHED`` or
``ANALYZER.CRASHED`` finding names the artifact, the analyzer and the limit, so
the report says what was not analysed; the rest of the report stands.

Every artifact ends up with at least one run record: the analyzers that
applied, or a ``skipped`` record saying why nothing ran (unreadable file, no
analyzer for its kind).
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from backline.analyzers.base import AnalysisContext, Analyzer
from backline.analyzers.isolation import kill_grace
from backline.errors import BacklineError
from backline.model import AnalyzerRun, Artifact, Event, EvidenceRef, Fact, Finding, RunStatus, Severity

#: Most events kept per task; the rest are counted in a warning.
DEFAULT_MAX_EVENTS = 20_000
#: Most findings kept per task (a runaway analyzer cannot flood the report).
MAX_FINDINGS = 2_000
MAX_FACTS = 5_000
#: Time limit of one analyzer on one artifact (None = no limit).
DEFAULT_TIMEOUT_S = 900.0
#: Memory one analyzer may allocate on one artifact, in MiB (``RLIMIT_DATA`` of its task process,
#: on top of what the process holds when the task starts; the evidence files it maps read-only do
#: not count; None = no limit).
DEFAULT_MEMORY_MB = 4096


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
    memory_mb: int | None = DEFAULT_MEMORY_MB     # applies to tasks run in worker processes
    isolate: bool = False                         # worker processes even with jobs=1


@dataclass(slots=True)
class TaskResult:
    run: AnalyzerRun
    events: list[Event] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    # artifact -> what the diagnosis's clock-skew estimate reads of its events, found here
    # (in the task process or on the cluster worker) instead of on the machine making the report
    # (knowledge.diagnosis.timing.skew_digests); None when not made
    skew: dict | None = None

    def __reduce__(self):
        # pickled between processes (a task process, a Dask worker): the events in columns (.wire)
        from backline.analyzers.wire import pack_events
        return (_task_result, (self.run, pack_events(self.events), self.findings, self.facts, self.skew))


def _task_result(run, events, findings, facts, skew=None) -> TaskResult:
    from backline.analyzers.wire import unpack_events
    return TaskResult(run, unpack_events(events), findings, facts, skew)


@dataclass(slots=True)
class RunnerOutput:
    runs: list[AnalyzerRun] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    # artifact -> its skew digest, for the artifacts whose events all came from one task that made one
    skew: dict = field(default_factory=dict)
    _undigested: set = field(default_factory=set)

    def add(self, r: TaskResult) -> None:
        self.runs.append(r.run)
        self.events.extend(r.events)
        self.findings.extend(r.findings)
        self.facts.extend(r.facts)
        if not r.events:
            return
        if r.skew is None:       # events without a digest: their artifacts are read on the report's side
            self._undigested.update({e.artifact for e in r.events})
            for art in self._undigested:
                self.skew.pop(art, None)
            return
        for art, digest in r.skew.items():
            if art in self.skew or art in self._undigested:   # events of one artifact from two tasks
                self.skew.pop(art, None)
                self._undigested.add(art)
            else:
                self.skew[art] = digest


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
        if isinstance(exc, AnalyzerTimeout):
            result.findings.append(_limit_finding(cls, artifact, "time", reason, {
                "timeout_s": settings.timeout_s, "memory_mb": settings.memory_mb}))
    if result.events:
        result.skew = _skew_digests(result.events)
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


def _skew_digests(events: list[Event]) -> dict | None:
    """The clock-skew digests of a task's events (see TaskResult.skew), or None should that fail:
    the diagnosis then reads those events itself."""
    try:
        from backline.knowledge.diagnosis.timing import skew_digests

        return skew_digests(events)
    except Exception:  # noqa: BLE001 - an optional shortcut must not cost the task
        return None


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
    on_result: Callable[[TaskResult], None] | None = None,
    connecting=None,
) -> RunnerOutput:
    """Run every applicable analyzer on every artifact (on the Dask cluster whose
    scheduler is at ``scheduler``, when given: :mod:`.cluster`; ``connecting``: a
    :class:`.cluster.Connecting` to it started earlier, used instead of connecting here).

    ``on_result`` is called with each task's result as soon as it is here, in the order
    the tasks end (which varies from run to run), so that a caller can prepare what it
    makes of each result while the other tasks still run; the output itself lists the
    results in task order whatever order they ended in."""
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

    def arrived(res: TaskResult) -> None:
        if on_result is not None:
            on_result(res)

    if scheduler:
        from backline.analyzers.cluster import run_on_cluster

        for r in run_on_cluster(tasks, settings, scheduler, tick, on_result=arrived, connecting=connecting):
            out.add(r)
        return out

    if jobs > 1 and total <= 1:
        # one task: the processes go to it (a large log is read in byte ranges)
        settings = with_split_jobs(settings, jobs)
    if not settings.isolate and (jobs <= 1 or total <= 1):
        for i, (cls, art) in enumerate(tasks):
            res = run_task(cls, art, settings, i)
            arrived(res)
            out.add(res)
            tick(f"{cls.name} {art.path}")
        return out

    order = list(enumerate(tasks))
    # Longest first keeps both workers busy to the end.
    order.sort(key=lambda it: -(it[1][1].size or 0))
    done_at: dict[int, TaskResult] = {}
    for idx, res in _run_in_workers(order, settings, jobs):
        done_at[idx] = res
        arrived(res)
        tick(f"{res.run.analyzer} {res.run.artifact}")
    for idx in sorted(done_at):       # the report lists them in task order, however they ran
        out.add(done_at[idx])
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


def limit_reason(run: AnalyzerRun, why: str) -> AnalyzerRun:
    """``run`` as failed because of ``why`` (a limit, a crash)."""
    reason = f"{run.reason} ({why})" if run.reason else why
    return replace(run, status=RunStatus.FAILED, reason=reason)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _limit_finding(cls: type[Analyzer], art: Artifact, kind: str, reason: str, data: dict) -> Finding:
    """The report's record of a task stopped by a limit or a crash (``kind``: time, memory, crash)."""
    if kind == "crash":
        code, title = "ANALYZER.CRASHED", f"{cls.name} crashed on {art.name}; its results are missing"
    else:
        code, title = "ANALYZER.LIMIT_REACHED", f"{cls.name} stopped on {art.name}: {kind} limit reached"
    return Finding(code=code, title=title, severity=Severity.MEDIUM, artifact=art.path,
                   evidence=(EvidenceRef(art.path, "file"),), detail=reason, analyzer="runner",
                   data={"analyzer": cls.name, "limit": kind, **data})


def _ended(cls: type[Analyzer], art: Artifact, settings: RunSettings, end) -> TaskResult:
    """A TaskResult from how a task process ended (see isolation.TaskEnd)."""
    if end.result is not None:
        res: TaskResult = pickle.loads(end.result)
        if (res.run.status is RunStatus.FAILED and "limit" in res.run.reason
                and not any(f.code.startswith("ANALYZER.") for f in res.findings)):
            kind = "memory" if "memory limit" in res.run.reason else "time"
            res.findings.append(_limit_finding(cls, art, kind, res.run.reason, _limit_data(settings, end)))
        return res
    peak = end.max_rss_kib // 1024
    mem = f"{settings.memory_mb} MiB" if settings.memory_mb else "none"
    if end.killed_at_limit:
        kind = "time"
        reason = (f"killed at the time limit of {settings.timeout_s:g} s: it did not return to Python "
                  f"(native code) within {kill_grace(settings.timeout_s):g} s more")
    elif end.signal is not None or end.exit_code:
        how = f"signal {_signal_name(end.signal)}" if end.signal is not None else f"exit status {end.exit_code}"
        near = settings.memory_mb and (end.max_rss_kib // 1024 >= settings.memory_mb // 2
                                       or "MemoryError" in end.fault or "memory" in end.fault.lower())
        kind = "memory" if near else "crash"
        what = (f"stopped at the memory limit of {settings.memory_mb} MiB" if near
                else "the analyzer's worker process died (crash in native code or out of memory)")
        reason = f"{what}: {how}, peak resident memory {peak} MiB, memory limit {mem}"
    else:
        kind = "crash"
        reason = ("the analyzer's worker process died (crash in native code or out of memory): "
                  f"it ended without a result; peak resident memory {peak} MiB, memory limit {mem}")
    if end.exit_code == 71:
        reason = end.fault
    run = AnalyzerRun(cls.name, cls.version, art.path, RunStatus.FAILED, reason=reason,
                      traceback=end.fault[-20000:], duration_s=end.duration_s)
    return TaskResult(run=run, findings=[_limit_finding(cls, art, kind, reason, _limit_data(settings, end))])


def _limit_data(settings: RunSettings, end) -> dict:
    return {"timeout_s": settings.timeout_s, "memory_mb": settings.memory_mb,
            "peak_rss_mb": end.max_rss_kib // 1024, "duration_s": end.duration_s}


def _run_in_workers(order, settings: RunSettings, jobs: int):
    """Yield ``(index, TaskResult)`` of every task as it ends, each run in a task process (see isolation)."""
    from multiprocessing.connection import wait as mp_wait

    from backline.analyzers import isolation

    hard_s = settings.timeout_s + kill_grace(settings.timeout_s) if settings.timeout_s else None
    backstop = (hard_s + 15.0) if hard_s else None
    ctx = isolation.context()
    queue = deque(order)
    slots: list[isolation.Slot] = []
    try:
        while queue or any(s.busy for s in slots):
            # hand out tasks to idle slots (start slots as needed, at most ``jobs``)
            while queue:
                slot = next((s for s in slots if s.busy is None), None)
                if slot is None:
                    if len(slots) >= max(1, jobs):
                        break
                    slot = isolation.Slot(ctx, settings.memory_mb, hard_s)
                    slots.append(slot)
                idx, (cls, art) = queue.popleft()
                try:
                    payload = pickle.dumps((cls, art, settings, idx), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:  # noqa: BLE001 - e.g. a class defined inside a function
                    yield idx, TaskResult(run=AnalyzerRun(cls.name, cls.version, art.path, RunStatus.FAILED,
                                                          reason=f"cannot be run in a worker process: "
                                                                 f"{type(exc).__name__}: {exc}"))
                    continue
                slot.send(idx, payload)
                slot.busy = (idx, cls, art, time.monotonic() + backstop if backstop else None)
            busy = [s for s in slots if s.busy]
            deadlines = [s.busy[3] for s in busy if s.busy[3] is not None]
            wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = mp_wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], wait_s)
            for slot in busy:
                idx, cls, art, deadline = slot.busy
                end = None
                if slot.conn in ready or slot.proc.sentinel in ready:
                    try:
                        if slot.conn.poll():
                            end = slot.conn.recv()
                    except (EOFError, OSError):
                        end = None
                    if end is None and not slot.proc.is_alive():     # the supervisor itself died
                        end = isolation.TaskEnd(idx, None, slot.proc.exitcode, None, False, 0, "", 0.0)
                        slot.kill()
                        slots.remove(slot)
                elif deadline is not None and time.monotonic() >= deadline:
                    slot.kill()                                      # it stopped answering
                    slots.remove(slot)
                    end = isolation.TaskEnd(idx, None, None, signal.SIGKILL, True, 0, "", 0.0)
                if end is not None:
                    slot.busy = None
                    yield idx, _ended(cls, art, settings, end)
    finally:
        for slot in slots:
            if slot.busy is None:
                slot.close()
            else:
                slot.kill()

"""The analysis on an existing Dask distributed cluster (``backline analyze --scheduler``).

The user starts ``dask scheduler`` and ``dask worker`` processes (with Backline
installed in the same version on every machine, ``pip install 'backline[cluster]'``)
and gives the scheduler's address (``--scheduler tcp://HOST:8786`` or
``BACKLINE_DASK_SCHEDULER``).  Then:

* every (analyzer, artifact) task is one Dask task, submitted largest file first
  (:func:`run_task_isolated`: on the worker, the task runs in a task process with the
  same hard time and memory limits as a local ``--jobs N`` run, :mod:`.isolation`; the
  worker hands back the pickled result as bytes, so a result is pickled once and
  unpickled once, as locally) - except a large text log, which is planned and merged
  here while its byte ranges are Dask tasks (:func:`.logs.ranges.plan_ranges`,
  :func:`.logs.text_analyzer.scan_range`);
* the workers read the evidence from the paths the intake gave it, so the work
  folder (``--work-dir``) must be a path every worker sees (a shared folder); the
  large outputs (records tables) are written there by the workers, and only their
  paths come back;
* the results come back here, in task order whatever order they ran in, and make
  the same report as a local run.

Failures stay data, as locally: a task past its time limit is killed on its worker
and recorded as a failed run with an ``ANALYZER.LIMIT_REACHED`` finding; a task whose
worker died is retried once by Dask on another worker and, failing again, recorded
as a failed run with an ``ANALYZER.CRASHED`` finding.  The cluster itself failing is
an error (:class:`~backline.errors.ClusterError`), never a wait without end: the
scheduler unreachable at the start or lost for :data:`LOST_S` seconds, no worker for
:data:`LOST_S` seconds, or (with a time limit) no task ending for longer than any
task can run.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from backline.errors import ClusterError, UsageError

#: Environment variable naming the scheduler when ``--scheduler`` is not given.
ENV = "BACKLINE_DASK_SCHEDULER"
#: Seconds without the scheduler (or without any worker) before the analysis fails.
LOST_S = 30.0
#: Seconds added to a task's hard time limit before a cluster that finished nothing is given up.
SLACK_S = 60.0


class DaskMap:
    """``map(fn, *iterables)`` over a Dask client: one task per item, results in order
    (the executor :func:`.logs.text_analyzer.analyze_in_ranges` takes)."""

    def __init__(self, client) -> None:
        self.client = client

    def map(self, fn, *iterables):
        # a large log's byte ranges are the largest tasks: ahead of the queued whole files
        futures = self.client.map(fn, *iterables, pure=False, priority=1 << 30)
        return self.client.gather(futures)

    def workers(self) -> int:
        """Worker threads of the cluster (how many ranges a large log is cut into)."""
        return max(1, sum(self.client.nthreads().values()))


def scheduler_address(given: str | None) -> str | None:
    """The scheduler to use: ``--scheduler``, else ``BACKLINE_DASK_SCHEDULER``, else None (local)."""
    return given or os.environ.get(ENV) or None


def connect(address: str):
    """A client of the scheduler at ``address``; a clear error when that fails."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--scheduler needs Dask: pip install 'backline[cluster]'") from None
    try:
        return Client(address, timeout="15s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


class Connecting:
    """A connection to the scheduler at ``address`` made in a thread of its own, started now:
    Dask's import and the hand-shake with the scheduler run while this machine does the
    intake, instead of after it.  :meth:`client` waits for it (and raises what
    :func:`connect` raises); :meth:`close` closes it, whether it was used or not."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._client = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="backline-dask-connect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._client = connect(self.address)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of client()
            self._error = exc

    def client(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._client

    def close(self) -> None:
        self._thread.join()
        if self._client is not None:
            self._client.close()
            self._client = None


# --------------------------------------------------------------------------- on the worker

_SLOTS = threading.local()      # one supervisor process per worker thread, kept between tasks


def _slot(memory_mb: int | None, hard_s: float | None):
    from backline.analyzers import isolation

    slot = getattr(_SLOTS, "slot", None)
    if slot is not None and (_SLOTS.key != (memory_mb, hard_s) or not slot.proc.is_alive()):
        slot.close()
        slot = None
    if slot is None:
        # A Dask worker under a nanny is a daemonic process, which multiprocessing forbids to
        # start children; the supervisor dies with the worker anyway (die_with_parent).
        config = multiprocessing.current_process()._config
        daemon = config.get("daemon")
        config["daemon"] = False
        try:
            slot = isolation.Slot(isolation.context(), memory_mb, hard_s)
        finally:
            if daemon is not None:
                config["daemon"] = daemon
        _SLOTS.slot, _SLOTS.key = slot, (memory_mb, hard_s)
    return slot


def run_task_isolated(cls, artifact, settings, index: int):
    """Run one (analyzer, artifact) task in a task process of this worker, with the hard
    limits of ``settings``; returns how it ended (:class:`.isolation.TaskEnd`, the result
    still pickled).  Runs on a Dask worker."""
    from backline.analyzers.isolation import TaskEnd, kill_grace

    hard_s = settings.timeout_s + kill_grace(settings.timeout_s) if settings.timeout_s else None
    slot = _slot(settings.memory_mb, hard_s)
    started = time.monotonic()
    slot.send(index, pickle.dumps((cls, artifact, settings, index), protocol=pickle.HIGHEST_PROTOCOL))
    backstop = hard_s + 15.0 if hard_s else None
    if not slot.conn.poll(backstop):                 # the supervisor stopped answering
        slot.kill()
        _SLOTS.slot = None
        return TaskEnd(index, None, None, 9, True, 0, "", round(time.monotonic() - started, 4))
    try:
        return slot.conn.recv()
    except (EOFError, OSError):                      # the supervisor itself died
        code = slot.proc.exitcode
        slot.kill()
        _SLOTS.slot = None
        return TaskEnd(index, None, code, None, False, 0, "", round(time.monotonic() - started, 4))


# --------------------------------------------------------------------------- here

def _lost_worker(cls, art, settings, exc: BaseException):
    """A failed run (and its ``ANALYZER.CRASHED`` finding) for a task whose worker died twice."""
    from backline.analyzers.runner import TaskResult, _limit_finding
    from backline.model import AnalyzerRun, RunStatus

    if type(exc).__name__ == "KilledWorker":
        reason = (f"the Dask worker running it died, and again on the retry "
                  f"(crash in native code or out of memory): {exc}")[:2000]
    else:
        reason = f"the task failed on the Dask cluster: {type(exc).__name__}: {exc}"[:2000]
    return TaskResult(run=AnalyzerRun(cls.name, cls.version, art.path, RunStatus.FAILED, reason=reason),
                      findings=[_limit_finding(cls, art, "crash", reason, {
                          "timeout_s": settings.timeout_s, "memory_mb": settings.memory_mb})])


def _wait_all(client, futures: dict, address: str, hard_s: float | None, on_done: Callable) -> None:
    """Wait for every future in ``futures`` (future -> task index), calling ``on_done(future, index)``
    as each ends; raise ClusterError when the cluster stops answering (see the module docstring)."""
    import queue

    ended: queue.Queue = queue.Queue()
    for fut in futures:
        fut.add_done_callback(ended.put)               # called in a thread of the client
    pending = set(futures)
    give_up_s = hard_s + SLACK_S if hard_s else None
    progress = time.monotonic()
    trouble_since: float | None = None
    while pending:
        done = []
        try:
            done.append(ended.get(timeout=2.0))
            while True:
                done.append(ended.get_nowait())
        except queue.Empty:
            pass
        done = [f for f in done if f in pending]
        pending.difference_update(done)
        now = time.monotonic()
        if done:
            progress = now
        for fut in done:
            if fut.status == "cancelled":
                raise ClusterError(f"the Dask scheduler at {address} cancelled the analysis's tasks "
                                   f"(connection to the scheduler lost?)")
            on_done(fut, futures[fut])
        if not pending:
            break
        trouble = None
        if client.status != "running":
            trouble = f"lost the connection to the Dask scheduler at {address}"
        elif now - progress > 10.0:
            try:
                if not client.nthreads():
                    trouble = f"the Dask cluster at {address} has no workers"
            except Exception as exc:  # noqa: BLE001 - any failure to ask is the same trouble
                trouble = f"the Dask scheduler at {address} does not answer: {type(exc).__name__}: {exc}"
        if trouble is None:
            trouble_since = None
        elif trouble_since is None:
            trouble_since = now
        elif now - trouble_since > LOST_S:
            raise ClusterError(f"{trouble} (for {LOST_S:g} s); {len(pending)} task(s) of the analysis not done")
        if give_up_s is not None and now - progress > give_up_s:
            raise ClusterError(f"no task of the analysis ended on the Dask cluster at {address} in "
                               f"{give_up_s:g} s, longer than a task may run; {len(pending)} task(s) not done")


def run_on_cluster(tasks: Sequence[tuple], settings, address: str, tick: Callable[[str], None], *,
                   on_result: Callable | None = None, connecting: Connecting | None = None) -> list:
    """Run ``tasks`` (``(analyzer class, artifact)`` pairs) on the cluster; their results
    (:class:`.runner.TaskResult`) in task order.  ``on_result(result)`` is called as each
    result arrives (in the order the tasks end); ``connecting``: a connection started
    earlier (closed here), else one is made now."""
    from backline.analyzers.isolation import kill_grace
    from backline.analyzers.logs.ranges import SPLIT_MIN_BYTES
    from backline.analyzers.runner import _ended, run_task, with_split_jobs

    try:
        client = connecting.client() if connecting is not None else connect(address)
    except BaseException:
        if connecting is not None:
            connecting.close()
        raise
    try:
        dmap = DaskMap(client)
        least = int(os.environ.get("BACKLINE_LOGS_SPLIT_MIN_BYTES") or SPLIT_MIN_BYTES)
        big = [i for i, (cls, art) in enumerate(tasks) if cls.name == "logs.text" and (art.size or 0) >= least]
        chosen = set(big)
        # largest first: the workers stay busy to the end and no large file starts last
        rest = sorted((i for i in range(len(tasks)) if i not in chosen), key=lambda i: -(tasks[i][1].size or 0))
        results: list = [None] * len(tasks)
        futures = {}
        for rank, i in enumerate(rest):
            cls, art = tasks[i]
            fut = client.submit(run_task_isolated, cls, art, settings, i, pure=False, retries=1,
                                priority=len(rest) - rank)
            futures[fut] = i

        def done(fut, i) -> None:
            cls, art = tasks[i]
            try:
                results[i] = _ended(cls, art, settings, fut.result())
            except Exception as exc:  # noqa: BLE001 - the worker died twice: a failed run, as a local crash
                results[i] = _lost_worker(cls, art, settings, exc)
            fut.release()                              # the worker may drop the result now
            if on_result is not None:
                on_result(results[i])
            tick(f"{cls.name} {art.path}")

        hard_s = settings.timeout_s + kill_grace(settings.timeout_s) if settings.timeout_s else None
        # a large log: planned and merged here, its byte ranges are tasks of the cluster
        split = with_split_jobs(settings, dmap.workers(), dmap)
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(big)))) as local:
            mine = {local.submit(run_task, tasks[i][0], tasks[i][1], split, i): i for i in big}
            _wait_all(client, futures, address, hard_s, done)
            for fut, i in mine.items():
                results[i] = fut.result()
                if on_result is not None:
                    on_result(results[i])
                tick(f"{tasks[i][0].name} {tasks[i][1].path}")
        return results
    finally:
        if connecting is not None:
            connecting.close()
        else:
            client.close()

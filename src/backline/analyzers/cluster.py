"""The analysis on an existing Dask distributed cluster (``backline analyze --scheduler``).

The user starts ``dask scheduler`` and ``dask worker`` processes (with Backline
installed in the same version on every machine, ``pip install 'backline[cluster]'``)
and gives the scheduler's address (``--scheduler tcp://HOST:8786`` or
``BACKLINE_DASK_SCHEDULER``).  Then:

* every (analyzer, artifact) task is one Dask task (:func:`.runner.run_task`, the
  same function a local worker process runs) - except a large text log, which is
  planned and merged here while its byte ranges are Dask tasks
  (:func:`.logs.ranges.plan_ranges`, :func:`.logs.text_analyzer.scan_range`);
* the workers read the evidence from the paths the intake gave it, so the work
  folder (``--work-dir``) must be a path every worker sees (a shared folder);
* the results come back here and make the same report as a local run.

Failures stay data: a task whose worker died is retried by Dask on another worker
and, failing again, is recorded as a failed run like a local crash.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from backline.errors import UsageError

#: Environment variable naming the scheduler when ``--scheduler`` is not given.
ENV = "BACKLINE_DASK_SCHEDULER"


class DaskMap:
    """``map(fn, *iterables)`` over a Dask client: one task per item, results in order
    (the executor :func:`.logs.text_analyzer.analyze_in_ranges` takes)."""

    def __init__(self, client) -> None:
        self.client = client

    def map(self, fn, *iterables):
        futures = self.client.map(fn, *iterables, pure=False)
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


def run_on_cluster(tasks: Sequence[tuple], settings, address: str, tick: Callable[[str], None]) -> list:
    """Run ``tasks`` (``(analyzer class, artifact)`` pairs) on the cluster; their results
    (:class:`.runner.TaskResult`) in task order."""
    from backline.analyzers.logs.ranges import SPLIT_MIN_BYTES
    from backline.analyzers.runner import TaskResult, run_task, with_split_jobs
    from backline.model import AnalyzerRun, RunStatus

    client = connect(address)
    try:
        dmap = DaskMap(client)
        least = int(os.environ.get("BACKLINE_LOGS_SPLIT_MIN_BYTES") or SPLIT_MIN_BYTES)
        big = [i for i, (cls, art) in enumerate(tasks) if cls.name == "logs.text" and (art.size or 0) >= least]
        rest = [i for i in range(len(tasks)) if i not in set(big)]
        results: list = [None] * len(tasks)
        futures = client.map(run_task, [tasks[i][0] for i in rest], [tasks[i][1] for i in rest],
                             [settings] * len(rest), rest, pure=False, retries=1)
        index = {f.key: i for f, i in zip(futures, rest)}
        # a large log: planned and merged here, its byte ranges are tasks of the cluster
        split = with_split_jobs(settings, dmap.workers(), dmap)
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(big)))) as local:
            mine = {local.submit(run_task, tasks[i][0], tasks[i][1], split, i): i for i in big}
            for fut in futures:
                i = index[fut.key]
                cls, art = tasks[i]
                try:
                    results[i] = fut.result()
                except Exception as exc:  # noqa: BLE001 - the worker died twice: a failed run, as locally
                    results[i] = TaskResult(run=AnalyzerRun(
                        cls.name, cls.version, art.path, RunStatus.FAILED,
                        reason=f"the task failed on the cluster: {type(exc).__name__}: {exc}"))
                tick(f"{cls.name} {art.path}")
            for fut, i in mine.items():
                results[i] = fut.result()
                tick(f"{tasks[i][0].name} {tasks[i][1].path}")
        return results
    finally:
        client.close()

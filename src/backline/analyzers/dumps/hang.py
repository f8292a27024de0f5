"""Wait-for graphs and deadlock cycles, independent of where the threads came from.

A thread that waits on a resource held by another thread gives an edge
``waiter -> owner``.  Every cycle of that graph is a deadlock.

>>> from backline.analyzers.dumps.model import CrashThread, WaitInfo
>>> a = CrashThread(1, name="ab", wait=WaitInfo("mutex", "lock_b", owner=2), holds=("lock_a",))
>>> b = CrashThread(2, name="ba", wait=WaitInfo("mutex", "lock_a", owner=1), holds=("lock_b",))
>>> m = CrashThread(3, name="main", wait=WaitInfo("join", "thread:1", owner=1))
>>> [(d.threads, d.resources) for d in find_deadlocks([a, b, m])]
[((1, 2), ('lock_b', 'lock_a'))]
"""

from __future__ import annotations

from typing import Iterable

from backline.analyzers.dumps.model import CrashThread, Deadlock


def wait_edges(threads: Iterable[CrashThread]) -> dict[int | str, tuple[int | str, str]]:
    """Map each waiting thread id to ``(owner thread id, resource)``.

    The owner comes from ``WaitInfo.owner`` or, when absent, from the thread
    whose ``holds`` lists the resource.
    """
    threads = list(threads)
    holder: dict[str, int | str] = {}
    for t in threads:
        for res in t.holds:
            holder.setdefault(res, t.id)
    edges: dict[int | str, tuple[int | str, str]] = {}
    for t in threads:
        if t.wait is None:
            continue
        owner = t.wait.owner if t.wait.owner is not None else holder.get(t.wait.resource)
        if owner is not None and owner != t.id:
            edges[t.id] = (owner, t.wait.resource)
    return edges


def find_deadlocks(threads: Iterable[CrashThread]) -> list[Deadlock]:
    """Every distinct cycle of the wait-for graph, each starting at its smallest thread id
    (by string order), in a stable order."""
    edges = wait_edges(threads)
    seen_cycles: set[tuple] = set()
    out: list[Deadlock] = []
    for start in edges:
        path: list[int | str] = []
        index: dict[int | str, int] = {}
        node: int | str | None = start
        while node is not None and node in edges and node not in index:
            index[node] = len(path)
            path.append(node)
            node = edges[node][0]
        if node is None or node not in index:
            continue
        cycle = path[index[node]:]
        k = min(range(len(cycle)), key=lambda i: str(cycle[i]))
        cycle = cycle[k:] + cycle[:k]
        key = tuple(cycle)
        if key in seen_cycles:
            continue
        seen_cycles.add(key)
        out.append(Deadlock(threads=key, resources=tuple(edges[t][1] for t in cycle)))
    out.sort(key=lambda d: tuple(str(t) for t in d.threads))
    return out

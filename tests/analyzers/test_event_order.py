"""The report's event order worked out ahead, as each task's result arrives
(``pipeline._EventOrder``, used when the tasks run on a cluster): the same order as the sort
after the last task, whatever order the results came in."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from backline.model import Event, EvidenceRef, Severity
from backline.pipeline import _EventOrder, _sort_key_ts


def _usual(events):
    return sorted(events, key=lambda e: (_sort_key_ts(e.ts), e.artifact))


def _events(seed: int) -> list[list[Event]]:
    """Tasks' events: times that tie within and across artifacts, undated ones, other zones."""
    r = random.Random(seed)
    t0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    berlin = timezone(timedelta(hours=1))
    tasks = []
    for a in range(6):
        evs = []
        for i in range(400):
            k = r.randrange(10)
            ts = None if k == 0 else t0 + timedelta(milliseconds=r.randrange(0, 5000, 250))
            if k == 1:
                ts = ts.astimezone(berlin)                      # the same instant in another zone
            art = f"log{r.randrange(3)}.log" if a == 5 else f"app{a}.log"   # one task, several artifacts
            evs.append(Event(ts, art, "log.error", f"e{a}-{i}", Severity.HIGH, EvidenceRef.line(art, i)))
        tasks.append(evs)
    tasks.append([Event(datetime(1, 1, 1, tzinfo=timezone.utc), "old.log", "k", "year one"),
                  Event(datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc), "new.log", "k", "year 9999")])
    return tasks


def test_the_order_made_ahead_is_the_usual_one_whatever_order_the_results_arrive_in():
    for seed in (1, 2, 3):
        tasks = _events(seed)
        flat = [e for evs in tasks for e in evs]            # the runner's output: task order
        for arrival in (list(range(len(tasks))), list(reversed(range(len(tasks)))),
                        random.Random(seed).sample(range(len(tasks)), len(tasks))):
            order = _EventOrder()
            for i in arrival:
                order.add(tasks[i])
            assert order.usable and len(order.keys) == len(flat)
            got = order.sorted(flat)
            assert [id(e) for e in got] == [id(e) for e in _usual(flat)]


def test_naive_times_or_missing_events_fall_back_to_the_usual_sort():
    tasks = _events(4)
    flat = [e for evs in tasks for e in evs]
    order = _EventOrder()
    order.add(tasks[0][:100])                                 # not every event made ahead
    assert [id(e) for e in order.sorted(flat)] == [id(e) for e in _usual(flat)]
    naive = [Event(datetime(2026, 3, 1, 12, 0, s), "n.log", "k", str(s)) for s in (5, 1, 3)]
    order = _EventOrder()
    order.add(naive)
    assert not order.usable
    assert [e.summary for e in order.sorted(naive)] == ["1", "3", "5"]
    twice = flat[:50] + flat[:1]                              # one object listed twice
    order = _EventOrder()
    order.add(twice)
    assert [id(e) for e in order.sorted(twice)] == [id(e) for e in _usual(twice)]

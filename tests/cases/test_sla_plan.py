"""Clock plans give exactly the clocks compute_clocks gives, at any later time (random histories)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from backline.cases.model import CaseSeverity, CaseStatus
from backline.cases.sla import ClockInput, SlaConfig, compute_clocks
from backline.cases.sla_plan import due, plan_clocks

BASE = datetime(2026, 3, 2, 8, 17, tzinfo=timezone.utc)


def _random_input(rng: random.Random) -> tuple[ClockInput, datetime]:
    created = BASE + timedelta(minutes=rng.randint(0, 60 * 24 * 40))
    t = created
    history = [(created, CaseStatus.NEW)]
    status = CaseStatus.NEW
    for _ in range(rng.randint(0, 5)):
        moves = sorted(CaseStatus, key=lambda s: s.value)
        nxt = rng.choice([s for s in moves if status.can_go_to(s)] or [status])
        t += timedelta(minutes=rng.randint(1, 60 * 24 * 5))
        history.append((t, nxt))
        status = nxt
    first = created + timedelta(minutes=rng.randint(1, 60 * 24 * 3)) if rng.random() < 0.5 else None
    customer = created + timedelta(minutes=rng.randint(0, 60 * 24 * 6))
    staff = created + timedelta(minutes=rng.randint(0, 60 * 24 * 6)) if rng.random() < 0.6 else None
    t0 = max(t, first or t, customer, staff or t) + timedelta(minutes=rng.randint(0, 60 * 24 * 2))
    return ClockInput(rng.choice(list(CaseSeverity)), created, history, first, customer, staff,
                      calendar=rng.choice([None, "24x7", "berlin"])), t0


@pytest.mark.parametrize("seed", range(4))
def test_plans_agree_with_compute_clocks(seed):
    cfg = SlaConfig.default()
    rng = random.Random(seed)
    checked = 0
    for _ in range(150):
        inp, t0 = _random_input(rng)
        plans = plan_clocks(inp, cfg, t0)
        urgency = due(plans)
        for minutes in (0, 1, rng.randint(2, 600), rng.randint(600, 60 * 24 * 3), rng.randint(0, 60 * 24 * 60)):
            now = t0 + timedelta(minutes=minutes, seconds=rng.randint(0, 59))
            expected = compute_clocks(inp, cfg, now)
            assert tuple(p.at(now) for p in plans) == expected, (inp, t0, now)
            live = [c.deadline for c in expected if c.state in ("running", "warning", "breached") and c.deadline]
            assert urgency == (min(live) if live else None)                  # the urgency does not move
            checked += 1
    assert checked == 750

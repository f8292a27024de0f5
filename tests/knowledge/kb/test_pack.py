"""Every starter-pack entry fires on a finding set that shows its problem and not on a near miss."""

from __future__ import annotations

import pytest

from backline.knowledge.kb import load_pack, match_issues
from backline.model import Fact, Finding

from .pack_cases import CASES

PACK = {ki.key: ki for ki in load_pack()}


def _split(items):
    return [x for x in items if isinstance(x, Finding)], [x for x in items if isinstance(x, Fact)]


def test_every_entry_has_a_positive_and_a_near_miss_case():
    assert sorted(CASES, key=lambda k: int(k[3:])) == list(PACK)
    assert all(set(c) == {"hit", "miss"} for c in CASES.values())


@pytest.mark.parametrize("key", list(CASES))
def test_entry_fires_on_its_problem_and_not_on_a_near_miss(key):
    findings, facts = _split(CASES[key]["hit"])
    hit = match_issues(list(PACK.values()), findings, facts)
    assert (key, "match") in [(r.issue.key, r.verdict) for r in hit], f"{key} did not fire on its positive case"
    findings, facts = _split(CASES[key]["miss"])
    miss = match_issues([PACK[key]], findings, facts)
    assert [r for r in miss if r.verdict == "match"] == [], f"{key} fired on its near miss"

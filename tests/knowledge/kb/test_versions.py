"""Versions and ranges as escalation engineers write them."""

import pytest

from backline.knowledge.kb.versions import Version, VersionRange


@pytest.mark.parametrize("lo, hi", [
    ("4.2.9", "4.2.10"), ("4.2", "4.2.1"), ("4.2.3-rc1", "4.2.3"), ("4.2.3", "4.2.3-hf1"),
    ("8.0_191-b12", "8.0_292"), ("1.0-alpha", "1.0-beta"), ("v2", "10"), ("11.0.8+10", "11.0.15+10"),
])
def test_ordering(lo, hi):
    assert Version.parse(lo) < Version.parse(hi)
    assert not Version.parse(hi) < Version.parse(lo)


def test_equal_ignores_trailing_zeros():
    assert Version.parse("4.2") == Version.parse("4.2.0") == Version.parse("v4.2.0.0")


@pytest.mark.parametrize("rng, inside, outside", [
    (">=4.0, <4.2.3", ["4.0", "4.2.2", "4.1.99"], ["3.9", "4.2.3", "5"]),
    ("4.2.*", ["4.2", "4.2.17"], ["4.3", "4.20"]),
    ("*", ["0.1", "99"], []),
    ("!=4.2.1", ["4.2.0"], ["4.2.1"]),
    ("4.2.1", ["4.2.1"], ["4.2.2"]),
])
def test_ranges(rng, inside, outside):
    r = VersionRange.parse(rng)
    assert all(r.contains(v) for v in inside)
    assert not any(r.contains(v) for v in outside)


@pytest.mark.parametrize("bad", [">=", "4.0,,5", ">=4.*", "latest"])
def test_bad_ranges_are_refused_with_the_part(bad):
    with pytest.raises(ValueError):
        VersionRange.parse(bad)

"""Masking stays linear in the length of a message (found by ``benchmarks/fuzz.py log``).

Alternatives of the variable regex used to backtrack through every split of a long run when
the match failed at its end: a 28,000-character hex-like word (a digit, then hex letters,
then a non-hex letter) took 24 s; a long run of digits followed by a symbol took minutes.
Lines are cut at 64 KiB, so each of these must take a small fraction of a second.
"""

from __future__ import annotations

import time

import pytest

from backline.analyzers.logs.masking import canonical, mask

N = 30_000
HOSTILE = {
    "hex-like word ending in a non-hex letter": "1" + "b" * N + "7" + "b" * N + "7fped",
    "digits then a symbol": "1" * N + "~",
    "identifier digits then a symbol": "a1" * N + "~",
    "negative number then a letter": "x -" + "1" * N + "x",
    "0x hex then a symbol": "0x" + "f" * N + "~",
    "version then a dot": "v1" + ".1" * N + ".",
    "long scheme-like word": "a." * N + "//",
    "long word then a template marker": "b" * N + " <*>",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_masking_a_hostile_64k_line_is_fast(case):
    line = HOSTILE[case][:65536]
    started = time.perf_counter()
    out = mask(line)
    canonical(out)
    assert time.perf_counter() - started < 2.0, case


@pytest.mark.parametrize("message, masked", [
    ("id 1b3f5e done", "id <*> done"), ("abc123 x", "<*> x"), ("deadbeef", "deadbeef"),
    ("a1b2c3 q", "<*> q"), ("blk_123 x1y2 z", "<*> <*> z"), ("v1.2.3 ok", "<*> ok"),
    ("-12.5x y", "<*>.5x y"), ("16.0 KB", "<*>"), ("http://h/x 0x1F", "http://<*> <*>"),
    ("1bbbbbb7fped", "<*>"), ("1bbbbbb7f ped", "<*> ped"), ("1bbbbbbfped", "1bbbbbbfped"),
])
def test_masking_kept_its_meaning(message, masked):
    assert mask(message) == masked

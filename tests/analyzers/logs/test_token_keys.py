"""The key table's token key (``_engine.key_fold``): messages that differ only in the
ids and numbers masking always turns into one ``<*>`` (hex ids, digit runs of any
length) share a key, so they are masked once - and must get exactly the shape that
masking them one by one gives.

The messages are drawn from skeletons (fixed words and delimiters, variable parts
drawn again and again) with the contexts where masking reads widths or letters: UUIDs,
MAC addresses, embedded dates, ``HTTP/1.1``, versions, sizes, negative numbers, URLs.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backline.analyzers.logs.masking import mask
from backline.analyzers.logs.miner import TemplateMiner


def _var(rng: random.Random, k: int) -> str:
    if k == 0:
        return str(rng.randrange(10 ** rng.randrange(1, 14)))
    if k == 1:
        return f"{rng.getrandbits(rng.choice([8, 16, 32, 48, 64])):x}"
    if k == 2:
        return (rng.choice(["app", "blk", "job", "v", "V", "x", "ab", "B", "K"]) + rng.choice(["_", "", "-", "."])
                + str(rng.randrange(10 ** rng.randrange(1, 10))))
    if k == 3:
        return (f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}-"
                f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}")
    if k == 4:
        return ":".join(f"{rng.getrandbits(8):02x}" for _ in range(6))
    if k == 5:
        return f"{rng.randrange(100)}.{rng.randrange(10 ** rng.randrange(1, 8))}"
    if k == 6:
        return str(rng.randrange(100))
    return f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"


_WORDS = ["Jan", "Dec 5", "HTTP", "HTTP/1.1", "KB", "B", "MB", "true", "null", "v1", "word", "state", "x",
          "a_b", "ok", "GET", "-", "x1", "ab12"]
_SEPS = [" ", " ", " ", "=", ":", ",", ".", "-", "/", "(", ")", "[", "]", "_", "'", '"', "@", "*", "<", ">",
         "\\", "://", " -", "|", "+", "#", "é", " KB", "HTTP/", "v"]


def _skeletons(rng: random.Random, n: int) -> list[list]:
    out = []
    for _ in range(n):
        parts: list = []
        for _ in range(rng.randrange(1, 7)):
            parts.append(rng.randrange(8) if rng.random() < 0.5 else rng.choice(_WORDS))
            parts.append(rng.choice(_SEPS))
        out.append(parts)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_token_keys_give_the_shapes_of_masking(seed):
    rng = random.Random(seed)
    skels = _skeletons(rng, 300)
    miner = TemplateMiner()
    n = 15_000
    for _ in range(n):
        msg = "".join(_var(rng, x) if isinstance(x, int) else x for x in rng.choice(skels))
        assert miner.shape_text(miner.add(msg)) == mask(msg), msg
    assert not miner.shapes_dropped
    # the token key answered for a good share of the messages (else this tests nothing)
    assert miner.keys.misses < 0.8 * n, miner.keys.misses


@pytest.mark.parametrize("first, second", [
    ("id 12345678-1234-1234-1234-123456789012 ok", "id 12345678-1234-1234-1234-1234567890123 ok"),
    ("id 12345678-abcd-1234-ab12-123456789012 ok", "id 1234567-abcd-1234-ab12-123456789012 ok"),
    ("mac 12:34:56:78:90:12 up", "mac 12:34:56:78:90:123 up"),
    ("at Jan 1 12:00:00 2015 start", "at Jan 1 12:00:00 20155 start"),
    ("at Jan 12 12:00:00 start", "at Jan 123 12:00:00 start"),
    ("GET / HTTP/1.1 200", "GET / HTTP/1.12 200"),
    ("version v12.3a here", "version a12.3a here"),
    ("took 12345 KB", "took 123456 KB"),
    ("took 1.5 KB", "took 1.55 KB"),
    ("id blk_-1234567 gone", "id blk_-12345678 gone"),
    ("vCores:-26> memory:4024,", "vCores:-26> memory:4,"),
    ("see http://h1/ab12cd34 now", "see http://h1/12ab34cd now"),
    ("scheme ab12cd34://x", "scheme 12ab34cd://x"),
    ("x ab12cd34.v1.2 y", "x 12ab34cd.v1.2 y"),
    ("job 3f2a9c1b0d4e step 4 done", "job 123456789012 step 12 done"),
])
def test_width_and_letter_sensitive_contexts(first, second):
    miner = TemplateMiner()
    for msg in (first, second, first, second):
        assert miner.shape_text(miner.add(msg)) == mask(msg), msg


_PART = st.one_of(
    st.from_regex(r"[0-9]{1,14}", fullmatch=True),
    st.from_regex(r"[0-9a-f]{4,16}", fullmatch=True),
    st.from_regex(r"[A-Za-z_]{0,4}[0-9]{1,6}[A-Za-z_]{0,3}", fullmatch=True),
    st.sampled_from(["Jan", "HTTP/1.1", "KB", "v1", "true", "word"]),
)
_SEP = st.sampled_from([" ", "=", ":", ",", ".", "-", "/", "(", ")", "[", "]", "<", ">", "*", "'", "+", "é", " -"])


@settings(max_examples=150, deadline=4000, suppress_health_check=[HealthCheck.too_slow])
@given(skel=st.lists(st.tuples(_PART, _SEP), min_size=1, max_size=6),
       again=st.lists(st.lists(_PART, min_size=6, max_size=6), min_size=1, max_size=6))
def test_messages_of_one_skeleton(skel, again):
    """The same delimiters with other parts: each shape is the message's own mask."""
    miner = TemplateMiner()
    msgs = ["".join(p + s for p, s in skel)]
    msgs += ["".join(parts[i] + s for i, (_, s) in enumerate(skel)) for parts in again]
    for msg in msgs + msgs:
        assert miner.shape_text(miner.add(msg)) == mask(msg), msg

"""Property tests of masking and template mining.

* masking is idempotent: a masked message masks to itself;
* a message always matches its own template (after learning any other messages):
  the template's words, with ``<*>`` standing for some text, spell the message;
* the miner's answer does not depend on the path taken (one message at a time or a block).
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backline.analyzers.logs.masking import VAR, canonical, mask, mask_words
from backline.analyzers.logs.miner import TemplateMiner

PROPS = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
MINING = settings(max_examples=60, deadline=4000, suppress_health_check=[HealthCheck.too_slow])

# words like the ones in real logs: names, numbers, ids, paths, key=value, hex, ip:port, punctuation
WORDS = st.one_of(
    st.sampled_from(["Received", "block", "of", "size", "from", "user", "session", "opened", "closed",
                     "ERROR", "failed", "to", "connect", "jk2_init()", "Found", "child", "in", "slot",
                     "state:", "(pid", "took", "ms", "[main]", "true", "null", "HTTP/1.1", "GET", "-"]),
    st.integers(-10**6, 10**12).map(str),
    st.from_regex(r"blk_-?[0-9]{3,8}", fullmatch=True),
    st.from_regex(r"/[a-z]{1,6}(/[a-z0-9._-]{1,8}){0,3}", fullmatch=True),
    st.from_regex(r"[a-z]{1,6}=[A-Za-z0-9._-]{1,8}", fullmatch=True),
    st.from_regex(r"0x[0-9a-f]{2,10}", fullmatch=True),
    st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]{2,5})?", fullmatch=True),
    st.from_regex(r"[A-Za-z][a-z]{0,7}[0-9]{0,3}[.,:;]?", fullmatch=True),
    st.from_regex(r"https?://[a-z.]{1,10}/[a-z0-9/]{0,10}", fullmatch=True),
)
MESSAGES = st.lists(WORDS, min_size=1, max_size=12).map(" ".join)
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=80)


def template_regex(template: str) -> re.Pattern[str]:
    """``<*>`` stands for some text (at least one character); the rest is literal."""
    parts = template.split(VAR)
    return re.compile("(?s)" + ".+?".join(re.escape(p) for p in parts))


def _norm(message: str) -> str:
    return re.sub(r"\s+", " ", message.strip())


@PROPS
@given(msg=st.one_of(MESSAGES, ANY_TEXT))
@example(msg="connection from 10.0.0.1:5000 closed after 12 ms")
@example(msg="<*> <*>.<*> x<*>y")
def test_masking_is_idempotent(msg):
    once = mask(msg)
    assert mask(once) == once, (msg, once)
    assert canonical(once) == once
    assert mask_words(once) == mask_words(msg)


@PROPS
@given(msg=st.one_of(MESSAGES, ANY_TEXT))
def test_a_masked_message_matches_its_mask(msg):
    assert template_regex(mask(msg)).fullmatch(_norm(msg)), (msg, mask(msg))


@MINING
@given(others=st.lists(MESSAGES, max_size=25), msg=st.one_of(MESSAGES, ANY_TEXT))
@example(others=["user alice logged in", "user bob logged in", "user carol logged in",
                 "user dave logged in"], msg="user erin logged in")
def test_a_message_matches_its_own_template(others, msg):
    miner = TemplateMiner()
    for m in others:
        miner.add(m)
    miner.add(msg)
    for m in others[:5] + [msg]:
        t = miner.template(m)
        assert template_regex(t).fullmatch(_norm(m)), (m, t)


@MINING
@given(msgs=st.lists(MESSAGES, min_size=1, max_size=25))
def test_block_and_one_by_one_learning_agree(msgs):
    a, b = TemplateMiner(), TemplateMiner()
    for m in msgs:
        a.add(m)
    b.add_block(msgs)
    assert [a.template(m) for m in msgs] == [b.template(m) for m in msgs]
    assert sorted((t.template, t.count) for t in a.templates()) == \
        sorted((t.template, t.count) for t in b.templates())

"""Variable masking and template canonicalisation for the template miner.

A message is split on whitespace into *words*; each word is split into
*pieces* at delimiters (``, ; : = | " ' [ ] ( ) { } . - + @ # $ % & !``;
``_`` and ``/`` are part of pieces).  A piece is a variable when it is a
number, a hex value, or an identifier holding two or more digits
(``blk_-1608``, ``R02``, ``0x1f``); a word that starts a path (``/etc/x``)
or is a boolean is a variable too.  Variables become ``<*>``.

Templates are then put in one canonical form (the conventions of the
loghub ground truth): single spaces; a word piece that mixes ``<*>`` with
other characters (``blk_<*>``) becomes ``<*>``; ``<*>.<*>`` and ``<*><*>``
collapse into one ``<*>``.

>>> mask_words("Received block blk_-1608 of size 91178 from /10.250.10.6")
('Received', 'block', '<*>', 'of', 'size', '<*>', 'from', '<*>')
>>> canonical("state <*>.<*>.<*> took <*><*> ms")
'state <*> took <*> ms'
>>> mask_words("jk2_init() Found child 6725 in scoreboard slot 10")
('jk2_init()', 'Found', 'child', '<*>', 'in', 'scoreboard', 'slot', '<*>')
"""

from __future__ import annotations

import re

VAR = "<*>"

#: Delimiters between pieces of a word (kept in the output).
DELIMS = r"""\s,;:=|"'\[\](){}.\-+@#$%&!"""
_SPLIT = re.compile(r"([" + DELIMS + r"]+)")

# One pass over the whole message: numbers / hex / digit-heavy identifiers as
# whole pieces; paths; booleans.  Pieces are bounded by delimiters or ends.  Runs are matched
# possessively (``++``, ``*+``) or with a bounded length: a failed match must not backtrack
# through every split of a long run (found by fuzzing: a 28,000-character hex-like word took
# 24 s, a run of digits followed by a symbol minutes).
_P_START = r"(?<![^/" + DELIMS + r"])"
_P_END = r"(?![^/" + DELIMS + r"])"
_VAR_RX = re.compile(
    r"(?P<keep>\b(?:HTTP|HTTPS|RTSP|SIP|SPDY)/\d(?:\.\d)?(?![\w.]))"      # protocol names stay
    r"|\b[a-zA-Z][a-zA-Z0-9+.-]{0,31}+://[^\s'\")\]}]+"    # URLs (scheme kept by _URL_KEEP; a scheme
    # is short: bounded, so a long run of name characters is not rescanned at every word start)
    r"|(?:(?<=[\s=:,'\"(\[{])|^)/(?:[^\s/,;:'\")\]}]+/?)+"     # paths
    r"|(?:(?<=[\s=,'\"(\[{])|^)(?:[A-Za-z]:|\\\\[\w.$-]+)\\[^\s,;'\")\]}]*"   # Windows paths
    r"|\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? )?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" [ \d]?\d \d\d:\d\d:\d\d(?:\.\d+)?(?: \d{4})?\b"        # embedded dates
    r"|(?:(?<=[_\s=:,(\[{])|^)-\d++(?:\.\d++)?(?![^" + DELIMS + r"])"  # negative numbers
    r"|(?:(?<=[\s=:,(\[{])|^)\*\d++(?![^" + DELIMS + r"])"   # connection / request numbers: nginx's "*42"
    r"|" + _P_START + r"\d++(?:\.\d++)? ?(?:[KMGTP]i?B|B)(?![\w])"      # sizes: 16.0 KB, 0MB
    r"|(?<![\w.])[vV]\d++(?:[._-]\d++)+[a-z]?(?![\w.])"                   # versions: v6.1.7601
    r"|(?<![\w-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])"  # UUIDs
    r"|(?<![\w:])(?:[0-9A-Fa-f]{2}[:-]){5,}[0-9A-Fa-f]{2}(?![\w:])"       # MAC / hardware ids
    r"|" + _P_START + r"(?:"
    r"0[xX][0-9a-fA-F]++"                       # 0x hex
    # bare hex >= 6 characters with a digit followed (later) by a letter a-f
    r"|(?=[a-fA-F]*+\d[0-9]*+[a-fA-F])[0-9a-fA-F]{6,}+(?=[" + DELIMS + r"]|$)"
    r"|\d++"                                    # plain numbers
    r"|(?=(?:[^\W\d]*+\d){2})\w++"              # identifiers with two or more digits
    r"|(?i:true|false|null)"                    # booleans / null
    r")" + _P_END
)
_WS = re.compile(r"\s+")
# a piece holding <*>: anchored at the piece's start (a delimiter or the start before it), so
# a long piece without <*> costs one scan, not one per character (64 KiB lines stay linear)
_MIXED = re.compile(r"(?<![^/" + DELIMS + r"])[^/" + DELIMS + r"]*<\*>[^/" + DELIMS + r"]*")
_MULTI = re.compile(r"<\*>(?:[.,-]?<\*>)+")


# host names that end in a number: msra-sa-41, mesos-slave-07 (two or more name parts)
_HOSTLIKE = re.compile(r"(?<![\w.-])[A-Za-z]+(?:-[A-Za-z]+)+-<\*>")


def _var(m: re.Match[str]) -> str:
    tok = m.group()
    if m.lastgroup == "keep":
        return tok
    i = tok.find("://")
    return tok[: i + 3] + VAR if i > 0 else VAR


def mask(message: str) -> str:
    """Replace obvious variables in ``message`` by ``<*>`` (canonical form)."""
    return canonical(_VAR_RX.sub(_var, message))


def mask_words(message: str) -> tuple[str, ...]:
    """:func:`mask`, split into words."""
    return tuple(mask(message).split(" ")) if message.strip() else ()


def _mixed(m: re.Match[str]) -> str:
    tok = m.group()
    return VAR if tok != VAR else tok


def canonical(template: str) -> str:
    """Put a template in canonical form (see module docstring)."""
    t = _WS.sub(" ", template.strip())
    if VAR not in t:
        return t
    t = _MIXED.sub(_mixed, t)
    t = _HOSTLIKE.sub(VAR, t)
    return _MULTI.sub(VAR, t)


def pieces(word: str) -> list[str]:
    """Split a word into pieces and delimiters (delimiters kept at odd indexes)."""
    return _SPLIT.split(word)


_STRUCT = re.compile(r"([\s,;:=|\"'\[\](){}])")


def generalise_word(a: str, b: str) -> str | None:
    """The most specific word pattern covering words ``a`` and ``b``, or ``None``.

    Words are compared by *segments* between structural delimiters
    (``, ; : = | " ' [ ] ( ) { }``): equal segments stay, differing ones
    become ``<*>``.  Words whose delimiters differ, or where a segment is
    empty in one and not the other, are different words (``None``): they
    belong to different templates.

    >>> generalise_word("user=root", "user=cyrus")
    'user=<*>'
    >>> generalise_word("android.intent.A", "android.intent.B")
    '<*>'
    >>> generalise_word("LOGIN(uid=<*>)", "(uid=<*>)") is None
    True
    """
    if a == b:
        return a
    if a == VAR or b == VAR:
        return VAR
    sa, sb = _STRUCT.split(a), _STRUCT.split(b)
    if len(sa) != len(sb):
        return None
    out = []
    for i, (x, y) in enumerate(zip(sa, sb)):
        if x == y:
            out.append(x)
        elif i % 2 == 1 or (i == 0 and (not x or not y)):
            return None
        else:
            out.append(VAR)
    return canonical("".join(out))

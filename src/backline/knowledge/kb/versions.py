"""Product versions and version ranges, as escalation engineers write them.

Versions are compared part by part: runs of digits as numbers, runs of
letters as text, so ``4.2.10 > 4.2.9`` and ``8.0_292 > 8.0_191``.  A
pre-release word (``rc``, ``beta``, ``alpha``, ``dev``, ``pre``, ``snapshot``)
sorts before the release it precedes; any other trailing word (a hotfix or
build tag such as ``4.2.3-hf1``) sorts after it.

A range is a comma-separated list of constraints that must all hold
(``>=4.0, <4.2.3``); a bare version means ``==``; ``*`` or an empty text
means every version.  ``4.2.*`` means the 4.2 line.

>>> Version.parse("4.2.10") > Version.parse("4.2.9")
True
>>> Version.parse("4.2.3-rc1") < Version.parse("4.2.3") < Version.parse("4.2.3-hf1")
True
>>> VersionRange.parse(">=4.0, <4.2.3").contains("4.2.1"), VersionRange.parse(">=4.0, <4.2.3").contains("4.2.3")
(True, False)
>>> VersionRange.parse("4.2.*").contains("4.2.17"), VersionRange.parse("4.2.*").contains("4.3")
(True, False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_TOKEN = re.compile(r"\d+|[A-Za-z]+")
_PRE = {"dev": -4, "snapshot": -4, "alpha": -3, "a": -3, "beta": -2, "b": -2, "pre": -1, "rc": -1, "cr": -1}
_OPS = ("==", "!=", ">=", "<=", ">", "<", "=")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A parsed version; compare with ``<``, ``==`` and friends."""

    text: str
    key: tuple[tuple[int, int | str], ...]

    @classmethod
    def parse(cls, text: str) -> "Version":
        """Parse ``text`` (raises ValueError when it holds no digit at all).

        >>> Version.parse("v1.10").key
        ((0, 1), (0, 10))
        """
        t = str(text).strip()
        if t[:1] in ("v", "V") and t[1:2].isdigit():
            t = t[1:]
        if not any(ch.isdigit() for ch in t):
            raise ValueError(f"not a version: {text!r}")
        key: list[tuple[int, int | str]] = []
        for tok in _TOKEN.findall(t):
            if tok.isdigit():
                key.append((0, int(tok)))
            else:
                word = tok.lower()
                # a pre-release word sorts before the release (-1 < 0), any other word after it
                key.append((_PRE[word], word) if word in _PRE else (1, word))
        # trailing zeros do not matter (4.2 == 4.2.0)
        while len(key) > 1 and key[-1] == (0, 0):
            key.pop()
        return cls(t, tuple(key))

    def _cmp_key(self) -> tuple:
        # mixed int/str parts: compare (kind, value) with value made comparable inside its kind
        return tuple((k, v if isinstance(v, int) else 0, v if isinstance(v, str) else "") for k, v in self.key)

    def __lt__(self, other: "Version") -> bool:
        a, b = self._cmp_key(), other._cmp_key()
        # a missing part counts as release (0, 0): 4.2 < 4.2.1, 4.2-rc1 < 4.2
        n = max(len(a), len(b))
        pad = (0, 0, "")
        return a + (pad,) * (n - len(a)) < b + (pad,) * (n - len(b))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        a, b = self._cmp_key(), other._cmp_key()
        n = max(len(a), len(b))
        pad = (0, 0, "")
        return a + (pad,) * (n - len(a)) == b + (pad,) * (n - len(b))

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Constraint:
    op: str                 # == != >= <= > < or "prefix" for 4.2.*
    version: Version

    def holds(self, v: Version) -> bool:
        if self.op == "prefix":
            return v.key[: len(self.version.key)] == self.version.key
        return {"==": v == self.version, "!=": v != self.version, ">=": v >= self.version,
                "<=": v <= self.version, ">": v > self.version, "<": v < self.version}[self.op]

    def __str__(self) -> str:
        return f"{self.version}.*" if self.op == "prefix" else f"{self.op}{self.version}"


@dataclass(frozen=True, slots=True)
class VersionRange:
    """Constraints that must all hold; no constraints = every version."""

    constraints: tuple[Constraint, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> "VersionRange":
        """Parse ``>=4.0, <4.2.3`` / ``4.2.*`` / ``4.2.1`` / ``*``; ValueError names the bad part."""
        t = (text or "").strip()
        if t in ("", "*", "any", "all"):
            return cls(())
        out = []
        for part in (p.strip() for p in t.split(",")):
            if not part:
                raise ValueError(f"empty constraint in version range {text!r}")
            op = next((o for o in _OPS if part.startswith(o)), "")
            rest = part[len(op):].strip()
            if op == "=":
                op = "=="
            if rest.endswith(".*"):
                if op not in ("", "=="):
                    raise ValueError(f"'{part}': a wildcard version takes no operator")
                out.append(Constraint("prefix", Version.parse(rest[:-2])))
                continue
            try:
                out.append(Constraint(op or "==", Version.parse(rest)))
            except ValueError:
                raise ValueError(f"'{part}' in version range {text!r} is not a version constraint") from None
        return cls(tuple(out))

    def contains(self, version: str | Version) -> bool:
        v = version if isinstance(version, Version) else Version.parse(version)
        return all(c.holds(v) for c in self.constraints)

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.constraints) or "*"


def try_version(text: object) -> Version | None:
    """``Version.parse(text)`` or None when ``text`` is not a version.

    >>> try_version("unknown") is None, str(try_version("17.0.15+6"))
    (True, '17.0.15+6')
    """
    if text is None:
        return None
    try:
        return Version.parse(str(text))
    except ValueError:
        return None

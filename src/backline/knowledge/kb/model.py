"""The known-issue model: what a known issue is, how it is recognised, what a match says.

Plain frozen data, no I/O.  :mod:`.loader` makes these from JSON/YAML (after
the schema check), :mod:`.engine` evaluates them over findings and facts.

>>> ki = KnownIssue(key="KB-1", title="TLS version mismatch", matchers=(
...     FindingMatcher(code="NET.TLS.ALERT", where=(Condition("description", "eq", "protocol_version"),)),))
>>> ki.status.value, ki.matchers[0].describe()
('published', 'finding NET.TLS.ALERT where description = protocol_version')
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from backline.model import EvidenceRef, Severity

KEY_RE = re.compile(r"^KB-[1-9][0-9]{0,8}$")


class Status(str, enum.Enum):
    """Where a known issue is in its life: only published ones are matched by the service."""

    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class Fix:
    """How the problem was fixed: the bug, the first version with the fix, a hotfix."""

    bug: str = ""              # tracker key, e.g. "ORD-1234"
    bug_url: str = ""
    fixed_in: str = ""         # first version that has the fix (of the product, or of `version_fact`)
    hotfix: str = ""           # hotfix name, e.g. "HF-7"

    def describe(self) -> str:
        """``bug ORD-1234; fixed in 4.2.3; hotfix HF-7`` (empty when nothing is known)."""
        parts = []
        if self.bug:
            parts.append(f"bug {self.bug}")
        if self.fixed_in:
            parts.append(f"fixed in {self.fixed_in}")
        if self.hotfix:
            parts.append(f"hotfix {self.hotfix}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Affects:
    """A product (``""`` = any) and the version range that has the problem.

    ``fact`` names a fact whose value is the version that matters (``jvm.version``
    for a JVM bug), instead of the customer's product version.
    """

    product: str = ""
    versions: str = "*"
    fact: str = ""


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on a value: ``path`` into a mapping (dotted), an operator, an operand.

    Operators: ``eq`` ``ne`` ``in`` ``not_in`` ``regex`` ``not_regex`` ``prefix`` ``contains``
    ``gte`` ``gt`` ``lte`` ``lt`` ``exists`` ``version`` (a version range).
    """

    path: str
    op: str
    value: Any

    def describe(self) -> str:
        sym = {"eq": "=", "ne": "!=", "gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}.get(self.op)
        if sym:
            return f"{self.path} {sym} {self.value}"
        if self.op == "exists":
            return f"{self.path} {'exists' if self.value else 'is absent'}"
        if self.op in ("in", "not_in"):
            return f"{self.path} {self.op.replace('_', ' ')} [{', '.join(map(str, self.value))}]"
        return f"{self.path} {self.op} {self.value}"


# ----------------------------------------------------------------------------- matchers

@dataclass(frozen=True, slots=True)
class FindingMatcher:
    """A finding code (``NET.TLS.*`` for a prefix) with conditions on its ``data``."""

    code: str
    where: tuple[Condition, ...] = ()
    title_regex: str = ""
    min_count: int = 1
    kind: str = "finding"

    def describe(self) -> str:
        s = f"finding {self.code}"
        if self.where:
            s += " where " + " and ".join(c.describe() for c in self.where)
        if self.title_regex:
            s += f" titled /{self.title_regex}/"
        if self.min_count > 1:
            s += f" at least {self.min_count}x"
        return s


@dataclass(frozen=True, slots=True)
class SignatureMatcher:
    """A crash signature or bucket id, exact or as a prefix."""

    signature: str = ""
    bucket: str = ""
    prefix: bool = False
    kind: str = "signature"

    def describe(self) -> str:
        what = f"crash signature {self.signature!r}" if self.signature else f"crash bucket {self.bucket!r}"
        return what + (" (prefix)" if self.prefix else "")


@dataclass(frozen=True, slots=True)
class ExceptionMatcher:
    """An exception (or signal / crash reason) type, optionally with a message and a frame.

    ``type`` matches the exception's type or one of its causes, by full name or
    by the name after the last dot (``OutOfMemoryError``); ``message`` and
    ``frame`` are regular expressions (message: the finding's title; frame: the
    signature's frames, the problematic or blamed frame, frame evidence).
    """

    type: str
    message: str = ""
    frame: str = ""
    kind: str = "exception"

    def describe(self) -> str:
        s = f"exception {self.type}"
        if self.message:
            s += f" /{self.message}/"
        if self.frame:
            s += f" in frame /{self.frame}/"
        return s


@dataclass(frozen=True, slots=True)
class LogMatcher:
    """Log lines by template (``<*>`` wildcards) or regular expression, seen at least ``min_count`` times."""

    regex: str = ""
    template: str = ""
    min_count: int = 1
    kind: str = "log"

    def describe(self) -> str:
        what = f"log template {self.template!r}" if self.template else f"log /{self.regex}/"
        return what + (f" at least {self.min_count}x" if self.min_count > 1 else "")


@dataclass(frozen=True, slots=True)
class EventMatcher:
    """A Windows event: provider + event id, optional event data fields, at least ``min_count`` times."""

    provider: str
    event_id: int
    fields: tuple[Condition, ...] = ()
    min_count: int = 1
    kind: str = "event"

    def describe(self) -> str:
        s = f"event {self.provider} {self.event_id}"
        if self.fields:
            s += " with " + " and ".join(c.describe() for c in self.fields)
        return s + (f" at least {self.min_count}x" if self.min_count > 1 else "")


@dataclass(frozen=True, slots=True)
class FactMatcher:
    """A fact (``dump.os``, ``jvm.version``) whose value meets ``condition`` (path ``""`` = the value)."""

    fact: str
    condition: Condition
    kind: str = "fact"

    def describe(self) -> str:
        c = self.condition
        return f"fact {self.fact}" + (f" {c.describe()}" if not c.path else f" {c.describe()}")


@dataclass(frozen=True, slots=True)
class RuleMatcher:
    """A Python rule from the rule registry (:mod:`.rules`), with parameters."""

    rule: str
    params: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "rule"

    def describe(self) -> str:
        return f"rule {self.rule}" + (f" {dict(self.params)}" if self.params else "")


Matcher = FindingMatcher | SignatureMatcher | ExceptionMatcher | LogMatcher | EventMatcher | FactMatcher | RuleMatcher


@dataclass(frozen=True, slots=True)
class KnownIssue:
    """A known problem: what it looks like, why it happens, what to do, and how to recognise it.

    It matches when its matchers are satisfied (``match="any"``: one of them;
    ``"all"``: every one) and every ``when`` gate holds.
    """

    key: str
    title: str
    symptoms: str = ""
    root_cause: str = ""
    workaround: str = ""
    fix: Fix = Fix()
    affects: tuple[Affects, ...] = ()
    status: Status = Status.PUBLISHED
    matchers: tuple[Matcher, ...] = ()
    match: str = "any"
    when: tuple[FactMatcher, ...] = ()
    severity: Severity | None = None        # of the KB.MATCH finding (None: the matched findings' worst)
    tags: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    notes: str = ""                         # what the entry cannot see (analyzer gaps), for the reader
    source: str = ""                        # where it was loaded from (file, "pack:...", "service")


# ----------------------------------------------------------------------------- results

@dataclass(frozen=True, slots=True)
class Hit:
    """What one matcher matched: a description, the evidence, how often."""

    matcher: str
    evidence: tuple[EvidenceRef, ...]
    artifacts: tuple[str, ...]
    count: int = 1
    codes: tuple[str, ...] = ()
    severity: Severity = Severity.INFO


@dataclass(frozen=True, slots=True)
class KbResult:
    """The outcome of one known issue over one body of evidence.

    ``verdict``: ``match`` (it applies), ``not_affected`` (the evidence matched but
    the version is fixed or outside the affected range; ``reason`` says which),
    ``skipped`` (a rule's declared input is missing; ``reason`` says which).
    """

    issue: KnownIssue
    verdict: str
    hits: tuple[Hit, ...] = ()
    reason: str = ""
    version: str = ""          # the version compared, when one was

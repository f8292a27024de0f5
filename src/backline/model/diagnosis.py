"""The diagnosis: probable root causes with the chain of findings each one explains.

Value types only (no I/O), made by :mod:`backline.knowledge.diagnosis` and read by
the reports and the case service.  Findings are named by their index in the
analysis' ``findings`` list, so a diagnosis is only meaningful next to that list.

>>> from backline.model import EvidenceRef
>>> link = ChainLink(cause=2, effect=3, relation="refused-explains-connection-errors",
...                  rationale="a refused connection is the error its client logs",
...                  joined_on=(("endpoint", "127.0.0.1:15432"),),
...                  evidence=(EvidenceRef.line("app.log", 8),))
>>> pc = ProbableCause(title="Nothing listening on 127.0.0.1:15432", confidence=0.8,
...                    code="NET.TCP.RST_TO_SYN", finding=2, chain=(link,))
>>> pc.explained
(3,)
>>> Diagnosis(causes=(pc,)).top.code
'NET.TCP.RST_TO_SYN'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from backline.model.core import EvidenceRef, Finding

#: Version of the diagnosis format (bumped when the relation library's meaning changes).
DIAGNOSIS_VERSION = "1"


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One step of a chain: finding ``cause`` explains finding ``effect``.

    ``relation`` is the id of the cause->effect relation of the library that
    holds here, ``rationale`` its reason in plain words, ``joined_on`` the
    entities both findings name (``("endpoint", "127.0.0.1:15432")``; kind
    ``time`` when only their times tie them), ``evidence`` the effect's own
    references (where a person sees it).
    """

    cause: int
    effect: int
    relation: str
    rationale: str
    joined_on: tuple[tuple[str, str], ...] = ()
    evidence: tuple[EvidenceRef, ...] = ()
    effect_title: str = ""          # the effect finding's title
    effect_summary: str = ""        # the effect in a few plain words ("connection errors naming ...")
    weight: float = 0.0             # how strongly the relation and the join tie the two (0..1)


@dataclass(frozen=True, slots=True)
class NextStep:
    """What would confirm or refute a cause, or what to ask the customer.

    ``kind`` is ``confirm``, ``refute`` or ``ask``.
    """

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class ProbableCause:
    """A finding that probably caused (some of) the others.

    ``finding`` is its index in the findings list and ``code`` that finding's
    code; ``confidence`` is in [0, 1]; ``chain`` lists the links from it to
    every finding it explains (breadth first); ``evidence`` is the cause's own
    references; ``reasons`` says how the score came about (prior, links, time).
    """

    title: str
    confidence: float
    code: str
    finding: int
    chain: tuple[ChainLink, ...] = ()
    evidence: tuple[EvidenceRef, ...] = ()
    next_steps: tuple[NextStep, ...] = ()
    signal: str = ""
    reasons: tuple[str, ...] = ()

    @property
    def explained(self) -> tuple[int, ...]:
        """Indices of the findings this cause explains, in chain order."""
        return tuple(dict.fromkeys(link.effect for link in self.chain))


@dataclass(frozen=True, slots=True)
class ClockSkew:
    """How far ``artifact``'s clock is ahead of the reference artifact's, estimated
    from ``pairs`` events both record (``offset_s`` is subtracted to align them)."""

    artifact: str
    reference: str
    offset_s: float
    pairs: int


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The ranked probable causes of one analysis and how they were reached."""

    causes: tuple[ProbableCause, ...] = ()
    incident_start: datetime | None = None
    incident_end: datetime | None = None
    skews: tuple[ClockSkew, ...] = ()
    duration_s: float = 0.0
    version: str = DIAGNOSIS_VERSION

    @property
    def top(self) -> ProbableCause | None:
        return self.causes[0] if self.causes else None

    def remap(self, new_index: Callable[[int], int]) -> "Diagnosis":
        """The same diagnosis with every finding index passed through ``new_index``
        (used when the findings list is put in another order)."""
        causes = tuple(dataclasses.replace(
            c, finding=new_index(c.finding),
            chain=tuple(dataclasses.replace(link, cause=new_index(link.cause), effect=new_index(link.effect))
                        for link in c.chain))
            for c in self.causes)
        return dataclasses.replace(self, causes=causes)


def causes_first(findings: Sequence[Finding], diagnosis: "Diagnosis | None",
                 key: Callable[[Finding], object] | None = None) -> tuple[tuple[Finding, ...], "Diagnosis | None"]:
    """The findings ordered with the probable causes first (in rank order), the rest by ``key``
    (stable; given order when None), and the diagnosis with its indices moved along.

    >>> from backline.model import Severity
    >>> fs = [Finding("A", "a", Severity.HIGH, "x"), Finding("B", "b", Severity.LOW, "x")]
    >>> d = Diagnosis(causes=(ProbableCause("b broke", 0.7, "B", 1, chain=(ChainLink(1, 0, "r", "why"),)),))
    >>> ordered, moved = causes_first(fs, d)
    >>> [f.code for f in ordered], moved.causes[0].finding, moved.causes[0].chain[0].effect
    (['B', 'A'], 0, 1)
    """
    order = list(range(len(findings)))
    if key is not None:
        order.sort(key=lambda i: key(findings[i]))       # type: ignore[arg-type,return-value]
    if diagnosis is not None and diagnosis.causes:
        firsts = list(dict.fromkeys(c.finding for c in diagnosis.causes if 0 <= c.finding < len(findings)))
        chosen = set(firsts)
        order = firsts + [i for i in order if i not in chosen]
    new_pos = {old: new for new, old in enumerate(order)}
    moved = diagnosis.remap(lambda i: new_pos.get(i, i)) if diagnosis is not None else None
    return tuple(findings[i] for i in order), moved

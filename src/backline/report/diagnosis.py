"""What every renderer shows of the diagnosis: the probable root cause first, with its chain.

Renderers lay out the same rows: :func:`diagnosis_view` turns a report's
:class:`~backline.model.Diagnosis` into a :class:`CauseView` per probable cause
(heading, the cause's finding, the chain as indented rows, next steps).

>>> from backline.model import ChainLink, EvidenceRef, ProbableCause
>>> pc = ProbableCause("Nothing listening on 10.0.0.5:5432", 0.82, "NET.TCP.RST_TO_SYN", 0, chain=(
...     ChainLink(0, 1, "r1", "why", (("endpoint", "10.0.0.5:5432"),), (EvidenceRef.line("app.log", 9),),
...               effect_summary="connection errors"),
...     ChainLink(1, 2, "r2", "why", (("artifact", "app.log"),), effect_summary="the exit")))
>>> [(row.depth, row.summary, row.joined) for row in chain_rows(pc)]
[(1, 'connection errors', 'endpoint 10.0.0.5:5432'), (2, 'the exit', 'same file')]
>>> heading(pc), heading(ProbableCause("x", 0.3, "C", 0))
('Probable root cause', 'Possible root cause')
>>> confident((pc,)), confident((ProbableCause("x", 0.37, "C", 0),)), section_heading(())
(True, False, 'No confident root cause')
"""

from __future__ import annotations

from dataclasses import dataclass

from backline.model import ChainLink, EvidenceRef, Finding, ProbableCause

#: Below this confidence a cause is shown as "possible", not "probable".
PROBABLE = 0.5
#: Alternatives shown after the top cause in the short (terminal, Markdown head) views.
MAX_ALTERNATIVES = 2


@dataclass(frozen=True, slots=True)
class ChainRow:
    depth: int                      # 1 = explained by the cause itself
    link: ChainLink
    summary: str                    # the effect in plain words
    joined: str                     # what ties it to its cause ("endpoint 10.0.0.5:5432", "same file", ...)

    @property
    def where(self) -> EvidenceRef | None:
        return self.link.evidence[0] if self.link.evidence else None


@dataclass(frozen=True, slots=True)
class CauseView:
    rank: int
    cause: ProbableCause
    heading: str
    finding: Finding | None
    rows: tuple[ChainRow, ...]


#: The section's heading when no cause reaches :data:`PROBABLE`: the candidates are listed, none is put first.
NO_CONFIDENT = "No confident root cause"


def heading(cause: ProbableCause) -> str:
    return "Probable root cause" if cause.confidence >= PROBABLE else "Possible root cause"


def confident(causes: tuple[ProbableCause, ...] | list[ProbableCause]) -> bool:
    """Whether the top cause is confident enough to be presented as *the* probable root cause.
    When not, renderers say "No confident root cause" and list the candidates below (a healthy
    bundle's lone NXDOMAIN at 0.37 is a candidate to glance at, not a diagnosis)."""
    return bool(causes) and causes[0].confidence >= PROBABLE


def section_heading(causes: tuple[ProbableCause, ...] | list[ProbableCause]) -> str:
    return "Probable root cause" if confident(causes) else NO_CONFIDENT


def joined_text(link: ChainLink) -> str:
    """What ties an effect to its cause, in a few words."""
    parts = []
    for kind, value in link.joined_on[:2]:
        if kind == "artifact":
            parts.append("same file")
        elif kind == "time":
            parts.append(value)
        else:
            parts.append(f"{kind} {value}")
    return ", ".join(parts)


def chain_rows(cause: ProbableCause) -> list[ChainRow]:
    """The chain as rows in order, each with its depth below the cause."""
    depth = {cause.finding: 0}
    rows = []
    for link in cause.chain:
        d = depth.get(link.cause, 0) + 1
        depth.setdefault(link.effect, d)
        rows.append(ChainRow(d, link, link.effect_summary or link.effect_title, joined_text(link)))
    return rows


def diagnosis_view(findings: tuple[Finding, ...], causes: tuple[ProbableCause, ...]) -> list[CauseView]:
    out = []
    for rank, c in enumerate(causes, 1):
        f = findings[c.finding] if 0 <= c.finding < len(findings) else None
        out.append(CauseView(rank, c, heading(c), f, tuple(chain_rows(c))))
    return out

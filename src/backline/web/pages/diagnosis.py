"""The case page's "Probable root cause" place: the case's current diagnosis over all its evidence.

A provider for :data:`backline.web.pages.case.CASE_SECTIONS` (staff only, like the findings):
the top probable cause with its confidence, the finding it rests on (a link to it on the page and
to its evidence), the chain of findings it explains (each with what ties it, its reason and a
drill-down link), what would confirm or refute it, and the other candidates folded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from backline.cases.diagnosis import DiagnosisService
from backline.model import ChainLink, EvidenceRef, ProbableCause
from backline.report.diagnosis import NO_CONFIDENT, PROBABLE, chain_rows, heading
from backline.web.pages.case_view import RefView, ref_url
from backline.web.pages.render import environment

#: Links of the chain shown (the rest are in the API's answer).
MAX_ROWS = 12


@dataclass(frozen=True, slots=True)
class ChainRowView:
    depth: int
    summary: str
    finding_id: int | None
    joined: str
    rationale: str
    ref: RefView | None


@dataclass(frozen=True, slots=True)
class CauseView:
    title: str
    confidence: float
    heading: str
    code: str
    finding_id: int | None
    evidence_file: str
    ref: RefView | None
    rows: tuple[ChainRowView, ...]
    more: int
    steps: tuple[tuple[str, str], ...]


def _ref(key: str, refs: list[dict[str, Any]], evidence_id: int | None) -> RefView | None:
    if not refs:
        return None
    r = refs[0]
    return RefView(r["artifact"], r["locator"], r.get("excerpt"), ref_url(key, evidence_id, r["artifact"], r["locator"]))


def cause_view(key: str, c: dict[str, Any], evidence_of: dict[int, int]) -> CauseView:
    """One probable cause of :meth:`DiagnosisService.current` as the page shows it."""
    links = tuple(ChainLink(cause=x["cause_id"], effect=x["effect_id"], relation=x["relation"],
                            rationale=x["rationale"], joined_on=tuple((j["kind"], j["value"]) for j in x["joined_on"]),
                            evidence=tuple(EvidenceRef(r["artifact"], r["locator"], r.get("excerpt"))
                                           for r in x["evidence"]),
                            effect_title=x["effect_title"], effect_summary=x["effect_summary"], weight=x["weight"])
                  for x in c["chain"])
    pc = ProbableCause(c["title"], c["confidence"], c["code"], c["finding_id"], chain=links)
    rows = tuple(ChainRowView(row.depth, row.summary, row.link.effect, row.joined, row.link.rationale,
                              _ref(key, [{"artifact": r.artifact, "locator": r.locator, "excerpt": r.excerpt}
                                         for r in row.link.evidence], evidence_of.get(row.link.effect)))
                 for row in chain_rows(pc))
    return CauseView(c["title"], c["confidence"], heading(pc), c["code"], c["finding_id"], c.get("evidence_file", ""),
                     _ref(key, c["evidence"], evidence_of.get(c["finding_id"])), rows[:MAX_ROWS],
                     max(0, len(rows) - MAX_ROWS), tuple((s["kind"], s["text"]) for s in c["next_steps"]))


def diagnosis_section(hub, user, case) -> Markup | None:
    """The section's content, or None while no analysed evidence points at a cause."""
    d = DiagnosisService(hub.cases).current(user, case.key)
    if not d["probable_causes"]:
        return None
    evidence_of = {f["id"]: f["evidence_id"] for f in hub.evidence.findings(user, case.key)}
    causes = [cause_view(case.key, c, evidence_of) for c in d["probable_causes"]]
    html = environment().get_template("case_diagnosis.html").render(
        top=causes[0], others=causes[1:], files=d["evidence_files"],
        unsure=NO_CONFIDENT if causes[0].confidence < PROBABLE else "", probable=PROBABLE)
    return Markup(html)   # noqa: S704 - rendered with autoescape on

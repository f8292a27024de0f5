"""Crash signatures across cases: the same Socorro signature or bucket id seen in another case.

The job runner records every crash signature and bucket id of a case's
findings in ``case_signatures`` (:func:`record_signatures`);
:func:`signature_links` finds the other cases (that the caller may see) with
the same ones, and what fixed them there: the hotfixes delivered to those cases
and the known issues that recognise the signature.  Its ``summary`` reads
"seen in ESC-1001, ESC-1012; fixed in hotfix HF-7 for 4.2.3".

>>> summary_line(["ESC-1001", "ESC-1012"], [{"name": "HF-7", "affected_versions": ["4.2.3"]}], [])
'seen in ESC-1001, ESC-1012; fixed in hotfix HF-7 for 4.2.3'
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import Connection, and_, insert, or_, select

from backline.cases.access import Action, require, visible_filter
from backline.cases.model import User
from backline.cases.service import CaseService
from backline.model import Finding
from backline.model.core import utc
from backline.storage import tables as T

KINDS = (("signature", "signature"), ("bucket", "bucket_id"))
MAX_LINKS = 50


def signatures_of(findings: Iterable[Finding]) -> list[tuple[str, str, str]]:
    """(kind, value, artifact) of every crash signature and bucket id in ``findings``, without repeats."""
    out: dict[tuple[str, str], str] = {}
    for f in findings:
        if f.code.startswith("KB."):
            continue
        for kind, field in KINDS:
            v = f.data.get(field)
            if v:
                out.setdefault((kind, str(v)[:500]), f.artifact)
    return [(k, v, a) for (k, v), a in out.items()]


def record_signatures(conn: Connection, case_id: int, job_id: int, findings: Iterable[Finding],
                      rel=lambda a: a) -> None:
    """Store the signatures of one job's findings (replacing what the job stored before)."""
    conn.execute(T.case_signatures.delete().where(T.case_signatures.c.job_id == job_id))
    rows = [{"case_id": case_id, "job_id": job_id, "kind": k, "value": v, "artifact": rel(a)[:1000]}
            for k, v, a in signatures_of(findings)]
    if rows:
        conn.execute(insert(T.case_signatures), rows)


def summary_line(cases: Sequence[str], hotfixes: Sequence[Mapping[str, Any]],
                 known_issues: Sequence[Mapping[str, Any]]) -> str:
    """``seen in ESC-1001, ESC-1012; fixed in hotfix HF-7 for 4.2.3; known issue KB-1001``."""
    if not cases and not known_issues:
        return ""
    parts = [f"seen in {', '.join(cases)}"] if cases else []
    for hf in hotfixes:
        s = f"fixed in hotfix {hf['name']}"
        if hf.get("affected_versions"):
            s += f" for {', '.join(hf['affected_versions'])}"
        parts.append(s)
    for ki in known_issues:
        fixed = f" (fixed in {ki['fixed_in']})" if ki.get("fixed_in") else ""
        parts.append(f"known issue {ki['key']}{fixed}")
    return "; ".join(parts)


def signature_links(cases: CaseService, user: User, key: str, *, known_issues=()) -> dict[str, Any]:
    """Other visible cases with a crash signature or bucket of case ``key``, their hotfixes, and
    the ``known_issues`` (KnownIssue objects) whose signature matchers name one of them."""
    require(user, Action.READ_FINDINGS)
    S, C = T.case_signatures.c, T.cases.c
    with cases.reader.connect() as conn:
        row = cases._case_row(conn, user, key)
        mine = conn.execute(select(S.kind, S.value).where(S.case_id == row["id"]).distinct()).all()
        links: list[dict[str, Any]] = []
        if mine:
            other = conn.execute(
                select(C.id, C.key, C.title, C.status, C.product, C.version, C.resolved_at, S.kind, S.value)
                .join(T.cases, C.id == S.case_id)
                .where(S.case_id != row["id"], or_(*[and_(S.kind == k, S.value == v) for k, v in mine]),
                       visible_filter(user))
                .order_by(C.id)).mappings().all()
            by_case: dict[int, dict[str, Any]] = {}
            for r in other:
                e = by_case.setdefault(r["id"], {
                    "case": r["key"], "title": r["title"], "status": r["status"], "product": r["product"],
                    "version": r["version"], "resolved_at": utc(r["resolved_at"]).isoformat() if r["resolved_at"] else None,
                    "signatures": [], "hotfixes": []})
                sig = {"kind": r["kind"], "value": r["value"]}
                if sig not in e["signatures"]:
                    e["signatures"].append(sig)
            if by_case:
                for hid, name, affected, fixed, verification, cid in conn.execute(
                        select(T.hotfixes.c.id, T.hotfixes.c.name, T.hotfixes.c.affected_versions,
                               T.hotfixes.c.fixed_versions, T.hotfixes.c.verification, T.hotfix_deliveries.c.case_id)
                        .join(T.hotfix_deliveries, T.hotfix_deliveries.c.hotfix_id == T.hotfixes.c.id)
                        .where(T.hotfix_deliveries.c.case_id.in_(list(by_case))).order_by(T.hotfixes.c.id)):
                    by_case[cid]["hotfixes"].append({"name": name, "affected_versions": list(affected or []),
                                                     "fixed_versions": list(fixed or []),
                                                     "verification": verification})
            links = list(by_case.values())[:MAX_LINKS]
    values = {v for _, v in mine}
    kis = []
    for ki in known_issues:
        for m in ki.matchers:
            want = getattr(m, "signature", "") or getattr(m, "bucket", "")
            if m.kind == "signature" and want and any(v == want or (m.prefix and v.startswith(want)) for v in values):
                kis.append({"key": ki.key, "title": ki.title, "status": ki.status.value, "fixed_in": ki.fix.fixed_in,
                            "hotfix": ki.fix.hotfix, "bug": ki.fix.bug})
                break
    hotfixes: list[dict[str, Any]] = []
    for link in links:
        for hf in link["hotfixes"]:
            if hf["name"] not in {h["name"] for h in hotfixes}:
                hotfixes.append(hf)
    return {"case": key, "signatures": [{"kind": k, "value": v} for k, v in sorted(mine)], "linked": links,
            "known_issues": kis, "summary": summary_line([l["case"] for l in links], hotfixes, kis)}

"""Bug reports to development: generated from the case, editable, rendered three ways.

:func:`draft_fields` builds the report from the case (title, product and
environment facts, symptoms, steps, expected/actual) and its stored findings
(top findings with excerpts; the crash signature and crashing stack with the
blamed frame, read from a finding's ``data`` keys ``signature``, ``frames``
(else the finding's ``frame:N`` evidence refs) and ``blamed_frame`` (an index
or the frame's display text)).  Its root cause starts as the diagnosis' top probable
cause, marked as a proposal, unless the engineer gave one.  People then edit any field.  Renderers turn the same
fields into Markdown, a Jira REST ``POST /rest/api/2/issue`` payload and a
GitHub ``POST /repos/{owner}/{repo}/issues`` payload.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from sqlalchemy import insert, select, update

from backline.cases.access import Action, require
from backline.cases.model import Case, User
from backline.cases.service import CaseService, reject_nul
from backline.errors import CaseError, Conflict, NotFound
from backline.model.core import utc
from backline.storage import tables as T

#: Editable fields, in the order the report shows them.
FIELDS = ("summary", "environment", "evidence_facts", "symptoms", "steps_to_reproduce", "expected", "actual",
          "evidence_summary", "crash_signature", "seen_in", "crashing_stack", "root_cause", "suggested_fix",
          "attachments", "facts")
_TEXT = {"summary", "environment", "symptoms", "steps_to_reproduce", "expected", "actual",
         "root_cause", "suggested_fix", "crash_signature", "seen_in"}
#: The fields people edit as free text (the others are lists and tables made from the evidence).
TEXT_FIELDS = _TEXT
_JIRA_PRIORITY = {"S1": "Highest", "S2": "High", "S3": "Medium", "S4": "Low"}


#: Fact name endings that describe the environment (shown in the report's environment section).
ENV_FACTS = ("os", "os_version", "cpu", "process", "version", "product", "hostname", "kernel", "jvm", "runtime")


def draft_fields(case: Case, findings: Sequence[Mapping[str, Any]], evidence: Sequence[Mapping[str, Any]],
                 *, root_cause: str | None = None, suggested_fix: str | None = None,
                 top: int = 5, facts: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The first draft of a bug report for ``case``."""
    intake = case.intake
    crash = next((f for f in findings if (f.get("data") or {}).get("signature")), None)
    stack: list[dict[str, Any]] = []
    if crash:
        raw = crash["data"].get("frames")       # a list of frames; some analyzers store only a count
        frames = [fr if isinstance(fr, str) else (fr.get("display") or fr.get("function") or str(fr))
                  for fr in (raw if isinstance(raw, list) else [])]
        if not frames:       # fall back to the frames the finding points at (thread:T/frame:N refs)
            frames = [r.get("excerpt") or r.get("locator") for r in crash.get("refs") or []
                      if "frame:" in str(r.get("locator"))]
        blamed = crash["data"].get("blamed_frame")
        for i, text in enumerate(frames[:30]):
            hit = blamed == i if isinstance(blamed, int) else (blamed is not None and str(blamed) == str(text))
            stack.append({"index": i, "frame": str(text), "blamed": hit})
    return {
        "summary": str(intake.get("symptoms", case.title))[:2000],
        "environment": _text(intake.get("environment")),
        "evidence_facts": [{"name": x["name"], "value": x["value"], "artifact": x["artifact"]}
                           for x in facts if str(x["name"]).rsplit(".", 1)[-1] in ENV_FACTS][:20],
        "symptoms": _text(intake.get("symptoms")),
        "steps_to_reproduce": _text(intake.get("steps_to_reproduce")),
        "expected": _text(intake.get("expected")),
        "actual": _text(intake.get("actual")),
        "evidence_summary": [
            {"code": f["code"], "severity": f["severity"], "title": f["title"], "artifact": f["artifact"],
             "count": f["count"],
             "excerpts": [f"{r.get('artifact')} {r.get('locator')}: {r.get('excerpt')}"
                          for r in (f.get("refs") or [])[:3] if r.get("excerpt")]}
            for f in findings[:top]],
        "crash_signature": (crash or {}).get("data", {}).get("signature", "") if crash else "",
        "crashing_stack": stack,
        "root_cause": root_cause or "",
        "suggested_fix": suggested_fix or "",
        "attachments": [{"filename": e["filename"], "sha256": e["sha256"], "size": e["size"]} for e in evidence],
        "facts": {"case": case.key, "product": case.product, "version": case.version,
                  "customer": case.org, "severity": case.severity.value},
    }


def proposed_root_cause(cases: CaseService, user: User, key: str) -> str:
    """The root cause a new draft starts with: the case's top probable cause, marked as a proposal
    (empty when the diagnosis has none)."""
    from backline.cases.diagnosis import DiagnosisService, proposal   # avoid an import cycle at module load
    causes = DiagnosisService(cases).current(user, key)["probable_causes"]
    return proposal(causes[0]) if causes else ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(f"- {v}" for v in value)
    return str(value)


def render_markdown(title: str, f: Mapping[str, Any]) -> str:
    """The report as Markdown (for GitHub, e-mail, or pasting anywhere)."""
    facts = f.get("facts", {})
    out = [f"# {title}", "",
           " | ".join(f"**{k.capitalize()}:** {v}" for k, v in facts.items()), ""]

    def section(name: str, body: str) -> None:
        if body and body.strip():
            out.extend([f"## {name}", "", body.strip(), ""])

    section("Summary", f.get("summary", ""))
    env = f.get("environment", "")
    env_facts = "\n".join(f"- {x['name']}: {x['value']} (`{x['artifact']}`)" for x in f.get("evidence_facts", []))
    section("Environment", "\n\n".join(p for p in (env, env_facts) if p))
    section("Symptoms", f.get("symptoms", ""))
    section("Steps to reproduce", f.get("steps_to_reproduce", ""))
    if f.get("expected") or f.get("actual"):
        out.extend(["## Expected vs actual", "", f"- **Expected:** {f.get('expected', '')}",
                    f"- **Actual:** {f.get('actual', '')}", ""])
    if f.get("evidence_summary"):
        out.extend(["## Evidence", ""])
        for item in f["evidence_summary"]:
            out.append(f"- **{item['code']}** ({item['severity']}, x{item['count']}) {item['title']}"
                       f" - `{item['artifact']}`")
            out.extend(f"  - `{x}`" for x in item.get("excerpts", []))
        out.append("")
    if f.get("crash_signature"):
        out.extend(["## Crash", "", f"Signature: `{f['crash_signature']}`", ""])
        if f.get("seen_in"):
            out.extend([f"Same crash: {f['seen_in']}", ""])
        if f.get("crashing_stack"):
            out.append("```")
            out.extend(f"{'=>' if fr['blamed'] else '  '} {fr['index']:>2} {fr['frame']}"
                       for fr in f["crashing_stack"])
            out.extend(["```", "(`=>` marks the blamed frame)", ""])
    section("Root cause analysis", f.get("root_cause", ""))
    section("Suggested fix", f.get("suggested_fix", ""))
    if f.get("attachments"):
        out.extend(["## Attachments", ""])
        out.extend(f"- {a['filename']} ({a['size']:,} bytes, sha256 `{a['sha256'][:16]}...`)"
                   for a in f["attachments"])
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_jira(title: str, f: Mapping[str, Any], *, project: str = "BUG", issue_type: str = "Bug") -> dict[str, Any]:
    """A Jira REST v2 create-issue payload (description in Markdown-ish wiki text)."""
    facts = f.get("facts", {})
    labels = ["backline", f"case-{facts.get('case', '')}".lower()]
    payload: dict[str, Any] = {"fields": {
        "project": {"key": project},
        "issuetype": {"name": issue_type},
        "summary": title[:255],
        "description": render_markdown(title, f).replace("```", "{code}"),
        "labels": [x for x in labels if x != "case-"],
    }}
    if facts.get("severity") in _JIRA_PRIORITY:
        payload["fields"]["priority"] = {"name": _JIRA_PRIORITY[facts["severity"]]}
    if facts.get("version"):
        payload["fields"]["versions"] = [{"name": facts["version"]}]
    if f.get("environment"):
        payload["fields"]["environment"] = f["environment"]
    return payload


def render_github(title: str, f: Mapping[str, Any]) -> dict[str, Any]:
    """A GitHub create-issue payload."""
    facts = f.get("facts", {})
    labels = ["bug", "escalation"] + ([f"severity:{facts['severity']}"] if facts.get("severity") else [])
    return {"title": title[:256], "body": render_markdown(title, f), "labels": labels}


class BugService:
    def __init__(self, cases: CaseService):
        self.cases = cases

    def create(self, user: User, key: str, *, title: str | None = None, root_cause: str | None = None,
               suggested_fix: str | None = None) -> dict[str, Any]:
        """Draft a bug report from the case and its findings, and store it."""
        require(user, Action.MANAGE_BUGS)
        reject_nul(title, root_cause, suggested_fix)
        from backline.cases.evidence import EvidenceService   # avoid an import cycle at module load
        case = self.cases.get(user, key)
        ev = EvidenceService(self.cases, store=None)  # type: ignore[arg-type]  # listing only
        findings = ev.findings(user, key)
        evidence = [e.to_json() for e in ev.list(user, key)]
        if not (root_cause or "").strip():     # what an engineer wrote is never replaced
            root_cause = proposed_root_cause(self.cases, user, key)
        fields = draft_fields(case, findings, evidence, root_cause=root_cause, suggested_fix=suggested_fix,
                              facts=ev.facts(user, key))
        from backline.cases.signatures import signature_links   # the same crash in other cases
        fields["seen_in"] = signature_links(self.cases, user, key)["summary"]
        title = (title or f"[{case.product} {case.version}] {case.title}").strip()[:500]
        now = self.cases._now()
        with self.cases.engine.begin() as conn:
            bid = conn.execute(insert(T.bugs).values(case_id=case.id, title=title, fields=fields, created_at=now,
                                                     updated_at=now, row_version=1)).inserted_primary_key[0]
            self.cases.audit(conn, user, "bug", bid, "create", None, {"title": title}, case.id)
        return self.get(user, bid)

    def _row(self, conn, user: User, bug_id: int):
        row = conn.execute(select(T.bugs, T.cases.c.key).join(T.cases, T.cases.c.id == T.bugs.c.case_id)
                           .where(T.bugs.c.id == bug_id)).mappings().first()
        if row is None:
            raise NotFound(f"no bug report {bug_id}")
        self.cases._case_row(conn, user, row["key"])
        return row

    def get(self, user: User, bug_id: int) -> dict[str, Any]:
        require(user, Action.READ_BUGS)
        with self.cases.reader.connect() as conn:
            return _bug_json(self._row(conn, user, bug_id))

    def list(self, user: User, key: str) -> list[dict[str, Any]]:
        require(user, Action.READ_BUGS)
        with self.cases.reader.connect() as conn:
            crow = self.cases._case_row(conn, user, key)
            rows = conn.execute(select(T.bugs, T.cases.c.key).join(T.cases, T.cases.c.id == T.bugs.c.case_id)
                                .where(T.bugs.c.case_id == crow["id"]).order_by(T.bugs.c.id)).mappings().all()
        return [_bug_json(r) for r in rows]

    def edit(self, user: User, bug_id: int, changes: Mapping[str, Any], *,
             expected_version: int | None = None) -> dict[str, Any]:
        """Edit fields, or link the report to the external tracker (key, URL, status)."""
        require(user, Action.MANAGE_BUGS)
        reject_nul(dict(changes))
        with self.cases.engine.begin() as conn:
            row = self._row(conn, user, bug_id)
            values: dict[str, Any] = {}
            if changes.get("title"):
                values["title"] = str(changes["title"]).strip()[:500]
            if changes.get("fields"):
                unknown = set(changes["fields"]) - set(FIELDS)
                if unknown:
                    raise CaseError(f"unknown bug report field(s): {', '.join(sorted(unknown))}")
                for k, v in changes["fields"].items():
                    if k in _TEXT and not isinstance(v, str):
                        raise CaseError(f"field {k} must be text")
                values["fields"] = {**row["fields"], **changes["fields"]}
            for k in ("tracker", "external_key", "external_url", "external_status"):
                if changes.get(k) is not None:
                    values[k] = changes[k]
            if not values:
                return _bug_json(row)
            if expected_version is not None and expected_version != row["row_version"]:
                raise Conflict(f"bug report {bug_id} was changed (version {row['row_version']})")
            n = conn.execute(update(T.bugs).where(T.bugs.c.id == bug_id, T.bugs.c.row_version == row["row_version"])
                             .values(row_version=row["row_version"] + 1, updated_at=self.cases._now(),
                                     **values)).rowcount
            if n != 1:
                raise Conflict(f"bug report {bug_id} was changed by someone else")
            self.cases.audit(conn, user, "bug", bug_id, "edit", {k: row[k] for k in values}, values, row["case_id"])
            return _bug_json(self._row(conn, user, bug_id))

    def render(self, user: User, bug_id: int, fmt: str) -> Any:
        bug = self.get(user, bug_id)
        if fmt == "markdown":
            return render_markdown(bug["title"], bug["fields"])
        if fmt == "jira":
            return render_jira(bug["title"], bug["fields"])
        if fmt == "github":
            return render_github(bug["title"], bug["fields"])
        raise CaseError(f"unknown format {fmt!r}; use markdown, jira or github")


def _bug_json(r) -> dict[str, Any]:
    return {"id": r["id"], "case": r["key"], "title": r["title"], "fields": r["fields"],
            "tracker": r["tracker"], "external_key": r["external_key"], "external_url": r["external_url"],
            "external_status": r["external_status"], "created_at": utc(r["created_at"]).isoformat(),
            "updated_at": utc(r["updated_at"]).isoformat(), "row_version": r["row_version"]}

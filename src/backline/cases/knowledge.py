"""The service's known issues: stored with revisions, published, matched against every case's evidence.

Every method takes the acting :class:`User` first, checks
:mod:`backline.cases.access` (``READ_KB``, ``MANAGE_KB``, ``PUBLISH_KB``) and
writes an audit entry for every change, in the same transaction.  Entries are
kept in their data form (the JSON/YAML of ``docs/knowledge.md``, validated by
the same schema); each change adds a row to ``known_issue_revisions``.

Keys: ``KB-1`` .. ``KB-999`` belong to the starter pack shipped with Backline;
entries made here are numbered from ``KB-1001``.  A stored entry with a pack
key replaces that pack entry (so a team can retire or reword it).  The
service matches its published entries plus the pack (``kb_pack=False``: only
its own) against each case's findings and facts after every analysis job.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from sqlalchemy import Connection, func, insert, select, update

from backline.cases.access import Action, require
from backline.cases.model import CaseStatus, User
from backline.cases.service import CaseService, reject_nul
from backline.errors import CaseError, Conflict, FormatError, NotFound, PermissionDenied
from backline.knowledge.kb.apply import merge_entries
from backline.knowledge.kb.engine import kb_findings, match_issues
from backline.knowledge.kb.loader import entry_to_dict, load_pack, parse_entry
from backline.knowledge.kb.model import KEY_RE, KbResult, KnownIssue, Status
from backline.model import EvidenceRef, Fact, Finding, Severity
from backline.model.core import utc
from backline.storage import tables as T

FIRST_SERVICE_KEY = 1001
SOURCE = "service"


def _validate(data: Mapping[str, Any], key: str) -> KnownIssue:
    """The entry ``data`` parsed (CaseError naming the field when it is not a valid known issue)."""
    try:
        return parse_entry({**data, "key": key}, source=SOURCE)
    except FormatError as exc:
        where = f"{exc.locator}: " if exc.locator else ""
        raise CaseError(f"not a valid known issue: {where}{exc.message}") from None


def finding_from_row(r: Mapping[str, Any]) -> Finding:
    """A stored finding (``finding_json`` shape) back as a :class:`Finding` for the matcher engine."""
    sev = r["severity"]
    severity = Severity.parse(sev) if isinstance(sev, str) else Severity(int(sev))
    refs = tuple(EvidenceRef(x.get("artifact") or "", x.get("locator") or "", x.get("excerpt"))
                 for x in (r.get("refs") or []) if isinstance(x, Mapping))
    return Finding(r["code"], r["title"], severity, r["artifact"], refs, detail=r.get("detail") or "",
                   count=int(r.get("count") or 1), analyzer=r.get("analyzer") or "", data=r.get("data") or {})


class KnowledgeService:
    """Known issues in the database; see the module docstring."""

    def __init__(self, cases: CaseService, *, kb_pack: bool = True):
        self.cases = cases
        self.kb_pack = kb_pack
        self._parsed: dict[str, tuple[int, KnownIssue | None]] = {}     # key -> (revision, parsed entry)

    # ------------------------------------------------------------------ reading
    def _row(self, conn: Connection, key: str, *, lock: bool = False):
        q = select(T.known_issues).where(T.known_issues.c.key == key)
        if lock and conn.dialect.name == "postgresql":
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        if row is None:
            raise NotFound(f"no known issue {key}", locator=f"kb:{key}")
        return row

    def _json(self, conn: Connection, row) -> dict[str, Any]:
        names = dict(conn.execute(select(T.users.c.id, T.users.c.name)
                                  .where(T.users.c.id == row["created_by"])).all())
        case_key = None
        if row["source_case_id"] is not None:
            case_key = conn.execute(select(T.cases.c.key).where(T.cases.c.id == row["source_case_id"])).scalar()
        return {**row["body"], "key": row["key"], "status": row["status"], "revision": row["revision"],
                "created_by": names.get(row["created_by"]), "created_at": utc(row["created_at"]).isoformat(),
                "updated_at": utc(row["updated_at"]).isoformat(), "source_case": case_key, "origin": SOURCE}

    def get(self, user: User, key: str) -> dict[str, Any]:
        """One known issue (a stored one, else the starter pack's entry of that key)."""
        require(user, Action.READ_KB)
        with self.cases.reader.connect() as conn:
            row = conn.execute(select(T.known_issues).where(T.known_issues.c.key == key)).mappings().first()
            if row is not None:
                return self._json(conn, row)
        for ki in load_pack() if self.kb_pack else ():
            if ki.key == key:
                return {**entry_to_dict(ki), "origin": "pack", "source": ki.source}
        raise NotFound(f"no known issue {key}", locator=f"kb:{key}")

    def list(self, user: User, *, status: str | None = None, q: str | None = None,
             include_pack: bool = False) -> list[dict[str, Any]]:
        """Stored known issues (and, with ``include_pack``, the pack entries not replaced), by key."""
        require(user, Action.READ_KB)
        if status is not None and status not in {s.value for s in Status}:
            raise CaseError(f"status must be one of {', '.join(s.value for s in Status)}, not {status!r}")
        with self.cases.reader.connect() as conn:
            rows = conn.execute(select(T.known_issues).order_by(T.known_issues.c.id)).mappings().all()
            out = [self._json(conn, r) for r in rows]
        if include_pack and self.kb_pack:
            stored = {r["key"] for r in out}
            out += [{**entry_to_dict(ki), "origin": "pack", "source": ki.source}
                    for ki in load_pack() if ki.key not in stored]
        if status:
            out = [e for e in out if e.get("status") == status]
        if q:
            needle = q.lower()
            out = [e for e in out if needle in " ".join(str(e.get(f, "")) for f in
                                                         ("key", "title", "symptoms", "root_cause", "tags")).lower()]
        return sorted(out, key=lambda e: int(str(e["key"])[3:]))

    def history(self, user: User, key: str) -> list[dict[str, Any]]:
        """Every revision of a stored known issue, oldest first."""
        require(user, Action.READ_KB)
        with self.cases.reader.connect() as conn:
            row = self._row(conn, key)
            revs = conn.execute(select(T.known_issue_revisions, T.users.c.name)
                                .join(T.users, T.users.c.id == T.known_issue_revisions.c.edited_by)
                                .where(T.known_issue_revisions.c.issue_id == row["id"])
                                .order_by(T.known_issue_revisions.c.revision)).mappings().all()
        return [{"revision": r["revision"], "status": r["status"], "change": r["change"], "by": r["name"],
                 "at": utc(r["edited_at"]).isoformat(), "body": r["body"]} for r in revs]

    # ------------------------------------------------------------------ writing
    def _next_key(self, conn: Connection) -> str:
        keys = conn.execute(select(T.known_issues.c.key)).scalars().all()
        nums = [int(k[3:]) for k in keys if KEY_RE.match(k)]
        return f"KB-{max([FIRST_SERVICE_KEY - 1, *nums]) + 1}"

    def _revision(self, conn: Connection, user: User, issue_id: int, revision: int, status: str,
                  body: Mapping[str, Any], change: str, at) -> None:
        conn.execute(insert(T.known_issue_revisions).values(issue_id=issue_id, revision=revision, status=status,
                                                            body=dict(body), change=change, edited_by=user.id,
                                                            edited_at=at))

    def _insert(self, conn: Connection, user: User, data: Mapping[str, Any], *, change: str,
                source_case_id: int | None = None) -> str:
        reject_nul(dict(data))
        key = str(data.get("key") or "") or self._next_key(conn)
        if not KEY_RE.match(key):
            raise CaseError(f"key must be KB-<n>, not {key!r}")
        body = {k: v for k, v in data.items() if k not in ("key", "status")}
        status = str(data.get("status") or Status.DRAFT.value)
        ki = _validate({**body, "status": status}, key)
        body = {k: v for k, v in entry_to_dict(ki).items() if k not in ("key", "status")}
        now = self.cases._now()
        if conn.execute(select(T.known_issues.c.id).where(T.known_issues.c.key == key)).first() is not None:
            raise Conflict(f"known issue {key} already exists", locator=f"kb:{key}")
        iid = conn.execute(insert(T.known_issues).values(
            key=key, title=ki.title, status=status, body=body, revision=1, source_case_id=source_case_id,
            created_by=user.id, created_at=now, updated_at=now)).inserted_primary_key[0]
        self._revision(conn, user, iid, 1, status, body, change, now)
        self.cases.audit(conn, user, "known_issue", key, change, None,
                         {"title": ki.title, "status": status, "revision": 1}, source_case_id)
        return key

    def add(self, user: User, data: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new known issue (status ``draft`` unless given); the key is allocated when absent."""
        require(user, Action.MANAGE_KB)
        if str(data.get("status") or "draft") != "draft":
            require(user, Action.PUBLISH_KB, "add a known issue that is not a draft")
        with self.cases.engine.begin() as conn:
            key = self._insert(conn, user, data, change="create")
            return self._json(conn, self._row(conn, key))

    def edit(self, user: User, key: str, changes: Mapping[str, Any], *,
             expected_revision: int | None = None) -> dict[str, Any]:
        """Change fields of a known issue (not its key or status); the old text stays in its revisions."""
        require(user, Action.MANAGE_KB)
        if "status" in changes:
            raise CaseError("change the status with publish or retire")
        if "key" in changes and changes["key"] != key:
            raise CaseError("the key of a known issue cannot change")
        reject_nul(dict(changes))
        with self.cases.engine.begin() as conn:
            row = self._row(conn, key, lock=True)
            if expected_revision is not None and expected_revision != row["revision"]:
                raise Conflict(f"{key} was changed (revision {row['revision']}, you sent {expected_revision}); "
                               "reload and retry", locator=f"kb:{key}")
            merged = {**row["body"], **{k: v for k, v in changes.items() if k != "key"}}
            ki = _validate({**merged, "status": row["status"]}, key)
            body = {k: v for k, v in entry_to_dict(ki).items() if k not in ("key", "status")}
            self._update(conn, user, row, body, row["status"], "edit")
            return self._json(conn, self._row(conn, key))

    def _update(self, conn: Connection, user: User, row, body: Mapping[str, Any], status: str, change: str) -> None:
        now = self.cases._now()
        rev = row["revision"] + 1
        n = conn.execute(update(T.known_issues).where(T.known_issues.c.id == row["id"],
                                                      T.known_issues.c.revision == row["revision"])
                         .values(body=dict(body), title=str(body.get("title", row["title"])), status=status,
                                 revision=rev, updated_at=now)).rowcount
        if n != 1:
            raise Conflict(f"{row['key']} was changed by someone else; reload and retry", locator=f"kb:{row['key']}")
        self._revision(conn, user, row["id"], rev, status, body, change, now)
        changed = sorted(k for k in set(body) | set(row["body"]) if body.get(k) != row["body"].get(k))
        self.cases.audit(conn, user, "known_issue", row["key"], change,
                         {"status": row["status"], "revision": row["revision"],
                          **{k: row["body"].get(k) for k in changed}},
                         {"status": status, "revision": rev, **{k: body.get(k) for k in changed}},
                         row["source_case_id"])

    def set_status(self, user: User, key: str, status: Status | str) -> dict[str, Any]:
        """Publish (the service matches it from now on) or retire (it stops matching) a known issue."""
        require(user, Action.PUBLISH_KB)
        target = Status(status) if not isinstance(status, Status) else status
        with self.cases.engine.begin() as conn:
            row = self._row(conn, key, lock=True)
            if row["status"] == target.value:
                raise CaseError(f"{key} is already {target.value}", locator=f"kb:{key}")
            if target is Status.PUBLISHED and not (row["body"].get("workaround") or "").strip():
                raise CaseError(f"{key} has no workaround: write one before publishing", locator=f"kb:{key}")
            was = row["status"]
            self._update(conn, user, row, row["body"], target.value,
                         {"published": "publish", "retired": "retire", "draft": "unpublish"}[target.value])
        # what the service matches changed: the open cases learn it now, not at their next upload
        open_cases = self.rematch_open_cases(key) if Status.PUBLISHED.value in (was, target.value) else []
        with self.cases.reader.connect() as conn:
            return {**self._json(conn, self._row(conn, key)), "open_cases": open_cases}

    def publish(self, user: User, key: str) -> dict[str, Any]:
        return self.set_status(user, key, Status.PUBLISHED)

    def retire(self, user: User, key: str) -> dict[str, Any]:
        return self.set_status(user, key, Status.RETIRED)

    # ------------------------------------------------------------------ promote
    def promote(self, user: User, case_key: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A draft known issue from a resolved (or closed) case, pre-filled from its root cause, fix,
        crash signature and findings (see :mod:`backline.knowledge.kb.promote`); ``overrides``
        replace any field of the draft."""
        from backline.cases.bugs import BugService
        from backline.cases.evidence import finding_json
        from backline.cases.hotfixes import HotfixService
        from backline.knowledge.kb.promote import draft_from_case

        require(user, Action.MANAGE_KB)
        case = self.cases.get(user, case_key)
        if case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
            raise CaseError(f"{case_key} is {case.status.value}: only a resolved or closed case becomes a known issue",
                            locator=f"case:{case_key}")
        with self.cases.reader.connect() as conn:
            rows = conn.execute(select(T.findings, T.evidence.c.filename)
                                .join(T.evidence, T.evidence.c.id == T.findings.c.evidence_id)
                                .where(T.findings.c.case_id == case.id)
                                .order_by(T.findings.c.severity.desc(), T.findings.c.id)).mappings().all()
            findings = [finding_json(r) for r in rows]
            hf_names = conn.execute(select(T.hotfixes.c.name).join(
                T.hotfix_deliveries, T.hotfix_deliveries.c.hotfix_id == T.hotfixes.c.id)
                .where(T.hotfix_deliveries.c.case_id == case.id).order_by(T.hotfixes.c.id)).scalars().all()
        bugs = BugService(self.cases).list(user, case_key)           # MANAGE_KB roles may read bugs and hotfixes
        hotfixes = [HotfixService(self.cases).get(user, n) for n in hf_names]
        data = draft_from_case(case.to_json(), findings, bugs, hotfixes)
        data.update({k: v for k, v in (overrides or {}).items() if k not in ("status",)})
        if not data.get("matchers"):
            raise CaseError(f"{case_key} has no findings to recognise the problem by: give matchers",
                            locator=f"case:{case_key}")
        with self.cases.engine.begin() as conn:
            key = self._insert(conn, user, {**data, "status": "draft"}, change="promote", source_case_id=case.id)
            return self._json(conn, self._row(conn, key))

    # ------------------------------------------------------------------ matching
    def published(self, conn: Connection | None = None) -> tuple[KnownIssue, ...]:
        """What the service matches: published stored entries, plus the pack entries no stored entry replaces.

        ``conn``: read inside the caller's transaction (a second connection would wait for its lock on SQLite).
        """
        if conn is None:
            with self.cases.reader.connect() as own:
                return self.published(own)
        heads = conn.execute(select(T.known_issues.c.key, T.known_issues.c.revision)).all()
        stale = [k for k, rev in heads if self._parsed.get(k, (None,))[0] != rev]
        if stale:
            for r in conn.execute(select(T.known_issues.c.key, T.known_issues.c.status, T.known_issues.c.revision,
                                         T.known_issues.c.body).where(T.known_issues.c.key.in_(stale))).mappings():
                try:
                    ki = parse_entry({**r["body"], "key": r["key"], "status": r["status"]}, source=SOURCE)
                except FormatError:
                    ki = None   # validated on every write; an entry of a newer schema is skipped, not fatal
                self._parsed[r["key"]] = (r["revision"], ki)
        keys = {k for k, _ in heads}
        stored = [ki for k, (_, ki) in self._parsed.items() if k in keys and ki is not None]
        pack = load_pack() if self.kb_pack else []
        return tuple(ki for ki in merge_entries(pack, stored) if ki.status is Status.PUBLISHED)

    def rematch_open_cases(self, key: str | None = None) -> list[str]:
        """Match the published known issues again against every open case with analysed evidence
        (after a publish, retire or unpublish), one transaction per case; the keys of the cases
        ``key`` now matches (all cases with any match when ``key`` is None).

        Only cases that are not resolved or closed and have a finished analysis are looked at;
        each keeps its ``KB.*`` findings on its latest finished job.  A case whose matching fails
        is logged and skipped (its earlier matches stay)."""
        import logging

        done = ("resolved", "closed")
        with self.cases.reader.connect() as conn:
            latest = (select(T.jobs.c.case_id, func.max(T.jobs.c.id).label("job_id"))
                      .where(T.jobs.c.status == "done").group_by(T.jobs.c.case_id).subquery())
            todo = conn.execute(select(T.cases.c.id, T.cases.c.key, T.jobs.c.id, T.jobs.c.evidence_id)
                                .join(latest, latest.c.case_id == T.cases.c.id)
                                .join(T.jobs, T.jobs.c.id == latest.c.job_id)
                                .where(T.cases.c.status.notin_(done)).order_by(T.cases.c.id)).all()
        matched = []
        for case_id, case_key, job_id, evidence_id in todo:
            try:
                with self.cases.engine.begin() as conn:
                    before = _kb_state(conn, case_id)
                    results = self.match_case(conn, case_id, job_id, evidence_id)
                    hits = [r.issue.key for r in results if r.verdict == "match"]
                    if before != _kb_state(conn, case_id):
                        self.cases.changed(conn, case_id, "findings")
            except Exception:  # noqa: BLE001 - one case's failure must not stop the others
                logging.getLogger(__name__).exception("re-matching known issues for case %s failed", case_key)
                continue
            if (key in hits) if key else hits:
                matched.append(case_key)
        return matched

    def open_cases_matching(self, user: User, key: str) -> list[dict[str, Any]]:
        """The open cases whose evidence a known issue matches now (key, title, status, owner), newest first."""
        require(user, Action.READ_KB)
        out = []
        with self.cases.reader.connect() as conn:
            rows = conn.execute(select(T.cases.c.key, T.findings.c.data).join(
                T.findings, T.findings.c.case_id == T.cases.c.id).where(
                T.findings.c.code == "KB.MATCH", T.cases.c.status.notin_(("resolved", "closed")))
                .order_by(T.cases.c.id.desc())).all()
        seen = set()
        for case_key, data in rows:
            if (data or {}).get("key") != key or case_key in seen:
                continue
            seen.add(case_key)
            try:
                case = self.cases.get(user, case_key)           # only the cases this user may see
            except (NotFound, PermissionDenied):
                continue
            out.append({"key": case.key, "title": case.title, "status": case.status.value, "owner": case.owner})
        return out

    def case_evidence(self, conn: Connection, case_id: int) -> tuple[list[Finding], list[Fact]]:
        """A case's stored findings (without earlier known-issue matches) and facts, for the matcher engine."""
        from backline.cases.evidence import finding_json

        rows = conn.execute(select(T.findings, T.evidence.c.filename)
                            .join(T.evidence, T.evidence.c.id == T.findings.c.evidence_id)
                            .where(T.findings.c.case_id == case_id, T.findings.c.code.notlike("KB.%"))
                            .order_by(T.findings.c.id)).mappings().all()
        facts = conn.execute(select(T.case_facts).where(T.case_facts.c.case_id == case_id)
                             .order_by(T.case_facts.c.id)).mappings().all()
        return ([finding_from_row(finding_json(r)) for r in rows],
                [Fact(r["name"], r["value"], r["artifact"], r["analyzer"]) for r in facts])

    def match_case(self, conn: Connection, case_id: int, job_id: int, evidence_id: int) -> list[KbResult]:
        """Match the published known issues against all of a case's evidence and store the ``KB.*``
        findings (replacing earlier ones, attached to the job that ran last); inside the caller's transaction."""
        case = conn.execute(select(T.cases.c.product, T.cases.c.version).where(T.cases.c.id == case_id)).one()
        findings, facts = self.case_evidence(conn, case_id)
        results = match_issues(self.published(conn), findings, facts, product=case.product, version=case.version)
        conn.execute(T.findings.delete().where(T.findings.c.case_id == case_id, T.findings.c.code.like("KB.%")))
        # a match cites findings of any of the case's evidence: each reference keeps the evidence
        # its artifact belongs to (the latest upload holding that path), so it can be opened
        holder: dict[str, int] = {}
        for table in (T.findings, T.evidence_artifacts):
            path = table.c.artifact if table is T.findings else table.c.path
            for art, eid in conn.execute(select(path, table.c.evidence_id).where(table.c.case_id == case_id)
                                         .order_by(table.c.id)):
                holder[art] = eid
        rows = [{"case_id": case_id, "job_id": job_id, "evidence_id": evidence_id, "code": f.code,
                 "title": f.title[:500], "severity": int(f.severity), "artifact": f.artifact[:1000], "detail": f.detail,
                 "count": f.count, "refs": [{"artifact": r.artifact, "locator": r.locator, "excerpt": r.excerpt,
                                             "evidence_id": holder.get(r.artifact, evidence_id)}
                                            for r in f.evidence[:20]],
                 "data": dict(f.data), "analyzer": f.analyzer} for f in kb_findings(results)]
        if rows:
            conn.execute(insert(T.findings), rows)
        return results

    def test(self, user: User, entries: Sequence[KnownIssue], *, case_key: str | None = None,
             findings: Sequence[Finding] = (), facts: Sequence[Fact] = (), product: str | None = None,
             version: str | None = None) -> list[KbResult]:
        """Run ``entries`` (any status) against a case's stored evidence or given findings and facts."""
        require(user, Action.MANAGE_KB)
        if case_key is not None:
            case = self.cases.get(user, case_key)
            with self.cases.reader.connect() as conn:
                findings, facts = self.case_evidence(conn, case.id)
            product, version = product or case.product, version or case.version
        return match_issues(entries, findings, facts, product=product, version=version, statuses=None)

    def entries_for_test(self, user: User, keys: Sequence[str]) -> list[KnownIssue]:
        """Stored (any status) or pack entries by key, for :meth:`test`."""
        out = []
        for key in keys:
            data = self.get(user, key)
            out.append(parse_entry({k: v for k, v in data.items() if k in _ENTRY_FIELDS}, source=SOURCE))
        return out

    def count(self) -> int:
        with self.cases.reader.connect() as conn:
            return conn.execute(select(func.count()).select_from(T.known_issues)).scalar_one()


def _kb_state(conn: Connection, case_id: int) -> list[str]:
    """A case's known-issue findings, comparable (to tell whether a re-match changed them)."""
    import json

    return sorted(json.dumps([code, data], sort_keys=True, default=str) for code, data in conn.execute(
        select(T.findings.c.code, T.findings.c.data).where(T.findings.c.case_id == case_id,
                                                           T.findings.c.code.like("KB.%"))))


_ENTRY_FIELDS = ("key", "title", "status", "severity", "symptoms", "root_cause", "workaround", "notes", "fix",
                 "affects", "match", "matchers", "when", "tags", "references")


def results_json(results: Sequence[KbResult]) -> list[dict[str, Any]]:
    """Test results as plain data: key, verdict, reason, what matched with its evidence."""
    from backline.knowledge.kb.engine import result_data

    return [{"key": r.issue.key, "title": r.issue.title, "verdict": r.verdict, "reason": r.reason,
             "matched": result_data(r)["matched"]} for r in results]

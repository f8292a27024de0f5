"""The case service: every workflow operation, checked and audited.  No HTTP here.

Every method takes the acting :class:`User` first and raises
``PermissionDenied`` / ``NotFound`` / ``Conflict`` / ``CaseError`` from
:mod:`backline.errors`.  Each operation is one database transaction: it
happens completely (with its audit entries and queued notifications) or not
at all.  Case updates use optimistic locking on ``row_version``: a write
based on an old version raises ``Conflict`` and changes nothing.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Sequence

from sqlalchemy import Connection, String, bindparam, cast, func, insert, literal, null, select, union_all, update
from sqlalchemy.engine import Engine

from backline.cases.access import SUPPORT_STATUS_MOVES, Action, can_see, require, visible_filter
from backline.cases.intake import IntakeResult, IntakeRules
from backline.cases.model import (AuditEntry, Case, CaseSeverity, CaseStatus, Note, Participant,
                                  ParticipantRole, Role, User, Visibility)
from backline.cases.sla import Clock, ClockInput, SlaConfig, compute_clocks
from backline.errors import CaseError, Conflict, NotFound, PermissionDenied
from backline.model.core import utc
from backline.storage import tables as T
from backline.storage.db import read_engine

KEY_PREFIX = "ESC-"
KEY_BASE = 1000
MAX_TITLE = 500
MAX_NOTE = 100_000


def reject_nul(*values: Any) -> None:
    """Refuse NUL characters anywhere in text (PostgreSQL cannot store them; nobody means them).

    >>> reject_nul("ok", {"a": ["fine"]})
    >>> reject_nul({"a": "x\\x00"})
    Traceback (most recent call last):
    ...
    backline.errors.CaseError: text must not contain NUL characters
    """
    stack = list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                raise CaseError("text must not contain NUL characters")
        elif isinstance(v, Mapping):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


def _case_with_names():
    owner_u, creator_u = T.users.alias("owner_u"), T.users.alias("creator_u")
    return (select(T.cases, owner_u.c.name.label("owner_name"), creator_u.c.name.label("creator_name"))
            .join(owner_u, owner_u.c.id == T.cases.c.owner_id, isouter=True)
            .join(creator_u, creator_u.c.id == T.cases.c.created_by)
            .where(T.cases.c.key == bindparam("key")))


# Hot statements are built once: SQLAlchemy then finds their compiled form by a memoised cache key
# instead of building the clause and its key on every request.
_CASE_BY_KEY = _case_with_names()
# FOR NO KEY UPDATE: compatible with the KEY SHARE locks that inserts of notes, audit and history
# rows take on the case row, so those writers never deadlock with us; OF cases: only the case row
# is locked (the user rows are read, not locked).  SQLite ignores it (BEGIN IMMEDIATE locks).
_CASE_BY_KEY_LOCKED = _case_with_names().with_for_update(key_share=True, of=T.cases)
_L, _P = T.case_links.c, T.participants.c
_LINKS_AND_PARTICIPANTS = union_all(
    select(literal("l").label("k"), _L.id, _L.other_key.label("a"), _L.kind.label("b"),
           null().label("c"), null().label("d")).where(_L.case_id == bindparam("cid")),
    select(literal("p").label("k"), _P.id, _P.name.label("a"), _P.role.label("b"),
           _P.email.label("c"), _P.user_id.label("d")).where(_P.case_id == bindparam("cid")))
_NOTES_ALL = (select(T.notes, T.users.c.name, T.users.c.role).join(T.users, T.users.c.id == T.notes.c.author_id)
              .where(T.notes.c.case_id == bindparam("cid")).order_by(T.notes.c.id))
_NOTES_PUBLIC = _NOTES_ALL.where(T.notes.c.visibility == Visibility.PUBLIC.value)


#: Case rows already read in this request (see :meth:`CaseService.read_snapshot`); None outside one.
_ROW_MEMO: ContextVar[dict[str, Any] | None] = ContextVar("backline_case_rows", default=None)


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class NewCase:
    """What an escalation carries when it is submitted."""

    title: str
    product: str
    version: str
    org: str
    severity: CaseSeverity
    intake: Mapping[str, Any] = field(default_factory=dict)   # symptoms, business_impact, ...
    team: str | None = None
    sla_policy: str = "default"
    calendar: str | None = None
    links: tuple[str, ...] = ()
    participants: tuple[Participant, ...] = ()


class CaseService:
    """Cases, notes, participants, links, status, ownership, SLA and audit."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = system_clock,
                 sla: SlaConfig | None = None, intake: IntakeRules | None = None,
                 events: "EventSink | None" = None):
        self.engine = engine
        self.reader = read_engine(engine)   # reads that write nothing (no BEGIN/ROLLBACK on PostgreSQL)
        self.clock = clock
        self.sla = sla or SlaConfig.default()
        self.intake = intake or IntakeRules.default()
        self.events = events
        #: Called inside the writing transaction when what a case says changes (its title, intake,
        #: notes or findings) as ``fn(conn, case_id, reason)``; the similar-case index listens here.
        self.on_change: list[Callable[[Connection, int, str], None]] = []

    # ------------------------------------------------------------------ helpers
    def _now(self) -> datetime:
        return utc(self.clock())

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Within the block, reads of the same case row (without a lock) are made once: a page that
        calls several services for one case checks the case once instead of in every call.  Only
        for reading; writes always read the row again in their own transaction."""
        token = _ROW_MEMO.set({})
        try:
            yield
        finally:
            _ROW_MEMO.reset(token)

    def _case_row(self, conn: Connection, user: User, key: str, *, for_update: bool = False):
        """The case row plus ``owner_name`` and ``creator_name`` (one query)."""
        memo = None if for_update else _ROW_MEMO.get()
        row = memo.get(key) if memo is not None else None
        if row is None:
            q = _CASE_BY_KEY_LOCKED if for_update and conn.dialect.name == "postgresql" else _CASE_BY_KEY
            row = conn.execute(q, {"key": key}).mappings().first()
            if memo is not None and row is not None:
                memo[key] = row
        if row is None or not can_see(user, row):
            # the same answer for "absent" and "not yours": keys are not an oracle
            raise NotFound(f"no case {key}", locator=f"case:{key}")
        return row

    def audit(self, conn: Connection, user: User | None, entity: str, entity_id: Any, action: str,
              before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
              case_id: int | None = None) -> None:
        """Append one audit entry (there is no update or delete of these)."""
        conn.execute(insert(T.audit_log).values(
            at=self._now(), actor_id=user.id if user else None, actor=user.name if user else "system",
            case_id=case_id, entity=entity, entity_id=str(entity_id), action=action,
            before=_jsonable(before), after=_jsonable(after)))

    def _audited_insert(self, ins, id_col, user: User, entity: str, action: str,
                        before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, case_id: int):
        """PostgreSQL: ``ins`` and the audit entry of the row it makes, as one statement
        (``WITH new AS (INSERT ... RETURNING id) INSERT INTO audit_log ... SELECT``); the
        statement returns the new row's id as text.  Same rows as ``execute(ins)`` + :meth:`audit`."""
        new = ins.returning(id_col).cte("new_row")
        A = T.audit_log.c
        vals = {A.at: self._now(), A.actor_id: user.id, A.actor: user.name, A.case_id: case_id,
                A.entity: entity, A.action: action, A.before: _jsonable(before), A.after: _jsonable(after)}
        cols = [c.name for c in vals] + ["entity_id"]
        sel = select(*[literal(v, c.type) for c, v in vals.items()], cast(new.c[id_col.name], String(64)))
        return insert(T.audit_log).from_select(cols, sel).returning(A.entity_id)

    def _emit(self, conn: Connection, event: str, case_row: Mapping[str, Any], actor: User,
              **data: Any) -> None:
        if self.events is not None:
            self.events.emit(conn, event, dict(case_row), actor, data)

    def changed(self, conn: Connection, case_id: int, reason: str) -> None:
        """Tell the listeners of :attr:`on_change` (inside the caller's transaction)."""
        for fn in self.on_change:
            fn(conn, case_id, reason)

    def _cas(self, conn: Connection, row, expected: int | None, values: Mapping[str, Any]) -> dict[str, Any]:
        """Compare-and-set on ``row_version``; returns the row as written."""
        if expected is not None and expected != row["row_version"]:
            raise Conflict(f"case {row['key']} was changed (version {row['row_version']}, "
                           f"you sent {expected}); reload and retry", locator=f"case:{row['key']}")
        new = row["row_version"] + 1
        now = self._now()
        n = conn.execute(update(T.cases).where(T.cases.c.id == row["id"],
                                               T.cases.c.row_version == row["row_version"])
                         .values(row_version=new, updated_at=now, **values)).rowcount
        if n != 1:
            raise Conflict(f"case {row['key']} was changed by someone else; reload and retry",
                           locator=f"case:{row['key']}")
        return {**dict(row), **values, "row_version": new, "updated_at": now}

    # ------------------------------------------------------------------ cases
    def check_intake(self, product: str, intake: Mapping[str, Any]) -> IntakeResult:
        return self.intake.check(product, intake)

    def create(self, user: User, new: NewCase) -> Case:
        """Take in an escalation: complete ones enter the queue (``new``), others go to ``needs_info``."""
        require(user, Action.CREATE_CASE)
        reject_nul(new.title, new.product, new.version, new.org, new.team, dict(new.intake), list(new.links),
                   [(p.name, p.email) for p in new.participants])
        if not new.title.strip() or len(new.title) > MAX_TITLE:
            raise CaseError(f"title must be 1..{MAX_TITLE} characters")
        for what, val in (("product", new.product), ("version", new.version), ("org", new.org)):
            if not str(val).strip() or len(str(val)) > 200:
                raise CaseError(f"{what} must be 1..200 characters")
        self.sla.policy(new.sla_policy)
        if new.calendar is not None:
            self.sla.calendar(new.calendar)
        result = self.intake.check(new.product, new.intake)
        status = CaseStatus.NEW if result.complete else CaseStatus.NEEDS_INFO
        now = self._now()
        with self.engine.begin() as conn:
            cid = conn.execute(insert(T.cases).values(
                key=f"tmp-{uuid.uuid4().hex[:24]}", title=new.title.strip(), product=new.product,
                version=new.version, org=new.org, severity=new.severity.value, status=status.value,
                owner_id=None, co_owners=[], team=new.team or user.team, created_by=user.id,
                created_at=now, updated_at=now, row_version=1, intake=dict(new.intake),
                intake_score=result.score, intake_missing=list(result.missing),
                sla_policy=new.sla_policy, calendar=new.calendar, first_response_at=None,
                last_customer_contact_at=now, last_staff_contact_at=None, resolved_at=None,
                returned_for_info=not result.complete)).inserted_primary_key[0]
            key = f"{KEY_PREFIX}{KEY_BASE + cid}"
            conn.execute(update(T.cases).where(T.cases.c.id == cid).values(key=key))
            conn.execute(insert(T.status_history).values(case_id=cid, from_status=None,
                                                         to_status=status.value, at=now, by_id=user.id))
            for other in new.links:
                try:
                    self._case_row(conn, user, other)
                except NotFound:
                    raise CaseError(f"cannot link to {other}: no such case") from None
                self._link(conn, user, cid, other, "related")
            for p in new.participants:
                self._add_participant(conn, cid, p)
            row = conn.execute(select(T.cases).where(T.cases.c.id == cid)).mappings().one()
            self.audit(conn, user, "case", key, "create", None,
                       {"status": status.value, "severity": new.severity.value, "title": new.title,
                        "intake_score": result.score, "missing": list(result.missing)}, cid)
            self._emit(conn, "case.created", row, user, intake=result.to_json())
            self.changed(conn, cid, "created")
            return self._load(conn, row)

    def get(self, user: User, key: str) -> Case:
        require(user, Action.READ_CASE)
        with self.reader.connect() as conn:
            row = self._case_row(conn, user, key)
            return self._load(conn, row, row["owner_name"], row["creator_name"])

    def list(self, user: User, *, status: Sequence[CaseStatus] = (), severity: Sequence[CaseSeverity] = (),
             org: str | None = None, owner: str | None = None, limit: int = 100, offset: int = 0) -> list[Case]:
        require(user, Action.READ_CASE)
        owner_u = T.users.alias("owner_u")
        creator_u = T.users.alias("creator_u")
        q = (select(T.cases, owner_u.c.name.label("owner_name"), creator_u.c.name.label("creator_name"))
             .join(owner_u, owner_u.c.id == T.cases.c.owner_id, isouter=True)
             .join(creator_u, creator_u.c.id == T.cases.c.created_by)
             .where(visible_filter(user)))
        if status:
            q = q.where(T.cases.c.status.in_([s.value for s in status]))
        if severity:
            q = q.where(T.cases.c.severity.in_([s.value for s in severity]))
        if org:
            q = q.where(T.cases.c.org == org)
        if owner:
            q = q.where(owner_u.c.name == owner)
        q = q.order_by(T.cases.c.id.desc()).limit(max(1, min(limit, 1000))).offset(max(0, offset))
        with self.reader.connect() as conn:
            return [_row_to_case(r, r["owner_name"], creator=r["creator_name"]) for r in conn.execute(q).mappings()]

    def update(self, user: User, key: str, changes: Mapping[str, Any], *, expected_version: int | None = None) -> Case:
        """Change title, severity, version, team, SLA policy or calendar, or add intake items."""
        require(user, Action.UPDATE_CASE)
        allowed_fields = {"title", "severity", "version", "team", "sla_policy", "calendar", "intake"}
        unknown = set(changes) - allowed_fields
        if unknown:
            raise CaseError(f"cannot change {', '.join(sorted(unknown))}")
        reject_nul(dict(changes))
        with self.engine.begin() as conn:
            row = self._case_row(conn, user, key, for_update=True)
            values: dict[str, Any] = {}
            if "title" in changes:
                title = str(changes["title"]).strip()
                if not title or len(title) > MAX_TITLE:
                    raise CaseError(f"title must be 1..{MAX_TITLE} characters")
                values["title"] = title
            if "severity" in changes:
                values["severity"] = CaseSeverity.parse(changes["severity"]).value
            for f in ("version", "team"):
                if f in changes:
                    values[f] = changes[f]
            if "sla_policy" in changes:
                values["sla_policy"] = self.sla.policy(str(changes["sla_policy"])).name
            if "calendar" in changes:
                values["calendar"] = None if changes["calendar"] is None else self.sla.calendar(str(changes["calendar"])).name
            if "intake" in changes:
                merged = {**row["intake"], **dict(changes["intake"])}
                result = self.intake.check(row["product"], merged)
                values.update(intake=merged, intake_score=result.score, intake_missing=list(result.missing))
            before = {k: row[k] for k in values}
            new_row = self._cas(conn, row, expected_version, values)
            self.audit(conn, user, "case", key, "update", before, values, row["id"])
            self._emit(conn, "case.updated", new_row, user, changes=sorted(values))
            self.changed(conn, row["id"], "updated")
            return self._load(conn, new_row, row["owner_name"], row["creator_name"])

    def set_status(self, user: User, key: str, status: CaseStatus | str, *, expected_version: int | None = None,
                   reason: str | None = None) -> Case:
        """Move the case; the move must be in :data:`~backline.cases.model.TRANSITIONS`."""
        require(user, Action.CHANGE_STATUS)
        target = status if isinstance(status, CaseStatus) else CaseStatus.parse(status)
        with self.engine.begin() as conn:
            row = self._case_row(conn, user, key, for_update=True)
            current = CaseStatus(row["status"])
            if user.role is Role.SUPPORT and target not in SUPPORT_STATUS_MOVES:
                raise PermissionDenied(f"support may only move a case to {', '.join(sorted(s.value for s in SUPPORT_STATUS_MOVES))}")
            if not current.can_go_to(target):
                raise CaseError(f"cannot move {key} from {current.value} to {target.value}",
                                locator=f"case:{key}")
            if current is CaseStatus.NEEDS_INFO and target is CaseStatus.NEW:
                result = self.intake.check(row["product"], row["intake"])
                if not result.complete:
                    raise CaseError(f"escalation is still missing: {', '.join(result.missing)}",
                                    locator=f"case:{key}")
            now = self._now()
            values: dict[str, Any] = {"status": target.value}
            if target is CaseStatus.RESOLVED:
                values["resolved_at"] = now
            if target is CaseStatus.NEEDS_INFO:
                values["returned_for_info"] = True
            if target is CaseStatus.INVESTIGATING and current is CaseStatus.RESOLVED:
                values["resolved_at"] = None
            new_row = self._cas(conn, row, expected_version, values)
            conn.execute(insert(T.status_history).values(case_id=row["id"], from_status=current.value,
                                                         to_status=target.value, at=now, by_id=user.id))
            self.audit(conn, user, "case", key, "status", {"status": current.value},
                       {"status": target.value, "reason": reason}, row["id"])
            self._emit(conn, "case.status_changed", new_row, user, before=current.value,
                       after=target.value, reason=reason)
            return self._load(conn, new_row, row["owner_name"], row["creator_name"])

    def assign(self, user: User, key: str, owner: str, *, co_owners: Sequence[str] | None = None,
               expected_version: int | None = None) -> Case:
        """Give the case an owner (an escalation engineer, developer or manager) and co-owners."""
        require(user, Action.ASSIGN)
        with self.engine.begin() as conn:
            row = self._case_row(conn, user, key, for_update=True)
            owner_row = self._staff(conn, owner)
            cos = [self._staff(conn, n)["name"] for n in (co_owners or ())]
            values = {"owner_id": owner_row["id"]}
            if co_owners is not None:
                values["co_owners"] = cos
            before_owner = row["owner_name"]
            new_row = self._cas(conn, row, expected_version, values)
            self.audit(conn, user, "case", key, "assign",
                       {"owner": before_owner, "co_owners": row["co_owners"]},
                       {"owner": owner_row["name"], "co_owners": cos if co_owners is not None else row["co_owners"]},
                       row["id"])
            self._emit(conn, "case.assigned", new_row, user, owner=owner_row["name"])
            return self._load(conn, new_row, owner_row["name"], row["creator_name"])

    def _staff(self, conn: Connection, name: str):
        r = conn.execute(select(T.users).where(T.users.c.name == name)).mappings().first()
        if r is None:
            raise CaseError(f"no user {name!r}")
        if Role(r["role"]) not in (Role.ENGINEER, Role.DEVELOPER, Role.MANAGER, Role.ADMIN):
            raise CaseError(f"{name} is {r['role']}; owners must be engineers, developers or managers")
        return r

    # ------------------------------------------------------------------ links, participants
    def link(self, user: User, key: str, other: str, kind: str = "related") -> Case:
        require(user, Action.UPDATE_CASE)
        reject_nul(other, kind)
        with self.engine.begin() as conn:
            row = self._case_row(conn, user, key)
            self._case_row(conn, user, other)
            self._link(conn, user, row["id"], other, kind)
            self.audit(conn, user, "case", key, "link", None, {"other": other, "kind": kind}, row["id"])
            return self._load(conn, row)

    def _link(self, conn: Connection, user: User, cid: int, other: str, kind: str) -> None:
        exists = conn.execute(select(T.case_links.c.id).where(T.case_links.c.case_id == cid,
                                                              T.case_links.c.other_key == other)).first()
        if not exists:
            conn.execute(insert(T.case_links).values(case_id=cid, other_key=other, kind=kind))

    def add_participant(self, user: User, key: str, participant: Participant) -> Case:
        require(user, Action.MANAGE_PARTICIPANTS)
        reject_nul(participant.name, participant.email)
        with self.engine.begin() as conn:
            row = self._case_row(conn, user, key)
            self._add_participant(conn, row["id"], participant)
            self.audit(conn, user, "participant", key, "add", None,
                       {"name": participant.name, "role": participant.role.value, "email": participant.email},
                       row["id"])
            return self._load(conn, row)

    def _add_participant(self, conn: Connection, cid: int, p: Participant) -> None:
        conn.execute(insert(T.participants).values(case_id=cid, user_id=p.user_id, name=p.name,
                                                   email=p.email, role=p.role.value))

    # ------------------------------------------------------------------ notes
    def add_note(self, user: User, key: str, body: str, visibility: Visibility | str = Visibility.INTERNAL) -> Note:
        """Add a note.  A staff member's public note is contact with the customer (SLA)."""
        vis = visibility if isinstance(visibility, Visibility) else _visibility(visibility)
        require(user, Action.ADD_PUBLIC_NOTE if vis is Visibility.PUBLIC else Action.ADD_INTERNAL_NOTE)
        reject_nul(body)
        if not body.strip() or len(body) > MAX_NOTE:
            raise CaseError(f"note body must be 1..{MAX_NOTE} characters")
        now = self._now()
        contact: dict[str, Any] = {}
        if vis is Visibility.PUBLIC:
            if user.role.is_staff:
                contact["last_staff_contact_at"] = now
                contact["first_response_at"] = func.coalesce(T.cases.c.first_response_at, now)
            else:
                contact["last_customer_contact_at"] = now
        with self.engine.begin() as conn:
            # lock the case row first (before inserting rows that reference it) and read it in the
            # same statement; contact times only move forward and never conflict with other writers
            row = conn.execute(update(T.cases).where(T.cases.c.key == key).values(updated_at=now, **contact)
                               .returning(*T.cases.c)).mappings().first()
            if row is None or not can_see(user, row):
                raise NotFound(f"no case {key}", locator=f"case:{key}")   # the update is rolled back
            new_note = insert(T.notes).values(case_id=row["id"], author_id=user.id, body=body,
                                              visibility=vis.value, created_at=now, updated_at=now, revisions=0)
            after = {"visibility": vis.value, "body": body}
            if conn.dialect.name == "postgresql":
                # the note and its audit entry in one statement (one round trip fewer per note)
                nid = int(conn.execute(self._audited_insert(new_note, T.notes.c.id, user, "note", "create",
                                                            None, after, row["id"])).scalar_one())
            else:
                nid = conn.execute(new_note).inserted_primary_key[0]
                self.audit(conn, user, "note", nid, "create", None, after, row["id"])
            self._emit(conn, "note.created", row, user, note_id=nid, visibility=vis.value, body=body)
            self.changed(conn, row["id"], "note")
            return Note(nid, key, user.name, user.role, body, vis, now, now, 0)

    def edit_note(self, user: User, note_id: int, body: str, visibility: Visibility | str | None = None,
                  *, expected_revisions: int | None = None) -> Note:
        """Edit a note; the previous text is kept in its history."""
        reject_nul(body)
        if not body.strip() or len(body) > MAX_NOTE:
            raise CaseError(f"note body must be 1..{MAX_NOTE} characters")
        with self.engine.begin() as conn:
            n = conn.execute(select(T.notes).where(T.notes.c.id == note_id)).mappings().first()
            if n is None:
                raise NotFound(f"no note {note_id}")
            crow = conn.execute(select(T.cases).where(T.cases.c.id == n["case_id"])).mappings().one()
            if not can_see(user, crow) or (n["visibility"] == "internal" and not user.role.is_staff):
                raise NotFound(f"no note {note_id}")
            if n["author_id"] != user.id and user.role not in (Role.MANAGER, Role.ADMIN):
                raise PermissionDenied("only the author (or a manager) may edit a note")
            vis = _visibility(visibility) if visibility is not None else Visibility(n["visibility"])
            require(user, Action.ADD_PUBLIC_NOTE if vis is Visibility.PUBLIC else Action.ADD_INTERNAL_NOTE)
            if expected_revisions is not None and expected_revisions != n["revisions"]:
                raise Conflict(f"note {note_id} was edited meanwhile (revision {n['revisions']})")
            now = self._now()
            conn.execute(insert(T.note_revisions).values(note_id=note_id, body=n["body"], visibility=n["visibility"],
                                                         edited_by=user.id, edited_at=now))
            cnt = conn.execute(update(T.notes).where(T.notes.c.id == note_id, T.notes.c.revisions == n["revisions"])
                               .values(body=body, visibility=vis.value, updated_at=now,
                                       revisions=n["revisions"] + 1)).rowcount
            if cnt != 1:
                raise Conflict(f"note {note_id} was edited meanwhile")
            self.audit(conn, user, "note", note_id, "edit", {"body": n["body"], "visibility": n["visibility"]},
                       {"body": body, "visibility": vis.value}, crow["id"])
            self.changed(conn, crow["id"], "note")
            author = conn.execute(select(T.users).where(T.users.c.id == n["author_id"])).mappings().one()
            return Note(note_id, crow["key"], author["name"], Role(author["role"]), body, vis,
                        utc(n["created_at"]), now, n["revisions"] + 1)

    def note_history(self, user: User, note_id: int) -> list[dict[str, Any]]:
        with self.reader.connect() as conn:
            n = conn.execute(select(T.notes).where(T.notes.c.id == note_id)).mappings().first()
            crow = n and conn.execute(select(T.cases).where(T.cases.c.id == n["case_id"])).mappings().one()
            if n is None or not can_see(user, crow) or (n["visibility"] == "internal" and not user.role.is_staff):
                raise NotFound(f"no note {note_id}")
            rows = conn.execute(select(T.note_revisions, T.users.c.name)
                                .join(T.users, T.users.c.id == T.note_revisions.c.edited_by)
                                .where(T.note_revisions.c.note_id == note_id)
                                .order_by(T.note_revisions.c.id)).mappings().all()
        return [{"body": r["body"], "visibility": r["visibility"], "replaced_by": r["name"],
                 "replaced_at": utc(r["edited_at"]).isoformat()} for r in rows
                if user.role.is_staff or r["visibility"] == "public"]

    def note(self, user: User, note_id: int) -> Note:
        """One note (NotFound when the user may not see it)."""
        N = T.notes.c
        with self.reader.connect() as conn:
            r = conn.execute(select(N.id, N.body, N.visibility, N.created_at, N.updated_at, N.revisions,
                                    T.users.c.name.label("author"), T.users.c.role.label("author_role"), T.cases)
                             .join(T.cases, T.cases.c.id == N.case_id).join(T.users, T.users.c.id == N.author_id)
                             .where(N.id == note_id)).mappings().first()
        if r is None or not can_see(user, r) or (r["visibility"] == "internal" and not user.role.is_staff):
            raise NotFound(f"no note {note_id}")
        return Note(note_id, r["key"], r["author"], Role(r["author_role"]), r["body"], Visibility(r["visibility"]),
                    utc(r["created_at"]), utc(r["updated_at"]), r["revisions"])

    def notes(self, user: User, key: str) -> list[Note]:
        """Notes of the case; customers get public ones only."""
        with self.reader.connect() as conn:
            row = self._case_row(conn, user, key)
            q = _NOTES_ALL if user.role.is_staff else _NOTES_PUBLIC
            return [Note(r["id"], key, r["name"], Role(r["role"]), r["body"], Visibility(r["visibility"]),
                         utc(r["created_at"]), utc(r["updated_at"]), r["revisions"])
                    for r in conn.execute(q, {"cid": row["id"]}).mappings()]

    # ------------------------------------------------------------------ audit, SLA
    def audit_log(self, user: User, key: str) -> list[AuditEntry]:
        require(user, Action.READ_AUDIT)
        with self.reader.connect() as conn:
            row = self._case_row(conn, user, key)
            rows = conn.execute(select(T.audit_log).where(T.audit_log.c.case_id == row["id"])
                                .order_by(T.audit_log.c.id)).mappings().all()
        return [AuditEntry(r["id"], utc(r["at"]), r["actor"], key, r["entity"], r["entity_id"], r["action"],
                           r["before"], r["after"]) for r in rows]

    def sla_clocks(self, user: User, key: str, *, now: datetime | None = None) -> tuple[Clock, ...]:
        require(user, Action.READ_SLA)
        with self.reader.connect() as conn:
            row = self._case_row(conn, user, key)
            return self.clocks_for_row(conn, row, now or self._now())

    def clocks_for_row(self, conn: Connection, row, now: datetime) -> tuple[Clock, ...]:
        hist = conn.execute(select(T.status_history.c.at, T.status_history.c.to_status)
                            .where(T.status_history.c.case_id == row["id"])
                            .order_by(T.status_history.c.id)).all()
        return compute_clocks(_clock_input(row, [(utc(a), CaseStatus(s)) for a, s in hist]), self.sla, now)

    # ------------------------------------------------------------------ loading
    def _load(self, conn: Connection, row, owner: str | None = None, creator: str | None = None) -> Case:
        """The full case (names, links, participants) in at most two more queries."""
        if creator is None or (owner is None and row["owner_id"] is not None):
            names = dict(conn.execute(select(T.users.c.id, T.users.c.name).where(
                T.users.c.id.in_({row["created_by"], row["owner_id"] or row["created_by"]}))).all())
            owner = names.get(row["owner_id"]) if row["owner_id"] is not None else None
            creator = names.get(row["created_by"])
        links: list[str] = []
        parts: list[Participant] = []
        for k, _id, a, b, c, d in sorted(conn.execute(_LINKS_AND_PARTICIPANTS, {"cid": row["id"]}).all(), key=lambda r: (r[0], r[1])):
            if k == "l":
                links.append(a)
            else:
                parts.append(Participant(a, ParticipantRole(b), c, d))
        return _row_to_case(row, owner, tuple(links), tuple(parts), creator=creator)

    def count(self) -> int:
        with self.reader.connect() as conn:
            return conn.execute(select(func.count()).select_from(T.cases)).scalar_one()


class EventSink:
    """Receives case events inside the writing transaction (see :mod:`backline.cases.notify`)."""

    def emit(self, conn: Connection, event: str, case_row: dict[str, Any], actor: User,
             data: dict[str, Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def _clock_input(row, history) -> ClockInput:
    return ClockInput(CaseSeverity(row["severity"]), utc(row["created_at"]), history,
                      utc(row["first_response_at"]), utc(row["last_customer_contact_at"]),
                      utc(row["last_staff_contact_at"]), row["sla_policy"], row["calendar"])


def _row_to_case(row, owner: str | None, links: tuple[str, ...] = (),
                 participants: tuple[Participant, ...] = (), *, creator: str | None = None) -> Case:
    return Case(id=row["id"], key=row["key"], title=row["title"], product=row["product"], version=row["version"],
                org=row["org"], severity=CaseSeverity(row["severity"]), status=CaseStatus(row["status"]),
                owner=owner, co_owners=tuple(row["co_owners"] or ()), team=row["team"],
                created_by=creator or str(row["created_by"]), created_at=utc(row["created_at"]),
                updated_at=utc(row["updated_at"]), row_version=row["row_version"], intake=row["intake"] or {},
                intake_score=row["intake_score"], intake_missing=tuple(row["intake_missing"] or ()),
                links=links, participants=participants, sla_policy=row["sla_policy"],
                calendar=row["calendar"] or "", first_response_at=utc(row["first_response_at"]),
                resolved_at=utc(row["resolved_at"]), returned_for_info=bool(row["returned_for_info"]))


def _visibility(text: str) -> Visibility:
    try:
        return Visibility(str(text).lower())
    except ValueError:
        raise CaseError(f"visibility must be 'internal' or 'public', not {text!r}") from None


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value

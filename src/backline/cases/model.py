"""The escalation case domain: statuses, severities, roles, and the value types
the service hands out.  No I/O here.

>>> CaseStatus.NEW.can_go_to(CaseStatus.INVESTIGATING)
True
>>> CaseStatus.CLOSED.can_go_to(CaseStatus.NEW)
False
>>> CaseSeverity.parse("s1") is CaseSeverity.S1
True
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from backline.errors import CaseError


class CaseStatus(str, enum.Enum):
    """Where a case is in the escalation workflow."""

    NEEDS_INFO = "needs_info"                  # returned to the submitter for missing information
    NEW = "new"                                # accepted into the escalation queue
    INVESTIGATING = "investigating"
    WAITING_CUSTOMER = "waiting_customer"
    WAITING_DEVELOPMENT = "waiting_development"
    FIX_PENDING = "fix_pending"
    RESOLVED = "resolved"
    CLOSED = "closed"

    def can_go_to(self, other: "CaseStatus") -> bool:
        return other in TRANSITIONS[self]

    @property
    def is_open(self) -> bool:
        return self not in (CaseStatus.RESOLVED, CaseStatus.CLOSED)

    @classmethod
    def parse(cls, text: str) -> "CaseStatus":
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise CaseError(f"unknown status {text!r}; use one of "
                            + ", ".join(s.value for s in cls)) from None


_S = CaseStatus
#: The allowed moves.  Everything else is refused with a CaseError.
TRANSITIONS: Mapping[CaseStatus, frozenset[CaseStatus]] = {
    _S.NEEDS_INFO: frozenset({_S.NEW, _S.CLOSED}),
    _S.NEW: frozenset({_S.INVESTIGATING, _S.NEEDS_INFO, _S.WAITING_CUSTOMER, _S.RESOLVED, _S.CLOSED}),
    _S.INVESTIGATING: frozenset({_S.WAITING_CUSTOMER, _S.WAITING_DEVELOPMENT, _S.FIX_PENDING,
                                 _S.RESOLVED, _S.NEEDS_INFO}),
    _S.WAITING_CUSTOMER: frozenset({_S.INVESTIGATING, _S.RESOLVED, _S.CLOSED}),
    _S.WAITING_DEVELOPMENT: frozenset({_S.INVESTIGATING, _S.FIX_PENDING, _S.RESOLVED}),
    _S.FIX_PENDING: frozenset({_S.INVESTIGATING, _S.WAITING_DEVELOPMENT, _S.RESOLVED}),
    _S.RESOLVED: frozenset({_S.CLOSED, _S.INVESTIGATING}),      # reopen goes back to investigating
    _S.CLOSED: frozenset(),
}


class CaseSeverity(str, enum.Enum):
    """Business severity, S1 (production down) to S4 (question / cosmetic)."""

    S1 = "S1"
    S2 = "S2"
    S3 = "S3"
    S4 = "S4"

    @classmethod
    def parse(cls, text: str) -> "CaseSeverity":
        key = str(text).strip().upper()
        if key in {"1", "2", "3", "4"}:
            key = "S" + key
        try:
            return cls(key)
        except ValueError:
            raise CaseError(f"unknown severity {text!r}; use S1, S2, S3 or S4") from None


class Role(str, enum.Enum):
    """What an API user is (decides what they may see and do)."""

    CUSTOMER = "customer"
    SUPPORT = "support"
    ENGINEER = "engineer"          # escalation engineer
    DEVELOPER = "developer"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def is_staff(self) -> bool:
        return self is not Role.CUSTOMER

    @property
    def sees_all_cases(self) -> bool:
        return self in (Role.ENGINEER, Role.DEVELOPER, Role.MANAGER, Role.ADMIN)


class ParticipantRole(str, enum.Enum):
    """The part a person plays on one case."""

    CUSTOMER_CONTACT = "customer_contact"
    SUPPORT_ENGINEER = "support_engineer"
    ESCALATION_ENGINEER = "escalation_engineer"
    DEVELOPER = "developer"
    SALES = "sales"
    CONSULTANT = "consultant"
    MANAGER = "manager"
    WATCHER = "watcher"


class Visibility(str, enum.Enum):
    INTERNAL = "internal"
    PUBLIC = "public"


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Verification(str, enum.Enum):
    """Where a hotfix stands with the customers who got it."""

    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    org: str | None = None
    team: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Participant:
    name: str
    role: ParticipantRole
    email: str | None = None
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class Case:
    """One escalation, as stored.  ``row_version`` is the optimistic-lock counter."""

    id: int
    key: str
    title: str
    product: str
    version: str
    org: str
    severity: CaseSeverity
    status: CaseStatus
    owner: str | None
    co_owners: tuple[str, ...]
    team: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    row_version: int
    intake: Mapping[str, Any] = field(default_factory=dict)
    intake_score: float = 0.0
    intake_missing: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    participants: tuple[Participant, ...] = ()
    sla_policy: str = "default"
    calendar: str = "24x7"
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    returned_for_info: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "product": self.product,
            "version": self.version, "org": self.org, "severity": self.severity.value,
            "status": self.status.value, "owner": self.owner, "co_owners": list(self.co_owners),
            "team": self.team, "created_by": self.created_by,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "row_version": self.row_version, "intake": dict(self.intake),
            "intake_score": self.intake_score, "intake_missing": list(self.intake_missing),
            "links": list(self.links),
            "participants": [{"name": p.name, "role": p.role.value, "email": p.email}
                             for p in self.participants],
            "sla_policy": self.sla_policy, "calendar": self.calendar,
            "first_response_at": _iso(self.first_response_at),
            "resolved_at": _iso(self.resolved_at),
        }


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    case_key: str
    author: str
    author_role: Role
    body: str
    visibility: Visibility
    created_at: datetime
    updated_at: datetime
    revisions: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "case": self.case_key, "author": self.author,
                "author_role": self.author_role.value, "body": self.body,
                "visibility": self.visibility.value, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(), "revisions": self.revisions}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    case_key: str | None
    entity: str
    entity_id: str
    action: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor,
                "case": self.case_key, "entity": self.entity, "entity_id": self.entity_id,
                "action": self.action, "before": self.before, "after": self.after}


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None

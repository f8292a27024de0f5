"""Who may do what.  One table of actions to roles, plus the case-visibility rule.

* a customer sees only their organisation's cases, and only public notes;
* support sees the cases they escalated and their team's cases;
* escalation engineers, developers, managers (and admins) see all cases,
  internal notes included.

>>> from backline.cases.model import User, Role
>>> allowed(User(1, "c", Role.CUSTOMER, org="acme"), Action.ADD_INTERNAL_NOTE)
False
>>> allowed(User(2, "e", Role.ENGINEER), Action.ASSIGN)
True
"""

from __future__ import annotations

import enum
from typing import Any, Mapping

from sqlalchemy import ColumnElement, false, or_, true

from backline.cases.model import CaseStatus, Role, User
from backline.errors import PermissionDenied
from backline.storage import tables as T


class Action(str, enum.Enum):
    CREATE_CASE = "create_case"
    READ_CASE = "read_case"
    UPDATE_CASE = "update_case"
    CHANGE_STATUS = "change_status"
    ASSIGN = "assign"
    ADD_PUBLIC_NOTE = "add_public_note"
    ADD_INTERNAL_NOTE = "add_internal_note"
    READ_INTERNAL_NOTES = "read_internal_notes"
    UPLOAD_EVIDENCE = "upload_evidence"
    READ_FINDINGS = "read_findings"
    READ_SLA = "read_sla"
    MANAGE_BUGS = "manage_bugs"
    READ_BUGS = "read_bugs"
    MANAGE_HOTFIXES = "manage_hotfixes"
    READ_HOTFIXES = "read_hotfixes"
    READ_REPORTS = "read_reports"
    READ_AUDIT = "read_audit"
    MANAGE_PARTICIPANTS = "manage_participants"
    ATTACH_ANALYSIS = "attach_analysis"
    READ_KB = "read_kb"                    # known issues (all statuses) and crash-signature links
    MANAGE_KB = "manage_kb"                # add, edit, test, promote a case to a known issue
    PUBLISH_KB = "publish_kb"              # publish / retire: what the service matches against


_R = Role
_STAFF = frozenset({_R.SUPPORT, _R.ENGINEER, _R.DEVELOPER, _R.MANAGER, _R.ADMIN})
_ESC = frozenset({_R.ENGINEER, _R.DEVELOPER, _R.MANAGER, _R.ADMIN})
_ALL = frozenset(Role)

#: The permission table.  Case-scoped actions additionally need the case to be visible.
POLICY: Mapping[Action, frozenset[Role]] = {
    Action.CREATE_CASE: frozenset({_R.SUPPORT, _R.ENGINEER, _R.MANAGER, _R.ADMIN}),
    Action.READ_CASE: _ALL,
    Action.UPDATE_CASE: frozenset({_R.SUPPORT, _R.ENGINEER, _R.MANAGER, _R.ADMIN}),
    Action.CHANGE_STATUS: frozenset({_R.SUPPORT}) | _ESC,      # support: only the moves below
    Action.ASSIGN: frozenset({_R.ENGINEER, _R.MANAGER, _R.ADMIN}),
    Action.ADD_PUBLIC_NOTE: _ALL,
    Action.ADD_INTERNAL_NOTE: _STAFF,
    Action.READ_INTERNAL_NOTES: _STAFF,
    Action.UPLOAD_EVIDENCE: _ALL,
    Action.READ_FINDINGS: _STAFF,
    Action.READ_SLA: _STAFF,
    Action.MANAGE_BUGS: _ESC,
    Action.READ_BUGS: _STAFF,
    Action.MANAGE_HOTFIXES: _ESC,
    Action.READ_HOTFIXES: _STAFF,
    Action.READ_REPORTS: frozenset({_R.ENGINEER, _R.MANAGER, _R.ADMIN}),
    Action.READ_AUDIT: frozenset({_R.ENGINEER, _R.MANAGER, _R.ADMIN}),
    Action.MANAGE_PARTICIPANTS: frozenset({_R.SUPPORT}) | _ESC,
    Action.ATTACH_ANALYSIS: _STAFF,                         # findings made elsewhere: staff vouch for them
    Action.READ_KB: _STAFF,
    Action.MANAGE_KB: _ESC,
    Action.PUBLISH_KB: frozenset({_R.ENGINEER, _R.MANAGER, _R.ADMIN}),
}

#: Status moves support may make (resubmit a completed escalation, or withdraw it).
SUPPORT_STATUS_MOVES = frozenset({CaseStatus.NEW, CaseStatus.CLOSED})


def allowed(user: User, action: Action) -> bool:
    return user.role in POLICY[action]


def require(user: User, action: Action, what: str = "") -> None:
    if not allowed(user, action):
        raise PermissionDenied(f"role {user.role.value} may not {action.value.replace('_', ' ')}"
                               + (f" ({what})" if what else ""))


def can_see(user: User, case_row: Mapping[str, Any]) -> bool:
    """Whether ``user`` may see the case stored in ``case_row`` (a ``cases`` row mapping)."""
    if user.role.sees_all_cases:
        return True
    if user.role is Role.CUSTOMER:
        return user.org is not None and case_row["org"] == user.org
    if user.role is Role.SUPPORT:
        return case_row["created_by"] == user.id or (user.team is not None and case_row["team"] == user.team)
    return False


def visible_filter(user: User) -> ColumnElement[bool]:
    """The same rule as :func:`can_see`, as a WHERE clause on ``cases``."""
    c = T.cases.c
    if user.role.sees_all_cases:
        return true()
    if user.role is Role.CUSTOMER:
        return c.org == user.org if user.org is not None else false()
    if user.role is Role.SUPPORT:
        return or_(c.created_by == user.id, c.team == user.team) if user.team else c.created_by == user.id
    return false()

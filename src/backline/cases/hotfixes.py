"""Hotfixes: a build that fixes bugs, and which cases/customers got it.

>>> Verification("verified").value
'verified'
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from backline.cases.access import Action, require
from backline.cases.model import User, Verification
from backline.cases.service import CaseService, reject_nul
from backline.errors import CaseError, NotFound
from backline.model.core import utc
from backline.storage import tables as T


class HotfixService:
    def __init__(self, cases: CaseService):
        self.cases = cases

    def create(self, user: User, name: str, *, build: str, bug_ids: Sequence[int] = (),
               affected_versions: Sequence[str] = (), fixed_versions: Sequence[str] = (),
               delivered_to: Sequence[str] = ()) -> dict[str, Any]:
        require(user, Action.MANAGE_HOTFIXES)
        reject_nul(name, build, list(affected_versions), list(fixed_versions), list(delivered_to))
        now = self.cases._now()
        try:
            with self.cases.engine.begin() as conn:
                for bid in bug_ids:
                    if conn.execute(select(T.bugs.c.id).where(T.bugs.c.id == bid)).first() is None:
                        raise CaseError(f"no bug report {bid}")
                hid = conn.execute(insert(T.hotfixes).values(
                    name=name, bug_ids=list(bug_ids), build=build, affected_versions=list(affected_versions),
                    fixed_versions=list(fixed_versions), verification=Verification.PENDING.value,
                    created_at=now, created_by=user.id)).inserted_primary_key[0]
                self.cases.audit(conn, user, "hotfix", name, "create", None,
                                 {"build": build, "bug_ids": list(bug_ids)})
                for key in delivered_to:
                    self._deliver(conn, user, hid, name, key)
        except IntegrityError:
            raise CaseError(f"hotfix {name!r} already exists") from None
        return self.get(user, name)

    def _deliver(self, conn, user: User, hid: int, name: str, key: str) -> None:
        row = self.cases._case_row(conn, user, key)
        exists = conn.execute(select(T.hotfix_deliveries.c.id).where(
            T.hotfix_deliveries.c.hotfix_id == hid, T.hotfix_deliveries.c.case_id == row["id"])).first()
        if exists:
            return
        conn.execute(insert(T.hotfix_deliveries).values(hotfix_id=hid, case_id=row["id"], org=row["org"],
                                                        delivered_at=self.cases._now()))
        self.cases.audit(conn, user, "hotfix", name, "deliver", None, {"case": key, "org": row["org"]}, row["id"])

    def deliver(self, user: User, name: str, key: str) -> dict[str, Any]:
        require(user, Action.MANAGE_HOTFIXES)
        with self.cases.engine.begin() as conn:
            hid = self._id(conn, name)
            self._deliver(conn, user, hid, name, key)
        return self.get(user, name)

    def set_verification(self, user: User, name: str, verification: str) -> dict[str, Any]:
        require(user, Action.MANAGE_HOTFIXES)
        try:
            v = Verification(verification)
        except ValueError:
            raise CaseError(f"verification must be pending, verified or failed, not {verification!r}") from None
        with self.cases.engine.begin() as conn:
            hid = self._id(conn, name)
            before = conn.execute(select(T.hotfixes.c.verification).where(T.hotfixes.c.id == hid)).scalar()
            conn.execute(update(T.hotfixes).where(T.hotfixes.c.id == hid).values(verification=v.value))
            self.cases.audit(conn, user, "hotfix", name, "verification", {"verification": before},
                             {"verification": v.value})
        return self.get(user, name)

    def _id(self, conn, name: str) -> int:
        hid = conn.execute(select(T.hotfixes.c.id).where(T.hotfixes.c.name == name)).scalar()
        if hid is None:
            raise NotFound(f"no hotfix {name!r}")
        return hid

    def get(self, user: User, name: str) -> dict[str, Any]:
        require(user, Action.READ_HOTFIXES)
        with self.cases.reader.connect() as conn:
            row = conn.execute(select(T.hotfixes).where(T.hotfixes.c.name == name)).mappings().first()
            if row is None:
                raise NotFound(f"no hotfix {name!r}")
            return self._json(conn, row)

    def list(self, user: User) -> list[dict[str, Any]]:
        require(user, Action.READ_HOTFIXES)
        with self.cases.reader.connect() as conn:
            return [self._json(conn, r) for r in
                    conn.execute(select(T.hotfixes).order_by(T.hotfixes.c.id)).mappings().all()]

    def for_case(self, user: User, key: str) -> list[dict[str, Any]]:
        """The hotfixes delivered to case ``key``."""
        require(user, Action.READ_HOTFIXES)
        D = T.hotfix_deliveries.c
        with self.cases.reader.connect() as conn:
            crow = self.cases._case_row(conn, user, key)
            rows = conn.execute(select(T.hotfixes).join(T.hotfix_deliveries, D.hotfix_id == T.hotfixes.c.id)
                                .where(D.case_id == crow["id"]).order_by(T.hotfixes.c.id)).mappings().all()
            return [self._json(conn, r) for r in rows]

    def _json(self, conn, row) -> dict[str, Any]:
        dels = conn.execute(select(T.hotfix_deliveries, T.cases.c.key)
                            .join(T.cases, T.cases.c.id == T.hotfix_deliveries.c.case_id)
                            .where(T.hotfix_deliveries.c.hotfix_id == row["id"])
                            .order_by(T.hotfix_deliveries.c.id)).mappings().all()
        return {"name": row["name"], "build": row["build"], "bug_ids": row["bug_ids"],
                "affected_versions": row["affected_versions"], "fixed_versions": row["fixed_versions"],
                "verification": row["verification"], "created_at": utc(row["created_at"]).isoformat(),
                "delivered_to": [{"case": d["key"], "org": d["org"],
                                  "delivered_at": utc(d["delivered_at"]).isoformat()} for d in dels]}

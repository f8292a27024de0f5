"""All case services wired over one database, blob store and clock.

The CLI and the web app both build one :class:`Hub`; nothing in it knows
about HTTP.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> hub = Hub.open(f"sqlite:///{d}/h.db", blob_root=d / "blobs")
>>> hub.cases.count()
0
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from sqlalchemy.engine import Engine

from backline.cases.analyses import AnalysisService
from backline.cases.bugs import BugService
from backline.cases.drill import DrillService
from backline.cases.drill.store import DerivedStore
from backline.cases.evidence import MAX_UPLOAD, EvidenceService
from backline.cases.hotfixes import HotfixService
from backline.cases.intake import IntakeRules
from backline.cases.knowledge import KnowledgeService
from backline.cases.notify import Notifier, NotifyConfig
from backline.cases.service import CaseService, system_clock
from backline.cases.sessions import SessionStore
from backline.cases.sla import SlaConfig
from backline.cases.users import UserStore
from backline.config import data_dir
from backline.knowledge.similar.index import SimilarIndexer, enqueue
from backline.knowledge.similar.service import SimilarService
from backline.storage.blobs import BlobStore
from backline.storage.db import make_engine, upgrade


@dataclass
class Hub:
    engine: Engine
    clock: Callable[[], datetime]
    store: BlobStore
    users: UserStore
    cases: CaseService
    evidence: EvidenceService
    bugs: BugService
    hotfixes: HotfixService
    sessions: SessionStore
    drill: DrillService
    analyses: AnalysisService
    similar: SimilarService
    notify: NotifyConfig | None = None
    knowledge: KnowledgeService | None = None

    @classmethod
    def build(cls, engine: Engine, *, clock: Callable[[], datetime] = system_clock, blob_root: Path | None = None,
              sla: SlaConfig | None = None, intake: IntakeRules | None = None,
              notify: NotifyConfig | None = None, max_upload: int = MAX_UPLOAD,
              kb_pack: bool | None = None) -> "Hub":
        """``kb_pack``: match the starter pack besides the service's own known issues (default: on,
        unless ``BACKLINE_KB_PACK`` is ``off``)."""
        store = BlobStore(blob_root)
        sink = Notifier(notify, clock) if notify is not None else None
        cases = CaseService(engine, clock=clock, sla=sla, intake=intake, events=sink)
        cases.on_change.append(lambda conn, cid, reason: enqueue(conn, cid, reason, cases._now()))
        if kb_pack is None:
            kb_pack = os.environ.get("BACKLINE_KB_PACK", "on").strip().lower() not in ("off", "0", "no", "false")
        users = UserStore(engine, clock)
        derived = DerivedStore(store.root / "derived")      # what analyses derived, per evidence
        evidence = EvidenceService(cases, store, max_bytes=max_upload)
        return cls(engine=engine, clock=clock, store=store, users=users, cases=cases, evidence=evidence,
                   bugs=BugService(cases), hotfixes=HotfixService(cases), sessions=SessionStore(engine, users, clock),
                   drill=DrillService(cases, store, derived), analyses=AnalysisService(evidence),
                   similar=SimilarService(cases, SimilarIndexer(engine, clock)), notify=notify,
                   knowledge=KnowledgeService(cases, kb_pack=kb_pack))

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True, blob_root: Path | None = None,
             **kw) -> "Hub":
        """Open (and by default migrate) the database at ``url`` (default: BACKLINE_HOME).

        ``BACKLINE_SLA_POLICIES`` and ``BACKLINE_INTAKE_RULES`` name JSON files that replace the
        built-in SLA policies/calendars and intake rules (same shape as the files in
        ``backline/cases/data``).
        """
        if "sla" not in kw and os.environ.get("BACKLINE_SLA_POLICIES"):
            kw["sla"] = SlaConfig.load(Path(os.environ["BACKLINE_SLA_POLICIES"]))
        if "intake" not in kw and os.environ.get("BACKLINE_INTAKE_RULES"):
            kw["intake"] = IntakeRules.load(Path(os.environ["BACKLINE_INTAKE_RULES"]))
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
        return cls.build(engine, blob_root=blob_root or data_dir() / "blobs", **kw)

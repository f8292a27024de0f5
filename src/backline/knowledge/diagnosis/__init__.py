"""Diagnosis: from a pile of findings to the probable root cause, with the chain that proves it.

Pure and file-free: :func:`diagnose` reads the findings, events, facts and
artifacts of one analysis and returns a :class:`~backline.model.Diagnosis`.
The reasoning is explicit: entities extracted from findings and events
(:mod:`.entities`), findings as nodes (:mod:`.nodes`), clock skew and the incident
window (:mod:`.timing`), the cause->effect library as data (``relations.toml``,
:mod:`.library`), the links and the ranking (:mod:`.engine`) and their words
(:mod:`.explain`).  See docs/diagnosis.md.

>>> from datetime import datetime, timezone
>>> from backline.model import EvidenceRef, Finding, Severity
>>> t = datetime(2024, 5, 1, 14, 2, tzinfo=timezone.utc)
>>> rst = Finding("NET.TCP.RST_TO_SYN", "Connection refused by 10.0.0.5:5432 (3 attempt(s))", Severity.HIGH,
...               "net.pcap", (EvidenceRef.packet("net.pcap", 7, "RST from 10.0.0.5:5432"),),
...               first_seen=t, last_seen=t, data={"server": "10.0.0.5:5432"})
>>> log = Finding("LOG.ERROR_TEMPLATE", "3x connect to <*> failed: Connection refused", Severity.HIGH, "app.log",
...               (EvidenceRef.line("app.log", 9, "ERROR connect to 10.0.0.5:5432 failed: Connection refused"),),
...               first_seen=t, last_seen=t)
>>> d = diagnose([log, rst])
>>> top = d.top
>>> top.code, top.finding, top.title
('NET.TCP.RST_TO_SYN', 1, 'Nothing listening on 10.0.0.5:5432: its connections are refused')
>>> [(link.cause, link.effect, link.joined_on[0]) for link in top.chain]
[(1, 0, ('endpoint', '10.0.0.5:5432'))]
"""

from __future__ import annotations

from backline.knowledge.diagnosis.engine import DiagnosisSettings, diagnose
from backline.knowledge.diagnosis.library import Library, Relation, Signal, load_library, parse_library
from backline.knowledge.diagnosis.nodes import finding_text


def forget_texts() -> None:
    """Forget the words already read (the memos of classes, names and entities per text): the
    next diagnosis reads everything anew, as it does for evidence never seen (benchmarks)."""
    from backline.knowledge.diagnosis import entities, nodes

    entities._LEARNED.clear()
    entities._BY_VOCAB.clear()
    nodes._MEMOS.clear()


__all__ = ["DiagnosisSettings", "Library", "Relation", "Signal", "diagnose", "finding_text", "forget_texts",
           "load_library", "parse_library"]

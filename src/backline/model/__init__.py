"""The data model shared by every part of Backline.

Frozen, slotted dataclasses and enums, no I/O.  Timestamps are always
timezone-aware UTC ``datetime`` objects (or ``None`` when unknown).

The flow is one-way: evidence -> :class:`Artifact` -> analyzer outputs
(:class:`Event`, :class:`Finding`, :class:`Fact`) recorded per
:class:`AnalyzerRun` -> reports.
"""

from __future__ import annotations

from backline.model.core import (
    SCHEMA_VERSION,
    Artifact,
    ArtifactKind,
    AnalyzerRun,
    AnalysisResult,
    Event,
    EvidenceRef,
    Fact,
    Finding,
    Refusal,
    RunStatus,
    Severity,
    TsQuality,
    utc,
)
from backline.model.diagnosis import ChainLink, ClockSkew, Diagnosis, NextStep, ProbableCause, causes_first

__all__ = [
    "SCHEMA_VERSION",
    "Artifact",
    "ArtifactKind",
    "AnalyzerRun",
    "AnalysisResult",
    "ChainLink",
    "ClockSkew",
    "Diagnosis",
    "NextStep",
    "ProbableCause",
    "Event",
    "EvidenceRef",
    "Fact",
    "Finding",
    "Refusal",
    "RunStatus",
    "Severity",
    "TsQuality",
    "causes_first",
    "utc",
]

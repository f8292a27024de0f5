"""Core value types: artifacts, evidence references, events, findings, facts, runs.

>>> ref = EvidenceRef.line("logs/app.log", 12, "ERROR disk full")
>>> str(ref)
'logs/app.log line:12'
>>> Severity.parse("warning") is Severity.MEDIUM
True
>>> Severity.HIGH >= Severity.MEDIUM
True
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover - the diagnosis types refer back to EvidenceRef
    from backline.model.diagnosis import Diagnosis

#: Version of every persisted/exported document (JSON report, event store
#: layout).  Bump the major part on incompatible changes.
SCHEMA_VERSION = "1.0"


def utc(ts: datetime | None) -> datetime | None:
    """Return ``ts`` as an aware UTC datetime (naive input is taken as UTC)."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc)


class Severity(enum.IntEnum):
    """How bad a finding or event is.  Ordered, so ``>=`` works."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> "Severity":
        """Parse a severity name, accepting common log-level synonyms."""
        key = text.strip().lower()
        aliases = {
            "info": cls.INFO, "information": cls.INFO, "debug": cls.INFO, "trace": cls.INFO,
            "notice": cls.LOW, "low": cls.LOW,
            "warn": cls.MEDIUM, "warning": cls.MEDIUM, "medium": cls.MEDIUM,
            "error": cls.HIGH, "err": cls.HIGH, "high": cls.HIGH,
            "critical": cls.CRITICAL, "crit": cls.CRITICAL, "fatal": cls.CRITICAL,
            "emerg": cls.CRITICAL, "alert": cls.CRITICAL,
        }
        if key not in aliases:
            raise ValueError(f"unknown severity {text!r}; use one of info, low, medium, high, critical")
        return aliases[key]

    @property
    def label(self) -> str:
        return self.name.lower()


class ArtifactKind(str, enum.Enum):
    """What a file is, decided by content first and name second."""

    TEXT_LOG = "text_log"          # any line-oriented text log
    EVTX = "evtx"                  # Windows event log
    CAPTURE = "capture"            # pcap, pcapng, Network Monitor .cap (format says which)
    MINIDUMP = "minidump"          # Windows / Breakpad / Crashpad minidump (MDMP)
    ELF_CORE = "elf_core"          # Linux core file (ELF ET_CORE)
    HS_ERR = "hs_err"              # JVM fatal error log (hs_err_pid*.log)
    CRASH_TRACE = "crash_trace"    # text stack traces: Java, Python, .NET, jstack, faulthandler
    CONFIG = "config"              # configuration: ini, yaml, toml, xml, properties, conf
    EXECUTABLE = "executable"      # PE or ELF executable / shared library
    SYMBOLS = "symbols"            # Breakpad .sym (or other debug symbol files)
    DATA = "data"                  # structured data that is not a log: CSV/TSV, JSON documents
    DOCUMENT = "document"          # prose: Markdown, plain notes
    SOURCE = "source"              # program source code and scripts
    ARCHIVE = "archive"            # an archive that could not be opened (opened ones are expanded)
    UNKNOWN = "unknown"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


class TsQuality(str, enum.Enum):
    """How far a timestamp can be trusted."""

    EXACT = "exact"
    INFERRED_YEAR = "inferred_year"
    INFERRED = "inferred"          # e.g. carried from the previous record
    NONE = "none"


class RunStatus(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Artifact:
    """One piece of evidence: a file found in the bundle.

    ``path`` is the display path inside the evidence, with ``!/`` marking a
    step into an archive (``bundle.zip!/logs/app.log``).  ``local_path`` is
    where its (decompressed) bytes are on disk, or ``None`` when the file
    could not be materialised (then ``problems`` says why).
    """

    path: str
    kind: ArtifactKind
    size: int
    sha256: str
    local_path: Path | None = None
    format: str = ""                    # detail: "pcapng", "netmon2", "utf-16le", "pe32+", ...
    compression: str = ""               # "gzip", "bzip2", "xz", "zstd" when decompressed on intake
    problems: tuple[str, ...] = ()      # why it is unreadable/suspicious (zero-byte, truncated, ...)
    time_start: datetime | None = None
    time_end: datetime | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable identifier: the display path (unique within one analysis)."""
        return self.path

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1].rsplit("!", 1)[-1]

    @property
    def readable(self) -> bool:
        return self.local_path is not None


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """A pointer back into an artifact: ``line:1234``, ``packet:5531``,
    ``record:88``, ``frame:0``, ``thread:3/frame:0``, ``offset:0x1f0``."""

    artifact: str
    locator: str
    excerpt: str | None = None

    def __str__(self) -> str:
        return f"{self.artifact} {self.locator}"

    @classmethod
    def line(cls, artifact: str, line: int, excerpt: str | None = None) -> "EvidenceRef":
        return cls(artifact, f"line:{line}", excerpt)

    @classmethod
    def packet(cls, artifact: str, packet: int, excerpt: str | None = None) -> "EvidenceRef":
        return cls(artifact, f"packet:{packet}", excerpt)

    @classmethod
    def record(cls, artifact: str, record: int, excerpt: str | None = None) -> "EvidenceRef":
        return cls(artifact, f"record:{record}", excerpt)

    @classmethod
    def frame(cls, artifact: str, frame: int, thread: int | None = None,
              excerpt: str | None = None) -> "EvidenceRef":
        loc = f"frame:{frame}" if thread is None else f"thread:{thread}/frame:{frame}"
        return cls(artifact, loc, excerpt)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at a time: one point on the case timeline."""

    ts: datetime | None
    artifact: str
    kind: str                           # "log.error", "net.rst", "dump.crash", ...
    summary: str
    severity: Severity = Severity.INFO
    ref: EvidenceRef | None = None
    ts_quality: TsQuality = TsQuality.EXACT
    analyzer: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """A claim about what is wrong, with the evidence that shows it.

    ``code`` is a stable identifier (``NET.TCP.RST_TO_SYN``, ``DUMP.NULL_READ``,
    ``LOG.ERROR_TEMPLATE``) that rules and reports can rely on.
    """

    code: str
    title: str
    severity: Severity
    artifact: str
    evidence: tuple[EvidenceRef, ...] = ()
    detail: str = ""
    count: int = 1
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    analyzer: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)   # JSON-able extras


@dataclass(frozen=True, slots=True)
class Fact:
    """A named value learned from an artifact (``os.version``, ``net.packets``)."""

    name: str
    value: Any                          # JSON-able
    artifact: str
    analyzer: str = ""


@dataclass(frozen=True, slots=True)
class AnalyzerRun:
    """What one analyzer did with one artifact.  Failures are data."""

    analyzer: str
    version: str
    artifact: str
    status: RunStatus
    reason: str = ""
    traceback: str = ""
    duration_s: float = 0.0
    events: int = 0
    findings: int = 0
    facts: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refusal:
    """An entry of the evidence that was refused on intake, and why
    (``../etc/passwd``: path escapes the work folder; zip bomb; encrypted ...)."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """Everything one analysis produced; the input of every report renderer."""

    inputs: tuple[str, ...]
    artifacts: tuple[Artifact, ...]
    runs: tuple[AnalyzerRun, ...]
    findings: tuple[Finding, ...]
    events: tuple[Event, ...]
    facts: tuple[Fact, ...]
    refusals: tuple[Refusal, ...] = ()
    started_at: datetime | None = None
    finished_at: datetime | None = None
    options: Mapping[str, Any] = field(default_factory=dict)   # tz, jobs, fail_on, ...
    backline_version: str = ""
    schema_version: str = SCHEMA_VERSION
    #: probable root causes (knowledge.diagnosis); None when the stage did not run
    diagnosis: "Diagnosis | None" = None

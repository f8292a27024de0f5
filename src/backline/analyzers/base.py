"""The analyzer contract.

An analyzer declares what it reads (``consumes``: artifact kinds) and what it
may emit (``emits``: finding codes and fact names).  ``applies_to`` answers
"can I?" cheaply; ``analyze`` does the work and yields :class:`Event`,
:class:`Finding` and :class:`Fact` objects.  It never searches the bundle for
other files: everything it needs arrives as the artifact and the context.

Analyzers are instantiated with no arguments (so a worker process can build
them by name) and must not keep state between artifacts.

Writing one::

    class MyAnalyzer(Analyzer):
        name = "my.thing"
        version = "1"
        consumes = frozenset({ArtifactKind.TEXT_LOG})
        emits = frozenset({"MY.BAD_THING"})

        def analyze(self, artifact, ctx):
            ...
            yield Finding(code="MY.BAD_THING", ...)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Union
from zoneinfo import ZoneInfo

from backline.model import Artifact, ArtifactKind, Event, Fact, Finding

Output = Union[Event, Finding, Fact]


@dataclass(slots=True)
class AnalysisContext:
    """What the engine hands to every analyzer call.

    ``tz`` is the zone naive timestamps are read in (``--tz``, default UTC).
    ``work_dir`` is a private scratch folder for this artifact's run (an
    analyzer may write derived files there, e.g. a Parquet event table).
    ``symbol_paths`` / ``binary_paths`` are the folders given with
    ``--symbols`` / ``--binaries``.  ``options`` holds analyzer-specific
    settings keyed by analyzer name.  ``warn`` records a warning on the run.
    """

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    work_dir: Path | None = None
    symbol_paths: tuple[Path, ...] = ()
    binary_paths: tuple[Path, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    max_events: int = 20_000
    warnings: list[str] = field(default_factory=list)
    progress: Callable[[float], None] | None = None

    def warn(self, message: str) -> None:
        if len(self.warnings) < 1000:
            self.warnings.append(message)


class Analyzer:
    """Base class for analyzers.  Subclasses set the class attributes."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    consumes: ClassVar[frozenset[ArtifactKind]] = frozenset()
    emits: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = ""

    def applies_to(self, artifact: Artifact) -> bool:
        """Can this analyzer read ``artifact``?  Default: by kind, if readable."""
        return artifact.readable and artifact.kind in self.consumes

    def analyze(self, artifact: Artifact, ctx: AnalysisContext) -> Iterator[Output]:
        raise NotImplementedError

    def __repr__(self) -> str:  # pragma: no cover - trivial
        return f"<{type(self).__name__} {self.name} v{self.version}>"

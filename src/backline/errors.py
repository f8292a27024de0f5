"""One exception tree for all of Backline.

::

    BacklineError                     base; carries artifact + locator when known
    ├── UsageError                    bad arguments/options from a person (exit 2)
    ├── EvidenceError                 evidence could not be taken in
    │   ├── ArchiveError              an archive (or one entry) refused or unreadable
    │   │   └── UnsafeArchiveEntry    traversal, link outside, device, bomb, nesting, encrypted
    │   └── NothingReadable           no readable artifact in the given paths
    ├── FormatError                   a file's content does not follow its format
    │   └── TruncatedError            the content stops early (partial results may exist)
    ├── AnalyzerError                 an analyzer could not finish (recorded, run goes on)
    ├── StorageError                  blob store / database problems
    ├── SearchError                   similar-case search: embedding model missing or damaged
    ├── ClusterError                  the Dask cluster stopped answering during an analysis
    └── CaseError                     case workflow rule broken (invalid transition, ...)
        ├── NotFound
        ├── PermissionDenied
        └── Conflict                  stale write (optimistic locking)

Every exception renders as ``<artifact> <locator>: <message>`` so a person
can go and look.

>>> str(FormatError("bad magic", artifact="a.pcap", locator="offset:0"))
'a.pcap offset:0: bad magic'
"""

from __future__ import annotations


class BacklineError(Exception):
    """Base class.  ``artifact`` and ``locator`` say where the problem is."""

    def __init__(self, message: str, *, artifact: str | None = None, locator: str | None = None):
        super().__init__(message)
        self.message = message
        self.artifact = artifact
        self.locator = locator

    def __str__(self) -> str:
        where = " ".join(p for p in (self.artifact, self.locator) if p)
        return f"{where}: {self.message}" if where else self.message


class UsageError(BacklineError):
    pass


class EvidenceError(BacklineError):
    pass


class ArchiveError(EvidenceError):
    pass


class UnsafeArchiveEntry(ArchiveError):
    pass


class NothingReadable(EvidenceError):
    pass


class FormatError(BacklineError):
    pass


class TruncatedError(FormatError):
    pass


class AnalyzerError(BacklineError):
    pass


class StorageError(BacklineError):
    pass


class SearchError(BacklineError):
    pass


class ClusterError(BacklineError):
    pass


class CaseError(BacklineError):
    pass


class NotFound(CaseError):
    pass


class PermissionDenied(CaseError):
    pass


class Conflict(CaseError):
    pass

"""Limits that keep intake of hostile or huge evidence bounded.

Every limit is checked while bytes are streamed, never trusted from archive
headers (which can lie).  Defaults suit a customer support bundle on a
workstation; all of them can be changed.

>>> IntakeLimits().max_depth
8
>>> IntakeLimits(max_entries=10).max_entries
10
"""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """Bounds on what one intake may expand.

    ``max_total_bytes``: all bytes written to the work folder together.
    ``max_file_bytes``: one extracted or decompressed file.
    ``max_ratio``: expanded bytes / compressed bytes of one entry or stream,
    checked while streaming (only once more than ``ratio_grace_bytes`` came out,
    so tiny highly-compressible files are not refused).
    ``max_ratio_memory_image``: the same for a stream whose first bytes are a memory image (an
    ELF core, a minidump, a Windows kernel dump, a Java heap dump): a process's memory is mostly
    zero pages, and a zipped core of a small process really expands 500:1 or more.  Such a file
    is still bounded by ``max_file_bytes`` and ``max_total_bytes``.
    ``max_entries``: archive members looked at, over all archives.
    ``max_depth``: archives nested in archives (the given archive is depth 1).
    ``head_bytes``: how much of each file classification reads.
    """

    max_total_bytes: int = 20 * GiB
    max_file_bytes: int = 8 * GiB
    max_ratio: float = 200.0
    ratio_grace_bytes: int = 16 * MiB
    max_ratio_memory_image: float = 20_000.0
    max_entries: int = 100_000
    max_depth: int = 8
    head_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        for name in ("max_total_bytes", "max_file_bytes", "max_entries", "max_depth", "head_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"IntakeLimits.{name} must be positive")
        if self.max_ratio <= 1:
            raise ValueError("IntakeLimits.max_ratio must be greater than 1")

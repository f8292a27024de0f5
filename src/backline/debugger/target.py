"""What a debugger session looks at: one dump (or live process) as a :class:`Target`.

A target answers the questions WinDbg's commands ask — modules, threads and their
frames, registers, memory bytes, memory regions, the exception record, handles,
thread times, symbols — from the same readers ``backline dump`` uses.  Nothing
here prints; :mod:`backline.debugger.commands` turns answers into results.

Reads never raise for memory that is not in the dump: :meth:`Target.read_bytes`
gives ``None`` for every byte it does not have (WinDbg prints ``??``).

>>> from backline.testing import corpus_dir
>>> d = corpus_dir() / "dumps/breakpad"
>>> t = open_target(d / "minidump2.dmp", symbols=[d / "symbols"])
>>> t.kind, t.cpu, len(t.modules), len(t.threads)
('minidump', 'x86', 13, 2)
>>> t.lookup(0x0040429e)
('test_app.exe', "`anonymous namespace'::CrashFunction", 14)
>>> t.read_bytes(0x0012fe84, 2), t.read_bytes(0x10, 2)
([69, 0], [None, None])
>>> t.close()
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

from backline.analyzers.dumps.model import CrashModule, CrashReport, CrashThread
from backline.errors import BacklineError

MAX_READ = 1 << 20          # one command never reads more than 1 MiB


@dataclass(frozen=True, slots=True)
class Region:
    """A range of the address space: what ``!address`` shows."""

    base: int
    size: int
    protection: str | None = None       # PAGE_EXECUTE_READ, r-x, ...
    state: str | None = None            # MEM_COMMIT, MEM_RESERVE, MEM_FREE
    type: str | None = None             # MEM_IMAGE, MEM_MAPPED, MEM_PRIVATE
    allocation_base: int | None = None
    in_dump: bool = False               # the dump holds this range's bytes
    module: str | None = None
    usage: str | None = None            # Image, Stack, Heap/Other, File: path

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True, slots=True)
class ExceptionRecord:
    """``.exr -1``: the exception record as the dump stores it."""

    code: int
    name: str
    flags: int = 0
    address: int | None = None
    parameters: tuple[int, ...] = ()
    thread_id: int | None = None
    fault_address: int | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ThreadTime:
    thread_id: int
    user_s: float | None
    kernel_s: float | None
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class Handle:
    handle: int
    type: str | None
    name: str | None
    attributes: int = 0
    granted_access: int = 0
    handle_count: int = 0
    pointer_count: int = 0


@dataclass(frozen=True, slots=True)
class SymbolEntry:
    """One function symbol: absolute address and size (0 = unknown)."""

    module: str
    name: str
    address: int
    size: int = 0


@dataclass(slots=True)
class Target:
    """One thing being debugged.  Subclasses fill in the readers."""

    name: str
    path: str
    kind: str                                # minidump | elf_core | live
    report: CrashReport
    cpu: str
    ptr_size: int
    warnings: list[str] = field(default_factory=list)

    # ------------------------------------------------------------ the crash model
    @property
    def modules(self) -> tuple[CrashModule, ...]:
        return tuple(m for m in self.report.modules if not m.unloaded)

    @property
    def unloaded_modules(self) -> tuple[CrashModule, ...]:
        return tuple(m for m in self.report.modules if m.unloaded)

    @property
    def threads(self) -> tuple[CrashThread, ...]:
        return self.report.threads

    @property
    def crashing_thread(self) -> int | None:
        return self.report.crashing_thread

    def module_at(self, address: int) -> CrashModule | None:
        for m in self.modules:
            if m.base <= address < m.base + max(m.size, 1):
                return m
        return None

    def find_module(self, name: str) -> CrashModule | None:
        """A module by file name, with or without its extension, case-insensitively."""
        want = name.lower()
        for m in self.modules:
            n = m.name.lower()
            if want in (n, n.rsplit(".", 1)[0]) or (n.startswith(want + ".") and "." not in want):
                return m
        for m in self.modules:      # lib name without "lib" prefix/version suffix: "c" -> libc.so.6
            n = m.name.lower()
            if n.startswith("lib" + want + ".so") or n.startswith(want + ".so"):
                return m
        return None

    # ------------------------------------------------------------ to implement
    def read_bytes(self, address: int, size: int) -> list[int | None]:
        """``size`` bytes at ``address``; ``None`` for each byte the target does not hold."""
        raise NotImplementedError

    def regions(self) -> list[Region]:
        return []

    def exception_record(self) -> ExceptionRecord | None:
        return None

    def exception_context(self) -> dict[str, int]:
        """Registers at the exception (``.ecxr``); the crashing thread's context frame."""
        t = self.crashing_thread
        if t is None or not self.threads[t].frames:
            return {}
        return dict(self.threads[t].frames[0].registers or self.threads[t].registers)

    def thread_times(self) -> list[ThreadTime] | None:
        return None

    def handles(self) -> list[Handle] | None:
        return None

    def functions(self, module: CrashModule) -> Iterator[SymbolEntry]:
        """Every function symbol of ``module`` (absolute addresses)."""
        return iter(())

    def symbol_kind(self, module: CrashModule) -> str:
        """``none``, or ``export`` when only the image's export table names functions."""
        return "none"

    def lookup(self, address: int) -> tuple[str, str | None, int] | None:
        """``(module, function or None, offset)`` for ``address``: offset from the function
        when a symbol covers it, else from the module base; ``None`` outside every module."""
        raise NotImplementedError

    def source_line(self, address: int) -> tuple[str, int] | None:
        return None

    def system(self) -> dict[str, Any]:
        """OS, version, CPU, process, pid, dump time, process start (``vertarget``, ``.time``)."""
        r = self.report
        return {"os": r.os, "os_version": r.os_version, "cpu": r.cpu, "process": r.process_name,
                "pid": r.pid}

    def close(self) -> None:
        pass

    # ------------------------------------------------------------ shared helpers
    def read(self, address: int, size: int) -> bytes | None:
        """All ``size`` bytes at ``address``, or ``None`` when any is missing."""
        got = self.read_bytes(address, size)
        if any(b is None for b in got):
            return None
        return bytes(got)                   # type: ignore[arg-type]

    def chunks(self, address: int, size: int) -> Iterator[tuple[int, bytes]]:
        """The contiguous pieces of ``[address, address + size)`` that the target holds."""
        end, a, run_start, run = address + size, address, None, bytearray()
        while a < end:
            n = min(1 << 16, end - a)
            for i, b in enumerate(self.read_bytes(a, n)):
                if b is None:
                    if run:
                        yield run_start, bytes(run)     # type: ignore[misc]
                    run_start, run = None, bytearray()
                    continue
                if not run:
                    run_start = a + i
                run.append(b)
            a += n
        if run:
            yield run_start, bytes(run)                 # type: ignore[misc]

    def read_pointer(self, address: int) -> int | None:
        raw = self.read(address, self.ptr_size)
        return None if raw is None else int.from_bytes(raw, "little")

    def region_at(self, address: int) -> Region | None:
        for r in self.regions():
            if r.base <= address < r.end:
                return r
        return None

    def symbols_matching(self, pattern: str) -> list[SymbolEntry]:
        """``x MODULE!PATTERN``: functions whose name matches the wildcard (case-insensitive)."""
        mod_pat, _, fn_pat = pattern.rpartition("!")
        mod_pat = mod_pat or "*"
        out: list[SymbolEntry] = []
        for m in self.modules:
            base = m.name.rsplit(".", 1)[0]
            if not (fnmatch.fnmatch(m.name.lower(), mod_pat.lower())
                    or fnmatch.fnmatch(base.lower(), mod_pat.lower())):
                continue
            for s in self.functions(m):
                if fnmatch.fnmatchcase(s.name.lower(), (fn_pat or "*").lower()):
                    out.append(s)
                    if len(out) >= 10_000:
                        return out
        return out

    def address_of(self, expr: str) -> int | None:
        """``module!function`` (or a bare function name) to its address."""
        mod_name, bang, fn = expr.rpartition("!")
        mods = [self.find_module(mod_name)] if bang else list(self.modules)
        for m in mods:
            if m is None:
                continue
            if not fn:
                return m.base
            for s in self.functions(m):
                if s.name == fn:
                    return s.address
        return None

    def nearest_symbols(self, address: int) -> tuple[SymbolEntry | None, SymbolEntry | None]:
        """The function symbol at or below ``address`` and the next one above (``ln``)."""
        m = self.module_at(address)
        if m is None:
            return None, None
        below = above = None
        for s in self.functions(m):
            if s.address <= address and (below is None or s.address > below.address):
                below = s
            elif s.address > address and (above is None or s.address < above.address):
                above = s
        return below, above


def open_target(path: Path | str, *, symbols: Sequence[Path] = (), binaries: Sequence[Path] = ()) -> Target:
    """Open a minidump (or Breakpad microdump) or an ELF core as a :class:`Target`.

    Raises :class:`~backline.errors.BacklineError` (naming the file) for anything else.
    """
    from backline.analyzers.dumps.sniff import classify

    p = Path(path)
    if not p.is_file():
        raise BacklineError("no such file", artifact=str(p))
    kind = classify(p)
    if kind in ("minidump", "microdump"):
        from backline.debugger.targets_dump import MinidumpTarget
        return MinidumpTarget.open(p, [Path(s) for s in symbols], [Path(b) for b in binaries])
    if kind == "elf_core":
        from backline.debugger.targets_dump import CoreTarget
        return CoreTarget.open(p, [Path(b) for b in binaries], [Path(s) for s in symbols])
    raise BacklineError("a text crash trace has no memory or registers to debug; use `backline dump`",
                        artifact=str(p))


def utc_from_unix(seconds: int | float | None) -> datetime | None:
    if not seconds:
        return None
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None

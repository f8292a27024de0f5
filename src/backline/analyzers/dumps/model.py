"""One crash model for every kind of crash evidence.

Minidumps, ELF cores, JVM hs_err files and text stack traces (Java, Python,
.NET, jstack, faulthandler) all become a :class:`CrashReport`: threads of
:class:`StackFrame`, an optional :class:`CrashException` (with its chained
causes), the loaded :class:`CrashModule`, and the automatic analysis
(problem class, blamed frame, bucket id, signature, deadlocks).

Field names follow rust-minidump's ``minidump-stackwalk --json`` schema where
the two overlap (``module_offset``, ``function_offset``, ``trust``) so frames
compare one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class StackFrame:
    """One frame.  Native frames carry addresses; managed/text frames may not.

    ``trust`` is how the frame was found: ``context`` (registers of the
    thread), ``cfi``, ``frame_pointer``, ``scan``, ``prewalked`` or ``text``
    (read from a printed trace).
    """

    index: int
    trust: str = "none"
    instruction: int | None = None           # the address looked up (return address - 1 for callers)
    module: str | None = None
    module_offset: int | None = None
    function: str | None = None
    function_offset: int | None = None
    file: str | None = None
    line: int | None = None
    language: str = "native"                 # native | java | python | dotnet
    registers: Mapping[str, int] = field(default_factory=dict)
    inlined: bool = False

    def display(self) -> str:
        """``module!function + 0x12 [file : line]`` or ``module + 0x1f26``."""
        where = ""
        if self.function:
            where = f"{self.module}!{self.function}" if self.module else self.function
            if self.file and self.line is not None:
                where += f" [{self.file} : {self.line}]"
            elif self.function_offset:
                where += f" + {self.function_offset:#x}"
        elif self.module is not None and self.module_offset is not None:
            where = f"{self.module} + {self.module_offset:#x}"
        elif self.instruction is not None:
            where = f"{self.instruction:#x}"
        return where or "??"


@dataclass(frozen=True, slots=True)
class WaitInfo:
    """What a blocked thread waits on (for hang analysis).

    ``resource`` names the lock/futex/handle (``futex:0x7f..``,
    ``critical_section:0x...``, ``monitor:<0x...> (java.lang.Object)``);
    ``owner`` is the thread id that holds it, when known.
    """

    kind: str                      # mutex | futex | critical_section | monitor | handle | join | io | sleep | file_lock
    resource: str
    owner: int | str | None = None
    function: str | None = None    # the wait function seen on the stack


@dataclass(frozen=True, slots=True)
class CrashThread:
    id: int | str                 # OS thread id, or a name for text traces without ids
    frames: tuple[StackFrame, ...] = ()
    name: str | None = None
    crashed: bool = False
    state: str | None = None      # e.g. BLOCKED, WAITING, RUNNABLE (Java), or None
    wait: WaitInfo | None = None
    holds: tuple[str, ...] = ()   # resources this thread owns (lock ids as in WaitInfo.resource)
    registers: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CrashException:
    """The crash reason.  ``type`` is the symbolic name (EXCEPTION_ACCESS_VIOLATION_WRITE,
    SIGSEGV, java.lang.NullPointerException, KeyError, System.FormatException)."""

    type: str
    message: str = ""
    code: int | None = None                  # NTSTATUS / signal number
    subcode: str | None = None               # e.g. SEGV_MAPERR, FAST_FAIL_FATAL_APP_EXIT
    address: int | None = None
    thread: int | str | None = None
    causes: tuple["CrashException", ...] = ()    # chained (Caused by / inner / __cause__), outermost first
    relation: str | None = None              # how this links to the previous one: cause | context | inner | suppressed
    frames: tuple[StackFrame, ...] = ()      # for text traces: this exception's own frames


@dataclass(frozen=True, slots=True)
class CrashModule:
    name: str
    base: int = 0
    size: int = 0
    path: str | None = None
    version: str | None = None
    debug_file: str | None = None
    debug_id: str | None = None
    code_id: str | None = None
    symbols_loaded: bool = False
    unloaded: bool = False


@dataclass(frozen=True, slots=True)
class Deadlock:
    """A cycle in the wait-for graph: each thread waits for a resource the next holds."""

    threads: tuple[int | str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CrashReport:
    """The common result of reading any crash evidence."""

    source_format: str                      # minidump | elf_core | hs_err | java | python | dotnet | jstack | faulthandler
    threads: tuple[CrashThread, ...] = ()
    exception: CrashException | None = None
    crashing_thread: int | None = None      # index into threads
    modules: tuple[CrashModule, ...] = ()
    os: str | None = None
    os_version: str | None = None
    cpu: str | None = None
    pid: int | None = None
    process_name: str | None = None
    problem_class: str | None = None        # NULL_POINTER_READ, STACK_OVERFLOW, ABORT, ...
    blamed_frame: int | None = None         # index into the crashing thread's frames
    bucket_id: str | None = None
    signature: str | None = None
    deadlocks: tuple[Deadlock, ...] = ()
    warnings: tuple[str, ...] = ()          # what is missing / could not be read
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def crashed_thread(self) -> CrashThread | None:
        if self.crashing_thread is None or not (0 <= self.crashing_thread < len(self.threads)):
            return None
        return self.threads[self.crashing_thread]

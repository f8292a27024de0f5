"""Records read from a minidump's streams (plain data, no I/O)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from backline.analyzers.dumps.minidump.context import CpuContext

# Stream types (MINIDUMP_STREAM_TYPE, Breakpad and Crashpad vendor streams)
THREAD_LIST = 3
MODULE_LIST = 4
MEMORY_LIST = 5
EXCEPTION = 6
SYSTEM_INFO = 7
THREAD_EX_LIST = 8
MEMORY64_LIST = 9
COMMENT_A = 10
COMMENT_W = 11
HANDLE_DATA = 12
UNLOADED_MODULE_LIST = 14
MISC_INFO = 15
MEMORY_INFO_LIST = 16
THREAD_INFO_LIST = 17
THREAD_NAMES = 24
BREAKPAD_INFO = 0x47670001
ASSERTION_INFO = 0x47670002
LINUX_CPU_INFO = 0x47670003
LINUX_PROC_STATUS = 0x47670004
LINUX_LSB_RELEASE = 0x47670005
LINUX_CMD_LINE = 0x47670006
LINUX_ENVIRON = 0x47670007
LINUX_AUXV = 0x47670008
LINUX_MAPS = 0x47670009
LINUX_DSO_DEBUG = 0x4767000A
CRASHPAD_INFO = 0x43500001

STREAM_NAMES = {
    THREAD_LIST: "thread_list", MODULE_LIST: "module_list", MEMORY_LIST: "memory_list",
    EXCEPTION: "exception", SYSTEM_INFO: "system_info", THREAD_EX_LIST: "thread_ex_list",
    MEMORY64_LIST: "memory64_list", COMMENT_A: "comment_a", COMMENT_W: "comment_w",
    HANDLE_DATA: "handle_data", UNLOADED_MODULE_LIST: "unloaded_module_list",
    MISC_INFO: "misc_info", MEMORY_INFO_LIST: "memory_info_list",
    THREAD_INFO_LIST: "thread_info_list", THREAD_NAMES: "thread_names",
    BREAKPAD_INFO: "breakpad_info", ASSERTION_INFO: "assertion_info",
    LINUX_CPU_INFO: "linux_cpu_info", LINUX_PROC_STATUS: "linux_proc_status",
    LINUX_LSB_RELEASE: "linux_lsb_release", LINUX_CMD_LINE: "linux_cmd_line",
    LINUX_ENVIRON: "linux_environ", LINUX_AUXV: "linux_auxv", LINUX_MAPS: "linux_maps",
    LINUX_DSO_DEBUG: "linux_dso_debug", CRASHPAD_INFO: "crashpad_info",
}


@dataclass(frozen=True, slots=True)
class StreamEntry:
    type: int
    size: int
    rva: int

    @property
    def name(self) -> str:
        return STREAM_NAMES.get(self.type, f"unknown_{self.type:#x}")


@dataclass(frozen=True, slots=True)
class MemoryRegion:
    """Bytes of the process at ``base`` (a view into the dump file)."""

    base: int
    data: bytes

    @property
    def end(self) -> int:
        return self.base + len(self.data)


class Memory:
    """Memory regions sorted by address; reads return ``None`` when absent.

    >>> m = Memory([MemoryRegion(0x1000, bytes(range(16)))])
    >>> hex(m.read_ptr(0x1004, 4)), m.read_ptr(0x100e, 4)
    ('0x7060504', None)
    """

    __slots__ = ("_bases", "_regions", "_reach")

    def __init__(self, regions: list[MemoryRegion]) -> None:
        self._regions = sorted((r for r in regions if r.data), key=lambda r: r.base)
        self._bases = [r.base for r in self._regions]
        # the furthest end of the regions up to each one: ranges may overlap (a small range saved
        # around an address inside a thread's stack), so the nearest base below is not enough
        reach, far = [], -1
        for r in self._regions:
            far = max(far, r.end)
            reach.append(far)
        self._reach = reach

    def region_at(self, address: int) -> MemoryRegion | None:
        """The region holding ``address`` (the one starting nearest below it, when ranges overlap).

        >>> m = Memory([MemoryRegion(0x1000, bytes(0x100)), MemoryRegion(0x1010, bytes(4))])
        >>> hex(m.region_at(0x1020).base), hex(m.region_at(0x1012).base)
        ('0x1000', '0x1010')
        """
        i = bisect.bisect_right(self._bases, address) - 1
        while i >= 0 and self._reach[i] > address:
            if address < self._regions[i].end:
                return self._regions[i]
            i -= 1
        return None

    def read(self, address: int, size: int) -> bytes | None:
        r = self.region_at(address)
        if r is None or address + size > r.end:
            return None
        off = address - r.base
        return r.data[off:off + size]

    def read_ptr(self, address: int, size: int) -> int | None:
        raw = self.read(address, size)
        return None if raw is None else int.from_bytes(raw, "little")

    def __len__(self) -> int:
        return len(self._regions)

    @property
    def regions(self) -> list[MemoryRegion]:
        return list(self._regions)


@dataclass(frozen=True, slots=True)
class MdThread:
    thread_id: int
    suspend_count: int
    priority_class: int
    priority: int
    teb: int
    stack_start: int
    stack_size: int
    stack_rva: int
    context: CpuContext | None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class MdModule:
    base: int
    size: int
    checksum: int
    timestamp: int
    code_file: str
    version: str | None
    debug_file: str | None
    debug_id: str | None
    code_id: str | None
    cv_signature: str | None = None

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def filename(self) -> str:
        """Basename of the code file (either slash)."""
        return self.code_file.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class MdUnloadedModule:
    base: int
    size: int
    checksum: int
    timestamp: int
    code_file: str


@dataclass(frozen=True, slots=True)
class MdException:
    thread_id: int
    code: int
    flags: int
    record: int
    address: int
    parameters: tuple[int, ...]
    context: CpuContext | None


@dataclass(frozen=True, slots=True)
class MdSystemInfo:
    cpu: str                     # x86 | amd64 | arm64 | arm | ppc | ... | unknown
    processor_architecture: int
    processor_level: int
    processor_revision: int
    cpu_count: int
    product_type: int
    major: int
    minor: int
    build: int
    platform_id: int
    csd_version: str
    vendor_id: str | None
    os: str                      # "Windows NT", "Linux", "Mac OS X", "iOS", "Android", ...

    @property
    def os_version(self) -> str:
        """``major.minor.build`` plus the CSD/build string; for Linux dumps written with
        version 0.0.0 the kernel release and build are taken from the ``uname -srvmo`` text."""
        base = f"{self.major}.{self.minor}.{self.build}"
        csd = self.csd_version.strip()
        if self.platform_id == 0x8201 and base == "0.0.0" and csd:
            words = csd.split(" ")
            if len(words) > 1 and words[1] != "0.0.0":
                rest = words[2:]
                if rest:
                    last = rest.pop()
                    if last == "Linux/GNU" and rest:
                        rest.pop()
                return f"{words[1]} {' '.join(rest)}"
        return f"{base} {csd}".strip()

    @property
    def cpu_info(self) -> str:
        if self.cpu in ("x86", "amd64"):
            fam = self.processor_level
            model, stepping = self.processor_revision >> 8, self.processor_revision & 0xFF
            s = f"family {fam} model {model} stepping {stepping}"
            return f"{self.vendor_id} {s}" if (self.vendor_id and self.cpu == "x86") else s
        return ""

    @property
    def os_short(self) -> str:
        return {"Windows NT": "windows", "Linux": "linux", "Mac OS X": "mac", "iOS": "ios",
                "Android": "android"}.get(self.os, self.os.lower())


@dataclass(frozen=True, slots=True)
class MdHandle:
    handle: int
    type_name: str | None
    object_name: str | None
    attributes: int
    granted_access: int
    handle_count: int
    pointer_count: int


@dataclass(frozen=True, slots=True)
class MdMiscInfo:
    flags: int
    process_id: int | None
    process_create_time: int | None
    process_user_time: int | None
    process_kernel_time: int | None


@dataclass(frozen=True, slots=True)
class MdMemoryInfo:
    """One MINIDUMP_MEMORY_INFO: a region of the address space and its protection."""

    base: int
    allocation_base: int
    allocation_protect: int
    size: int
    state: int
    protect: int
    type: int

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def protection(self) -> str:
        """``PAGE_EXECUTE_READ`` style name of ``protect`` (modifiers after ``|``)."""
        names = {0x01: "PAGE_NOACCESS", 0x02: "PAGE_READONLY", 0x04: "PAGE_READWRITE",
                 0x08: "PAGE_WRITECOPY", 0x10: "PAGE_EXECUTE", 0x20: "PAGE_EXECUTE_READ",
                 0x40: "PAGE_EXECUTE_READWRITE", 0x80: "PAGE_EXECUTE_WRITECOPY"}
        base = names.get(self.protect & 0xFF, f"{self.protect & 0xFF:#x}" if self.protect & 0xFF else "")
        mods = [n for bit, n in ((0x100, "PAGE_GUARD"), (0x200, "PAGE_NOCACHE"),
                                 (0x400, "PAGE_WRITECOMBINE")) if self.protect & bit]
        return "|".join([base] + mods) if base else "|".join(mods) or "none"

    @property
    def executable(self) -> bool:
        return bool(self.protect & 0xF0)

    @property
    def committed(self) -> bool:
        return self.state == 0x1000


@dataclass(frozen=True, slots=True)
class MdThreadInfo:
    thread_id: int
    dump_flags: int
    dump_error: int
    exit_status: int
    create_time: int
    exit_time: int
    kernel_time: int
    user_time: int
    start_address: int
    affinity: int


@dataclass(frozen=True, slots=True)
class MdAssertion:
    expression: str
    function: str
    file: str
    line: int
    type: int


@dataclass(frozen=True, slots=True)
class MdCrashpadModuleInfo:
    module_index: int
    list_annotations: tuple[str, ...]
    simple_annotations: dict[str, str]
    annotation_objects: dict[str, str]


@dataclass(frozen=True, slots=True)
class MdCrashpadInfo:
    version: int
    report_id: str
    client_id: str
    simple_annotations: dict[str, str]
    modules: tuple[MdCrashpadModuleInfo, ...]


@dataclass(slots=True)
class Minidump:
    """Everything read from one minidump.  ``warnings`` lists streams that could not be read."""

    path: str
    version: int
    flags: int
    timestamp: int
    streams: list[StreamEntry] = field(default_factory=list)
    system_info: MdSystemInfo | None = None
    threads: list[MdThread] = field(default_factory=list)
    modules: list[MdModule] = field(default_factory=list)
    unloaded_modules: list[MdUnloadedModule] = field(default_factory=list)
    memory: Memory = field(default_factory=lambda: Memory([]))
    memory_regions: list[MemoryRegion] = field(default_factory=list)
    exception: MdException | None = None
    misc_info: MdMiscInfo | None = None
    handles: list[MdHandle] = field(default_factory=list)
    memory_info: list[MdMemoryInfo] = field(default_factory=list)
    thread_info: list[MdThreadInfo] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    breakpad_info: dict[str, int | None] | None = None
    assertion: MdAssertion | None = None
    crashpad_info: MdCrashpadInfo | None = None
    linux: dict[str, Any] = field(default_factory=dict)   # maps, proc_status, lsb_release, cmdline, environ, cpu_info, auxv
    warnings: list[str] = field(default_factory=list)

    def memory_info_at(self, address: int) -> MdMemoryInfo | None:
        for r in self.memory_info:
            if r.base <= address < r.end:
                return r
        return None

    def module_at(self, address: int) -> MdModule | None:
        for m in self.modules:
            if m.base <= address < m.end:
                return m
        return None

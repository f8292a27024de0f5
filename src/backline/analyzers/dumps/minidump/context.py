"""CPU contexts (thread registers) of x86, amd64 and arm64 minidumps.

A context is a :class:`CpuContext`: the CPU name, the register values by
name, and which of them are known (``valid``; all of them for a context read
from the dump, only the recovered ones for a caller frame).

Layouts are the Windows ``CONTEXT`` structures (also written by Breakpad and
Crashpad): x86 716 bytes, amd64 1232 bytes, arm64 912 bytes, plus Breakpad's
older arm64 layout (flag 0x80000000).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from backline.analyzers.dumps.minidump.reader import Reader
from backline.errors import FormatError

CONTEXT_X86 = 0x00010000
CONTEXT_AMD64 = 0x00100000
CONTEXT_ARM = 0x40000000
CONTEXT_ARM64 = 0x00400000
CONTEXT_ARM64_OLD = 0x80000000

X86_REGS = ("eip", "esp", "ebp", "ebx", "esi", "edi", "eax", "ecx", "edx", "eflags")
AMD64_REGS = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
              "r11", "r12", "r13", "r14", "r15", "rip")
ARM64_REGS = tuple(f"x{i}" for i in range(29)) + ("fp", "lr", "sp", "pc")

POINTER_SIZE = {"x86": 4, "amd64": 8, "arm64": 8}
IP_REG = {"x86": "eip", "amd64": "rip", "arm64": "pc"}
SP_REG = {"x86": "esp", "amd64": "rsp", "arm64": "sp"}
FP_REG = {"x86": "ebp", "amd64": "rbp", "arm64": "fp"}


@dataclass(frozen=True, slots=True)
class CpuContext:
    """Registers of one frame.  ``valid`` is ``None`` when every register is known.

    >>> c = CpuContext("x86", {"eip": 0x401000, "esp": 0x12ff00, "ebp": 0})
    >>> hex(c.ip), c.has("ebp")
    ('0x401000', True)
    """

    cpu: str
    regs: dict[str, int] = field(default_factory=dict)
    valid: frozenset[str] | None = None

    @property
    def ip(self) -> int:
        return self.regs.get(IP_REG[self.cpu], 0)

    @property
    def sp(self) -> int:
        return self.regs.get(SP_REG[self.cpu], 0)

    @property
    def pointer_size(self) -> int:
        return POINTER_SIZE[self.cpu]

    def has(self, reg: str) -> bool:
        return reg in self.regs and (self.valid is None or reg in self.valid)

    def get(self, reg: str) -> int | None:
        return self.regs[reg] if self.has(reg) else None

    def valid_regs(self) -> dict[str, int]:
        """The known registers, in the CPU's usual order."""
        order = {"x86": X86_REGS, "amd64": AMD64_REGS, "arm64": ARM64_REGS}[self.cpu]
        return {r: self.regs[r] for r in order if self.has(r)}


_X86 = struct.Struct("<" + "I" * 17)          # gs fs es ds edi esi ebx edx ecx eax ebp eip cs eflags esp ss
_AMD64_GPR = struct.Struct("<" + "Q" * 17)    # rax .. rip at offset 120


def parse_context(reader: Reader, rva: int, size: int, cpu_hint: str | None) -> CpuContext:
    """Read the context at ``rva`` (``size`` bytes) for the dump's CPU."""
    if size < 4:
        raise FormatError(f"context of {size} bytes is too small", artifact=reader.name,
                          locator=f"offset:{rva:#x}")
    reader.check(rva, size)
    flags = reader.u32(rva)
    cpu = cpu_hint
    if cpu is None:
        if size >= 716 and flags & CONTEXT_X86 and size < 1232:
            cpu = "x86"
        elif size >= 1232:
            cpu = "amd64"
        elif size >= 912:
            cpu = "arm64"
    if cpu == "x86":
        if size < 204:
            raise FormatError(f"x86 context of {size} bytes is too small", artifact=reader.name,
                              locator=f"offset:{rva:#x}")
        v = reader.unpack(_X86, rva + 140)
        names = ("gs", "fs", "es", "ds", "edi", "esi", "ebx", "edx", "ecx", "eax", "ebp", "eip",
                 "cs", "eflags", "esp", "ss")
        regs = dict(zip(names, v))
        return CpuContext("x86", {k: regs[k] for k in X86_REGS})
    if cpu == "amd64":
        if size < 256:
            raise FormatError(f"amd64 context of {size} bytes is too small", artifact=reader.name,
                              locator=f"offset:{rva:#x}")
        v = reader.unpack(_AMD64_GPR, rva + 120)
        names = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11",
                 "r12", "r13", "r14", "r15", "rip")
        regs = dict(zip(names, v))
        regs["eflags"] = reader.u32(rva + 68)
        return CpuContext("amd64", regs)
    if cpu == "arm64":
        if flags & CONTEXT_ARM64_OLD and not flags & CONTEXT_ARM64 and size >= 276:
            # Breakpad's old layout: u64 flags, x0..x28, fp, lr, sp, pc, u32 cpsr
            vals = struct.unpack_from("<33Q", reader.bytes(rva + 8, 264))
        elif size >= 272:
            x = struct.unpack_from("<33Q", reader.bytes(rva + 8, 264))
            vals = x
        else:
            raise FormatError(f"arm64 context of {size} bytes is too small", artifact=reader.name,
                              locator=f"offset:{rva:#x}")
        regs = {f"x{i}": vals[i] for i in range(29)}
        regs.update(fp=vals[29], lr=vals[30], sp=vals[31], pc=vals[32], x29=vals[29], x30=vals[30])
        return CpuContext("arm64", regs)
    raise FormatError(f"unsupported CPU context (flags {flags:#x}, {size} bytes)",
                      artifact=reader.name, locator=f"offset:{rva:#x}")

"""Targets over files: a minidump (or Breakpad microdump) and a Linux ELF core.

Both keep their reader open for the session, so memory, symbols and code bytes
are read on demand; the crash model (threads, frames, modules, analysis) is the
one ``backline dump`` builds, so a session and the automatic analysis agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from backline.analyzers.dumps.analysis import analyze_crash
from backline.analyzers.dumps.model import CrashModule
from backline.debugger.target import (ExceptionRecord, Handle, Region, SymbolEntry, Target, ThreadTime,
                                      utc_from_unix)

_MEM_STATE = {0x1000: "MEM_COMMIT", 0x2000: "MEM_RESERVE", 0x10000: "MEM_FREE"}
_MEM_TYPE = {0x1000000: "MEM_IMAGE", 0x40000: "MEM_MAPPED", 0x20000: "MEM_PRIVATE"}
_FILETIME_EPOCH = 11644473600          # seconds from 1601-01-01 to 1970-01-01


def _filetime(ft: int | None):
    if not ft:
        return None
    return utc_from_unix(ft / 10_000_000 - _FILETIME_EPOCH)


class MinidumpTarget(Target):
    """A minidump; ``md`` is the parsed file, ``store`` its symbol store."""

    @classmethod
    def open(cls, path: Path, symbols: Sequence[Path], binaries: Sequence[Path] = ()) -> "MinidumpTarget":
        from backline.analyzers.dumps.minidump.context import POINTER_SIZE
        from backline.analyzers.dumps.minidump.process import pe_images, read_dump, report_from_minidump
        from backline.analyzers.dumps.symbols import shared_store

        md = read_dump(path, str(path))
        store = shared_store(list(symbols))
        report = analyze_crash(report_from_minidump(md, store, binary_paths=binaries),
                               lambda a, n: md.memory.read_ptr(a, n))
        cpu = md.system_info.cpu if md.system_info else (report.cpu or "unknown")
        t = cls(name=path.name, path=str(path), kind="minidump", report=report, cpu=cpu,
                ptr_size=POINTER_SIZE.get(cpu, 8), warnings=list(report.warnings))
        t.md, t.store, t.pe, t._pe_cache = md, store, pe_images(md, binaries), {}
        return t

    # Target is a slotted dataclass: extra attributes of a subclass need their own slots
    __slots__ = ("md", "store", "pe", "_pe_cache")

    def _image(self, md_module):
        """The module's PE image (exports, unwind info), when the dump or --binaries has it."""
        i = next((k for k, m in enumerate(self.md.modules) if m is md_module), None)
        if i is None:
            return None
        if i not in self._pe_cache:
            self._pe_cache[i] = self.pe(i)
        return self._pe_cache[i]

    def _md_module(self, module: CrashModule):
        for m in self.md.modules:
            if m.base == module.base:
                return m
        return None

    def _symfile(self, md_module):
        if md_module is None:
            return None
        return self.store.get(md_module.debug_file, md_module.debug_id)

    def read_bytes(self, address: int, size: int) -> list[int | None]:
        out: list[int | None] = []
        size = max(0, min(size, 1 << 20))
        while len(out) < size:
            a = address + len(out)
            r = self.md.memory.region_at(a)
            if r is None:
                out.append(None)
                continue
            n = min(size - len(out), r.end - a)
            out.extend(bytes(r.data[a - r.base:a - r.base + n]))
        return out

    def chunks(self, address: int, size: int) -> Iterator[tuple[int, bytes]]:
        end = address + size
        for r in self.md.memory.regions:
            lo, hi = max(address, r.base), min(end, r.end)
            if lo < hi:
                yield lo, bytes(r.data[lo - r.base:hi - r.base])

    def regions(self) -> list[Region]:
        md = self.md
        mods = [(m.base, m.base + m.size, m.filename) for m in md.modules]

        def module_of(a: int) -> str | None:
            return next((n for b, e, n in mods if b <= a < e), None)

        if md.memory_info:
            out = []
            for r in md.memory_info:
                mod = module_of(r.base)
                state = _MEM_STATE.get(r.state, f"{r.state:#x}")
                typ = _MEM_TYPE.get(r.type) if r.type else None
                usage = ("Image" if typ == "MEM_IMAGE" else "Free" if state == "MEM_FREE"
                         else self._stack_usage(r.base, r.end) or "<unknown>")
                out.append(Region(r.base, r.size, r.protection if r.committed else None, state, typ,
                                  r.allocation_base, md.memory.region_at(r.base) is not None, mod, usage))
            return out
        maps = md.linux.get("maps")
        if maps:
            return self._linux_maps(maps)
        seen: set[int] = set()
        out = []
        for r in md.memory.regions:
            if r.base in seen:          # the exception thread's stack may be listed twice
                continue
            seen.add(r.base)
            out.append(Region(r.base, r.end - r.base, None, "MEM_COMMIT", None, None, True, module_of(r.base),
                              self._stack_usage(r.base, r.end) or ("Image" if module_of(r.base) else "<unknown>")))
        covered = {r.base for r in out}
        out += [Region(b, e - b, None, None, "MEM_IMAGE", b, False, n, "Image")
                for b, e, n in mods if b not in covered]
        return sorted(out, key=lambda r: r.base)

    def _stack_usage(self, base: int, end: int) -> str | None:
        for th in self.md.threads:
            if th.stack_size and base <= th.stack_start < end:
                return f"Stack [{th.thread_id:#x}]"
        return None

    def _linux_maps(self, text: str) -> list[Region]:
        out = []
        for line in text.splitlines():
            parts = line.split(None, 5)
            if len(parts) < 5 or "-" not in parts[0]:
                continue
            try:
                lo, hi = (int(x, 16) for x in parts[0].split("-", 1))
            except ValueError:
                continue
            path = parts[5].strip() if len(parts) > 5 else ""
            usage = ("Stack" if path == "[stack]" else "Heap" if path == "[heap]"
                     else f"File: {path}" if path.startswith("/") else (path or "<anonymous>"))
            mod = next((m.filename for m in self.md.modules if m.base <= lo < m.base + m.size), None)
            out.append(Region(lo, hi - lo, parts[1], "MEM_COMMIT",
                              "MEM_IMAGE" if mod else ("MEM_MAPPED" if path.startswith("/") else "MEM_PRIVATE"),
                              None, self.md.memory.region_at(lo) is not None, mod, usage))
        return out

    def exception_record(self) -> ExceptionRecord | None:
        e = self.md.exception
        if e is None:
            return None
        x = self.report.exception
        desc = ""
        if x is not None and x.type.startswith("EXCEPTION_ACCESS_VIOLATION") and x.address is not None:
            what = {"READ": "read from", "WRITE": "write to", "EXEC": "execute"}.get(x.type.rsplit("_", 1)[-1])
            if what:
                desc = f"Attempt to {what} address {x.address:#0{2 + 2 * self.ptr_size}x}"
        return ExceptionRecord(code=e.code, name=x.type if x else f"{e.code:#x}", flags=e.flags,
                               address=e.address, parameters=tuple(e.parameters), thread_id=e.thread_id,
                               fault_address=x.address if x else None, description=desc)

    def exception_context(self) -> dict[str, int]:
        e = self.md.exception
        if e is not None and e.context is not None:
            return e.context.valid_regs()
        return super().exception_context()

    def thread_times(self) -> list[ThreadTime] | None:
        if not self.md.thread_info:
            return None
        return [ThreadTime(t.thread_id, t.user_time / 1e7, t.kernel_time / 1e7, _filetime(t.create_time))
                for t in self.md.thread_info]

    def thread_detail(self, index: int) -> dict[str, Any]:
        if 0 <= index < len(self.md.threads):
            th = self.md.threads[index]
            return {"suspend": th.suspend_count, "teb": th.teb, "priority": th.priority,
                    "priority_class": th.priority_class}
        return {}

    def handles(self) -> list[Handle] | None:
        if not self.md.handles:
            return None
        return [Handle(h.handle, h.type_name, h.object_name, h.attributes, h.granted_access, h.handle_count,
                       h.pointer_count) for h in self.md.handles]

    def functions(self, module: CrashModule) -> Iterator[SymbolEntry]:
        mdm = self._md_module(module)
        sf = self._symfile(mdm)
        if sf is not None:
            for name, off, size in sf.functions():
                yield SymbolEntry(module.name, name, module.base + off, size)
            return
        img = self._image(mdm) if mdm is not None else None      # no symbols: the export table
        for rva, name in (img.exports if img is not None else []):
            yield SymbolEntry(module.name, name, module.base + rva, 0)

    def symbol_kind(self, module: CrashModule) -> str:
        mdm = self._md_module(module)
        img = self._image(mdm) if mdm is not None else None
        return "export" if (img is not None and img.exports) else "none"

    def lookup(self, address: int) -> tuple[str, str | None, int] | None:
        m = self.md.module_at(address)
        if m is None:
            return None
        sf = self._symfile(m)
        s = sf.lookup(address - m.base) if sf is not None else None
        if s is not None:
            return m.filename, s.function, address - m.base - s.function_base
        img = self._image(m) if sf is None else None
        hit = img.export_at(address - m.base) if img is not None else None
        if hit is not None:
            return m.filename, hit[0], hit[1]
        return m.filename, None, address - m.base

    def source_line(self, address: int) -> tuple[str, int] | None:
        m = self.md.module_at(address)
        sf = self._symfile(m) if m is not None else None
        s = sf.lookup(address - m.base) if sf is not None else None
        if s is not None and s.file and s.line is not None:
            return s.file, s.line
        return None

    def system(self) -> dict[str, Any]:
        out = super().system()
        md = self.md
        si = md.system_info
        if si is not None:
            out.update(cpu_count=si.cpu_count, cpu_info=si.cpu_info, csd=si.csd_version,
                       build=si.build, product_type=si.product_type)
        out["dump_time"] = utc_from_unix(md.timestamp)
        mi = md.misc_info
        if mi is not None:
            out["process_created"] = utc_from_unix(mi.process_create_time)
            out["process_user_s"] = mi.process_user_time
            out["process_kernel_s"] = mi.process_kernel_time
        for k in ("lsb_release", "cmdline"):
            if k in md.linux:
                out[k] = md.linux[k]
        return out


class CoreTarget(Target):
    """A Linux ELF core with its modules (executable and libraries, when given)."""

    __slots__ = ("core", "loaded", "walker")

    @classmethod
    def open(cls, path: Path, binaries: Sequence[Path], symbols: Sequence[Path]) -> "CoreTarget":
        from backline.analyzers.dumps.elfcore.analysis import report_from_core
        from backline.analyzers.dumps.elfcore.modules import resolve_modules
        from backline.analyzers.dumps.elfcore.reader import open_core
        from backline.analyzers.dumps.elfcore.unwind import Walker

        core = open_core(path)
        try:
            warnings: list[str] = list(core.warnings)
            loaded = resolve_modules(core, list(binaries), list(symbols), warnings)
            report = analyze_crash(report_from_core(core, loaded, warnings))
        except BaseException:
            core.close()
            raise
        t = cls(name=path.name, path=str(path), kind="elf_core", report=report, cpu=core.cpu,
                ptr_size=core.ptr_size, warnings=list(report.warnings))
        t.core, t.loaded = core, sorted(loaded, key=lambda m: m.base)
        t.walker = Walker(core, t.loaded)
        return t

    def _loaded(self, address: int):
        return self.walker.module_at(address)

    def read_bytes(self, address: int, size: int) -> list[int | None]:
        size = max(0, min(size, 1 << 20))
        out: list[int | None] = []
        while len(out) < size:
            a = address + len(out)
            seg = self.core._segment_at(a)
            if seg is not None and a - seg.vaddr < seg.filesz:
                n = min(size - len(out), seg.filesz - (a - seg.vaddr))
                got = self.core.read(a, n)
                if got is not None:
                    out.extend(got)
                    continue
            # not in the core: the module's file holds read-only bytes (code), as gdb reads them
            m = self._loaded(a)
            got = m.image.read_vaddr(a - m.bias, 1) if (m is not None and m.image is not None) else None
            out.append(got[0] if got else None)
        return out

    def chunks(self, address: int, size: int) -> Iterator[tuple[int, bytes]]:
        end = address + size
        for seg in self.core.segments:
            lo, hi = max(address, seg.vaddr), min(end, seg.vaddr + seg.filesz)
            if lo < hi:
                got = self.core.read(lo, hi - lo)
                if got is not None:
                    yield lo, got

    def regions(self) -> list[Region]:
        out = []
        for seg in self.core.segments:
            f = seg.flags
            prot = ("r" if f & 4 else "-") + ("w" if f & 2 else "-") + ("x" if f & 1 else "-")
            mod = self._loaded(seg.vaddr)
            path = next((x.path for x in self.core.files if x.start <= seg.vaddr < x.end), None)
            stack = next((f"Stack [{t.tid}]" for t in self.core.threads
                          if seg.vaddr <= t.registers.get("rsp", t.registers.get("sp", -1)) < seg.end), None)
            usage = stack or (f"File: {path}" if path else "<anonymous>")
            out.append(Region(seg.vaddr, seg.memsz, prot, "MEM_COMMIT",
                              "MEM_IMAGE" if mod else ("MEM_MAPPED" if path else "MEM_PRIVATE"),
                              None, seg.filesz > 0, mod.name if mod else None, usage))
        return out

    def exception_record(self) -> ExceptionRecord | None:
        x = self.report.exception
        if x is None:
            return None
        si = self.core.siginfo
        params = (si.errno, si.code) if si is not None else ()
        return ExceptionRecord(code=x.code or 0, name=x.type, flags=0, address=self._pc_of_crash(),
                               parameters=params, thread_id=x.thread if isinstance(x.thread, int) else None,
                               fault_address=x.address, description=x.message)

    def _pc_of_crash(self) -> int | None:
        t = self.crashing_thread
        if t is None or not self.threads[t].frames:
            return None
        return self.threads[t].frames[0].instruction

    def thread_detail(self, index: int) -> dict[str, Any]:
        if 0 <= index < len(self.core.threads):
            t = self.core.threads[index]
            return {"signal": t.signal}
        return {}

    def functions(self, module: CrashModule) -> Iterator[SymbolEntry]:
        m = next((x for x in self.loaded if x.base == module.base), None)
        if m is None or m.image is None:
            return
        for addr, size, name in m.image.functions():
            yield SymbolEntry(module.name, name, addr + m.bias, size)

    def lookup(self, address: int) -> tuple[str, str | None, int] | None:
        m = self._loaded(address)
        if m is None:
            return None
        # the symbol table answers module!function+offset; DWARF (inlined frames) is not needed
        # here and costs seconds on a large library's debug file
        if m.image is not None:
            hit = m.image.symbol_at(address - m.bias)
            if hit is not None:
                from backline.analyzers.dumps.elfsym import demangle
                return m.name, demangle(hit[0]), hit[1]
        return m.name, None, address - m.base

    def source_line(self, address: int) -> tuple[str, int] | None:
        if self._loaded(address) is None:
            return None
        inner = self.walker.symbolize(address)[0]
        file, line = inner[4], inner[5]
        return (file, line) if file and line is not None else None

    def system(self) -> dict[str, Any]:
        out = super().system()
        out["args"] = self.core.args
        try:
            out["dump_time"] = utc_from_unix(Path(self.path).stat().st_mtime)
            out["dump_time_source"] = "file modification time (cores carry no time stamp)"
        except OSError:
            pass
        return out

    def close(self) -> None:
        for m in self.loaded:
            if m.image is not None:
                m.image.close()
        self.core.close()

"""Turn a parsed minidump into the shared :class:`CrashReport`: walk every thread's
stack, symbolize frames, decode the exception.

>>> from backline.testing import corpus_dir
>>> d = corpus_dir() / "dumps/breakpad"
>>> rep = process_minidump(d / "minidump2.dmp", symbol_paths=[d / "symbols"])
>>> [f.function for f in rep.crashed_thread.frames]
["`anonymous namespace'::CrashFunction", 'main', '__tmainCRTStartup', 'BaseProcessStart']
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from backline.analyzers.dumps.analysis import disassemble, disassemble_window
from backline.analyzers.dumps.exceptions import crash_reason
from backline.analyzers.dumps.minidump import types as T
from backline.analyzers.dumps.minidump.context import CpuContext
from backline.analyzers.dumps.minidump.microdump import is_microdump, read_microdump
from backline.analyzers.dumps.minidump.parser import read_minidump
from backline.analyzers.dumps.pe import PeImage, find_binary
from backline.analyzers.dumps.model import (CrashException, CrashModule, CrashReport, CrashThread,
                                            StackFrame)
from backline.analyzers.dumps.stackwalk import (MAX_FRAMES, ModuleMap, StackMemory, WalkedFrame,
                                                walk_stack)
from backline.analyzers.dumps.symbols import SymbolStore, shared_store


def process_minidump(path: Path | str, symbol_paths: Sequence[Path] = (), *,
                     store: SymbolStore | None = None, name: str | None = None,
                     max_frames: int = MAX_FRAMES, binary_paths: Sequence[Path] = ()) -> CrashReport:
    """Parse, walk and symbolize the minidump at ``path``."""
    md = read_dump(path, name)
    return report_from_minidump(md, store or shared_store(symbol_paths), max_frames=max_frames,
                                binary_paths=binary_paths)


def pe_images(md: T.Minidump, binary_paths: Sequence[Path] = ()) -> Callable[[int], PeImage | None]:
    """The PE image of module ``i``: from the dump's memory (full-memory dumps), else a file of
    the same name, time stamp and size in ``binary_paths``; None for other systems' modules."""
    def image(i: int) -> PeImage | None:
        m = md.modules[i]
        if md.system_info is None or not md.system_info.os.startswith("Windows"):
            return None

        def read(rva: int, size: int) -> bytes | None:
            out, a, end = bytearray(), m.base + rva, m.base + rva + size
            while a < end:
                r = md.memory.region_at(a)
                if r is None:
                    return None
                n = min(end, r.end) - a
                out += r.data[a - r.base:a - r.base + n]
                a += n
            return bytes(out)

        img = PeImage.parse(m.filename, read)
        if img is None and binary_paths:
            path = find_binary(m.filename, [Path(p) for p in binary_paths], m.timestamp, m.size)
            img = PeImage.from_file(path) if path is not None else None
        return img
    return image


def read_dump(path: Path | str, name: str | None = None) -> T.Minidump:
    """A minidump, or a Breakpad microdump (text) when the file holds one."""
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if head[:4] != b"MDMP" and is_microdump(head):
        return read_microdump(path, name)
    return read_minidump(path, name)


def _stack_memory(md: T.Minidump, th: T.MdThread, ctx: CpuContext) -> StackMemory | None:
    ptr = ctx.pointer_size
    region = md.memory.region_at(th.stack_start) if th.stack_size else None
    if region is not None and region.base == th.stack_start and region.base <= ctx.sp < region.end:
        return StackMemory(region.base, region.data, ptr)
    alt = md.memory.region_at(ctx.sp)
    if alt is not None:
        return StackMemory(alt.base, alt.data, ptr)
    if region is not None:
        return StackMemory(region.base, region.data, ptr)
    return None


def crashing_instruction(md: T.Minidump, ip: int, cpu: str,
                         registers: dict[str, int] | None = None) -> dict | None:
    """Disassemble the instruction at ``ip`` when the dump holds its bytes."""
    region = md.memory.region_at(ip)
    if region is None:
        return None
    off = ip - region.base
    out = disassemble(bytes(region.data[off:off + 16]), ip, cpu, registers)
    if out is not None:
        out["following"] = disassemble_window(bytes(region.data[off:off + 96]), ip, cpu)
    return out


def _frame(i: int, w: WalkedFrame, modules: Sequence[T.MdModule], with_regs: bool) -> StackFrame:
    mod = modules[w.module_index] if w.module_index is not None else None
    s = w.symbol
    return StackFrame(
        index=i, trust=w.trust, instruction=w.instruction,
        module=mod.filename if mod else None,
        module_offset=(w.instruction - mod.base) if mod else None,
        function=s.function if s else None,
        function_offset=(w.instruction - mod.base - s.function_base) if (s and mod) else None,
        file=s.file if s else None, line=s.line if s else None,
        registers=w.context.valid_regs() if with_regs else {})


def report_from_minidump(md: T.Minidump, store: SymbolStore, *,
                         max_frames: int = MAX_FRAMES, binary_paths: Sequence[Path] = ()) -> CrashReport:
    si = md.system_info
    os_short = si.os_short if si else "unknown"
    warnings = list(md.warnings)
    loaded: dict[int, bool] = {}

    def sym_for(i: int):
        m = md.modules[i]
        s = store.get(m.debug_file, m.debug_id)
        loaded[i] = s is not None
        return s

    mmap_ = ModuleMap(md.modules, sym_for, pe_images(md, binary_paths))
    exc = md.exception
    crash_tid = exc.thread_id if exc else None
    requesting = (md.breakpad_info or {}).get("requesting_thread_id")
    dump_tid = (md.breakpad_info or {}).get("dump_thread_id")
    threads: list[CrashThread] = []
    notes: list[str] = []            # facts about what the dump lacks that are normal, not damage
    inlines: dict[str, list] = {}
    unloaded_frames: dict[str, list] = {}
    crashing_index: int | None = None
    for ti, th in enumerate(md.threads):
        is_crash = crash_tid is not None and th.thread_id == crash_tid
        if is_crash or (crash_tid is None and requesting is not None and th.thread_id == requesting):
            crashing_index = ti          # the crashing thread, else the requesting thread (rust-minidump)
        if dump_tid is not None and th.thread_id == dump_tid and not is_crash:
            threads.append(CrashThread(th.thread_id, (), th.name, False, state="dump_thread"))
            continue
        ctx = exc.context if (is_crash and exc and exc.context is not None) else th.context
        if ctx is None:
            warnings.append(f"thread {th.thread_id:#x}: no CPU context, stack not walked")
            threads.append(CrashThread(th.thread_id, (), th.name, is_crash))
            continue
        mem = _stack_memory(md, th, ctx)
        if mem is None:
            warnings.append(f"thread {th.thread_id:#x}: stack memory missing, only the context frame")
        walked, cut = walk_stack(ctx, mem, mmap_, os_short, max_frames)
        if cut:
            warnings.append(f"thread {th.thread_id:#x}: stack cut at {max_frames} frames")
        frames = tuple(_frame(i, w, md.modules, True) for i, w in enumerate(walked))
        for fi, w in enumerate(walked):
            if w.symbol and w.symbol.inlines:
                inlines[f"{ti}/{fi}"] = [list(x) for x in w.symbol.inlines]
            if w.module_index is None and md.unloaded_modules:
                hits: dict[str, list[int]] = {}
                for u in md.unloaded_modules:
                    if u.base <= w.instruction < u.base + u.size:
                        hits.setdefault(u.code_file, []).append(w.instruction - u.base)
                if hits:
                    unloaded_frames[f"{ti}/{fi}"] = [{"module": k, "offsets": sorted(set(v))}
                                                     for k, v in sorted(hits.items())]
        threads.append(CrashThread(th.thread_id, frames, th.name, is_crash,
                                   registers=ctx.valid_regs()))
    exception = None
    if exc is not None:
        reason, address = crash_reason(os_short, exc.code, exc.flags, exc.parameters, exc.address)
        sub = reason.split(" / ", 1)[1] if " / " in reason else (f"{exc.flags:#x}" if exc.flags else None)
        exception = CrashException(type=reason, code=exc.code, subcode=sub,
                                   address=address, thread=exc.thread_id,
                                   message=f"{reason} at {address:#x}")
    modules = tuple(CrashModule(name=m.filename, base=m.base, size=m.size, path=m.code_file,
                                version=m.version, debug_file=(m.debug_file or "").replace("\\", "/").rsplit("/", 1)[-1] or None,
                                debug_id=m.debug_id, code_id=m.code_id,
                                symbols_loaded=loaded.get(i, False))
                    for i, m in enumerate(md.modules))
    modules += tuple(CrashModule(name=u.code_file, base=u.base, size=u.size, path=u.code_file,
                                 code_id=f"{u.timestamp:08x}{u.size:x}", unloaded=True)
                     for u in md.unloaded_modules)
    if crashing_index is not None and threads[crashing_index].frames and si is not None:
        f0 = threads[crashing_index].frames[0]
        ci = crashing_instruction(md, f0.instruction or 0, si.cpu, dict(f0.registers))
        if ci is not None:
            extra_ci = ci
        else:
            extra_ci = None
            notes.append("crashing instruction not disassembled: the dump holds no code bytes at the crash address")
    else:
        extra_ci = None
    pid = md.misc_info.process_id if md.misc_info else None
    if pid is None and "proc_status" in md.linux:
        for line in md.linux["proc_status"].splitlines():
            if line.startswith("Pid:"):
                try:
                    pid = int(line.split()[1])
                except (IndexError, ValueError):
                    pass
    extra: dict = {
        "crash_time": datetime.fromtimestamp(md.timestamp, timezone.utc).isoformat() if md.timestamp else None,
        "cpu_info": si.cpu_info if si else None,
        "cpu_count": si.cpu_count if si else None,
        "streams": [s.name for s in md.streams],
        "main_module": 0 if md.modules else None,
        "inlines": inlines,
        "unloaded_frames": unloaded_frames,
        "os_short": os_short,
    }
    if extra_ci is not None:
        extra["crashing_instruction"] = extra_ci
    if md.version == 0 and not md.streams:
        extra["source"] = "microdump"
    if md.misc_info and md.misc_info.process_create_time:
        extra["process_create_time"] = datetime.fromtimestamp(md.misc_info.process_create_time, timezone.utc).isoformat()
    if exception is not None and exception.address is not None and md.memory_info:
        region = md.memory_info_at(exception.address)
        extra["crash_address_region"] = (
            {"base": region.base, "size": region.size, "protection": region.protection,
             "committed": region.committed, "executable": region.executable}
            if region is not None else {"unmapped": True})
    if md.comments:
        extra["comments"] = md.comments
    if notes:
        extra["notes"] = notes
    if md.assertion:
        a = md.assertion
        extra["assertion"] = {"expression": a.expression, "function": a.function, "file": a.file, "line": a.line}
    if md.crashpad_info:
        c = md.crashpad_info
        extra["annotations"] = {"simple": c.simple_annotations,
                                "modules": {str(m.module_index): {"list": list(m.list_annotations),
                                                                  "simple": m.simple_annotations,
                                                                  "objects": m.annotation_objects}
                                            for m in c.modules}}
    if md.handles:
        extra["handles"] = [{"handle": h.handle, "type": h.type_name, "name": h.object_name}
                            for h in md.handles[:10_000]]
    for k in ("lsb_release", "cmdline"):
        if k in md.linux:
            extra[k] = md.linux[k]
    if "maps" in md.linux:
        extra["linux_memory_map_count"] = len(md.linux["maps"].splitlines())
    return CrashReport(
        source_format="minidump", threads=tuple(threads), exception=exception,
        crashing_thread=crashing_index, modules=modules,
        os=si.os if si else None, os_version=si.os_version if si else None,
        cpu=si.cpu if si else None, pid=pid,
        process_name=md.modules[0].filename if md.modules else None,
        warnings=tuple(warnings), extra=extra)

"""JSON of a :class:`CrashReport` in the schema of rust-minidump's ``minidump-stackwalk --json``
(``crash_info``, ``crashing_thread``, ``threads[].frames[]``, ``modules``, ``system_info``),
plus Backline's own ``analysis`` object, so outputs compare frame by frame.

Addresses are hex strings padded to the pointer width (``0x0040429e`` on x86,
``0x0000000000401f26`` on 64-bit CPUs), as rust-minidump prints them.
"""

from __future__ import annotations

from typing import Any

from backline.analyzers.dumps.analysis import adjusted_address
from backline.analyzers.dumps.model import CrashReport, CrashThread, StackFrame
from backline.model.core import SCHEMA_VERSION


def _hexer(cpu: str | None):
    width = 8 if cpu in ("x86", "arm", "mips", "ppc") else 16

    def h(v: int | None) -> str | None:
        return None if v is None else f"0x{v & ((1 << (width * 4)) - 1):0{width}x}"
    return h


def _frame(f: StackFrame, h, inlines: list | None, with_regs: bool, report: CrashReport,
           unloaded: list | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "file": f.file,
        "frame": f.index,
        "function": f.function,
        "function_offset": h(f.function_offset) if f.function is not None and f.function_offset is not None else None,
        "inlines": [{"function": n, "file": fl, "line": ln} for n, fl, ln in inlines] if inlines else None,
        "line": f.line,
        "missing_symbols": f.function is None,
        "module": f.module,
        "module_offset": h(f.module_offset) if f.module is not None else None,
        "offset": h(f.instruction),
        "trust": f.trust,
        "unloaded_modules": [{"module": u["module"], "offsets": [h(o) for o in u["offsets"]]}
                             for u in unloaded] if unloaded else None,
    }
    if with_regs and f.registers:
        d["registers"] = {k: h(v) for k, v in sorted(f.registers.items())}
    return d


def _thread(report: CrashReport, ti: int, t: CrashThread, h, crashing: bool) -> dict[str, Any]:
    inl = (report.extra or {}).get("inlines") or {}
    unl = (report.extra or {}).get("unloaded_frames") or {}
    frames = [_frame(f, h, inl.get(f"{ti}/{f.index}"), crashing and f.index == 0, report,
                     unl.get(f"{ti}/{f.index}")) for f in t.frames]
    return {"frame_count": len(frames), "frames": frames, "last_error_value": None,
            "thread_id": t.id, "thread_name": t.name}


def _adjusted(report: CrashReport, h) -> dict[str, Any] | None:
    adj = adjusted_address(report)
    if adj is None:
        return None
    if adj["kind"] == "null-pointer":
        return {"kind": "null-pointer", "offset": h(adj["offset"])}
    return {"kind": "non-canonical", "address": h(adj["address"])}


def report_to_json(report: CrashReport, include_threads: bool = True) -> dict[str, Any]:
    """The rust-minidump-shaped document for ``report`` (``analysis`` holds Backline's results)."""
    h = _hexer(report.cpu)
    extra = dict(report.extra or {})
    exc = report.exception
    ct = report.crashing_thread
    ci = extra.get("crashing_instruction") or {}
    crash_info = {
        "address": h(exc.address) if exc and exc.address is not None else None,
        "adjusted_address": _adjusted(report, h),
        "assertion": None,
        "crash_inconsistencies": [],
        "crashing_thread": ct,
        "instruction": ci.get("text"),
        "instruction_pointer_update": None,
        "memory_accesses": [
            {**({"access_type": a["access"]} if a.get("access") in ("read", "write") else {}),
             "address": h(a["address"]), "size": a["size"]}
            for a in ci.get("memory_accesses", []) if a.get("address") is not None
        ] if ci else None,
        "possible_bit_flips": None,
        "type": exc.type if exc else None,
    }
    if "assertion" in extra:
        a = extra["assertion"]
        crash_info["assertion"] = f"{a.get('expression')} in {a.get('function')} ({a.get('file')}:{a.get('line')})"
    crashing = None
    if ct is not None and 0 <= ct < len(report.threads):
        crashing = dict(_thread(report, ct, report.threads[ct], h, True), threads_index=ct)
    modules = [m for m in report.modules if not m.unloaded]
    doc: dict[str, Any] = {
        "status": "OK",
        "system_info": {
            "os": report.os, "os_ver": report.os_version, "cpu_arch": report.cpu,
            "cpu_info": extra.get("cpu_info"), "cpu_count": extra.get("cpu_count"),
            "cpu_microcode_version": None,
        },
        "crash_info": crash_info,
        "crashing_thread": crashing,
        "main_module": 0 if modules else None,
        "modules": [{
            "base_addr": h(m.base), "end_addr": h(m.base + m.size), "filename": m.name,
            "code_id": m.code_id, "debug_file": m.debug_file, "debug_id": m.debug_id,
            "version": m.version, "loaded_symbols": m.symbols_loaded,
            "missing_symbols": not m.symbols_loaded, "corrupt_symbols": False,
            "symbol_url": None, "cert_subject": None,
        } for m in modules],
        "unloaded_modules": [{"base_addr": h(m.base), "end_addr": h(m.base + m.size),
                              "filename": m.name, "code_id": m.code_id, "cert_subject": None}
                             for m in report.modules if m.unloaded],
        "pid": report.pid,
        "thread_count": len(report.threads),
        "threads": [_thread(report, i, t, h, i == ct) for i, t in enumerate(report.threads)] if include_threads else [],
        "lsb_release": extra.get("lsb_release"),
        "linux_memory_map_count": extra.get("linux_memory_map_count"),
    }
    th = report.crashed_thread
    blamed = None
    if th is not None and report.blamed_frame is not None and 0 <= report.blamed_frame < len(th.frames):
        f = th.frames[report.blamed_frame]
        blamed = {"frame": f.index, "module": f.module, "function": f.function,
                  "display": f.display()}
    doc["analysis"] = {
        "schema_version": SCHEMA_VERSION,
        "source_format": report.source_format,
        "problem_class": report.problem_class,
        "bucket_id": report.bucket_id,
        "signature": report.signature,
        "blamed_frame": blamed,
        "crashing_instruction": extra.get("crashing_instruction"),
        "crash_address_region": extra.get("crash_address_region"),
        "crash_time": extra.get("crash_time"),
        "process_name": report.process_name,
        "deadlocks": [{"threads": list(d.threads), "resources": list(d.resources)} for d in report.deadlocks],
        "waiting_threads": [{"thread_id": t.id, "kind": t.wait.kind, "resource": t.wait.resource,
                             "owner": t.wait.owner, "function": t.wait.function}
                            for t in report.threads if t.wait is not None],
        "annotations": extra.get("annotations"),
        "warnings": list(report.warnings),
        "notes": list(extra.get("notes", ())),
    }
    return doc

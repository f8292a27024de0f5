"""The analysis and the process: ``!analyze -v``, ``!runaway``, ``!handle``, ``!locks``/``!cs``,
``.time``, ``vertarget``."""

from __future__ import annotations

from datetime import datetime

from backline.analyzers.dumps.json_out import report_to_json
from backline.debugger.cmds_memory import disassemble_at, symbol_text
from backline.debugger.cmds_stack import cmd_exr
from backline.debugger.expr import fmt_addr
from backline.debugger.session import Result, Session, call_site, frame_rows, module_display

_BAR = "*" * 79


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not available"
    days, rem = divmod(max(0.0, seconds), 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    return f"{int(days)} days {int(h)}:{int(m):02d}:{sec:06.3f}"


def _when(ts: datetime | None) -> str:
    if ts is None:
        return "not available"
    return ts.strftime("%a %b %d %H:%M:%S.") + f"{ts.microsecond // 1000:03d} {ts.year} (UTC + 0:00)"


def cmd_analyze(s: Session, args: list[str]) -> Result:
    """``!analyze -v`` the automatic analysis: fault, exception, problem class, stack, bucket, signature."""
    t = s.target
    r = t.report
    p = t.ptr_size
    doc = report_to_json(r, include_threads=False)["analysis"]
    lines = [_BAR, "*" + "Exception Analysis".center(77) + "*", _BAR, ""]
    th = r.crashed_thread
    if th is not None and th.frames and th.frames[0].instruction is not None:
        ip = th.frames[0].instruction
        lines.append("FAULTING_IP:")
        lines.append(call_site(th.frames[0]))
        ins = disassemble_at(s, ip, 1)
        lines.append(ins[0]["line"] if ins else f"{fmt_addr(ip, p)} ??  (code bytes not in the dump)")
        lines.append("")
    exr = cmd_exr(s, [])
    if t.exception_record() is not None:
        lines += ["EXCEPTION_RECORD:  (.exr -1)", exr.text, ""]
    if r.exception is not None and r.exception.address is not None:
        acc = (doc.get("crashing_instruction") or {}).get("memory_access") or ""
        label = "WRITE_ADDRESS" if "write" in acc or r.exception.type.endswith("WRITE") else "READ_ADDRESS"
        lines += [f"{label}:  {fmt_addr(r.exception.address, p)}", ""]
    lines += [f"PROCESS_NAME:  {r.process_name or '?'}", ""]
    if r.exception is not None:
        code = f"{r.exception.code:#x}" if isinstance(r.exception.code, int) else "?"
        lines += [f"ERROR_CODE: {code} - {r.exception.type}", ""]
    lines += [f"PROBLEM_CLASSES:  {r.problem_class or 'UNKNOWN'}", ""]
    if th is not None:
        lines.append("STACK_TEXT:")
        for row in frame_rows(s, th.frames[:40]):
            sp = fmt_addr(row["child_sp"], p) if row["child_sp"] is not None else "?" * (2 * p)
            ret = fmt_addr(row["return_address"], p) if row["return_address"] is not None else "?" * (2 * p)
            lines.append(f"{sp} {ret} {row['call_site']}")
        if len(th.frames) > 40:
            lines.append(f"... {len(th.frames) - 40} more frames (k)")
        lines.append("")
        lines.append(f"FAULTING_THREAD:  {th.id:x}" if isinstance(th.id, int) else f"FAULTING_THREAD:  {th.id}")
        lines.append("")
    blamed = doc.get("blamed_frame")
    if blamed and th is not None:
        f = th.frames[blamed["frame"]]
        lines += [f"SYMBOL_NAME:  {call_site(f).split(' [', 1)[0]}",
                  f"MODULE_NAME:  {module_display(f.module)}", f"IMAGE_NAME:  {f.module or '?'}", ""]
    for d in r.deadlocks:
        lines.append("DEADLOCK:  threads " + " -> ".join(str(x) for x in d.threads)
                     + " on " + ", ".join(d.resources))
    if r.deadlocks:
        lines.append("")
    lines += [f"FAILURE_BUCKET_ID:  {r.bucket_id or '?'}", "", f"SIGNATURE:  {r.signature or '?'}"]
    if r.warnings:
        lines += ["", "WARNINGS:"] + [f"  {w}" for w in r.warnings[:20]]
    return Result("!analyze", data=doc, text="\n".join(lines))


def cmd_runaway(s: Session, args: list[str]) -> Result:
    """``!runaway`` user and kernel time of each thread (where the dump records them)."""
    times = s.target.thread_times()
    if not times:
        return Result("!runaway", data={"threads": None},
                      text="the dump records no thread times (no ThreadInfoList stream)")
    index = {th.id: i for i, th in enumerate(s.target.threads)}
    rows = [{"thread": index.get(x.thread_id), "tid": x.thread_id, "user_s": x.user_s, "kernel_s": x.kernel_s,
             "created": x.created.isoformat() if x.created else None} for x in times]
    lines = [" User Mode Time", "  Thread       Time"]
    for r in sorted(rows, key=lambda r: -(r["user_s"] or 0)):
        lines.append(f"  {r['thread'] if r['thread'] is not None else '?':>3}:{r['tid']:x}      {_duration(r['user_s'])}")
    lines += [" Kernel Mode Time", "  Thread       Time"]
    for r in sorted(rows, key=lambda r: -(r["kernel_s"] or 0)):
        lines.append(f"  {r['thread'] if r['thread'] is not None else '?':>3}:{r['tid']:x}      {_duration(r['kernel_s'])}")
    return Result("!runaway", data={"threads": rows}, text="\n".join(lines))


def cmd_handle(s: Session, args: list[str]) -> Result:
    """``!handle`` the process's handles (type and name) from the dump's handle stream."""
    hs = s.target.handles()
    if not hs:
        return Result("!handle", data={"handles": None}, text="the dump holds no handle data")
    rows = [{"handle": h.handle, "type": h.type, "name": h.name, "attributes": h.attributes,
             "granted_access": h.granted_access, "handle_count": h.handle_count, "pointer_count": h.pointer_count}
            for h in hs]
    lines = []
    for r in rows:
        lines.append(f"Handle {r['handle']:x}")
        lines.append(f"  Type         \t{r['type'] or '<unknown>'}")
        if r["name"]:
            lines.append(f"  Name         \t{r['name']}")
    by: dict[str, int] = {}
    for r in rows:
        by[r["type"] or "<unknown>"] = by.get(r["type"] or "<unknown>", 0) + 1
    lines.append(f"{len(rows)} Handles")
    lines.append("Type           \tCount")
    lines += [f"{k:<15}\t{v}" for k, v in sorted(by.items(), key=lambda kv: -kv[1])]
    return Result("!handle", data={"handles": rows, "by_type": by}, text="\n".join(lines))


def cmd_locks(s: Session, args: list[str]) -> Result:
    """``!locks`` / ``!cs`` locks with their owners and waiters, and deadlock cycles (wait-for graph)."""
    t = s.target
    r = t.report
    resources: dict[str, dict] = {}
    for i, th in enumerate(r.threads):
        for res in th.holds:
            resources.setdefault(res, {"resource": res, "owner": None, "waiters": []})["owner"] = th.id
        if th.wait is not None:
            e = resources.setdefault(th.wait.resource, {"resource": th.wait.resource, "owner": None, "waiters": []})
            e["waiters"].append({"thread": i, "tid": th.id, "kind": th.wait.kind, "function": th.wait.function})
            if th.wait.owner is not None and e["owner"] is None:
                e["owner"] = th.wait.owner
    lines = []
    for e in resources.values():
        addr = e["resource"].split(":", 1)[-1]
        sym = ""
        try:
            sym = symbol_text(s, int(addr, 16))
        except ValueError:
            pass
        lines.append(f"Lock {e['resource']}" + (f"  ({sym})" if sym else ""))
        own = e["owner"]
        lines.append(f"  OwningThread       {own:x}" if isinstance(own, int) else f"  OwningThread       {own or '?'}")
        lines.append(f"  Waiters            {len(e['waiters'])}")
        for w in e["waiters"]:
            tid = f"{w['tid']:x}" if isinstance(w["tid"], int) else str(w["tid"])
            lines.append(f"    thread {w['thread']} (tid {tid}) in {w['function'] or w['kind']}")
    cycles = [{"threads": list(d.threads), "resources": list(d.resources)} for d in r.deadlocks]
    for c in cycles:
        lines.append("DEADLOCK: " + " -> ".join(
            f"{x:x}" if isinstance(x, int) else str(x) for x in c["threads"]) + " (each waits for the next)")
    if not lines:
        lines.append("no thread waits on a lock in this dump")
    return Result("!locks", data={"locks": list(resources.values()), "deadlocks": cycles}, text="\n".join(lines))


def cmd_time(s: Session, args: list[str]) -> Result:
    """``.time`` when the dump was written, and how long the process had run."""
    info = s.target.system()
    dump, created = info.get("dump_time"), info.get("process_created")
    uptime = (dump - created).total_seconds() if (dump and created) else None
    lines = [f"Debug session time: {_when(dump)}"]
    if info.get("dump_time_source"):
        lines[-1] += f"  [{info['dump_time_source']}]"
    lines += ["System Uptime: not available", f"Process Uptime: {_duration(uptime)}"]
    if info.get("process_kernel_s") is not None:
        lines.append(f"  Kernel time: {_duration(info['process_kernel_s'])}")
    if info.get("process_user_s") is not None:
        lines.append(f"  User time: {_duration(info['process_user_s'])}")
    return Result(".time", data={"dump_time": dump.isoformat() if dump else None,
                                 "process_created": created.isoformat() if created else None,
                                 "process_uptime_s": uptime, "user_s": info.get("process_user_s"),
                                 "kernel_s": info.get("process_kernel_s")}, text="\n".join(lines))


def cmd_vertarget(s: Session, args: list[str]) -> Result:
    """``vertarget`` the OS, CPU and process the dump came from."""
    info = s.target.system()
    t = s.target
    n = info.get("cpu_count")
    lines = [f"{info.get('os') or '?'} Version {info.get('os_version') or '?'} "
             f"{'MP' if (n or 1) > 1 else 'UP'} ({n if n is not None else '?'} procs) {t.cpu}"]
    if info.get("cpu_info"):
        lines.append(f"CPU: {info['cpu_info']}")
    if info.get("lsb_release"):
        lines.append(f"Distribution: {str(info['lsb_release']).strip()}")
    lines.append(f"Process: {info.get('process') or '?'}  pid {info.get('pid') if info.get('pid') is not None else '?'}")
    cmdline = info.get("cmdline") or info.get("args")
    if isinstance(cmdline, (list, tuple)):
        cmdline = " ".join(str(x) for x in cmdline)
    if cmdline:
        lines.append(f"Command line: {str(cmdline).strip()}")
    lines.append(f"Debug session time: {_when(info.get('dump_time'))}")
    lines.append(f"Dump: {t.path} ({t.kind})")
    data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in info.items()}
    data["kind"], data["path"] = t.kind, t.path
    return Result("vertarget", data=data, text="\n".join(lines))


COMMANDS = {
    "!analyze": cmd_analyze, "!runaway": cmd_runaway, "!handle": cmd_handle, "!locks": cmd_locks,
    "!cs": cmd_locks, ".time": cmd_time, "vertarget": cmd_vertarget,
}

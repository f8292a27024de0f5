"""Commands only a live process has: ``bp``, ``bl``, ``bc``, ``g``, ``p``, ``t``, ``lp``, ``.detach``,
``.dump /ma FILE``, ``!pystack``, ``.sleep``."""

from __future__ import annotations

import time
from pathlib import Path

from backline.debugger.live import LiveTarget, logpoint_format
from backline.debugger.session import Result, Session, frame_rows
from backline.errors import UsageError


def _live(s: Session) -> LiveTarget:
    t = s.target
    if not isinstance(t, LiveTarget):
        raise UsageError("this command needs a live process (backline dbg --pid PID)")
    t.require_attached()
    return t


def _mi_location(loc: str) -> str:
    loc = loc.strip()
    if not loc:
        raise UsageError("give a location: a function, FILE:LINE or *ADDRESS")
    if any(c in loc for c in ' "\n'):
        raise UsageError(f"bad location {loc!r}")
    return loc


def cmd_bp(s: Session, args: list[str]) -> Result:
    """``bp FUNC|FILE:LINE|*ADDR`` set a breakpoint."""
    t = _live(s)
    bk = t.mi.request(f"-break-insert {_mi_location(' '.join(args))}")["bkpt"]
    text = f"Breakpoint {bk['number']} at {bk.get('addr', '?')}" + (
        f": file {bk['file']}, line {bk['line']}." if bk.get("file") else "")
    return Result("bp", data=bk, text=text)


def cmd_bl(s: Session, args: list[str]) -> Result:
    """``bl`` list breakpoints and logpoints (with hit counts)."""
    t = _live(s)
    body = t.mi.request("-break-list").get("BreakpointTable", {}).get("body", [])
    lines = []
    for b in body:
        kind = "lp" if b.get("type") == "dprintf" else "bp"
        where = f"{b.get('file')}:{b.get('line')}" if b.get("file") else b.get("original-location", "?")
        lines.append(f"{b['number']:>3} {'e' if b.get('enabled') == 'y' else 'd'} {kind} {b.get('addr', '?')}"
                     f"  {b.get('func', '')} {where}  hits {b.get('times', '0')}")
    return Result("bl", data={"breakpoints": body}, text="\n".join(lines) or "no breakpoints")


def cmd_bc(s: Session, args: list[str]) -> Result:
    """``bc N|*`` clear a breakpoint (or all)."""
    t = _live(s)
    if not args:
        raise UsageError("bc needs a breakpoint number or *")
    if args[0] == "*":
        body = t.mi.request("-break-list").get("BreakpointTable", {}).get("body", [])
        nums = [b["number"] for b in body]
    else:
        nums = [str(int(a, 10)) for a in args]
    if nums:
        t.mi.request("-break-delete " + " ".join(nums))
    for lp_id, info in list(t.logpoints.items()):
        if str(info["breakpoint"]) in nums:
            del t.logpoints[lp_id]
    return Result("bc", data={"cleared": nums}, text=f"cleared {', '.join(nums) or 'nothing'}")


def _run(s: Session, name: str, mi: str, timeout: float | None) -> Result:
    t = _live(s)
    since = t.mi.stops
    t.mi.request(mi)
    stopped = t.mi.wait_stopped(timeout, since)
    interrupted = False
    if not stopped:
        since = t.mi.stops
        t.mi.request("-exec-interrupt")
        t.mi.wait_stopped(10, since)
        interrupted = True
    ev = t.mi.stop_event or {}
    if t.mi.exited is not None:
        t.attached = False
        code = ev.get("exit-code", "0")
        return Result(name, data={"reason": ev.get("reason"), "exit_code": code},
                      text=f"the process exited (code {code})")
    t.refresh()
    s.set_thread(min(t.stopped_thread, max(0, len(t.threads) - 1)))
    reason = "interrupted after the time limit" if interrupted else ev.get("reason", "stopped")
    if ev.get("reason") == "breakpoint-hit":
        reason = f"Breakpoint {ev.get('bkptno')} hit"
    elif ev.get("reason") == "signal-received" and not interrupted:
        reason = f"{ev.get('signal-name')} ({ev.get('signal-meaning')})"
    f = s.current_frame()
    row = frame_rows(s, [f])[0] if f is not None else None
    text = reason + (f"\n{row['call_site']}" if row else "")
    return Result(name, data={"reason": ev.get("reason"), "interrupted": interrupted, "thread": s.thread_index,
                              "frame": row, "event": ev}, text=text)


def cmd_g(s: Session, args: list[str]) -> Result:
    """``g [-t SECONDS]`` run until a breakpoint, a signal or the exit (or stop after SECONDS)."""
    timeout = None
    if args:
        if args[0] != "-t" or len(args) < 2:
            raise UsageError("use g, or g -t SECONDS to stop again after a while")
        timeout = float(args[1])
    return _run(s, "g", "-exec-continue", timeout)


def cmd_p(s: Session, args: list[str]) -> Result:
    """``p`` step over one source line (or instruction, without line info)."""
    return _run(s, "p", "-exec-next", 60)


def cmd_t(s: Session, args: list[str]) -> Result:
    """``t`` step into (one source line)."""
    return _run(s, "t", "-exec-step", 60)


def cmd_lp(s: Session, args: list[str]) -> Result:
    """``lp FILE:LINE "text {expr} {expr:s}"`` a logpoint: log a line each time the code passes
    (no stop; gdb dprintf).  Lines go to --log FILE with UTC time stamps."""
    t = _live(s)
    if len(args) < 2:
        raise UsageError('use lp LOCATION "format with {expr}" (expr:d/x/u/f/s/p/c)')
    if t.log_path is None:
        raise UsageError("logpoints need a log file: start the session with --log FILE")
    loc, template = _mi_location(args[0]), " ".join(args[1:])
    fmt, exprs = logpoint_format(template)
    lp_id = max([0, *t.logpoints]) + 1          # our id, in the marker gdb prints before each line
    head = f"@@bl-lp{lp_id}@@ {fmt}\\n".replace('"', '\\"')
    quoted_args = " ".join('"' + e.replace('"', '\\"') + '"' for e in exprs)
    bk = t.mi.request(f'-dprintf-insert {loc} "{head}" {quoted_args}'.rstrip())["bkpt"]
    where = f"{Path(bk['file']).name}:{bk['line']}" if bk.get("file") else loc
    t.logpoints[lp_id] = {"location": where, "format": template, "breakpoint": int(bk["number"])}
    return Result("lp", data={"logpoint": lp_id, "breakpoint": int(bk["number"]), "location": where,
                              "format": template, "log": str(t.log_path)},
                  text=f"Logpoint {lp_id} (breakpoint {bk['number']}) at {where} -> {t.log_path}")


def cmd_detach(s: Session, args: list[str]) -> Result:
    """``.detach`` let the process go (it keeps running); the session ends for it."""
    t = _live(s)
    t.mi.request("-target-detach")
    t.attached = False
    return Result(".detach", data={"pid": t.pid}, text=f"Detached from pid {t.pid}")


def cmd_dump(s: Session, args: list[str]) -> Result:
    """``.dump /ma FILE`` write a core of the process (gdb gcore) that backline dump / dbg read."""
    t = _live(s)
    words = [a for a in args if not (a.startswith("/") and len(a) <= 4 and "/" not in a[1:])]   # /ma /m /f
    if len(words) != 1:
        raise UsageError("use .dump /ma FILE")
    out = Path(words[0]).expanduser().resolve()
    if not out.parent.is_dir():
        raise UsageError(f"folder {out.parent} does not exist")
    t.mi.console(f"gcore {out}", timeout=600)
    if not out.is_file():
        raise UsageError(f"gdb wrote no core to {out}")
    return Result(".dump", data={"path": str(out), "size": out.stat().st_size},
                  text=f"Dump successfully written to {out} ({out.stat().st_size:,} bytes)")


def cmd_pystack(s: Session, args: list[str]) -> Result:
    """``!pystack`` the Python stack of every thread (py-spy), for a Python process."""
    t = _live(s)
    stacks = t.python_stacks()
    if stacks is None:
        return Result("!pystack", data=None, text="not a Python process")
    lines = []
    for th in stacks:
        lines.append(f"Thread {th.get('os_thread_id') or th.get('thread_id')} ({th.get('thread_name') or '?'})"
                     + (" [GIL]" if th.get("owns_gil") else "") + (" [active]" if th.get("active") else ""))
        for i, f in enumerate(th.get("frames", [])):
            lines.append(f"  {i:02x} {f.get('name')} [{f.get('filename')} @ {f.get('line')}]")
    return Result("!pystack", data={"threads": stacks}, text="\n".join(lines))


def _gdb_thread(s: Session, t: LiveTarget) -> str:
    threads = t.mi.request("-thread-info").get("threads", [])
    if not (0 <= s.thread_index < len(threads)):
        raise UsageError("no current thread")
    return threads[s.thread_index]["id"]


def cmd_dv(s: Session, args: list[str]) -> Result:
    """``dv`` the local variables and arguments of the current frame, with their values."""
    t = _live(s)
    got = t.mi.request(f"-stack-list-variables --thread {_gdb_thread(s, t)} --frame {s.frame} --all-values")
    rows = [{"name": v.get("name"), "value": v.get("value"), "argument": v.get("arg") == "1"}
            for v in got.get("variables", [])]
    width = max([len(r["name"] or "") for r in rows] + [1])
    return Result("dv", data={"frame": s.frame, "variables": rows},
                  text="\n".join(f"{'  arg ' if r['argument'] else '      '}{r['name']:>{width}} = {r['value']}"
                                 for r in rows) or "(no locals known here: no debug information?)")


def cmd_eval(s: Session, args: list[str]) -> Result:
    """``?? EXPR`` evaluate a C/C++ expression in the current frame (gdb's evaluator)."""
    t = _live(s)
    expr = " ".join(args).replace("\\", "\\\\").replace('"', '\\"')
    if not expr:
        raise UsageError("?? needs an expression")
    got = t.mi.request(f'-data-evaluate-expression --thread {_gdb_thread(s, t)} --frame {s.frame} "{expr}"')
    return Result("??", data={"expression": " ".join(args), "value": got.get("value")},
                  text=str(got.get("value")))


def cmd_sleep(s: Session, args: list[str]) -> Result:
    """``.sleep MS`` wait (the process keeps its state; logpoints of a running process keep logging)."""
    ms = int(args[0], 10) if args else 1000
    time.sleep(max(0, min(ms, 3_600_000)) / 1000)
    return Result(".sleep", data={"ms": ms}, text="")


COMMANDS = {"bp": cmd_bp, "bl": cmd_bl, "bc": cmd_bc, "g": cmd_g, "p": cmd_p, "t": cmd_t, "lp": cmd_lp,
            ".detach": cmd_detach, ".dump": cmd_dump, "!pystack": cmd_pystack, ".sleep": cmd_sleep,
            "dv": cmd_dv, "??": cmd_eval}


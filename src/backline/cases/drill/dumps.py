"""Frame views: a thread's stack, and the code around a frame's instruction.

The dump is read again with the dump code of :mod:`backline.analyzers.dumps`
(minidumps and microdumps, ELF cores with the executables and symbol files
that came in the same evidence, text traces) and analysed the same way;
the instructions around a frame are disassembled with capstone
(:func:`~backline.analyzers.dumps.analysis.disassemble_window`).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from backline.analyzers.dumps.analysis import analyze_crash, disassemble_window
from backline.analyzers.dumps.model import CrashReport, StackFrame

ReadCode = Callable[[int, int], "bytes | None"]
#: Instructions shown before and after a frame's instruction.
AROUND = 8
_BACK = 64               # bytes tried before the instruction to find where instructions start (x86)


#: Debugger commands whose output the frame view shows for a minidump or core (docs/dbg.md).
STANDARD_COMMANDS = ("!analyze -v", "~*k", "lm", ".ecxr", "!locks")


@contextmanager
def open_dump(path: Path, kind: str, fmt: str, name: str, binaries: Sequence[Path] = (),
              symbols: Sequence[Path] = ()) -> Iterator[tuple[CrashReport, ReadCode | None, Any]]:
    """The analysed crash report of a dump artifact, a reader of its code bytes and the
    debugger target over it (``None``, ``None`` for text traces).  ``kind``/``fmt`` are the
    artifact's kind and format.  Minidumps and cores are opened as ``backline dbg`` opens them,
    so the page, the debugger and ``backline dump`` show one crash model."""
    if kind in ("minidump", "elf_core") or (kind == "crash_trace" and fmt == "microdump"):
        from backline.debugger.target import open_target
        target = open_target(path, symbols=symbols, binaries=binaries)
        try:
            yield target.report, target.read, target
        finally:
            target.close()
    else:
        from backline.analyzers.dumps.text import parse_text_crash
        reps = parse_text_crash(path)
        if not reps:
            from backline.errors import FormatError
            raise FormatError("no crash trace found in the text", artifact=name)
        yield analyze_crash(reps[0]), None, None


@contextmanager
def open_crash(path: Path, kind: str, fmt: str, name: str, binaries: Sequence[Path] = (),
               symbols: Sequence[Path] = ()) -> Iterator[tuple[CrashReport, ReadCode | None]]:
    """:func:`open_dump` without the debugger target."""
    with open_dump(path, kind, fmt, name, binaries, symbols) as (rep, read, _target):
        yield rep, read


def debugger_output(target: Any, commands: Sequence[str], thread: int | None = None) -> list[dict[str, Any]]:
    """Run debugger ``commands`` on ``target`` (in ``thread`` when given): their text and errors."""
    from backline.debugger.session import Session

    session = Session([target])
    if thread is not None and 0 <= thread < len(target.threads):
        session.set_thread(thread)
    out = []
    for cmd in commands:
        r = session.run(cmd)
        out.append({"command": cmd, "text": r.text, "error": r.error})
        if r.quit:
            break
    return out


def code_around(read: ReadCode, address: int, cpu: str, *, caller: bool = False,
                count: int = AROUND) -> list[dict[str, Any]]:
    """Up to ``count`` instructions before and after ``address``, the one holding it
    marked ``"this"``.  ``caller``: ``address`` is a return address minus one (a caller
    frame), so the instruction holding it is the call.

    On x86 instruction boundaries are found by decoding from some bytes earlier until
    the decoding lands on the known boundary (the instruction, or the return address).

    >>> code = bytes.fromhex("5589e5" "e800000000" "c9c3")     # push; mov; call; leave; ret
    >>> mem = lambda a, n: code[a - 0x1000:a - 0x1000 + n] if 0x1000 <= a and a + n <= 0x1000 + len(code) else None
    >>> [(i["text"], i["this"]) for i in code_around(mem, 0x1007, "x86", caller=True)]
    [('push ebp', False), ('mov ebp, esp', False), ('call 0x1008', True), ('leave', False), ('ret', False)]
    """
    anchor = address + 1 if caller else address
    step = 4 if cpu == "arm64" else 1
    best: list[dict[str, Any]] = []
    for back in range(_BACK if cpu != "arm64" else 4 * count, -1, -step):
        start = anchor - back
        code = _read_upto(read, start, back + 16 * (count + 1))
        if code is None:
            continue
        insns = disassemble_window(code, start, cpu, count=back + count + 1)
        if back == 0 or any(i["address"] == anchor for i in insns):
            best = insns
            break
    if not best:
        return []
    holder = max((i["address"] for i in best if i["address"] <= address), default=None)
    at = next((k for k, i in enumerate(best) if i["address"] == holder), 0)
    window = best[max(0, at - count):at + count + 1]
    return [{"address": i["address"], "text": i["text"], "this": i["address"] == holder} for i in window]


def _read_upto(read: ReadCode, start: int, size: int) -> bytes | None:
    """``size`` bytes at ``start``, or fewer when the readable memory ends earlier."""
    got = read(start, size)
    if got:
        return bytes(got)
    lo, hi = 0, size                     # the longest readable run: lo readable, hi not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if read(start, mid):
            lo = mid
        else:
            hi = mid
    return bytes(read(start, lo)) if lo else None


def frame_rows(frames: Sequence[StackFrame], selected: int, blamed: int | None) -> list[dict[str, Any]]:
    return [{"index": f.index, "display": f.display(), "trust": f.trust,
             "instruction": f"{f.instruction:#x}" if f.instruction is not None else None,
             "module": f.module, "function": f.function, "file": f.file, "line": f.line,
             "this": f.index == selected, "blamed": blamed is not None and f.index == blamed}
            for f in frames]


def frame_view(rep: CrashReport, read: ReadCode | None, thread: int | None, frame: int) -> dict[str, Any]:
    """What a person needs at ``thread``/``frame`` of ``rep`` (thread is an index into
    ``rep.threads``; ``None`` = the crashing thread, else the first)."""
    notes: list[str] = []
    ti = thread if thread is not None else (rep.crashing_thread if rep.crashing_thread is not None else 0)
    if not (0 <= ti < len(rep.threads)):
        return {"thread": None, "frames": [], "notes": [f"thread {ti} is not in the dump "
                                                        f"(it has {len(rep.threads)} thread(s))"],
                **_crash(rep)}
    th = rep.threads[ti]
    blamed = rep.blamed_frame if ti == rep.crashing_thread else None
    out: dict[str, Any] = {"thread": {"index": ti, "id": str(th.id), "name": th.name, "crashed": th.crashed,
                                      "state": th.state,
                                      "wait": ({"kind": th.wait.kind, "resource": th.wait.resource,
                                                "function": th.wait.function,
                                                "owner": None if th.wait.owner is None else str(th.wait.owner)}
                                               if th.wait else None)},
                           "frames": frame_rows(th.frames, frame, blamed), **_crash(rep)}
    f = next((x for x in th.frames if x.index == frame), None)
    if f is None:
        notes.append(f"frame {frame} is not on this thread's stack ({len(th.frames)} frame(s))")
    else:
        regs = dict(f.registers or (th.registers if frame == 0 else {}))
        out["registers"] = {k: f"{v:#x}" for k, v in sorted(regs.items())}
        if read is not None and f.instruction is not None and rep.cpu in ("x86", "amd64", "arm64"):
            code = code_around(read, f.instruction, rep.cpu, caller=f.index > 0 and f.trust != "context")
            out["disassembly"] = [dict(i, address=f"{i['address']:#x}") for i in code]
            if not code:
                notes.append(f"the code at {f.instruction:#x} is not in the dump "
                             "(and no matching module file came with the evidence)")
        elif read is None:
            notes.append("a text trace holds no code: the trace lines are shown")
        elif rep.cpu not in ("x86", "amd64", "arm64"):
            notes.append(f"no disassembler for cpu {rep.cpu or 'unknown'}")
    out["notes"] = notes + list(rep.warnings[:20])
    return out


def _crash(rep: CrashReport) -> dict[str, Any]:
    exc = rep.exception
    ci = (rep.extra or {}).get("crashing_instruction") or {}
    return {"source_format": rep.source_format, "os": rep.os, "cpu": rep.cpu, "process": rep.process_name,
            "pid": rep.pid, "problem_class": rep.problem_class, "signature": rep.signature,
            "bucket_id": rep.bucket_id, "threads": len(rep.threads),
            "exception": ({"type": exc.type, "message": exc.message,
                           "address": f"{exc.address:#x}" if exc.address is not None else None,
                           "causes": [f"{c.type}: {c.message}" if c.message else c.type for c in exc.causes]}
                          if exc else None),
            "crashing_instruction": ci.get("text")}

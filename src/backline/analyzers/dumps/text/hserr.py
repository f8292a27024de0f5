"""JVM fatal error logs (``hs_err_pid*.log``) and their console summary.

The ``#`` header names the error - a signal (``SIGSEGV (0xb) at pc=...``), an
``Internal Error (file.cpp:123)`` (a VM assert/guarantee) or ``Out of Memory
Error`` (native memory) - plus JRE version and the problematic frame.  The
body has the current thread, ``siginfo``, its native frames (``C`` native,
``V`` VM, ``v`` stub, ``J`` compiled, ``j`` interpreted, ``A`` AOT) and the
thread list (``Java Threads`` / ``Other Threads``).

>>> rep = parse_hs_err(["#  SIGSEGV (0xb) at pc=0x1, pid=7, tid=8",
...                     "# Problematic frame:", "# C  [libc.so.6+0x10]  memcpy+0x2"])[0][1]
>>> (rep.exception.type, rep.extra["problematic_frame"])
('SIGSEGV', 'C  [libc.so.6+0x10]  memcpy+0x2')
"""

from __future__ import annotations

import re
from dataclasses import replace

from backline.analyzers.dumps.model import CrashException, CrashReport, CrashThread, StackFrame
from backline.analyzers.dumps.text.common import MAX_FRAMES

START = re.compile(r"^#\s*(A fatal error has been detected by the Java Runtime Environment|"
                   r"There is insufficient memory for the Java Runtime Environment)")
SIGNAL = re.compile(r"^#\s+(?P<sig>SIG[A-Z]+|EXCEPTION_[A-Z_]+) \((?P<code>0x[0-9a-fA-F]+)\) at "
                    r"pc=(?P<pc>0x[0-9a-fA-F]+), pid=(?P<pid>\d+), tid=(?P<tid>0x[0-9a-fA-F]+|\d+)")
INTERNAL = re.compile(r"^#\s+(?P<what>Internal Error|Out of Memory Error) \((?P<where>[^)]*)\)"
                      r"(?:, pid=(?P<pid>\d+), tid=(?P<tid>0x[0-9a-fA-F]+|\d+))?")
JRE = re.compile(r"^# JRE version:\s*(?P<text>.*?)\s*$")
VM = re.compile(r"^# Java VM:\s*(?P<text>.*?)\s*$")
CURRENT = re.compile(r'^Current thread \((?P<addr>0x[0-9a-f]+)\):\s+(?P<kind>\w+)(?: "(?P<name>[^"]*)")?'
                     r'.*?(?:id=(?P<id>\d+))')
SIGINFO = re.compile(r"^siginfo: si_signo: (?P<signo>\d+) \((?P<sig>\w+)\), si_code: (?P<code>-?\d+)"
                     r"(?: \((?P<cname>\w+)\))?(?:, si_addr: (?P<addr>0x[0-9a-f]+))?")
WIN_SIGINFO = re.compile(r"^siginfo: (?P<sig>EXCEPTION_\w+) \((?P<code>0x[0-9a-fA-F]+)\)"
                         r"(?:, (?P<access>reading|writing|execute|data execution prevention violation)"
                         r"(?: at)? address (?P<addr>0x[0-9a-fA-F]+))?")
FLAG = re.compile(r"^\s*(?:size_t|uintx|intx|uint64_t|bool|double|ccstr|ccstrlist|int|uint)\s+(?P<name>\w+)\s+"
                  r"[:]?= (?P<value>\S*)")
TIME_LINE = re.compile(r"^[Tt]ime: (?P<time>\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})(?: (?P<zone>[A-Za-z]{1,5}|[+-]\d{2}:?\d{0,2}))?")
ZONE_LINE = re.compile(r"^timezone: (?P<zone>\S+)")
COMMAND_LINE = re.compile(r"^(?:Command Line|jvm_args):\s*(?P<args>.*?)\s*$")
NATIVE = re.compile(r"^(?P<kind>[CVvJjA])\s+(?P<rest>.*)$")
NATIVE_LIB = re.compile(r"^\[(?P<mod>[^\]+]+)\+(?P<off>0x[0-9a-f]+)\]\s*(?P<func>.*?)(?:\+(?P<foff>0x[0-9a-f]+))?\s*$")
JAVA_METHOD = re.compile(r"^(?:\d+\s+)?(?:(?:C[12]|c[12]|JVMCI)\s+)?(?P<func>[\w$.<>/]+?)\(")
THREAD_ROW = re.compile(r'^(?P<cur>=>)?\s*0x[0-9a-f]+ (?P<kind>\w+)(?: "(?P<name>[^"]*)")?(?: daemon)?'
                        r'(?: \[(?P<state>_thread_\w+), id=(?P<id>\d+))?(?:.*\[id=(?P<id2>\d+)\])?')


def _frame(kind: str, rest: str) -> StackFrame:
    rest = rest.strip()
    if kind in "CV":
        m = NATIVE_LIB.match(rest)
        if m:
            return StackFrame(0, "text", module=m["mod"], module_offset=int(m["off"], 16),
                              function=m["func"] or None,
                              function_offset=int(m["foff"], 16) if m["foff"] else None)
        return StackFrame(0, "text", function=rest or None)
    if kind in "Jj":
        m = JAVA_METHOD.match(rest)
        func = m["func"] if m else rest.split(" ", 1)[0]
        return StackFrame(0, "text", function=func, language="java")
    return StackFrame(0, "text", function=rest.split(" ", 1)[0] or None)


def _problem(exc_type: str, problematic: str | None) -> str:
    if exc_type == "OutOfMemoryError":
        return "JVM_NATIVE_OOM"
    if exc_type == "InternalError":
        return "JVM_INTERNAL_ERROR"
    where = {"C": "NATIVE", "V": "JVM", "v": "JVM_STUB", "J": "JIT_CODE", "j": "INTERPRETED",
             "A": "AOT_CODE"}.get((problematic or " ")[0], "UNKNOWN")
    return f"JVM_{exc_type}_IN_{where}"


def parse_hs_err(lines: list[str], offset: int = 0) -> list[tuple[int, CrashReport]]:
    start = next((k for k, ln in enumerate(lines) if START.match(ln) or SIGNAL.match(ln)), None)
    if start is None:
        return []
    exc_type = "JVM_FATAL"
    message = ""
    code = pid = tid = None
    pc = None
    jre = vm = problematic = None
    extra: dict = {"line": offset + start + 1}
    current_id = current_name = None
    siginfo = None
    frames: list[StackFrame] = []
    java_frames = 0
    threads: list[CrashThread] = []
    current_idx = None
    section = None
    flags: dict[str, str] = {}
    i = start
    n = len(lines)
    while i < n:
        line = lines[i]
        if m := SIGNAL.match(line):
            exc_type, code, pc = m["sig"], int(m["code"], 16), int(m["pc"], 16)
            pid, tid = int(m["pid"]), m["tid"]
            message = line.lstrip("# ").strip()
        elif m := INTERNAL.match(line):
            exc_type = "InternalError" if m["what"] == "Internal Error" else "OutOfMemoryError"
            message = f"{m['what']} ({m['where']})"
            extra["error_location"] = m["where"]
            pid = int(m["pid"]) if m["pid"] else pid
            tid = m["tid"] or tid
            nxt = lines[i + 1].lstrip("# ").strip() if i + 1 < n else ""
            if nxt and not nxt.startswith(("JRE version", "Java VM")):
                extra["detail"] = nxt
        elif line.startswith("# Native memory allocation"):
            extra["detail"] = line.lstrip("# ").strip()
        elif m := JRE.match(line):
            jre = m["text"]
            vm_ver = re.search(r"\(([^()]*\d[^()]*)\)", jre)
            extra["jre_version"] = vm_ver.group(1) if vm_ver else jre
        elif m := VM.match(line):
            vm = m["text"]
        elif line.startswith("# Problematic frame:") and i + 1 < n:
            problematic = lines[i + 1].lstrip("#").strip()
        elif m := CURRENT.match(line):
            current_id, current_name = int(m["id"]), m["name"] or m["kind"]
            extra["current_thread_kind"] = m["kind"]
        elif m := SIGINFO.match(line):
            siginfo = m
        elif m := WIN_SIGINFO.match(line):
            extra["win_access"] = m["access"]
            if m["addr"]:
                extra["fault_address"] = int(m["addr"], 16)
        elif m := TIME_LINE.match(line):
            extra["time_text"] = m["time"]
            if m["zone"]:
                extra["timezone_text"] = m["zone"]
        elif m := ZONE_LINE.match(line):
            extra.setdefault("timezone_text", m["zone"])
        elif m := COMMAND_LINE.match(line):
            extra.setdefault("command_line", m["args"])
        elif (m := FLAG.match(line)) and len(flags) < 5_000:
            flags[m["name"]] = m["value"]
        elif line.startswith("Native frames:"):
            section = "native"
            i += 1
            continue
        elif line.startswith("Java frames:"):
            section = "java"
            i += 1
            continue
        elif line.startswith(("Java Threads:", "Other Threads:")):
            section = "threads"
            i += 1
            continue
        elif not line.strip():
            section = None if section in ("native", "java", "threads") else section
        elif section == "native" and (m := NATIVE.match(line)):
            if len(frames) < MAX_FRAMES:
                frames.append(replace(_frame(m["kind"], m["rest"]), index=len(frames)))
        elif section == "java" and NATIVE.match(line):
            java_frames += 1
        elif section == "threads" and (m := THREAD_ROW.match(line)):
            tid_s = m["id"] or m["id2"]
            t_id: int | str = int(tid_s) if tid_s else (m["name"] or m["kind"])
            if m["cur"]:
                current_idx = len(threads)
            threads.append(CrashThread(id=t_id, name=m["name"] or m["kind"], state=m["state"]))
        i += 1
    if current_id is not None:
        idx = next((k for k, t in enumerate(threads) if t.id == current_id), None)
        if idx is None:
            threads.insert(0, CrashThread(id=current_id, name=current_name))
            idx = 0
        current_idx = idx
    elif current_idx is None and frames:
        threads.insert(0, CrashThread(id=tid or "current", name=None))
        current_idx = 0
    if current_idx is not None:
        threads[current_idx] = replace(threads[current_idx], frames=tuple(frames), crashed=True)
    subcode = addr = None
    if siginfo is not None:
        subcode = siginfo["cname"]
        addr = int(siginfo["addr"], 16) if siginfo["addr"] else None
    elif "fault_address" in extra:
        subcode, addr = extra.get("win_access"), extra["fault_address"]
    if flags:
        extra["jvm_flags"] = flags
        for key, flag in (("heap_max_bytes", "MaxHeapSize"), ("code_cache_bytes", "ReservedCodeCacheSize")):
            if flags.get(flag, "").isdigit():
                extra[key] = int(flags[flag])
    exc = CrashException(type=exc_type, message=message, code=code, subcode=subcode, address=addr,
                         thread=threads[current_idx].id if current_idx is not None else None,
                         frames=tuple(frames))
    extra.update({"problematic_frame": problematic, "java_vm": vm, "jre": jre, "pc": pc,
                  "java_frames": java_frames, "tid": tid, "end_line": offset + n})
    top = problematic or (frames[0].display() if frames else None)
    sig_frame = None
    if frames:
        f0 = frames[0]
        sig_frame = f0.function or f0.display()
        if f0.module:
            sig_frame = f"{f0.module}!{f0.function}" if f0.function else f"{f0.module}+{f0.module_offset:#x}"
    elif problematic:
        sig_frame = problematic
    signature = " | ".join(p for p in (exc_type, extra.get("error_location"), sig_frame) if p)
    rep = CrashReport(source_format="hs_err", threads=tuple(threads), exception=exc,
                      crashing_thread=current_idx, os=None, pid=pid,
                      process_name="java", problem_class=_problem(exc_type, top),
                      blamed_frame=0 if frames else None, signature=signature, extra=extra)
    return [(offset + start + 1, rep)]

"""Java stack traces (``Caused by``, ``Suppressed``, ``... N more``) and jstack thread dumps.

A trace starts with ``[Exception in thread "x" ]pkg.Type[: message]`` followed
by ``\\tat pkg.Class.method(File.java:12)`` frames; ``Caused by:`` and (indented)
``Suppressed:`` start nested traces; ``... N more`` says the last N frames are
the same as the enclosing trace's (they are not repeated: ``elided`` counts them).

jstack dumps (``Full thread dump ...``) become one report with a thread per
``"name" #12 ... nid=0x84a ...`` block; ``- waiting to lock <0x..>`` and
``- locked <0x..>`` lines give each thread's wait and holds, from which
:func:`~backline.analyzers.dumps.hang.find_deadlocks` builds the lock graph.
The JVM's own "Found one Java-level deadlock" section is kept in ``extra``.

>>> reps = parse_java_traces(["java.lang.IllegalStateException: boom",
...                           "\\tat a.B.c(B.java:3)", "\\tat a.B.main(B.java:9)"])
>>> [(r.exception.type, len(r.exception.frames)) for _, r in reps]
[('java.lang.IllegalStateException', 2)]
"""

from __future__ import annotations

import re
from dataclasses import replace

from backline.analyzers.dumps.hang import find_deadlocks
from backline.analyzers.dumps.model import CrashException, CrashReport, CrashThread, StackFrame, WaitInfo
from backline.analyzers.dumps.text.common import MAX_FRAMES, finish, renumber

TYPE = r"(?:[a-zA-Z_$][\w$]*\.)+[A-Z_$][\w$]*"
HEAD = re.compile(rf'^(?:Exception in thread "(?P<thread>[^"]*)" )?(?P<type>{TYPE})(?::\s?(?P<msg>.*))?$')
IN_LOG_LINE = re.compile(rf'(?:^|[\s:\]])(?:Exception in thread "(?P<thread>[^"]*)" )?'
                         rf'(?P<type>(?:[a-zA-Z_$][\w$]*\.)+[A-Z_$][\w$]*(?:Exception|Error|Throwable))'
                         rf'(?::\s?(?P<msg>.*))?$')
NESTED = re.compile(rf"^(?P<indent>\s*)(?P<kind>Caused by|Suppressed): (?P<type>{TYPE})(?::\s?(?P<msg>.*))?$")
FRAME = re.compile(r"^\s*at (?:(?P<loader>[\w.$-]+(?:@[\w.+-]+)?)/+(?!0x))?(?P<func>[\w$.<>/\-\[\]]+?)"
                   r"\((?P<src>(?:[\w.$@+-]+/)*(?:[\w$.-]+\.(?:java|kt|kts|scala|groovy|clj)(?::\d+)?|"
                   r"Native Method|Unknown Source|Compiled Code|Unknown|<generated>))\)"
                   r"\s*(?:~?\[[^\]]*\])?\s*$")
MORE = re.compile(r"^\s*\.\.\. (?P<n>\d+) (?:more|common frames omitted)\s*$")
JSTACK_START = re.compile(r"^Full thread dump ")
JSTACK_THREAD = re.compile(r'^"(?P<name>(?:[^"\\]|\\.)*)"(?: #(?P<num>\d+))?')
OWNED_LINE = re.compile(r"^\s*- <(?P<addr>0x[0-9a-f]+)>(?: \(a (?P<cls>[^)]+)\))?")
JSTACK_STATE = re.compile(r"^\s*java\.lang\.Thread\.State: (?P<state>\w+)")
LOCK_LINE = re.compile(r"^\s*- (?P<what>waiting to lock|locked|waiting on|parking to wait for|"
                       r"eliminated|waiting to re-lock in wait\(\))\s*<(?P<addr>0x[0-9a-f]+)>"
                       r"(?: \(a (?P<cls>[^)]+)\))?")


def parse_frame(line: str) -> StackFrame | None:
    """One ``at ...`` line as a :class:`StackFrame` (``index`` 0)."""
    m = FRAME.match(line)
    if not m:
        return None
    src = m["src"]
    module = m["loader"]
    if "/" in src:                                   # jstack: (java.base@17/Thread.java:840)
        module, src = src.rsplit("/", 1)
    file = line_no = None
    if ":" in src:
        f, _, ln = src.rpartition(":")
        file = f
        line_no = int(ln) if ln.isdigit() else None
    elif src and src not in ("Native Method", "Unknown Source"):
        file = src
    return StackFrame(0, "text", module=module, function=m["func"], file=file, line=line_no,
                      language="java")


def _read_frames(lines: list[str], i: int, indent: int) -> tuple[list[StackFrame], int, int]:
    frames: list[StackFrame] = []
    elided = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        f = parse_frame(line)
        if f is not None:
            if len(frames) < MAX_FRAMES:
                frames.append(f)
            i += 1
            continue
        m = MORE.match(line)
        if m:
            elided = int(m["n"])
            i += 1
            continue
        if LOCK_LINE.match(line):
            i += 1
            continue
        break
    return frames, elided, i


def _read_exception(lines: list[str], i: int, indent: int, depth: int = 0):
    """Read frames after a header at ``lines[i-1]``; then nested Caused by / Suppressed."""
    frames, elided, i = _read_frames(lines, i, indent)
    causes: list[CrashException] = []
    n = len(lines)
    while i < n and depth < 50:
        m = NESTED.match(lines[i])
        if not m:
            break
        ind = len(m["indent"].expandtabs(4))
        if m["kind"] == "Suppressed" and ind <= indent:
            break
        if m["kind"] == "Caused by" and ind < indent:
            break
        if m["kind"] == "Caused by" and ind > indent:
            break
        sub, i = _read_exception(lines, i + 1, ind, depth + 1)
        sub = replace(sub, type=m["type"], message=(m["msg"] or "").strip(),
                      relation="cause" if m["kind"] == "Caused by" else "suppressed")
        if sub.relation == "cause":
            # Caused by: chain continues; its own causes follow it flat (outermost first)
            causes.append(replace(sub, causes=()))
            causes.extend(sub.causes)
            break
        causes.append(sub)
    exc = CrashException(type="", frames=renumber(frames), causes=tuple(causes))
    return (exc if not elided else replace(exc, subcode=f"elided:{elided}")), i


def parse_java_traces(lines: list[str], offset: int = 0) -> list[tuple[int, CrashReport]]:
    out: list[tuple[int, CrashReport]] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        m = HEAD.match(line.strip()) if line[:1] not in (" ", "\t") else None
        if m is None and i + 1 < n and line[:1] not in (" ", "\t") and parse_frame(lines[i + 1]):
            m = IN_LOG_LINE.search(line)          # "10:00:01 ERROR [main] failed: java.io.IOException: x"
        if not m or i + 1 >= n or parse_frame(lines[i + 1]) is None:
            i += 1
            continue
        start = i
        exc, i = _read_exception(lines, i + 1, 0)
        exc = replace(exc, type=m["type"], message=(m["msg"] or "").strip(),
                      thread=m["thread"] or "main")
        thread = CrashThread(id=m["thread"] or "main", name=m["thread"], frames=exc.frames, crashed=True)
        rep = CrashReport(source_format="java", threads=(thread,), exception=exc, crashing_thread=0,
                          extra={"line": offset + start + 1, "end_line": offset + i})
        out.append((offset + start + 1, finish(rep)))
        if i == start:
            i += 1
    return out


def parse_jstack(lines: list[str], offset: int = 0) -> list[tuple[int, CrashReport]]:
    out: list[tuple[int, CrashReport]] = []
    i = 0
    n = len(lines)
    while i < n:
        if not JSTACK_START.match(lines[i]):
            i += 1
            continue
        start = i
        header = lines[i].strip()
        stamp = lines[i - 1].strip() if i > 0 and re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$",
                                                             lines[i - 1].strip()) else None
        i += 1
        threads: list[CrashThread] = []
        jvm_deadlocks: list[list[str]] = []
        while i < n:
            line = lines[i]
            if line.startswith("Found one Java-level deadlock"):
                i += 1
                cycle: list[str] = []
                while i < n and not lines[i].startswith(("Java stack information", "Found ")):
                    mm = re.match(r'^"([^"]*)":\s*$', lines[i])
                    if mm:
                        cycle.append(mm[1])
                    i += 1
                jvm_deadlocks.append(cycle)
                continue
            if line.startswith("Java stack information"):
                i += 1
                while i < n and not lines[i].startswith("Found "):
                    i += 1
                continue
            if JSTACK_START.match(line) or (line.startswith("Found ") and "deadlock" in line):
                if JSTACK_START.match(line):
                    break
                i += 1
                continue
            tm = JSTACK_THREAD.match(line) if line.startswith('"') else None
            if not tm:
                i += 1
                continue
            i += 1
            state = None
            frames: list[StackFrame] = []
            wait = None
            holds: list[str] = []
            in_owned = False
            while i < n and not lines[i].startswith('"'):
                sl = lines[i]
                if not sl.strip():
                    # a blank line ends the block unless jstack -l's lock list follows
                    if i + 1 < n and lines[i + 1].strip().startswith("Locked ownable synchronizers"):
                        i += 1
                        continue
                    break
                if sl.strip().startswith("Locked ownable synchronizers"):
                    in_owned = True
                    i += 1
                    continue
                om = OWNED_LINE.match(sl) if in_owned else None
                if om:
                    holds.append(f"lock:<{om['addr']}>")
                    i += 1
                    continue
                sm = JSTACK_STATE.match(sl)
                if sm:
                    state = sm["state"]
                f = parse_frame(sl)
                if f is not None and len(frames) < MAX_FRAMES:
                    frames.append(replace(f, index=len(frames)))
                lm = LOCK_LINE.match(sl)
                if lm:
                    res_key = f"monitor:<{lm['addr']}>"
                    fn = frames[-1].function if frames else None
                    if lm["what"] == "locked":
                        holds.append(res_key)
                    elif lm["what"] == "waiting to lock" and wait is None:
                        wait = WaitInfo("monitor", res_key, function=fn)
                    elif lm["what"] == "waiting on" and wait is None:
                        wait = WaitInfo("wait", res_key, function=fn)
                    elif lm["what"] == "parking to wait for" and wait is None:
                        wait = WaitInfo("lock", f"lock:<{lm['addr']}>", function=fn)
                i += 1
            nm = re.search(r" nid=(0x[0-9a-fA-F]+|\d+)", line)
            nid = nm.group(1) if nm else None
            tid: int | str = int(nid, 16) if nid and nid.startswith("0x") else (int(nid) if nid else tm["name"])
            holds = [h for h in holds if not (wait and wait.kind == "wait" and h == wait.resource)]
            # Object.wait() gives up the monitor: it is neither held nor a lock wait
            threads.append(CrashThread(id=tid, name=tm["name"], frames=tuple(frames), state=state,
                                       wait=wait if wait and wait.kind in ("monitor", "lock") else None,
                                       holds=tuple(dict.fromkeys(holds))))
        if threads:
            deadlocks = tuple(find_deadlocks(threads))
            rep = CrashReport(source_format="jstack", threads=tuple(threads), deadlocks=deadlocks,
                              problem_class="DEADLOCK" if deadlocks else "HANG",
                              extra={"line": offset + start + 1, "end_line": offset + i,
                                     "jvm": header, "jvm_deadlocks": jvm_deadlocks,
                                     **({"time_text": stamp} if stamp else {})})
            names = {t.id: t.name for t in threads}
            sig = None
            if deadlocks:
                sig = "deadlock | " + " | ".join(sorted(str(names.get(t)) for t in deadlocks[0].threads))
            out.append((offset + start + 1, replace(finish(rep), signature=sig)))
        if i == start:
            i += 1
    return out

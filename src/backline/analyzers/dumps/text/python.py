"""CPython tracebacks (with ``__cause__``/``__context__`` chains) and faulthandler dumps.

A traceback is ``Traceback (most recent call last):``, frames
``  File "x.py", line 3, in f`` (each maybe followed by the source line and,
since 3.11, a caret line), and the exception line ``Type: message``.  Chained
tracebacks are separated by "The above exception was the direct cause of the
following exception:" (``cause``) or "During handling of the above exception,
another exception occurred:" (``context``); the last one printed is the one
that ended the program.  faulthandler prints ``Thread 0x... (most recent call
first):`` blocks with ``  File "x.py", line 3 in f``.

>>> r = parse_python(['Traceback (most recent call last):',
...                   '  File "a.py", line 2, in <module>', '    f()',
...                   'ZeroDivisionError: division by zero'])
>>> [(rep.exception.type, len(rep.exception.frames)) for _, rep in r]
[('ZeroDivisionError', 1)]
"""

from __future__ import annotations

import re
from dataclasses import replace

from backline.analyzers.dumps.model import CrashException, CrashReport, CrashThread, StackFrame, WaitInfo
from backline.analyzers.dumps.text.common import MAX_FRAMES, finish, renumber

GROUP_START = re.compile(r"^(?P<indent>\s*)\+ Exception Group Traceback \(most recent call last\):\s*$")
GROUP_NESTED = re.compile(r"^Exception Group Traceback \(most recent call last\):\s*$")
GROUP_SEP = re.compile(r"^\s*\+-(?:\+-)?-*(?: (?P<num>\d+|\.\.\.) -+)?\s*$")
TB_START = re.compile(r"^\s*Traceback \(most recent call last\):\s*$")
TB_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.+?))?\s*$')
FH_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+) in (?P<func>.+?)\s*$')
FH_THREAD = re.compile(r"^(?P<cur>Current thread|Thread|Stack)(?: (?P<id>0x[0-9a-fA-F]+|\d+))?"
                       r"(?: \"(?P<name>[^\"]*)\")? \(most recent call first\):\s*$")
FH_HEADER = re.compile(r"^(Fatal Python error: (?P<err>.*)|Timeout \((?P<timeout>[^)]*)\)!)\s*$")
CARET = re.compile(r"^\s*[\^~]+\s*$")
EXC_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|"
                      r"Iteration|Group|[A-Z]\w*))(?::\s?(?P<msg>.*))?$")
FATAL_ERRORS = {"Segmentation fault": "SIGSEGV", "Aborted": "SIGABRT", "Bus error": "SIGBUS",
                "Floating point exception": "SIGFPE", "Illegal instruction": "SIGILL"}
CAUSE = "The above exception was the direct cause of the following exception:"
CONTEXT = "During handling of the above exception, another exception occurred:"


def _read_tb(lines: list[str], i: int) -> tuple[CrashException | None, int]:
    """Read one traceback starting at ``lines[i]`` (the Traceback line); return (exception, next i)."""
    start = i
    i += 1
    frames: list[StackFrame] = []
    n = len(lines)
    while i < n:
        line = lines[i]
        m = TB_FRAME.match(line)
        if m:
            if len(frames) < MAX_FRAMES:
                frames.append(StackFrame(0, "text", function=m["func"], file=m["file"],
                                         line=int(m["line"]), language="python"))
            i += 1
            continue
        if line.startswith((" ", "\t")) or CARET.match(line) or not line.strip():
            if not line.strip() and i + 1 < n and not lines[i + 1].startswith((" ", "\t")):
                i += 1
                continue
            i += 1
            continue
        break
    if i >= n:
        return None, i
    m = EXC_LINE.match(lines[i].strip())
    if not m:
        return None, i
    frames.reverse()
    msg, i = _message_lines((m["msg"] or "").strip(), lines, i + 1)
    exc = CrashException(type=m["type"], message=msg, frames=renumber(frames))
    _ = start
    return exc, i


#: Lines and characters of an exception message kept past its first line
#: (``yaml.scanner.ScannerError: while scanning ...`` / ``found character '\t' that cannot start any token``).
MAX_MESSAGE_LINES = 6
MAX_MESSAGE_CHARS = 800
#: a line that is not a message's continuation: a time stamp or bracket starting a new record
_NEW_RECORD = re.compile(r"^\s*(?:\[?\d{2,4}[-/:.]\d\d|[IWEF]\d{4} \d\d:)")


def _message_lines(first: str, lines: list[str], i: int) -> tuple[str, int]:
    """An exception message and the lines that continue it (up to a blank line, the next
    traceback, a chain separator or a line that starts a new record; bounded by
    :data:`MAX_MESSAGE_LINES` and :data:`MAX_MESSAGE_CHARS`); the message's lines joined by
    newlines, and the index after them."""
    parts = [first] if first else []
    size = len(first)
    n = len(lines)
    while i < n and len(parts) < MAX_MESSAGE_LINES + 1:
        line = lines[i]
        text = line.strip()
        if (not text or TB_START.match(line) or GROUP_START.match(line) or GROUP_NESTED.match(line)
                or text in (CAUSE, CONTEXT) or _NEW_RECORD.match(line) or FH_HEADER.match(text)
                or size + len(text) > MAX_MESSAGE_CHARS):
            break
        parts.append(line.rstrip())
        size += len(text)
        i += 1
    return "\n".join(parts), i


def _at(line: str, col: int, ch: str) -> bool:
    return len(line) > col and line[col] == ch and line[:col].strip() == ""


def _read_group(lines: list[str], i: int, col: int | None = None,
                depth: int = 0) -> tuple[CrashException | None, int]:
    """An ``ExceptionGroup`` traceback (3.11 box drawing) whose header is ``lines[i]``.

    The header is ``+ Exception Group Traceback ...`` (outermost) or ``| Exception
    Group Traceback ...`` (a group inside a group) at column ``col``; the group's own
    traceback follows on ``|`` lines at ``col``.  Its sub-exceptions follow
    separators (``+-+--- 1 ---`` at ``col``, then ``+--- k ---`` two columns in), each
    on ``|`` lines two columns in, and the last separator has no number.  Sub-exceptions
    become ``causes`` with relation ``group``.
    """
    if col is None:
        m = GROUP_START.match(lines[i])
        col = len(m["indent"])
    n = len(lines)
    own = ["Traceback (most recent call last):"]
    j = i + 1
    while j < n and _at(lines[j], col, "|"):
        own.append(lines[j][col + 2:])
        j += 1
    exc, _ = _read_tb(own, 0)
    if exc is None:
        return None, j
    subs: list[CrashException] = []
    sc = col + 2
    first = True
    while j < n and depth < 20:
        line = lines[j]
        sep = GROUP_SEP.match(line)
        if not sep or not (_at(line, col, "+") if first else _at(line, sc, "+")):
            break
        first = False
        j += 1
        if sep["num"] is None:
            break                                   # closing separator
        if j < n and _at(lines[j], sc, "|") and GROUP_NESTED.match(lines[j][sc + 2:]):
            sub, j = _read_group(lines, j, sc, depth + 1)
        else:
            body: list[str] = []
            while j < n and _at(lines[j], sc, "|"):
                body.append(lines[j][sc + 2:])
                j += 1
            sub = _sub_exception(body)
        if sub is not None:
            subs.append(replace(sub, relation="group", thread=None))
    return replace(exc, causes=tuple(subs)), j


def _sub_exception(body: list[str]) -> CrashException | None:
    """A group member: a (chained) traceback, or a bare ``Type: message`` line."""
    reps = parse_python(body)
    if reps:
        return reps[-1][1].exception
    for line in body:
        m = EXC_LINE.match(line.strip())
        if m and not line.startswith(" "):
            return CrashException(type=m["type"], message=(m["msg"] or "").strip())
    return None


def parse_python(lines: list[str], offset: int = 0) -> list[tuple[int, CrashReport]]:
    """Every (chained) traceback in ``lines``; first element is the 1-based start line."""
    out: list[tuple[int, CrashReport]] = []
    i = 0
    n = len(lines)
    while i < n:
        if GROUP_START.match(lines[i]):
            start = i
            exc, i = _read_group(lines, i)
            if exc is None:
                i = start + 1
                continue
            exc = replace(exc, thread="main")
            rep = CrashReport(source_format="python", threads=(CrashThread("main", exc.frames, crashed=True),),
                              exception=exc, crashing_thread=0,
                              extra={"line": offset + start + 1, "end_line": offset + i})
            out.append((offset + start + 1, finish(rep)))
            continue
        if not TB_START.match(lines[i]):
            i += 1
            continue
        ind = len(lines[i]) - len(lines[i].lstrip())
        if ind:
            # a traceback indented as a whole (quoted in a ticket, logged with a margin):
            # read the block without its margin
            margin = lines[i][:ind]
            j = i
            while j < n and (lines[j].startswith(margin) or not lines[j].strip()):
                j += 1
            while j > i and not lines[j - 1].strip():
                j -= 1
            inner = parse_python([ln[ind:] for ln in lines[i:j]], offset + i)
            if inner:
                out.extend(inner)
                i = j
            else:
                i += 1
            continue
        start = i
        chain: list[tuple[CrashException, str | None]] = []
        relation: str | None = None
        while i < n and TB_START.match(lines[i]):
            exc, i = _read_tb(lines, i)
            if exc is None:
                break
            chain.append((exc, relation))
            relation = None
            j = i
            while j < n and not lines[j].strip():
                j += 1
            if j < n and lines[j].strip() in (CAUSE, CONTEXT):
                relation = "cause" if lines[j].strip() == CAUSE else "context"
                j += 1
                while j < n and not lines[j].strip():
                    j += 1
                if j < n and TB_START.match(lines[j]):
                    i = j
                    continue
            break
        if not chain:
            i = start + 1
            continue
        # the last printed exception is the outer one; each earlier one is its cause/context
        exc_list = [e for e, _ in chain]
        rels = [r for _, r in chain]
        causes = []
        for k in range(len(exc_list) - 2, -1, -1):
            causes.append(replace(exc_list[k], relation=rels[k + 1]))
        top = replace(exc_list[-1], causes=tuple(causes), thread="main")
        thread = CrashThread(id="main", frames=top.frames, crashed=True)
        rep = CrashReport(source_format="python", threads=(thread,), exception=top,
                          crashing_thread=0, extra={"line": offset + start + 1,
                                                    "end_line": offset + i})
        out.append((offset + start + 1, finish(rep)))
    return out


def parse_faulthandler(lines: list[str], offset: int = 0) -> list[tuple[int, CrashReport]]:
    """faulthandler dumps: a header (optional) and one block per thread."""
    out: list[tuple[int, CrashReport]] = []
    i = 0
    n = len(lines)
    while i < n:
        hm = FH_HEADER.match(lines[i].strip())
        tm = FH_THREAD.match(lines[i].strip())
        if not hm and not tm:
            i += 1
            continue
        start = i
        error = hm["err"] if hm and hm["err"] else None
        timeout = hm["timeout"] if hm and hm["timeout"] else None
        if hm:
            i += 1
            while i < n and not FH_THREAD.match(lines[i].strip()) and i - start < 5:
                i += 1
        threads: list[CrashThread] = []
        current = None
        while i < n:
            tm = FH_THREAD.match(lines[i].strip())
            if not tm:
                if not lines[i].strip():
                    i += 1
                    if i < n and FH_THREAD.match(lines[i].strip()):
                        continue
                break
            i += 1
            frames: list[StackFrame] = []
            while i < n and FH_FRAME.match(lines[i]):
                m = FH_FRAME.match(lines[i])
                if len(frames) < MAX_FRAMES:
                    frames.append(StackFrame(len(frames), "text", function=m["func"], file=m["file"],
                                             line=int(m["line"]), language="python"))
                i += 1
            tid = tm["id"] or "current"      # "Stack (...)": the one thread dumped (all_threads=False)
            wait = None
            if frames and frames[0].function in ("_wait_for_tstate_lock", "join") and \
                    frames[0].file and frames[0].file.endswith("threading.py"):
                wait = WaitInfo("join", "thread:?", function=frames[0].function)
            if tm["cur"] in ("Current thread", "Stack"):
                current = len(threads)
            threads.append(CrashThread(id=tid, name=tm["name"], frames=tuple(frames),
                                       crashed=tm["cur"] in ("Current thread", "Stack") and error is not None,
                                       wait=wait, state="waiting" if wait else None))
        if not threads:
            i = start + 1
            continue
        exc = None
        if error:
            exc = CrashException(type=FATAL_ERRORS.get(error.strip(), error.strip()),
                                 message=error, thread=threads[current].id if current is not None else None,
                                 frames=threads[current].frames if current is not None else ())
        rep = CrashReport(source_format="faulthandler", threads=tuple(threads), exception=exc,
                          crashing_thread=current if error else None,
                          problem_class="HANG" if timeout is not None else None,
                          extra={"line": offset + start + 1, "end_line": offset + i,
                                 "timeout": timeout, "fatal_error": error})
        rep = finish(rep)
        if exc is None:
            rep = replace(rep, signature=_hang_signature(threads))
        out.append((offset + start + 1, rep))
    return out


def _hang_signature(threads: list[CrashThread]) -> str | None:
    tops = sorted({t.frames[0].function or "?" for t in threads if t.frames})
    return ("hang | " + " | ".join(tops[:3])) if tops else None

""".NET exceptions (CoreCLR and Mono) with inner exceptions.

``Outer: msg ---> Inner: msg ---> Innermost: msg`` (Mono on one line, CoreCLR
one `` ---> `` per line), then frames: the innermost exception's first, each
inner block closed by ``--- End of inner exception stack trace ---``.
Frame syntaxes: CoreCLR ``at Ns.Type.Method(String s) in /x/File.cs:line 14``
and Mono ``at Ns.Type.Method (System.String s) [0x00016] in /x/File.cs:14``.

>>> reps = parse_dotnet(["Unhandled exception. System.Exception: boom",
...                      "   at Program.Main(String[] args) in /src/Program.cs:line 5"])
>>> e = reps[0][1].exception
>>> (e.type, e.frames[0].function, e.frames[0].line)
('System.Exception', 'Program.Main', 5)
"""

from __future__ import annotations

import re
from dataclasses import replace

from backline.analyzers.dumps.model import CrashException, CrashReport, CrashThread, StackFrame
from backline.analyzers.dumps.text.common import MAX_FRAMES, finish, renumber

TYPE = r"(?:[A-Za-z_][\w`]*\.)+\w*(?:Exception|Error|Fault)\b"
EXC = re.compile(rf"(?P<type>{TYPE})(?::\s?(?P<msg>.*?))?(?= ---> |$)")
HEAD = re.compile(rf"^(?P<prefix>\s*(?:Unhandled [Ee]xception[.:]?\s*|\[ERROR\] FATAL UNHANDLED EXCEPTION:\s*)?)"
                  rf"(?P<rest>{TYPE}(?::.*)?)$")
IN_LOG_LINE = re.compile(rf"(?:^|[\s\]])(?P<rest>{TYPE}(?::.*)?)$")
INNER_LINE = re.compile(r"^\s*---> (?P<rest>.*)$")
END_INNER = re.compile(r"^\s*--- End of inner exception stack trace ---\s*$")
END_OTHER = re.compile(r"^\s*--- End of stack trace from previous location.*---\s*$")
FRAME = re.compile(r"^\s+at (?P<func>(?:\(wrapper [^)]*\) )?[^\s(][^(]*?) ?\((?P<args>[^)]*)\)"
                   r"(?: \[0x[0-9a-fA-F]+\])?(?: in (?P<file>.+?):(?:line )?(?P<line>\d+))?"
                   r"(?: in <[0-9a-f]+>:\d+)?\s*$")


def _chain(text: str) -> list[tuple[str, str]]:
    out = []
    for part in text.split(" ---> "):
        part = re.sub(r"^\s*(?:---> )?\(Inner Exception #\d+\)\s*", "", part)
        m = re.match(rf"^\s*(?P<type>{TYPE})(?::\s?(?P<msg>.*))?$", part.strip())
        if m:
            out.append((m["type"], (m["msg"] or "").strip()))
    return out


#: Java frame sources, e.g. ``(Foo.java:12)``, ``(Native Method)``: not .NET argument lists.
JAVA_SOURCE = re.compile(r"^(?:[\w.$@+-]+/)*(?:[\w$.-]+\.(?:java|kt|kts|scala|groovy|clj)(?::\d+)?|"
                         r"Native Method|Unknown Source|Compiled Code|Unknown|<generated>)$")


def parse_frame(line: str) -> StackFrame | None:
    m = FRAME.match(line)
    if not m or JAVA_SOURCE.match(m["args"].strip()):
        return None
    file = m["file"]
    if file and file.startswith("<") and file.endswith(">"):
        file = None
    return StackFrame(0, "text", function=m["func"].strip(), file=file,
                      line=int(m["line"]) if m["line"] and file else None, language="dotnet")


def parse_dotnet(lines: list[str], offset: int = 0) -> list[tuple[int, CrashReport]]:
    out: list[tuple[int, CrashReport]] = []
    i = 0
    n = len(lines)
    while i < n:
        hm = HEAD.match(lines[i])
        if not hm and i + 1 < n and (parse_frame(lines[i + 1]) or INNER_LINE.match(lines[i + 1])):
            hm = IN_LOG_LINE.search(lines[i])     # a log line ending in "System.X: message"
        if not hm:
            i += 1
            continue
        start = i
        chain = _chain(hm["rest"])
        j = i + 1
        while j < n and INNER_LINE.match(lines[j]):
            chain += _chain(INNER_LINE.match(lines[j])["rest"])
            j += 1
        if not chain or j >= n or parse_frame(lines[j]) is None:
            i += 1
            continue
        blocks: list[list[StackFrame]] = [[]]
        while j < n:
            line = lines[j]
            f = parse_frame(line)
            if f is not None:
                if len(blocks[-1]) < MAX_FRAMES:
                    blocks[-1].append(f)
            elif END_INNER.match(line):
                blocks.append([])
            elif not END_OTHER.match(line):
                break
            j += 1
        # blocks are innermost exception first; chain is outermost first
        excs = []
        for k, (typ, msg) in enumerate(chain):
            b = len(blocks) - 1 - k
            frames = blocks[b] if 0 <= b < len(blocks) else []
            excs.append(CrashException(type=typ, message=msg, frames=renumber(frames),
                                       relation="inner" if k else None))
        top = replace(excs[0], causes=tuple(excs[1:]), thread="main")
        all_frames = [f for b in blocks for f in b]
        thread = CrashThread(id="main", frames=renumber(all_frames) if all_frames else (), crashed=True)
        rep = CrashReport(source_format="dotnet", threads=(thread,), exception=top, crashing_thread=0,
                          extra={"line": offset + start + 1, "end_line": offset + j,
                                 "runtime": "mono" if any("[0x" in ln for ln in lines[start:j]) else "coreclr"})
        rep = finish(rep)
        innermost = top.causes[-1] if top.causes else top
        parts = [top.type] + ([innermost.type] if innermost is not top else [])
        parts += [f.function or "?" for f in innermost.frames[:3]]
        rep = replace(rep, signature=" | ".join(parts))
        if out and out[-1][1].signature == rep.signature and out[-1][1].extra.get("end_line") is not None \
                and _same(out[-1][1], rep):
            # Mono prints the same exception twice ("Unhandled Exception:" and "[ERROR] FATAL ...")
            prev = out[-1][1]
            out[-1] = (out[-1][0], replace(prev, extra={**prev.extra, "end_line": offset + j,
                                                        "repeated_at": offset + start + 1}))
        else:
            out.append((offset + start + 1, rep))
        i = max(j, i + 1)
    return out


def _same(a: CrashReport, b: CrashReport) -> bool:
    ea, eb = a.exception, b.exception
    return (ea is not None and eb is not None and ea.type == eb.type and ea.message == eb.message
            and len(a.threads[0].frames) == len(b.threads[0].frames))

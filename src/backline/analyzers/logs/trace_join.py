"""Stack traces whose every line is a log record of its own.

Android logcat writes a crash as one record per trace line
(``E AndroidRuntime: FATAL EXCEPTION: main``, ``E AndroidRuntime: \\tat ...``),
and syslog forwards a Java or Python trace the same way (one
``host app[pid]: ...`` line each, tabs often escaped as ``#011``).
:class:`TraceJoiner` is fed the single-line records of a log in file order and
joins consecutive records of the same source (host, component, pid, thread)
whose messages form a stack trace: a head (``FATAL EXCEPTION``, ``Exception in
thread``, ``java.lang.X: ...``, ``Traceback (most recent call last):``)
followed by frames (``at ...``, ``File "..."``), ``Caused by:`` and
``... N more`` lines.  Records of other sources may come in between (logcat
interleaves processes); a group that gets no line for :data:`STALE` records is
closed (counted in log lines).  A closed group with at least one frame is a :class:`JoinedTrace`:
its messages as one trace text (frame indentation restored) and the log line
of each of its lines, for ``line:N`` references.

>>> j, done = TraceJoiner(), []
>>> rows = [(1, "AndroidRuntime", "12", "FATAL EXCEPTION: main"),
...         (2, "ActivityManager", "7", "Process com.x died"),
...         (3, "AndroidRuntime", "12", "java.lang.IllegalStateException: boom"),
...         (4, "AndroidRuntime", "12", "at com.x.Main.run(Main.java:5)"),
...         (5, "AndroidRuntime", "12", "Shutting down VM")]
>>> for n, comp, pid, msg in rows:
...     j.feed(n, ("", comp, pid, ""), msg, None, None, done)
>>> [(t.lines, t.text.splitlines()[-1]) for t in done]
[([1, 3, 4], '\\tat com.x.Main.run(Main.java:5)')]
"""

from __future__ import annotations

import numpy as np

import re
from dataclasses import dataclass, field
from datetime import datetime

from backline.model import TsQuality

#: Log lines after which a group that got no line is closed.
STALE = 200
#: Lines and characters kept per joined trace (a runaway group is closed there).
MAX_LINES = 1024
MAX_CHARS = 256 * 1024
#: Lines between logcat's ``FATAL EXCEPTION`` head and the first frame (``Process: ...``, the exception line).
MAX_PREAMBLE = 3
#: Records joined to a Python exception line as its message's continuation (same time stamp).
MAX_MESSAGE_LINES = 6
#: Open groups at once (sources with a trace in progress); past that the oldest closes.
MAX_OPEN = 256

#: Words a head message must contain (a cheap test before the regular expressions).
MARKERS = ("Exception", "Error", "Throwable", "Traceback", "EXCEPTION")

_JAVA_HEAD = re.compile(r"(?:FATAL EXCEPTION:|Exception in thread \"|(?:[\w$]+\.)+[\w$]*"
                        r"(?:Exception|Error|Throwable)(?::|$))")
_PY_HEAD = re.compile(r"Traceback \(most recent call last\):\s*$")
_FRAME = re.compile(r"at [\w$.<>/`\[\],]+ ?\(")
_JAVA_CONT = re.compile(r"(?:Caused by:|Suppressed:|\.\.\. \d+ (?:more|common frames omitted)|"
                        r"(?:[\w$]+\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$)|--- End of)")
_PY_FILE = re.compile(r"File \"")
_PY_MARK = re.compile(r"[\^~]+$")
_PY_CHAIN = re.compile(r"(?:During handling of the above exception|The above exception was the direct "
                       r"cause|Traceback \(most recent call last\):)")


@dataclass(frozen=True, slots=True)
class JoinedTrace:
    """One stack trace made of several log records."""

    text: str                       # the records' messages, one trace line each
    lines: list[int]                # log line of each trace line
    ts: datetime | None             # time stamp of the first record
    ts_quality: TsQuality | None


@dataclass(slots=True)
class _Group:
    kind: str                       # "java" or "python"
    ts: datetime | None
    quality: TsQuality | None
    texts: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    frames: int = 0
    seen: int = 0                   # log line where it last grew
    chars: int = 0
    state: str = ""                 # python: "frames", "code", "exc"
    preamble: bool = False          # a head before the exception line (logcat FATAL EXCEPTION)
    exc_ts: datetime | None = None  # python: time stamp of the exception line
    msg_lines: int = 0              # python: lines continuing the exception's message


def _unescape(msg: str) -> str:
    """Undo syslog's control-character escape (``#011`` = tab)."""
    return msg.replace("#011", "\t") if "#0" in msg else msg


def marked_records(msgs) -> np.ndarray:
    """Which messages of an Arrow string array hold one of :data:`MARKERS`: the words are
    searched in the array's data buffer (a fast byte search, a few hits a block in most
    logs) and each hit is mapped to its record by the offsets."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(msgs)
    hit = np.zeros(n, bool)
    if not n:
        return hit
    if msgs.null_count or not isinstance(msgs, pa.StringArray):
        m = None
        for w in MARKERS:
            x = pc.match_substring(msgs, w)
            m = x if m is None else pc.or_(m, x)
        return np.asarray(m.to_numpy(zero_copy_only=False), bool)
    offs = np.frombuffer(msgs.buffers()[1], np.int32, n + 1, msgs.offset * 4)
    data = msgs.buffers()[2]
    if data is None:
        return hit
    lo, hi = int(offs[0]), int(offs[-1])
    text = data.to_pybytes()
    many = max(64, n // 16)
    for w in MARKERS:
        word = w.encode()
        at = text.find(word, lo, hi)
        seen = 0
        while at >= 0:
            seen += 1
            if seen > many:                 # a word in many messages: one array search
                hit |= np.asarray(pc.match_substring(msgs, w).to_numpy(zero_copy_only=False), bool)
                break
            r = int(np.searchsorted(offs, at, side="right")) - 1
            # a match must lie inside one message, not across two
            if at + len(word) <= offs[r + 1]:
                hit[r] = True
                at = text.find(word, int(offs[r + 1]), hi)
            else:
                at = text.find(word, at + 1, hi)
    return hit


class TraceJoiner:
    """Joins per-record trace lines of each source into traces (module docstring)."""

    def __init__(self) -> None:
        self.open: dict[tuple, _Group] = {}
        self.joined = 0
        # open groups are swept for staleness once per bucket of STALE // 4 lines (the
        # bucket of the last sweep here): the same sweeps however the file is cut into
        # byte ranges (a range's first sweep can only find fresh groups)
        self._swept = -1

    def feed_block(self, b) -> list[JoinedTrace]:
        """Account a block of records (:class:`.blocks.RecordBlock`); returns the traces they
        close.  The single-line records that hold a head word are found with Arrow substring
        searches; only they, and every record while a group is open, are made into rows."""
        out: list[JoinedTrace] = []
        marked = marked_records(b.strings["message"]) & (b.end_line == b.line)
        cand = np.flatnonzero(marked)
        if not len(cand) and not self.open:
            return out
        single = b.end_line == b.line
        i, n = 0, b.n
        k = 0                                     # next marked record
        while i < n:
            if not self.open:                     # nothing open: jump to the next marked record
                while k < len(cand) and cand[k] < i:
                    k += 1
                if k >= len(cand):
                    break
                i = int(cand[k])
            if single[i]:
                r = b.row(i)
                self.feed(r[0], (r[9], r[6], r[7], r[8]), r[10], r[2], r[3], out)
            i += 1
        return out

    def feed_rows(self, rows: list[tuple]) -> list[JoinedTrace]:
        """Account a block of record rows (:data:`~.records.ROW_FIELDS` order); returns
        the traces they close.  A block without a head word and no open group costs
        a few substring searches over its joined messages."""
        out: list[JoinedTrace] = []
        if not self.open:
            blob = "\n".join([r[10] for r in rows])
            if not any(w in blob for w in MARKERS):
                return out
        feed = self.feed
        open_groups = self.open
        for r in rows:
            if r[1] != r[0]:                          # multi-line records hold their own traces
                continue
            m = r[10]
            if open_groups or "Exception" in m or "Error" in m or "Traceback" in m or "Throwable" in m \
                    or "EXCEPTION" in m:
                feed(r[0], (r[9], r[6], r[7], r[8]), m, r[2], r[3], out)
        return out

    def feed(self, line: int, key: tuple, message: str, ts: datetime | None,
             quality: TsQuality | None, out: list[JoinedTrace]) -> None:
        """Account one single-line record; the traces it closes are appended to ``out``."""
        g = self.open.get(key)
        if g is not None:
            if self._extends(g, message, line, ts):
                g.seen = line
                g.chars += len(message) + 1
                if len(g.lines) >= MAX_LINES or g.chars >= MAX_CHARS:
                    self._close(key, out)
                return
            self._close(key, out)
        if self.open and line // (STALE // 4) > self._swept:
            self._swept = line // (STALE // 4)
            for k in [k for k, g in self.open.items() if line - g.seen > STALE]:
                self._close(k, out)
        if not ("Exception" in message or "Error" in message or "Traceback" in message
                or "Throwable" in message or "EXCEPTION" in message):     # MARKERS
            return
        msg = _unescape(message).strip()
        if _PY_HEAD.match(msg):
            g = _Group("python", ts, quality, state="frames")
        elif _JAVA_HEAD.match(msg):
            g = _Group("java", ts, quality, preamble=msg.startswith("FATAL EXCEPTION"))
        else:
            return
        if len(self.open) >= MAX_OPEN:
            self._close(min(self.open, key=lambda k: self.open[k].seen), out)
        g.texts.append(msg)
        g.lines.append(line)
        g.seen = line
        self.open[key] = g

    def _extends(self, g: _Group, message: str, line: int, ts: datetime | None = None) -> bool:
        raw = _unescape(message).rstrip()
        body = raw.lstrip()
        indented = raw[:1] in (" ", "\t")            # the header kept the line's indentation
        if g.kind == "java":
            if _FRAME.match(body):
                g.frames += 1
                g.texts.append(raw if indented else "\t" + body)
            elif _JAVA_CONT.match(body) or (g.preamble and g.frames == 0 and len(g.texts) <= MAX_PREAMBLE and body):
                g.texts.append(raw if indented and g.frames else body)
            else:
                return False
        else:
            if _PY_FILE.match(body):
                g.frames += 1
                g.state = "code"
                g.texts.append(raw if indented else "  " + body)
            elif g.state in ("code", "frames") and _PY_MARK.match(body) and g.frames:
                g.texts.append(raw if indented else "    " + body)    # ^^^^ under the code line
            elif g.state == "code" and body:
                g.state = "frames"
                g.texts.append(raw if indented else "    " + body)
            elif g.state == "frames" and body and g.frames:
                g.state = "exc"                       # the exception line ends a traceback
                g.exc_ts, g.msg_lines = ts, 0
                g.texts.append(body)
            elif g.state == "exc" and (not body or _PY_CHAIN.match(body)):
                g.texts.append(body)
                if body.startswith("Traceback"):
                    g.state = "frames"
            elif (g.state == "exc" and g.texts[-1] and ts is not None and ts == g.exc_ts
                  and g.msg_lines < MAX_MESSAGE_LINES):
                # the exception's message goes on over the next records, written at the same time
                # (yaml's "found character '\t' that cannot start any token" under its ScannerError)
                g.msg_lines += 1
                g.texts.append(raw)
            else:
                return False
        g.lines.append(line)
        return True

    def _close(self, key: tuple, out: list[JoinedTrace]) -> None:
        g = self.open.pop(key)
        while g.texts and not g.texts[-1]:          # trailing blank lines of a python chain
            g.texts.pop()
            g.lines.pop()
        if g.frames and len(g.texts) >= 2:
            self.joined += 1
            out.append(JoinedTrace("\n".join(g.texts), g.lines, g.ts, g.quality))

    def finish(self) -> list[JoinedTrace]:
        """Close every open group (end of the file)."""
        out: list[JoinedTrace] = []
        for key in list(self.open):
            self._close(key, out)
        return out

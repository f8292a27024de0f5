"""Header formats: split a log line into timestamp, level, component, ... and message.

A small library of common formats (:data:`FORMATS`) is tried on a sample of
the file; the one that matches most lines wins.  When none matches well,
:func:`generic_format` builds one from the sample: it finds the timestamp and
takes what follows (an optional level word, ``[thread]``, ``component:``) as
header.  No per-product configuration is needed.

>>> fmt = detect_format(["2015-10-18 18:01:47,978 INFO [main] org.a.B: Created x"] * 3)
>>> fmt.name
'log4j'
>>> h = fmt.split("2015-10-18 18:01:47,978 INFO [main] org.a.B: Created x")
>>> (h.level, h.thread, h.component, h.message)
('INFO', 'main', 'org.a.B', 'Created x')
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from backline.analyzers.logs.timestamps import TS_REGEX, find_timestamp

_LEVELS = (r"(?:TRACE|DEBUG|DBG|VRB|INF|WRN|FTL|FINE|FINER|FINEST|CONFIG|INFO|INFORMATION|NOTICE|WARN|WARNING|"
           r"ERROR|ERR|SEVERE|FATAL|CRITICAL|CRIT|ALERT|EMERG|EMERGENCY|"
           r"Trace|Debug|Info|Information|Notice|Warn|Warning|Error|Fatal|Critical|Verbose|"
           r"trace|debug|info|notice|warn|warning|error|fatal|critical)")

LEVEL_WORDS = frozenset(_LEVELS.strip("(?:)").split("|"))


@dataclass(frozen=True, slots=True)
class Header:
    """The fields split off one line.  Missing fields are ''."""

    ts_text: str
    ts_kind: str
    level: str
    component: str
    pid: str
    thread: str
    host: str
    message: str


@dataclass(frozen=True, slots=True)
class LogFormat:
    """A named header format: a regex with named groups (``msg`` required).

    ``alternates`` are further formats of the same file (a second time stamp shape),
    tried in order on a line this one does not match.
    """

    name: str
    pattern: str
    ts_kind: str = ""
    alternates: tuple["LogFormat", ...] = ()

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)

    @property
    def compiled(self) -> bool:
        """True when the per-line engine can split this format (and its alternates) by
        itself; JSON and logfmt formats are split by :meth:`split` line by line."""
        return all(f.name not in _PYTHON_FORMATS for f in (self, *self.alternates))

    def engine_patterns(self) -> list[tuple]:
        """``(pattern, ts field order, msg, ts, level, component, pid, thread, host group)``
        of this format and its alternates, for :class:`._engine.LineEngine` (group numbers,
        -1 when absent)."""
        from backline.analyzers.logs.timestamps import ORDERS

        out = []
        for f in (self, *self.alternates):
            gi = f.regex.groupindex
            out.append((f.pattern.encode(), ORDERS.get(f.ts_kind, "").encode(),
                        *(gi.get(k, -1) for k in ("msg", "ts", "level", "component", "pid", "thread", "host"))))
        return out

    def level_of(self, level: str, message: str) -> str:
        """The level of a line from its level field (an access log: from the HTTP status)."""
        if self.name == "access-log" and not level:
            st = _HTTP_STATUS.match(message)
            code = st.group(1) if st else ""
            return "error" if code[:1] == "5" else "warning" if code[:1] == "4" else "info"
        return level

    def split(self, line: str) -> Header | None:
        """Split ``line``; ``None`` when it does not have this header (nor an alternate's)."""
        h = self._split_one(line)
        if h is None:
            for alt in self.alternates:
                h = alt._split_one(line)
                if h is not None:
                    return h
        return h

    def _split_one(self, line: str) -> Header | None:
        m = self.regex.match(line)
        if m is None:
            return None
        g = m.groupdict()
        if self.name in _JSON_FORMATS:
            return _json_header(g["msg"]) or Header("", "", "", "", "", "", "", g["msg"])
        if self.name == "logfmt":
            return _logfmt_header(g["msg"])
        if self.name == "access-log":           # the HTTP status is the level
            st = _HTTP_STATUS.match(g["msg"])
            code = st.group(1) if st else ""
            g["level"] = "error" if code[:1] == "5" else "warning" if code[:1] == "4" else "info"
        return Header(
            ts_text=g.get("ts") or "", ts_kind=self.ts_kind if g.get("ts") else "",
            level=g.get("level") or "", component=(g.get("component") or "").strip(),
            pid=g.get("pid") or "", thread=g.get("thread") or "", host=g.get("host") or "",
            message=g.get("msg") or "",
        )


_HTTP_STATUS = re.compile(r'"[^"]*" (\d{3}) ')
_JSON_FORMATS = frozenset({"json-lines", "journald-json"})
#: formats split in Python, line by line (not by the compiled engine)
_PYTHON_FORMATS = _JSON_FORMATS | {"logfmt"}
_J_MSG = ("MESSAGE", "message", "msg", "log", "@message", "text", "@m", "@mt")
_J_LEVEL = ("level", "severity", "levelname", "log.level", "lvl", "PRIORITY", "loglevel", "@l")
#: time keys: journald, Elastic/logstash, zap/zerolog/pino/bunyan/logrus, Python's asctime, Serilog's compact "@t",
#: and the short "t" of hand-rolled JSON loggers
_J_TS = ("__REALTIME_TIMESTAMP", "@timestamp", "timestamp", "time", "ts", "datetime", "date", "asctime", "@t",
         "eventTime", "t")
_J_COMP = ("SYSLOG_IDENTIFIER", "logger", "logger_name", "component", "name", "module", "_COMM", "source")
_J_PID = ("_PID", "pid", "process", "SYSLOG_PID")
_J_HOST = ("_HOSTNAME", "host", "hostname")
_J_THREAD = ("thread", "thread_name", "threadName", "tid")
#: journald / syslog PRIORITY numbers
_PRIORITY = {"0": "emerg", "1": "alert", "2": "crit", "3": "err", "4": "warning", "5": "notice",
             "6": "info", "7": "debug"}


def _first(d: dict, keys: tuple[str, ...]) -> str:
    for k in keys:
        v = d.get(k)
        if v is not None and v != "":
            return v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v)
    return ""


def _json_header(text: str) -> Header | None:
    """Fields of one JSON-lines record (journald export, structured app logs)."""
    try:
        d = json.loads(text)
    except (ValueError, RecursionError):    # RecursionError: nested deeper than json can read
        return None
    if not isinstance(d, dict):
        return None
    ts = _first(d, _J_TS)
    kind = ""
    if ts:
        if ts.isdigit():
            kind = "epoch_us" if len(ts) >= 16 else "epoch_ms" if len(ts) >= 13 else "epoch"
        elif re.fullmatch(r"\d+\.\d+", ts):
            kind = "epoch"
        else:
            # the shape of the value decides (a syslog "Dec 30 22:00:01" is not ISO)
            from backline.analyzers.logs.timestamps import find_timestamp

            found = find_timestamp(ts, within=4)
            kind = found[0] if found else "iso"
    level = _first(d, _J_LEVEL)
    if "PRIORITY" in d and level == str(d.get("PRIORITY")):
        level = _PRIORITY.get(level, level)
    return Header(ts, kind, level, _first(d, _J_COMP), _first(d, _J_PID), _first(d, _J_THREAD),
                  _first(d, _J_HOST), _first(d, _J_MSG) or text)


#: logfmt (``key=value`` pairs, a value with spaces in double quotes): one pair, and the
#: keys whose value is the record's time stamp or its level
_LF_PAIR = r'[\w.@/-]+=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)'
_LF_TOKEN = re.compile(r'([\w.@/-]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
_LF_TIME = frozenset({"time", "ts", "t", "timestamp"})
_LF_LEVEL = frozenset({"level", "lvl", "severity"})
_LF_KEYS = "|".join(sorted(_LF_TIME | _LF_LEVEL))


def _logfmt_header(text: str) -> Header:
    """Fields of one logfmt record: the first time key whose value is a whole time stamp
    of a known shape is the stamp, the first level key the level; both pairs leave the
    message, the other pairs stay in it as written.

    >>> h = _logfmt_header('ts=1733565605.012 msg="cache miss" lvl=warn key=u:1')
    >>> (h.ts_kind, h.ts_text, h.level, h.message)
    ('epoch', '1733565605.012', 'warn', 'msg="cache miss" key=u:1')
    """
    ts = kind = level = ""
    cut: list[tuple[int, int]] = []
    for m in _LF_TOKEN.finditer(text):
        key, raw = m.group(1), m.group(2)
        value = raw[1:-1] if raw[:1] == '"' else raw
        if key in _LF_TIME and not ts and value:
            found = find_timestamp(value, within=1)
            if found and found[1] == 0 and found[2] == len(value):
                ts, kind = value, found[0]
                cut.append(m.span())
        elif key in _LF_LEVEL and not level and value:
            level = value
            cut.append(m.span())
    msg = text
    for a, b in reversed(cut):
        msg = msg[:a].rstrip() + " " + msg[b:].lstrip()
    return Header(ts, kind, level, "", "", "", "", msg.strip())


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    rx = _CACHE.get(pattern)
    if rx is None:
        rx = _CACHE[pattern] = re.compile(pattern)
    return rx


def _ts(kind: str) -> str:
    return f"(?P<ts>{TS_REGEX[kind]})"


_SYSLOG_TAIL = (r"(?P<host>\S+) (?P<component>[^\[\]:]*?[^\[\]:\s])(?:\[(?P<pid>\d+)\])?"
                r"(?: \([^)]*\))?: (?P<msg>.*)")

#: The built-in library, most specific first.
FORMATS: tuple[LogFormat, ...] = (
    LogFormat("rfc5424", r"<\d{1,3}>1 " + _ts("iso") +
              r" (?P<host>\S+) (?P<component>\S+) (?P<pid>\S+) \S+ (?:-|(?:\[[^\]]*\])+) ?(?P<msg>.*)",
              "iso"),
    LogFormat("journald-json", r"(?P<msg>\{.*\"MESSAGE\".*\})$", ""),
    LogFormat("label-epoch-node", r"(?P<label>\S+) \d{9,10} \d{4}\.\d\d\.\d\d (?P<host>\S+) " + _ts("ymd_dots") +
              r" \S+ (?P<type>[A-Z]+) (?P<component>\S+) (?P<level>[A-Z]+) (?P<msg>.*)", "ymd_dots"),
    LogFormat("labelled-syslog", r"(?P<label>\S+) \d{9,10} \d{4}\.\d\d\.\d\d (?P<node>\S+) " +
              _ts("syslog") + r" " + _SYSLOG_TAIL, "syslog"),
    LogFormat("syslog", r"(?:<\d{1,3}>)?" + _ts("syslog") + r" " + _SYSLOG_TAIL, "syslog"),
    LogFormat("logcat", _ts("md_dash") + r"\s+(?P<pid>\d+)\s+(?P<thread>\d+)\s+(?P<level>[VDIWEFA])\s+"
              r"(?P<component>.*?)\s*: (?P<msg>.*)", "md_dash"),
    LogFormat("bracket-ctime-level", r"\[" + _ts("ctime") + r"\] \[(?:(?P<component>[\w]+):)?(?P<level>\w+)\]"
              r"(?: \[pid (?P<pid>\d+)(?::tid (?P<thread>\d+))?\])? (?P<msg>.*)", "ctime"),
    LogFormat("access-log", r"(?P<host>\S+) \S+ \S+ \[" + _ts("clf") + r"\] (?P<msg>\".*)", "clf"),
    LogFormat("glog", r"(?P<level>[IWEF])" + _ts("glog") + r"\s+(?P<thread>\d+) (?P<component>[^\s\]]+)\] "
              r"(?P<msg>.*)", "glog"),
    LogFormat("yymmdd-pid-level", _ts("yymmdd") + r" (?P<pid>\d+) (?P<level>[A-Z]+) (?P<component>\S+?): (?P<msg>.*)",
              "yymmdd"),
    LogFormat("iso-comma-level", _ts("iso") + r", (?P<level>\w+)\s+(?P<component>[A-Za-z]\w*)\s+(?P<msg>.*)",
              "iso"),
    LogFormat("iso-pid-level-request", r"(?:\S+ )?" + _ts("iso") + r" (?P<pid>\d+) (?P<level>" + _LEVELS + r") "
              r"(?P<component>\S+) \[(?P<thread>[^\]]*)\] (?P<msg>.*)", "iso"),
    LogFormat("log4j-dash", _ts("iso") + r" - (?P<level>" + _LEVELS + r")\s+\[(?P<thread>.*?)\] - "
              r"(?P<msg>.*)", "iso"),
    LogFormat("log4j", _ts("iso") + r"\s+(?:\[(?P<thread0>[^\]]*)\]\s+)?(?P<level>" + _LEVELS + r")\s+"
              r"(?:\[(?P<thread>[^\]]*)\]\s+)?(?:(?P<component>[\w.$/-]+(?:\[[^\]]*\])?)(?::| -) )?"
              r"(?P<msg>.*)", "iso"),
    LogFormat("log4j-yy", _ts("slash_ymd") + r"\s+(?P<level>" + _LEVELS + r")\s+"
              r"(?:\[(?P<thread>[^\]]*)\]\s+)?(?:(?P<component>[\w.$/-]+): )?(?P<msg>.*)", "slash_ymd"),
    LogFormat("compact-pipe", _ts("ymd_compact") + r"\|(?P<component>[^|]*)\|(?P<pid>[^|]*)\|(?P<msg>.*)",
              "ymd_compact"),
    LogFormat("bracket-program", r"\[" + _ts("md_dot") + r"\] (?P<component>.+?) - (?P<msg>.*)", "md_dot"),
    LogFormat("python-logging", _ts("iso") + r"\s+(?:-\s+)?(?P<component>[\w.]+)\s+-\s+(?P<level>" + _LEVELS +
              r")\s+-\s+(?P<msg>.*)", "iso"),
    LogFormat("json-lines", r"(?P<msg>\{.*\})\s*$", ""),
    # logfmt: nothing but key=value pairs, one of them a time or level key
    LogFormat("logfmt", r"(?=(?:.*\s)?(?:" + _LF_KEYS + r")=)(?P<msg>" + _LF_PAIR + r"(?:\s+" + _LF_PAIR +
              r")*)\s*$", ""),
)


@dataclass(frozen=True, slots=True)
class HeaderRules:
    """Thresholds of the header learner; chosen leave-one-system-out (benchmarks/loghub_eval.py)."""

    share: float = 0.9         # a header column: this share of the lines has the same class there
    num_share: float = 0.95    # ... and for a column of plain numbers (pids, counters, flags)
    max_columns: int = 8       # columns after the time stamp looked at
    min_ts_share: float = 0.5  # a time stamp shape must begin this share of the lines
    alt_share: float = 0.05    # another shape on this share of the lines becomes an alternate


RULES = HeaderRules()

_LEVEL_SET = frozenset(w.lower() for w in LEVEL_WORDS)
_TOK = re.compile(r"\s*(?:(?P<br>\[(?:[^\[\]]|\[[^\[\]]*\])*\])|(?P<pipe>\|)|(?P<sep>[-,;:](?=\s|$))"
                  r"|(?P<word>[^\s|]+))")
_SINGLE_LEVELS = frozenset("VDIWEFA")


def _columns(tail: str, limit: int) -> list[tuple[str, bool]]:
    """The first ``limit`` columns of a header tail as ``(class, space_before)``.

    Classes: ``LEVEL`` (a level word, bare or bracketed), ``BRACKET`` (``[...]``, one
    nesting level), ``NAME:`` (a word ending in a colon), ``NUM`` (digits), ``WORD``,
    ``PADDED`` (a word followed by two or more spaces: a fixed-width column), and the
    separators ``|`` ``-`` ``,`` ``;`` ``:`` standing alone.
    """
    out: list[tuple[str, bool]] = []
    pos = 0
    while len(out) < limit:
        m = _TOK.match(tail, pos)
        if m is None or m.end() == pos:
            break
        kind = m.lastgroup
        text = m.group(kind)  # type: ignore[arg-type]
        if kind == "word":
            core = text.strip("[]():")
            if (core.lower() in _LEVEL_SET and len(core) > 1) or (len(core) == 1 and core in _SINGLE_LEVELS):
                cls = "LEVEL"
            elif text.isdigit():
                cls = "NUM"
            elif len(text) > 1 and text.endswith(":") and not text.endswith("::"):
                cls = "NAME:"
            elif tail.startswith("  ", m.end()):
                cls = "PADDED"          # a word in a padded column (two or more spaces after it)
            else:
                cls = "WORD"
        elif kind == "br":
            cls = "LEVEL" if text[1:-1].strip().lower() in _LEVEL_SET else "BRACKET"
        elif kind == "pipe":
            cls = "|"
        else:
            cls = text
        out.append((cls, m.start(kind) > pos))  # type: ignore[arg-type]
        pos = m.end()
    return out


def learn_columns(tails: list[str], rules: HeaderRules = RULES) -> list[tuple[str, bool]]:
    """Header columns shared by the lines (what follows the time stamp, or the line start).

    Column by column, the class most lines have there must be held by at least
    ``rules.share`` of all lines (``rules.num_share`` for numbers), else the columns
    end.  The header ends after the last column that is not a plain word (a level, a
    bracket, ``name:``, a number, a separator): words between such columns are header
    fields (host, component), words after them are the message.  Returns ``(class,
    always_space_before)`` per header column.

    >>> learn_columns(["INFO [main] a.B: go", "WARN [x y] a.C: stop now", "INFO [main] a.B: go on"])
    [('LEVEL', False), ('BRACKET', True), ('NAME:', True)]
    """
    from collections import Counter

    n = len(tails)
    if not n:
        return []
    cols = [_columns(t, rules.max_columns) for t in tails]
    learned: list[tuple[str, bool]] = []
    end = 0
    for i in range(rules.max_columns):
        classes = Counter(c[i][0] for c in cols if len(c) > i)
        if not classes:
            break
        cls, hits = classes.most_common(1)[0]
        if hits < (rules.num_share if cls == "NUM" else rules.share) * n:
            break
        if cls == "LEVEL" and any(c == "LEVEL" for c, _ in learned):
            break                                  # one level per header: this one is the message's
        space = all(c[i][1] for c in cols if len(c) > i and c[i][0] == cls)
        learned.append((cls, space))
        if cls != "WORD":
            end = i + 1
    return learned[:end]


_PIECES = {
    "LEVEL": r"\[?(?P<level>" + _LEVELS[3:-1] + r"|FAILURE|[VDIWEFA])(?![\w-])\]?:?",
    "BRACKET": r"\[(?P<thread>(?:[^\[\]]|\[[^\[\]]*\])*)\]",
    "NAME:": r"(?P<component>[^\s|]*[^\s|:]):",
    "NUM": r"(?P<pid>\d+)",
    "WORD": r"(?P<host>[^\s|]+)",
    "PADDED": r"(?P<component>[^\s|]+)(?=\s\s)",
}
_UNNAMED = {
    "LEVEL": r"\[?(?:" + _LEVELS[3:-1] + r"|FAILURE|[VDIWEFA])(?![\w-])\]?:?",
    "BRACKET": r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]",
    "NAME:": r"[^\s|]*[^\s|:]:",
    "NUM": r"\d+",
    "WORD": r"[^\s|]+",
    "PADDED": r"[^\s|]+(?=\s\s)",
}


def columns_regex(cols: list[tuple[str, bool]]) -> str:
    """Regex text for learned header columns, each run of words plus the column after
    them optional in turn, so a line with fewer header fields still splits."""
    used: set[str] = set()
    units: list[str] = []
    unit = ""
    for i, (cls, space) in enumerate(cols):
        if cls in _PIECES:
            group = {"LEVEL": "level", "BRACKET": "thread", "NAME:": "component", "NUM": "pid",
                     "WORD": "host", "PADDED": "component"}[cls]
            if cls == "WORD" and i + 1 < len(cols) and cols[i + 1][0] != "NAME:":
                group = "component"
            piece = _UNNAMED[cls] if group in used else _PIECES[cls].replace("?P<host>", f"?P<{group}>")
            used.add(group)
        else:
            piece = re.escape(cls)
        unit += (r"\s+" if space else r"\s*") + piece
        if cls != "WORD":
            units.append(unit)
            unit = ""
    out = ""
    for u in reversed(units):
        out = f"(?:{u}{out})?"
    return out


def _ts_kinds(lines: list[str]) -> dict[tuple[str, int], list[tuple[str, int, int]]]:
    """Lines by (time stamp family, fields before it): their (line, start, end)."""
    from backline.analyzers.logs.timestamps import family

    seen: dict[tuple[str, int], list[tuple[str, int, int]]] = {}
    for line in lines:
        hit = find_timestamp(line)
        if hit:
            kind, start, end = hit
            pre = line[:start].rstrip("[(")
            seen.setdefault((family(kind), len(pre.split())), []).append((line, start, end))
    return seen


def _format_for(fam: str, pre_fields: int, hits: list[tuple[str, int, int]], rules: HeaderRules) -> LogFormat:
    from backline.analyzers.logs.timestamps import TS_REGEX, resolve_kind

    kind = resolve_kind(fam, [line[s:e] for line, s, e in hits])
    prefix = r"(?:\S+\s+){%d}\[?" % pre_fields if pre_fields else r"\[?"
    tails = []
    for line, _, end in hits:
        tail = line[end:]
        if tail[:1] in ("]", ")"):
            tail = tail[1:]
        tails.append(tail)
    cols = learn_columns(tails, rules)
    pattern = prefix + f"(?P<ts>{TS_REGEX[kind]})" + r"[\]\)]?" + columns_regex(cols) + r"\s*(?P<msg>.*)"
    return LogFormat(f"generic-{kind}", pattern, kind)


_PLAIN = r"(?:\[?(?P<level>" + _LEVELS + r")\]?:?\s+)?(?P<msg>.*)"


def generic_format(sample: list[str], rules: HeaderRules = RULES) -> LogFormat:
    """Build a format for lines that no library format matches.

    The time stamp shape that begins most lines (after a constant number of fields)
    is the header's; the columns that follow it are learned by :func:`learn_columns`.
    Other shapes found on at least ``rules.alt_share`` of the lines become alternate
    formats.  Lines with no time stamp get columns learned from the line start, or a
    format that keeps the whole line as message (an optional level word split off).
    """
    lines = [s for s in sample if s.strip()]
    seen = _ts_kinds(lines)
    ranked = sorted(seen.items(), key=lambda kv: -len(kv[1]))
    if not ranked or len(ranked[0][1]) < rules.min_ts_share * len(lines):
        cols = learn_columns(lines, rules)
        if cols and cols[-1][0] != "NUM":
            cols[0] = (cols[0][0], False)
            return LogFormat("columns", columns_regex(cols) + r"\s*(?P<msg>.*)")
        return LogFormat("plain", _PLAIN)
    (fam, pre), hits = ranked[0]
    fmt = _format_for(fam, pre, hits, rules)
    alts = tuple(_format_for(f, p, h, rules) for (f, p), h in ranked[1:4]
                 if len(h) >= max(2, rules.alt_share * len(lines)))
    return LogFormat(fmt.name, fmt.pattern, fmt.ts_kind, alts)


def detect_format(sample: list[str], min_share: float = 0.6, *, exclude: frozenset[str] = frozenset(),
                  rules: HeaderRules = RULES) -> LogFormat:
    """Pick the header format of a file from a sample of its (non-blank) lines.

    The library format that matches most lines wins when it matches at least
    ``min_share`` of them (``exclude`` names library formats not to use); the
    lines it does not match but that carry a time stamp get a learned alternate
    format when they are at least ``rules.alt_share`` of the sample.  Otherwise
    the format is learned (:func:`generic_format`).  Time stamp shapes with an
    ambiguous day/month order are resolved over the sample's stamps.
    """
    from backline.analyzers.logs.timestamps import family, resolve_kind

    lines = [s for s in sample if s.strip()][:400]
    if not lines:
        return generic_format([], rules)
    best: LogFormat | None = None
    best_hits = 0
    for fmt in FORMATS:
        if fmt.name in exclude:
            continue
        rx = fmt.regex
        hits = sum(1 for s in lines if rx.match(s))
        if hits > best_hits:
            best, best_hits = fmt, hits
    if best is None or best_hits < min_share * len(lines):
        return generic_format(lines, rules)
    rx = best.regex
    if best.ts_kind and family(best.ts_kind) != best.ts_kind or best.ts_kind in ("md_dash", "md_dot"):
        texts = [m.group("ts") for s in lines if (m := rx.match(s)) and m.group("ts")]
        kind = resolve_kind(best.ts_kind, texts)
        if kind != best.ts_kind:
            best = LogFormat(best.name, best.pattern.replace(TS_REGEX[best.ts_kind], TS_REGEX[kind]), kind)
    rest = [s for s in lines if not rx.match(s)]
    if rest and best.ts_kind and len(rest) >= max(2, rules.alt_share * len(lines)):
        alt = generic_format(rest, rules)
        if alt.ts_kind:
            return LogFormat(best.name, best.pattern, best.ts_kind, (alt, *alt.alternates))
    return best

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

_LEVELS = (r"(?:TRACE|DEBUG|DBG|FINE|FINER|FINEST|CONFIG|INFO|INFORMATION|NOTICE|WARN|WARNING|"
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
    """A named header format: a regex with named groups (``msg`` required)."""

    name: str
    pattern: str
    ts_kind: str = ""

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)

    def split(self, line: str) -> Header | None:
        """Split ``line``; ``None`` when it does not have this header."""
        m = self.regex.match(line)
        if m is None:
            return None
        g = m.groupdict()
        if self.name in _JSON_FORMATS:
            return _json_header(g["msg"]) or Header("", "", "", "", "", "", "", g["msg"])
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
_J_MSG = ("MESSAGE", "message", "msg", "log", "@message", "text")
_J_LEVEL = ("level", "severity", "levelname", "log.level", "lvl", "PRIORITY", "loglevel")
_J_TS = ("__REALTIME_TIMESTAMP", "@timestamp", "timestamp", "time", "ts", "datetime", "date")
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
    except ValueError:
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
            kind = "iso"
    level = _first(d, _J_LEVEL)
    if "PRIORITY" in d and level == str(d.get("PRIORITY")):
        level = _PRIORITY.get(level, level)
    return Header(ts, kind, level, _first(d, _J_COMP), _first(d, _J_PID), _first(d, _J_THREAD),
                  _first(d, _J_HOST), _first(d, _J_MSG) or text)


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
    LogFormat("bgl", r"(?P<label>\S+) \d{9,10} \d{4}\.\d\d\.\d\d (?P<host>\S+) " + _ts("bgl") +
              r" \S+ (?P<type>[A-Z]+) (?P<component>\S+) (?P<level>[A-Z]+) (?P<msg>.*)", "bgl"),
    LogFormat("labelled-syslog", r"(?P<label>\S+) \d{9,10} \d{4}\.\d\d\.\d\d (?P<node>\S+) " +
              _ts("syslog") + r" " + _SYSLOG_TAIL, "syslog"),
    LogFormat("syslog", r"(?:<\d{1,3}>)?" + _ts("syslog") + r" " + _SYSLOG_TAIL, "syslog"),
    LogFormat("logcat", _ts("logcat") + r"\s+(?P<pid>\d+)\s+(?P<thread>\d+)\s+(?P<level>[VDIWEFA])\s+"
              r"(?P<component>.*?)\s*: (?P<msg>.*)", "logcat"),
    LogFormat("apache-error", r"\[" + _ts("ctime") + r"\] \[(?:(?P<component>[\w]+):)?(?P<level>\w+)\]"
              r"(?: \[pid (?P<pid>\d+)(?::tid (?P<thread>\d+))?\])? (?P<msg>.*)", "ctime"),
    LogFormat("access-log", r"(?P<host>\S+) \S+ \S+ \[" + _ts("clf") + r"\] (?P<msg>\".*)", "clf"),
    LogFormat("hdfs", _ts("yymmdd") + r" (?P<pid>\d+) (?P<level>[A-Z]+) (?P<component>\S+?): (?P<msg>.*)",
              "yymmdd"),
    LogFormat("windows-cbs", _ts("iso") + r", (?P<level>\w+)\s+(?P<component>[A-Za-z]\w*)\s+(?P<msg>.*)",
              "iso"),
    LogFormat("oslo", r"(?:\S+ )?" + _ts("iso") + r" (?P<pid>\d+) (?P<level>" + _LEVELS + r") "
              r"(?P<component>\S+) \[(?P<thread>[^\]]*)\] (?P<msg>.*)", "iso"),
    LogFormat("log4j-dash", _ts("iso") + r" - (?P<level>" + _LEVELS + r")\s+\[(?P<thread>.*?)\] - "
              r"(?P<msg>.*)", "iso"),
    LogFormat("log4j", _ts("iso") + r"\s+(?:\[(?P<thread0>[^\]]*)\]\s+)?(?P<level>" + _LEVELS + r")\s+"
              r"(?:\[(?P<thread>[^\]]*)\]\s+)?(?:(?P<component>[\w.$/-]+(?:\[[^\]]*\])?)(?::| -) )?"
              r"(?P<msg>.*)", "iso"),
    LogFormat("log4j-yy", _ts("yy_slash") + r"\s+(?P<level>" + _LEVELS + r")\s+"
              r"(?:\[(?P<thread>[^\]]*)\]\s+)?(?:(?P<component>[\w.$/-]+): )?(?P<msg>.*)", "yy_slash"),
    LogFormat("compact-pipe", _ts("compact") + r"\|(?P<component>[^|]*)\|(?P<pid>[^|]*)\|(?P<msg>.*)",
              "compact"),
    LogFormat("bracket-program", r"\[" + _ts("md_dot") + r"\] (?P<component>.+?) - (?P<msg>.*)", "md_dot"),
    LogFormat("python-logging", _ts("iso") + r"\s+(?:-\s+)?(?P<component>[\w.]+)\s+-\s+(?P<level>" + _LEVELS +
              r")\s+-\s+(?P<msg>.*)", "iso"),
    LogFormat("json-lines", r"(?P<msg>\{.*\})\s*$", ""),
)


_NUM_FIELD = re.compile(r"\d+\s+\S")


def _leading_fields(rest: str) -> str:
    """Regex for what follows a timestamp in a generic header."""
    return (r"[\]\)]?[,;]?\s*(?:[-|:]\s+)?(?:\[?(?P<level>" + _LEVELS + r")\]?:?\s+)?"
            r"(?:[-|]\s+)?(?:\[(?P<thread>[^\]]{0,80})\]:?\s+)?(?:[-|]\s+)?(?P<msg>.*)")


def generic_format(sample: list[str]) -> LogFormat:
    """Build a format for lines that no library format matches.

    The prefix before the timestamp must be constant in shape (empty, ``[``,
    or a fixed number of fields); the message is what follows the timestamp
    and any level / thread fields.  Lines with no timestamp get a format that
    keeps the whole line as message.
    """
    kinds: dict[tuple[str, int], int] = {}
    for line in sample:
        hit = find_timestamp(line)
        if hit:
            kind, start, _ = hit
            pre_fields = len(line[:start].split())
            kinds[(kind, pre_fields)] = kinds.get((kind, pre_fields), 0) + 1
    if not kinds:
        return LogFormat("plain", r"(?:\[?(?P<level>" + _LEVELS + r")\]?:?\s+)?(?P<msg>.*)")
    (kind, pre_fields), hits = max(kinds.items(), key=lambda kv: kv[1])
    if hits * 2 < len(sample):
        return LogFormat("plain", r"(?:\[?(?P<level>" + _LEVELS + r")\]?:?\s+)?(?P<msg>.*)")
    prefix = r"(?:\S+\s+){%d}" % pre_fields if pre_fields else r"\[?"
    fmt = LogFormat(f"generic-{kind}", prefix + _ts(kind) + _leading_fields(""), kind)
    # a column right after the header that is numeric on (nearly) every line is a
    # header field too (a pid, a flag), not part of the message
    for _ in range(2):
        msgs = [h.message for s in sample if (h := fmt.split(s)) is not None]
        if len(msgs) < 5 or sum(1 for m in msgs if _NUM_FIELD.match(m)) < 0.95 * len(msgs):
            break
        fmt = LogFormat(fmt.name, fmt.pattern.replace("(?P<msg>.*)", r"\d+\s+(?P<msg>.*)"), kind)
    return fmt


def detect_format(sample: list[str], min_share: float = 0.6) -> LogFormat:
    """Pick the header format of a file from a sample of its (non-blank) lines."""
    lines = [s for s in sample if s.strip()][:400]
    if not lines:
        return generic_format([])
    best: LogFormat | None = None
    best_hits = 0
    for fmt in FORMATS:
        rx = fmt.regex
        hits = sum(1 for s in lines if rx.match(s))
        if hits > best_hits:
            best, best_hits = fmt, hits
    if best is not None and best_hits >= min_share * len(lines):
        return best
    return generic_format(lines)

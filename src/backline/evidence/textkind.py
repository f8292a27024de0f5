"""Text files: decode the head, then decide what kind of text it is.

Strong content signatures come first (hs_err banner, Breakpad symbols,
microdump, stack-walker reports), then the file name for source code and
prose, then structure (JSON, CSV/TSV, config), then log-vs-trace heuristics,
then the name again as the last word.

>>> decode_head(b"2024-01-02 10:00:00 INFO up\\n")[1]
'utf-8'
>>> classify_text("2024-01-02 10:00:00 INFO start\\n" * 5, "x").kind.value
'text_log'
>>> classify_text('Traceback (most recent call last):\\n  File "a.py", line 1, in <module>\\nKeyError: 1\\n', "t").format
'python'
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

from backline.model.core import ArtifactKind

_K = ArtifactKind


@dataclass(frozen=True, slots=True)
class TextVerdict:
    kind: ArtifactKind
    format: str


# ---------------------------------------------------------------- decoding

def decode_head(head: bytes, *, truncated: bool = True) -> tuple[str, str] | None:
    """Decode the head of a file as text: ``(text, encoding)`` or ``None`` if binary.

    Recognises BOMs, UTF-16 without BOM (NUL every other byte), UTF-8 and,
    failing that, mostly-printable 8-bit text (taken as cp1252/latin-1).
    """
    if not head:
        return "", "empty"
    if head.startswith(b"\xef\xbb\xbf"):
        return _decode(head[3:], "utf-8", truncated), "utf-8-sig"
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return None
    if head.startswith(b"\xff\xfe"):
        return _decode(head[2:], "utf-16-le", truncated), "utf-16le"
    if head.startswith(b"\xfe\xff"):
        return _decode(head[2:], "utf-16-be", truncated), "utf-16be"
    sample = head[:4096]
    if len(sample) >= 8:
        even_nul = sample[0::2].count(0) / len(sample[0::2])
        odd_nul = sample[1::2].count(0) / len(sample[1::2])
        if odd_nul > 0.4 and even_nul < 0.05:
            return _decode(head, "utf-16-le", truncated), "utf-16le"
        if even_nul > 0.4 and odd_nul < 0.05:
            return _decode(head, "utf-16-be", truncated), "utf-16be"
    if b"\x00" in sample:
        return _decode_with_nuls(head)
    try:
        return _decode(head, "utf-8", truncated, strict=True), "utf-8"
    except UnicodeDecodeError:
        pass
    printable = sum(1 for b in sample if b >= 0x20 or b in (9, 10, 12, 13))
    if printable / len(sample) > 0.97:
        return head.decode("cp1252", errors="replace"), "cp1252"
    return None


def _printable_share(sample: bytes) -> float:
    return sum(1 for b in sample if b >= 0x20 or b in (9, 10, 12, 13)) / max(1, len(sample))


def _decode_with_nuls(head: bytes) -> tuple[str, str] | None:
    r"""Text with NUL bytes in it: a log that starts with a zero-filled run (copytruncate
    rotation, a crashed writer) or has lines in another encoding mixed in.  Judged on the
    bytes without the NULs: line-structured and printable -> text, else binary.

    >>> _decode_with_nuls(bytes(5000) + b"2024-01-01 INFO started\n" * 20)[1]
    'utf-8'
    >>> _decode_with_nuls(bytes(range(256)) * 20) is None
    True
    """
    rest = head.lstrip(b"\x00")[:4096].replace(b"\x00", b"")
    if len(rest) < 256 or rest.count(b"\n") + rest.count(b"\r") < 2 or _printable_share(rest) < 0.97:
        return None
    text = head.replace(b"\x00", b"")
    try:
        return _decode(text, "utf-8", True, strict=True), "utf-8"
    except UnicodeDecodeError:
        return text.decode("cp1252", errors="replace"), "cp1252"


def _decode(data: bytes, codec: str, truncated: bool, strict: bool = False) -> str:
    if codec.startswith("utf-16") and len(data) % 2:
        data = data[:-1]
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the head is not an error.
        if truncated and exc.start >= len(data) - 4:
            return data[:exc.start].decode(codec, errors="strict" if strict else "replace")
        if strict:
            raise
        return data.decode(codec, errors="replace")


# ---------------------------------------------------------------- names

_SOURCE_EXT = {".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".java", ".cs", ".py", ".sh", ".bash",
               ".go", ".rs", ".js", ".ts", ".ps1", ".bat", ".cmd", ".rb", ".pl", ".kt", ".scala",
               ".swift", ".m", ".mm", ".vbs", ".lua", ".php", ".sql"}
_DOC_EXT = {".md", ".rst", ".adoc", ".markdown", ".html", ".htm", ".rtf"}
_DOC_NAMES = re.compile(r"^(readme|license|licence|copying|notice|authors|changelog|changes)(\.|$)", re.I)
_CONFIG_EXT = {".conf", ".cfg", ".ini", ".yaml", ".yml", ".toml", ".properties", ".xml", ".config",
               ".cnf", ".env", ".plist", ".reg"}
_DATA_EXT = {".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".snap"}
_LOG_NAME = re.compile(r"(\.log$|\.log\.|\.log_?\d|^(messages|syslog|dmesg|kern\.log|auth\.log|"
                       r"catalina\.out|nohup\.out|console\.out)|\.(out|err|trace|evtlog)$)", re.I)
#: File names of stack-walker / dump-tool outputs (Breakpad, rust-minidump, minidump_dump).
_TOOL_OUTPUT_NAME = re.compile(r"(\.(breakpad|rust)(\.mr)?\.txt$|\.stackwalk.*\.out$|\.dump\.out$|"
                               r"\.rust\.json$)", re.I)


def _ext(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""


def kind_from_name(name: str) -> TextVerdict | None:
    """What the file name alone suggests (used second, after content)."""
    base = name.rsplit("/", 1)[-1]
    ext = _ext(base)
    if _TOOL_OUTPUT_NAME.search(base):
        return TextVerdict(_K.DATA, "tool-output")
    if ext == ".sym":
        return TextVerdict(_K.SYMBOLS, "breakpad-sym")
    if ext in _SOURCE_EXT:
        return TextVerdict(_K.SOURCE, ext[1:])
    if ext in _DOC_EXT or _DOC_NAMES.match(base):
        return TextVerdict(_K.DOCUMENT, ext[1:] or "text")
    if ext in _DATA_EXT:
        return TextVerdict(_K.DATA, ext[1:])
    if ext in _CONFIG_EXT:
        return TextVerdict(_K.CONFIG, ext[1:])
    if _LOG_NAME.search(base):
        return TextVerdict(_K.TEXT_LOG, "")
    if ext == ".txt":
        return TextVerdict(_K.DOCUMENT, "text")
    return None


# ---------------------------------------------------------------- content rules

_HS_ERR = re.compile(r"^#\s+(A fatal error has been detected by the Java Runtime Environment|"
                     r"There is insufficient memory for the Java Runtime Environment|"
                     r"Internal Error \()", re.M)
_HS_ERR_SECTION = re.compile(r"^-{5,}\s+(T H R E A D|S Y S T E M|P R O C E S S|S U M M A R Y)\s+-{3,}", re.M)
#: Lines of the hs_err header block; two of them at the top make an hs_err fragment.
_HS_ERR_HEADER = re.compile(r"^#\s+(JRE version: |Java VM: |Problematic frame:|"
                            r"(SIGSEGV|SIGBUS|SIGILL|SIGFPE|SIGABRT|EXCEPTION_\w+) \(0x[0-9a-f]+\) at pc=|"
                            r"Native memory allocation |An error report file with more information)", re.M)
_HS_ERR_SIGNAL = re.compile(r"^#\s+(SIG[A-Z]+|EXCEPTION_[A-Z_]+) \(0x[0-9a-fA-F]+\) at ", re.M)
_SYM_RECORD = re.compile(r"^(MODULE|INFO|FILE|INLINE_ORIGIN|FUNC|PUBLIC|STACK (CFI|WIN)|INLINE|"
                         r"[0-9a-fA-F]+ [0-9a-fA-F]+ \d+ \d+)\b")
_MONTHS = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
#: A timestamp somewhere near the start of a line (many log dialects).
_TS_ANY = re.compile(
    r"(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}[-T _.]+\d{1,2}[:.]\d{1,2}"  # 2015-10-18 18:01 / BGL 2005-06-03-15.42 / 2024-1-5 7:3
    r"|\b\d{2}[-/]\d{2}[-/ ]\d{2,4}[ T]?\d{1,2}:\d{2}:\d{2}"  # 17/06/09 20:10:40, 03-17 16:13:38
    r"|\b\d{2}-\d{2} \d{2}:\d{2}:\d{2}"                       # Android 03-17 16:13:38
    r"|\b" + _MONTHS + r"\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}"           # syslog Jun 14 15:16:01
    r"|\b\d{1,2}[ -]" + _MONTHS + r"[ -]\d{2,4}[ :T]+\d{1,2}:\d{2}"  # log4j DATE 07 Dec 2026 14:21:43, 07-Dec-2026, RFC 2822
    r"|\b" + _MONTHS + r" \d{1,2}, \d{4},? \d{1,2}:\d{2}:\d{2}"      # java.util.logging Dec 07, 2026 5:46:40 PM
    r"|\b\d{6} \d{6}\b"                                        # HDFS 081109 203615
    r"|^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d"                       # glog E1207 17:25:03.379799
    r"|\b\d{8}-\d{1,2}:\d{1,2}:\d{1,2}"                        # HealthApp 20171223-22:15:29
    r"|^\[?\d{1,2}[:.]\d{2}[ :.]\d{2}"                         # [10.30 16:49:06], 16:49:06
    r"|\[\d{1,2}/" + _MONTHS + r"/\d{4}[: ]\d{2}:\d{2}"          # access log [10/Oct/2000:13:55:36
    r"|\b1\d{9}(\d{3}){0,3}(\.\d+)?\b)"                          # epoch seconds, ms, us, ns
)
_LEVEL_FIRST = re.compile(r"^\s*[\[<]?(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|"
                          r"SEVERE|FINE|FINER|FINEST|CONFIG)\b[\]>:]?", re.I)
_LOGCAT = re.compile(r"^[VDIWEFA]/[^(]{1,80}\(\s*\d+\):")

_TRACE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # every shape the text trace parsers read (analyzers/dumps/text): a traceback at any
    # indent, an exception group (3.11 ``+``/``|`` box margins), faulthandler dumps
    ("python", re.compile(r"^[ \t]*Traceback \(most recent call last\):[ \t]*\r?\n[ \t]*File \"", re.M)),
    ("python", re.compile(r"^[ \t]*\+ Exception Group Traceback \(most recent call last\):[ \t]*\r?\n"
                          r"[ \t]*\| ", re.M)),
    ("faulthandler", re.compile(r"^[ \t]*(Fatal Python error: |Timeout \([^)\n]*\)!|"
                                r"(Current thread|Thread|Stack)( (0x[0-9a-fA-F]+|\d+))?( \"[^\"\n]*\")? "
                                r"\(most recent call first\):)", re.M)),
    ("jstack", re.compile(r"^Full thread dump ", re.M)),
    ("java", re.compile(r"^(Exception in thread \"[^\"]*\" |Caused by: )?[\w$.]+(Exception|Error|Throwable)"
                        r"(: .*)?\r?\n(\s+at [\w$.<>/]+\(.*\)[ \t]*\r?(\n|$)){2}", re.M)),
    # an uncaught exception with a single frame (the JVM's own header makes it certain)
    ("java", re.compile(r"^Exception in thread \"[^\"]*\" [\w$.]+(: .*)?\r?\n\s+at [\w$.<>/]+\(.*\)[ \t]*\r?(\n|$)",
                        re.M)),
    ("dotnet", re.compile(r"^(Unhandled [Ee]xception[.:]|\s*System\.[\w.]+Exception\b.*\n\s+at \S)", re.M)),
    ("gdb", re.compile(r"^(#\d+\s+(0x[0-9a-f]+ in )?[\w:~<>.$@]+ \(.*\)( at | from )|"
                       r"Program terminated with signal |Core was generated by )", re.M)),
    ("go", re.compile(r"^(panic: |fatal error: ).*\n(\n|.*\n){0,3}goroutine \d+ \[", re.M)),
    ("rust", re.compile(r"^thread '[^']*' panicked at ", re.M)),
    ("node", re.compile(r"^\w*(Error|Exception)\b.*\n(\s+at .*\(?\S+:\d+:\d+\)?\s*\n){2}", re.M)),
)


def _lines(text: str, limit: int = 400) -> list[str]:
    lines = text.splitlines()[:limit]
    if len(lines) > 3 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]        # the last line may be cut by the head limit
    return [ln for ln in lines if ln.strip()]


def _log_score(lines: list[str]) -> float:
    if not lines:
        return 0.0
    # Indented lines continue the record above them (stack frames, wrapped
    # messages): only lines that start a record are scored.
    lines = [ln for ln in lines if not ln[:1].isspace()]
    if not lines:
        return 0.0
    hits = 0
    for ln in lines:
        start = ln[:64]
        if _TS_ANY.search(start) or _LEVEL_FIRST.match(ln) or _LOGCAT.match(ln):
            hits += 1
    return hits / len(lines)


def _looks_json(text: str) -> str:
    s = text.lstrip()
    if not s or s[0] not in "{[":
        return ""
    try:
        json.loads(s)
        return "json"
    except json.JSONDecodeError as exc:
        # JSON cut by the head limit fails only in its last line
        if exc.pos >= s.rstrip().rfind("\n") and s.count("\n") >= 3:
            return "json"
    except (ValueError, RecursionError):     # RecursionError: nested deeper than json can read
        pass
    lines = [ln for ln in s.splitlines()[:50] if ln.strip()]
    ok = 0
    for ln in lines[:-1] or lines:
        try:
            if isinstance(json.loads(ln), (dict, list)):
                ok += 1
        except (ValueError, RecursionError):
            pass
    if lines and ok >= max(1, len(lines[:-1] or lines) * 0.9):
        return "jsonl"
    return ""


_LOG_KEYS_TIME = {"time", "timestamp", "ts", "@timestamp", "datetime", "date", "asctime", "eventtime", "t"}
_LOG_KEYS_MSG = {"level", "msg", "message", "severity", "lvl", "log", "loglevel", "@message",
                 # an event stream's records (a container runtime's, an orchestrator's, an audit trail's):
                 # a time and what happened
                 "event", "type", "action", "reason", "status", "topic", "eventtype", "event_type"}


def _jsonl_is_log(text: str) -> bool:
    objs = []
    for ln in text.splitlines()[:50]:
        try:
            v = json.loads(ln)
        except (ValueError, RecursionError):
            continue
        if isinstance(v, dict):
            objs.append({k.lower() for k in v})
    if not objs:
        return False
    good = sum(1 for keys in objs if keys & _LOG_KEYS_TIME and keys & _LOG_KEYS_MSG)
    return good >= 0.8 * len(objs)


def _delimited(lines: list[str], name_says_data: bool) -> str:
    if len(lines) < 2:
        return ""
    sample = "\n".join(lines[:60])
    for delim, fmt in (("\t", "tsv"), (",", "csv"), (";", "csv"), ("|", "psv")):
        if delim not in lines[0] and not (lines[0].startswith("#") and delim in lines[1]):
            continue
        rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delim) if r]
        body = [r for r in rows if not (r[0].startswith("#") and r is rows[0])]
        counts = [len(r) for r in body]
        if not counts:
            continue
        common = max(set(counts), key=counts.count)
        if common < 2 or counts.count(common) < 0.9 * len(counts):
            continue
        header = body[0]
        header_like = all(re.fullmatch(r"[A-Za-z_#][\w .()/#-]*", f.strip() or "x") for f in header)
        if name_says_data or header_like:
            return fmt
    return ""


#: An insta snapshot: a ``---`` header of ``key: value`` lines naming the test source.
_INSTA = re.compile(r"---\n([\w_]+: .*\n){0,8}source: .*\n([\w_]+: .*\n|\n){0,8}---\n")
#: Lines of a configuration file, matched whole against the stripped line (no blanks on either side:
#: ``\s*`` around a run that may itself hold blanks backtracks for minutes on a line of 9,000 spaces).
_INI = re.compile(r"\[[^\]]+\]|[\w.\-/][\w.\-/ ]*=.*|[;#].*")
_YAML = re.compile(r"-\s+.*|[\w.\-\"']+:(\s+.*)?|#.*|---|\.\.\.")


def _config_format(text: str, lines: list[str]) -> str:
    s = text.lstrip()
    if re.match(r"<(!doctype html|html[\s>])", s, re.I):
        return ""
    if s.startswith("<?xml") or re.match(r"<[A-Za-z][\w:.-]*[\s>]", s):
        return "xml"
    if len(lines) < 3:
        return ""
    if sum(1 for ln in lines if _INI.fullmatch(ln.strip())) >= 0.9 * len(lines) and any("=" in ln for ln in lines):
        return "ini" if any(ln.lstrip().startswith("[") for ln in lines) else "properties"
    if sum(1 for ln in lines if _YAML.fullmatch(ln.strip())) >= 0.9 * len(lines) and any(":" in ln for ln in lines):
        return "yaml"
    return ""


def classify_text(text: str, name: str) -> TextVerdict:
    """Decide the kind of a decoded text head (see module docstring for the order)."""
    head = text[:8192]
    lines = _lines(text)
    first = lines[0].strip() if lines else ""
    by_name = kind_from_name(name)

    # 1. strong signatures
    top = head[:4096]
    first60 = "\n".join(text.splitlines()[:60])
    if (top.lstrip().startswith("#") and len(_HS_ERR_HEADER.findall(top)) >= 2) \
            or _HS_ERR.search(first60) or _HS_ERR_SIGNAL.search(first60) or _HS_ERR_SECTION.search(head):
        # the hs_err parser reads a text whose first 60 lines hold its banner or signal line
        return TextVerdict(_K.HS_ERR, "hs_err")
    if re.match(r"MODULE \S+ \S+ [0-9A-Fa-f]{9,40} \S", first) or (
            first.startswith(("STACK CFI", "STACK WIN", "FUNC ", "PUBLIC "))
            and sum(1 for ln in lines[:200] if _SYM_RECORD.match(ln)) >= 0.95 * len(lines[:200])):
        return TextVerdict(_K.SYMBOLS, "breakpad-sym")
    if "-----BEGIN BREAKPAD MICRODUMP-----" in head:
        return TextVerdict(_K.CRASH_TRACE, "microdump")
    if _INSTA.match(head.replace("\r\n", "\n")):
        return TextVerdict(_K.DATA, "insta-snapshot")
    if first.startswith("Operating system: ") and re.search(r"^CPU: ", head, re.M):
        return TextVerdict(_K.DATA, "stackwalk")
    if first.startswith("OS|") and re.search(r"^(CPU|Crash|Module)\|", head, re.M):
        return TextVerdict(_K.DATA, "stackwalk-mr")
    if first == "MDRawHeader":
        return TextVerdict(_K.DATA, "minidump-dump")

    # 2. the name, where it is specific and the weak heuristics below could mislead
    if by_name and by_name.kind in (_K.SOURCE, _K.DOCUMENT) and by_name.format != "text":
        return by_name
    if by_name and by_name.format == "tool-output":     # stack-walker output, whatever it says
        return TextVerdict(_K.DATA, _looks_json(text) or "tool-output")
    if text.startswith("#!") and not by_name:
        return TextVerdict(_K.SOURCE, "script")

    # 3. structured data
    js = _looks_json(text)
    if js:
        if js == "jsonl" and _jsonl_is_log(text):
            return TextVerdict(_K.TEXT_LOG, "jsonl")
        if by_name and by_name.kind is _K.CONFIG:
            return TextVerdict(_K.CONFIG, "json")
        return TextVerdict(_K.DATA, js)
    name_data = bool(by_name and by_name.kind is _K.DATA)
    delim = _delimited(lines, name_data)
    if delim:
        return TextVerdict(_K.DATA, delim)

    # 4. logs and traces: a trace that starts the text is a trace whatever its first
    # words look like ("Fatal Python error:" starts like a log line)
    for fmt, rx in _TRACE_RULES:
        m = rx.search(head)
        if m and not head[:m.start()].strip():
            return TextVerdict(_K.CRASH_TRACE, fmt)
    score = _log_score(lines)
    if score >= 0.5:
        return TextVerdict(_K.TEXT_LOG, "")
    for fmt, rx in _TRACE_RULES:
        if rx.search(head):
            return TextVerdict(_K.CRASH_TRACE, fmt)
    if by_name and by_name.kind is _K.TEXT_LOG:
        return by_name
    if score >= 0.2 and len(lines) >= 5:
        return TextVerdict(_K.TEXT_LOG, "")

    # 5. configuration, then the name, then prose
    cfg = _config_format(text, lines)
    if cfg and not (by_name and by_name.kind is _K.DATA):
        return TextVerdict(_K.CONFIG, cfg)
    if by_name:
        return by_name
    return TextVerdict(_K.DOCUMENT, "text")

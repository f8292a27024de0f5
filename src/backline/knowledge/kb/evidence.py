"""What the matchers look at: the findings and facts of one analysis, indexed once.

Nothing here reads evidence files: log lines come from the log findings and
the ``log.template_index`` fact of the ``logs.text`` analyzer, Windows events
from the ``EVTX.*`` findings and the ``evtx.event_index`` fact of ``logs.evtx``,
crashes from the ``DUMP.*`` findings and ``dump.*`` facts.

>>> from backline.model import Finding, Severity, EvidenceRef
>>> ev = Evidence([Finding("LOG.ERROR_TEMPLATE", "3x open failed", Severity.HIGH, "app.log",
...                        (EvidenceRef.line("app.log", 4, "open failed: Too many open files"),), count=3,
...                        data={"template_id": "t1", "template": "open failed: <*>"})], [])
>>> [(i.count, i.ref.locator) for i in ev.log_items()]
[(3, 'line:4')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from backline.model import EvidenceRef, Fact, Finding, Severity

MISSING = object()

#: Finding codes whose text is log text (templates, excerpts of lines).
LOG_CODES = ("LOG.ERROR_TEMPLATE", "LOG.FIRST_ERROR", "LOG.BURST", "LOG.RARE_TEMPLATE", "LOG.NEW_TEMPLATE",
             "LOG.SILENCE")
#: Crash findings whose title is ``Type: message`` (text traces, also found inside logs).
EXCEPTION_CODES = ("DUMP.PYTHON_EXCEPTION", "DUMP.JAVA_EXCEPTION", "DUMP.DOTNET_EXCEPTION", "DUMP.JVM_FATAL",
                   "DUMP.PYTHON_FATAL")
#: The provider (and event id, where fixed) implied by the evtx analyzer's own finding codes.
_EVTX_IMPLIED = {
    "EVTX.SERVICE_CRASH": lambda d: ("Service Control Manager", d.get("event_id")),
    "EVTX.UNEXPECTED_SHUTDOWN": lambda d: ("EventLog" if d.get("event_id") == 6008 else
                                           "Microsoft-Windows-Kernel-Power", d.get("event_id")),
    "EVTX.APP_CRASH": lambda d: ({1000: "Application Error", 1002: "Application Hang",
                                  1001: "Windows Error Reporting"}.get(d.get("event_id"), ""), d.get("event_id")),
}


def norm_provider(name: str) -> str:
    """Providers compare case-insensitively and with or without ``Microsoft-Windows-``.

    >>> norm_provider("Microsoft-Windows-Security-Kerberos") == norm_provider("security-kerberos")
    True
    """
    n = name.strip().lower()
    return n[len("microsoft-windows-"):] if n.startswith("microsoft-windows-") else n


def lookup(mapping: Any, path: str) -> Any:
    """The value at a dotted ``path`` in nested mappings (``""`` = the value itself), else MISSING.

    >>> lookup({"a": {"b": 3}}, "a.b"), lookup({"a": 1}, "x") is MISSING
    (3, True)
    """
    cur = mapping
    if not path:
        return cur
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return MISSING
    return cur


@dataclass(slots=True)
class LogItem:
    """One kind of log line in one artifact: its texts (template, example lines) and count."""

    artifact: str
    texts: list[str]
    count: int
    ref: EvidenceRef | None
    code: str
    severity: Severity


@dataclass(slots=True)
class EventItem:
    """One Windows event kind (provider + id) in one artifact, with its data field values."""

    artifact: str
    provider: str
    event_id: int
    count: int
    ref: EvidenceRef | None
    severity: Severity
    fields: dict[str, dict[str, int]] = field(default_factory=dict)   # field -> value -> count


class Evidence:
    """The findings and facts one match runs over, plus the customer's product and version."""

    def __init__(self, findings: Sequence[Finding], facts: Sequence[Fact], *, product: str | None = None,
                 version: str | None = None):
        self.findings = [f for f in findings if not f.code.startswith("KB.")]
        self.facts = list(facts)
        self.product = product or None
        self.version = version or None
        self.by_code: dict[str, list[Finding]] = {}
        for f in self.findings:
            self.by_code.setdefault(f.code, []).append(f)
        self.facts_by_name: dict[str, list[Fact]] = {}
        for x in self.facts:
            self.facts_by_name.setdefault(x.name, []).append(x)
        self._logs: list[LogItem] | None = None
        self._events: list[EventItem] | None = None

    # ------------------------------------------------------------------ findings
    def with_code(self, code: str) -> list[Finding]:
        """Findings with ``code`` (``NET.TLS.*``: every code under ``NET.TLS``)."""
        if code.endswith(".*"):
            stem = code[:-1]
            return [f for c, fs in self.by_code.items() if c.startswith(stem) for f in fs]
        return self.by_code.get(code, [])

    def has_input(self, spec: str) -> bool:
        """Whether a rule input ``finding:CODE`` / ``fact:NAME`` is present."""
        kind, _, name = spec.partition(":")
        if kind == "finding":
            return bool(self.with_code(name))
        if kind == "fact":
            return bool(self.facts_by_name.get(name))
        return False

    # ------------------------------------------------------------------ logs
    def log_items(self) -> list[LogItem]:
        """Every kind of log line known from findings and template indexes (one per artifact + template)."""
        if self._logs is None:
            items: dict[tuple, LogItem] = {}

            def add(key: tuple, item: LogItem) -> None:
                old = items.get(key)
                if old is None:
                    items[key] = item
                    return
                old.texts.extend(t for t in item.texts if t not in old.texts)
                old.count = max(old.count, item.count)
                old.ref = old.ref or item.ref
                old.severity = max(old.severity, item.severity)

            for code in LOG_CODES:
                for f in self.by_code.get(code, ()):
                    tid = f.data.get("template_id") or f.title
                    texts = [str(f.data["template"])] if f.data.get("template") else [f.title]
                    texts += [r.excerpt for r in f.evidence if r.excerpt]
                    count = f.count if code != "LOG.FIRST_ERROR" else 1
                    add((f.artifact, tid), LogItem(f.artifact, texts, count,
                                                   f.evidence[0] if f.evidence else None, code, f.severity))
            for code in EXCEPTION_CODES:
                for f in self.by_code.get(code, ()):
                    texts = [f.title] + [r.excerpt for r in f.evidence if r.excerpt]
                    if f.data.get("detail"):
                        texts.append(str(f.data["detail"]))
                    add((f.artifact, code, f.data.get("signature") or f.title),
                        LogItem(f.artifact, texts, f.count, f.evidence[0] if f.evidence else None, code,
                                f.severity))
            for fact in self.facts_by_name.get("log.template_index", ()):
                for t in fact.value or ():
                    if not isinstance(t, Mapping):
                        continue
                    texts = [str(t.get("template", ""))] + ([str(t["example"])] if t.get("example") else [])
                    ref = EvidenceRef.line(fact.artifact, int(t.get("first_line") or 0), t.get("example"))
                    sev = _severity(t.get("severity"))
                    add((fact.artifact, t.get("template_id") or t.get("template")),
                        LogItem(fact.artifact, texts, int(t.get("count") or 1), ref, "log.template_index", sev))
            self._logs = list(items.values())
        return self._logs

    # ------------------------------------------------------------------ Windows events
    def event_items(self) -> list[EventItem]:
        """Windows events by artifact, provider and id: the event index where the analyzer made one,
        else the EVTX findings."""
        if self._events is None:
            out: list[EventItem] = []
            indexed: set[str] = set()
            for fact in self.facts_by_name.get("evtx.event_index", ()):
                indexed.add(fact.artifact)
                for e in fact.value or ():
                    if not isinstance(e, Mapping):
                        continue
                    rec = e.get("first_record")
                    ref = EvidenceRef.record(fact.artifact, int(rec), e.get("excerpt")) if rec is not None else None
                    fields = {str(k): {str(v): int(n) for v, n in vals.items()}
                              for k, vals in (e.get("fields") or {}).items() if isinstance(vals, Mapping)}
                    out.append(EventItem(fact.artifact, str(e.get("provider", "")), int(e.get("event_id") or 0),
                                         int(e.get("count") or 1), ref, _severity(e.get("severity")), fields))
            for f in self.findings:
                if not f.code.startswith("EVTX.") or f.artifact in indexed:
                    continue
                d = f.data
                if "provider" in d:
                    prov, eid = str(d.get("provider")), d.get("event_id")
                elif f.code in _EVTX_IMPLIED:
                    prov, eid = _EVTX_IMPLIED[f.code](d)
                else:
                    continue
                if eid is None:
                    continue
                fields = {str(k): {str(v): f.count} for k, v in d.items()
                          if k not in ("provider", "event_id", "rank") and isinstance(v, (str, int, float))}
                out.append(EventItem(f.artifact, prov, int(eid), f.count, f.evidence[0] if f.evidence else None,
                                     f.severity, fields))
            self._events = out
        return self._events


def _severity(value: Any) -> Severity:
    if isinstance(value, int):
        try:
            return Severity(value)
        except ValueError:
            return Severity.INFO
    try:
        return Severity.parse(str(value)) if value else Severity.INFO
    except ValueError:
        return Severity.INFO


# ----------------------------------------------------------------------------- conditions

def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        return None


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().lower() == b.strip().lower()
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        na = _num(a)
        return na is not None and na == float(b)
    if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, str):
        nb = _num(b)
        return nb is not None and float(a) == nb
    return a == b


#: The most one search of one matcher's regular expression over one text may take (seconds).
#: Matchers are written by people: a pattern that backtracks without end on some text must cost
#: a skipped known issue, not a hung analysis.
REGEX_SECONDS = 0.25


class RegexTimeout(Exception):
    """A matcher's regular expression ran past :data:`REGEX_SECONDS` on one text."""


class TimedPattern:
    """A regular expression (Python ``re`` syntax, run by the ``regex`` engine) whose every search
    is bounded by :data:`REGEX_SECONDS`; past it, :class:`RegexTimeout`.

    >>> bool(TimedPattern(r"Too many open files$").search("accept: Too many open files"))
    True
    """

    __slots__ = ("pattern", "_p")

    def __init__(self, pattern: str):
        import regex as _regex

        re.compile(pattern)                       # the documented syntax is Python's: its errors
        self.pattern = pattern
        self._p = _regex.compile(pattern, flags=_regex.VERSION0)

    def _run(self, fn, text: str):
        try:
            return fn(text, timeout=REGEX_SECONDS)
        except TimeoutError:
            raise RegexTimeout(f"regular expression /{self.pattern}/ ran longer than {REGEX_SECONDS:g} s on "
                               f"one text of {len(text)} characters (it backtracks without end): "
                               "make it simpler") from None

    def search(self, text: str):
        return self._run(self._p.search, text)

    def fullmatch(self, text: str):
        return self._run(self._p.fullmatch, text)


_RE_CACHE: dict[str, TimedPattern] = {}


def regex(pattern: str) -> TimedPattern:
    """A compiled (and cached) regular expression whose searches are time-bounded."""
    r = _RE_CACHE.get(pattern)
    if r is None:
        if len(_RE_CACHE) > 4096:
            _RE_CACHE.clear()
        r = _RE_CACHE[pattern] = TimedPattern(pattern)
    return r


def test(op: str, operand: Any, value: Any) -> bool:
    """Whether ``value`` (MISSING when absent) meets ``op operand`` (see :class:`~.model.Condition`).

    >>> test("gte", 0.05, 0.2), test("in", ["a", "B"], "b"), test("version", "<8.0_292", "8.0_191-b12")
    (True, True, True)
    >>> test("eq", "x", MISSING), test("exists", False, MISSING)
    (False, True)
    """
    if op == "exists":
        return (value is not MISSING and value is not None) == bool(operand)
    if value is MISSING or value is None:
        return False
    if isinstance(value, (list, tuple)) and op not in ("contains",):
        return any(test(op, operand, v) for v in value)
    if op == "eq":
        return _eq(value, operand)
    if op == "ne":
        return not _eq(value, operand)
    if op == "in":
        return any(_eq(value, o) for o in operand)
    if op == "not_in":
        return not any(_eq(value, o) for o in operand)
    if op == "regex":
        return bool(regex(operand).search(str(value)))
    if op == "not_regex":
        return not regex(operand).search(str(value))
    if op == "prefix":
        return str(value).lower().startswith(str(operand).lower())
    if op == "contains":
        if isinstance(value, (list, tuple)):
            return any(_eq(v, operand) for v in value)
        return str(operand).lower() in str(value).lower()
    if op in ("gte", "gt", "lte", "lt"):
        n = _num(value)
        if n is None:
            return False
        return {"gte": n >= operand, "gt": n > operand, "lte": n <= operand, "lt": n < operand}[op]
    if op == "version":
        from backline.knowledge.kb.versions import VersionRange, try_version

        v = try_version(value)
        return v is not None and VersionRange.parse(operand).contains(v)
    raise ValueError(f"unknown operator {op!r}")


def refs_of(findings: Iterable[Finding], per: int = 2, limit: int = 8) -> tuple[EvidenceRef, ...]:
    """The first ``per`` evidence references of each finding, at most ``limit`` in all."""
    out: list[EvidenceRef] = []
    for f in findings:
        out.extend(f.evidence[:per])
        if len(out) >= limit:
            break
    return tuple(out[:limit])

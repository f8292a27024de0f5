"""The cause->effect library: data, not code (``relations.toml`` in this package).

Two tables.  A **signal** is a class of finding recognised by its code (globs
allowed, ``@group`` names a list of codes) and, optionally, by words in its text
(``text``: a regular expression, case-insensitive, searched in the title, detail,
evidence excerpts and descriptive ``data`` values) or by ``data`` values.  It
carries a **prior** (how often a finding of this class is the cause of an
incident rather than a consequence), the title of a probable cause resting on
it, and what would confirm or refute it.  A **relation** says that findings of
some signals explain findings of others, joined on entities both name
(``endpoint``, ``host``, ``port``, ``pid``, ``process``, ``module``, ``path``,
``exception``, ``thread``), on being in the same ``artifact``, or only on
``time`` (the effect follows within ``within_s`` seconds), with a rationale.

>>> lib = load_library()
>>> sig = lib.signal("conn_refused")
>>> sig.prior > 0.5, "NET.TCP.RST_TO_SYN" in sig.codes
(True, True)
>>> any(r.cause == ("conn_refused",) for r in lib.relations)
True
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from backline.errors import FormatError
from backline.knowledge.diagnosis.entities import KINDS
from backline.model import Severity

LIBRARY_FILE = "relations.toml"
#: Join kinds a relation may name: the entity kinds plus the artifact and time.
JOINS = (*KINDS, "artifact", "time", "onset", "lockstep")
PLACEHOLDERS = re.compile(r"\{(\w+)\}")
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class Signal:
    """A class of finding (see the module docstring)."""

    id: str
    codes: tuple[str, ...]
    prior: float
    titles: tuple[str, ...]
    describe: tuple[str, ...]
    text: "LazyPattern | None" = None
    not_text: "LazyPattern | None" = None
    data: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    min_severity: int = 0            # findings below this severity are not of the class
    confirm: str = ""
    refute: str = ""
    ask: str = ""
    acute: bool = False              # a happening (a death, a crash), not a condition: repeats are not chronic
                                     # noise when the incident's effects follow it

    exact: frozenset[str] = frozenset()  # the codes without glob characters, for a set lookup
    globs: tuple[str, ...] = ()          # the rest, matched with fnmatch (few: a class of codes is mostly named)

    def matches_code(self, code: str) -> bool:
        if self.exact or self.globs:
            return code in self.exact or any(fnmatch.fnmatchcase(code, g) for g in self.globs)
        return any(fnmatch.fnmatchcase(code, c) for c in self.codes)

    def matches(self, code: str, text: str, data: Mapping[str, Any], severity: int = 4) -> bool:
        """Whether a finding with this code, text and data is of this class.  ``text`` must be in
        lower case (the patterns are compiled for lower-case text: 10x faster than ignoring case)."""
        if severity < self.min_severity or not self.matches_code(code):
            return False
        for key, accepted in self.data.items():
            if str(data.get(key, "")).lower() not in accepted:
                return False
        if self.text is not None and not self.text.screened_search(text):
            return False
        if self.not_text is not None and self.not_text.search(text):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Relation:
    """Findings of the ``cause`` signals explain findings of the ``effect`` signals."""

    id: str
    cause: tuple[str, ...]
    effect: tuple[str, ...]
    join: tuple[str, ...]
    rationale: str
    weight: float = 1.0
    order: str = "before"            # "before": the cause starts no later than the effect; "any"
    within_s: float = 3600.0         # how long after the cause an effect may start
    time_within_s: float = 120.0     # the same, when only time joins them
    contradict: tuple[str, ...] = () # kinds that, named differently on both sides, forbid a time-only
                                     # join (default: the entity kinds of ``join``)
    onset_s: float = 10.0            # "onset" join: the effect first appears within this long after the cause
    lag_s: float = 0.0               # how long after its effects began a cause may be logged (a wait told
                                     # when it gives up: "failed after 6.0s: database is locked")
    lend_prior: bool | None = None   # a cause tied to an acute effect (a death) by the program itself (pid,
                                     # process) is at least as likely a root cause as that effect; None (the
                                     # default): when the cause's class is not acute itself (see engine._lends)
    confirm: str = ""
    refute: str = ""


@dataclass(frozen=True, slots=True)
class Library:
    signals: tuple[Signal, ...]
    relations: tuple[Relation, ...]

    def signal(self, sid: str) -> Signal:
        for s in self.signals:
            if s.id == sid:
                return s
        raise KeyError(sid)


def lower_pattern(pattern: str) -> str:
    r"""The pattern for lower-case text: literals lowered, escapes (``\b``, ``\d``, ``\S`` ...) kept.

    >>> print(lower_pattern(r"ECONNREFUSED|\bErrno\s+\d+"))
    econnrefused|\berrno\s+\d+
    """
    out = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
        else:
            out.append(pattern[i].lower())
            i += 1
    return "".join(out)


def required_literals(pattern: str, min_len: int = 2) -> tuple[str, ...] | None:
    """Strings one of which every match of ``pattern`` contains (each at least ``min_len`` long), or
    None when the pattern does not say: a screen cheaper than the pattern (``in`` on the text).

    >>> required_literals(r"connection refused|econnrefused|errno[ =:]*(111|10061)\\b")
    ('connection refused', 'econnrefused', 'errno')
    >>> required_literals(r"\\bexit(ed)? (with )?status") is None, required_literals(r"(a|bc)d")
    (False, None)
    """
    from re import _constants as sc
    from re import _parser as sp

    def req(items) -> list[str] | None:
        best: tuple[int, list[str]] | None = None
        run: list[str] = []

        def consider(cand: list[str] | None) -> None:
            nonlocal best
            if cand:
                score = min(len(x) for x in cand)
                if best is None or score > best[0]:
                    best = (score, cand)

        for op, av in items:
            if op is sc.LITERAL:
                run.append(chr(av))
                continue
            if run:
                consider(["".join(run)])
                run = []
            if op is sc.SUBPATTERN:
                consider(req(av[-1]))
            elif op is sc.BRANCH:
                alts = [req(b) for b in av[1]]
                if all(alts):
                    consider([x for a in alts for x in a])    # type: ignore[union-attr]
            elif op in (sc.MAX_REPEAT, sc.MIN_REPEAT, getattr(sc, "POSSESSIVE_REPEAT", None)) and av[0] >= 1:
                consider(req(av[2]))
            # anything else (classes, anchors, lookarounds, optional parts) requires no literal
        if run:
            consider(["".join(run)])
        return best[1] if best else None

    try:
        found = req(sp.parse(pattern))
    except Exception:  # noqa: BLE001 - an unusual pattern simply gets no screen
        return None
    if not found or min(len(x) for x in found) < min_len:
        return None
    return tuple(dict.fromkeys(found))


class LazyPattern:
    """A class's text pattern (for lower-case text), compiled when a finding of the class's codes
    first needs it.  A bundle's findings carry a few codes, so most of the library's patterns are
    never compiled in a run (compiling all of them up front was most of the diagnosis's cost on the
    example case).  Once a pattern has been searched :attr:`SCREEN_AFTER` times it also gets its
    literal screen (:func:`required_literals`: a cheap ``in`` test that rejects most texts before
    the pattern runs); working the screen out costs about as much as compiling, which a small bundle
    would not earn back.  :meth:`check` compiles now (:func:`parse_library` checks every pattern of a
    library it is given; the shipped one is checked by the tests)."""

    SCREEN_AFTER = 32
    __slots__ = ("pattern", "_rx", "_hints", "_uses")

    def __init__(self, pattern: str):
        self.pattern, self._rx, self._hints, self._uses = pattern, None, None, 0

    def check(self) -> "LazyPattern":
        self._rx = re.compile(self.pattern)
        return self

    @property
    def hints(self) -> tuple[str, ...] | None:
        """Strings one of which every match contains (None: no screen)."""
        if self._uses <= self.SCREEN_AFTER:
            self._hints, self._uses = required_literals(self.pattern), self.SCREEN_AFTER + 1
        return self._hints

    def preset(self, hints: tuple[str, ...] | None) -> None:
        """Take a screen worked out before (the library cache): it applies from the first search."""
        self._hints, self._uses = hints, self.SCREEN_AFTER + 1

    def search(self, text: str):
        if self._rx is None:
            self._rx = re.compile(self.pattern)
        return self._rx.search(text)

    def screened_search(self, text: str) -> bool:
        """Whether the pattern matches ``text``, screened by its literals once it is used often."""
        if self._uses < self.SCREEN_AFTER:
            self._uses += 1
        else:
            hints = self.hints
            if hints is not None and not any(h in text for h in hints):
                return False
        return self.search(text) is not None


def _regex(value: Any, where: str, check: bool = True) -> LazyPattern | None:
    if value in (None, ""):
        return None
    pattern = LazyPattern(lower_pattern(str(value)))
    if check:
        try:
            pattern.check()
        except re.error as exc:
            raise FormatError(f"bad regular expression: {exc}", artifact=LIBRARY_FILE, locator=where) from None
    return pattern


def _severity(value: Any, where: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(Severity.parse(str(value)))
    except ValueError as exc:
        raise FormatError(str(exc), artifact=LIBRARY_FILE, locator=where + ".min_severity") from None


def _lend(value: Any, source: str, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise FormatError("lend_prior must be true or false", artifact=source, locator=where + ".lend_prior")


def parse_library(doc: Mapping[str, Any], source: str = LIBRARY_FILE, *, compile_now: bool = True) -> Library:
    """Build and check a :class:`Library` from the parsed TOML document (``compile_now=False``:
    the text patterns are compiled when first needed; for the shipped library, checked by the tests)."""
    groups = {k: tuple(v) for k, v in (doc.get("groups") or {}).items()}
    signals: list[Signal] = []
    seen: set[str] = set()
    for i, s in enumerate(doc.get("signal") or []):
        where = f"signal[{i}]"
        sid = s.get("id") or ""
        if not sid or sid in seen:
            raise FormatError(f"signal without id or with a duplicate id {sid!r}", artifact=source, locator=where)
        seen.add(sid)
        codes: list[str] = []
        for c in s.get("codes") or []:
            if c.startswith("@"):
                if c[1:] not in groups:
                    raise FormatError(f"unknown code group {c}", artifact=source, locator=where)
                codes.extend(groups[c[1:]])
            else:
                codes.append(c)
        prior = float(s.get("prior", -1))
        if not codes or not 0 <= prior <= 1:
            raise FormatError("a signal needs codes and a prior in [0, 1]", artifact=source, locator=where)
        titles = tuple(s.get("title") or ())
        if not titles or any(PLACEHOLDERS.search(titles[-1]) and p not in (*KINDS, "title")
                             for p in PLACEHOLDERS.findall(titles[-1])):
            raise FormatError("a signal needs titles, the last one a fallback", artifact=source, locator=where)
        describe = s.get("describe") or [sid]
        signals.append(Signal(
            id=sid, codes=tuple(codes), prior=prior, titles=titles,
            describe=(describe,) if isinstance(describe, str) else tuple(describe),
            exact=frozenset(c for c in codes if not _GLOB.search(c)),
            globs=tuple(dict.fromkeys(c for c in codes if _GLOB.search(c))),
            text=_regex(s.get("text"), where + ".text", compile_now),
            not_text=_regex(s.get("not_text"), where + ".not_text", compile_now),
            data={k: tuple(str(x).lower() for x in v) for k, v in (s.get("data") or {}).items()},
            min_severity=_severity(s.get("min_severity"), where),
            confirm=s.get("confirm", ""), refute=s.get("refute", ""), ask=s.get("ask", ""),
            acute=bool(s.get("acute", False))))
    relations: list[Relation] = []
    rids: set[str] = set()
    for i, r in enumerate(doc.get("relation") or []):
        where = f"relation[{i}]"
        rid = r.get("id") or ""
        if not rid or rid in rids:
            raise FormatError(f"relation without id or with a duplicate id {rid!r}", artifact=source, locator=where)
        rids.add(rid)
        cause, effect, join = tuple(r.get("cause") or ()), tuple(r.get("effect") or ()), tuple(r.get("join") or ())
        unknown = [x for x in (*cause, *effect) if x not in seen]
        bad_join = [j for j in (*join, *(r.get("contradict") or ())) if j not in JOINS]
        if not cause or not effect or not join or unknown or bad_join or not r.get("rationale"):
            raise FormatError(f"relation {rid}: needs cause, effect, join and rationale"
                              + (f"; unknown signal(s) {unknown}" if unknown else "")
                              + (f"; unknown join(s) {bad_join}" if bad_join else ""),
                              artifact=source, locator=where)
        order = r.get("order", "before")
        if order not in ("before", "any"):
            raise FormatError(f"relation {rid}: order must be before or any", artifact=source, locator=where)
        relations.append(Relation(
            id=rid, cause=cause, effect=effect, join=join, rationale=r["rationale"],
            weight=float(r.get("weight", 1.0)), order=order, within_s=float(r.get("within_s", 3600)),
            time_within_s=float(r.get("time_within_s", 120)), contradict=tuple(r.get("contradict") or ()),
            onset_s=float(r.get("onset_s", 10)), lag_s=float(r.get("lag_s", 0)), lend_prior=_lend(r.get("lend_prior"), source, where),
            confirm=r.get("confirm", ""),
            refute=r.get("refute", "")))
    return Library(tuple(signals), tuple(relations))


#: Bumped when what the cache holds changes shape.
CACHE_FORMAT = 1


def cache_dir() -> Path | None:
    """Where the parsed library is kept between runs: ``$BACKLINE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/backline``, else ``~/.cache/backline`` (None when no home is known)."""
    explicit = os.environ.get("BACKLINE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "backline"
    try:
        return Path.home() / ".cache" / "backline"
    except RuntimeError:
        return None


def _cached(text: str) -> tuple[dict, dict] | None:
    """The parsed TOML document and the patterns' literal screens of this library text, from the
    cache; None when absent or unreadable (a cache is never trusted beyond its key and shape)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"relations-{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
        if blob.get("format") == CACHE_FORMAT and isinstance(blob.get("doc"), dict) and isinstance(blob.get("hints"), dict):
            return blob["doc"], blob["hints"]
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _store(text: str, doc: dict, lib: Library) -> None:
    """Keep the parsed document and every pattern's literal screen for the next run (best effort:
    a read-only or missing home just means the next run parses again)."""
    folder = cache_dir()
    if folder is None:
        return
    hints = {p.pattern: p.hints for s in lib.signals for p in (s.text, s.not_text) if p is not None}
    path = folder / f"relations-{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "doc": doc, "hints": hints}), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass


@lru_cache(maxsize=1)
def load_library() -> Library:
    """The library shipped in this package.  Parsing its TOML and working out its patterns' literal
    screens costs about a third of a small bundle's diagnosis, so both are kept in a cache file keyed
    by the library's text (:func:`cache_dir`) and read from there by the next run."""
    text = resources.files("backline.knowledge.diagnosis").joinpath(LIBRARY_FILE).read_text(encoding="utf-8")
    cached = _cached(text)
    if cached is not None:
        doc, hints = cached
        try:
            lib = parse_library(doc, compile_now=False)
        except (FormatError, AttributeError, TypeError, ValueError, KeyError):   # a damaged cache: parse again
            lib = None
        if lib is not None:
            for sig in lib.signals:
                for pat in (sig.text, sig.not_text):
                    if pat is not None and pat.pattern in hints:
                        got = hints[pat.pattern]
                        pat.preset(tuple(got) if isinstance(got, list) and all(isinstance(x, str) for x in got)
                                   else None)
            return lib
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"not TOML: {exc}", artifact=LIBRARY_FILE) from None
    lib = parse_library(doc, compile_now=False)
    _store(text, doc, lib)
    return lib

"""Known issues from JSON or YAML: schema check, then :class:`~.model.KnownIssue` objects.

A file holds one entry, a list of entries, or ``{"entries": [...]}``; a
folder is every ``*.json`` / ``*.yaml`` / ``*.yml`` in it (sorted, not
recursive).  Every problem is a :class:`~backline.errors.FormatError` that
names the file and the field (``pack/tls.yaml entries[2].matchers[0].where.rate:
'high' is not of type 'number'``) - never a traceback.

>>> ki = parse_entry({"key": "KB-7", "title": "Port refused", "matchers": [
...     {"finding": "NET.TCP.RST_TO_SYN", "where": {"server": {"regex": ":5432$"}}}]})
>>> ki.matchers[0].describe()
'finding NET.TCP.RST_TO_SYN where server regex :5432$'
>>> parse_entry({"key": "KB-7", "title": "x", "matchers": [{"finding": "X", "min_count": 0}]}, source="a.yaml")
Traceback (most recent call last):
...
backline.errors.FormatError: a.yaml matchers[0].min_count: 0 is less than the minimum of 1
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from backline.errors import FormatError
from backline.knowledge.kb.model import (Affects, Condition, EventMatcher, ExceptionMatcher, FactMatcher,
                                         FindingMatcher, Fix, KnownIssue, LogMatcher, Matcher, RuleMatcher,
                                         SignatureMatcher, Status)
from backline.knowledge.kb.versions import Version, VersionRange
from backline.model import Severity

SCHEMA_FILE = "kb.schema.json"
MATCHER_KINDS = ("finding", "signature", "bucket", "exception", "log", "event", "fact", "rule")
OPERATORS = ("eq", "ne", "in", "not_in", "regex", "not_regex", "prefix", "contains", "gte", "gt", "lte", "lt",
             "exists", "version")
SUFFIXES = (".json", ".yaml", ".yml")
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_ENTRIES = 10_000


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of one known issue (``kb.schema.json``)."""
    text = resources.files("backline.knowledge.kb").joinpath(SCHEMA_FILE).read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def _validator(part: str = ""):
    import jsonschema

    s = schema()
    if part:
        s = {"$ref": f"#/$defs/{part}", "$defs": s["$defs"]}
    return jsonschema.Draft202012Validator(s)


def _path(base: str, parts: Iterable[Any]) -> str:
    out = base
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _check(raw: Any, part: str, where: str, source: str) -> None:
    errors = sorted(_validator(part).iter_errors(raw), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    import jsonschema

    err = jsonschema.exceptions.best_match(errors) or errors[0]
    path = _path(where, err.absolute_path)
    msg = err.message if len(err.message) <= 300 else err.message[:297] + "..."
    raise FormatError(msg, artifact=source or None, locator=path or None)


def _fail(source: str, where: str, message: str) -> FormatError:
    return FormatError(message, artifact=source or None, locator=where or None)


def _regex(text: str, source: str, where: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise _fail(source, where, f"not a valid regular expression ({exc})") from None
    return text


def _condition(path: str, spec: Any, source: str, where: str) -> Condition:
    if not isinstance(spec, Mapping):
        return Condition(path, "eq", spec)
    (op, value), = spec.items()
    if op in ("regex", "not_regex"):
        _regex(value, source, f"{where}.{op}")
    if op == "version":
        try:
            VersionRange.parse(value)
        except ValueError as exc:
            raise _fail(source, f"{where}.version", str(exc)) from None
    return Condition(path, op, value)


def _conditions(spec: Mapping[str, Any] | None, source: str, where: str) -> tuple[Condition, ...]:
    return tuple(_condition(k, v, source, f"{where}.{k}") for k, v in (spec or {}).items())


def _fact(raw: Mapping[str, Any], source: str, where: str) -> FactMatcher:
    ops = [k for k in raw if k in OPERATORS]
    if len(ops) != 1:
        raise _fail(source, where, f"a fact test needs exactly one of {', '.join(OPERATORS)} "
                                   f"(has {', '.join(ops) or 'none'})")
    op = ops[0]
    return FactMatcher(str(raw["fact"]), _condition(str(raw.get("path", "")), {op: raw[op]}, source, f"{where}"))


def parse_matcher(raw: Any, *, source: str = "", where: str = "matcher") -> Matcher:
    """One matcher from its data form (see docs/knowledge.md)."""
    if not isinstance(raw, Mapping):
        raise _fail(source, where, f"a matcher is an object, not {type(raw).__name__}")
    kinds = [k for k in MATCHER_KINDS if k in raw]
    if len(kinds) != 1:
        raise _fail(source, where, f"a matcher needs exactly one of {', '.join(MATCHER_KINDS)} "
                                   f"(has {', '.join(kinds) or 'none'})")
    kind = kinds[0]
    _check(raw, kind, where, source)
    if kind == "finding":
        if raw.get("title_regex"):
            _regex(raw["title_regex"], source, f"{where}.title_regex")
        return FindingMatcher(raw["finding"], _conditions(raw.get("where"), source, f"{where}.where"),
                              raw.get("title_regex", ""), int(raw.get("min_count", 1)))
    if kind in ("signature", "bucket"):
        return SignatureMatcher(signature=raw.get("signature", ""), bucket=raw.get("bucket", ""),
                                prefix=bool(raw.get("prefix", False)))
    if kind == "exception":
        for k in ("message", "frame"):
            if raw.get(k):
                _regex(raw[k], source, f"{where}.{k}")
        return ExceptionMatcher(raw["exception"], raw.get("message", ""), raw.get("frame", ""))
    if kind == "log":
        spec = raw["log"]
        if not (spec.get("regex") or spec.get("template")) or (spec.get("regex") and spec.get("template")):
            raise _fail(source, f"{where}.log", "give exactly one of regex, template")
        if spec.get("regex"):
            _regex(spec["regex"], source, f"{where}.log.regex")
        return LogMatcher(spec.get("regex", ""), spec.get("template", ""), int(spec.get("min_count", 1)))
    if kind == "event":
        spec = raw["event"]
        return EventMatcher(spec["provider"], int(spec["id"]),
                            _conditions(spec.get("fields"), source, f"{where}.event.fields"),
                            int(spec.get("min_count", 1)))
    if kind == "fact":
        return _fact(raw, source, where)
    from backline.knowledge.kb.rules import get_rule

    try:
        get_rule(raw["rule"])
    except KeyError as exc:
        raise _fail(source, f"{where}.rule", str(exc.args[0])) from None
    return RuleMatcher(raw["rule"], dict(raw.get("params") or {}))


def parse_entry(raw: Any, *, source: str = "", where: str = "") -> KnownIssue:
    """One known issue from its data form; FormatError names ``source`` and the field."""
    if not isinstance(raw, Mapping):
        raise _fail(source, where, f"a known issue is an object, not {type(raw).__name__}")
    _check(raw, "", where, source)
    at = (lambda field: f"{where}.{field}" if where else field)
    fix = raw.get("fix") or {}
    if fix.get("fixed_in"):
        try:
            Version.parse(fix["fixed_in"])
        except ValueError as exc:
            raise _fail(source, at("fix.fixed_in"), str(exc)) from None
    affects = []
    for i, a in enumerate(raw.get("affects") or ()):
        try:
            VersionRange.parse(a.get("versions", "*"))
        except ValueError as exc:
            raise _fail(source, at(f"affects[{i}].versions"), str(exc)) from None
        affects.append(Affects(a.get("product", ""), a.get("versions", "*") or "*", a.get("fact", "")))
    matchers = tuple(parse_matcher(m, source=source, where=at(f"matchers[{i}]"))
                     for i, m in enumerate(raw["matchers"]))
    when = tuple(_fact(w, source, at(f"when[{i}]")) for i, w in enumerate(raw.get("when") or ()))
    return KnownIssue(
        key=raw["key"], title=raw["title"], symptoms=raw.get("symptoms", ""),
        root_cause=raw.get("root_cause", ""), workaround=raw.get("workaround", ""),
        fix=Fix(fix.get("bug", ""), fix.get("bug_url", ""), fix.get("fixed_in", ""), fix.get("hotfix", "")),
        affects=tuple(affects), status=Status(raw.get("status", "published")), matchers=matchers,
        match=raw.get("match", "any"), when=when,
        severity=Severity.parse(raw["severity"]) if raw.get("severity") else None,
        tags=tuple(raw.get("tags") or ()), references=tuple(raw.get("references") or ()),
        notes=raw.get("notes", ""), source=source)


def _entries_of(doc: Any, source: str) -> list[tuple[str, Any]]:
    if isinstance(doc, Mapping) and "entries" in doc:
        extra = set(doc) - {"entries", "pack", "description", "version"}
        if extra:
            raise _fail(source, "", f"unknown top-level field(s) {', '.join(sorted(extra))} "
                                    "(a file is one entry, a list, or {entries: [...]})")
        items = doc["entries"]
        if not isinstance(items, list):
            raise _fail(source, "entries", "must be a list")
        return [(f"entries[{i}]", e) for i, e in enumerate(items)]
    if isinstance(doc, list):
        return [(f"[{i}]", e) for i, e in enumerate(doc)]
    return [("", doc)]


def parse_text(text: str, source: str, *, suffix: str | None = None) -> list[KnownIssue]:
    """Entries from the text of a JSON or YAML file (``suffix`` decides; YAML also reads JSON)."""
    suffix = (suffix or Path(source).suffix).lower()
    if suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"not JSON: {exc.msg}", artifact=source, locator=f"line:{exc.lineno}") from None
    else:
        import yaml

        try:
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            loc = f"line:{mark.line + 1}" if mark is not None else None
            raise FormatError(f"not YAML: {getattr(exc, 'problem', None) or exc}", artifact=source,
                              locator=loc) from None
    if doc is None:
        return []
    items = _entries_of(doc, source)
    if len(items) > MAX_ENTRIES:
        raise _fail(source, "", f"{len(items)} entries is more than the {MAX_ENTRIES} a file may hold")
    out = [parse_entry(raw, source=source, where=where) for where, raw in items]
    _no_duplicates(out)
    return out


def load_file(path: Path, *, label: str | None = None) -> list[KnownIssue]:
    """Entries of one JSON/YAML file."""
    source = label or str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FormatError(f"larger than {MAX_FILE_BYTES:,} bytes", artifact=source)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", artifact=source) from None
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text", artifact=source) from None
    return parse_text(text, source, suffix=path.suffix)


def load_path(path: Path) -> list[KnownIssue]:
    """Entries of a file, or of every JSON/YAML file in a folder (sorted; keys must be unique)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        out = [ki for f in files for ki in load_file(f)]
    elif path.exists():
        out = load_file(path)
    else:
        raise FormatError("no such file or folder", artifact=str(path))
    _no_duplicates(out)
    return out


def _no_duplicates(entries: list[KnownIssue]) -> None:
    seen: dict[str, KnownIssue] = {}
    for ki in entries:
        if ki.key in seen:
            other = seen[ki.key]
            where = other.source if other.source == ki.source else f"{other.source} and {ki.source}"
            raise FormatError(f"{ki.key} is defined twice ({where})", artifact=ki.source or None)
        seen[ki.key] = ki


@lru_cache(maxsize=1)
def _pack() -> tuple[KnownIssue, ...]:
    root = resources.files("backline.knowledge.kb").joinpath("pack")
    out: list[KnownIssue] = []
    for item in sorted(root.iterdir(), key=lambda p: p.name):
        if item.name.endswith(SUFFIXES):
            out.extend(parse_text(item.read_text("utf-8"), f"pack:{item.name}"))
    _no_duplicates(out)
    return tuple(sorted(out, key=lambda ki: int(ki.key[3:])))


def load_pack() -> list[KnownIssue]:
    """The starter pack shipped with Backline (``knowledge/kb/pack/*.yaml``)."""
    return list(_pack())


# ----------------------------------------------------------------------------- back to data

def _cond_data(c: Condition) -> Any:
    return c.value if c.op == "eq" and not isinstance(c.value, (dict, list)) else {c.op: c.value}


def matcher_to_dict(m: Matcher) -> dict[str, Any]:
    """The data form of a matcher (what :func:`parse_matcher` reads)."""
    if isinstance(m, FindingMatcher):
        d: dict[str, Any] = {"finding": m.code}
        if m.where:
            d["where"] = {c.path: _cond_data(c) for c in m.where}
        if m.title_regex:
            d["title_regex"] = m.title_regex
        if m.min_count > 1:
            d["min_count"] = m.min_count
        return d
    if isinstance(m, SignatureMatcher):
        d = {"signature": m.signature} if m.signature else {"bucket": m.bucket}
        return d | ({"prefix": True} if m.prefix else {})
    if isinstance(m, ExceptionMatcher):
        d = {"exception": m.type}
        return d | ({"message": m.message} if m.message else {}) | ({"frame": m.frame} if m.frame else {})
    if isinstance(m, LogMatcher):
        spec: dict[str, Any] = {"regex": m.regex} if m.regex else {"template": m.template}
        return {"log": spec | ({"min_count": m.min_count} if m.min_count > 1 else {})}
    if isinstance(m, EventMatcher):
        ev: dict[str, Any] = {"provider": m.provider, "id": m.event_id}
        if m.fields:
            ev["fields"] = {c.path: _cond_data(c) for c in m.fields}
        return {"event": ev | ({"min_count": m.min_count} if m.min_count > 1 else {})}
    if isinstance(m, FactMatcher):
        d = {"fact": m.fact, m.condition.op: m.condition.value}
        return d | ({"path": m.condition.path} if m.condition.path else {})
    return {"rule": m.rule} | ({"params": dict(m.params)} if m.params else {})


def entry_to_dict(ki: KnownIssue) -> dict[str, Any]:
    """The data form of a known issue; ``parse_entry(entry_to_dict(ki))`` gives ``ki`` back.

    >>> ki = parse_entry({"key": "KB-3", "title": "t", "matchers": [{"log": {"regex": "EMFILE"}}]})
    >>> parse_entry(entry_to_dict(ki)) == ki
    True
    """
    d: dict[str, Any] = {"key": ki.key, "title": ki.title, "status": ki.status.value}
    if ki.severity is not None:
        d["severity"] = ki.severity.label
    for f in ("symptoms", "root_cause", "workaround", "notes"):
        if getattr(ki, f):
            d[f] = getattr(ki, f)
    fix = {k: getattr(ki.fix, k) for k in ("bug", "bug_url", "fixed_in", "hotfix") if getattr(ki.fix, k)}
    if fix:
        d["fix"] = fix
    if ki.affects:
        d["affects"] = [{k: v for k, v in (("product", a.product), ("versions", a.versions), ("fact", a.fact)) if v}
                        for a in ki.affects]
    d["match"] = ki.match
    d["matchers"] = [matcher_to_dict(m) for m in ki.matchers]
    if ki.when:
        d["when"] = [matcher_to_dict(w) for w in ki.when]
    if ki.tags:
        d["tags"] = list(ki.tags)
    if ki.references:
        d["references"] = list(ki.references)
    return d

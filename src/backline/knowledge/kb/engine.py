"""The matcher engine: known issues over the findings and facts of an analysis.

:func:`match_issues` evaluates every known issue and returns a
:class:`~.model.KbResult` for each one that matched, matched but is fixed in
(or outside the affected range of) the customer's version, or was skipped
because a rule's input is missing.  :func:`kb_findings` turns them into
findings: ``KB.MATCH`` (the issue applies) and ``KB.NOT_AFFECTED`` (it would,
but "fixed in 4.2.3, customer runs 4.2.5").

>>> from backline.model import Finding, Severity, EvidenceRef
>>> from backline.knowledge.kb.loader import parse_entry
>>> ki = parse_entry({"key": "KB-1", "title": "TLS version mismatch", "workaround": "Enable TLS 1.2.",
...                   "matchers": [{"finding": "NET.TLS.ALERT", "where": {"description": "protocol_version"}}]})
>>> alert = Finding("NET.TLS.ALERT", "TLS fatal alert protocol_version", Severity.HIGH, "c.pcap",
...                 (EvidenceRef.packet("c.pcap", 12),), data={"description": "protocol_version"})
>>> [f.title for f in kb_findings(match_issues([ki], [alert], []))]
['KB-1 TLS version mismatch']
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from backline.knowledge.kb.evidence import Evidence, RegexTimeout, TimedPattern, lookup, refs_of, regex, test
from backline.knowledge.kb.model import (Condition, EventMatcher, ExceptionMatcher, FactMatcher, FindingMatcher,
                                         Hit, KbResult, KnownIssue, LogMatcher, Matcher, RuleMatcher,
                                         SignatureMatcher, Status)
from backline.knowledge.kb.versions import VersionRange, try_version
from backline.model import EvidenceRef, Fact, Finding, Severity

ANALYZER = "knowledge.kb"
MATCH = "KB.MATCH"
NOT_AFFECTED = "KB.NOT_AFFECTED"
MAX_REFS = 10


class Skipped(Exception):
    """A rule's declared input is missing from the evidence."""


# ----------------------------------------------------------------------------- one matcher

def _cond_ok(cond: Condition, data: Any) -> bool:
    return test(cond.op, cond.value, lookup(data, cond.path))


def _finding(m: FindingMatcher, ev: Evidence) -> Hit | None:
    found = [f for f in ev.with_code(m.code)
             if all(_cond_ok(c, f.data) for c in m.where)
             and (not m.title_regex or regex(m.title_regex).search(f.title))]
    total = sum(max(1, f.count) for f in found)
    if not found or total < m.min_count:
        return None
    return Hit(m.describe(), refs_of(found), tuple(dict.fromkeys(f.artifact for f in found)), total,
               tuple(dict.fromkeys(f.code for f in found)), max(f.severity for f in found))


def _signature(m: SignatureMatcher, ev: Evidence) -> Hit | None:
    want = (m.signature or m.bucket).strip()
    keys = ("signature",) if m.signature else ("bucket_id",)
    fact_name = "dump.signature" if m.signature else "dump.bucket_id"

    def same(value: Any) -> bool:
        v = str(value).strip()
        return v.startswith(want) if m.prefix else v == want

    found = [f for f in ev.findings if any(k in f.data and same(f.data[k]) for k in keys)]
    seen = {f.artifact for f in found}
    facts = [x for x in ev.facts_by_name.get(fact_name, ()) if x.artifact not in seen and same(x.value)]
    if not found and not facts:
        return None
    refs = refs_of(found) + tuple(EvidenceRef(x.artifact, f"fact:{x.name}", str(x.value)[:200]) for x in facts)
    sev = max([f.severity for f in found] or [Severity.HIGH])
    return Hit(m.describe(), refs[:MAX_REFS], tuple(dict.fromkeys([f.artifact for f in found] +
                                                                  [x.artifact for x in facts])),
               len(found) + len(facts), tuple(dict.fromkeys(f.code for f in found)), sev)


def _type_names(f: Finding) -> list[str]:
    d = f.data
    names = [d.get("exception_type"), *(d.get("causes") or ()), d.get("reason"), d.get("signal")]
    return [str(n) for n in names if n]


def _type_ok(want: str, names: list[str]) -> bool:
    for n in names:
        if n == want or ("." not in want and n.rsplit(".", 1)[-1] == want):
            return True
    return False


def _frames(f: Finding) -> list[str]:
    d = f.data
    out = [s.strip() for s in str(d.get("signature") or "").split("|") if s.strip()]
    for k in ("problematic_frame", "blamed_frame"):
        if d.get(k):
            out.append(str(d[k]))
    frames = d.get("frames")
    for fr in frames if isinstance(frames, (list, tuple)) else ():
        if isinstance(fr, dict):
            fr = fr.get("display") or fr.get("function") or ""
        out.append(str(fr))
    out += [r.excerpt for r in f.evidence if r.excerpt and "frame" in r.locator]
    return out


def _exception(m: ExceptionMatcher, ev: Evidence) -> Hit | None:
    found = []
    for f in ev.findings:
        names = _type_names(f)
        if not names or not _type_ok(m.type, names):
            continue
        if m.message:
            texts = [f.title, f.detail, str(f.data.get("detail") or "")] + [r.excerpt or "" for r in f.evidence]
            if not any(regex(m.message).search(t) for t in texts if t):
                continue
        if m.frame and not any(regex(m.frame).search(fr) for fr in _frames(f)):
            continue
        found.append(f)
    if not found:
        return None
    return Hit(m.describe(), refs_of(found), tuple(dict.fromkeys(f.artifact for f in found)),
               sum(max(1, f.count) for f in found), tuple(dict.fromkeys(f.code for f in found)),
               max(f.severity for f in found))


def template_regex(template: str) -> TimedPattern:
    """A log template (``<*>`` = any text, other text literal, runs of spaces loose) as a regex.

    >>> bool(template_regex("open <*> failed: Too many open files").fullmatch("open /x failed: Too many open files"))
    True
    """
    parts = [r"\s+".join(re.escape(w) for w in piece.split()) for piece in template.strip().split("<*>")]
    return regex(".*?".join(parts).join(("(?:", ")")))


def _log(m: LogMatcher, ev: Evidence) -> Hit | None:
    if m.template:
        pat = template_regex(m.template)
        ok = lambda text: bool(pat.fullmatch(text.strip()))  # noqa: E731
    else:
        pat = regex(m.regex)
        ok = lambda text: bool(pat.search(text))  # noqa: E731
    found = [it for it in ev.log_items() if any(ok(t) for t in it.texts if t)]
    total = sum(it.count for it in found)
    if not found or total < m.min_count:
        return None
    refs = tuple(it.ref for it in found if it.ref is not None)[:MAX_REFS]
    return Hit(m.describe(), refs, tuple(dict.fromkeys(it.artifact for it in found)), total,
               tuple(dict.fromkeys(it.code for it in found)), max(it.severity for it in found))


def _event(m: EventMatcher, ev: Evidence) -> Hit | None:
    from backline.knowledge.kb.evidence import norm_provider

    want = norm_provider(m.provider)
    found, total = [], 0
    for it in ev.event_items():
        if it.event_id != m.event_id or norm_provider(it.provider) != want:
            continue
        n = it.count
        for c in m.fields:
            if c.path == "*":              # any data field
                vals = {}
                for fv in it.fields.values():
                    for val, cnt in fv.items():
                        vals[val] = max(vals.get(val, 0), cnt)
            else:
                vals = it.fields.get(c.path)
            if vals is None:
                # a field name compares case-insensitively
                vals = next((v for k, v in it.fields.items() if k.lower() == c.path.lower()), None)
            if vals is None:
                n = 1 if test(c.op, c.value, None) and c.op == "exists" else 0
            else:
                n = min(n, sum(cnt for val, cnt in vals.items() if test(c.op, c.value, val)))
            if not n:
                break
        if n:
            found.append(it)
            total += n
    if not found or total < m.min_count:
        return None
    refs = tuple(it.ref for it in found if it.ref is not None)[:MAX_REFS]
    return Hit(m.describe(), refs, tuple(dict.fromkeys(it.artifact for it in found)), total, ("evtx",),
               max(it.severity for it in found))


def _fact(m: FactMatcher, ev: Evidence) -> Hit | None:
    found = [x for x in ev.facts_by_name.get(m.fact, ()) if _cond_ok(m.condition, x.value)]
    if not found:
        return None
    refs = tuple(EvidenceRef(x.artifact, f"fact:{x.name}", str(x.value)[:200]) for x in found)[:MAX_REFS]
    return Hit(m.describe(), refs, tuple(dict.fromkeys(x.artifact for x in found)), len(found), (), Severity.INFO)


def _rule(m: RuleMatcher, ev: Evidence) -> list[Hit]:
    from backline.knowledge.kb.rules import get_rule

    rule = get_rule(m.rule)
    missing = [i for i in rule.inputs if not ev.has_input(i)]
    if missing:
        raise Skipped(f"rule {rule.name}: input {', '.join(missing)} missing")
    return rule.check(ev, m.params)


def evaluate(m: Matcher, ev: Evidence) -> list[Hit]:
    """What ``m`` matches in ``ev`` (empty: nothing).  Raises :class:`Skipped` for a rule without its inputs."""
    if isinstance(m, RuleMatcher):
        return _rule(m, ev)
    fn = {FindingMatcher: _finding, SignatureMatcher: _signature, ExceptionMatcher: _exception,
          LogMatcher: _log, EventMatcher: _event, FactMatcher: _fact}[type(m)]
    hit = fn(m, ev)   # type: ignore[operator]
    return [hit] if hit is not None else []


# ----------------------------------------------------------------------------- one known issue

def _relevant_affects(ki: KnownIssue, ev: Evidence):
    if not ki.affects:
        return [], True
    if ev.product is None:
        return list(ki.affects), True
    rel = [a for a in ki.affects if not a.product or a.product.strip().lower() == ev.product.strip().lower()]
    return rel, bool(rel)


def _the_version(affects, ev: Evidence) -> str | None:
    for a in affects:
        if a.fact:
            for x in ev.facts_by_name.get(a.fact, ()):
                if try_version(x.value) is not None:
                    return str(x.value)
            return None
    return ev.version


def _versions(ki: KnownIssue, ev: Evidence) -> tuple[str, str, str] | None:
    """(verdict, reason, version) by version, or None when the issue is for another product."""
    affects, applies = _relevant_affects(ki, ev)
    if not applies:
        return None
    version = _the_version(affects, ev)
    v = try_version(version) if version else None
    if v is None:
        note = f"fixed in {ki.fix.fixed_in}; the customer's version is unknown" if ki.fix.fixed_in else ""
        return "match", note, version or ""
    if ki.fix.fixed_in:
        fixed = try_version(ki.fix.fixed_in)
        if fixed is not None and v >= fixed:
            return "not_affected", f"fixed in {ki.fix.fixed_in}, customer runs {version}", str(version)
    ranges = [a.versions for a in affects if a.versions and a.versions.strip() not in ("", "*")]
    if ranges and not any(VersionRange.parse(r).contains(v) for r in ranges):
        return "not_affected", f"affects {' or '.join(ranges)}, customer runs {version}", str(version)
    note = ""
    if ki.fix.fixed_in:
        note = f"fixed in {ki.fix.fixed_in}, customer runs {version}: upgrade"
        if ki.fix.hotfix:
            note += f" or apply hotfix {ki.fix.hotfix}"
    return "match", note, str(version)


def evaluate_issue(ki: KnownIssue, ev: Evidence) -> KbResult | None:
    """The result of one known issue (None: it does not match and was not skipped)."""
    try:
        for gate in ki.when:
            if not evaluate(gate, ev):
                return None
    except RegexTimeout as exc:
        return KbResult(ki, "skipped", (), f"when: {exc}")
    hits: list[Hit] = []
    skipped: list[str] = []
    for m in ki.matchers:
        try:
            got = evaluate(m, ev)
        except (Skipped, RegexTimeout) as exc:
            skipped.append(str(exc))
            if ki.match == "all":
                break
            continue
        if got:
            hits.extend(got)
        elif ki.match == "all":
            return None
    if skipped and (ki.match == "all" or not hits):
        return KbResult(ki, "skipped", (), "; ".join(skipped))
    if not hits:
        return None
    verdict = _versions(ki, ev)
    if verdict is None:
        return None
    return KbResult(ki, verdict[0], tuple(hits), verdict[1], verdict[2])


def match_issues(issues: Iterable[KnownIssue], findings: Sequence[Finding], facts: Sequence[Fact], *,
                 product: str | None = None, version: str | None = None,
                 statuses: Sequence[Status] | None = (Status.PUBLISHED,)) -> list[KbResult]:
    """Every result of ``issues`` over the evidence (``statuses=None``: any status)."""
    ev = Evidence(findings, facts, product=product, version=version)
    out = []
    for ki in issues:
        if statuses is not None and ki.status not in statuses:
            continue
        r = evaluate_issue(ki, ev)
        if r is not None:
            out.append(r)
    return out


# ----------------------------------------------------------------------------- findings

def _common_artifact(hits: Sequence[Hit]) -> str:
    arts = {a for h in hits for a in h.artifacts}
    return arts.pop() if len(arts) == 1 else ""


def result_data(r: KbResult) -> dict[str, Any]:
    """The ``data`` of a KB finding: the issue, what matched (with evidence), the workaround and fix."""
    ki = r.issue
    return {
        "key": ki.key, "title": ki.title, "status": ki.status.value, "verdict": r.verdict,
        "reason": r.reason, "version": r.version, "source": ki.source,
        "matched": [{"matcher": h.matcher, "count": h.count, "codes": list(h.codes), "artifacts": list(h.artifacts),
                     "evidence": [{"artifact": e.artifact, "locator": e.locator, "excerpt": e.excerpt}
                                  for e in h.evidence]} for h in r.hits],
        "symptoms": ki.symptoms, "root_cause": ki.root_cause, "workaround": ki.workaround,
        "fix": {"bug": ki.fix.bug, "bug_url": ki.fix.bug_url, "fixed_in": ki.fix.fixed_in, "hotfix": ki.fix.hotfix},
        "references": list(ki.references), "tags": list(ki.tags),
    }


def result_finding(r: KbResult) -> Finding | None:
    """The finding of one result (None for a skipped one)."""
    ki = r.issue
    if r.verdict == "skipped":
        return None
    refs: list[EvidenceRef] = []
    for h in r.hits:
        refs.extend(h.evidence[:3])
    refs = refs[:MAX_REFS]
    matched = "; ".join(f"{h.matcher} ({h.evidence[0]})" if h.evidence else h.matcher for h in r.hits[:5])
    if r.verdict == "match":
        sev = ki.severity or max([h.severity for h in r.hits] + [Severity.MEDIUM])
        detail = f"Matched: {matched}."
        if ki.workaround:
            detail += f" Workaround: {ki.workaround.strip()}"
        fix = ki.fix.describe()
        if r.reason or fix:
            detail += f" ({r.reason or fix})"
        return Finding(MATCH, f"{ki.key} {ki.title}", sev, _common_artifact(r.hits), tuple(refs),
                       detail=detail, count=sum(h.count for h in r.hits), analyzer=ANALYZER,
                       data=result_data(r))
    return Finding(NOT_AFFECTED, f"{ki.key} {ki.title}: {r.reason}", Severity.INFO, _common_artifact(r.hits),
                   tuple(refs), detail=f"The evidence matches ({matched}) but {r.reason}.",
                   count=sum(h.count for h in r.hits), analyzer=ANALYZER, data=result_data(r))


def kb_findings(results: Iterable[KbResult]) -> list[Finding]:
    """``KB.MATCH`` / ``KB.NOT_AFFECTED`` findings of ``results``, matches first."""
    out = [f for f in (result_finding(r) for r in results) if f is not None]
    out.sort(key=lambda f: (f.code != MATCH, -int(f.severity), f.data.get("key", "")))
    return out

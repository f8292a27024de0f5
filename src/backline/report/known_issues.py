"""The "Known issues" section of every report format.

Known issues recognised in the evidence are findings (``KB.MATCH``, and
``KB.NOT_AFFECTED`` for one whose fix the customer already runs; see
:mod:`backline.knowledge.kb`).  Each report shows them near the top, after
the probable root cause: the key and title, what matched with its evidence
reference, and the workaround.  This module holds that section for the
terminal, Markdown and JSON renderers; the HTML one is
``assets/known_issues.html.j2``.

>>> from backline.model import Finding, Severity
>>> f = Finding("KB.MATCH", "KB-3 Unknown CA", Severity.HIGH, "c.pcap", data={
...     "key": "KB-3", "title": "Unknown CA", "verdict": "match", "workaround": "Send the chain.",
...     "matched": [{"matcher": "finding NET.TLS.ALERT", "count": 1,
...                  "evidence": [{"artifact": "c.pcap", "locator": "packet:8", "excerpt": None}]}]})
>>> [(k["key"], k["verdict"], k["matched"][0]["evidence"][0]["locator"]) for k in known_issues_json([f])]
[('KB-3', 'match', 'packet:8')]
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.text import Text

from backline.model import Finding

CODES = ("KB.MATCH", "KB.NOT_AFFECTED")


def known_issue_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """The known-issue findings, matches first (worst first), then the ones not affecting this version."""
    kb = [f for f in findings if f.code in CODES]
    kb.sort(key=lambda f: (f.code != "KB.MATCH", -int(f.severity), str(f.data.get("key", ""))))
    return tuple(kb)


def _refs(match: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in match.get("evidence") or [] if isinstance(e, dict)]


def known_issues_json(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """The JSON report's ``known_issues`` array (schema: ``$defs.known_issue``)."""
    out = []
    for f in known_issue_findings(findings):
        d = f.data
        fix = d.get("fix") or {}
        out.append({
            "key": str(d.get("key", "")), "title": str(d.get("title", f.title)),
            "verdict": "match" if f.code == "KB.MATCH" else "not_affected",
            "severity": f.severity.label, "artifact": f.artifact, "reason": str(d.get("reason") or ""),
            "version": str(d.get("version") or ""),
            "workaround": str(d.get("workaround") or ""), "root_cause": str(d.get("root_cause") or ""),
            "fix": {k: str(fix.get(k) or "") for k in ("bug", "bug_url", "fixed_in", "hotfix")},
            "matched": [{"matcher": str(m.get("matcher", "")), "count": int(m.get("count") or 0),
                         "evidence": [{"artifact": str(e.get("artifact", "")), "locator": str(e.get("locator", "")),
                                       "excerpt": e.get("excerpt")} for e in _refs(m)]}
                        for m in d.get("matched") or [] if isinstance(m, dict)],
            "source": str(d.get("source") or ""),
        })
    return out


def first_ref(item: dict[str, Any]) -> str:
    """``artifact locator`` of the first evidence of a known issue ('' when none)."""
    for m in item["matched"]:
        for e in m["evidence"]:
            return f"{e['artifact']} {e['locator']}".strip()
    return ""


def render_known_issues_text(findings: Sequence[Finding], console: Console, *, limit: int = 10) -> None:
    """The terminal block: one line per known issue, what matched where, the workaround."""
    from backline.report.text import SEVERITY_STYLE, clean

    items = known_issues_json(findings)
    if not items:
        return
    matches = [k for k in items if k["verdict"] == "match"]
    console.print()
    console.print(Text(f"Known issues ({len(matches)} matched"
                       + (f", {len(items) - len(matches)} fixed in the customer's version" if len(items) > len(matches)
                          else "") + ")", style="bold"))
    for k, f in list(zip(items, known_issue_findings(findings)))[:limit]:
        line = Text("  ")
        if k["verdict"] == "match":
            line.append(f.severity.label.upper(), style=SEVERITY_STYLE[f.severity])
        else:
            line.append("NOT AFFECTED", style="dim")
        line.append(" " + clean(k["key"], 20), style="bold")
        line.append(" " + clean(k["title"], 120))
        console.print(line)
        where = first_ref(k)
        matched = "; ".join(m["matcher"] for m in k["matched"][:3])
        console.print(Text(f"      matched {clean(matched, 160)}" + (f" at {clean(where, 100)}" if where else ""),
                           style="dim"))
        if k["verdict"] != "match":
            console.print(Text(f"      {clean(k['reason'], 200)}", style="dim"))
        elif k["workaround"]:
            console.print(Text(f"      workaround: {clean(k['workaround'], 300)}"))
            if k["reason"]:
                console.print(Text(f"      {clean(k['reason'], 200)}", style="dim"))
    if len(items) > limit:
        console.print(Text(f"  \u2026 and {len(items) - limit} more known issues (see the full report)", style="dim"))


def render_known_issues_markdown(findings: Sequence[Finding]) -> list[str]:
    """The Markdown section (lines), empty when no known issue was recognised."""
    from backline.report.markdown import code, esc, paragraph

    items = known_issues_json(findings)
    if not items:
        return []
    out = ["## Known issues", ""]
    for k in items:
        state = f"**{k['severity'].upper()}**" if k["verdict"] == "match" else "**not affected**"
        out.append(f"### {esc(k['key'], 20)} \u2014 {esc(k['title'], 200)}")
        out.append("")
        out.append(f"- {state}" + (f": {esc(k['reason'], 300)}" if k["reason"] else ""))
        for m in k["matched"][:5]:
            refs = ", ".join(f"{code(e['artifact'])} {code(e['locator'])}" for e in m["evidence"][:3])
            out.append(f"- matched {esc(m['matcher'], 300)}" + (f" at {refs}" if refs else ""))
        fix = "; ".join(f"{n}: {esc(v, 200)}" for n, v in (("bug", k["fix"]["bug"]), ("fixed in", k["fix"]["fixed_in"]),
                                                           ("hotfix", k["fix"]["hotfix"])) if v)
        if fix:
            out.append(f"- fix: {fix}")
        out.append("")
        if k["verdict"] == "match" and k["workaround"]:
            out += ["**Workaround:** " + paragraph(k["workaround"], 2000), ""]
    return out

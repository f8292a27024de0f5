"""The ``log.template_index`` fact: every template of a log with its count and first line.

Rules over findings (the known-issue matchers of :mod:`backline.knowledge.kb`)
need to know whether a kind of line occurs in a log at all, also when it is
neither an error nor rare enough to get a finding of its own ("Out of memory:
Killed process" in a syslog without levels).  This index lists each template
once: id, text, count, worst severity, first line and that line's text.

At most :data:`MAX_TEMPLATES` templates are listed; when a file has more,
the ones kept are the most severe, then the least frequent (the frequent
chatter is what is left out), and the fact says how many were left out.

>>> from backline.analyzers.logs.stats import TemplateStats
>>> t = TemplateStats("open <*> failed", "abc", count=2, first_line=7, examples=[(7, "open /x failed")])
>>> template_index([t])
[{'template_id': 'abc', 'template': 'open <*> failed', 'count': 2, 'severity': 'info', 'first_line': 7, 'example': 'open /x failed'}]
"""

from __future__ import annotations

from typing import Any, Sequence

from backline.analyzers.logs.stats import TemplateStats

MAX_TEMPLATES = 2000
MAX_TEXT = 300


def template_index(tpls: Sequence[TemplateStats], limit: int = MAX_TEMPLATES) -> list[dict[str, Any]]:
    """The index entries of ``tpls`` (see the module docstring), in first-line order."""
    keep = list(tpls)
    if len(keep) > limit:
        keep.sort(key=lambda t: (-int(t.severity), t.count, t.first_line))
        keep = keep[:limit]
    keep.sort(key=lambda t: t.first_line)
    out = []
    for t in keep:
        line, text = (t.examples[0] if t.examples else (t.first_line, ""))
        out.append({"template_id": t.template_id, "template": t.template[:MAX_TEXT], "count": t.count,
                    "severity": t.severity.label, "first_line": line or t.first_line,
                    "example": text[:MAX_TEXT]})
    return out

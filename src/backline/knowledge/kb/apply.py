"""Known issues in an analysis: which entries to use, and their findings.

:func:`knowledge_base` puts together the shipped starter pack and the entries
of the given files/folders (an entry in a file replaces the pack entry with
the same key, so a team can retire or reword a pack entry);
:func:`apply_known_issues` matches them and returns the ``KB.*`` findings and
a summary for the report's options (``options.kb``).

>>> len(knowledge_base([], pack=True)) >= 40, knowledge_base([], pack=False)
(True, ())
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from backline.knowledge.kb.engine import kb_findings, match_issues
from backline.knowledge.kb.loader import load_pack, load_path
from backline.knowledge.kb.model import KnownIssue
from backline.model import Fact, Finding


def merge_entries(*groups: Iterable[KnownIssue]) -> tuple[KnownIssue, ...]:
    """Entries of all groups by key; a later group's entry replaces an earlier one with the same key."""
    by_key: dict[str, KnownIssue] = {}
    for group in groups:
        for ki in group:
            by_key[ki.key] = ki
    return tuple(by_key.values())


def knowledge_base(paths: Sequence[Path], *, pack: bool = True) -> tuple[KnownIssue, ...]:
    """The starter pack (unless ``pack`` is False) plus the entries in ``paths`` (FormatError names a bad file)."""
    extra = [ki for p in paths for ki in load_path(Path(p))]
    return merge_entries(load_pack() if pack else (), extra)


def apply_known_issues(issues: Sequence[KnownIssue], findings: Sequence[Finding], facts: Sequence[Fact], *,
                       product: str | None = None, version: str | None = None
                       ) -> tuple[list[Finding], dict[str, Any]]:
    """``KB.MATCH`` / ``KB.NOT_AFFECTED`` findings, and the summary kept in the report's options."""
    results = match_issues(issues, findings, facts, product=product, version=version)
    summary = {
        "entries": len(issues),
        "sources": sorted({ki.source.split(":", 1)[0] if ki.source.startswith("pack:") else ki.source
                           for ki in issues if ki.source}),
        "matched": [r.issue.key for r in results if r.verdict == "match"],
        "not_affected": [r.issue.key for r in results if r.verdict == "not_affected"],
        "skipped": [{"key": r.issue.key, "reason": r.reason} for r in results if r.verdict == "skipped"],
    }
    return kb_findings(results), summary

"""Reading a drill folder and checking a finding against its ``truth.json``.

A drill folder holds the bundle (one or more files or folders, as a customer sent them) and
``truth.json``::

    {"name": "refused-ledger", "healthy": false,
     "root_cause": {"codes": ["NET.TCP.RST_TO_SYN", "LOG.ERROR_TEMPLATE"],
                    "artifact": "*", "contains": ["25433"]},
     "description": "..."}

A finding (as in the JSON report) expresses the root cause when its ``code`` is one of
``codes``, its ``artifact`` matches the ``artifact`` glob (``fnmatch``), and every ``contains``
string appears, case-insensitively, in its title, detail, evidence excerpts or locators, or its
``data`` (as JSON).

>>> rc = {"codes": ["NET.TCP.RST_TO_SYN"], "artifact": "*.pcap", "contains": ["25433"]}
>>> f = {"code": "NET.TCP.RST_TO_SYN", "artifact": "b.zip!/lo.pcap", "title": "Connection refused by 127.0.0.1:25433",
...      "detail": "", "evidence": [], "data": {}}
>>> finding_matches(rc, f), finding_matches(rc, dict(f, artifact="b.zip!/app.log"))
(True, False)
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path

TRUTH = "truth.json"


class TruthError(ValueError):
    """A drill folder or its truth.json is not well-formed."""


def load_truth(drill_dir: Path) -> dict:
    """The checked contents of ``drill_dir/truth.json``."""
    path = drill_dir / TRUTH
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TruthError(f"{path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str) or not isinstance(doc.get("healthy"), bool):
        raise TruthError(f"{path}: needs a string 'name' and a boolean 'healthy'")
    if not doc["healthy"]:
        rc = doc.get("root_cause")
        if not isinstance(rc, dict):
            raise TruthError(f"{path}: an incident needs 'root_cause'")
        codes, glob, contains = rc.get("codes"), rc.get("artifact"), rc.get("contains", [])
        if (not isinstance(codes, list) or not codes or not all(isinstance(c, str) and c for c in codes)
                or not isinstance(glob, str) or not glob
                or not isinstance(contains, list) or not all(isinstance(c, str) and c for c in contains)):
            raise TruthError(f"{path}: root_cause needs non-empty 'codes' (strings), an 'artifact' glob "
                             "and 'contains' (strings)")
    return doc


def drill_inputs(drill_dir: Path) -> list[Path]:
    """The evidence of a drill: everything in its folder but ``truth.json`` and hidden files."""
    inputs = sorted(p for p in drill_dir.iterdir() if p.name != TRUTH and not p.name.startswith("."))
    if not inputs:
        raise TruthError(f"{drill_dir}: no bundle beside {TRUTH}")
    return inputs


def drill_dirs(root: Path) -> list[Path]:
    """Drill folders under ``root`` (those holding a truth.json), by name."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / TRUTH).is_file())


def _haystack(finding: dict) -> str:
    parts = [finding.get("title") or "", finding.get("detail") or ""]
    for ev in finding.get("evidence") or []:
        parts += [ev.get("excerpt") or "", ev.get("locator") or ""]
    parts.append(json.dumps(finding.get("data") or {}, sort_keys=True, default=str))
    return "\n".join(parts).lower()


def finding_matches(root_cause: dict, finding: dict) -> bool:
    """Does ``finding`` (a JSON-report finding) express ``root_cause``?"""
    if finding.get("code") not in root_cause["codes"]:
        return False
    if not fnmatchcase(finding.get("artifact") or "", root_cause["artifact"]):
        return False
    hay = _haystack(finding)
    return all(s.lower() in hay for s in root_cause.get("contains", []))


def matching_findings(root_cause: dict, findings: list[dict]) -> list[int]:
    """Indexes of the findings that express the root cause."""
    return [i for i, f in enumerate(findings) if finding_matches(root_cause, f)]

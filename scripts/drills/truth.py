"""Reading a drill folder and checking a finding against its ``truth.json``.

A drill folder holds the bundle (one or more files or folders, as a customer sent them) and
``truth.json``::

    {"name": "refused-ledger", "healthy": false,
     "root_cause": {"codes": ["NET.TCP.RST_TO_SYN", "LOG.ERROR_TEMPLATE"],
                    "artifact": "*", "contains": ["25433"]},
     "description": "..."}

A finding (as in the JSON report) expresses the root cause when its ``code`` is one of
``codes``, its ``artifact`` matches the ``artifact`` glob (``fnmatch``), every ``contains``
string appears, case-insensitively, in its title, detail, evidence excerpts or locators, or its
``data`` (as JSON), and, when the truth has the optional ``data_at_least`` (``{"duration_s":
1.0}``), each of those numeric ``data`` fields is present and at least that large (a 7 s stall
is the cause; a 1 ms one of the same receiver is not).  A root cause may list
``alternatives``: more matchers of the same shape (``codes``, ``artifact``, ``contains``,
``data_at_least``), for evidence of the same cause that shares no wording with the first (the
capture's ``unknown_ca`` alert and the client's "SSL certificate problem" line).

>>> rc = {"codes": ["NET.TCP.RST_TO_SYN"], "artifact": "*.pcap", "contains": ["25433"]}
>>> f = {"code": "NET.TCP.RST_TO_SYN", "artifact": "b.zip!/lo.pcap", "title": "Connection refused by 127.0.0.1:25433",
...      "detail": "", "evidence": [], "data": {}}
>>> finding_matches(rc, f), finding_matches(rc, dict(f, artifact="b.zip!/app.log"))
(True, False)
>>> stall = {"code": "NET.TCP.ZERO_WINDOW_STALL", "artifact": "lo.pcap", "title": "10.0.0.2 ...",
...          "data": {"duration_s": 0.002}}
>>> rc = {"codes": ["NET.TCP.ZERO_WINDOW_STALL"], "artifact": "*", "data_at_least": {"duration_s": 1.0}}
>>> finding_matches(rc, stall), finding_matches(rc, dict(stall, data={"duration_s": 7.4}))
(False, True)
>>> rc["alternatives"] = [{"codes": ["LOG.ERROR_TEMPLATE"], "artifact": "*relay*", "contains": ["timed out"]}]
>>> finding_matches(rc, {"code": "LOG.ERROR_TEMPLATE", "artifact": "b!/relay.log", "title": "3x send timed out"})
True
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
        alts = rc.get("alternatives", [])
        if not isinstance(alts, list) or not all(isinstance(a, dict) for a in alts):
            raise TruthError(f"{path}: root_cause 'alternatives' must be a list of matchers")
        for m in [rc, *alts]:
            if not _well_formed(m):
                raise TruthError(f"{path}: a root_cause matcher needs non-empty 'codes' (strings), an "
                                 "'artifact' glob, 'contains' (strings) and, optionally, 'data_at_least' "
                                 "(field -> number)")
    return doc


def _well_formed(m: dict) -> bool:
    codes, glob, contains = m.get("codes"), m.get("artifact"), m.get("contains", [])
    least = m.get("data_at_least", {})
    return (isinstance(codes, list) and bool(codes) and all(isinstance(c, str) and c for c in codes)
            and isinstance(glob, str) and bool(glob)
            and isinstance(contains, list) and all(isinstance(c, str) and c for c in contains)
            and isinstance(least, dict)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in least.values()))


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
    """Does ``finding`` (a JSON-report finding) express ``root_cause`` (or one of its alternatives)?"""
    return any(_matches(m, finding) for m in [root_cause, *root_cause.get("alternatives", [])])


def cause_matches(root_cause: dict, code: str | None, finding: dict) -> bool:
    """Does a probable cause with ``code``, resting on ``finding``, express ``root_cause``?  Its own
    code must be one of the codes of the matcher that the finding satisfies."""
    return any(code in m["codes"] and _matches(m, finding)
               for m in [root_cause, *root_cause.get("alternatives", [])])


def _matches(root_cause: dict, finding: dict) -> bool:
    if finding.get("code") not in root_cause["codes"]:
        return False
    if not fnmatchcase(finding.get("artifact") or "", root_cause["artifact"]):
        return False
    data = finding.get("data") or {}
    for key, least in (root_cause.get("data_at_least") or {}).items():
        value = data.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < least:
            return False
    hay = _haystack(finding)
    return all(s.lower() in hay for s in root_cause.get("contains", []))


def matching_findings(root_cause: dict, findings: list[dict]) -> list[int]:
    """Indexes of the findings that express the root cause."""
    return [i for i, f in enumerate(findings) if finding_matches(root_cause, f)]

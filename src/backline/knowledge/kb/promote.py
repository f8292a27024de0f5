"""A known issue drafted from a resolved case: its root cause, fix, crash signature and findings.

Pure functions over the case service's JSON (case, stored findings, bug
reports, hotfixes); :class:`backline.cases.knowledge.KnowledgeService` calls
them and stores the draft.  The findings become matchers: crash signatures
(or, for a crash without symbols, whose signature is just a module name, the
bucket) when the case has any - matched by any one of them; otherwise the
most severe distinctive findings, all of which must match.

>>> m, mode = matchers_from_findings([{"code": "NET.TLS.ALERT", "severity": "high", "count": 1,
...                                     "data": {"description": "unknown_ca", "server": "10.0.0.2:443"}}])
>>> m, mode
([{'finding': 'NET.TLS.ALERT', 'where': {'description': 'unknown_ca'}}], 'all')
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from backline.knowledge.kb.versions import try_version
from backline.model import Severity

#: Findings that say nothing specific about a problem (or are the KB's own).
SKIP_CODES = ("KB.", "CASE.", "LOG.FIRST_ERROR", "LOG.SILENCE", "LOG.RARE_TEMPLATE", "LOG.NEW_TEMPLATE",
              "NET.CAPTURE.TRUNCATED", "DUMP.INCOMPLETE", "DUMP.UNREADABLE", "NET.TCP.RETRANS_RATE",
              "NET.HTTP.SLOW", "NET.SMB2.SLOW", "NET.TCP.RST_MIDSTREAM", "NET.HTTP.UNANSWERED",
              "NET.TCP.SLOW_ANSWER", "NET.TCP.UNANSWERED")
#: Data keys that identify a finding of a code (others are counts, addresses, times).
KEYS: Mapping[str, tuple[str, ...]] = {
    "NET.TLS.ALERT": ("description",),
    "NET.SMB2.ERROR": ("command", "status_name"),
    "NET.HTTP.5XX": ("status", "path"), "NET.HTTP.4XX": ("status", "path"),
    "NET.DNS.SERVFAIL": ("name",), "NET.DNS.NXDOMAIN": ("name",), "NET.DNS.UNANSWERED": ("name",),
    "NET.DNS.ERROR": ("rcode",),
    "NET.TCP.ZERO_WINDOW_STALL": ("reopened",),
    "EVTX.SERVICE_CRASH": ("service",), "EVTX.APP_CRASH": ("app", "module", "exception_code"),
    "EVTX.DISK_ERROR": ("provider", "event_id"), "EVTX.UNEXPECTED_SHUTDOWN": ("event_id",),
    "DUMP.JVM_FATAL": ("problem_class",),
}
MAX_MATCHERS = 3
_MODULE_ONLY = re.compile(r"^[\w.+-]+\.(exe|dll|so(\.\d+)*|dylib)$|^[\w.+-]+$")


def _sev(f: Mapping[str, Any]) -> int:
    try:
        return int(Severity.parse(str(f.get("severity", "info"))))
    except ValueError:
        return 0


def crash_matchers(findings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Signature (or bucket) matchers of the case's crashes, most severe first, without repeats."""
    out: list[dict[str, Any]] = []
    for f in sorted(findings, key=lambda f: -_sev(f)):
        if str(f.get("code", "")).startswith(SKIP_CODES):
            continue
        d = f.get("data") or {}
        sig, bucket = str(d.get("signature") or ""), str(d.get("bucket_id") or "")
        if not sig and not bucket:
            continue
        # a crash without symbols has only a module name as its signature: the bucket says where
        m = {"bucket": bucket} if bucket and (not sig or _MODULE_ONLY.match(sig)) else {"signature": sig}
        if m not in out:
            out.append(m)
    return out[:MAX_MATCHERS]


def finding_matcher(f: Mapping[str, Any]) -> dict[str, Any]:
    """The matcher that recognises this finding again (as specific as its identifying data)."""
    code, d = str(f["code"]), f.get("data") or {}
    if code.startswith("LOG.") and d.get("template"):
        return {"log": {"template": str(d["template"])}}
    if code == "EVTX.TOP_ERRORS" and d.get("provider"):
        return {"event": {"provider": str(d["provider"]), "id": int(d.get("event_id") or 0)}}
    if code in ("NET.TCP.RST_TO_SYN", "NET.TCP.SYN_UNANSWERED") and ":" in str(d.get("server", "")):
        port = str(d["server"]).rsplit(":", 1)[1]
        return {"finding": code, "where": {"server": {"regex": f":{re.escape(port)}$"}}}
    if d.get("exception_type") and code.startswith("DUMP."):
        return {"exception": str(d["exception_type"])}
    where = {k: d[k] for k in KEYS.get(code, ()) if isinstance(d.get(k), (str, int, float, bool))}
    return {"finding": code, **({"where": where} if where else {})}


def matchers_from_findings(findings: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """(matchers, "any" | "all") recognising the evidence of a case (see the module docstring)."""
    crashes = crash_matchers(findings)
    if crashes:
        return crashes, "any"
    picked: list[dict[str, Any]] = []
    for f in sorted(findings, key=lambda f: (-_sev(f), -int(f.get("count") or 1))):
        if str(f.get("code", "")).startswith(SKIP_CODES) or _sev(f) < int(Severity.MEDIUM):
            continue
        m = finding_matcher(f)
        if m not in picked:
            picked.append(m)
        if len(picked) >= MAX_MATCHERS:
            break
    return picked, "all"


def draft_from_case(case: Mapping[str, Any], findings: Sequence[Mapping[str, Any]],
                    bugs: Sequence[Mapping[str, Any]], hotfixes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The data form of a draft known issue for ``case`` (``Case.to_json()``), without a key.

    The root cause comes from the case's last bug report, the fix from that bug (tracker key
    and link) and the last hotfix delivered to the case (its name and lowest fixed version);
    the workaround is left for the engineer to write before publishing.
    """
    intake = case.get("intake") or {}
    bug = bugs[-1] if bugs else None
    fields = (bug or {}).get("fields") or {}
    fix: dict[str, str] = {}
    if bug:
        fix["bug"] = str(bug.get("external_key") or f"bug {bug['id']}")
        if bug.get("external_url"):
            fix["bug_url"] = str(bug["external_url"])
    if hotfixes:
        hf = hotfixes[-1]
        fix["hotfix"] = str(hf["name"])
        versions = sorted((v for v in (try_version(x) for x in hf.get("fixed_versions") or ()) if v is not None))
        if versions:
            fix["fixed_in"] = str(versions[0])
    matchers, mode = matchers_from_findings(findings)
    affects = {"product": str(case.get("product", ""))}
    if fix.get("fixed_in"):
        affects["versions"] = f"<{fix['fixed_in']}"
    data: dict[str, Any] = {
        "title": str(case.get("title", ""))[:500],
        "status": "draft",
        "symptoms": str(intake.get("symptoms") or intake.get("actual") or "")[:20000],
        "root_cause": str(fields.get("root_cause") or "")[:20000],
        "workaround": "",
        "affects": [affects],
        "match": mode,
        "matchers": matchers,
        "tags": ["promoted", str(case.get("key", ""))],
        "references": [f"case {case.get('key')}"],
    }
    if fix:
        data["fix"] = fix
    return data

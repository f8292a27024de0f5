"""Python rules: known issues too complex for data matchers.

A rule declares its inputs (``finding:CODE`` / ``fact:NAME``); when one is
missing from the evidence the rule is *skipped* with the reason, never
failed.  Rules are listed explicitly in :data:`BUILTIN_RULES`; third-party
packs add theirs through the ``backline.kb_rules`` entry-point group (each
entry point names a :class:`Rule`).  A known issue refers to a rule by name:
``{"rule": "crash_loop", "params": {"min_dumps": 3}}``.

>>> get_rule("crash_loop").inputs
('finding:DUMP.CRASH',)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

from backline.knowledge.kb.evidence import Evidence, refs_of
from backline.knowledge.kb.model import Hit


@dataclass(frozen=True, slots=True)
class Rule:
    """A named check over the evidence: ``check(evidence, params) -> [Hit]`` (empty: no match)."""

    name: str
    inputs: tuple[str, ...]
    check: Callable[[Evidence, Mapping[str, Any]], list[Hit]]
    description: str = ""


def _crash_loop(ev: Evidence, params: Mapping[str, Any]) -> list[Hit]:
    """The same crash (bucket id, else signature) in at least ``min_dumps`` different dump files.

    The bucket comes first: a signature of a crash without symbols is only the module
    name, shared by every crash of that program.
    """
    need = int(params.get("min_dumps", 3))
    groups: dict[str, list] = defaultdict(list)
    for f in ev.with_code("DUMP.CRASH"):
        sig = f.data.get("bucket_id") or f.data.get("signature")
        if sig:
            groups[str(sig)].append(f)
    hits = []
    for sig, fs in sorted(groups.items()):
        arts = tuple(dict.fromkeys(f.artifact for f in fs))
        if len(arts) >= need:
            hits.append(Hit(f"the same crash {sig!r} in {len(arts)} dumps", refs_of(fs, per=1), arts,
                            len(arts), ("DUMP.CRASH",), max(f.severity for f in fs)))
    return hits


def _retrans_many_servers(ev: Evidence, params: Mapping[str, Any]) -> list[Hit]:
    """High retransmission rates from one client to at least ``min_servers`` different servers."""
    need = int(params.get("min_servers", 3))
    by_client: dict[tuple[str, str], list] = defaultdict(list)
    for f in ev.with_code("NET.TCP.RETRANS_RATE"):
        client = str(f.data.get("client", "")).rsplit(":", 1)[0]
        if client:
            by_client[(f.artifact, client)].append(f)
    hits = []
    for (art, client), fs in sorted(by_client.items()):
        servers = sorted({str(f.data.get("server", "")).rsplit(":", 1)[0] for f in fs} - {""})
        if len(servers) >= need:
            hits.append(Hit(f"retransmissions from {client} to {len(servers)} servers ({', '.join(servers[:5])})",
                            refs_of(fs, per=1), (art,), sum(f.count for f in fs), ("NET.TCP.RETRANS_RATE",),
                            max(f.severity for f in fs)))
    return hits


#: The rules shipped with Backline (explicit; a test checks every rule here is documented).
BUILTIN_RULES: tuple[Rule, ...] = (
    Rule("crash_loop", ("finding:DUMP.CRASH",), _crash_loop,
         "the same crash signature in several dump files (a crash loop)"),
    Rule("retrans_many_servers", ("finding:NET.TCP.RETRANS_RATE",), _retrans_many_servers,
         "one client retransmits to many servers: the loss is on the client's side of the path"),
)


@lru_cache(maxsize=1)
def _registry() -> dict[str, Rule]:
    rules = {r.name: r for r in BUILTIN_RULES}
    from importlib.metadata import entry_points

    for ep in entry_points(group="backline.kb_rules"):
        try:
            rule = ep.load()
        except Exception:  # noqa: BLE001 - a broken third-party pack must not break matching
            continue
        if isinstance(rule, Rule) and rule.name not in rules:
            rules[rule.name] = rule
    return rules


def get_rule(name: str) -> Rule:
    """The rule called ``name``; KeyError (with the known names) when there is none."""
    rules = _registry()
    if name not in rules:
        raise KeyError(f"no rule {name!r} (known: {', '.join(sorted(rules))})")
    return rules[name]


def all_rules() -> list[Rule]:
    return list(_registry().values())

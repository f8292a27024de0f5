"""The words of a diagnosis: titles, chains and next steps from the library's templates.

Templates name entity kinds (``{endpoint}``), ``{title}``, ``{artifact}`` and scalar keys of the
finding's ``data``; the first template whose placeholders all fill is used, the last one is the
fallback.  Next steps whose placeholders do not fill say "the endpoint", "the process" ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backline.knowledge.diagnosis.entities import Entity
from backline.knowledge.diagnosis.library import PLACEHOLDERS, Signal
from backline.knowledge.diagnosis.nodes import Edge, Node
from backline.model import ChainLink, NextStep, ProbableCause

_GENERIC = {"endpoint": "the endpoint", "host": "the host name", "process": "the process", "path": "the path"}


def _fill(template: str, values: Mapping[str, str]) -> str | None:
    names = PLACEHOLDERS.findall(template)
    if any(not values.get(n) for n in names):
        return None
    return PLACEHOLDERS.sub(lambda m: values[m.group(1)], template)


def _values(n: Node, art_ents: Mapping[str, set[Entity]]) -> dict[str, str]:
    f = n.finding
    vals: dict[str, str] = {}
    for kind, lst in n.ents.items():
        good = [v for v in lst if Entity(kind, v).specific]
        if kind == "host":                    # a name reads better than an address
            good.sort(key=lambda v: v.replace(".", "").isdigit())
        if good:
            vals[kind] = good[0]
    if isinstance(f.data, Mapping):
        for k, v in f.data.items():
            if isinstance(v, (str, int, float)) and str(v) and k not in vals:
                vals[k] = str(v)
    vals["title"] = _short(f.title, 160)
    vals["artifact"] = f.artifact.rsplit("/", 1)[-1].rsplit("!", 1)[-1] or "the case"
    return vals


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def phrase(templates: Sequence[str], values: Mapping[str, str]) -> str:
    for t in templates:
        out = _fill(t, values)
        if out is not None:
            return out if t.startswith("{") else out[:1].upper() + out[1:]
    return values.get("title", "")


def _describe(sig: Signal, values: Mapping[str, str]) -> str:
    for t in sig.describe:
        out = _fill(t, values)
        if out is not None:
            return out
    return PLACEHOLDERS.sub("", sig.describe[-1]).strip()


def make_cause(nodes: Sequence[Node], k: int, conf: float, reach: Mapping[int, tuple[float, Edge, int]],
               reasons: Sequence[str], art_ents: Mapping[str, set[Entity]], max_links: int) -> ProbableCause:
    """The probable cause resting on node ``k``: title, chain (breadth first), next steps."""
    n = nodes[k]
    sig = n.signals[0]
    vals = _values(n, art_ents)
    links = []
    for j, (w, e, depth) in sorted(reach.items(), key=lambda kv: (kv[1][2], -kv[1][0], nodes[kv[0]].index)):
        eff = nodes[j]
        links.append(ChainLink(
            cause=nodes[e.cause].index, effect=eff.index, relation=e.relation.id, rationale=e.relation.rationale,
            joined_on=e.joined_on, evidence=tuple(eff.finding.evidence[:3]),
            effect_title=_short(eff.finding.title, 200),
            effect_summary=_describe(e.effect_signal, _values(eff, art_ents)), weight=round(w, 3)))
        if len(links) >= max_links:
            break
    steps = []
    for kind, template in (("confirm", sig.confirm), ("refute", sig.refute), ("ask", sig.ask)):
        text = _fill(template, vals) if template else None
        if text is None and template:
            text = PLACEHOLDERS.sub(lambda m: _GENERIC.get(m.group(1), "it"), template)
        if text:
            steps.append(NextStep(kind, text))
    seen_rel = set()
    for link in links[:6]:
        rel = next(e.relation for _j, (_w, e, _d) in reach.items() if e.relation.id == link.relation)
        if rel.confirm and rel.id not in seen_rel:
            seen_rel.add(rel.id)
            steps.append(NextStep("confirm", rel.confirm))
    return ProbableCause(
        title=phrase(sig.titles, vals), confidence=round(conf, 2), code=n.finding.code, finding=n.index,
        chain=tuple(links), evidence=tuple(n.finding.evidence[:5]), next_steps=tuple(steps), signal=sig.id,
        reasons=tuple(reasons))


"""Weighted reciprocal rank fusion of the ranked lists, plus the exact signals.

Each list (lexical, dense over the full text, dense over titles) gives its
top ``depth`` cases; a case at rank r in list i earns ``w_i / (k + r)``.
Cases in the pool also earn ``w_time / (k + r_time)`` where ``r_time`` is how
many cases of the product were filed closer in time to the query (duplicates
are filed close together), and a case with the same crash signature or bucket
earns ``w_signature / (k + 1)``, more than the top of all lists together.  The
score shown is the sum divided by the most a case could earn from the
lists, so 1.0 means "first everywhere" (a signature match may go above).

>>> w = FusionWeights(lexical=1, dense=1, title=0, time=0, k=10)
>>> [(c, round(s, 3)) for c, s, _ in fuse({"lexical": [7, 8], "dense": [8, 9]}, w)]
[(8, 0.958), (7, 0.5), (9, 0.458)]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

LISTS = ("lexical", "dense", "title")


@dataclass(frozen=True, slots=True)
class FusionWeights:
    """One configuration (chosen on half of the duplicate groups, see ``benchmarks/similar_eval.py``)."""

    lexical: float = 1.5
    dense: float = 1.0
    title: float = 1.0
    time: float = 1.0
    signature: float = 5.0     # more than first place in every list and in time together (4.5)
    k: float = 2.0
    depth: int = 100           # how deep each list is read
    lexical_terms: int = 12    # query terms asked of the lexical index
    lexical_postings: int = 5000   # ... whose documents together stay under this (bounds the query's cost)
    min_cosine: float = 0.25   # dense hits below this are not evidence of anything

    def of(self, name: str) -> float:
        return float(getattr(self, name))

    def to_json(self) -> dict[str, float]:
        return asdict(self)


DEFAULT_WEIGHTS = FusionWeights()


def fuse(lists: Mapping[str, Sequence[int]], weights: FusionWeights, *,
         time_ranks: Mapping[int, int] | None = None,
         signature_matches: Sequence[int] = ()) -> list[tuple[int, float, dict[str, int]]]:
    """``(case_id, score, {list: rank})`` best first (ties: lower case id first)."""
    scores: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for name, ids in lists.items():
        w = weights.of(name)
        for r, cid in enumerate(ids[:weights.depth], start=1):
            if w:
                scores[cid] = scores.get(cid, 0.0) + w / (weights.k + r)
            ranks.setdefault(cid, {})[name] = r
    for cid in signature_matches:
        scores[cid] = scores.get(cid, 0.0) + weights.signature / (weights.k + 1)
        ranks.setdefault(cid, {})["signature"] = 1
    if time_ranks and weights.time:
        for cid in scores:
            r = time_ranks.get(cid)
            if r is not None:
                scores[cid] += weights.time / (weights.k + r)
                ranks[cid]["time"] = r
    best = sum(weights.of(n) for n in lists if n in LISTS) + (weights.time if time_ranks else 0.0)
    norm = (weights.k + 1) / best if best else 1.0
    order = sorted(scores, key=lambda c: (-scores[c], c))
    return [(c, scores[c] * norm, ranks[c]) for c in order]

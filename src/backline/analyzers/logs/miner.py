"""Backline's template miner: log messages in, templates (``<*>`` for variables) out.

A Drain-family miner with three changes that matter for accuracy and speed:

* messages are first *masked* (numbers, hex, ids, paths, booleans become
  ``<*>``, see :mod:`~backline.analyzers.logs.masking`), and every distinct
  masked shape is matched to a cluster once and cached, so repeated shapes
  cost one dictionary lookup;
* clusters are bucketed by word count and first word, then matched by the
  share of equal *constant* words; merging generalises word by word at
  delimiter boundaries (``user=root`` + ``user=cyrus`` -> ``user=<*>``);
* templates are canonical strings, and a template's id is a hash of that
  string, so the same template has the same id in every run and file.

One generic configuration serves every log.

>>> m = TemplateMiner()
>>> for msg in ("Invalid user admin from 10.0.0.1", "Invalid user test from 10.0.0.2",
...             "session opened for user root"):
...     _ = m.add(msg)
>>> sorted(t.template for t in m.templates())
['Invalid user <*> from <*>', 'session opened for user root']
>>> template_id("Invalid user <*> from <*>")
'T5e2ad1d5'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Iterator

from backline.analyzers.logs.masking import VAR, canonical, generalise_word, mask

#: Distinct raw messages remembered (exact repeats skip masking); cleared when full.
RAW_CACHE_MAX = 200_000


def template_id(template: str) -> str:
    """Stable id of a template string: ``T`` + 8 hex digits of its BLAKE2b hash."""
    return "T" + hashlib.blake2b(template.encode("utf-8"), digest_size=4).hexdigest()


@dataclass(slots=True)
class _Cluster:
    words: list[str]
    count: int
    n_const: int


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """One mined template with its count."""

    id: str
    template: str
    count: int


class TemplateMiner:
    """Incremental template miner (see module docstring).

    ``add(message)`` returns a cluster number; ``template_of(n)`` gives that
    cluster's current template.  Clusters only ever get more general, so a
    second pass over the same input (``match``) maps every message to its
    final template.
    """

    def __init__(self, sim_threshold: float = 0.5):
        self.sim_threshold = sim_threshold
        self._clusters: list[_Cluster] = []
        self._buckets: dict[tuple[int, str], list[int]] = {}
        self._shape: dict[str, int] = {}
        self._raw: dict[str, int] = {}
        self._tcache: dict[int, str] = {}

    # -- learning ---------------------------------------------------------
    def add(self, message: str) -> int:
        """Learn one message; return its cluster number."""
        ci = self._raw.get(message)
        if ci is not None:
            self._clusters[ci].count += 1
            return ci
        shape = mask(message)
        ci = self._shape.get(shape)
        if ci is None:
            ci = self._place(shape)
            self._shape[shape] = ci
        self._clusters[ci].count += 1
        if len(self._raw) >= RAW_CACHE_MAX:
            self._raw.clear()
        self._raw[message] = ci
        return ci

    def add_all(self, messages: Iterable[str]) -> list[int]:
        """Learn many messages; return their cluster numbers."""
        add = self.add
        return [add(m) for m in messages]

    def _place(self, shape: str) -> int:
        words = shape.split(" ") if shape else [""]
        first = words[0] if VAR not in words[0] else VAR
        key = (len(words), first)
        bucket = self._buckets.setdefault(key, [])
        best, best_sim = -1, -1.0
        for ci in bucket:
            sim = self._similarity(self._clusters[ci].words, words)
            if sim > best_sim:
                best, best_sim = ci, sim
        if best >= 0 and best_sim >= self.sim_threshold:
            cl = self._clusters[best]
            new = [generalise_word(a, b) for a, b in zip(cl.words, words)]
            if new != cl.words:
                cl.words = new
                cl.n_const = sum(1 for w in new if VAR not in w)
                self._tcache.pop(best, None)
            return best
        self._clusters.append(_Cluster(words, 0, sum(1 for w in words if VAR not in w)))
        bucket.append(len(self._clusters) - 1)
        return len(self._clusters) - 1

    @staticmethod
    def _similarity(tpl: list[str], words: list[str]) -> float:
        """Share of positions whose constant words agree (variables in both ignored)."""
        same = total = 0
        for a, b in zip(tpl, words):
            if a == b:
                if a != VAR:
                    same += 1
                    total += 1
            elif a == VAR:
                continue
            else:
                total += 1
        return same / total if total else 1.0

    # -- results ----------------------------------------------------------
    def template_of(self, cluster: int) -> str:
        """Current canonical template of a cluster."""
        t = self._tcache.get(cluster)
        if t is None:
            t = self._tcache[cluster] = canonical(" ".join(self._clusters[cluster].words))
        return t

    def match(self, message: str) -> str:
        """Template for ``message`` after learning (learns it, uncounted, if new)."""
        ci = self._raw.get(message)
        if ci is None:
            shape = mask(message)
            ci = self._shape.get(shape)
            if ci is None:
                ci = self._shape[shape] = self._place(shape)
        return self.template_of(ci)

    def templates(self) -> Iterator[TemplateInfo]:
        """All templates with counts (clusters with equal templates are joined)."""
        counts: dict[str, int] = {}
        for i, cl in enumerate(self._clusters):
            t = self.template_of(i)
            counts[t] = counts.get(t, 0) + cl.count
        for t, c in counts.items():
            yield TemplateInfo(template_id(t), t, c)

    def __len__(self) -> int:
        return len(self._clusters)

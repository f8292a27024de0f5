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
>>> for user in ("admin", "test", "oracle", "pi"):
...     _ = m.add(f"Invalid user {user} from 10.0.0.1")
>>> _ = m.add("session opened for user root")
>>> sorted(t.template for t in m.templates())
['Invalid user <*> from <*>', 'session opened for user root']
>>> template_id("Invalid user <*> from <*>")
'Tdac62b53'
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from backline.analyzers.logs._engine import KeyTable
from backline.analyzers.logs.masking import VAR, canonical, generalise_word, mask

#: Distinct masked shapes kept; past this, new shapes count for their cluster's
#: generic shape (its template with every variable position as ``<*>``).
SHAPE_MAX = 20_000

#: Clusters (templates) kept; past this, a message that matches no cluster counts for
#: an all-``<*>`` overflow template of its word count (counts stay exact, memory bounded).
CLUSTER_MAX = 10_000

#: Message keys remembered by the compiled key table (per kind of key); cleared when full.
KEY_CACHE_MAX = 50_000

_KEY_PREFIX = re.compile(r"^.*[=:](?=.)")
_WORD = re.compile(r"[A-Za-z_]+")


def _plain(word: str) -> bool:
    """A plain word (``RUNNING``, ``start``, ``[preauth]``, ``mode=fast``): the kind of
    value that names a state rather than holds data (hosts, classes, paths do)."""
    core = _KEY_PREFIX.sub("", word).strip("\"'()[]{},;:.!?")
    return _WORD.fullmatch(core) is not None


#: Values of these keys, and words after these words, are data (user and host
#: names), never state names, however few values a file shows.
_DATA_KEYS = frozenset({"user", "username", "ruser", "uid", "euid", "gid", "pid", "tid", "host", "hostname",
                        "rhost", "ip", "addr", "address", "port", "login", "account", "client", "session"})
_DATA_BEFORE = frozenset({"user", "user:", "users", "host", "host:", "hostname", "account", "login", "client"})
_KEY = re.compile(r"^[\"'(\[{]*([A-Za-z_]+)[=:]")


def _data_key(word: str) -> bool:
    m = _KEY.match(word)
    return m is not None and m.group(1).lower() in _DATA_KEYS


_ENUM = re.compile(r"[A-Z][A-Z_]+")


def _enum_like(word: str) -> bool:
    """An upper-case identifier (``RUNNING``, ``FAIL_CONTAINER_CLEANUP``): a state name.
    More distinct values of these are allowed before a position becomes a variable."""
    return _ENUM.fullmatch(_KEY_PREFIX.sub("", word).strip("\"'()[]{},;:.!?")) is not None


_RUN2 = re.compile(r"\d\d")
_DIGIT = re.compile(r"\d")


def template_id(template: str) -> str:
    """Stable id of a template string: ``T`` + 8 hex digits of its BLAKE2b hash."""
    return "T" + hashlib.blake2b(template.encode("utf-8"), digest_size=4).hexdigest()


@dataclass(slots=True)
class _Cluster:
    words: list[str]
    values: list[set[str] | None]     # distinct words seen per position; None = too many


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """One mined template with its count."""

    id: str
    template: str
    count: int


class TemplateMiner:
    """Incremental template miner (see module docstring).

    ``add(message)`` learns a message and returns its shape number;
    ``template(message)`` / ``template_of_shape(n)`` give the final template
    once learning is done.  Clusters only ever get more general, so a second
    pass over the same input maps every message to its final template.

    A position where a cluster's messages differ in only a few plain words
    (at most ``split_values``: ``RUNNING``/``FAILED``, ``start``/``over``) is
    kept constant and the cluster is split by it; more distinct values make
    it a variable.
    """

    def __init__(self, sim_threshold: float = 0.5, split_values: int = 3, data_words: bool = True):
        self.sim_threshold = sim_threshold
        self.split_values = split_values
        self.data_words = data_words          # values of user/host keys are always variables
        self._clusters: list[_Cluster] = []
        self._buckets: dict[tuple[int, str], list[int]] = {}
        self._shape: dict[str, int] = {}
        self._shape_words: list[list[str]] = []
        self._shape_cluster: list[int] = []
        self._cluster_shape: dict[int, int] = {}
        self.shapes_dropped = False
        self._overflow: dict[int, int] = {}      # word count -> overflow cluster
        self._keys = KeyTable(self._key_miss, KEY_CACHE_MAX)
        self._tcache: dict[int, str] = {}
        self._version = 0
        self._tcache_version = 0

    # -- learning ---------------------------------------------------------
    # Messages are looked up in the compiled key table (:class:`._engine.KeyTable`):
    # masking depends on *where* digits are, not on which digits they are, so every
    # message is keyed by its text with all digits read as ``0`` and masked once per
    # key.  Where the template keeps lone digits (``jk2_init``) those digits join the
    # key; where it keeps longer digit runs, each distinct message is masked.
    def add(self, message: str) -> int:
        """Learn one message; return its shape number."""
        return self._keys.lookup_one(message)

    def add_all(self, messages: Iterable[str]) -> list[int]:
        """Learn many messages; return their shape numbers."""
        add = self._keys.lookup_one
        return [add(m) for m in messages]

    def add_block(self, messages: list[str]) -> list[int]:
        """Learn a block of single-line messages at once; return their shape numbers
        (the same as :meth:`add` for each, in one call into the key table)."""
        if not messages:
            return []
        data = "\n".join(messages)
        if data.count("\n") != len(messages) - 1:      # a message held a newline
            return self.add_all(messages)
        return self._keys.lookup_block(data.encode("utf-8", "surrogatepass"))

    @property
    def keys(self) -> KeyTable:
        """The compiled key table (the per-line engine looks messages up in it directly)."""
        return self._keys

    def _key_miss(self, message: str) -> tuple[int, int]:
        """A key the table has not seen: mask and place ``message``; ``(shape, key class)``."""
        si = self._shape_index(message)
        return si, self._key_class(si, self._shape_words)

    @staticmethod
    def _key_class(si: int, words: list[list[str]]) -> int:
        """How a digit key maps to shapes: the shape itself when it kept no digits;
        -1 when it kept single digits only (``jk2_init``: the single digits decide);
        -2 when it kept longer digit runs (decided per message)."""
        shape = " ".join(words[si])
        if _DIGIT.search(shape) is None:
            return si
        return -2 if _RUN2.search(shape) else -1

    def _shape_index(self, message: str) -> int:
        return self.learn_shape(mask(message))

    def learn_shape(self, shape: str) -> int:
        """Learn an already masked shape (as :meth:`shape_text` gives it); return its shape
        number.  Placing the distinct shapes of a file in the order they first occur gives
        the same clusters as learning its messages one by one: byte ranges mined apart are
        merged this way (:mod:`.ranges`)."""
        si = self._shape.get(shape)
        if si is None:
            words = shape.split(" ") if shape else [""]
            if len(self._shape_words) >= SHAPE_MAX:
                # too many distinct shapes (free-text data in messages): stop keeping
                # new ones; the message counts for its cluster's generic shape
                ci = self._place(words)
                si = self._cluster_shape.get(ci)
                if si is None:
                    si = self._cluster_shape[ci] = self._new_shape([VAR if VAR in w else w for w in
                                                                    self._clusters[ci].words], ci)
                    self.shapes_dropped = True
                return si
            si = self._shape[shape] = self._new_shape(words, self._place(words))
        return si

    def _new_shape(self, words: list[str], cluster: int) -> int:
        self._shape_words.append(words)
        self._shape_cluster.append(cluster)
        return len(self._shape_words) - 1

    def _place(self, words: list[str]) -> int:
        self._version += 1
        first = words[0] if VAR not in words[0] else VAR
        key = (len(words), first)
        bucket = self._buckets.get(key, ())
        best, best_sim, best_new = -1, -1.0, None
        for ci in bucket:
            cl = self._clusters[ci]
            sim = self._similarity(cl.words, words)
            if sim > best_sim and sim >= self.sim_threshold:
                new = [generalise_word(a, b) for a, b in zip(cl.words, words)]
                if None not in new:
                    best, best_sim, best_new = ci, sim, new
        if best < 0 and len(self._clusters) >= CLUSTER_MAX:
            # too many templates (free text): an all-variable cluster per word count,
            # outside the buckets so it is never generalised or matched again
            ci = self._overflow.get(len(words))
            if ci is None:
                self._clusters.append(_Cluster([VAR] * len(words), [None] * len(words)))
                ci = self._overflow[len(words)] = len(self._clusters) - 1
            return ci
        if best >= 0:
            cl = self._clusters[best]
            cap = self.split_values
            for i, (old, w) in enumerate(zip(cl.words, words)):
                vals = cl.values[i]
                if vals is not None and (old != w or len(vals) > 1):
                    vals.add(w)
                    if (len(vals) > (cap if not all(map(_enum_like, vals)) else 2 * cap + 2)
                            or VAR in w or not all(map(_plain, vals))
                            or (self.data_words and (_data_key(w)
                                                     or (i and words[i - 1].lower() in _DATA_BEFORE)))):
                        cl.values[i] = None
            cl.words = best_new  # type: ignore[assignment]
            return best
        self._clusters.append(_Cluster(list(words), [({w} if VAR not in w else None) for w in words]))
        self._buckets.setdefault(key, []).append(len(self._clusters) - 1)
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
    def template_of_shape(self, si: int) -> str:
        """Final canonical template of a learned shape."""
        if self._tcache_version != self._version:
            self._tcache.clear()
            self._tcache_version = self._version
        t = self._tcache.get(si)
        if t is None:
            cl = self._clusters[self._shape_cluster[si]]
            sw = self._shape_words[si]
            out = [sw[i] if (VAR in w and vals is not None and len(vals) > 1) else w
                   for i, (w, vals) in enumerate(zip(cl.words, cl.values))]
            t = self._tcache[si] = canonical(" ".join(out))
        return t

    def shape_text(self, si: int) -> str:
        """The masked shape of shape number ``si``."""
        return " ".join(self._shape_words[si])

    def is_overflow_shape(self, si: int) -> bool:
        """True when shape ``si`` was counted in an overflow template (past CLUSTER_MAX)."""
        return self._shape_cluster[si] in self._overflow.values()

    @property
    def overflow_templates(self) -> int:
        """All-``<*>`` overflow templates made because CLUSTER_MAX was reached."""
        return len(self._overflow)

    def count_of_shape(self, si: int) -> int:
        """Messages learned for a shape."""
        return self._keys.count(si)

    def template(self, message: str) -> str:
        """Template of ``message`` after learning (learns it, uncounted, if new)."""
        return self.template_of_shape(self._keys.lookup_one(message, False))

    match = template

    def templates(self) -> Iterator[TemplateInfo]:
        """All templates with the number of messages learned for each."""
        counts: dict[str, int] = {}
        count = self._keys.count
        for si in range(len(self._shape_words)):
            c = count(si)
            if c:
                t = self.template_of_shape(si)
                counts[t] = counts.get(t, 0) + c
        for t, c in counts.items():
            yield TemplateInfo(template_id(t), t, c)

    def __len__(self) -> int:
        return len(self._clusters)

    @property
    def shapes(self) -> int:
        """Distinct masked shapes seen (what the miner's memory grows with)."""
        return len(self._shape_words)

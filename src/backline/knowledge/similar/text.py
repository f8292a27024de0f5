"""What a case says, as text to search: fields, lexical terms, query-term choice.

A case becomes a :class:`CaseDoc`: its title, its public text (intake items,
public notes, findings with their log templates, crash signatures) and its
internal text (internal notes, for staff only), plus the crash signatures and
bucket ids used for exact matches.

Lexical terms are made here, not by the database, so SQLite FTS5 and
PostgreSQL index the same terms and the document-frequency table agrees with
both: words are lower-cased, identifiers are also split at camelCase and
digits (``NativeAzureFsOutputStream`` -> ``nativeazurefsoutputstream native
azure fs output stream``), and English stop words are dropped.

>>> terms("NativeAzureFsOutputStream throws an NPE on close()")
['nativeazurefsoutputstream', 'native', 'azure', 'fs', 'output', 'stream', 'throws', 'npe', 'close']
>>> pick_terms(terms("disk full disk full quota"), {"disk": 900, "full": 40, "quota": 3}, n_docs=1000, limit=2)
['quota', 'full']
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

_WORD = re.compile(r"[A-Za-z0-9_]+")
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
MAX_TERM = 40
#: Terms kept per field (a 50 MB log pasted into a note does not make a 50 MB index row).
MAX_FIELD_TERMS = 20_000
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers him his how i if in into is it its itself just me more most my no nor not now of off on
once only or other our ours out over own same she should so some such than that the their theirs them
then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours
""".split())


def terms(text: str | None) -> list[str]:
    """The lexical terms of ``text`` in order (see the module docstring)."""
    out: list[str] = []
    for word in _WORD.findall(text or ""):
        low = word.lower()
        if len(low) > 1 and low not in STOP_WORDS and len(low) <= MAX_TERM:
            out.append(low)
        parts = _PART.findall(word)
        if len(parts) > 1:
            out.extend(p.lower() for p in parts if len(p) > 1 and p.lower() not in STOP_WORDS)
        if len(out) >= MAX_FIELD_TERMS:
            break
    return out[:MAX_FIELD_TERMS]


#: The ``search_terms`` row that holds the number of tokens of all indexed cases (BM25's average
#: length on PostgreSQL; terms never contain a space, so it is no term's row).
TOKEN_COUNT_TERM = " tokens"
_TOKEN = re.compile(r"[a-z0-9]+")
_NOT_TERM_CHAR = re.compile(r"[^a-z0-9_ ]")


def fts_tokens(terms_text: str | None) -> list[str]:
    """The tokens SQLite FTS5 (``unicode61``) makes of a terms column: runs of letters and digits
    (``foo_bar`` is two tokens, and the query term ``foo_bar`` is the phrase ``foo bar``).

    >>> fts_tokens("foo_bar gateway __init__ x1")
    ['foo', 'bar', 'gateway', 'init', 'x1']
    """
    if not terms_text:
        return []
    if _NOT_TERM_CHAR.search(terms_text) is None:
        # the indexer's own text (lower-case letters, digits, ``_`` and spaces): the same tokens,
        # about twice as fast as the regular expression
        return terms_text.replace("_", " ").split()
    return _TOKEN.findall(terms_text)


def idf(df: int, n_docs: int) -> float:
    """BM25's inverse document frequency (never negative)."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def pick_terms(query_terms: Sequence[str], df: Mapping[str, int], *, n_docs: int, limit: int,
               max_postings: int | None = None) -> list[str]:
    """The ``limit`` most telling terms of a query: (1 + log tf) x idf, best first.

    A case used as a query has hundreds of terms; asking the index for all of
    them costs time and adds noise (as Lucene's MoreLikeThis knows).  With
    ``max_postings``, a term is skipped when the documents of the terms kept so
    far and its own would pass that many (the cost of the full-text query grows
    with the documents it scores); the best term is always kept.

    >>> pick_terms(["quota", "disk", "full"], {"disk": 900, "full": 40, "quota": 3}, n_docs=1000, limit=3,
    ...            max_postings=100)
    ['quota', 'full']
    """
    tf = Counter(query_terms)
    n = max(n_docs, 1)
    scored = sorted(tf, key=lambda t: (-(1.0 + math.log(tf[t])) * idf(df.get(t, 0), n), t))
    if max_postings is None:
        return scored[:limit]
    out: list[str] = []
    total = 0
    for t in scored:
        d = df.get(t, 0)
        if out and total + d > max_postings:
            continue
        out.append(t)
        total += d
        if len(out) >= limit:
            break
    return out


@dataclass(frozen=True, slots=True)
class CaseDoc:
    """The searchable text of one case."""

    title: str
    public: str                      # intake, public notes, findings, signatures
    internal: str = ""               # internal notes (staff only)
    signatures: tuple[str, ...] = ()  # "signature:<Socorro signature>" / "bucket:<id>"

    def full_text(self) -> str:
        """Title and public text: what the ``full`` vector embeds."""
        return f"{self.title}. {self.public}".strip()

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for part in (self.title, self.public, self.internal, "\x1f".join(self.signatures)):
            h.update(part.encode("utf-8", "replace"))
            h.update(b"\x1e")
        return h.hexdigest()


def signature_keys(code: str | None, data: Mapping[str, Any] | None) -> list[str]:
    """Crash signature and bucket id of a finding as ``kind:value`` keys, the same (kind, value)
    pairs :mod:`backline.cases.signatures` stores in ``case_signatures``.

    >>> signature_keys("DUMP.CRASH", {"signature": "abort | raise", "bucket_id": "b-12"})
    ['signature:abort | raise', 'bucket:b-12']
    >>> signature_keys("KB.MATCH", {"signature": "abort | raise"})
    []
    """
    out = []
    if data and not str(code or "").startswith("KB."):
        for kind, field in (("signature", "signature"), ("bucket", "bucket_id")):
            value = data.get(field)
            if value:
                out.append(f"{kind}:{str(value)[:500]}")
    return out


def strings_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings_in(v)


def build_doc(title: str, intake: Mapping[str, Any] | None, notes: Iterable[tuple[str, str]],
              findings: Iterable[Mapping[str, Any]]) -> CaseDoc:
    """A :class:`CaseDoc` from a case's parts.

    ``notes`` are ``(visibility, body)``; ``findings`` are mappings with
    ``code``, ``title``, ``detail`` and ``data`` (as stored).

    >>> d = build_doc("Gateway crash", {"description": "it dies"}, [("internal", "heap bug"), ("public", "sent HF")],
    ...               [{"code": "DUMP.CRASH", "title": "crash", "detail": "", "data": {"signature": "f | g"}}])
    >>> d.public, d.internal, d.signatures
    ('it dies\\nsent HF\\nDUMP.CRASH crash\\nf | g', 'heap bug', ('signature:f | g',))
    """
    public: list[str] = [s for s in strings_in(dict(intake or {})) if s.strip()]
    internal: list[str] = []
    for visibility, body in notes:
        (public if visibility == "public" else internal).append(body)
    sigs: list[str] = []
    seen_templates: set[str] = set()
    for f in findings:
        data = f.get("data") or {}
        line = " ".join(x for x in (f.get("code"), f.get("title"), f.get("detail")) if x)
        template = data.get("template") if isinstance(data, Mapping) else None
        if isinstance(template, str) and template not in seen_templates:
            seen_templates.add(template)
            line += "\n" + template
        public.append(line)
        for key in signature_keys(f.get("code"), data if isinstance(data, Mapping) else None):
            if key not in sigs:
                sigs.append(key)
    public.extend(s.partition(":")[2] for s in sigs if s.startswith("signature:"))
    return CaseDoc(title, "\n".join(public), "\n".join(internal), tuple(sigs))

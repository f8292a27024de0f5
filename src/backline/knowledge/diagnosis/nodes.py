"""The graph's nodes: findings classified by the library's signals, with their entities and times.

A :class:`Node` is one happening: a finding, and the findings that are the same happening
(they point at the same line or packet first, or carry the same crash signature), so a log
line reported as "first error" and as an error template is counted once.  An :class:`Edge`
is a link of the library between two nodes (made by :mod:`.engine`).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from backline.knowledge.diagnosis.entities import Entity, Vocabulary, extract, from_data
from backline.knowledge.diagnosis.library import Library, Relation, Signal
from backline.model import Fact, Finding, Severity

#: Data values worth searching for words (the rest are numbers and ids).
_TEXT_KEYS = ("template", "description", "status", "status_name", "rcode", "exception_type", "causes",
              "problem_class", "signal", "kind", "reason", "level", "message", "error", "signature",
              "service", "app", "module", "command", "path", "name", "server", "receiver", "sni")
_FACT_ENTITIES = {"dump.process": "process", "dump.pid": "pid"}


@dataclass(slots=True)
class Node:
    """One happening: a finding and the findings that are the same happening."""

    index: int
    members: list[int]
    finding: Finding
    text: str
    signals: list[Signal]
    ents: dict[str, list[str]]            # kind -> values, most telling first
    artifacts: set[str]
    first: float | None = None            # seconds, clock-corrected
    last: float | None = None
    count: int = 1
    severity: Severity = Severity.INFO
    lines: dict[str, int] = field(default_factory=dict)   # artifact -> first line it points at
    coarse: bool = False                  # its time is a bucket's start (a burst), not a record's
    derived: set[tuple[str, str]] = field(default_factory=set)   # entities inferred, not named (no contradiction)
    file_dated: bool = False              # undated inside: ``first`` is when its file was written
    peers: set[str] = field(default_factory=set)   # programs it names only as the server of an endpoint it
                                                   # names (a client's error about reaching them), not its own
    lent: float = 0.0                     # prior lent by an acute effect it explains (the death it causes)
    steps: set[int] = field(default_factory=set)   # deaths (their ``index``) it precedes in lockstep

    @property
    def prior(self) -> float:
        return max(max(s.prior for s in self.signals), self.lent)

    def has(self, sids: Iterable[str]) -> Signal | None:
        wanted = set(sids)
        return next((s for s in self.signals if s.id in wanted), None)


@dataclass(frozen=True, slots=True)
class Edge:
    cause: int          # node positions
    effect: int
    weight: float
    relation: Relation
    joined_on: tuple[tuple[str, str], ...]
    effect_signal: Signal


def finding_text(f: Finding) -> str:
    """The words of a finding: title, detail, evidence excerpts and descriptive data values (a part
    already said by an earlier one - the template in the title, an excerpt that is the title - once)."""
    parts = [f.title, f.detail]
    parts += [r.excerpt for r in f.evidence[:8] if r.excerpt]
    for key in _TEXT_KEYS:
        v = f.data.get(key) if isinstance(f.data, Mapping) else None
        if isinstance(v, (list, tuple)):
            parts += [str(x) for x in v[:20] if isinstance(x, (str, int))]
        elif v not in (None, ""):
            parts.append(str(v))
    out: list[str] = []
    for p in parts:
        if p and not any(p in q for q in out):
            out.append(p)
    return "\n".join(out)


class _Memo:
    """Per library: the signals that a code can be of, and the classes of findings already seen
    (the same words recur: the same templates in every upload of a case, the stored findings the
    case-wide diagnosis reads again).  Bounded; a pure function of its key."""

    MAX = 20_000

    def __init__(self, lib: Library):
        self.lib = lib
        self.by_code: dict[str, tuple[Signal, ...]] = {}
        self.keys = tuple(sorted({k for sg in lib.signals for k in sg.data}))
        self.seen: dict[tuple, tuple[Signal, ...]] = {}


_MEMOS: dict[int, _Memo] = {}


def classify(lib: Library, f: Finding, text: str) -> list[Signal]:
    """The library's signals (classes) that finding ``f`` with words ``text`` is of."""
    memo = _MEMOS.get(id(lib))
    if memo is None or memo.lib is not lib:
        if len(_MEMOS) > 8:
            _MEMOS.clear()
        memo = _MEMOS[id(lib)] = _Memo(lib)
    cands = memo.by_code.get(f.code)
    if cands is None:
        cands = memo.by_code[f.code] = tuple(sg for sg in lib.signals if sg.matches_code(f.code))
    if not cands:
        return []
    data = f.data if isinstance(f.data, Mapping) else {}
    sev = int(f.severity)
    key = (f.code, sev, text, tuple(str(data.get(k, "")).lower() for k in memo.keys))
    hit = memo.seen.get(key)
    if hit is None:
        low = text.lower()
        hit = tuple(sg for sg in cands if sg.matches(f.code, low, data, sev))
        if len(memo.seen) >= memo.MAX:
            memo.seen.clear()
        memo.seen[key] = hit
    return list(hit)


def _add(ents: dict[str, list[str]], items: Iterable[Entity]) -> None:
    """Add entities in order (sets sorted, so the result does not depend on hashing)."""
    for x in (items if isinstance(items, list) else sorted(items, key=lambda e: (e.kind, e.value))):
        lst = ents.setdefault(x.kind, [])
        if x.value not in lst:
            lst.append(x.value)


def _ordered_entities(f: Finding, text: str, vocab: Vocabulary,
                      art_ents: Mapping[str, set[Entity]]) -> dict[str, list[str]]:
    """Entities of a finding, the ones its data names first (its subject), then its title's, then the rest."""
    ents: dict[str, list[str]] = {}
    if isinstance(f.data, Mapping):
        _add(ents, from_data(f.data))
    _add(ents, art_ents.get(f.artifact, ()))
    _add(ents, extract(f.title, vocab))
    _add(ents, extract(text, vocab))
    return ents


def learn_vocabulary(findings: Sequence[Finding], facts: Sequence[Fact]) -> Vocabulary:
    hosts: list[str] = []
    procs: list[str] = []
    for f in findings:
        if not isinstance(f.data, Mapping):
            continue
        if f.code.startswith("NET.DNS."):
            hosts += [str(f.data.get("name") or "")] + [str(n) for n in (f.data.get("names") or [])[:100]]
        if f.data.get("sni"):
            hosts.append(str(f.data["sni"]))
        for key in ("app", "service", "process"):
            procs += _names(f.data.get(key))
    for fact in facts:
        if fact.name == "dump.process" and isinstance(fact.value, str):
            procs.append(fact.value.lower())
    texts = [f.title for f in findings] + [r.excerpt for f in findings for r in f.evidence[:3] if r.excerpt]
    return Vocabulary.learn(texts, hosts=hosts, processes=procs)


def named_processes(findings: Sequence[Finding], facts: Sequence[Fact]) -> set[str]:
    """Processes the evidence names as such: crash and hang dumps, Windows crash events."""
    out = {str(x.value).lower() for x in facts if x.name == "dump.process" and isinstance(x.value, str) and x.value}
    for f in findings:
        if isinstance(f.data, Mapping):
            out |= {p for k in ("app", "service", "process") for p in _names(f.data.get(k))}
    return {p for p in out if len(p) >= 3}


def _names(value) -> list[str]:
    """Process names in a data value: one name, or a list of them (``LOG.PROCESS_EXIT``'s ``process``).

    >>> _names("Tilerd"), _names(["relayd", "svrun"]), _names(None)
    (['tilerd'], ['relayd', 'svrun'], [])
    """
    if isinstance(value, (list, tuple)):
        return [str(v).lower() for v in value[:10] if isinstance(v, str) and v]
    return [str(value).lower()] if value not in (None, "") and not isinstance(value, Mapping) else []


def endpoint_owners(findings: Sequence[Finding], named: set[str], vocab: Vocabulary) -> dict[str, set[str]]:
    """Endpoints that a log line names together with exactly one dumped process ("reconnect to
    ingestd 10.0.0.9:7070 failed"): the process behind the endpoint, so a crash dump of it can
    explain what the capture saw on that endpoint."""
    owners: dict[str, set[str]] = defaultdict(set)
    if not named:
        return owners
    for f in findings:
        for text in [f.title] + [r.excerpt for r in f.evidence[:5] if r.excerpt]:
            for line in text.splitlines()[:5]:
                ents = extract(line, vocab)
                procs = {e.value for e in ents if e.kind == "process" and e.value in named}
                if len(procs) == 1:
                    for e in ents:
                        if e.kind == "endpoint":
                            owners[e.value] |= procs
    return owners


#: A line saying a program serves on an endpoint ("listening on 10.0.0.5:8080", "bound to ...").
_LISTEN = re.compile(r"\b(?:listen(?:s|ing)?|bound|binding|serving|accepting(?: connections)?)\b[^\n]{0,40}?"
                     r"\b(?:on|at|to)\b", re.I)
_TOKEN = re.compile(r"[a-z0-9_]+(?:[.-][a-z0-9_]+)*")


def artifact_processes(paths: Iterable[str], vocab: Vocabulary) -> dict[str, set[str]]:
    """Processes an artifact's file name names ("tilerd.log", "journal-geoindexd.txt",
    "billing-stderr---supervisor.log", "notify-hub.stderr.gz"): a program's log is about that program.

    >>> from backline.knowledge.diagnosis.entities import Vocabulary
    >>> v = Vocabulary.learn([], processes=["notify-hub", "tilerd", "svloop"])
    >>> sorted(artifact_processes(["b!/notify-hub.stderr.gz", "tilerd.log", "journal-svloop.txt", "hub.log"], v).items())
    [('b!/notify-hub.stderr.gz', {'notify-hub'}), ('journal-svloop.txt', {'svloop'}), ('tilerd.log', {'tilerd'})]
    """
    out: dict[str, set[str]] = {}
    known = vocab.processes
    if not known:
        return out
    for path in set(paths):
        name = path.replace("\\", "/").rsplit("/", 1)[-1].rsplit("!", 1)[-1].lower()
        words = set()
        for tok in _TOKEN.findall(name):
            # every run of its dot- and dash-separated parts: "notify-hub.stderr.gz" names notify-hub
            parts = re.split(r"([.-])", tok)
            for a in range(0, len(parts), 2):
                for b in range(a + 1, min(len(parts), a + 12) + 1, 2):
                    words.add("".join(parts[a:b]))
        hit = {w for w in words if w in known}
        if hit:
            out[path] = hit
    return out


def log_program(path: str) -> str | None:
    """The program a log's file name stands for when nothing else names it: the file's stem
    ("stock-sync.log" -> "stock-sync"; rotations and compression dropped).

    >>> log_program("b.zip!/var/log/stock-sync/stock-sync.log.1.gz"), log_program("x/current"), log_program("a/1.log")
    ('stock-sync', 'current', None)
    """
    name = path.replace("\\", "/").rsplit("/", 1)[-1].rsplit("!", 1)[-1].lower()
    stem = re.sub(r"(\.(log|txt|out|err|jsonl|json|gz|xz|bz2|zst|\d+))+$", "", name)
    return stem if len(stem) >= 3 and re.fullmatch(r"[a-z_][\w.-]*", stem) else None


def listeners(facts: Sequence[Fact], vocab: Vocabulary, art_procs: dict[str, set[str]]) -> dict[str, set[str]]:
    """Endpoints a log says its program serves on (from the logs' template index: a line such as
    "tilerd[812] listening on 10.0.0.5:8080" is info, never a finding): endpoint -> the processes
    the line names, or the process the log's file name names.  When neither names a known program,
    the log's file stem stands for it (:func:`log_program`), and ``art_procs`` learns that the log
    is about that program: the findings of the log and those naming the endpoint are then about
    one program."""
    out: dict[str, set[str]] = defaultdict(set)
    for fact in facts:
        if fact.name != "log.template_index" or not isinstance(fact.value, list):
            continue
        for entry in fact.value:
            text = entry.get("example") if isinstance(entry, Mapping) else None
            if not text or not _LISTEN.search(text):
                continue
            ents = extract(text, vocab)
            eps = [e.value for e in ents if e.kind == "endpoint"]
            if not eps:
                continue
            procs = {e.value for e in ents if e.kind == "process"} or set(art_procs.get(fact.artifact, ()))
            if not procs:
                stem = log_program(fact.artifact)
                if stem:
                    procs = {stem}
                    art_procs.setdefault(fact.artifact, set()).add(stem)
            for ep in eps:
                out[ep] |= procs
    return out


def server_names(findings: Sequence[Finding]) -> dict[str, set[str]]:
    """``name:port`` -> ``address:port`` for servers a capture saw under the name the client asked
    for (the TLS server name indication): a log that names the host and a capture that names the
    address are then about the same endpoint."""
    out: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        if not isinstance(f.data, Mapping) or not f.data.get("sni") or not f.data.get("server"):
            continue
        addr = [e.value for e in from_data({"server": f.data["server"]}) if e.kind == "endpoint"]
        names = [e.value for e in from_data({"sni": f.data["sni"]}) if e.kind == "host"]
        for a in addr:
            port = a.rsplit(":", 1)[-1]
            for name in names:
                out[f"{name}:{port}"].add(a)
    return out


def artifact_entities(facts: Sequence[Fact]) -> dict[str, set[Entity]]:
    out: dict[str, set[Entity]] = defaultdict(set)
    for fact in facts:
        kind = _FACT_ENTITIES.get(fact.name)
        if kind and fact.value not in (None, ""):
            out[fact.artifact].add(Entity(kind, str(fact.value).lower()))
    return out


def _same_happening(findings: Sequence[Finding], picked: Sequence[int]) -> list[list[int]]:
    """Groups of finding indices that are one happening (shared evidence, the same crash signature, or
    one capture's failures to resolve one name)."""
    parent = {i: i for i in picked}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    members: dict[tuple, list[int]] = {}
    for i in picked:
        f = findings[i]
        keys = [("ref", r.artifact, r.locator) for r in f.evidence[:1]]
        sig = f.data.get("signature") if isinstance(f.data, Mapping) else None
        if sig and f.code.startswith("DUMP."):
            keys.append(("sig", f.code, str(sig)))
        data = f.data if isinstance(f.data, Mapping) else {}
        if f.first_seen is not None and f.evidence and f.evidence[0].locator.startswith("line:"):
            # a log record and the stack trace that continues it (the lines right after its head, at its
            # time): "ERROR thumbnail worker crashed" and the ValueError traceback below it are one happening
            start = data.get("first_line") if f.code.startswith("DUMP.") and data.get("source") == "log" else None
            if isinstance(start, int) and start > 1:
                keys.append(("rec", f.artifact, start - 1, f.first_seen))
            elif f.code.startswith("LOG.") and f.evidence[0].locator[5:].isdigit():
                keys.append(("rec", f.artifact, int(f.evidence[0].locator[5:]), f.first_seen))
        name = data.get("name")
        if name and f.code.startswith("NET.DNS."):
            # one capture's failures to resolve one name (answered SERVFAIL, and never answered) are one
            # happening: the name does not resolve
            keys.append(("dns", f.artifact, str(name).lower().rstrip(".")))
        for k in keys:
            members.setdefault(k, []).append(i)
    dropped: set[int] = set()
    for k, lst in members.items():
        if k[0] in ("ref", "rec") and len(lst) > 1:
            # a template whose line is also a death's (or a trace's) but that counts more is broader than
            # that happening: "<*>[<*>]: segfault at ..." holds an old crash of one program and today's of
            # another.  It is not the death's span; when its line is a death, the deaths reader has read
            # each of its death lines on its own (per program): the mixed template is left out
            deaths = [findings[i].count for i in lst if findings[i].code == "LOG.PROCESS_EXIT"]
            specific = deaths + [findings[i].count for i in lst if findings[i].code.startswith("DUMP.")]
            if specific:
                broader = [i for i in lst if findings[i].code in _TEMPLATE_VIEWS and findings[i].count > min(specific)]
                if deaths:
                    dropped.update(broader)
                lst = [i for i in lst if i not in broader]
        for i in lst[1:]:
            parent[find(i)] = find(lst[0])
    groups: dict[int, list[int]] = defaultdict(list)
    for i in picked:
        if i not in dropped:
            groups[find(i)].append(i)
    return list(groups.values())


#: Findings of a log template (every occurrence of a wording, whoever wrote it).
_TEMPLATE_VIEWS = frozenset({"LOG.ERROR_TEMPLATE", "LOG.BURST", "LOG.NEW_TEMPLATE", "LOG.RARE_TEMPLATE"})


def _occurrences(findings: Sequence[Finding], group: Sequence[int]) -> int:
    """How often a happening was seen: the most any one view of it counted (a line reported as
    "first error" and as a template is one line), or - for dump findings merged by their crash
    signature that point at different places (one traceback per request) - the sum of theirs.

    >>> from backline.model import EvidenceRef, Finding, Severity
    >>> def exc(line, sig="KeyError | reserve"):
    ...     return Finding("DUMP.PYTHON_EXCEPTION", "KeyError", Severity.HIGH, "a.log",
    ...                    evidence=(EvidenceRef.line("a.log", line),), data={"signature": sig})
    >>> _occurrences([exc(3), exc(9), exc(15)], [0, 1, 2]), _occurrences([exc(3), exc(3)], [0, 1])
    (3, 1)
    """
    most = max(findings[i].count for i in group)
    places: dict[tuple, int] = {}
    for i in group:
        f = findings[i]
        if f.code.startswith("DUMP.") and isinstance(f.data, Mapping) and f.data.get("signature"):
            key = (f.artifact, f.evidence[0].locator if f.evidence else str(i))
            places[key] = max(places.get(key, 0), f.count)
    return max(most, sum(places.values()))


#: Findings that say less than another of the same happening: views of a log template (its first
#: line, a burst of it, its first appearance) - the template's own finding, which counts every
#: occurrence, stands for the group before them - and a DNS query never answered, when the server
#: also answered it with a failure (SERVFAIL, NXDOMAIN: what went wrong, said by the server).
_VIEWS = {"LOG.FIRST_ERROR": 0, "LOG.BURST": 1, "LOG.NEW_TEMPLATE": 1, "LOG.RARE_TEMPLATE": 1,
          "NET.DNS.UNANSWERED": 1}


def _rep_rank(f: Finding, signals: Sequence[Signal]) -> tuple:
    """Which member of a group stands for it: the most telling class, then a template over a burst
    or a first appearance of it, and those over a 'first error', then severity, a time stamp, count."""
    return (max((s.prior for s in signals), default=0.0), _VIEWS.get(f.code, 2), int(f.severity),
            f.first_seen is not None, f.count)


def build_nodes(findings: Sequence[Finding], lib: Library, vocab: Vocabulary,
                art_ents: Mapping[str, set[Entity]], offsets: Mapping[str, float], max_nodes: int) -> list[Node]:
    """The nodes of ``findings`` (case-wide ones aside; the ``max_nodes`` most severe), times moved by
    the clock ``offsets`` of their artifacts, findings of no signal left out."""
    picked = [i for i, f in enumerate(findings) if not f.code.startswith("CASE.")]
    if len(picked) > max_nodes:
        picked = sorted(picked, key=lambda i: (-int(findings[i].severity), -findings[i].count, i))[: max_nodes]
        picked.sort()
    texts = {i: finding_text(findings[i]) for i in picked}
    sigs = {i: classify(lib, findings[i], texts[i]) for i in picked}
    nodes: list[Node] = []
    for group in _same_happening(findings, [i for i in picked if sigs[i]]):
        rep = max(group, key=lambda i: (_rep_rank(findings[i], sigs[i]), -i))
        signals: dict[str, Signal] = {}
        ents: dict[str, list[str]] = {}
        firsts, lasts = [], []
        for i in sorted(group, key=lambda i: i != rep):
            f = findings[i]
            for sg in sigs[i]:
                signals.setdefault(sg.id, sg)
            for kind, values in _ordered_entities(f, texts[i], vocab, art_ents).items():
                lst = ents.setdefault(kind, [])
                lst += [v for v in values if v not in lst]
            off = offsets.get(f.artifact, 0.0)
            if f.first_seen is not None:
                firsts.append(f.first_seen.timestamp() - off)
            if f.last_seen is not None or f.first_seen is not None:
                lasts.append((f.last_seen or f.first_seen).timestamp() - off)
        f = findings[rep]
        lines: dict[str, int] = {}
        for i in group:
            for r in findings[i].evidence:
                if r.locator.startswith("line:") and r.locator[5:].isdigit():
                    n = int(r.locator[5:])
                    if n < lines.get(r.artifact, n + 1):
                        lines[r.artifact] = n
        nodes.append(Node(
            index=rep, members=sorted(group), finding=f, text=texts[rep],
            signals=sorted(signals.values(), key=lambda sg: -sg.prior), ents=ents,
            artifacts={findings[i].artifact for i in group},
            first=min(firsts) if firsts else None, last=max(lasts) if lasts else None,
            count=_occurrences(findings, group), severity=max(findings[i].severity for i in group),
            lines=lines, coarse=all(isinstance(findings[i].data, Mapping) and "bucket_s" in findings[i].data
                                    for i in group)))
    return nodes


#: Classes of finding that are a failed lookup of a name (the capture's answers), and of a client
#: saying a name does not resolve (the program's words).
DNS_ANSWER_CLASSES = ("dns_failure",)
DNS_CLIENT_CLASSES = ("dns_failure_log",)
_RELATIVE_MIN = 3


def relative_names(nodes: Sequence[Node]) -> list[list[int]]:
    """Tie a client's resolution error that names a host by a *relative* name to the failed
    lookups of its completions: a program asks for ``billing-db`` (or ``billing-db.svc``), its
    resolver appends the search domains and the capture shows NXDOMAIN for
    ``billing-db.svc.corp.example`` and ``billing-db.corp.example``; the error names only what the
    program asked for.  Only the words of a resolution error are searched (the leading labels of a
    failed name, as a whole word), so a short name elsewhere ("clock drift against ntp") ties
    nothing.  The entities added are inferred (they never forbid a link).  Returns the number of
    nodes tied.

    >>> from backline.model import Finding, Severity
    >>> from backline.knowledge.diagnosis.library import load_library
    >>> lib = load_library()
    >>> def node(i, code, title, data, sid):
    ...     f = Finding(code=code, title=title, severity=Severity.HIGH, artifact="a", data=data)
    ...     return Node(i, [i], f, title.lower(), [lib.signal(sid)], {}, {"a"})
    >>> dns = node(0, "NET.DNS.NXDOMAIN", "DNS NXDomain for billing-db.svc.corp.example (3 response(s))",
    ...            {"name": "billing-db.svc.corp.example"}, "dns_failure")
    >>> err = node(1, "LOG.ERROR_TEMPLATE", "cannot reach billing-db:5432: [Errno -2] Name or service not known",
    ...            {}, "dns_failure_log")
    >>> relative_names([dns, err]), err.ents["host"], ("host", "billing-db.svc.corp.example") in err.derived
    ([], ['billing-db.svc.corp.example'], True)
    """
    full: dict[str, set[str]] = defaultdict(set)
    holder: dict[str, set[int]] = defaultdict(set)         # a failed name -> the nodes that hold it
    for k_node, n in enumerate(nodes):
        if not n.has(DNS_ANSWER_CLASSES) or not isinstance(n.finding.data, Mapping):
            continue
        names = [n.finding.data.get("name")] + list(n.finding.data.get("names") or [])[:100]
        for name in names:
            if not isinstance(name, str):
                continue
            labels = name.lower().rstrip(".").split(".")
            whole = ".".join(labels)
            holder[whole].add(k_node)
            for k in range(1, len(labels)):
                rel = ".".join(labels[:k])
                if len(rel) >= _RELATIVE_MIN and not rel.isdigit():
                    full[rel].add(whole)
    if not full:
        return []
    rx = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, sorted(full, key=len, reverse=True)))
                    + r")(?![\w-]|\.\w)")
    lookups: list[set[int]] = []
    for n in nodes:
        if not n.has(DNS_CLIENT_CLASSES) or n.has(DNS_ANSWER_CLASSES):
            continue
        asked = {m.group(1) for m in rx.finditer(n.text.lower())}
        found = {name for rel in asked for name in full[rel]}
        if not found:
            continue
        hosts = n.ents.setdefault("host", [])
        for name in sorted(found):
            if name not in hosts:
                hosts.append(name)
                n.derived.add(("host", name))
        for rel in asked:
            # the bare name (when the resolver asked it too) and its completions: one lookup
            lookup = {k for name in full[rel] | {rel} for k in holder.get(name, ())}
            if len(lookup) > 1:
                lookups.append(lookup)
    # lookups that share a node are one
    groups: list[set[int]] = []
    for g in lookups:
        for other in [o for o in groups if o & g]:
            g |= other
            groups.remove(other)
        groups.append(set(g))
    return [sorted(g) for g in groups]


def merge_nodes(nodes: Sequence[Node], groups: Sequence[Sequence[int]], reps: Sequence[int] | None = None) -> list[Node]:
    """``nodes`` with each group (positions) merged into one node: the given ``reps`` (one position per
    group), or else the most frequent, then the earliest, stands for it; members, classes, entities,
    artifacts, times and lines are united."""
    if not groups:
        return list(nodes)
    gone: set[int] = set()
    merged: dict[int, Node] = {}
    for n_group, g in enumerate(groups):
        rep_k = reps[n_group] if reps is not None else min(
            g, key=lambda k: (-nodes[k].count, nodes[k].first if nodes[k].first is not None else math.inf,
                              nodes[k].index))
        rep = nodes[rep_k]
        signals = {sg.id: sg for k in g for sg in nodes[k].signals}
        ents: dict[str, list[str]] = {}
        for k in [rep_k] + [k for k in g if k != rep_k]:
            for kind, values in nodes[k].ents.items():
                lst = ents.setdefault(kind, [])
                lst += [v for v in values if v not in lst]
        lines: dict[str, int] = {}
        for k in g:
            for a, n_line in nodes[k].lines.items():
                lines[a] = min(n_line, lines.get(a, n_line))
        firsts = [nodes[k].first for k in g if nodes[k].first is not None]
        lasts = [nodes[k].last for k in g if nodes[k].last is not None]
        merged[rep_k] = Node(
            index=rep.index, members=sorted({m for k in g for m in nodes[k].members}), finding=rep.finding,
            text=rep.text, signals=sorted(signals.values(), key=lambda sg: -sg.prior), ents=ents,
            artifacts={a for k in g for a in nodes[k].artifacts}, first=min(firsts) if firsts else None,
            last=max(lasts) if lasts else None, count=max(nodes[k].count for k in g),
            severity=max(nodes[k].severity for k in g), lines=lines, coarse=all(nodes[k].coarse for k in g),
            derived={d for k in g for d in nodes[k].derived})
        gone |= set(g) - {rep_k}
    return [merged.get(k, n) for k, n in enumerate(nodes) if k not in gone]


#: Classes of a native crash (a dump's) and of a program's death (a supervisor's, a journal's, its own).
CRASH_CLASSES = ("native_crash",)
DEATH_CLASSES = ("process_death", "process_death_log")
#: Signal names by their Linux numbers (what supervisors print: "signal 11", "status=9/KILL").
_SIGNAL_NAMES = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
                 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
                 14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS"}
_SIG_WORDS = re.compile(r"\b(?-i:SIG([A-Z]{3,6}))\b|\bsignal[ :=]+(\d{1,2})\b|\bstatus=(\d{1,2})/|\b(core dumped|dumped core)\b",
                        re.IGNORECASE)
_SIG_ALIASES = {"SIGIOT": "SIGABRT"}
#: A core is written as its process dies; its file time (or its own) falls this close to the death's line.
CORE_DEATH_S = 60.0


def death_signals(text: str) -> tuple[set[str], bool]:
    """The signals a death's words name (``SIGSEGV``, ``signal 11``, ``status=6/ABRT``), and whether
    they say a core was dumped.

    >>> death_signals("logshipd (pid 17230) terminated by signal 11 (SIGSEGV) (core dumped)")
    ({'SIGSEGV'}, True)
    >>> death_signals("Main process exited, code=killed, status=6/ABRT")
    ({'SIGABRT'}, False)
    >>> death_signals("exited: quotes (exit status 2; not expected)")
    (set(), False)
    """
    names: set[str] = set()
    dumped = False
    for m in _SIG_WORDS.finditer(text):
        if m.group(1):
            name = "SIG" + m.group(1).upper()
            names.add(_SIG_ALIASES.get(name, name))
        elif m.group(2) or m.group(3):
            num = int(m.group(2) or m.group(3))
            names.add(_SIGNAL_NAMES.get(num, f"signal {num}"))
        else:
            dumped = True
    return names, dumped


def _same_program(a: Iterable[str], b: Iterable[str]) -> bool:
    """Process names that are one program; a kernel's 15-character ``comm`` is the start of the name."""
    bs = {x.lower() for x in b}
    for x in (y.lower() for y in a):
        if x in bs or any(len(s) == 15 and x.startswith(s) or len(x) == 15 and s.startswith(x) for s in bs):
            return True
    return False


def _death_cause_signal(n: Node) -> str | bool | None:
    """What a node that ends a process says it ended it with: a crash dump's signal, or ``SIGKILL``
    for the kernel's OOM killer ("Killed process 4242 (renderd)"); ``True`` for a dump that names no
    signal; None for any other node."""
    data = n.finding.data if isinstance(n.finding.data, Mapping) else {}
    if n.has(CRASH_CLASSES) and n.finding.code.startswith("DUMP."):
        raw = data.get("signal")
        return _SIG_ALIASES.get(str(raw).upper(), str(raw).upper()) if raw else True
    if n.has(("out_of_memory",)) and data.get("reason") == "oom-kill":
        return "SIGKILL"
    return None


def core_deaths(nodes: Sequence[Node]) -> tuple[list[list[int]], list[int]]:
    """A crash dump and the program's deaths that it is the core of: one happening.  A supervisor (or
    the journal) says "logshipd (pid 17230) terminated by signal 11 (SIGSEGV) (core dumped)" and the
    bundle holds ``core.logshipd.17230``; in a crash loop, the cores of the same crash (merged by their
    signature) and the loop's deaths are one happening that began at the first death.  Tied when the
    dump's process is the dying program and either a pid is shared, or the death names the dump's
    signal (or a dumped core) and the dump was written within ``CORE_DEATH_S`` of a death.  A death
    naming another signal (a KILL, a TERM) is never the core's.  The kernel's OOM kill and the
    supervisor's "status=9/KILL" for the same program are tied the same way (the kill's signal is
    KILL).  Returns the groups (positions) and, for each, the crash or kill that stands for it (the
    dump or the kernel says why; the supervisor only that it ended).

    >>> from backline.model import Finding, Severity
    >>> from backline.knowledge.diagnosis.library import load_library
    >>> lib = load_library()
    >>> def node(i, code, text, ents, sid, first, data=None):
    ...     f = Finding(code=code, title=text, severity=Severity.HIGH, artifact=f"a{i}", data=data or {})
    ...     return Node(i, [i], f, text, [lib.signal(sid)], ents, {f"a{i}"}, first, first + 5)
    >>> crash = node(0, "DUMP.CRASH", "logshipd crashed", {"process": ["logshipd"], "pid": ["17251"]},
    ...              "native_crash", 1004.0, {"signal": "SIGSEGV"})
    >>> loop = node(1, "LOG.PROCESS_EXIT", "logshipd (pid 17230) terminated by signal 11 (SIGSEGV)",
    ...             {"process": ["logshipd"], "pid": ["17230"]}, "process_death", 1000.0)
    >>> killed = node(2, "LOG.PROCESS_EXIT", "logshipd killed by signal 9 (SIGKILL)",
    ...               {"process": ["logshipd"]}, "process_death", 1000.0)
    >>> core_deaths([crash, loop, killed])
    ([[0, 1]], [0])
    """
    crashes = [k for k, n in enumerate(nodes) if _death_cause_signal(n)]
    deaths = [k for k, n in enumerate(nodes) if n.has(DEATH_CLASSES) and not _death_cause_signal(n)]
    if not crashes or not deaths:
        return [], []
    parent = {k: k for k in crashes + deaths}

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for c in crashes:
        cn = nodes[c]
        procs = cn.ents.get("process", ())
        if not procs:
            continue
        sig = _death_cause_signal(cn)
        sig = None if sig is True else sig
        pids = set(cn.ents.get("pid", ()))
        for d in deaths:
            dn = nodes[d]
            if not _same_program(procs, dn.ents.get("process", ())):
                continue
            named, dumped = death_signals(dn.text)
            if named and sig and sig not in named:
                continue                      # killed by another signal: not this core's death
            tied = bool(pids & set(dn.ents.get("pid", ())))
            if not tied and (named or dumped) and cn.first is not None and dn.first is not None:
                tied = dn.first - CORE_DEATH_S <= cn.first <= (dn.last if dn.last is not None else dn.first) + CORE_DEATH_S
            if tied:
                parent[find(d)] = find(c)
    groups: dict[int, list[int]] = defaultdict(list)
    for k in parent:
        groups[find(k)].append(k)
    out = [sorted(g) for g in groups.values() if len(g) > 1]
    causes = set(crashes)
    reps = [max((k for k in g if k in causes), key=lambda k: (nodes[k].count, -k)) for g in out]
    return out, reps


#: How close an error's first and last sightings must precede a death's (a program's last words are
#: written just before it ends).
LOCKSTEP_S = 2.0


def lockstep(nodes: Sequence[Node]) -> int:
    """Tie a log's errors to the deaths they precede in lockstep: a container's log named by its id
    says "migration 0042 failed" four times, the runtime's events say "accountsd exitCode 3" four
    times, each within a moment after.  The same count (at least 2), the first and the last of the
    errors each no more than ``LOCKSTEP_S`` before the death's, in another file: the errors are the
    dying program's last words (the ``lockstep`` join, :attr:`Node.steps`).  Returns the number of
    nodes tied.

    >>> from backline.model import Finding, Severity
    >>> from backline.knowledge.diagnosis.library import load_library
    >>> lib = load_library()
    >>> def node(i, code, sid, first, last, count, ents):
    ...     f = Finding(code=code, title="t", severity=Severity.HIGH, artifact=f"a{i}")
    ...     return Node(i, [i], f, "t", [lib.signal(sid)], ents, {f"a{i}"}, first, last, count)
    >>> death = node(0, "LOG.PROCESS_EXIT", "process_death", 100.07, 109.3, 4, {"process": ["accountsd"]})
    >>> err = node(1, "LOG.ERROR_TEMPLATE", "error", 100.0, 109.2, 4, {})
    >>> other = node(2, "LOG.ERROR_TEMPLATE", "error", 100.0, 109.2, 3, {})
    >>> lockstep([death, err, other]), err.steps, other.steps
    (1, {0}, set())
    """
    deaths = [n for n in nodes if n.has(DEATH_CLASSES) and n.count >= 2 and n.first is not None
              and n.last is not None]
    tied = 0
    for n in nodes:
        if n.has(DEATH_CLASSES) or n.first is None or n.last is None or not n.finding.code.startswith("LOG."):
            continue
        for d in deaths:
            if d.count != n.count or d.artifacts & n.artifacts:
                continue
            if 0.0 < d.first - n.first <= LOCKSTEP_S and 0.0 < d.last - n.last <= LOCKSTEP_S:     # type: ignore[operator]
                n.steps.add(d.index)
                tied += 1
    return tied

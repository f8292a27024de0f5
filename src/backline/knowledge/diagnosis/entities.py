"""Entities named by findings and events: what two pieces of evidence can agree on.

An entity is a kind and a normalised value: ``endpoint 127.0.0.1:15432``,
``port 15432``, ``host db.example.net``, ``process stockcalc``, ``pid 4242``,
``path /var/lib/app/data``, ``module libplugin.so``, ``exception
ConnectionRefusedError``, ``thread 7``.  They are read from a finding's title,
detail, evidence excerpts and the JSON ``data`` its analyzer attached (keys
that are known to hold an endpoint, a DNS name, a process ...), and from event
summaries; the same happening seen in a log and in a capture is then matched by
the entities both name.

Names that only context makes recognisable (a DNS name in free text, a process
name) are learned first from the places that say what they are (DNS findings,
URLs, ``host:port``, crash dumps, ``prog[pid]:`` prefixes) and then searched for
in every text: :class:`Vocabulary`.

>>> vocab = Vocabulary.learn(["DNS NXDomain for db.internal.example (2 response(s))"])
>>> sorted(str(e) for e in extract("could not reach db.internal.example:5432 [Errno 111]", vocab))
['endpoint db.internal.example:5432', 'host db.internal.example', 'port 5432']
>>> sorted(str(e) for e in extract("worker (pid: 4242) exited on signal 11", vocab))
['pid 4242']
>>> sorted(str(e) for e in extract('File "/srv/app/main.py", line 3: ConnectionRefusedError', vocab))
['exception ConnectionRefusedError', 'path /srv/app/main.py']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping

#: Kinds of entity, most specific first.
KINDS = ("endpoint", "host", "port", "pid", "process", "module", "path", "exception", "thread")

#: Hosts that name no machine in particular (every loopback drill shares them): not a join key alone.
_ANY_HOST = {"127.0.0.1", "0.0.0.0", "::1", "::", "localhost", "*"}
#: Last labels of dotted words that are file names or code, not host names.
_NOT_TLD = {"py", "pyc", "java", "class", "jar", "c", "cc", "cpp", "cxx", "h", "hpp", "go", "rs", "js", "ts",
            "rb", "cs", "kt", "scala", "php", "pl", "sh", "log", "txt", "json", "xml", "yaml", "yml", "ini",
            "conf", "cfg", "toml", "properties", "so", "dll", "exe", "dylib", "pdb", "sym", "gz", "zip", "tar",
            "csv", "db", "sqlite", "html", "htm", "css", "md", "lock", "pid", "sock", "tmp", "bak", "out",
            "err", "dmp", "core", "evtx", "pcap", "pcapng", "cap"}
#: Words before ``:N`` that are locators or counters, never hosts.
_NOT_HOST = {"line", "packet", "frame", "thread", "record", "offset", "attempt", "port", "pid", "errno", "error",
             "code", "status", "time", "at", "id", "step", "retry", "page", "http", "https", "tcp", "udp"}

_IPV4 = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}"
_HOSTNAME = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
#: ``host:port``: a plain character class before the colon (fast), the host checked afterwards
_ENDPOINT = re.compile(r"(?<![\w.:-])(?:\[(?P<v6>[0-9A-Fa-f:]+)\]|(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*))"
                       r":(?P<port>\d{1,5})(?![\d.:]*\d)")
_HOSTNAME_RE = re.compile(_HOSTNAME)
_TUPLE = re.compile(r"\(\s*['\"](?P<host>[\w.:-]+)['\"]\s*,\s*(?P<port>\d{1,5})\s*\)")
_PORT = re.compile(r"\bport\s*[=:#]?\s*(\d{2,5})\b")                       # on lower-case text
_URL_HOST = re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s]+@)?(\[[0-9a-f:]+\]|[a-z0-9.-]+)")      # lower case
_HOST_PHRASE = re.compile(
    r"\b(?:resolv\w*|look(?:ing)?\s?up|host(?:name)?|server|name|zone|domain|connect(?:ing|ion)?\s+to|reach)"
    r"\s*[=:]?\s*['\"]?(" + _HOSTNAME + r"\.[A-Za-z][A-Za-z0-9-]*)['\"]?", re.I)
_IP = re.compile(rf"(?<![\w.]){_IPV4}(?![\w.])")
_DNS_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\.?")
_PID = re.compile(r"\bpid\s*[:=#]?\s*(\d{1,10})\b|\b(?:process|child|worker)\s+(?:process\s+|id\s+)?(\d{2,10})\b")  # lower case
#: ``killed process 4242 (renderer)``, ``child 311 (php-fpm)``: the name after the pid
_PID_NAME = re.compile(r"\b(?:process|child|worker)\s+\d{2,10}\s+\(([a-z_][\w.-]{1,40})\)")
_PROG_PID = re.compile(r"(?<![\w/.-])([A-Za-z_][\w.-]{1,40})\[(\d{1,10})\]")
#: ``prog[pid]`` as syslog and journal prefixes write the program speaking.
PROG_PID = _PROG_PID
_PROCESS = re.compile(r"\bprocess\s+['\"]([a-z_][\w.-]{2,40})['\"]")                  # lower case
_PATH = re.compile(r"(?<![\w:/.-])(/(?:[\w.@+-]+/)+[\w.@+-]+|[A-Za-z]:\\(?:[^\s\\'\"<>|]+\\)*[^\s\\'\"<>|]+)")
_MODULE_FILE = re.compile(r"(?<![\w.-])([\w+-][\w.+-]*\.(?:so(?:\.\d+)*|dll|dylib|exe))(?![\w])")   # lower case
_MODULE_BANG = re.compile(r"(?<![\w.-])([a-z_][\w.+-]*)!(?=[a-z_?~<])")                        # module!function
_EXCEPTION = re.compile(r"\b((?:[a-z_]\w*\.)*([A-Z][A-Za-z0-9_]*(?:Error|Exception|Fault|Failure|Interrupt)))\b")
_THREAD = re.compile(r"\bthread\s*[#:=]?\s*(\d{1,10})\b|\[(thread-\d+|[\w-]*-thread-\d+)\]")     # lower case


@dataclass(frozen=True, slots=True, order=True)
class Entity:
    """One thing a piece of evidence names (see the module docstring)."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"

    def covers(self, other: "Entity") -> bool:
        """Equal, or (hosts) ``other`` is a name inside this one's domain: a zone covers its names,
        a name does not cover its zone.

        >>> Entity("host", "corp.example").covers(Entity("host", "db.eu.corp.example"))
        True
        >>> Entity("host", "db.eu.corp.example").covers(Entity("host", "corp.example"))
        False
        >>> Entity("host", "example").covers(Entity("host", "db.example"))   # a top-level name says nothing
        False
        """
        if self.kind != other.kind:
            return False
        if self.value == other.value:
            return True
        if self.kind != "host" or "." not in self.value or _IP.fullmatch(self.value):
            return False
        return other.value.endswith("." + self.value)

    @property
    def specific(self) -> bool:
        """False for values that name nothing in particular (loopback hosts, well-known tiny ports)."""
        if self.kind == "host":
            return self.value not in _ANY_HOST
        return True


def norm_host(host: str) -> str:
    """Lower case; ``localhost`` and ``::1`` become ``127.0.0.1`` (other loopback addresses such
    as 127.0.4.2 name a service of their own and stay).

    >>> norm_host("LocalHost"), norm_host("::1"), norm_host("DB.Example."), norm_host("127.0.4.2")
    ('127.0.0.1', '127.0.0.1', 'db.example', '127.0.4.2')
    """
    h = host.strip().strip("[]").rstrip(".").lower()
    if h in ("localhost", "::1", "0:0:0:0:0:0:0:1"):
        return "127.0.0.1"
    return h


def _is_hostname(name: str) -> bool:
    low = name.lower()
    if low == "localhost":
        return True
    if "." not in low:
        return False
    last = low.rsplit(".", 1)[-1]
    return last.isalpha() and last not in _NOT_TLD and not low.replace(".", "").isdigit()


def _endpoint_host(m: re.Match) -> str | None:
    """The host of an ``_ENDPOINT`` match when it is an address or a host name, else None."""
    if m.group("v6"):
        return m.group("v6")
    h = m.group("host")
    if _IP.fullmatch(h):
        return h
    if h.lower() in _NOT_HOST or not _is_hostname(h) or not _HOSTNAME_RE.fullmatch(h):
        return None
    return h


def endpoint(host: str, port: str | int) -> list[Entity]:
    """The entities of ``host:port``: the endpoint, its port and (when it names a machine) its host."""
    h = norm_host(host)
    p = str(int(port)) if str(port).isdigit() else str(port)
    out = [Entity("endpoint", f"{h}:{p}"), Entity("port", p)]
    if h not in _ANY_HOST:
        out.append(Entity("host", h))
    return out


@dataclass(slots=True)
class Vocabulary:
    """Host and process names learned from the evidence, searched for in every text."""

    hosts: set[str] = field(default_factory=set)
    processes: set[str] = field(default_factory=set)
    _host_re: re.Pattern | None = None
    _proc_re: re.Pattern | None = None
    _cache: dict[str, frozenset[Entity]] = field(default_factory=dict)   # text -> entities, per vocabulary

    @classmethod
    def learn(cls, texts: Iterable[str], hosts: Iterable[str] = (), processes: Iterable[str] = ()) -> "Vocabulary":
        """Learn names from ``texts`` (DNS-named hosts, URL hosts, ``prog[pid]``) plus the given ones."""
        v = cls(hosts={norm_host(h) for h in hosts if h}, processes={p for p in processes if p and len(p) >= 3})
        for text in texts:
            found = _LEARNED.get(text)
            if found is None:
                found = _names_in(text)
                if len(_LEARNED) >= _MEMO_MAX:
                    _LEARNED.clear()
                _LEARNED[text] = found
            v.hosts.update(found[0])
            v.processes.update(found[1])
        v.compile()
        return v

    def _add_host(self, name: str) -> None:
        h = norm_host(name)
        if _is_hostname(h) or _IP.fullmatch(h):
            self.hosts.add(h)

    def compile(self) -> None:
        names = sorted((h for h in self.hosts if h not in _ANY_HOST), key=len, reverse=True)
        # searched in lower-case text (see :func:`extract`)
        self._host_re = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, names)) + r")(?![\w-]|\.\w)"
                                   ) if names else None
        procs = sorted({p.lower() for p in self.processes}, key=len, reverse=True)
        self._proc_re = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, procs)) + r")(?![\w-]|\.\w)"
                                   ) if procs else None
        # what a text names depends only on the text and the names: shared by equal vocabularies
        key = (tuple(names), tuple(procs))
        self._cache = _BY_VOCAB.get(key)
        if self._cache is None:
            if len(_BY_VOCAB) >= 16:
                _BY_VOCAB.clear()
            self._cache = _BY_VOCAB[key] = {}


#: Texts already read (the same words recur: templates in every upload, stored findings read
#: again): names learned from a text, and entities per vocabulary.  Bounded.
_MEMO_MAX = 50_000
_LEARNED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
_BY_VOCAB: dict[tuple, dict[str, frozenset]] = {}


def _names_in(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Host and process names a text says are names (see :meth:`Vocabulary.learn`)."""
    text = text.lower()
    tmp = Vocabulary()
    for m in _URL_HOST.finditer(text):
        tmp._add_host(m.group(1))
    for m in _ENDPOINT.finditer(text):
        h = _endpoint_host(m)
        if h and not _IP.fullmatch(h):
            tmp._add_host(h)
    for m in _HOST_PHRASE.finditer(text):
        tmp._add_host(m.group(1))
    procs = {m.group(1) for m in _PROG_PID.finditer(text)}
    return tuple(sorted(tmp.hosts)), tuple(sorted(procs))


def extract(text: str, vocab: Vocabulary | None = None) -> set[Entity]:
    """Entities named in ``text`` (see the module docstring).  Results are remembered per
    vocabulary (the same excerpt is read for several findings and events)."""
    if not text:
        return set()
    if vocab is None:
        return set(_extract_plain(text))
    hit = vocab._cache.get(text)
    if hit is None:
        hit = frozenset(_extract(text, vocab))
        if len(vocab._cache) >= _MEMO_MAX:
            vocab._cache.clear()
        vocab._cache[text] = hit
    return set(hit)


@lru_cache(maxsize=4096)
def _extract_plain(text: str) -> frozenset[Entity]:
    return frozenset(_extract(text, None))


def _extract(text: str, vocab: Vocabulary | None) -> set[Entity]:
    """The patterns, each only where a cheap test says it can match; most run on the lower-case text."""
    out: set[Entity] = set()
    low = text.lower()
    if ":" in low:
        for m in _ENDPOINT.finditer(low):
            name = _endpoint_host(m)
            port = int(m.group("port"))
            if name and 0 < port < 65536:
                out.update(endpoint(name, port))
    if "(" in low:
        for m in _TUPLE.finditer(low):
            if _IP.fullmatch(m.group("host")) or _is_hostname(m.group("host")):
                out.update(endpoint(m.group("host"), m.group("port")))
    if "port" in low:
        for m in _PORT.finditer(low):
            out.add(Entity("port", str(int(m.group(1)))))
    if "://" in low:
        for m in _URL_HOST.finditer(low):
            h = norm_host(m.group(1))
            if h not in _ANY_HOST and (_is_hostname(h) or _IP.fullmatch(h)):
                out.add(Entity("host", h))
    if "." in low:
        for m in _IP.finditer(low):
            h = norm_host(m.group(0))
            if h not in _ANY_HOST:
                out.add(Entity("host", h))
        if vocab is not None and vocab._host_re is not None:
            for m in vocab._host_re.finditer(low):
                out.add(Entity("host", norm_host(m.group(1))))
    if "pid" in low or "process" in low or "child" in low or "worker" in low:
        for m in _PID.finditer(low):
            out.add(Entity("pid", m.group(1) or m.group(2)))
        for m in _PID_NAME.finditer(low):
            out.add(Entity("process", m.group(1)))
        for m in _PROCESS.finditer(low):
            if not m.group(1).isdigit():
                out.add(Entity("process", m.group(1)))
    if "[" in low:
        for m in _PROG_PID.finditer(low):
            out.add(Entity("process", m.group(1)))
            out.add(Entity("pid", m.group(2)))
    if vocab is not None and vocab._proc_re is not None:
        for m in vocab._proc_re.finditer(low):
            out.add(Entity("process", m.group(1)))
    if "/" in text or ":\\" in text:
        for m in _PATH.finditer(text):
            out.add(Entity("path", m.group(1).rstrip(".,;:)")))
    if ".so" in low or ".dll" in low or ".exe" in low or ".dylib" in low:
        for m in _MODULE_FILE.finditer(low):
            out.add(Entity("module", m.group(1)))
    if "!" in low:
        for m in _MODULE_BANG.finditer(low):
            if m.group(1) not in _NOT_HOST:
                out.add(Entity("module", m.group(1)))
    if "error" in low or "exception" in low or "fault" in low or "failure" in low or "interrupt" in low:
        for m in _EXCEPTION.finditer(text):
            out.add(Entity("exception", m.group(2)))
    if "thread" in low:
        for m in _THREAD.finditer(low):
            out.add(Entity("thread", m.group(1) or m.group(2)))
    return out


#: ``Finding.data`` keys whose values are known to be of one kind.
_DATA_KEYS: Mapping[str, str] = {
    "server": "endpoint", "client": "endpoint", "receiver": "endpoint", "sender": "host",
    "name": "host", "sni": "host", "names": "host",
    "exception_type": "exception", "causes": "exception",
    "process": "process", "process_name": "process", "app": "process", "service": "process",
    "pid": "pid", "module": "module", "thread": "thread", "threads": "thread",
    "path": "path", "file": "path",
}


def from_data(data: Mapping[str, Any]) -> list[Entity]:
    """Entities in a finding's ``data`` under the keys known to hold them, in the order of
    :data:`_DATA_KEYS` (the finding's subject first: its server, its exception type ...).

    >>> [str(e) for e in from_data({"sni": "api.example.com", "server": "10.0.0.5:443"})]
    ['endpoint 10.0.0.5:443', 'port 443', 'host 10.0.0.5', 'host api.example.com']
    """
    found: list[Entity] = []
    out = _Ordered(found)
    for key, kind in _DATA_KEYS.items():
        value = data.get(key)
        if value is None or value == "":
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values[:50]:
            if isinstance(v, (list, tuple)):
                continue
            s = str(v).strip()
            if not s:
                continue
            if kind == "endpoint":
                m = _ENDPOINT.fullmatch(s)
                h = _endpoint_host(m) if m else None
                if m and h:
                    out.update(endpoint(h, m.group("port")))
                elif _IP.fullmatch(s):
                    if norm_host(s) not in _ANY_HOST:
                        out.add(Entity("host", norm_host(s)))
            elif kind == "host":
                h = norm_host(s)
                # the analyzer says it is a name (a DNS query, a TLS server name): any DNS-shaped one
                if h not in _ANY_HOST and _DNS_NAME.fullmatch(h):
                    out.add(Entity("host", h))
            elif kind == "path":
                if s.startswith("/") or re.match(r"[A-Za-z]:\\", s):
                    out.add(Entity("path", s.split("?", 1)[0]))
            elif kind == "exception":
                out.add(Entity("exception", s.rsplit(".", 1)[-1]))
            elif kind in ("pid", "thread"):
                if s.isdigit():
                    out.add(Entity(kind, s))
            else:
                out.add(Entity(kind, s.lower()))
    return found


class _Ordered:
    """A list that takes each entity once (``add``/``update`` like a set)."""

    def __init__(self, items: list[Entity]):
        self.items = items

    def add(self, e: Entity) -> None:
        if e not in self.items:
            self.items.append(e)

    def update(self, es: Iterable[Entity]) -> None:
        for e in es:
            self.add(e)


#: Kinds of entity specific enough to say that two events record the same happening (clock skew).
SKEW_KINDS = frozenset({"endpoint", "host", "pid"})
#: Joins texts for :func:`skew_entities_many`: no pattern can match across it (``\x00`` is neither
#: a space nor in any name's class, and the new lines around it end every name), and next to it
#: every look-around sees what it sees at the start or end of a text.
_JOIN = "\n\x00\n"


def skew_entities_many(texts: list[str], vocab: Vocabulary | None = None) -> list[frozenset[Entity]]:
    """For each text, its specific endpoints, hosts and pids (:data:`SKEW_KINDS`): the same as
    filtering :func:`extract`, but each pattern runs once over all the texts joined, not once per
    text (a large bundle has hundreds of thousands of log events; per text, the calls cost more
    than the matching).

    >>> [sorted(map(str, s)) for s in skew_entities_many(["refused by 10.0.0.5:5432", "nothing", "worker[4242] died"])]
    [['endpoint 10.0.0.5:5432', 'host 10.0.0.5'], [], ['pid 4242']]
    """
    from bisect import bisect_right

    if not texts:
        return []
    low, starts = _joined(texts)
    found: list[set[Entity] | None] = [None] * len(texts)

    def put(at: int, items: Iterable[Entity]) -> None:
        i = bisect_right(starts, at) - 1
        s = found[i]
        if s is None:
            s = found[i] = set()
        s.update(items)

    for m in _ENDPOINT.finditer(low):
        name = _endpoint_host(m)
        port = int(m.group("port"))
        if name and 0 < port < 65536:
            put(m.start(), endpoint(name, port))
    for m in _TUPLE.finditer(low):
        if _IP.fullmatch(m.group("host")) or _is_hostname(m.group("host")):
            put(m.start(), endpoint(m.group("host"), m.group("port")))
    for m in _URL_HOST.finditer(low):
        h = norm_host(m.group(1))
        if h not in _ANY_HOST and (_is_hostname(h) or _IP.fullmatch(h)):
            put(m.start(), (Entity("host", h),))
    for m in _IP.finditer(low):
        h = norm_host(m.group(0))
        if h not in _ANY_HOST:
            put(m.start(), (Entity("host", h),))
    if vocab is not None and vocab._host_re is not None:
        for m in vocab._host_re.finditer(low):
            if "." in texts[bisect_right(starts, m.start()) - 1]:       # as extract(): known names
                put(m.start(), (Entity("host", norm_host(m.group(1))),))   # are looked for beside dots
    for m in _PID.finditer(low):
        put(m.start(), (Entity("pid", m.group(1) or m.group(2)),))
    for m in _PROG_PID.finditer(low):
        put(m.start(), (Entity("pid", m.group(2)),))
    empty: frozenset[Entity] = frozenset()
    return [frozenset(x for x in s if x.kind in SKEW_KINDS and x.specific) if s else empty for s in found]


def _joined(texts: list[str]) -> tuple[str, list[int]]:
    """``texts`` joined in lower case (one pass of each pattern over all of them) and where each begins."""
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + len(_JOIN)
    return _JOIN.join(texts).lower(), starts


def vocabulary_hosts(texts: list[str], vocab: Vocabulary) -> list[tuple[int, Entity]]:
    """``(index of the text, host)`` for every specific name of ``vocab`` found in ``texts``: what
    the vocabulary adds to :func:`skew_entities_many` (whose other patterns do not depend on it, so
    they can run where an artifact is analysed: :func:`.timing.skew_digests`), as hits, without a
    set per text (a bundle's learned names can be in tens of thousands of its events).

    >>> v = Vocabulary.learn([], hosts=["db01", "localhost"])
    >>> [(i, str(x)) for i, x in vocabulary_hosts(["lost db01. retrying", "db01 down", "localhost. x"], v)]
    [(0, 'host db01')]
    """
    from bisect import bisect_right

    if not texts or vocab._host_re is None:
        return []
    low, starts = _joined(texts)
    names: dict[str, Entity | None] = {}
    out = []
    for m in vocab._host_re.finditer(low):
        i = bisect_right(starts, m.start()) - 1
        if "." not in texts[i]:                       # as extract(): known names are looked for beside dots
            continue
        raw = m.group(1)
        x = names.get(raw, False)
        if x is False:
            x = names[raw] = Entity("host", norm_host(raw))
            if not x.specific:
                x = names[raw] = None
        if x is not None:
            out.append((i, x))
    return out

"""The reasoning: findings become nodes, the library's relations become links, nodes are ranked.

1. **Nodes** (:mod:`.nodes`).  Every finding (case-wide ones aside) is classified by
   the library's signals and its entities are extracted.  Findings that are the same
   happening (they point at the same line/packet, or carry the same crash signature)
   are merged into one node, so a log line reported as "first error" and as an error
   template is not counted twice.
2. **Time.**  Clock offsets between artifacts are estimated from shared events and
   removed; the incident window is located (:mod:`.timing`).
3. **Links.**  For every relation, every node of a cause signal is linked to every
   node of an effect signal that it may explain: both name the same entity of a
   kind the relation joins on (or share the artifact, or - for relations that
   allow it - follow each other closely in time), and the cause does not start
   after the effect (within the clock tolerance).
4. **Scores.**  A node's support is the sum over the nodes it explains, directly
   or through a chain, of the link weights (decaying per hop) times their
   severity.  Its confidence is ``prior x (0.5 + 0.5 x (1 - exp(-1.2 x support)))``
   - a lone finding never passes half its prior - lowered when another node
   explains it (it is then an effect), when it is chronic (present long before the
   incident and still there) or stale (over long before the incident), and raised
   a little when it is the first anomaly of the incident.
5. **Words** (:mod:`.explain`): the title, the chain and the next steps of each
   probable cause.
"""

from __future__ import annotations

import bisect
import heapq
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backline.knowledge.diagnosis.entities import PROG_PID, Entity
from backline.knowledge.diagnosis.explain import make_cause
from backline.knowledge.diagnosis.library import Library, Relation, load_library
from backline.knowledge.diagnosis.nodes import (Edge, Node, artifact_entities, artifact_processes, build_nodes,
                                                core_deaths, endpoint_owners, learn_vocabulary, listeners, lockstep,
                                                merge_nodes, named_processes, relative_names, server_names)
from backline.knowledge.diagnosis.timing import TimingSettings, estimate_skews, incident_window
from backline.model import Artifact, Diagnosis, Event, Fact, Finding, Severity

#: The library's class of "any error": the catch-all of findings no other class describes.
GENERIC = "error"
#: How strongly a shared entity of each kind ties two findings.
JOIN_WEIGHT: Mapping[str, float] = {
    "endpoint": 1.0, "pid": 1.0, "host": 0.9, "process": 0.8, "module": 0.8, "path": 0.8,
    "port": 0.75, "exception": 0.6, "thread": 0.5, "artifact": 0.6, "time": 0.3, "onset": 0.6, "lockstep": 0.9,
}
_SEV_WEIGHT = {Severity.CRITICAL: 1.0, Severity.HIGH: 1.0, Severity.MEDIUM: 0.7, Severity.LOW: 0.4,
               Severity.INFO: 0.2}
#: How much a lone finding's severity says (the analyzers rate, e.g., NXDOMAIN below SERVFAIL).
_LONE_SEVERITY = {Severity.CRITICAL: 1.0, Severity.HIGH: 1.0, Severity.MEDIUM: 0.9, Severity.LOW: 0.75,
                  Severity.INFO: 0.6}


@dataclass(frozen=True, slots=True)
class DiagnosisSettings:
    """Tunable limits of :func:`diagnose` (the relation library is data, see library.py)."""

    max_causes: int = 5
    min_confidence: float = 0.05
    max_nodes: int = 300               # most severe findings first; the rest are not reasoned about
    max_links: int = 40                # per probable cause
    max_out_links: int = 20            # links leaving one finding (the strongest)
    max_depth: int = 4                 # hops of a chain
    max_reach: int = 60                # findings one cause may explain
    hop_decay: float = 0.8
    explained_penalty: float = 0.6
    chronic_factor: float = 0.35
    stale_factor: float = 0.4
    first_bonus: float = 1.1
    max_time_support: float = 0.5
    max_file_support: float = 0.6
    max_onset_support: float = 1.0     # links resting on an effect's onset right after the cause alone
    onset_weight: float = 0.6          # how strongly an effect's onset right after the cause ties them
    min_path_weight: float = 0.05       # weaker chains explain nothing
    transient_factor: float = 0.6       # refusals of an endpoint that accepts connections again right after
    unplaced_factor: float = 0.85       # undated and tied to nothing: unknown relevance to the incident
    written_margin: timedelta = timedelta(hours=2)  # an undated finding whose files were all last written this
                                                    # long before the incident is over long before it
    lead: timedelta = timedelta(minutes=5)          # a cause may start this long before the incident
    chronic_margin: timedelta = timedelta(minutes=10)
    timing: TimingSettings = field(default_factory=TimingSettings)


#: How long before a core's file was written its effects may begin (the core of a crash loop's last death).
FILE_DATED_SLACK_S = 120.0


def _tolerance(c: Node, e: Node, skewed: set[str]) -> float:
    if c.artifacts & e.artifacts:
        return 0.001
    if (c.artifacts | e.artifacts) & skewed:
        return 1.5
    return 1.0


def _join(c: Node, e: Node, rel: Relation, skewed: set[str],
          onset_weight: float = JOIN_WEIGHT["onset"]) -> tuple[float, tuple[tuple[str, str], ...]] | None:
    """How strongly ``c`` and ``e`` are tied for ``rel``, and on what; None when they are not, or when
    their times forbid it."""
    dated = c.first is not None and e.first is not None
    # in one file, the order of the lines is the order of the happenings (exact; times may be
    # rounded or a burst's bucket)
    same_file = [a for a in c.lines if a in e.lines] if not rel.lag_s else []
    named_only = False
    if same_file and rel.order == "before":
        if any(e.lines[a] < c.lines[a] for a in same_file):
            return None
    elif dated and rel.order == "before":
        tol = _tolerance(c, e, skewed) + rel.lag_s
        if e.first < c.first - tol:                                   # type: ignore[operator]
            # a core dated by its file's write was written when the process last died: a crash loop's
            # earlier deaths came before it.  Named ties only (the program, its endpoint), never time alone
            if not c.file_dated or e.first < c.first - tol - FILE_DATED_SLACK_S:   # type: ignore[operator]
                return None
            named_only = True
    if dated and e.first - (c.last if c.last is not None else c.first) > rel.within_s:   # type: ignore[operator]
        return None
    best = 0.0
    on: list[tuple[str, str]] = []
    for kind in rel.join:
        if named_only and kind in ("artifact", "onset", "time", "lockstep"):
            continue
        if kind == "artifact":
            # one program's log says something by being one file; a capture holds everyone's traffic
            shared = c.artifacts & e.artifacts
            if shared and not c.finding.code.startswith("NET.") and not e.finding.code.startswith("NET."):
                w = JOIN_WEIGHT[kind]
                best = max(best, w)
                on.append(("artifact", sorted(shared)[0]))
        elif kind == "onset":
            # the effect appears right after the cause (a process dies, its port refuses the next SYN);
            # a happening that recurs (a restart loop) is measured from its last sighting before the effect
            if not dated or _contradict(c, e, rel):
                continue
            tol = _tolerance(c, e, skewed)
            ref = c.first
            if c.last is not None and c.last <= e.first + tol and any(sg.acute for sg in c.signals):  # type: ignore[operator]
                ref = c.last
            dt = e.first - ref                                        # type: ignore[operator]
            if -tol <= dt <= rel.onset_s:
                w = onset_weight
                if w > best:
                    best = w
                on.append(("onset", f"{max(0.0, dt):.1f} s later"))
        elif kind == "lockstep":
            # the cause is written a moment before each of the effect's occurrences (nodes.lockstep)
            if e.index in c.steps:
                best = max(best, JOIN_WEIGHT[kind])
                on.append(("lockstep", f"{e.count}x, each a moment before"))
        elif kind == "time":
            if not dated or best > 0 or _contradict(c, e, rel):
                continue
            dt = e.first - c.first                                    # type: ignore[operator]
            tol = _tolerance(c, e, skewed) + rel.lag_s
            if -tol <= dt <= rel.time_within_s:
                w = JOIN_WEIGHT["time"] * (1.0 - max(0.0, dt) / (rel.time_within_s + 1.0))
                if w > best:
                    best = w
                    on.append(("time", f"{max(0.0, dt):.1f} s later"))
        else:
            a, b = c.ents.get(kind), e.ents.get(kind)
            if not a or not b:
                continue
            if kind == "host":
                shared_vals = [v for v in a if Entity(kind, v).specific
                               and any(Entity(kind, v).covers(Entity(kind, w)) for w in b)]
            elif kind == "process" and c.peers:
                # a finding about reaching a program (its client's refusal or time-out) explains
                # nothing that program does itself: the program's own failure is the cause, not the effect
                shared_vals = [v for v in a if v in b and (v not in c.peers or v in e.peers)]
            else:
                shared_vals = [v for v in a if v in b and Entity(kind, v).specific]
            if shared_vals:
                w = JOIN_WEIGHT[kind]
                best = max(best, w)
                on.append((kind, shared_vals[0]))
    if best <= 0:
        return None
    on.sort(key=lambda kv: -JOIN_WEIGHT[kv[0]])
    return best, tuple(on[:3])


def _contradict(c: Node, e: Node, rel: Relation) -> bool:
    """Both name entities of a kind the relation joins on, and none is shared: they are about
    different things, however close in time."""
    for kind in rel.contradict or ("endpoint", "host", "pid", "process"):
        if not rel.contradict and kind not in rel.join:
            continue
        a = [v for v in c.ents.get(kind, ()) if Entity(kind, v).specific and (kind, v) not in c.derived]
        b = [v for v in e.ents.get(kind, ()) if Entity(kind, v).specific and (kind, v) not in e.derived]
        if a and b and not set(a) & set(b):
            return True
    return False


class _Candidates:
    """Which effect nodes a cause node can be tied to at all, for one relation: those sharing an
    entity of a joined kind (a zone finds the names inside it), the artifact, or - for time
    joins - a start within ``time_within_s``.  Keeps the work near linear on big cases."""

    def __init__(self, nodes: Sequence[Node], effects: Sequence[int], rel: Relation):
        self.rel = rel
        self.by_value: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.by_artifact: dict[str, list[int]] = defaultdict(list)
        self.undated: list[int] = []
        dated: list[tuple[float, int]] = []
        kinds = [k for k in rel.join if k not in ("artifact", "time", "onset", "lockstep")]
        self.by_index = {nodes[ei].index: ei for ei in effects} if "lockstep" in rel.join else {}
        for ei in effects:
            e = nodes[ei]
            for kind in kinds:
                for v in e.ents.get(kind, ()):
                    self.by_value[(kind, v)].append(ei)
                    if kind == "host":                     # a zone's name finds the names inside it
                        parts = v.split(".")
                        for i in range(1, len(parts) - 1):
                            self.by_value[(kind, ".".join(parts[i:]))].append(ei)
            if "artifact" in rel.join and not e.finding.code.startswith("NET."):
                for a in e.artifacts:
                    self.by_artifact[a].append(ei)
            if e.first is None:
                self.undated.append(ei)
            else:
                dated.append((e.first, ei))
        dated.sort()
        self.first = {i: t for t, i in dated}
        self.times = [t for t, _ in dated]
        self.timed = [i for _, i in dated]

    def of(self, c: Node, tol: float, limit: int) -> list[int]:
        """At most ``limit`` candidates: those sharing an entity first, then the artifact, then time;
        nearest in time first within each."""
        rel = self.rel
        groups: list[set[int]] = [set(), set(), set()]
        for kind in rel.join:
            if kind == "artifact":
                for a in c.artifacts:
                    groups[1].update(self.by_artifact.get(a, ()))
            elif kind == "lockstep":
                groups[0].update(self.by_index[i] for i in c.steps if i in self.by_index)
            elif kind in ("time", "onset"):
                if c.first is not None:
                    lo = bisect.bisect_left(self.times, c.first - tol - rel.lag_s)
                    end = (c.first + rel.time_within_s if kind == "time"
                           else max(c.first, c.last or c.first) + rel.onset_s)
                    hi = bisect.bisect_right(self.times, end)
                    groups[2].update(self.timed[lo:hi])
            else:
                for v in c.ents.get(kind, ()):
                    groups[0].update(self.by_value.get((kind, v), ()))
        out: list[int] = []
        seen: set[int] = set()
        t_c = c.first
        for g in groups:
            for ei in sorted(g - seen, key=lambda i: (abs((self.first.get(i) or t_c or 0.0) - (t_c or 0.0)), i)):
                out.append(ei)
                if len(out) >= limit:
                    return out
            seen |= g
        return out


def _edges(nodes: Sequence[Node], lib: Library, skewed: set[str], max_out: int,
           s_generic: float = 0.5, onset_weight: float = JOIN_WEIGHT["onset"]) -> dict[tuple[int, int], Edge]:
    """The links of the library between ``nodes``; an effect known only as a generic error weighs
    ``s_generic`` (its words say nothing about the cause), and a finding of a class of its own is
    never linked as a generic error."""
    by_signal: dict[str, list[int]] = defaultdict(list)
    for k, n in enumerate(nodes):
        for sg in n.signals:
            by_signal[sg.id].append(k)
    edges: dict[tuple[int, int], Edge] = {}
    for rel in lib.relations:
        causes = sorted({k for sid in rel.cause for k in by_signal.get(sid, ())})
        effects = sorted({k for sid in rel.effect for k in by_signal.get(sid, ())})
        if not causes or not effects:
            continue
        cands = _Candidates(nodes, effects, rel)
        for ci in causes:
            c = nodes[ci]
            for ei in cands.of(c, 1.5, 3 * max_out):
                if ei == ci:
                    continue
                e = nodes[ei]
                j = _join(c, e, rel, skewed, onset_weight)
                if j is None:
                    continue
                esig = e.has(rel.effect)
                assert esig is not None
                if esig.id == GENERIC and e.signals[0].id != GENERIC:
                    continue        # a finding of a class of its own is not "any error" of another cause
                w = rel.weight * j[0] * (s_generic if esig.id == GENERIC else 1.0)
                old = edges.get((ci, ei))
                if old is None or w > old.weight:
                    edges[(ci, ei)] = Edge(ci, ei, round(w, 4), rel, j[1], esig)
    # at most ``max_out`` links leave one node: the strongest, then the nearest in time
    out: dict[int, list[Edge]] = defaultdict(list)
    for e in edges.values():
        out[e.cause].append(e)
    for ci, lst in out.items():
        if len(lst) > max_out:
            t_c = nodes[ci].first or 0.0
            lst.sort(key=lambda e: (-e.weight, abs((nodes[e.effect].first or t_c) - t_c), e.effect))
            for e in lst[max_out:]:
                del edges[(e.cause, e.effect)]
    # Two findings that would explain each other (same moment, or undated): keep the direction of a
    # relation that says what ends a program, then the one that
    # reads the effect as its own class (a bad setting read as "the program stopping" by a death
    # explains nothing: the library says the setting explains the death), then the one whose cause
    # is of the more causal class (higher prior), then the one that came first, then the stronger link.
    for (ci, ei) in list(edges):
        back = edges.get((ei, ci))
        fwd = edges.get((ci, ei))
        if back is None or fwd is None:
            continue
        t_c = nodes[ci].first if nodes[ci].first is not None else math.inf
        t_e = nodes[ei].first if nodes[ei].first is not None else math.inf
        own_f = fwd.effect_signal.id == nodes[ei].signals[0].id
        own_b = back.effect_signal.id == nodes[ci].signals[0].id
        # what ends a program (the relations that lend their effect's prior) is the cause of its death,
        # never the other way round
        # (only a relation that says so outright: a link that lends by default - a connection reset
        # read as what stopped a program - may well be the death's effect)
        if ((fwd.relation.lend_prior is True, own_f, nodes[ci].prior, -t_c, fwd.weight, -ci)
                < (back.relation.lend_prior is True, own_b, nodes[ei].prior, -t_e, back.weight, -ei)):
            del edges[(ci, ei)]
        else:
            del edges[(ei, ci)]
    return edges


def _closure(start: int, out: Mapping[int, list[Edge]], s: DiagnosisSettings) -> dict[int, tuple[float, Edge, int]]:
    """Nodes reachable from ``start``: node -> (best path weight, last edge, depth), best first
    (each node expanded once; at most ``s.max_reach`` nodes)."""
    best: dict[int, tuple[float, Edge, int]] = {}
    done: set[int] = {start}
    heap: list[tuple[float, int, int, int, Edge | None]] = [(-1.0, 0, 0, start, None)]
    pushed = 0
    tentative: dict[int, float] = {}
    while heap and len(best) < s.max_reach:
        negw, depth, _n, node, edge = heapq.heappop(heap)
        if edge is not None:
            if node in done:
                continue
            done.add(node)
            best[node] = (-negw, edge, depth)
        if depth >= s.max_depth:
            continue
        for e in out.get(node, ()):
            if e.effect in done:
                continue
            pw = -negw * e.weight * (s.hop_decay if depth else 1.0)
            if pw >= s.min_path_weight and pw > tentative.get(e.effect, 0.0):
                tentative[e.effect] = pw
                pushed += 1
                heapq.heappush(heap, (-pw, depth + 1, pushed, e.effect, e))
    return best


def _support(reach: Mapping[int, tuple[float, Edge, int]], nodes: Sequence[Node], s: DiagnosisSettings) -> float:
    """Sum of path weight x severity over the explained nodes.  Links that rest on time alone add at
    most ``s.max_time_support`` together, links that rest on sharing a file alone at most
    ``s.max_file_support`` (closeness in time, or being logged by the same program, is weaker
    evidence than naming the same endpoint, host or process)."""
    firm = timed = filed = onset = 0.0
    for j, (w, e, _d) in reach.items():
        v = w * _SEV_WEIGHT[nodes[j].severity]
        kinds = {kind for kind, _v in e.joined_on}
        if kinds == {"time"}:
            timed += v
        elif "onset" in kinds and kinds <= {"onset", "time", "artifact"}:
            onset += v
        elif kinds <= {"artifact", "time"}:
            filed += v
        else:
            firm += v
    return (firm + min(timed, s.max_time_support) + min(filed, s.max_file_support)
            + min(onset, s.max_onset_support))


def _confidence(k: int, nodes: Sequence[Node], reach: Mapping[int, tuple[float, Edge, int]],
                inbound: Sequence[Edge], window: tuple[datetime, datetime] | None, first_anomaly: int | None,
                placed: set[str], s: DiagnosisSettings,
                transient: Mapping[int, str] | None = None,
                roots: Mapping[int, float] | None = None,
                written: Mapping[int, datetime] | None = None) -> tuple[float, list[str]]:
    """Node ``k``'s confidence and the reasons for it (see the module docstring).  ``placed``: the
    artifacts whose clock shows them in the incident window (problems of theirs fall in it)."""
    n = nodes[k]
    support = _support(reach, nodes, s)
    prior = n.prior
    conf = prior * (0.5 + 0.5 * (1.0 - math.exp(-1.2 * support)))
    reasons = [f"{n.signals[0].id}: prior {prior:.2f}",
               f"explains {len(reach)} other finding(s), support {support:.2f}"]
    explained_by = 0.0
    by = None
    for e in inbound:
        cause = nodes[e.cause]
        if e.cause in reach and (cause.first is None or n.first is None):
            continue                           # an undated cycle says nothing about direction
        # a cause that is itself the effect of a likelier cause speaks with that cause's prior: the
        # front's slow answers explained by upstream time-outs that a slow backend explains
        c_prior = max(cause.prior, roots.get(e.cause, 0.0)) if roots else cause.prior
        v = e.weight * min(1.0, c_prior / prior)
        if v > explained_by:
            explained_by, by = v, e.cause
    if by is not None:
        conf *= 1.0 - s.explained_penalty * explained_by
        reasons.append(f"explained by finding {nodes[by].index} ({explained_by:.2f})")
    if window is not None and n.first is not None:
        w_start, w_end = window[0].timestamp(), window[1].timestamp()
        margin = s.chronic_margin.total_seconds()
        far = s.timing.max_skew.total_seconds()
        lead = s.lead.total_seconds()
        if not (n.artifacts & placed) and w_start - far <= n.first <= w_end + far:
            pass        # its file shows nothing in the incident: maybe another clock, so no verdict on time
        elif any(sg.acute for sg in n.signals) and any(
                nodes[j].first is not None and w_start - lead <= nodes[j].first <= w_end for j in reach):
            # a death or a crash is a happening: one that recurs is not background noise when the
            # incident's effects follow it
            reasons.append("a happening whose effects follow in the incident: not discounted as chronic")
        elif n.first < w_start - margin and (n.last or n.first) >= w_start - margin and n.count > 1:
            conf *= s.chronic_factor
            reasons.append("chronic: present long before the incident and still there")
        elif (n.last or n.first) < w_start - margin:
            conf *= s.stale_factor
            reasons.append("over long before the incident")
        elif n.first > w_end + margin:
            conf *= s.stale_factor
            reasons.append("begins long after the incident")
    if n.file_dated:
        reasons.append("undated inside: dated by when its file was written, in the incident")
    if written and k in written and n.first is None:
        conf *= s.stale_factor
        reasons.append(f"undated, but its file was last written {written[k].isoformat(timespec='seconds')}, "
                       "long before the incident")
    if transient and k in transient:
        conf *= s.transient_factor
        reasons.append(f"transient: {transient[k]} took connections again right after")
    if not reach:
        # a lone finding: how strong is the evidence itself (severity, how often it was seen)
        strength = _LONE_SEVERITY.get(n.severity, 0.6) * (0.85 + 0.15 * min(1.0, math.log10(max(1, n.count))))
        conf *= strength
        reasons.append(f"explains nothing else: evidence strength {strength:.2f}")
        if n.first is None and not inbound:
            conf *= s.unplaced_factor
            reasons.append("neither dated nor tied to another finding: not placed in the incident")
    if k == first_anomaly and support > 0:        # a lone finding stays below half its prior
        conf *= s.first_bonus
        reasons.append("the first anomaly of the incident")
    return max(0.0, min(0.99, conf)), reasons


def self_named(n: Node) -> set[str]:
    """Programs a finding presents as its speaker: a ``prog[pid]:`` prefix in its records, or its
    analyzer's data (``process``, ``app``, ``service``).  A program named only in the message
    ("webhook to notifyd 10.0.0.5:80 failed") is what the speaker talks about.

    >>> from backline.model import Finding, Severity
    >>> f = Finding("LOG.ERROR_TEMPLATE", "t", Severity.HIGH, "a.log", data={"process": "relayd"})
    >>> sorted(self_named(Node(0, [0], f, "host notifyd[311]: webhook to pagerd 10.0.0.5:80 failed", [], {}, set())))
    ['notifyd', 'relayd']
    """
    out = {m.group(1).lower() for m in PROG_PID.finditer(n.text)}
    data = n.finding.data if isinstance(n.finding.data, Mapping) else {}
    for key in ("process", "app", "service"):
        v = data.get(key)
        for x in (v if isinstance(v, (list, tuple)) else [v]):
            if isinstance(x, str) and x:
                out.add(x.lower())
    return out


def _acute(n: Node) -> bool:
    return any(sg.acute for sg in n.signals)


def _lends(e: Edge, nodes: Sequence[Node]) -> bool:
    """Whether a link says what ended a program: its relation says so (``lend_prior = true``), or
    says nothing and links a cause that is not itself a happening (an exception, a refused access,
    a full disk, a bad setting, a lock wait) to an acute effect (a death, a crash)."""
    lend = e.relation.lend_prior
    if lend is None:
        return _acute(nodes[e.effect]) and not _acute(nodes[e.cause])
    return lend


def _lend_priors(nodes: Sequence[Node], edges: Mapping[tuple[int, int], Edge]) -> None:
    """A cause tied by the program itself (pid, process) to an acute effect of a higher prior - the
    exception raised just before each exit of a program and that program's death, the refused
    access or the full disk that stopped it - takes that prior (see :func:`_lends`): the death is its
    effect, not a cause beside it."""
    for (ci, ei), e in edges.items():
        if not _acute(nodes[ei]) or not _lends(e, nodes):
            continue
        if not any(kind in ("pid", "process", "lockstep") for kind, _v in e.joined_on):
            continue
        eff = max(sg.prior for sg in nodes[ei].signals)
        if eff > nodes[ci].prior:
            nodes[ci].lent = eff


#: Classes of a client failing to reach or hear from another program: the programs they name are
#: what was called, not who failed.
CLIENT_FAILURES = ("conn_refused_log", "conn_error", "conn_reset_log", "timeout", "tls_failure_log",
                   "dns_failure_log")

#: Signals of a server not taking connections, and codes of a capture's findings that show a server
#: that took the connection (it answered a handshake, a request, or data).
REFUSAL_CLASSES = ("conn_refused", "no_answer")
_NOT_ACCEPTED = ("NET.TCP.RST_TO_SYN", "NET.TCP.SYN_UNANSWERED", "NET.DNS.")


def root_priors(nodes: Sequence[Node], inbound: Mapping[int, Sequence[Edge]], max_depth: int = 4) -> dict[int, float]:
    """For each node that something explains: the highest prior among the nodes that explain it,
    directly or through a chain of at most ``max_depth`` links (a dated cause, or one that is not
    explained back)."""
    out: dict[int, float] = {}
    for k in inbound:
        best = 0.0
        seen = {k}
        frontier = [k]
        for _ in range(max_depth):
            nxt = []
            for j in frontier:
                for e in inbound.get(j, ()):
                    if e.cause in seen:
                        continue
                    seen.add(e.cause)
                    best = max(best, nodes[e.cause].prior)
                    nxt.append(e.cause)
            frontier = nxt
            if not frontier:
                break
        out[k] = best
    return out


def transient_refusals(nodes: Sequence[Node], max_gap_s: float = 60.0) -> dict[int, str]:
    """Refusal bursts that end and are followed by the same endpoint taking connections again (the
    capture's SYN-ACK after the last refusal, ``accepted_after_s`` in the refusal's data, or a
    capture's finding on it - TLS alerts, HTTP answers, resets mid-stream - that goes on after the
    last refusal, within ``max_gap_s``): a restart's window, not the condition that lasts.  Node
    position -> the endpoint.

    >>> from backline.model import Finding, Severity
    >>> def n(code, t0, t1, sid="conn_refused"):
    ...     f = Finding(code, code, Severity.HIGH, "c.pcap")
    ...     return Node(0, [0], f, "", [], {"endpoint": ["10.0.0.5:443"]}, {"c.pcap"}, t0, t1)
    >>> from backline.knowledge.diagnosis.library import load_library
    >>> ref = n("NET.TCP.RST_TO_SYN", 10.0, 11.0); ref.signals = [load_library().signal("conn_refused")]
    >>> transient_refusals([ref, n("NET.TLS.ALERT", 11.5, 40.0)]), transient_refusals([ref, n("NET.TLS.ALERT", 1.0, 9.0)])
    ({0: '10.0.0.5:443'}, {})
    """
    out: dict[int, str] = {}
    by_ep: dict[str, list[Node]] = defaultdict(list)
    for m in nodes:
        if m.finding.code.startswith("NET.") and not m.finding.code.startswith(_NOT_ACCEPTED) and m.last is not None:
            for ep in m.ents.get("endpoint", ())[:1]:
                by_ep[ep].append(m)
    for k, n in enumerate(nodes):
        if not n.has(REFUSAL_CLASSES) or n.last is None or not n.ents.get("endpoint"):
            continue
        ep = n.ents["endpoint"][0]
        after = n.finding.data.get("accepted_after_s") if isinstance(n.finding.data, Mapping) else None
        if isinstance(after, (int, float)) and after <= max_gap_s:
            out[k] = ep           # the capture saw the endpoint take a connection again right after
        elif any(n.last < m.last and (m.first or m.last) <= n.last + max_gap_s for m in by_ep.get(ep, ())):
            out[k] = ep
    return out


def _bridge(nodes: Sequence[Node], findings: Sequence[Finding], facts: Sequence[Fact], vocab) -> list[Node]:
    """Entities one piece of evidence ties together: a server's address for the name the client
    used (TLS SNI), the dumped process a log line names beside an endpoint, the program a log's
    file name names, the program a log says serves on an endpoint, and the failed lookups of the
    names a client asked for by a relative name (the completions of one lookup become one node)."""
    owners = endpoint_owners(findings, named_processes(findings, facts), vocab)
    addresses = server_names(findings)
    art_procs = artifact_processes([f.artifact for f in findings if f.artifact]
                                   + [x.artifact for x in facts if x.name == "log.template_index"], vocab)
    served = listeners(facts, vocab, art_procs)
    for n in nodes:
        own = {p for a in n.artifacts for p in art_procs.get(a, ())}
        serving = {p for ep in n.ents.get("endpoint", ()) for p in served.get(ep, ())}
        # a program a finding reaches only as the server of an endpoint it names is its peer, not itself:
        # unless the finding is in that program's own words (its log, its ``prog[pid]`` prefix, its data)
        n.peers |= serving - own - self_named(n)
        if n.has(CLIENT_FAILURES):
            # a client's failure to reach a program names that program as what it called ("upstream
            # session-store (10.0.0.7:41120) failed: Connect call failed"): a peer, unless it speaks
            n.peers |= set(n.ents.get("process", ())) - own - self_named(n)
        inferred = sorted(own | serving)
        if inferred:
            lst = n.ents.setdefault("process", [])
            for p in inferred:
                if p not in lst:
                    lst.append(p)
                    n.derived.add(("process", p))
    nodes = merge_nodes(nodes, relative_names(nodes))
    for n in nodes:
        eps = n.ents.setdefault("endpoint", [])
        eps += sorted({a for ep in eps for a in addresses.get(ep, ()) if a not in eps})
        derived = sorted({p for ep in eps for p in owners.get(ep, ())})
        if derived:
            lst = n.ents.setdefault("process", [])
            lst += [p for p in derived if p not in lst]
    return nodes


def _mtime(a: Artifact) -> datetime | None:
    raw = (a.meta or {}).get("mtime") if isinstance(a.meta, Mapping) else None
    if isinstance(raw, datetime):
        return raw
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        return None


#: Artifact kinds written in one go when a process dies (or is dumped).
_SNAPSHOTS = frozenset({"elf_core", "minidump"})


def dated_by_file(nodes: Sequence[Node], artifacts: Sequence[Artifact], start: float, end: float) -> None:
    """Undated findings of process snapshots (an ELF core, a minidump: nothing inside says when) whose
    files were all last written between ``start`` and ``end`` (epoch seconds: the incident window, widened) take
    that write as their time: the kernel writes a core as the process dies, in one go.  Text traces
    are not (a stderr file is written to until collection: its time is its last line's).  A file
    written outside the window - an old core, or one copied without its times - is left undated
    (:func:`written_before` judges the old ones).

    >>> from backline.model import Artifact, ArtifactKind, Finding, Severity
    >>> a = Artifact("b!/core.q.1", ArtifactKind.ELF_CORE, 1, "", meta={"mtime": "2026-12-07T16:00:03+00:00"})
    >>> n = Node(0, [0], Finding("DUMP.CRASH", "t", Severity.HIGH, a.path), "", [], {}, {a.path})
    >>> t = datetime.fromisoformat("2026-12-07T16:00:00+00:00").timestamp()
    >>> dated_by_file([n], [a], t, t + 60); n.first == t + 3, n.file_dated
    (True, True)
    """
    from datetime import timezone
    when = {a.path: _mtime(a) for a in artifacts if a.kind.value in _SNAPSHOTS}
    for n in nodes:
        if n.first is not None or not n.artifacts or not n.finding.code.startswith("DUMP."):
            continue
        times = [when.get(a) for a in n.artifacts]
        if any(t is None for t in times):
            continue
        latest = max(t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc) for t in times).timestamp()  # type: ignore[union-attr]
        if start <= latest <= end:
            n.first = n.last = latest
            n.file_dated = True


def written_before(nodes: Sequence[Node], artifacts: Sequence[Artifact], before: datetime) -> dict[int, datetime]:
    """Undated nodes all of whose files were last written (modified, as intake recorded it) before
    ``before``: a core or a trace file is written when the program died, so an undated crash in a
    file last touched hours before the incident is over long before it.  Node position -> the latest
    write.  A file copied without its times carries the copy's time, which is never early: such a
    finding is just not judged.

    >>> from backline.model import Artifact, ArtifactKind, Finding, Severity
    >>> old = Artifact("b!/core.x.1", ArtifactKind.ELF_CORE, 1, "", meta={"mtime": "2026-12-07T13:25:04+00:00"})
    >>> new = Artifact("b!/core.y.2", ArtifactKind.ELF_CORE, 1, "", meta={"mtime": "2026-12-07T18:25:04+00:00"})
    >>> def n(path, first=None):
    ...     return Node(0, [0], Finding("DUMP.CRASH", "t", Severity.HIGH, path), "", [], {}, {path}, first)
    >>> t = datetime.fromisoformat("2026-12-07T16:00:00+00:00")
    >>> sorted(written_before([n("b!/core.x.1"), n("b!/core.y.2"), n("b!/core.x.1", 1.0), n("other")], [old, new], t))
    [0]
    """
    from datetime import timezone
    before = before if before.tzinfo is not None else before.replace(tzinfo=timezone.utc)
    when = {a.path: _mtime(a) for a in artifacts}
    out: dict[int, datetime] = {}
    for k, n in enumerate(nodes):
        if n.first is not None or not n.artifacts:
            continue
        times = [when.get(a) for a in n.artifacts]
        if all(t is not None for t in times):
            latest = max(times)                                        # type: ignore[type-var]
            if latest.tzinfo is None:
                latest = latest.replace(tzinfo=timezone.utc)
            if latest < before:
                out[k] = latest
    return out


def diagnose(findings: Sequence[Finding], events: Sequence[Event] = (), facts: Sequence[Fact] = (),
             artifacts: Sequence[Artifact] = (), *, library: Library | None = None,
             settings: DiagnosisSettings | None = None, skew_digests: Mapping | None = None) -> Diagnosis:
    """Rank the probable root causes among ``findings`` (see the module docstring).

    Pure: reads the analysis' findings, events, facts and artifacts, never a file
    (the shipped relation library aside, loaded once).  ``finding`` indices in the
    result refer to ``findings`` as given.  ``skew_digests``: what the clock-skew
    estimate reads of some artifacts' events, found where they were analysed
    (:func:`.timing.skew_digests`; ``events`` then in time order); the same result, less work.
    """
    t0 = time.perf_counter()
    s = settings or DiagnosisSettings()
    lib = library or load_library()
    vocab = learn_vocabulary(findings, facts)
    art_ents = artifact_entities(facts)
    captures = sorted({a.path for a in artifacts if a.kind.value == "capture"})
    skews = estimate_skews(events, vocab, s.timing, prefer=captures, digests=skew_digests)
    offsets = {k.artifact: k.offset_s for k in skews}
    window = incident_window(events, offsets, s.timing)
    nodes = build_nodes(findings, lib, vocab, art_ents, offsets, s.max_nodes)
    nodes = _bridge(nodes, findings, facts, vocab)
    if window:
        dated_by_file(nodes, artifacts, window[0].timestamp() - s.lead.total_seconds(),
                      window[1].timestamp() + s.chronic_margin.total_seconds())
    nodes = merge_nodes(nodes, *core_deaths(nodes))
    lockstep(nodes)
    edges = _edges(nodes, lib, set(offsets), s.max_out_links, onset_weight=s.onset_weight)
    _lend_priors(nodes, edges)
    out: dict[int, list[Edge]] = defaultdict(list)
    inbound: dict[int, list[Edge]] = defaultdict(list)
    for e in sorted(edges.values(), key=lambda e: (-e.weight, e.cause, e.effect)):
        out[e.cause].append(e)
        inbound[e.effect].append(e)

    first_anomaly = None
    placed: set[str] = set()
    if window:
        w_start, w_end, lead = window[0].timestamp(), window[1].timestamp(), s.lead.total_seconds()
        margin = s.chronic_margin.total_seconds()
        placed = {e.artifact for e in events if e.ts is not None and e.severity >= Severity.MEDIUM
                  and w_start - lead <= e.ts.timestamp() - offsets.get(e.artifact, 0.0) <= w_end + margin}
        in_window = [k for k, n in enumerate(nodes) if n.first is not None and n.prior >= 0.5 and not n.coarse
                     and w_start - lead <= n.first <= w_end]
        if in_window:
            first_anomaly = min(in_window, key=lambda k: (nodes[k].first, -nodes[k].prior))

    transient = transient_refusals(nodes)
    written = written_before(nodes, artifacts, window[0] - s.written_margin) if window else {}
    roots = {k: p for k, p in root_priors(nodes, inbound, s.max_depth).items()}
    scored = []
    for k in range(len(nodes)):
        reach = _closure(k, out, s)
        conf, reasons = _confidence(k, nodes, reach, inbound.get(k, ()), window, first_anomaly, placed, s, transient,
                                    roots, written)
        scored.append((conf, k, reach, reasons))
    scored.sort(key=lambda x: (-x[0], nodes[x[1]].first if nodes[x[1]].first is not None else math.inf,
                               nodes[x[1]].index))

    causes = []
    for conf, k, reach, reasons in scored[: s.max_causes]:
        if conf < s.min_confidence:
            break
        causes.append(make_cause(nodes, k, conf, reach, reasons, art_ents, s.max_links))
    return Diagnosis(
        causes=tuple(causes),
        incident_start=window[0] if window else None, incident_end=window[1] if window else None,
        skews=tuple(skews), duration_s=round(time.perf_counter() - t0, 6))



"""Turn one pass's statistics into Findings and timeline Events.

Every finding points at the frames that show it (``packet:N``, Wireshark's
1-based frame number); the timeline gets the first and the last packet of
each finding, not every packet of a run.

Finding codes (documented in docs/net.md)::

    NET.TCP.RST_TO_SYN        connection refused: RST answering a SYN
    NET.TCP.SYN_UNANSWERED    SYNs that got no answer at all
    NET.TCP.RST_MIDSTREAM     established connections reset, and by whom
    NET.TCP.RETRANS_RATE      retransmission rate of a conversation above the threshold
    NET.TCP.ZERO_WINDOW_STALL a receiver advertised a zero window (not reading)
    NET.DNS.NXDOMAIN / NET.DNS.SERVFAIL / NET.DNS.ERROR / NET.DNS.UNANSWERED
    NET.TLS.ALERT             TLS alerts by server and description
    NET.HTTP.5XX / NET.HTTP.4XX   error responses by server and path
    NET.HTTP.SLOW / NET.SMB2.SLOW  slow responses (p50/p95/max per server)
    NET.HTTP.UNANSWERED       requests whose connection ended unanswered after a wait (a client's time-out)
    NET.SMB2.ERROR            SMB2 statuses that are real failures
    NET.TCP.SLOW_ANSWER       slow answers of a server in a protocol not decoded (request/answer turns)
    NET.TCP.UNANSWERED        requests of such a protocol whose client closed the stream waiting for the answer
    NET.CAPTURE.TRUNCATED     the file stops early or is damaged
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

from backline.analyzers.net.capture import CaptureStats
from backline.analyzers.net.decode import format_addr
from backline.analyzers.net.dns import DnsAnswer
from backline.analyzers.net.smb2 import COMMANDS, status_name
from backline.analyzers.net.tls import ALERT_LEVELS, ALERT_NAMES
from backline.model import Event, EvidenceRef, Finding, Severity

MAX_REFS = 20
MAX_EACH = 50        # per code, the most frequent groups get a finding each; the rest one
_ID_SEGMENT = re.compile(r"(?=[^/]*\d)[0-9A-Fa-f-]{6,}|\d+")


def path_pattern(path: str) -> str:
    """An HTTP path with its query dropped and id-like segments replaced.

    >>> path_pattern("/api/v1/items/48213?page=2")
    '/api/v1/items/{id}'
    >>> path_pattern("/users/3f2a9c1e-77aa-4c1d/avatar.png")
    '/users/{id}/avatar.png'
    """
    path = path.split("?", 1)[0]
    return "/".join("{id}" if _ID_SEGMENT.fullmatch(seg) else seg for seg in path.split("/"))


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Tunable limits (``ctx.options["net.capture"]`` keys of the same names)."""

    retrans_rate: float = 0.05       # fraction of data segments retransmitted
    retrans_min: int = 3             # at least this many retransmissions
    slow_http_s: float = 1.0         # p95 above this is slow
    slow_smb2_s: float = 1.0
    slow_tcp_s: float = 1.0          # answers of undecoded protocols: p95 above this is slow
    min_tcp_answers: int = 5         # ... over at least this many answers of one server
    zero_window_min_s: float = 0.0   # report stalls at least this long

    @classmethod
    def from_options(cls, opts: dict | None) -> "Thresholds":
        if not opts:
            return cls()
        known = {k: type(getattr(cls(), k))(v) for k, v in opts.items() if hasattr(cls(), k)}
        return cls(**known)


def ts_dt(ns: int) -> datetime | None:
    """Nanoseconds since the epoch as an aware UTC datetime; None when unknown or
    outside what a datetime can hold (damaged timestamp fields).

    >>> ts_dt(1_000_000_000_000_000_000).year, ts_dt(0), ts_dt(10**30)
    (2001, None, None)
    """
    if not ns:
        return None
    try:
        return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def percentile(sorted_vals: list, q: float):
    """Nearest-rank percentile of an already sorted list.

    >>> percentile([1, 2, 3, 4], 0.5), percentile([1, 2, 3, 4], 0.95)
    (2, 4)
    """
    if not sorted_vals:
        return 0
    k = max(0, min(len(sorted_vals) - 1, int(-(-q * len(sorted_vals) // 1)) - 1))
    return sorted_vals[k]


class _Builder:
    def __init__(self, artifact: str, analyzer: str):
        self.artifact = artifact
        self.analyzer = analyzer
        self.findings: list[Finding] = []
        self.events: list[Event] = []

    def add(self, code: str, title: str, severity: Severity, frames: list[tuple[int, int, str]],
            detail: str = "", count: int = 1, data: dict | None = None) -> None:
        """``frames``: (frame, ts_ns, excerpt) in time order, first ones kept."""
        frames = sorted(frames)
        refs = tuple(EvidenceRef.packet(self.artifact, f, ex) for f, _t, ex in frames[:MAX_REFS])
        if len(frames) > MAX_REFS:
            f, _t, ex = frames[-1]
            refs += (EvidenceRef.packet(self.artifact, f, ex),)
        first = frames[0] if frames else None
        last = frames[-1] if frames else None
        self.findings.append(Finding(
            code=code, title=title, severity=severity, artifact=self.artifact, evidence=refs,
            detail=detail, count=count, first_seen=ts_dt(first[1]) if first else None,
            last_seen=ts_dt(last[1]) if last else None, analyzer=self.analyzer,
            data=data or {}))
        kind = "net." + code.split(".", 1)[1].lower()
        for i, fr in enumerate((first, last) if last and last is not first and last[0] != first[0]
                               else (first,)):
            if fr is None:
                continue
            self.events.append(Event(
                ts=ts_dt(fr[1]), artifact=self.artifact, kind=kind,
                summary=(title if i == 0 else f"{title} (last)"), severity=severity,
                ref=EvidenceRef.packet(self.artifact, fr[0], fr[2]), analyzer=self.analyzer))


def build_findings(st: CaptureStats, artifact: str, analyzer: str = "net.capture",
                   th: Thresholds | None = None) -> tuple[list[Finding], list[Event]]:
    """All findings of one capture, most severe first, and their timeline events."""
    th = th or Thresholds()
    b = _Builder(artifact, analyzer)
    _tcp(b, st, th)
    _dns(b, st)
    _tls(b, st)
    _http(b, st, th)
    _smb2(b, st, th)
    _turns(b, st, th)
    if st.problem is not None:
        loc = getattr(st.problem, "locator", "") or ""
        msg = getattr(st.problem, "message", str(st.problem))
        frame = st.packets
        b.add("NET.CAPTURE.TRUNCATED", f"Capture damaged after packet {frame}: {msg}",
              Severity.MEDIUM, [(frame, st.last_ts, f"last good packet; then {loc}")] if frame else [],
              detail=f"Read {frame} good packet(s); reading stopped at {loc}: {msg}",
              data={"locator": loc, "message": msg, "packets_read": frame})
    b.findings.sort(key=lambda f: (-int(f.severity), f.code))
    return b.findings, b.events


def _tcp(b: _Builder, st: CaptureStats, th: Thresholds) -> None:
    refused: dict[str, list] = defaultdict(list)
    unanswered: dict[str, list] = defaultdict(list)
    midstream: dict[tuple, list] = defaultdict(list)
    accepted: dict[str, list[int]] = defaultdict(list)     # server -> times it answered a SYN with a SYN-ACK
    for c in st.tcp.conns:
        state = c.state()
        a_orig = c.originator_is_a()
        client, cport, server, sport = (c.a, c.ap, c.b, c.bp) if a_orig else (c.b, c.bp, c.a, c.ap)
        srv = f"{format_addr(server)}:{sport}"
        if c.synack_frame and state != "REJ":
            accepted[srv].append(c.synack_ts)
        if state == "REJ":
            rst = next((r for r in c.rst_frames if (r[2] == 1) == a_orig), c.rst_frames[0])
            refused[srv].append((c.syn_frame, c.first_ts, f"SYN from {format_addr(client)}:{cport}"))
            refused[srv].append((rst[0], rst[1], f"RST from {srv}"))
        elif state in ("S0", "SH"):
            unanswered[srv].append((c.syn_frame, c.first_ts,
                                    f"SYN from {format_addr(client)}:{cport}, {c.d[0 if a_orig else 1].packets} sent"))
        elif state in ("RSTO", "RSTR"):
            f, t, di = c.rst_frames[0]
            sender = c.a if di == 0 else c.b
            who = "client" if (di == 0) == a_orig else "server"
            midstream[(srv, who, format_addr(sender))].append(
                (f, t, f"RST from {who} {format_addr(sender)} in stream {c.stream}"))
        data_pk = c.data_packets
        if c.retrans >= th.retrans_min and data_pk and c.retrans / data_pk >= th.retrans_rate:
            r = st.retrans_frames.get(c.stream)
            rate = c.retrans / data_pk
            frames = [(r[0], r[2], "first retransmission"), (r[1], r[3], "last retransmission")] if r else []
            b.add("NET.TCP.RETRANS_RATE",
                  f"{rate:.0%} of segments retransmitted between {format_addr(client)}:{cport} and {srv}",
                  Severity.HIGH if rate >= 0.2 else Severity.MEDIUM, frames, count=c.retrans,
                  detail=f"tcp.stream {c.stream}: {c.retrans} retransmission(s) of {data_pk} data segments",
                  data={"stream": c.stream, "rate": round(rate, 4), "retransmissions": c.retrans,
                        "data_segments": data_pk, "client": f"{format_addr(client)}:{cport}",
                        "server": srv})
    for srv, frames in refused.items():
        n = len(frames) // 2
        data = {"server": srv, "connections": n}
        detail = f"{n} SYN(s) to {srv} answered with RST: nothing listening or a firewall rejecting"
        # the server took connections again after the last refusal (a restart's or a start's window)
        last = max(t for _f, t, _x in frames)
        later = [t for t in accepted.get(srv, ()) if t > last]
        if later:
            data["accepted_after_s"] = round((min(later) - last) / 1e9, 6)
            detail += f"; it accepted a connection again {data['accepted_after_s']:.3f} s after the last refusal"
        b.add("NET.TCP.RST_TO_SYN", f"Connection refused by {srv} ({n} attempt(s))",
              Severity.HIGH, frames, count=n, detail=detail, data=data)
    for srv, frames in unanswered.items():
        b.add("NET.TCP.SYN_UNANSWERED", f"SYN to {srv} never answered ({len(frames)} connection(s))",
              Severity.HIGH, frames, count=len(frames),
              detail=f"{len(frames)} connection attempt(s) to {srv} got no SYN-ACK or RST: host down, "
                     "filtered, or the reply path is broken",
              data={"server": srv, "connections": len(frames)})
    for (srv, who, sender), frames in midstream.items():
        b.add("NET.TCP.RST_MIDSTREAM", f"{len(frames)} connection(s) to {srv} reset by the {who} ({sender})",
              Severity.MEDIUM, frames, count=len(frames),
              detail=f"Established connection(s) to {srv} ended with a RST sent by the {who} {sender}",
              data={"server": srv, "sender": sender, "sender_role": who, "connections": len(frames)})
    runs = []
    for run in st.zero_windows:
        end = run.end_ts or st.last_ts
        dur = max(0, end - run.first_ts) / 1e9
        if dur >= th.zero_window_min_s:
            runs.append((dur, run))
    runs.sort(key=lambda x: (-x[0], x[1].first_frame))
    for dur, run in runs[:MAX_EACH]:
        still = " and never reopened in the capture" if not run.end_ts else ""
        b.add("NET.TCP.ZERO_WINDOW_STALL",
              f"{run.receiver} advertised a zero window for {dur:.3f} s{still} (receiver not reading)",
              Severity.HIGH if dur >= 1 or not run.end_ts else Severity.MEDIUM,
              [(run.first_frame, run.first_ts, "first zero window"),
               (run.last_frame, run.last_ts, "last zero window")], count=run.packets,
              detail=f"tcp.stream {run.stream}: {run.packets} zero-window packet(s) from {run.receiver}",
              data={"stream": run.stream, "receiver": run.receiver, "duration_s": round(dur, 6),
                    "reopened": bool(run.end_ts)})
    rest = runs[MAX_EACH:]
    if rest:
        receivers = sorted({r.receiver for _d, r in rest})
        b.add("NET.TCP.ZERO_WINDOW_STALL",
              f"{len(rest)} more zero-window stall(s), up to {rest[0][0]:.3f} s, "
              f"from {len(receivers)} receiver(s)", Severity.MEDIUM,
              [(r.first_frame, r.first_ts, f"zero window from {r.receiver}") for _d, r in rest],
              count=len(rest), detail="Shorter stalls beyond the first "
                                      f"{MAX_EACH} reported one by one",
              data={"stalls": len(rest), "receivers": receivers[:100],
                    "max_duration_s": round(rest[0][0], 6)})


def _dns(b: _Builder, st: CaptureStats) -> None:
    groups: dict[tuple, list[DnsAnswer]] = defaultdict(list)
    for a in st.dns.failures:
        groups[(a.rcode, a.name)].append(a)
    by_rcode: dict[str, list] = defaultdict(list)
    for (rcode, name), lst in groups.items():
        by_rcode[rcode].append((name, lst))
    for rcode, items in by_rcode.items():
        code = {"NXDomain": "NET.DNS.NXDOMAIN", "ServFail": "NET.DNS.SERVFAIL"}.get(rcode, "NET.DNS.ERROR")
        sev = Severity.HIGH if rcode == "ServFail" else Severity.MEDIUM
        items.sort(key=lambda x: (-len(x[1]), x[0]))
        for name, lst in items[:MAX_EACH]:
            servers = sorted({a.server for a in lst})
            frames = [(a.response_frame, a.ts, f"{rcode} for {name} from {a.server}") for a in lst]
            b.add(code, f"DNS {rcode} for {name} ({len(lst)} response(s))", sev,
                  frames, count=len(lst),
                  detail=f"Server(s) {', '.join(servers)} answered {rcode} for {name}",
                  data={"name": name, "rcode": rcode, "servers": servers})
        rest = items[MAX_EACH:]
        if rest:
            answers = [a for _n, lst in rest for a in lst]
            b.add(code, f"DNS {rcode} for {len(rest)} other name(s) ({len(answers)} response(s))",
                  sev, [(a.response_frame, a.ts, f"{rcode} for {a.name}") for a in answers],
                  count=len(answers),
                  detail=f"Names beyond the {MAX_EACH} most frequent, e.g. "
                         + ", ".join(n for n, _l in rest[:10]),
                  data={"rcode": rcode, "names": [n for n, _l in rest[:100]],
                        "other_names": len(rest)})
    un: dict[str, list[DnsAnswer]] = defaultdict(list)
    for a in st.dns.unanswered_queries():
        un[a.name].append(a)
    items = sorted(un.items(), key=lambda x: (-len(x[1]), x[0]))
    for name, lst in items[:MAX_EACH]:
        frames = [(a.query_frame, a.ts, f"query for {name} to {a.server}") for a in lst]
        b.add("NET.DNS.UNANSWERED", f"DNS query for {name} never answered ({len(lst)} query(ies))",
              Severity.MEDIUM, frames, count=len(lst),
              detail=f"No response in the capture to {len(lst)} query(ies) for {name}",
              data={"name": name, "servers": sorted({a.server for a in lst})})
    rest = items[MAX_EACH:]
    if rest:
        queries = [a for _n, lst in rest for a in lst]
        b.add("NET.DNS.UNANSWERED", f"DNS queries for {len(rest)} other name(s) never answered",
              Severity.MEDIUM, [(a.query_frame, a.ts, f"query for {a.name}") for a in queries],
              count=len(queries), detail="Names beyond the first "
                                         f"{MAX_EACH}, e.g. " + ", ".join(n for n, _l in rest[:10]),
              data={"names": [n for n, _l in rest[:100]], "other_names": len(rest),
                    "servers": sorted({a.server for a in queries})[:100]})


def _tls(b: _Builder, st: CaptureStats) -> None:
    groups: dict[tuple, list] = defaultdict(list)
    for al in st.tls_alerts:
        if al.description == 0:        # close_notify is the normal end of a session
            continue
        groups[(al.server, al.description, al.level)].append(al)
    for (srv, desc, level), lst in groups.items():
        name = ALERT_NAMES.get(desc, str(desc))
        lvl = ALERT_LEVELS.get(level, str(level))
        senders = sorted({a.sender for a in lst})
        sni = next((a.sni for a in lst if a.sni), "")
        frames = [(a.frame, a.ts, f"{lvl} alert {name} from {a.sender}") for a in lst]
        b.add("NET.TLS.ALERT", f"TLS {lvl} alert {name} on {srv}" + (f" ({sni})" if sni else ""),
              Severity.HIGH if level == 2 else Severity.LOW, frames, count=len(lst),
              detail=f"{len(lst)} {lvl} alert(s) {name} sent by {', '.join(senders)}",
              data={"server": srv, "description": name, "level": lvl, "senders": senders, "sni": sni})


def _http(b: _Builder, st: CaptureStats, th: Thresholds) -> None:
    groups: dict[tuple, list] = defaultdict(list)
    for ex in st.http:
        if ex.status >= 400:
            groups[(ex.server, path_pattern(ex.path), ex.status)].append(ex)
    for code in ("NET.HTTP.5XX", "NET.HTTP.4XX"):
        items = sorted(((k, v) for k, v in groups.items() if (k[2] >= 500) == (code == "NET.HTTP.5XX")),
                       key=lambda kv: (-len(kv[1]), kv[0]))
        sev = Severity.HIGH if code == "NET.HTTP.5XX" else Severity.MEDIUM
        for (srv, path, status), lst in items[:MAX_EACH]:
            frames = [(e.response_frame, e.response_ts, f"{status} for {e.method} {e.path}")
                      for e in lst]
            b.add(code, f"HTTP {status} for {path} on {srv} ({len(lst)} response(s))", sev, frames,
                  count=len(lst), detail=f"{srv} answered {status} to {len(lst)} request(s) for {path}",
                  data={"server": srv, "path": path, "status": status})
        rest = items[MAX_EACH:]
        if rest:
            exs = [e for _k, lst in rest for e in lst]
            b.add(code, f"{len(exs)} more HTTP error response(s) for {len(rest)} other path(s)", sev,
                  [(e.response_frame, e.response_ts, f"{e.status} for {e.method} {e.path}")
                   for e in exs], count=len(exs),
                  detail=f"Server/path/status groups beyond the {MAX_EACH} most frequent",
                  data={"groups": [{"server": k[0], "path": k[1], "status": k[2], "count": len(v)}
                                   for k, v in rest[:100]], "other_groups": len(rest)})
    # requests whose connection ended without an answer after a wait: the client (a proxy's time-out)
    # gave up on a server too slow to answer - the slow answers that never came
    given_up: dict[str, list] = defaultdict(list)
    for ex in st.http:
        if ex.status == 0 and ex.response_frame == 0 and ex.response_ts - ex.request_ts > th.slow_http_s * 1e9:
            given_up[ex.server].append(ex)
    for srv, lst in sorted(given_up.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_EACH]:
        waits = sorted(e.response_ts - e.request_ts for e in lst)
        p50 = percentile(waits, 0.5)
        b.add("NET.HTTP.UNANSWERED",
              f"HTTP requests to {srv} got no answer: {len(lst)} connection(s) closed after waiting "
              f"{p50 / 1e9:.3f} s (p50)", Severity.MEDIUM,
              [(e.request_frame, e.request_ts, f"{e.method} {e.path}: no answer in "
                                               f"{(e.response_ts - e.request_ts) / 1e9:.3f} s") for e in lst],
              count=len(lst),
              detail=f"{len(lst)} request(s) to {srv} were still waiting for an answer when their connection "
                     f"ended (waited p50 {p50 / 1e9:.3f} s, max {waits[-1] / 1e9:.3f} s): the client gave up",
              data={"server": srv, "p50_wait_s": p50 / 1e9, "max_wait_s": waits[-1] / 1e9, "requests": len(lst)})
    for srv, times in st.http_times.items():
        s = sorted(times)
        p50, p95, mx = percentile(s, 0.5), percentile(s, 0.95), s[-1]
        if p95 / 1e9 > th.slow_http_s:
            slow = sorted(st.http_slowest.get(srv, ()), key=lambda it: it[1])   # by frame
            frames = [(frame, ts, f"{took / 1e9:.3f} s for {method} {path}")
                      for took, frame, ts, method, path in slow if took >= p95]
            b.add("NET.HTTP.SLOW", f"Slow HTTP responses from {srv}: p95 {p95 / 1e9:.3f} s",
                  Severity.MEDIUM, frames, count=len(s),
                  detail=f"{len(s)} responses: p50 {p50 / 1e9:.3f} s, p95 {p95 / 1e9:.3f} s, "
                         f"max {mx / 1e9:.3f} s",
                  data={"server": srv, "p50_s": p50 / 1e9, "p95_s": p95 / 1e9, "max_s": mx / 1e9,
                        "responses": len(s)})


def _smb2(b: _Builder, st: CaptureStats, th: Thresholds) -> None:
    groups: dict[tuple, list] = defaultdict(list)
    for r in st.smb2_failures:
        groups[(r.status, r.command)].append(r)
    for (status, command), lst in groups.items():
        cmd = COMMANDS[command] if command < len(COMMANDS) else str(command)
        name = status_name(status)
        frames = [(r.frame, r.ts, f"{cmd} -> {name}") for r in lst]
        sev = Severity.HIGH if status in (0xC0000022, 0xC000006D, 0xC00000CC, 0xC000007F) \
            else Severity.MEDIUM
        b.add("NET.SMB2.ERROR", f"SMB2 {cmd} failed with {name} ({len(lst)} time(s))", sev, frames,
              count=len(lst), detail=f"Server(s) {', '.join(sorted({r.server for r in lst}))} "
                                     f"answered {cmd} with {name} (0x{status:08x})",
              data={"status": f"0x{status:08x}", "status_name": name, "command": cmd})
    for command, times in st.smb2_times.items():
        s = sorted(times)
        p95 = percentile(s, 0.95)[0]
        if p95 / 1e9 > th.slow_smb2_s:
            cmd = COMMANDS[command] if command < len(COMMANDS) else str(command)
            slow = [t for t in s if t[0] >= p95]
            b.add("NET.SMB2.SLOW", f"Slow SMB2 {cmd} replies: p95 {p95 / 1e9:.3f} s",
                  Severity.MEDIUM, [(f, t, f"{r / 1e9:.3f} s from {srv}") for r, f, srv, t in slow],
                  count=len(s),
                  detail=f"{len(s)} {cmd} replies: p50 {percentile(s, 0.5)[0] / 1e9:.3f} s, "
                         f"p95 {p95 / 1e9:.3f} s, max {s[-1][0] / 1e9:.3f} s "
                         "(CHANGE_NOTIFY long polls excluded)",
                  data={"command": cmd, "p50_s": percentile(s, 0.5)[0] / 1e9, "p95_s": p95 / 1e9,
                        "max_s": s[-1][0] / 1e9})


def _turns(b: _Builder, st: CaptureStats, th: Thresholds) -> None:
    """Servers of protocols Backline does not decode (a database's, a cache's, an in-house RPC's)
    seen in request and answer turns: slow answers (p95 above ``slow_tcp_s`` over at least
    ``min_tcp_answers``), and clients that closed their stream while waiting.  A server that sends
    more data unasked than it answers (a feed, a push channel: its first message after a
    subscription is no answer time; unasked segments are counted up to 8 per stream) is left out of
    the slow answers."""
    for srv, times in sorted(st.tcp_times.items()):
        if len(times) < th.min_tcp_answers or st.tcp_unasked.get(srv, 0) > len(times):
            continue
        s = sorted(times)
        p50, p95, mx = percentile(s, 0.5), percentile(s, 0.95), s[-1]
        if p95 / 1e9 <= th.slow_tcp_s:
            continue
        slow = sorted(x for x in st.tcp_slowest.get(srv, ()) if x[0] / 1e9 > th.slow_tcp_s)
        # each slow request at its first segment (when the wait began), answered at packet N
        frames = [(req_frame, req_ts, f"answered {took / 1e9:.3f} s later (packet {frame})")
                  for took, req_frame, req_ts, frame, _ts in slow]
        n_slow = sum(1 for t in s if t / 1e9 > th.slow_tcp_s)
        b.add("NET.TCP.SLOW_ANSWER", f"Slow answers from {srv}: p95 {p95 / 1e9:.3f} s", Severity.MEDIUM,
              frames, count=n_slow,
              detail=f"{len(s)} request(s) answered in turn on a protocol not decoded: p50 {p50 / 1e9:.3f} s, "
                     f"p95 {p95 / 1e9:.3f} s, max {mx / 1e9:.3f} s; {n_slow} took over {th.slow_tcp_s:g} s "
                     "(from the request's last segment to the server's first data after it)",
              data={"server": srv, "p50_s": p50 / 1e9, "p95_s": p95 / 1e9, "max_s": mx / 1e9,
                    "answers": len(s), "slow": n_slow})
    for srv, lst in sorted(st.tcp_given_up.items()):
        waited = sorted(x for x in lst if x[0] / 1e9 > th.slow_tcp_s)
        if not waited or not st.tcp_times.get(srv):
            continue            # a server that never answers anything (a sink of one-way streams) is not waited on
        waits = sorted(x[0] for x in waited)
        p50 = percentile(waits, 0.5)
        b.add("NET.TCP.UNANSWERED",
              f"Requests to {srv} got no answer: {len(waited)} stream(s) closed by the client after waiting "
              f"{p50 / 1e9:.3f} s (p50)", Severity.MEDIUM,
              [(req_frame, req_ts, f"no answer in {w / 1e9:.3f} s; the client closed at packet {frame}")
               for w, req_frame, req_ts, frame, _ts in waited], count=len(waited),
              detail=f"{len(waited)} request(s) to {srv} (a protocol not decoded; the server answers other "
                     f"requests) were still waiting when their client closed the "
                     f"stream: waited p50 {p50 / 1e9:.3f} s, max {waits[-1] / 1e9:.3f} s - the client gave up",
              data={"server": srv, "p50_wait_s": p50 / 1e9, "max_wait_s": waits[-1] / 1e9,
                    "requests": len(waited)})

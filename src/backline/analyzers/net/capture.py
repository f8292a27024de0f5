"""One pass over a capture: decoding, TCP analysis, application protocols.

:func:`analyze_capture` streams the records of a file through the compiled
packet engine (:mod:`._engine`: decoding, the
:class:`~backline.analyzers.net.tcp.TcpTracker`, the HTTP / TLS / DNS
parsers) and returns a :class:`CaptureStats` holding every count the oracle
files know plus what the findings need (connections, failures, times). This
module wires the engine to the Python side: the evidence kept for findings,
the DNS-over-TCP and SMB2 parsers, what happens when a connection retires.
Memory grows with the number of connections and failures kept, not with the
number of packets.

>>> from backline.testing import corpus_dir
>>> s = analyze_capture(corpus_dir() / "net" / "cs_tcp_refuseconnection.pcapng")
>>> s.packets, s.tcp.counts[0], s.rst_frames, [c.state() for c in s.tcp.conns]
(2, 0, 1, ['REJ'])
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from backline.analyzers.net._engine import AppSink, Engine, Feed, HttpExchange  # noqa: F401
from backline.analyzers.net.decode import SUPPORTED_LINKTYPES, format_addr
from backline.analyzers.net.dns import DNS_PORTS, DnsTcpParser, DnsTracker
from backline.analyzers.net.http import HTTP_PORTS, OTHER_PROTOCOL_PORTS
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.smb2 import CHANGE_NOTIFY, SMB_PORTS, Smb2Parser, is_failure
from backline.analyzers.net.tcp import TcpTracker
from backline.analyzers.net.tls import ALERT_NAMES, TLS_PORTS

KEEP = 5_000          # failures of each kind kept with their evidence
EVICT_MASK = 0xFFF    # look for connections to retire every 4096 packets


#: Slowest HTTP exchanges kept per server as evidence for NET.HTTP.SLOW.
SLOWEST_KEPT = 20


@dataclass(slots=True)
class TlsAlert:
    frame: int
    ts: int
    stream: int
    sender: str
    server: str
    level: int
    description: int
    sni: str = ""


@dataclass(slots=True)
class SmbReply:
    frame: int
    ts: int
    stream: int
    server: str
    command: int
    status: int
    request_frame: int
    rtt_ns: int


@dataclass(slots=True)
class ZeroWindowRun:
    stream: int
    receiver: str         # the host advertising the zero window
    first_frame: int
    first_ts: int
    last_frame: int
    last_ts: int
    packets: int
    end_ts: int = 0       # when the window opened again (0: never in the capture)


@dataclass(slots=True)
class CaptureStats:
    """Everything one pass learned.  Counts use the oracle files' names."""

    path: str
    format: str = ""
    compression: str = ""
    packets: int = 0
    first_ts: int = 0
    last_ts: int = 0
    linktypes: set = field(default_factory=set)
    unsupported_linktype_frames: int = 0
    non_ip_frames: int = 0
    ipv4: int = 0
    ipv6: int = 0
    vlan_frames: int = 0
    fragments: int = 0
    udp: int = 0
    icmp: int = 0
    rst_frames: int = 0
    syn_frames: int = 0
    synack_frames: int = 0
    tcp: TcpTracker = field(default_factory=TcpTracker)
    dns: DnsTracker = field(default_factory=DnsTracker)
    http_request_frames: int = 0
    http_status: dict = field(default_factory=dict)
    http: list = field(default_factory=list)            # HttpExchange (failures + sample)
    http_times: dict = field(default_factory=dict)      # server -> [ns]
    http_slowest: dict = field(default_factory=dict)    # server -> min-heap of the slowest (ns, frame, ts, method, path)
    http_unanswered: int = 0
    # request and answer turns of streams in protocols not decoded (AppSink.tcp_answer)
    tcp_times: dict = field(default_factory=dict)       # server -> [ns] answer times
    tcp_slowest: dict = field(default_factory=dict)     # server -> min-heap (ns, req frame, req ts, frame, ts)
    tcp_unasked: dict = field(default_factory=dict)     # server -> data segments answering no request
    tcp_given_up: dict = field(default_factory=dict)    # server -> [(wait ns, req frame, req ts, frame, ts)]
    tls_alerts: list = field(default_factory=list)
    tls_alert_counts: dict = field(default_factory=dict)
    tls_alert_records: int = 0
    tls_hellos: dict = field(default_factory=dict)      # (sni, version) -> count
    smb2_error_status: dict = field(default_factory=dict)
    smb2_failures: list = field(default_factory=list)
    smb2_times: dict = field(default_factory=dict)      # command -> [ns] (final replies)
    smb2_responses: int = 0
    zero_windows: list = field(default_factory=list)
    retrans_frames: dict = field(default_factory=dict)  # stream -> (first, last, first_ts, last_ts)
    http_last_req_frame: int = 0
    problem: object = None
    warnings: list = field(default_factory=list)
    comments: list = field(default_factory=list)
    interfaces: int = 0


def analyze_capture(path: str | Path, name: str | None = None,
                    progress: Callable[[int], None] | None = None) -> CaptureStats:
    """Read ``path`` and analyse every packet (see the module docstring)."""
    reader = CaptureReader.open(path, name)
    return analyze_reader(reader, progress)


def analyze_reader(reader: CaptureReader,
                   progress: Callable[[int], None] | None = None) -> CaptureStats:
    """Analyse every packet of ``reader``.

    Python's cyclic garbage collector is paused for the pass: the loop makes
    few reference cycles (measured: about 500 cyclic objects per 300,000
    packets) but millions of short-lived containers, and the collector's
    repeated scans of the long-lived connection tables cost about 15% of the
    run.  The previous collector state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _analyze(reader, progress)
    finally:
        if was_enabled:
            gc.enable()


def _analyze(reader: CaptureReader, progress: Callable[[int], None] | None) -> CaptureStats:
    st = CaptureStats(path=reader.name, format=reader.format, compression=reader.compression)
    tcp = st.tcp
    pending_http: dict[int, list] = {}
    smb_req: dict[tuple, tuple] = {}
    zw_open: dict[tuple, ZeroWindowRun] = {}
    hellos: dict[int, str] = {}

    def on_evict(c) -> None:
        c.apps = None
        hellos.pop(c.stream, None)
        for ex in pending_http.pop(c.stream, ()):
            st.http_unanswered += 1
            end = _given_up(c)
            if end > ex.request_ts:      # the client closed the connection unanswered: status 0,
                ex.response_ts = end     # response_frame 0, the time the connection ended
            if len(st.http) < KEEP:
                st.http.append(ex)
        if c.zw:
            c.zw = 0
            for i in (0, 1):
                run = zw_open.pop((c.stream, i), None)
                if run is not None and len(st.zero_windows) < KEEP:
                    st.zero_windows.append(run)
    tcp.on_evict = on_evict

    def zw_closed(run: ZeroWindowRun) -> None:
        if len(st.zero_windows) < KEEP:
            st.zero_windows.append(run)

    def zw_run(stream: int, receiver: str, frame: int, ts: int) -> ZeroWindowRun:
        return ZeroWindowRun(stream, receiver, frame, ts, frame, ts, 1)

    sink = AppSink(st, pending_http, hellos, TlsAlert, ALERT_NAMES, KEEP, SLOWEST_KEPT)
    engine = Engine(
        tcp=tcp, dns=st.dns,
        make_apps=lambda c, payload: _make_apps(st, c, payload, smb_req, sink),
        sink=sink, http_ports=HTTP_PORTS, tls_ports=TLS_PORTS,
        smb_ports=SMB_PORTS, other_ports=OTHER_PROTOCOL_PORTS,
        zw_open=zw_open, retrans=st.retrans_frames, zw_run=zw_run, format_addr=format_addr,
        zw_closed=zw_closed, evict_mask=EVICT_MASK,   # module setting, read per run (tests lower it)
        dns_ports=DNS_PORTS)
    reader.feed(engine, progress)

    st.packets = engine.n
    st.first_ts = engine.first_ts
    st.last_ts = engine.last_ts
    for name in ("ipv4", "ipv6", "vlan_frames", "fragments", "udp", "icmp", "rst_frames",
                 "syn_frames", "synack_frames", "non_ip_frames"):
        setattr(st, name, getattr(engine, name))
    st.unsupported_linktype_frames = engine.unsupported
    for run in zw_open.values():
        if len(st.zero_windows) < KEEP:
            st.zero_windows.append(run)
    st.http_unanswered += sum(len(v) for v in pending_http.values())
    live = {c.stream: c for c in tcp.table.values() if c.stream in pending_http} if pending_http else {}
    for stream, lst in pending_http.items():
        c = live.get(stream)
        end = _given_up(c) if c is not None else 0
        for ex in lst:
            if end > ex.request_ts:      # given up, not yet evicted
                ex.response_ts = end
            if len(st.http) < KEEP:
                st.http.append(ex)
    st.linktypes = set(reader.linktypes)
    st.problem = reader.problem
    st.warnings = list(reader.warnings)
    st.comments = list(reader.comments)
    st.interfaces = reader.interfaces
    if st.unsupported_linktype_frames:
        bad = sorted(lt for lt in reader.linktypes if lt not in SUPPORTED_LINKTYPES)
        st.warnings.append(f"{st.unsupported_linktype_frames} frame(s) with unsupported link "
                           f"type(s) {bad} were counted but not decoded")
    return st


def _given_up(c) -> int:
    """When a connection ended (its ``closed_ts``) if its client closed it first - a FIN or RST of the
    client's before any of the server's: a client (a proxy's time-out) giving up on an answer -
    else 0 (open, or ended by the server: a server that dies resets its connections itself)."""
    if not c.closed_ts:
        return 0
    cd, sd = (c.d0, c.d1) if c.client_side == 0 else (c.d1, c.d0)
    mine = min((x for x in (cd.fin, cd.rst) if x), default=0)
    theirs = min((x for x in (sd.fin, sd.rst) if x), default=0)
    return c.closed_ts if mine and (not theirs or mine < theirs) else 0


def _ignore(*_args) -> None:
    """The callback of a message kind a parser's direction does not report."""


def _make_apps(st: CaptureStats, c, payload: bytes, smb_req: dict, sink: AppSink) -> tuple:
    """Application parsers of a new DNS-over-TCP or SMB2 stream (the engine sets up
    HTTP and TLS streams itself, reporting to :class:`_AppSink`)."""
    # the client: the SYN's sender when known, else the side off the well-known port
    if c.syn_frame:
        a_is_client = c.originator_is_a()
    else:
        a_is_client = c.bp in HTTP_PORTS or c.bp in TLS_PORTS or c.bp in SMB_PORTS or \
            c.bp in DNS_PORTS or c.bp < c.ap
    server_name = sink.endpoint(c.b, c.bp) if a_is_client else sink.endpoint(c.a, c.ap)
    stream = c.stream

    if c.ap == 53 or c.bp == 53:
        conv = (c.a, c.ap, c.b, c.bp) if a_is_client else (c.b, c.bp, c.a, c.ap)
        srv_raw = conv[2]

        def make_dns(from_client: bool):
            return DnsTcpParser(lambda frame, ts, msg: st.dns.message(
                frame, ts, conv, msg, from_client, srv_raw))
        return (Feed(make_dns(a_is_client)), Feed(make_dns(not a_is_client)))

    if c.ap in SMB_PORTS or c.bp in SMB_PORTS:
        def on_smb(frame, ts, command, is_resp, status, mid):
            if not is_resp:
                if len(smb_req) < 100_000:
                    smb_req[(stream, mid)] = (frame, ts, command)
                return
            st.smb2_responses += 1
            req = smb_req.get((stream, mid))
            if status:
                k = f"0x{status:08x}"
                st.smb2_error_status[k] = st.smb2_error_status.get(k, 0) + 1
            if status == 0x00000103:          # interim: the final answer follows
                return
            if req is not None:
                del smb_req[(stream, mid)]
            rtt = ts - req[1] if req else 0
            if req and command != CHANGE_NOTIFY:
                times = st.smb2_times.setdefault(command, [])
                if len(times) < 200_000:
                    times.append((rtt, frame, server_name, ts))
            if is_failure(status, command) and len(st.smb2_failures) < KEEP:
                st.smb2_failures.append(SmbReply(frame, ts, stream, server_name, command,
                                                 status, req[0] if req else 0, rtt))
        return (Feed(Smb2Parser(on_smb)), Feed(Smb2Parser(on_smb)))

    return ()

"""Answer times of protocols Backline does not decode, read as request and answer turns.

Real loopback traffic, captured with dumpcap on ``lo``: an in-house line protocol (a key-value
server on a free port no dissector claims) that answers quickly, then slowly; a client that gives
up on a slow answer and closes; and the near misses: a feed that pushes data after one
subscription (no answer time), a one-way stream of log lines whose client closes (nothing was
asked), and the same key-value server answering fast (nothing slow).
"""

from __future__ import annotations

import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import pytest

from backline.analyzers.net.capture import analyze_capture
from backline.analyzers.net.findings import Thresholds, build_findings
from backline.analyzers.net.http import HTTP_PORTS, OTHER_PROTOCOL_PORTS
from backline.analyzers.net.tls import TLS_PORTS
from backline.testing import free_port

SLOW_S = 1.3


def _free_port() -> int:
    """A free TCP port on 127.0.0.1 that is no port Backline or tshark gives to a protocol."""
    return free_port(OTHER_PROTOCOL_PORTS | HTTP_PORTS | TLS_PORTS)


class _KeyValue(socketserver.StreamRequestHandler):
    """``GET key`` -> ``VALUE key 42``; keys starting ``slow`` take SLOW_S, ``stuck`` twice that."""

    def handle(self):
        try:
            for line in self.rfile:
                words = line.decode().split()
                if not words:
                    continue
                if words[0] == "QUIT":
                    return
                if len(words) > 1 and words[1].startswith("stuck"):
                    time.sleep(2 * SLOW_S)
                elif len(words) > 1 and words[1].startswith("slow"):
                    time.sleep(SLOW_S)
                self.wfile.write(f"VALUE {words[-1]} 42\n".encode())
                self.wfile.flush()
        except OSError:           # the client gave up and reset the stream
            return


class _Feed(socketserver.StreamRequestHandler):
    """``SUB topic``, then a message every 0.3 s, three of them, unasked."""

    def handle(self):
        self.rfile.readline()
        for k in range(3):
            time.sleep(0.3)
            self.wfile.write(f"TICK {k}\n".encode())


class _Sink(socketserver.StreamRequestHandler):
    """Reads log lines and says nothing."""

    def handle(self):
        for _line in self.rfile:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _capture(tmp: Path, name: str, ports: list[int], traffic) -> Path:
    if not shutil.which("dumpcap"):
        pytest.fail("dumpcap captures the traffic here (apt-get install tshark; .ci/run does)")
    cap = tmp / f"{name}.pcapng"
    flt = " or ".join(f"tcp port {p}" for p in ports)
    dump = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", flt, "-w", str(cap)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not (cap.exists() and cap.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        traffic()
        time.sleep(0.5)
    finally:
        dump.send_signal(signal.SIGINT)
        _out, err = dump.communicate(timeout=20)
    assert cap.exists() and cap.stat().st_size > 0, err.decode(errors="replace")
    return cap


def _serve(handler) -> tuple[_Server, int]:
    port = _free_port()
    server = _Server(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def _ask(port: int, keys: list[str], timeout: float = 5.0) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        f = s.makefile("rwb")
        for key in keys:
            f.write(f"GET {key}\n".encode())
            f.flush()
            f.readline()
        f.write(b"QUIT\n")
        f.flush()


def _give_up(port: int) -> None:
    """One fast answer, then a stuck request abandoned 1.4 s after it was sent (before its answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1.1) as s:
        f = s.makefile("rwb")
        f.write(b"GET warm\n")
        f.flush()
        f.readline()
        f.write(b"GET stuck-report\n")
        f.flush()
        with pytest.raises(TimeoutError):
            f.readline()
        time.sleep(0.3)          # the client gives up: more than 1 s after the request it closes


def _findings(cap: Path, th: Thresholds | None = None):
    return [f for f in build_findings(analyze_capture(cap), str(cap), th=th)[0]
            if f.code in ("NET.TCP.SLOW_ANSWER", "NET.TCP.UNANSWERED")]


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("turns")
    kv, kv_port = _serve(_KeyValue)
    feed, feed_port = _serve(_Feed)
    sink, sink_port = _serve(_Sink)
    try:
        def slow_traffic():
            _ask(kv_port, ["a", "b", "c", "d"])
            _ask(kv_port, ["slow-1", "slow-2", "e", "slow-3"])
            _ask(kv_port, ["slow-4", "f"])
            _give_up(kv_port)

        def healthy_traffic():
            _ask(kv_port, ["a", "b", "c", "d", "e", "f", "g"])
            for _ in range(6):                             # a feed: pushed messages, nothing asked after SUB
                with socket.create_connection(("127.0.0.1", feed_port), timeout=5) as s:
                    s.sendall(b"SUB prices\n")
                    got = b""
                    while got.count(b"\n") < 3:
                        got += s.recv(100)
            with socket.create_connection(("127.0.0.1", sink_port), timeout=5) as s:   # one-way lines
                for k in range(5):
                    s.sendall(f"line {k}\n".encode())
                    time.sleep(0.3)
                time.sleep(1.5)                            # idle, then close: nothing was asked

        slow = _capture(tmp, "slow", [kv_port], slow_traffic)
        healthy = _capture(tmp, "healthy", [kv_port, feed_port, sink_port], healthy_traffic)
    finally:
        for s in (kv, feed, sink):
            s.shutdown()
            s.server_close()
    return slow, healthy, kv_port


def test_slow_answers_and_a_client_giving_up_name_the_server(captures):
    slow, _healthy, port = captures
    found = {f.code: f for f in _findings(slow)}
    assert set(found) == {"NET.TCP.SLOW_ANSWER", "NET.TCP.UNANSWERED"}, found
    s = found["NET.TCP.SLOW_ANSWER"]
    assert s.data["server"] == f"127.0.0.1:{port}"
    assert s.data["answers"] >= 10 and s.data["slow"] == 4
    assert SLOW_S - 0.1 < s.data["max_s"] < SLOW_S + 0.5 and s.data["p50_s"] < 0.2
    assert s.first_seen is not None and s.evidence and s.evidence[0].locator.startswith("packet:")
    u = found["NET.TCP.UNANSWERED"]
    assert u.data["requests"] == 1 and 1.3 < u.data["max_wait_s"] < 2 * SLOW_S
    # a threshold above the slow answers finds nothing slow
    assert not _findings(slow, Thresholds(slow_tcp_s=SLOW_S + 1.0))


def test_fast_answers_a_feed_and_a_one_way_stream_are_not_slow(captures):
    _slow, healthy, _port = captures
    assert _findings(healthy) == []
    # the feed's first message comes 0.3 s after each SUB: below the default threshold; with a lower
    # one the feed still is no slow server (it sends more unasked than it answers)
    low = _findings(healthy, Thresholds(slow_tcp_s=0.2))
    assert low == [], [f.title for f in low]


def test_refusals_followed_by_an_accepted_connection_say_how_soon(tmp_path):
    """A service that was starting (or restarting) refuses a few SYNs, then takes connections: the
    refusal finding says the endpoint accepted again, and how soon; a service that stays down does not."""
    from backline.analyzers.net.synth import A, ACK_F, B, RST_F, SYN_F, PcapWriter, ether, ipv4, tcp

    def capture(name: str, recovers: bool) -> Path:
        cap = tmp_path / name
        with cap.open("wb") as f:
            w = PcapWriter(f)
            t = 1_700_000_000 * 10**9
            for i in range(2):                                        # refused twice, 50 ms apart
                w.write(t, ether(ipv4(A, B, tcp(41000 + i, 9100, 1000, 0, SYN_F))))
                w.write(t + 1000, ether(ipv4(B, A, tcp(9100, 41000 + i, 0, 1001, RST_F | ACK_F))))
                t += 50_000_000
            if recovers:
                w.write(t, ether(ipv4(A, B, tcp(41010, 9100, 1000, 0, SYN_F))))
                w.write(t + 1000, ether(ipv4(B, A, tcp(9100, 41010, 5000, 1001, SYN_F | ACK_F))))
                w.write(t + 2000, ether(ipv4(A, B, tcp(41010, 9100, 1001, 5001, ACK_F))))
        return cap

    def refused(cap: Path):
        return next(f for f in build_findings(analyze_capture(cap), str(cap))[0] if f.code == "NET.TCP.RST_TO_SYN")

    up = refused(capture("recovers.pcap", True))
    assert up.count == 2 and 0.04 < up.data["accepted_after_s"] < 0.06
    assert "accepted_after_s" not in refused(capture("down.pcap", False)).data


def test_a_client_that_closes_then_resets_gave_up_once(tmp_path):
    """A client that closes its side (FIN) while its request waits, then resets the stream, gave up
    on that request once, not twice."""
    from backline.analyzers.net.synth import A, ACK_F, B, FIN_F, PSH_F, RST_F, SYN_F, PcapWriter, ether, ipv4, tcp

    cap = tmp_path / "fin-then-rst.pcap"
    with cap.open("wb") as f:
        w = PcapWriter(f)
        t, cs, ss = 1_700_000_000 * 10**9, 1000, 5000
        for i in range(3):
            cp = 42000 + i
            w.write(t, ether(ipv4(A, B, tcp(cp, 7311, cs, 0, SYN_F))))
            w.write(t + 1000, ether(ipv4(B, A, tcp(7311, cp, ss, cs + 1, SYN_F | ACK_F))))
            w.write(t + 2000, ether(ipv4(A, B, tcp(cp, 7311, cs + 1, ss + 1, ACK_F))))
            w.write(t + 3000, ether(ipv4(A, B, tcp(cp, 7311, cs + 1, ss + 1, ACK_F | PSH_F, payload=b"GET k\n"))))
            if i < 2:        # answered at once
                w.write(t + 4000, ether(ipv4(B, A, tcp(7311, cp, ss + 1, cs + 7, ACK_F | PSH_F, payload=b"OK 1\n"))))
            else:            # waits, the client closes after 2 s, then resets
                w.write(t + 2 * 10**9, ether(ipv4(A, B, tcp(cp, 7311, cs + 7, ss + 1, FIN_F | ACK_F))))
                w.write(t + 2 * 10**9 + 5000, ether(ipv4(A, B, tcp(cp, 7311, cs + 8, ss + 1, RST_F | ACK_F))))
            t += 3 * 10**9
    st = analyze_capture(cap)
    assert len(st.tcp_given_up["10.0.0.2:7311"]) == 1
    found = [f for f in build_findings(st, str(cap))[0] if f.code == "NET.TCP.UNANSWERED"]
    assert len(found) == 1 and found[0].data["requests"] == 1

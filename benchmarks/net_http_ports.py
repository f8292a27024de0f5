"""Which TCP ports does tshark give to another protocol even when HTTP is spoken on them?

Wireshark tries the dissector registered on a stream's port before its heuristics
(``http_tcp`` among them), so HTTP on, say, port 22 is shown as SSH.  This writes
one capture with an HTTP/1.1 exchange to every TCP port of tshark's port table
(``tshark -G decodes``) and prints the ports whose request tshark does not show as
HTTP: the list :data:`backline.analyzers.net.http.OTHER_PROTOCOL_PORTS` holds
(made with tshark 4.0.17 from Debian bookworm).

Usage::

    python benchmarks/net_http_ports.py [--keep /tmp/http-ports.pcap]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from backline.analyzers.net.synth import A, ACK_F, B, PSH_F, SYN_F, PcapWriter, ether, ipv4, tcp

REQUEST = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
RESPONSE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"


def registered_ports() -> list[int]:
    out = subprocess.run(["tshark", "-G", "decodes"], capture_output=True, text=True,
                         check=True).stdout
    return sorted({int(f[1]) for f in (ln.split("\t") for ln in out.splitlines())
                   if len(f) >= 3 and f[0] == "tcp.port" and f[1].isdigit()})


def write(path: Path, ports: list[int]) -> dict[int, int]:
    """One handshake + request + response per port; returns request frame -> server port."""
    taken = set(ports)
    frames: dict[int, int] = {}
    t, n, cport = 1_700_000_000 * 10**9, 0, 40000
    with path.open("wb") as f:
        w = PcapWriter(f)
        for port in ports:
            while cport in taken:
                cport += 1
            pkts = [ether(ipv4(A, B, tcp(cport, port, 1000, 0, SYN_F))),
                    ether(ipv4(B, A, tcp(port, cport, 5000, 1001, SYN_F | ACK_F))),
                    ether(ipv4(A, B, tcp(cport, port, 1001, 5001, ACK_F))),
                    ether(ipv4(A, B, tcp(cport, port, 1001, 5001, ACK_F | PSH_F,
                                         payload=REQUEST))),
                    ether(ipv4(B, A, tcp(port, cport, 5001, 1001 + len(REQUEST),
                                         ACK_F | PSH_F, payload=RESPONSE)))]
            for i, pkt in enumerate(pkts):
                n += 1
                w.write(t, pkt)
                t += 1_000_000
                if i == 3:
                    frames[n] = port
            cport += 1
    return frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="write the capture here and keep it")
    args = ap.parse_args(argv)
    ports = registered_ports()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "http-ports.pcap"
        frames = write(path, ports)
        out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e",
                              "frame.number", "-e", "http.request"],
                             capture_output=True, text=True, check=True).stdout
    http = {int(f[0]) for f in (ln.split("\t") for ln in out.splitlines())
            if len(f) > 1 and f[1].strip()}
    other = sorted(port for frame, port in frames.items() if frame not in http)
    print(f"# {len(ports)} registered TCP ports, {len(other)} taken by another protocol",
          file=sys.stderr)
    print(", ".join(map(str, other)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

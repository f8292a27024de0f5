"""Captures with no HTTP for the cost of looking for it: many streams on a free port.

Each stream (handshake, then data segments alternating client/server) on port 7777
(no port of Backline's nor of tshark's table) carries either random binary
segments (``binary``: about 1 in 18 first bytes could start an HTTP line) or text
lines that start with HTTP method names (``text``: ``GET key:N`` / ``PUBLISH ...``,
every segment is tried as an HTTP start line: the worst case).

Usage::

    python benchmarks/net_nohttp_capgen.py OUT.pcap binary|text STREAMS SEGMENTS
"""

from __future__ import annotations

import os
import random
import sys

from backline.analyzers.net.synth import A, ACK_F, B, PSH_F, SYN_F, PcapWriter, ether, ipv4, tcp


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] not in ("binary", "text"):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    out, kind, streams, segs = argv[0], argv[1], int(argv[2]), int(argv[3])
    rnd = random.Random(1)
    with open(out, "wb") as f:
        w = PcapWriter(f)
        t = 1_700_000_000 * 10**9
        for s in range(streams):
            cp, cs, ss = 20000 + s % 40000, 1000, 5000
            w.write(t, ether(ipv4(A, B, tcp(cp, 7777, cs, 0, SYN_F))))
            w.write(t + 1000, ether(ipv4(B, A, tcp(7777, cp, ss, cs + 1, SYN_F | ACK_F))))
            t += 2000
            cs += 1
            ss += 1
            for i in range(segs):
                if kind == "binary":
                    pl = rnd.randbytes(200)
                else:
                    pl = b"GET key:%d\r\n" % i if i % 2 else b"PUBLISH chan %d\r\n" % i
                if i % 2 == 0:
                    w.write(t, ether(ipv4(A, B, tcp(cp, 7777, cs, ss, ACK_F | PSH_F, payload=pl))))
                    cs += len(pl)
                else:
                    w.write(t, ether(ipv4(B, A, tcp(7777, cp, ss, cs, ACK_F | PSH_F, payload=pl))))
                    ss += len(pl)
                t += 1000
    print(out, os.path.getsize(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""DNS counting: mDNS and LLMNR share DNS's fields (as in Wireshark), DNS over TCP.

Expected values were checked with tshark 4.0.17 on the same packets
(``dns.flags.response`` / ``dns.response_to``): 3 queries, 2 responses,
1 matched (the multicast LLMNR answer comes from another conversation).
"""

from __future__ import annotations

import io
import struct

from backline.analyzers.net.capture import analyze_reader
from backline.analyzers.net.reader import CaptureReader
from backline.analyzers.net.synth import (A, B, PcapWriter, dns_query, dns_response, ether,
                                          ipv4, tcp, udp)

T = 10**18


def test_mdns_llmnr_and_dns_over_tcp():
    f = io.BytesIO()
    w = PcapWriter(f)
    w.write(T, ether(ipv4(A, bytes([224, 0, 0, 251]), udp(5353, 5353, dns_query(0, "printer.local")),
                          proto=17)))
    q2 = dns_query(7, "host1")
    w.write(T + 1000, ether(ipv4(A, bytes([224, 0, 0, 252]), udp(50000, 5355, q2), proto=17)))
    w.write(T + 2000, ether(ipv4(bytes([10, 0, 0, 9]), A, udp(5355, 50000, dns_response(q2)),
                                 proto=17)))
    msg = dns_query(9, "tcp.example")
    seg = struct.pack("!H", len(msg)) + msg
    w.write(T + 3000, ether(ipv4(A, B, tcp(40000, 53, 1, 1, 0x18, payload=seg))))
    resp = struct.pack("!H", len(msg)) + dns_response(msg, 3)
    w.write(T + 4000, ether(ipv4(B, A, tcp(53, 40000, 1, 1 + len(seg), 0x18, payload=resp))))
    st = analyze_reader(CaptureReader.from_bytes(f.getvalue(), "dns.pcap"))
    assert st.dns.queries == 3
    assert st.dns.rcodes == {"NoError": 1, "NXDomain": 1}
    assert st.dns.unanswered() == 2
    (nx,) = st.dns.failures
    assert (nx.name, nx.query_frame, nx.response_frame) == ("tcp.example", 4, 5)

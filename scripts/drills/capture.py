"""Loopback capture for the drills: a raw ``AF_PACKET`` socket on ``lo`` (root), kernel time
stamps, only the packets to or from the drill's endpoints, written as a nanosecond pcap."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4


class Capture(threading.Thread):
    """Loopback packets to or from the given (address, port) endpoints, kernel-timestamped,
    written as a nanosecond pcap (link type Ethernet, as Linux shows ``lo``)."""

    def __init__(self, endpoints: set[tuple[str, int]], snaplen: int = 65535) -> None:
        super().__init__(daemon=True)
        self.endpoints = {(socket.inet_aton(a), p) for a, p in endpoints}
        self.snaplen = snaplen
        self.stop_flag = threading.Event()
        self.packets: list[tuple[int, int, bytes]] = []     # (ts_ns, original length, frame)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.1)

    def add(self, addr: str, port: int) -> None:
        self.endpoints.add((socket.inet_aton(addr), port))

    def _ours(self, frame: bytes) -> bool:
        if len(frame) < 38 or frame[12:14] != b"\x08\x00":
            return False
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] not in (6, 17) or len(frame) < 14 + ihl + 4:
            return False
        sport, dport = struct.unpack_from("!HH", frame, 14 + ihl)
        src, dst = frame[26:30], frame[30:34]
        return (src, sport) in self.endpoints or (dst, dport) in self.endpoints

    def run(self) -> None:
        space = socket.CMSG_SPACE(16)
        while not self.stop_flag.is_set():
            try:
                frame, anc, _flags, addr = self.sock.recvmsg(65535, space)
            except socket.timeout:
                continue
            except OSError:
                break
            if addr[2] == PACKET_OUTGOING:       # lo shows each packet twice; keep the incoming copy
                continue
            if not self._ours(frame):
                continue
            ts = time.time_ns()
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack("qq", data[:16])
                    ts = sec * 1_000_000_000 + nsec
            self.packets.append((ts, len(frame), frame[: self.snaplen]))

    def finish(self, path: Path) -> int:
        """Stop capturing and write the pcap; returns the number of packets."""
        self.stop_flag.set()
        self.join(5)
        self.sock.close()
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, self.snaplen, 1))
            for ts, orig, frame in sorted(self.packets, key=lambda p: p[0]):
                f.write(struct.pack("<IIII", ts // 1_000_000_000, ts % 1_000_000_000, len(frame), orig))
                f.write(frame)
        return len(self.packets)

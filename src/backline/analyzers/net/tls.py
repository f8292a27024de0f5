"""TLS record reading: ClientHello SNI and version, alerts with level and description.

An alert is decodable when it is a 2-byte plaintext record (level,
description); alerts after ChangeCipherSpec in that direction are encrypted
and counted only as alert records, as Wireshark shows them.

>>> seen = []
>>> p = TlsParser(lambda *a: seen.append(a), lambda *a: None)
>>> p.feed(5, 0, bytes.fromhex("15030300020228"))
>>> seen
[(5, 0, 2, 40)]
>>> ALERT_NAMES[40], ALERT_LEVELS[2]
('handshake_failure', 'fatal')
"""

from __future__ import annotations

from typing import Callable

TLS_PORTS = frozenset({443, 261, 448, 465, 563, 585, 614, 636, 853, 989, 990, 992, 993, 994,
                       995, 2484, 3269, 4433, 4443, 5061, 5223, 5349, 8443, 8883, 10161,
                       10162})
ALERT_LEVELS = {1: "warning", 2: "fatal"}
ALERT_NAMES = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
               21: "decryption_failed", 22: "record_overflow", 30: "decompression_failure",
               40: "handshake_failure", 41: "no_certificate", 42: "bad_certificate",
               43: "unsupported_certificate", 44: "certificate_revoked",
               45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter",
               48: "unknown_ca", 49: "access_denied", 50: "decode_error", 51: "decrypt_error",
               60: "export_restriction", 70: "protocol_version", 71: "insufficient_security",
               80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
               100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension",
               112: "unrecognized_name", 116: "certificate_required",
               120: "no_application_protocol"}
VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
            0x0304: "TLS 1.3"}


def looks_like_tls(data: bytes) -> bool:
    return len(data) >= 5 and 20 <= data[0] <= 23 and data[1] == 3 and data[2] <= 4


class TlsParser:
    """Parse one direction's records.  ``on_alert(frame, ts, level, desc)``;
    ``on_hello(frame, ts, sni, version)`` for a ClientHello."""

    __slots__ = ("on_alert", "on_hello", "buf", "encrypted", "lost", "alert_records", "skip")

    def __init__(self, on_alert: Callable, on_hello: Callable):
        self.on_alert = on_alert
        self.on_hello = on_hello
        self.buf = b""
        self.encrypted = False
        self.lost = False
        self.alert_records = 0
        self.skip = 0          # bytes of an opaque record body still to pass over

    def gap(self) -> None:
        self.buf = b""
        self.lost = True
        self.skip = 0

    def feed(self, frame: int, ts: int, data: bytes) -> None:
        if self.skip:
            k = min(self.skip, len(data))
            self.skip -= k
            data = data[k:]
            if not data:
                return
        if self.lost:
            if not looks_like_tls(data):
                return
            self.lost = False
        buf = self.buf + data if self.buf else data
        off = 0
        n = len(buf)
        while off + 5 <= n:
            ctype = buf[off]
            if not (20 <= ctype <= 24) or buf[off + 1] != 3:
                self.gap()
                return
            ln = (buf[off + 3] << 8) | buf[off + 4]
            if off + 5 + ln > n:
                if ctype == 23 or (ctype == 22 and self.encrypted):
                    # opaque body: no need to hold it
                    self.skip = off + 5 + ln - n
                    off = n
                break
            if ctype == 23:
                pass                      # application data: opaque, never copied
            elif ctype == 20:
                self.encrypted = True
            elif ctype == 21:
                self.alert_records += 1
                if ln == 2 and not self.encrypted:
                    self.on_alert(frame, ts, buf[off + 5], buf[off + 6])
            elif ctype == 22 and not self.encrypted and ln >= 4 and buf[off + 5] == 1:
                sni, ver = _client_hello(buf[off + 5:off + 5 + ln])
                self.on_hello(frame, ts, sni, ver)
            off += 5 + ln
        if off >= n:
            self.buf = b""
        else:
            rest = buf[off:]
            self.buf = rest if len(rest) <= 65_540 else b""


def _client_hello(body: bytes) -> tuple[str, str]:
    """(server name, highest offered version) from a ClientHello handshake message."""
    try:
        off = 4
        ver = (body[off] << 8) | body[off + 1]
        off += 2 + 32
        off += 1 + body[off]                                  # session id
        off += 2 + ((body[off] << 8) | body[off + 1])         # cipher suites
        off += 1 + body[off]                                  # compression
        sni = ""
        if off + 2 <= len(body):
            end = min(len(body), off + 2 + ((body[off] << 8) | body[off + 1]))
            off += 2
            while off + 4 <= end:
                et = (body[off] << 8) | body[off + 1]
                el = (body[off + 2] << 8) | body[off + 3]
                ext = body[off + 4:off + 4 + el]
                if et == 0 and len(ext) >= 5:
                    nl = (ext[3] << 8) | ext[4]
                    sni = ext[5:5 + nl].decode("ascii", "replace")
                elif et == 43 and ext:
                    vers = [(ext[i] << 8) | ext[i + 1] for i in range(1, 1 + ext[0] - 1, 2)
                            if i + 1 < len(ext)]
                    known = [v for v in vers if v in VERSIONS]
                    if known:
                        ver = max(known)
                off += 4 + el
        return sni, VERSIONS.get(ver, f"0x{ver:04x}")
    except IndexError:
        return "", ""

"""TLS record reading: ClientHello SNI and version, alerts with level and description.

An alert is decodable when its record is 2 bytes long (level, description),
before or after ChangeCipherSpec, as Wireshark 4.0 decodes it; a longer alert
record is encrypted and counted only as an alert record.  The record
walk runs for every segment of a TLS stream, so it is compiled
(:mod:`._engine`); the ClientHello reading stays here.

>>> seen = []
>>> p = TlsParser(lambda *a: seen.append(a), lambda *a: None)
>>> p.feed(5, 0, bytes.fromhex("15030300020228"))
>>> seen
[(5, 0, 2, 40)]
>>> ALERT_NAMES[40], ALERT_LEVELS[2]
('handshake_failure', 'fatal')
"""

from __future__ import annotations

from backline.analyzers.net._engine import TlsParser, looks_like_tls  # noqa: F401

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

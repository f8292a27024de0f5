"""TLS records: ClientHello SNI and version, plaintext vs encrypted alerts."""

from __future__ import annotations

import struct

from backline.analyzers.net.tls import TlsParser


def client_hello(sni: str, versions=(0x0304, 0x0303)) -> bytes:
    name = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    sv = struct.pack("!B", 2 * len(versions)) + b"".join(struct.pack("!H", v) for v in versions)
    sv_ext = struct.pack("!HH", 43, len(sv)) + sv
    exts = sni_ext + sv_ext
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + \
        struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def test_client_hello_split_over_segments():
    hellos = []
    p = TlsParser(lambda *a: None, lambda *a: hellos.append(a))
    rec = client_hello("api.example.net")
    p.feed(1, 0, rec[:20])
    p.feed(2, 5, rec[20:])
    assert hellos == [(2, 5, "api.example.net", "TLS 1.3")]


def test_alert_is_decoded_by_its_length_not_by_change_cipher_spec():
    """tshark 4.0.17 shows a 2-byte alert record after ChangeCipherSpec as
    "Alert (Level: Fatal, Description: Handshake Failure)" (tls.alert_message.desc 40);
    an encrypted alert is longer (3 bytes already gives "Encrypted Alert")."""
    alerts = []
    p = TlsParser(lambda *a: alerts.append(a), lambda *a: None)
    p.feed(1, 0, b"\x15\x03\x03\x00\x02\x01\x00")           # warning close_notify, plaintext
    p.feed(2, 0, b"\x14\x03\x03\x00\x01\x01")               # ChangeCipherSpec
    p.feed(3, 0, b"\x15\x03\x03\x00\x02\x02\x28")           # still 2 bytes: decoded
    p.feed(4, 0, b"\x15\x03\x03\x00\x03\x02\x28\x00")       # 3 bytes: encrypted
    assert alerts == [(1, 0, 1, 0), (3, 0, 2, 40)]
    assert p.alert_records == 3


def test_garbage_resynchronises():
    alerts = []
    p = TlsParser(lambda *a: alerts.append(a), lambda *a: None)
    p.feed(1, 0, b"not tls at all")
    p.feed(2, 0, b"\x15\x03\x03\x00\x02\x02\x30")
    assert alerts == [(2, 0, 2, 48)]

"""SMB2 framing and which statuses are failures."""

from __future__ import annotations

import struct

from backline.analyzers.net.smb2 import CHANGE_NOTIFY, Smb2Parser, is_failure, status_name


def header(command: int, status: int, response: bool, mid: int, next_cmd: int = 0) -> bytes:
    return (b"\xfeSMB" + struct.pack("<HHIHHIIQ", 64, 0, status, command, 1, int(response),
                                     next_cmd, mid) + bytes(64 - 32))


def test_compound_and_split_nbss_message():
    seen = []
    p = Smb2Parser(lambda *a: seen.append(a))
    first = header(5, 0xC0000034, True, 7, next_cmd=64 + 8) + bytes(8)
    second = header(6, 0, True, 8)
    msg = first + second
    frame = struct.pack("!I", len(msg)) + msg
    p.feed(1, 0, frame[:50])
    p.feed(2, 0, frame[50:])
    assert [(s[0], s[2], s[4], s[5]) for s in seen] == [(2, 5, 0xC0000034, 7), (2, 6, 0, 8)]


def test_large_read_body_is_skipped_not_buffered():
    seen = []
    p = Smb2Parser(lambda *a: seen.append(a))
    msg = header(8, 0, True, 3) + bytes(100_000)
    frame = struct.pack("!I", len(msg)) + msg
    for i in range(0, len(frame), 1448):
        p.feed(i, 0, frame[i:i + 1448])
    p.feed(999, 0, struct.pack("!I", 64) + header(16, 0x80000005, True, 4))
    assert [s[5] for s in seen] == [3, 4]
    assert len(p.buf) == 0


def test_normal_statuses_are_not_failures():
    assert not is_failure(0x00000103, 5)                 # pending
    assert not is_failure(0xC0000016, 1)                 # more processing (session setup)
    assert not is_failure(0x80000006, 14)                # no more files
    assert not is_failure(0xC0000120, CHANGE_NOTIFY)     # long poll cancelled
    assert is_failure(0xC0000120, 8)                     # but a cancelled READ is
    assert is_failure(0xC0000022, 5)
    assert status_name(0xC0000022) == "STATUS_ACCESS_DENIED"
    assert status_name(0xC0009999) == "0xc0009999"

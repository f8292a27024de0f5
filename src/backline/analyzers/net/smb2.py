"""SMB2 over TCP (NetBIOS session framing): commands, NT status codes, response times.

Statuses that are part of normal operation are kept apart from failures:
STATUS_PENDING (an interim answer), STATUS_MORE_PROCESSING_REQUIRED (session
setup rounds), STATUS_NO_MORE_FILES / STATUS_NOTIFY_ENUM_DIR / buffer
overflow on directory queries and info reads, and long-poll CHANGE_NOTIFY,
whose answer time is the time until something changed, not server slowness.

>>> seen = []
>>> p = Smb2Parser(lambda *a: seen.append(a))
>>> hdr = b"\\xfeSMB" + (64).to_bytes(2, "little") + bytes(2) + (0xC0000034).to_bytes(4, "little")
>>> hdr += (5).to_bytes(2, "little") + bytes(2) + (1).to_bytes(4, "little") + bytes(4)
>>> hdr += (9).to_bytes(8, "little") + bytes(64 - 32)
>>> p.feed(3, 0, len(hdr).to_bytes(4, "big") + hdr)
>>> seen
[(3, 0, 5, True, 3221225524, 9)]
>>> STATUS_NAMES[0xC0000034], is_failure(0xC0000034, 5)
('STATUS_OBJECT_NAME_NOT_FOUND', True)
"""

from __future__ import annotations

import struct
from typing import Callable

SMB_PORTS = frozenset({445, 139})

COMMANDS = ("NEGOTIATE", "SESSION_SETUP", "LOGOFF", "TREE_CONNECT", "TREE_DISCONNECT",
            "CREATE", "CLOSE", "FLUSH", "READ", "WRITE", "LOCK", "IOCTL", "CANCEL", "ECHO",
            "QUERY_DIRECTORY", "CHANGE_NOTIFY", "QUERY_INFO", "SET_INFO", "OPLOCK_BREAK")
CHANGE_NOTIFY = 15

#: NT status names ([MS-ERREF] 2.3), the ones seen in file-sharing traffic.
STATUS_NAMES = {
    0x00000000: "STATUS_SUCCESS", 0x00000103: "STATUS_PENDING",
    0x0000010B: "STATUS_NOTIFY_CLEANUP", 0x0000010C: "STATUS_NOTIFY_ENUM_DIR",
    0x80000005: "STATUS_BUFFER_OVERFLOW", 0x80000006: "STATUS_NO_MORE_FILES",
    0x8000001A: "STATUS_NO_MORE_ENTRIES", 0xC0000001: "STATUS_UNSUCCESSFUL",
    0xC0000002: "STATUS_NOT_IMPLEMENTED", 0xC0000003: "STATUS_INVALID_INFO_CLASS",
    0xC000000D: "STATUS_INVALID_PARAMETER", 0xC000000F: "STATUS_NO_SUCH_FILE",
    0xC0000010: "STATUS_INVALID_DEVICE_REQUEST", 0xC0000011: "STATUS_END_OF_FILE",
    0xC0000016: "STATUS_MORE_PROCESSING_REQUIRED", 0xC0000022: "STATUS_ACCESS_DENIED",
    0xC0000023: "STATUS_BUFFER_TOO_SMALL", 0xC0000033: "STATUS_OBJECT_NAME_INVALID",
    0xC0000034: "STATUS_OBJECT_NAME_NOT_FOUND", 0xC0000035: "STATUS_OBJECT_NAME_COLLISION",
    0xC000003A: "STATUS_OBJECT_PATH_NOT_FOUND", 0xC0000043: "STATUS_SHARING_VIOLATION",
    0xC0000054: "STATUS_FILE_LOCK_CONFLICT", 0xC0000055: "STATUS_LOCK_NOT_GRANTED",
    0xC0000056: "STATUS_DELETE_PENDING", 0xC000006D: "STATUS_LOGON_FAILURE",
    0xC000006E: "STATUS_ACCOUNT_RESTRICTION", 0xC0000071: "STATUS_PASSWORD_EXPIRED",
    0xC0000072: "STATUS_ACCOUNT_DISABLED", 0xC000007F: "STATUS_DISK_FULL",
    0xC00000BA: "STATUS_FILE_IS_A_DIRECTORY", 0xC00000BB: "STATUS_NOT_SUPPORTED",
    0xC00000C9: "STATUS_NETWORK_NAME_DELETED", 0xC00000CC: "STATUS_BAD_NETWORK_NAME",
    0xC0000101: "STATUS_DIRECTORY_NOT_EMPTY", 0xC0000103: "STATUS_NOT_A_DIRECTORY",
    0xC0000120: "STATUS_CANCELLED", 0xC0000128: "STATUS_FILE_CLOSED",
    0xC000015B: "STATUS_LOGON_TYPE_NOT_GRANTED", 0xC000019C: "STATUS_FS_DRIVER_REQUIRED",
    0xC0000203: "STATUS_USER_SESSION_DELETED", 0xC0000225: "STATUS_NOT_FOUND",
    0xC0000234: "STATUS_ACCOUNT_LOCKED_OUT", 0xC0000257: "STATUS_PATH_NOT_COVERED",
    0xC000035C: "STATUS_NETWORK_SESSION_EXPIRED", 0xC0000466: "STATUS_SERVER_UNAVAILABLE",
}

#: Statuses that are normal protocol flow for any command.
_NORMAL = frozenset({0x00000103, 0xC0000016, 0x0000010C, 0x0000010B, 0x80000006,
                     0x8000001A, 0x80000005})


def is_failure(status: int, command: int) -> bool:
    """Is ``status`` on a response to ``command`` a real failure?

    CANCELLED on CHANGE_NOTIFY is the client withdrawing its long poll;
    END_OF_FILE on READ and NOT_FOUND / FS_DRIVER_REQUIRED on IOCTL are probes.
    """
    if status == 0 or status in _NORMAL:
        return False
    if command == CHANGE_NOTIFY and status == 0xC0000120:
        return False
    if command == 8 and status == 0xC0000011:
        return False
    if command == 11 and status in (0xC0000225, 0xC000019C, 0xC0000010, 0xC00000BB):
        return False
    return True


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"0x{status:08x}")


class Smb2Parser:
    """Read NetBIOS-framed SMB2 messages from one direction.

    ``on_message(frame, ts, command, is_response, status, message_id)`` per SMB2
    header (compound requests give one call per header).
    """

    __slots__ = ("on_message", "buf", "skip", "lost", "frame")

    def __init__(self, on_message: Callable):
        self.on_message = on_message
        self.buf = b""
        self.skip = 0
        self.lost = False

    def gap(self) -> None:
        self.buf = b""
        self.skip = 0
        self.lost = True

    def feed(self, frame: int, ts: int, data: bytes) -> None:
        if self.skip:
            k = min(self.skip, len(data))
            self.skip -= k
            data = data[k:]
            if not data:
                return
        if self.lost:
            if not (len(data) >= 8 and data[0] == 0 and data[4:8] in (b"\xfeSMB", b"\xfdSMB")):
                return
            self.lost = False
        buf = self.buf + data if self.buf else data
        off = 0
        n = len(buf)
        while off + 4 <= n:
            if buf[off] != 0:          # keep-alive (0x85) and other session packets
                off += 4
                continue
            ln = ((buf[off + 1] & 1) << 16) | (buf[off + 2] << 8) | buf[off + 3]
            if off + 4 + 64 > n and off + 4 + ln > n:
                break
            if buf[off + 4:off + 8] == b"\xfeSMB":
                self._headers(frame, ts, buf, off + 4, off + 4 + ln)
            if off + 4 + ln > n:
                self.skip = off + 4 + ln - n
                off = n
                break
            off += 4 + ln
        rest = buf[off:]
        self.buf = rest if len(rest) < 1 << 20 else b""

    def cut(self, frame: int, ts: int, data: bytes) -> None:
        """A segment cut by the snaplen: Wireshark reads it alone, and the SMB2
        header fields as far as they were captured (status and flags need the
        first 20 bytes of the header)."""
        self.gap()
        off = 0
        while off + 4 + 20 <= len(data) and data[off] == 0 \
                and data[off + 4:off + 8] == b"\xfeSMB":
            h = off + 4
            while h + 20 <= len(data) and data[h:h + 4] == b"\xfeSMB":
                status, command, _credits, flags = struct.unpack_from("<IHHI", data, h + 8)
                nxt = struct.unpack_from("<I", data, h + 20)[0] if h + 24 <= len(data) else 0
                mid = struct.unpack_from("<Q", data, h + 24)[0] if h + 32 <= len(data) else -1
                self.on_message(frame, ts, command, bool(flags & 1), status, mid)
                if not nxt:
                    break
                h += nxt
            ln = ((data[off + 1] & 1) << 16) | (data[off + 2] << 8) | data[off + 3]
            off += 4 + ln

    def _headers(self, frame: int, ts: int, buf: bytes, off: int, end: int) -> None:
        end = min(end, len(buf))
        while off + 64 <= end and buf[off:off + 4] == b"\xfeSMB":
            status, command, _credits, flags, nxt, mid = struct.unpack_from("<IHHIIQ", buf, off + 8)
            self.on_message(frame, ts, command, bool(flags & 1), status, mid)
            if not nxt:
                break
            off += nxt

"""HTTP/1.x over TCP: requests matched to responses, status codes, response times.

A :class:`HttpParser` reads one direction of a TCP stream in sequence order
(the engine feeds only new, in-order bytes and calls :meth:`gap` at holes).
It finds message heads, skips bodies by Content-Length or chunked coding,
and resynchronises at the next segment that starts a message after a gap.

>>> reqs, resps = [], []
>>> p = HttpParser(lambda *a: reqs.append(a), lambda *a: resps.append(a))
>>> p.feed(7, 10, b"GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
>>> reqs
[(7, 10, 'GET', '/a', 'x')]
>>> q = HttpParser(lambda *a: None, lambda *a: resps.append(a))
>>> q.feed(9, 20, b"HTTP/1.1 404 Not Found\\r\\nContent-Length: 3\\r\\n\\r\\nabc")
>>> resps
[(9, 20, 404)]
"""

from __future__ import annotations

from typing import Callable

HTTP_PORTS = frozenset({80, 3128, 3132, 5985, 8080, 8088, 11371, 1900, 2869, 2710})
METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ",
           b"CONNECT ", b"TRACE ", b"PROPFIND ", b"PROPPATCH ", b"MKCOL ", b"COPY ",
           b"MOVE ", b"LOCK ", b"UNLOCK ", b"RPC_IN_DATA ", b"RPC_OUT_DATA ", b"SEARCH ",
           b"REPORT ", b"NOTIFY ", b"SUBSCRIBE ", b"M-SEARCH ")
_MAX_HEAD = 64 * 1024

_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_TRAILER, _UNTIL_CLOSE, _LOST = range(7)


def looks_like_http(data: bytes) -> bool:
    return data.startswith(b"HTTP/1.") or data.startswith(METHODS)


class HttpParser:
    """Parse one direction.  ``on_request(frame, ts, method, path, host)`` and
    ``on_response(frame, ts, status)`` are called when a head is complete."""

    __slots__ = ("on_request", "on_response", "state", "buf", "remaining", "head_frame",
                 "head_ts", "expect_no_body", "pending", "skip")

    def __init__(self, on_request: Callable, on_response: Callable):
        self.on_request = on_request
        self.on_response = on_response
        self.state = _HEAD
        self.buf = b""
        self.skip = 0                 # body bytes still to pass over
        self.head_frame = 0
        self.head_ts = 0
        self.expect_no_body = False   # set by the engine when the request was HEAD
        self.pending: tuple | None = None   # (callback, args) until the body is complete

    def gap(self) -> None:
        """Bytes are missing: drop partial state and wait for a message start.
        A message whose body was cut is not reported (Wireshark cannot
        reassemble it either)."""
        self.state = _LOST
        self.buf = b""
        self.pending = None

    def _done(self, frame: int, ts: int) -> None:
        """The current message is complete in ``frame``: report it."""
        self.state = _HEAD
        if self.pending is not None:
            cb, args = self.pending
            self.pending = None
            cb(frame, ts, *args)

    def feed(self, frame: int, ts: int, data: bytes) -> None:
        if self.state == _LOST:
            if not looks_like_http(data):
                return
            self.state = _HEAD
        while data:
            st = self.state
            if st == _HEAD:
                if not self.buf:
                    # skip stray CRLFs between messages
                    data = data.lstrip(b"\r\n")
                    if not data:
                        return
                    if not looks_like_http(data[:16]) and len(data) >= 8:
                        self.state = _LOST
                        return
                    self.head_frame, self.head_ts = frame, ts
                start = max(0, len(self.buf) - 3)
                self.buf += data
                i = self.buf.find(b"\r\n\r\n", start)
                if i < 0:
                    if len(self.buf) > _MAX_HEAD:
                        self.gap()
                    return
                head, data = self.buf[:i], self.buf[i + 4:]
                self.buf = b""
                self._head(frame, ts, head)
            elif st == _BODY:
                k = min(self.skip, len(data))
                self.skip -= k
                data = data[k:]
                if not self.skip:
                    self._done(frame, ts)
            elif st == _CHUNK_SIZE or st == _CHUNK_TRAILER:
                self.buf += data
                i = self.buf.find(b"\r\n")
                if i < 0:
                    if len(self.buf) > 4096:
                        self.gap()
                    return
                line, data = self.buf[:i], self.buf[i + 2:]
                self.buf = b""
                if st == _CHUNK_TRAILER:
                    if not line:
                        self._done(frame, ts)
                    continue
                try:
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    self.gap()
                    return
                if size == 0:
                    self.state = _CHUNK_TRAILER
                else:
                    self.skip = size + 2
                    self.state = _CHUNK_DATA
            elif st == _CHUNK_DATA:
                k = min(self.skip, len(data))
                self.skip -= k
                data = data[k:]
                if not self.skip:
                    self.state = _CHUNK_SIZE
            else:   # _UNTIL_CLOSE or _LOST
                return

    def _head(self, frame: int, ts: int, head: bytes) -> None:
        lines = head.split(b"\r\n")
        first = lines[0].decode("latin-1", "replace")
        clen = -1
        chunked = False
        host = ""
        for ln in lines[1:]:
            name, _, value = ln.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                try:
                    clen = int(value.strip())
                except ValueError:
                    clen = -1
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lname == b"host":
                host = value.strip().decode("latin-1", "replace")
        if first.startswith("HTTP/"):
            parts = first.split(" ", 2)
            try:
                status = int(parts[1])
            except (IndexError, ValueError):
                status = 0
            no_body = self.expect_no_body or 100 <= status < 200 or status in (204, 304)
            if not 100 <= status < 200:
                self.expect_no_body = False
            if no_body or (clen <= 0 and not chunked):
                # no body, or a body that runs to the close: report now
                self.on_response(frame, ts, status)
                self.state = _HEAD if (no_body or clen == 0) else _UNTIL_CLOSE
                return
            self.pending = (self.on_response, (status,))
        else:
            parts = first.split(" ")
            method = parts[0]
            path = parts[1] if len(parts) > 1 else ""
            if clen <= 0 and not chunked:
                self.on_request(frame, ts, method, path, host)
                self.state = _HEAD
                return
            self.pending = (self.on_request, (method, path, host))
        if chunked:
            self.state = _CHUNK_SIZE
        else:
            self.skip = clen
            self.state = _BODY

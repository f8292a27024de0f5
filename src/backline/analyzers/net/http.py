"""HTTP/1.x over TCP: requests matched to responses, status codes, response times.

A :class:`HttpParser` reads one direction of a TCP stream in sequence order
(the engine feeds only new, in-order bytes and calls :meth:`gap` at holes).
It finds message heads, skips bodies by Content-Length or chunked coding,
and resynchronises at the next segment that starts a message after a gap.
The parser runs for every segment of an HTTP stream, so it is compiled
(:mod:`._engine`); this module holds its public names.

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

from backline.analyzers.net._engine import METHODS, HttpParser, looks_like_http  # noqa: F401

__all__ = ["HTTP_PORTS", "METHODS", "HttpParser", "looks_like_http"]

HTTP_PORTS = frozenset({80, 3128, 3132, 5985, 8080, 8088, 11371, 1900, 2869, 2710})

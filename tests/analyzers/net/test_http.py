"""HTTP/1.x stream parsing: complete messages only, pipelining, chunked bodies, gaps."""

from __future__ import annotations

from backline.analyzers.net.http import HttpParser


def _pair():
    reqs, resps = [], []
    return reqs, resps, HttpParser(lambda *a: reqs.append(a), lambda *a: resps.append(a))


def test_pipelined_requests_in_one_segment():
    reqs, _, p = _pair()
    p.feed(1, 0, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
    assert [(r[0], r[3]) for r in reqs] == [(1, "/a"), (1, "/b")]


def test_response_counts_in_the_frame_that_completes_the_body():
    _, resps, p = _pair()
    p.feed(1, 10, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
    assert resps == []
    p.feed(2, 20, b"67890HTTP/1.1 204 No Content\r\n\r\n")
    assert resps == [(2, 20, 200), (2, 20, 204)]


def test_chunked_body():
    _, resps, p = _pair()
    p.feed(1, 0, b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n")
    p.feed(2, 0, b"0\r\n\r\nHTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n")
    assert resps == [(2, 0, 500), (2, 0, 404)]


def test_gap_drops_the_cut_message_and_resynchronises():
    _, resps, p = _pair()
    p.feed(1, 0, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nxx")
    p.gap()
    p.feed(3, 0, b"more body bytes that are not a message start")
    p.feed(4, 0, b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
    assert resps == [(4, 0, 503)]


def test_head_response_has_no_body():
    _, resps, p = _pair()
    p.expect_no_body = True
    p.feed(1, 0, b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
    p.feed(2, 0, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert [r[0] for r in resps] == [1, 2]

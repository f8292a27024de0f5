"""Captures cut short or damaged, through ``backline analyze``.

A capture killed mid-write is the most common damaged capture.  Intake's time-range
probe looks for the last record in the tail of a large pcap; on a cut file that search
used to re-walk the same chain of records from every byte offset (quadratic: 25 s for a
3 MB cut capture of small packets, minutes for bigger ones).
"""

from __future__ import annotations

import gzip
import time

import pytest

from . import mutate as m

ECHO = "net/zeek_echo_connections.pcap.gz"     # 6.8 MB of small packets once decompressed


@pytest.fixture(scope="module")
def echo_pcap(corpus) -> bytes:
    return gzip.decompress((corpus / ECHO).read_bytes())


@pytest.mark.parametrize("frac", [0.5, 0.9, 0.999])
def test_cut_capture_is_quick_and_named(tmp_path, echo_pcap, frac):
    p = tmp_path / "cut.pcap"
    p.write_bytes(m.truncate(echo_pcap, frac))
    started = time.perf_counter()
    out = m.run_analyze(p)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"{elapsed:.1f} s for a {p.stat().st_size >> 20} MB cut capture"
    (art,) = out.doc["artifacts"]
    assert art["kind"] == "capture" and art["time_start"] and art["time_end"]
    assert any("cut short" in x for x in art["problems"]), art["problems"]


def test_cut_capture_keeps_the_time_range_of_what_is_there(tmp_path, echo_pcap):
    whole, cut = tmp_path / "whole.pcap", tmp_path / "cut.pcap"
    whole.write_bytes(echo_pcap)
    cut.write_bytes(m.truncate(echo_pcap, 0.999))
    a = m.run_analyze(whole).doc["artifacts"][0]
    b = m.run_analyze(cut).doc["artifacts"][0]
    assert b["time_start"] == a["time_start"]
    assert b["time_end"] <= a["time_end"]


@pytest.mark.parametrize("rel", ["net/zeek_tcp_rst_inject.pcap", "net/cs_tcp_dupack.pcapng",
                                 "net/msod_CCROD_ex1_netmon.cap"])
def test_damaged_captures(tmp_path, corpus, rel):
    data = (corpus / rel).read_bytes()
    n = len(data)
    damages = {"cut-10": m.truncate(data, 0.1), "cut-60": m.truncate(data, 0.6),
               "zeroed": m.zero_range(data, n // 4, n // 8), "flipped": m.flip_bytes(data, seed=5, count=64),
               "ints": m.splat_ints(data, seed=6)}
    for damage, bad in damages.items():
        p = tmp_path / f"{damage}-{(corpus / rel).name}"
        p.write_bytes(bad)
        out = m.run_analyze(p)
        if out.code == 0:
            assert [a["path"] for a in out.doc["artifacts"] if a.get("known", True)] == [p.name]
            if damage.startswith("cut"):
                assert m.flagged(out.doc, p.name), f"{damage}: nothing says the capture is cut"


@pytest.mark.parametrize("seed", [3, 10, 22])
def test_pcapng_with_absurd_timestamps(tmp_path, corpus, seed):
    data = (corpus / "net/zeek_pcapng_multi_interface.pcapng").read_bytes()
    p = tmp_path / f"splat{seed}.pcapng"
    p.write_bytes(m.splat_ints(data, seed=seed))
    m.run_analyze(p)       # a failed run must be a diagnosed FormatError, not a ValueError

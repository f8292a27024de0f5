"""Capture reading: formats, byte orders, resolutions, gzip, and damaged files."""

from __future__ import annotations

import gzip
import io
import os
import random
import struct

import pytest

from backline.analyzers.net.reader import CaptureReader, sniff_format
from backline.analyzers.net.synth import (A, B, SYN_F, PcapngWriter, PcapWriter, ether, ipv4,
                                          tcp)
from backline.errors import FormatError, TruncatedError

T0 = 1_700_000_000_123_456_789


def _frames(n=5):
    return [ether(ipv4(A, B, tcp(1000 + i, 80, i, 0, SYN_F))) for i in range(n)]


def _pcap(nano=False, big=False, frames=None, linktype=1) -> bytes:
    f = io.BytesIO()
    w = PcapWriter(f, linktype=linktype, nano=nano, big=big)
    for i, fr in enumerate(frames if frames is not None else _frames()):
        w.write(T0 + i * 1_000_000_007, fr)
    return f.getvalue()


@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("big", [False, True])
def test_pcap_resolutions_and_byte_orders(nano, big):
    r = CaptureReader.from_bytes(_pcap(nano, big), "x.pcap")
    pk = list(r.packets())
    assert r.format == ("nsecpcap" if nano else "pcap")
    assert [p[0] for p in pk] == [1, 2, 3, 4, 5]
    unit = 1 if nano else 1000
    assert pk[1][1] == (T0 + 1_000_000_007) // unit * unit
    assert bytes(pk[2][3]) == _frames()[2]
    assert r.problem is None


def test_gzip_capture_is_read_directly(tmp_path):
    p = tmp_path / "c.pcap.gz"
    p.write_bytes(gzip.compress(_pcap()))
    r = CaptureReader.open(p)
    assert len(list(r.packets())) == 5
    assert r.compression == "gzip"


def test_pcapng_interfaces_resolutions_comments_and_block_types():
    f = io.BytesIO()
    w = PcapngWriter(f, comment="section note")
    eth = w.interface(1, tsresol=6)
    raw = w.interface(101, tsresol=9)
    fr = _frames(3)
    w.epb(eth, T0, fr[0], comment="first")
    w.epb(raw, T0 + 5, fr[1][14:])
    w.spb(fr[2])
    w.opb(eth, T0 + 2_000_000_000, fr[0])
    r = CaptureReader.from_bytes(f.getvalue(), "m.pcapng")
    pk = list(r.packets())
    assert r.problem is None
    assert [p[2] for p in pk] == [1, 101, 1, 1]
    assert pk[0][1] == T0 // 1000 * 1000          # microsecond interface
    assert pk[1][1] == T0 + 5                      # nanosecond interface
    assert bytes(pk[1][3]) == fr[1][14:]
    assert r.interfaces == 2 and r.comments == ["section note"]


def test_netmon_capture_from_corpus(corpus):
    r = CaptureReader.open(corpus / "net" / "msod_ADOD_ex2_10_ldap_netmon.cap")
    pk = list(r.packets())
    assert r.format == "netmon2"
    assert len(pk) == 41 and r.problem is None
    # 100 ns resolution UTC timestamps from the 2.3 trailers, in 2016
    assert 1_451_606_400 * 10**9 < pk[0][1] < 1_483_228_800 * 10**9


def test_third_record_with_corrupt_length_keeps_the_two_good_packets():
    data = bytearray(_pcap())
    off = 24
    for _ in range(2):
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    struct.pack_into("<I", data, off + 8, 0xFFFFFFFF)
    r = CaptureReader.from_bytes(bytes(data), "bad.pcap")
    assert len(list(r.packets())) == 2
    assert isinstance(r.problem, FormatError)
    assert r.problem.locator == f"record:3 offset:{off:#x}"
    assert "4294967295" in str(r.problem)


def test_cut_record_is_a_truncation_with_partial_result():
    data = _pcap()[:-7]
    r = CaptureReader.from_bytes(data, "cut.pcap")
    assert len(list(r.packets())) == 4
    assert isinstance(r.problem, TruncatedError)
    assert r.problem.locator.startswith("record:5 ")


def test_random_bytes_after_a_pcap_magic_never_crash():
    rnd = random.Random(4)
    for _ in range(200):
        blob = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + \
            bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 600)))
        r = CaptureReader.from_bytes(blob, "rnd.pcap")
        for _ in r.packets():
            pass
        assert r.problem is None or r.problem.locator.startswith("record:")


def test_random_pcapng_and_netmon_bodies_never_crash():
    rnd = random.Random(7)
    for magic in (b"\x0a\x0d\x0d\x0a", b"GMBU"):
        for _ in range(100):
            blob = magic + bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 400)))
            r = CaptureReader.from_bytes(blob, "rnd")
            for _ in r.packets():
                pass


def test_zero_length_records_and_time_going_backwards():
    f = io.BytesIO()
    w = PcapWriter(f)
    w.write(T0, b"")
    w.write(T0 - 5_000_000_000, _frames(1)[0])
    w.write(T0, b"")
    r = CaptureReader.from_bytes(f.getvalue(), "z.pcap")
    pk = list(r.packets())
    assert [len(p[3]) for p in pk] == [0, len(_frames(1)[0]), 0]
    assert r.problem is None
    assert any("backwards" in w for w in r.warnings)


def test_not_a_capture_is_a_clear_error():
    with pytest.raises(FormatError) as exc:
        CaptureReader.from_bytes(b"hello world, not a capture", "notes.txt")
    assert "notes.txt offset:0" in str(exc.value)
    with pytest.raises(FormatError):
        CaptureReader.from_bytes(b"", "empty.pcap")


def test_sniff_format():
    assert sniff_format(_pcap()[:4]) == "pcap"
    assert sniff_format(_pcap(nano=True, big=True)[:4]) == "nsecpcap"
    assert sniff_format(os.urandom(0)) is None


def test_gzip_netmon_and_pcapng(tmp_path, corpus):
    for name, fmt, count in (("msod_CCROD_ex1_netmon.cap", "netmon2", 184),
                             ("msod_FASOD_ex2_smb2_domain.pcapng", "pcapng", 409)):
        p = tmp_path / (name + ".gz")
        p.write_bytes(gzip.compress((corpus / "net" / name).read_bytes()))
        r = CaptureReader.open(p)
        assert (len(list(r.packets())), r.format, r.compression) == (count, fmt, "gzip")


def _plain_pcap_records(raw: bytes) -> list[tuple]:
    """Reference: walk a little-endian microsecond pcap record by record."""
    out, pos, n = [], 24, 0
    while pos + 16 <= len(raw):
        sec, usec, incl, orig = struct.unpack_from("<IIII", raw, pos)
        if pos + 16 + incl > len(raw):
            break
        n += 1
        out.append((n, sec * 1_000_000_000 + usec * 1000, 1, raw[pos + 16:pos + 16 + incl], orig))
        pos += 16 + incl
    return out


@pytest.mark.parametrize("chunk", [64, 1000, 4 << 20])
def test_batched_pcap_records_cross_block_ends_like_a_plain_walk(monkeypatch, chunk):
    """Records of every size, read with blocks smaller and larger than a record: the
    batches hold exactly the records of a plain walk, in order, and a cut tail is
    reported at the right record and offset."""
    import backline.analyzers.net.reader as reader_mod
    monkeypatch.setattr(reader_mod, "_CHUNK", chunk)
    rnd = random.Random(7)
    frames = [ether(ipv4(A, B, tcp(1000 + i, 80, i, 0, SYN_F))) + bytes(rnd.randrange(0, 1500))
              for i in range(400)]
    raw = _pcap(frames=frames)
    want = _plain_pcap_records(raw)
    r = CaptureReader.from_bytes(raw + raw[24:24 + 30], "b.pcap")   # a cut record at the end
    batches = list(r.batches())
    got = [(n, ts, lt, bytes(d), o) for b in batches for n, ts, lt, d, o in b]
    assert got == want
    assert r.count == 400
    assert isinstance(r.problem, TruncatedError)
    assert str(r.problem).startswith(f"b.pcap record:401 offset:{len(raw):#x}")
    # packets() is the same stream, one record at a time
    r2 = CaptureReader.from_bytes(raw, "b.pcap")
    assert [(n, bytes(d)) for n, _, _, d, _ in r2.packets()] == [(n, d) for n, _, _, d, _ in want]
    assert r2.problem is None


def test_batched_pcapng_keeps_the_good_records_before_damage():
    f = io.BytesIO()
    w = PcapngWriter(f)
    eth = w.interface(1, tsresol=6)
    for i, fr in enumerate(_frames(5000)):
        w.epb(eth, T0 + i, fr)
    raw = f.getvalue()
    r = CaptureReader.from_bytes(raw[:-10], "c.pcapng")
    batches = list(r.batches())
    assert all(batches) and sum(len(b) for b in batches) == 4999
    assert [p[0] for b in batches for p in b] == list(range(1, 5000))
    assert isinstance(r.problem, TruncatedError)


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_cut_gzip_stream_keeps_every_record_read_before_the_damage(kind):
    """A gzip stream that ends early raises inside the decompressor mid-batch: the
    records already read are still delivered, in order, and the problem is named."""
    # about 9 MB decompressed: more than two 4 MiB read blocks
    frames = [ether(ipv4(A, B, tcp(1000 + i % 500, 80, i, 0, SYN_F))) + bytes(i % 1400)
              for i in range(12000)]
    if kind == "pcap":
        raw = _pcap(frames=frames)
    else:
        f = io.BytesIO()
        w = PcapngWriter(f)
        eth = w.interface(1, tsresol=6)
        for i, fr in enumerate(frames):
            w.epb(eth, T0 + i, fr)
        raw = f.getvalue()
    packed = gzip.compress(raw)
    r = CaptureReader.from_bytes(packed[: len(packed) * 2 // 3], f"cut.{kind}.gz")
    got = [(n, bytes(d)) for b in r.batches() for n, _, _, d, _ in b]
    assert 0 < len(got) < len(frames)
    assert got == [(i + 1, frames[i]) for i in range(len(got))]
    assert r.problem is not None and "cut." in str(r.problem)


def test_pcapng_walked_by_the_engine_equals_the_same_frames_as_pcap():
    """EPB runs are walked by the compiled engine, other blocks (an SPB, an obsolete packet
    block, an interface with picosecond ticks) by Python: the analysis must not tell."""
    from backline.analyzers.net.capture import analyze_reader
    from backline.analyzers.net.summary import oracle_counts
    from backline.analyzers.net.synth import ACK_F, FIN_F, PSH_F, RST_F

    def segs():
        for i in range(40):
            sp = 20_000 + i
            yield ipv4(A, B, tcp(sp, 80, 1, 0, SYN_F))
            yield ipv4(B, A, tcp(80, sp, 9, 2, SYN_F | ACK_F))
            yield ipv4(A, B, tcp(sp, 80, 2, 10, PSH_F | ACK_F, 65535, b"GET / HTTP/1.1\r\n\r\n"))
            yield ipv4(A, B, tcp(sp, 80, 2, 10, PSH_F | ACK_F, 65535, b"GET / HTTP/1.1\r\n\r\n"))
            yield ipv4(B, A, tcp(80, sp, 10, 20, (RST_F if i % 3 else FIN_F) | ACK_F))

    frames = [ether(p) for p in segs()]
    ng, pc = io.BytesIO(), io.BytesIO()
    w, p = PcapngWriter(ng), PcapWriter(pc)
    us, ns = w.interface(1, tsresol=6), w.interface(1, tsresol=9)
    tenth = w.interface(1, tsresol=10)                # 0.1 ns ticks: a float tick
    for i, fr in enumerate(frames):
        ts = T0 - T0 % 1000 + i * 1_000_000
        p.write(ts, fr)
        kind = i % 7
        if kind == 5:                                 # read in Python (float arithmetic)
            units = ts * 10
            pad = b"\x00" * (-len(fr) % 4)
            w._block(6, struct.pack("<IIIII", tenth, units >> 32, units & 0xFFFFFFFF, len(fr),
                                    len(fr)) + fr + pad)
        elif kind == 6:
            w.opb(us, ts, fr)
        else:
            w.epb(ns if kind % 2 else us, ts, fr)
    a = analyze_reader(CaptureReader.from_bytes(ng.getvalue(), "x.pcapng"))
    b = analyze_reader(CaptureReader.from_bytes(pc.getvalue(), "x.pcap"))
    assert a.problem is None and b.problem is None
    assert oracle_counts(a) == oracle_counts(b)
    assert (a.packets, a.first_ts, a.last_ts) == (b.packets, b.first_ts, b.last_ts) == (
        200, T0 - T0 % 1000, T0 - T0 % 1000 + 199_000_000)
    assert oracle_counts(a)["http_requests"] == 40 and oracle_counts(a)["rst_frames"] == 26
    # the records themselves, one by one (0.1 ns ticks are multiplied in floating point)
    got = [(n, ts, bytes(d)) for n, ts, _, d, _ in
           CaptureReader.from_bytes(ng.getvalue(), "x.pcapng").packets()]
    want = [(n, ts, bytes(d)) for n, ts, _, d, _ in
            CaptureReader.from_bytes(pc.getvalue(), "x.pcap").packets()]
    assert [(n, d) for n, _, d in got] == [(n, d) for n, _, d in want]
    assert all(abs(x[1] - y[1]) < (1000 if x[0] % 7 == 6 else 1) for x, y in zip(got, want))


def test_damaged_gzip_stream_keeps_what_was_read():
    """A corrupt deflate stream (zlib.error, not an OSError) ends the reading with a problem."""
    raw = _pcap(frames=[ether(ipv4(A, B, tcp(1000 + i % 50_000, 80, i * 7919, 0, SYN_F)))
                        for i in range(60_000)])
    z = bytearray(gzip.compress(raw, mtime=0))
    for off in range(len(z) // 2, len(z) // 2 + 64):      # scribble over the middle
        z[off] ^= 0x5A
    r = CaptureReader.from_bytes(bytes(z), "d.pcap.gz")
    got = list(r.packets())
    assert r.compression == "gzip" and 0 < len(got) < 60_000
    assert [p[0] for p in got] == list(range(1, len(got) + 1))
    # (the scribble either breaks the deflate stream or inflates to garbage records)
    assert isinstance(r.problem, FormatError) and str(r.problem).startswith(
        f"d.pcap.gz record:{len(got) + 1} ")
    # damage right after the gzip header: not readable as a capture at all
    bad = bytearray(gzip.compress(raw, mtime=0))
    bad[10:40] = bytes(30)
    with pytest.raises(FormatError):
        CaptureReader.from_bytes(bytes(bad), "e.pcap.gz")

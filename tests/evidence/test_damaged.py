"""Damaged evidence never raises: corpus files cut short or with flipped bytes are
still listed, with their kind where the magic survives and a problem where known."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from backline.evidence import classify_file, collect
from backline.model.core import ArtifactKind as K

SAMPLES = {
    "net/zeek_tcp_reassembly.pcap": K.CAPTURE,
    "net/tcpdump_tcp_handshake_nano.pcap": K.CAPTURE,
    "net/cs_http_espn_fail.pcapng": K.CAPTURE,
    "net/msod_CCROD_ex1_netmon.cap": K.CAPTURE,
    "logs/evtx/security.evtx": K.EVTX,
    "dumps/breakpad/minidump2.dmp": K.MINIDUMP,
    "dumps/lldb/elf-core/linux-x86_64.core": K.ELF_CORE,
    "dumps/lldb/elf-core/linux-i386.out": K.EXECUTABLE,
}


@pytest.mark.parametrize("rel", sorted(SAMPLES))
def test_cut_files_keep_their_kind_and_never_raise(corpus: Path, tmp_path: Path, rel: str) -> None:
    data = (corpus / rel).read_bytes()
    for cut in (16, 40, 100, 1000, 5000, len(data) // 2, len(data) - 1):
        if cut >= len(data):
            continue
        p = tmp_path / f"cut{cut}-{Path(rel).name}"
        p.write_bytes(data[:cut])
        (a,) = collect([p], tmp_path / f"w{cut}", require_readable=False).artifacts
        assert a.kind is SAMPLES[rel], (rel, cut)
        assert a.size == cut
        if cut >= len(data) // 2:
            assert any(x.startswith("truncated") for x in a.problems), (rel, cut, a.problems)
    assert classify_file(corpus / rel).problems == ()


@pytest.mark.parametrize("rel", sorted(SAMPLES))
def test_flipped_bytes_never_raise(corpus: Path, tmp_path: Path, rel: str) -> None:
    rnd = random.Random(rel)
    data = bytearray((corpus / rel).read_bytes())
    for round_ in range(5):
        noisy = bytearray(data)
        for _ in range(50):
            i = rnd.randrange(4, len(noisy))          # keep the magic
            noisy[i] = rnd.randrange(256)
        p = tmp_path / f"noisy{round_}-{Path(rel).name}"
        p.write_bytes(noisy)
        (a,) = collect([p], tmp_path / f"w{round_}", require_readable=False).artifacts
        assert a.kind is classify_file(p).kind

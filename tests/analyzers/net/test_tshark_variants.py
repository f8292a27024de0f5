"""Captures rewritten by real tools agree with tshark: Network Monitor files and cut files.

* Network Monitor: corpus captures converted with ``editcap -F netmon2`` (2.0) and
  ``editcap -F netmon1``, and the 2.0 file rewritten as 2.3 (15-byte record trailers with
  the UTC time, the frame table before the frames, the header time in local time);
  every count of the corpus oracle (``oracle.sh``: tshark's per-frame expert fields
  and conversation table) is compared, the TCP expert flags (lost segment, ACKed
  unseen segment) included.
* Cut captures: a pcapng and its gzip copy cut in the middle of a block at several
  points; the DNS rcodes and packet counts tshark reads equal Backline's.

tshark and editcap (Debian ``tshark``) are installed by ``.ci/run``.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from backline.analyzers.net.capture import analyze_capture
from backline.analyzers.net.summary import ORACLE_KEYS, oracle_counts
from backline.analyzers.net.synth import netmon_rewrite as rewrite
from backline.testing import corpus_dir

NET = corpus_dir() / "net"
ORACLE_SH = NET / "oracle.sh"

@pytest.fixture(autouse=True)
def _tshark():
    if not (shutil.which("tshark") and shutil.which("editcap")):
        pytest.fail("tshark and editcap are the oracle here (apt-get install tshark; .ci/run does)")

#: captures with TCP gaps (lost segment / ACKed unseen segment), DNS and SMB2
NETMON_SOURCES = ("zeek_http_1000_requests_one_dropped.pcap.gz", "zeek_tcp_reassembly.pcap",
                  "msod_FASOD_ex2_smb2_domain.pcapng")


def _oracle(cap: Path) -> dict:
    out = cap.with_name(cap.name + ".oracle.json")
    subprocess.run(["bash", str(ORACLE_SH), str(cap), str(out)], check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def netmon_cases(tmp_path_factory) -> list[tuple[str, Path, dict]]:
    d = tmp_path_factory.mktemp("netmon")
    caps: list[Path] = []
    for name in NETMON_SOURCES:
        stem = name.split(".")[0]
        v2 = d / f"{stem}.netmon2.cap"
        subprocess.run(["editcap", "-F", "netmon2", str(NET / name), str(v2)], check=True)
        v1 = d / f"{stem}.netmon1.cap"
        subprocess.run(["editcap", "-F", "netmon1", str(NET / name), str(v1)], check=True)
        v23 = d / f"{stem}.netmon23.cap"
        v23.write_bytes(rewrite(v2.read_bytes(), 3, table_first=True, local_offset_s=7200))
        caps += [v2, v1, v23]
    with ThreadPoolExecutor(2) as ex:
        oracles = list(ex.map(_oracle, caps))
    return [(c.name, c, o) for c, o in zip(caps, oracles)]


def test_netmon_files_are_what_they_claim(netmon_cases):
    magics = Counter(c.read_bytes()[:6] for _, c, _ in netmon_cases)
    assert magics[b"GMBU\x00\x02"] == 3 and magics[b"GMBU\x03\x02"] == 3
    assert sum(n for m, n in magics.items() if m.startswith(b"RTSS")) == 3


def test_netmon_counts_equal_tshark(netmon_cases):
    bad = []
    for name, cap, expected in netmon_cases:
        mine = oracle_counts(analyze_capture(cap))
        for key in ORACLE_KEYS:
            if key in expected and mine[key] != expected[key]:
                bad.append((name, key, expected[key], mine[key]))
    assert not bad, bad


def test_netmon_tcp_expert_flags_equal_tshark(netmon_cases):
    seen_gap = False
    for name, cap, expected in netmon_cases:
        st = analyze_capture(cap)
        assert st.problem is None, f"{name}: {st.problem}"
        mine = oracle_counts(st)["tcp_analysis"]
        for flag in ("lost_segment", "ack_lost_segment", "retransmission", "out_of_order", "duplicate_ack"):
            assert mine.get(flag, 0) == expected["tcp_analysis"][flag], f"{name}: {flag}"
        seen_gap |= expected["tcp_analysis"]["lost_segment"] > 0
        # tshark reads the same frames from every rewrite as from the original
        assert expected["packets"] == st.packets
    assert seen_gap, "no capture with a lost segment: the test would prove nothing"


def test_netmon_time_stamps_equal_tshark(netmon_cases):
    for name, cap, expected in netmon_cases:
        st = analyze_capture(cap)
        # 1.x keeps milliseconds, 2.x microseconds: tshark's value rounded to what the file holds
        assert abs(st.first_ts / 1e9 - float(expected["first_frame_ts_epoch"])) < 1e-6, name
        assert abs(st.last_ts / 1e9 - float(expected["last_frame_ts_epoch"])) < 1e-6, name


# ------------------------------------------------------------------ cut captures

def _tshark_dns(cap: Path) -> tuple[int, Counter]:
    p = subprocess.run(["tshark", "-n", "-r", str(cap), "-T", "fields", "-E", "occurrence=a",
                        "-E", "aggregator=,", "-e", "frame.number", "-e", "dns.flags.response",
                        "-e", "dns.flags.rcode"], capture_output=True, text=True, timeout=120)
    rows = [ln.split("\t") for ln in p.stdout.splitlines() if ln.strip()]
    names = {0: "NoError", 1: "FormErr", 2: "ServFail", 3: "NXDomain", 5: "Refused"}
    rc: Counter = Counter()
    for r in rows:
        resp = [x for x in (r[1] if len(r) > 1 else "").split(",") if x]
        codes = [x for x in (r[2] if len(r) > 2 else "").split(",") if x]
        for i, v in enumerate(resp):
            if v in ("1", "True") and i < len(codes):
                rc[names.get(int(codes[i], 0), codes[i])] += 1
    return len(rows), rc


def _cuts(data: bytes) -> list[int]:
    n = len(data)
    return sorted({n - 2, n - 9, n * 3 // 4, n // 2})


@pytest.mark.parametrize("name", ["msod_FASOD_ex2_smb2_domain.pcapng", "zeek_pcapng_multi_interface.pcapng"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_cut_pcapng_reads_the_records_tshark_reads(tmp_path, name, gz):
    data = (NET / name).read_bytes()
    if gz:
        data = gzip.compress(data, mtime=0)
    compared = 0
    for cut in _cuts(data):
        cap = tmp_path / f"cut{cut}.pcapng{'.gz' if gz else ''}"
        cap.write_bytes(data[:cut])
        packets, rcodes = _tshark_dns(cap)
        st = analyze_capture(cap)
        mine = oracle_counts(st)
        assert st.packets == packets, f"cut at {cut}"
        assert Counter(mine["dns_rcodes"]) == rcodes, f"cut at {cut}"
        assert st.problem is not None and "cut short" in str(st.problem), f"cut at {cut}: {st.problem}"
        compared += packets
    assert compared > 0

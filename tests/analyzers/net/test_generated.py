"""The benchmark generator's traffic, checked against tshark's counts for it.

The golden file was made by running the corpus ``oracle.sh`` (tshark 4.0.17)
on ``net_capgen.py --packets 100000 --seed 2``; the capture is regenerated
here (byte-identical, checked by hash) and Backline's counts must equal
tshark's: loss, fast and RTO retransmissions, zero windows and probes,
refused and unanswered connections, HTTP/TLS/DNS at a scale the corpus lacks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from backline.analyzers.net.capture import analyze_capture
from backline.analyzers.net.summary import ORACLE_KEYS, oracle_counts
from backline.testing import project_root

GOLDEN = Path(__file__).parent / "golden" / "capgen_seed2_100k.oracle.json"


def _capgen():
    spec = importlib.util.spec_from_file_location(
        "net_capgen", project_root() / "benchmarks" / "net_capgen.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_generated_capture_matches_tshark(tmp_path):
    expected = json.loads(GOLDEN.read_text())
    out = tmp_path / "gen.pcap"
    _capgen().generate(str(out), 100_000, seed=2)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == expected["sha256"]
    mine = oracle_counts(analyze_capture(out))
    for key in ORACLE_KEYS:
        assert mine[key] == expected[key], key

"""Every count the corpus oracles hold (tshark 4.0.17) equals Backline's.

The oracle files are made by ``oracle.sh`` in the corpus; SOURCES.md documents
no tshark quirk for these captures, so there are no exceptions: every key of
:data:`ORACLE_KEYS` that an oracle holds is compared as is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backline.analyzers.net.capture import analyze_capture
from backline.analyzers.net.summary import ORACLE_KEYS, oracle_counts
from backline.testing import corpus_dir

#: Known tshark quirks to exempt, as documented in the corpus SOURCES.md:
#: {capture name: {key: reason}}.  SOURCES.md lists none for this corpus.
QUIRKS: dict[str, dict[str, str]] = {}

ORACLES = sorted((corpus_dir() / "net").glob("*.oracle.json"))


def test_corpus_has_oracles():
    assert len(ORACLES) >= 20


@pytest.mark.parametrize("oracle", ORACLES, ids=lambda p: p.name.removesuffix(".oracle.json"))
def test_counts_match_oracle(oracle: Path):
    expected = json.loads(oracle.read_text())
    capture = oracle.with_name(oracle.name.removesuffix(".oracle.json"))
    stats = analyze_capture(capture)
    mine = oracle_counts(stats)
    quirks = QUIRKS.get(capture.name, {})
    compared = 0
    for key in ORACLE_KEYS:
        if key not in expected or key in quirks:
            continue
        compared += 1
        assert mine[key] == expected[key], f"{capture.name}: {key}"
    assert compared == len(ORACLE_KEYS) - len(quirks)


def test_truncated_capture_reads_good_records_and_names_the_bad_one(corpus):
    path = corpus / "net" / "derived_zeek_tcp_reassembly_truncated.pcap"
    expected = json.loads(path.with_name(path.name + ".oracle.json").read_text())
    stats = analyze_capture(path)
    assert stats.packets == expected["packets"] == 82
    assert expected["tshark_rc"] != 0
    assert stats.problem is not None
    assert "record:83" in str(stats.problem)
    assert "cut short" in str(stats.problem)

"""``backline net``: tables, JSON with the oracle keys, exit code 2 on bad input."""

from __future__ import annotations

import gzip
import json

from typer.testing import CliRunner

from backline.cli import app

runner = CliRunner()


def test_json_has_the_oracle_keys_and_values(corpus):
    cap = corpus / "net" / "zeek_http_1000_requests_one_dropped.pcap.gz"
    res = runner.invoke(app, ["net", str(cap), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    oracle = json.loads((cap.parent / (cap.name + ".oracle.json")).read_text())
    for key in ("packets", "tcp_analysis", "http_requests", "http_status", "tcp_streams"):
        assert doc[key] == oracle[key]
    assert doc["compression"] == "gzip" and doc["conversations"][0]["state"]


def test_tables(corpus):
    res = runner.invoke(app, ["net", str(corpus / "net" / "cs_tcp_refuseconnection.pcapng")])
    assert res.exit_code == 0
    assert "NET.TCP.RST_TO_SYN" in res.stdout and "REJ" in res.stdout


def test_missing_file_and_not_a_capture_exit_2(tmp_path):
    res = runner.invoke(app, ["net", str(tmp_path / "nope.pcap")])
    assert res.exit_code == 2 and "no such file" in res.output
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture at all")
    res = runner.invoke(app, ["net", str(bad)])
    assert res.exit_code == 2 and "not a capture file" in res.output
    assert "Traceback" not in res.output


def test_damaged_capture_gives_partial_result_and_warning(tmp_path, corpus):
    data = (corpus / "net" / "zeek_tcp_reassembly.pcap").read_bytes()[:30001]
    gz = tmp_path / "cut.pcap.gz"
    gz.write_bytes(gzip.compress(data))
    res = runner.invoke(app, ["net", str(gz), "--json"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["packets"] == 82 and "record:83" in doc["problem"]
    assert any(f["code"] == "NET.CAPTURE.TRUNCATED" for f in doc["findings"])

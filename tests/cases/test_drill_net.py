"""The packet index and the packet view's application layer against tshark's oracles."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from backline.analyzers.net.decode import decode
from backline.analyzers.net.reader import CaptureReader
from backline.cases.drill.net import AppReplay, analysis_names, build_index, conversation, packet_fields
from backline.errors import StorageError


def _captures(corpus: Path) -> list[Path]:
    return sorted(p for p in (corpus / "net").iterdir() if not p.name.endswith((".json", ".md", ".sh")))


def _oracle(cap: Path) -> dict:
    return json.loads(Path(f"{cap}.oracle.json").read_text())


def test_packet_index_agrees_with_tshark_on_every_corpus_capture(corpus, tmp_path):
    caps = _captures(corpus)
    assert len(caps) >= 20
    wrong = []
    for cap in caps:
        orc = _oracle(cap)
        built = build_index(cap, tmp_path / f"{cap.name}.parquet", cap.name, 1 << 30)
        t = pq.read_table(tmp_path / f"{cap.name}.parquet").to_pydict()
        flags = Counter(f for a in t["analysis"] for f in analysis_names(a).split(",") if f)
        got = {"packets": built["packets"],
               "tcp_streams": len({c for f, c in zip(t["family"], t["conv"]) if f == "tcp"}),
               "rst_frames": sum(bool(f & 4) for f in t["flags"]),
               "tcp_analysis": {k: flags.get(k, 0) for k in orc["tcp_analysis"]}}
        want = {k: orc[k] for k in got}
        if got != want:
            wrong.append(f"{cap.name}: {got} != {want}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", ["cs_dns_query_nonexistent.pcapng", "cs_http_espn_fail.pcapng",
                                  "zeek_tls12_handshake_failure.pcap", "zeek_tls13draft16_ff52_unknown_ca.pcap",
                                  "msod_FASOD_ex2_smb2_domain.pcapng"])
def test_application_messages_agree_with_tshark(corpus, name):
    cap = corpus / "net" / name
    orc = _oracle(cap)
    replay = AppReplay(None)
    for num, ts, lt, data, orig in CaptureReader.open(cap, name).packets():
        d = decode(lt, data, orig)
        if d is not None:
            replay.feed(num, ts, d)
    got = Counter()
    for m in replay.got:
        if m["protocol"] == "DNS response":
            got[("dns", m["rcode"])] += 1
        elif m["protocol"] == "HTTP response":
            got[("http", str(m["status"]))] += 1
        elif m["protocol"] == "TLS alert":
            got[("tls", m["description"])] += 1
        elif m["protocol"] == "SMB2 response" and m["status"] != "STATUS_SUCCESS":
            got[("smb2", m["status"])] += 1
    want = Counter({("dns", k): v for k, v in orc["dns_rcodes"].items()})
    want.update({("http", k): v for k, v in orc["http_status"].items()})
    want.update({("tls", k): v for k, v in orc["tls_alerts"].items()})
    from backline.analyzers.net.smb2 import status_name
    want.update({("smb2", status_name(int(k, 16))): v for k, v in orc["smb2_error_status"].items()})
    assert got == want and want


def test_packet_view_of_a_dns_failure(corpus, tmp_path):
    cap = corpus / "net" / "cs_dns_query_nonexistent.pcapng"
    build_index(cap, tmp_path / "i.parquet", cap.name, 1 << 20)
    conv = conversation(tmp_path / "i.parquet", 2)
    assert [p["number"] for p in conv["packets"]] == [1, 2] and conv["conv"] == "udp:0"
    f = packet_fields(cap, 2, cap.name, [1])
    assert f["udp"]["src_port"] == 53
    assert f["application"] == [{"protocol": "DNS response", "id": 62015, "name": "12498283719301382971974.net",
                                 "rcode": "NXDomain", "frame": 2}]
    assert packet_fields(cap, 3, cap.name) is None


def test_index_past_its_room_is_refused(corpus, tmp_path):
    cap = corpus / "net" / "cs_http_espn_fail.pcapng"
    with pytest.raises(StorageError, match="room left"):
        build_index(cap, tmp_path / "i.parquet", cap.name, 100)
    assert list(tmp_path.iterdir()) == []          # nothing half-written left behind

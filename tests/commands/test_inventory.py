"""``backline inventory``: tables, JSON, refusals and exit codes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from backline.cli import app

runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
LOG = b"2024-05-01T10:00:00Z INFO start\n2024-05-01T10:05:00Z ERROR disk full\n"


def _bundle(tmp_path: Path, corpus: Path) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("logs/app.log", LOG)
        zf.writestr(zipfile.ZipInfo("../../escape.sh"), b"rm -rf /\n")
        zf.writestr("net/c.pcap", (corpus / "net/zeek_tcp_rst_inject.pcap").read_bytes())
        zf.writestr("empty.txt", b"")
    p = tmp_path / "bundle.zip"
    p.write_bytes(buf.getvalue())
    return p


def test_json_lists_artifacts_and_refusals(tmp_path: Path, corpus: Path) -> None:
    res = runner.invoke(app, ["inventory", str(_bundle(tmp_path, corpus)), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    rows = {a["path"]: a for a in doc["artifacts"]}
    assert set(rows) == {"bundle.zip!/logs/app.log", "bundle.zip!/net/c.pcap", "bundle.zip!/empty.txt"}
    log = rows["bundle.zip!/logs/app.log"]
    assert log["kind"] == "text_log" and log["size"] == len(LOG)
    assert log["time_start"] == "2024-05-01T10:00:00+00:00" and log["time_end"] == "2024-05-01T10:05:00+00:00"
    assert len(log["sha256"]) == 64
    assert rows["bundle.zip!/net/c.pcap"]["kind"] == "capture"
    assert rows["bundle.zip!/empty.txt"]["problems"] == ["zero-byte file"]
    assert doc["refusals"][0]["path"] == "bundle.zip!/../../escape.sh"
    assert doc["summary"]["refused"] == 1 and doc["summary"]["readable"] == 2


def test_text_table(tmp_path: Path, corpus: Path) -> None:
    res = runner.invoke(app, ["inventory", str(_bundle(tmp_path, corpus))])
    assert res.exit_code == 0
    assert "bundle.zip!/logs/app.log" in res.stdout and "text_log" in res.stdout
    assert "Refused entries" in res.stdout and "escapes the archive" in res.stdout
    assert "3 files" in res.stdout


def test_missing_path_exits_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["inventory", str(tmp_path / "nope.zip")])
    assert res.exit_code == 2
    assert "nope.zip" in (res.stderr if hasattr(res, "stderr") else res.output)


def test_nothing_readable_lists_then_exits_2(tmp_path: Path) -> None:
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "empty.log").write_bytes(b"")
    res = runner.invoke(app, ["inventory", str(tmp_path / "ev"), "--format", "json"])
    assert res.exit_code == 2
    assert json.loads(res.stdout)["artifacts"][0]["problems"] == ["zero-byte file"]


def test_bad_format_and_bad_limit_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(LOG)
    assert runner.invoke(app, ["inventory", str(tmp_path / "a.log"), "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["inventory", str(tmp_path / "a.log"), "--max-depth", "0"]).exit_code == 2


def test_limits_from_the_command_line(tmp_path: Path) -> None:
    data = LOG
    for i in range(4):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(f"l{i}.zip" if i else "deep.log", data)
        data = buf.getvalue()
    (tmp_path / "n.zip").write_bytes(data)
    res = runner.invoke(app, ["inventory", str(tmp_path / "n.zip"), "--format", "json", "--max-depth", "2"])
    doc = json.loads(res.stdout)
    assert any("nested deeper" in r["reason"] for r in doc["refusals"])


def test_non_utf8_paths_never_crash_the_output(tmp_path: Path) -> None:
    import os

    missing = os.fsdecode(tmp_path / os.fsencode(b"caf\xe9.zip").decode("utf-8", "surrogateescape"))
    res = runner.invoke(app, ["inventory", missing])
    assert res.exit_code == 2 and res.exception is None or isinstance(res.exception, SystemExit)
    d = tmp_path / "ev"
    d.mkdir()
    (d / os.fsdecode(b"r\xe9sum\xe9.log")).write_bytes(LOG)
    res = runner.invoke(app, ["inventory", str(d), "--format", "json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["artifacts"][0]["path"] == "ev/r\\xe9sum\\xe9.log"
    res = runner.invoke(app, ["inventory", str(d)])
    assert res.exit_code == 0 and "r\\xe9sum\\xe9.log" in res.stdout

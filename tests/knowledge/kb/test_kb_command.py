"""``backline kb`` on the local database (SQLite in BACKLINE_HOME) and ``kb test`` without a service."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from backline.cli import app

runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
ENTRY = """
title: Orders gateway sends no intermediate certificate
symptoms: Clients fail with unknown_ca after the gateway upgrade.
matchers:
  - finding: NET.TLS.ALERT
    where: {description: unknown_ca}
"""


def run(*args, code=0):
    r = runner.invoke(app, list(args))
    assert r.exit_code == code, (args, r.exit_code, r.stdout, r.stderr)
    return r.stdout


def test_kb_workflow_on_the_local_database(tmp_path, corpus):
    run("user", "add", "erin", "--role", "engineer")
    run("user", "add", "sam", "--role", "support", "--team", "emea")
    f = tmp_path / "gw.yaml"
    f.write_text(ENTRY)
    assert run("kb", "add", str(f), "--as", "erin").strip() == \
        "KB-1001 draft: Orders gateway sends no intermediate certificate"
    run("kb", "add", str(f), "--as", "sam", code=1)                          # support may not add
    run("kb", "publish", "KB-1001", "--as", "erin", code=1)                  # no workaround yet
    out = run("kb", "edit", "KB-1001", "--set", "workaround=Install the intermediate on the gateway.",
              "--revision", "1", "--as", "erin")
    assert out.strip() == "KB-1001 revision 2"
    run("kb", "edit", "KB-1001", "--set", "title=x", "--revision", "1", "--as", "erin", code=1)   # stale
    assert run("kb", "publish", "KB-1001", "--as", "erin").strip() == "KB-1001 published (revision 3)"
    listed = json.loads(run("kb", "list", "--status", "published", "--json", "--as", "sam"))
    assert [e["key"] for e in listed] == ["KB-1001"]
    shown = run("kb", "show", "KB-1001", "--history", "--as", "sam")
    assert "matchers (any of):" in shown and "finding NET.TLS.ALERT where description = unknown_ca" in shown
    assert "r3 publish by erin" in shown
    assert "KB-3" in run("kb", "show", "KB-3", "--as", "sam")               # a starter-pack entry
    pcap = str(corpus / "net/zeek_tls13draft16_ff52_unknown_ca.pcap")
    out = run("kb", "test", "--key", "KB-1001", "--key", "KB-1", pcap, "--as", "erin")
    assert "KB-1001 MATCH" in out and "packet:8" in out and "KB-1 no match" in out
    assert run("kb", "retire", "KB-1001", "--as", "erin").strip() == "KB-1001 retired (revision 4)"


def test_kb_test_with_files_against_a_saved_report_and_evidence(tmp_path, corpus):
    pcap = corpus / "net/zeek_tls13draft16_ff52_unknown_ca.pcap"
    out_dir = tmp_path / "out"
    r = runner.invoke(app, ["analyze", str(pcap), "--out", str(out_dir), "--format", "json", "--no-store", "-q"])
    assert r.exit_code == 0, r.stderr
    f = tmp_path / "gw.yaml"
    f.write_text("key: KB-1001\n" + ENTRY)
    res = json.loads(run("kb", "test", "--file", str(f), str(out_dir / "report.json"), "--json"))
    assert res["tested"] == ["KB-1001"] and [x["key"] for x in res["results"]] == ["KB-1001"]
    assert res["results"][0]["matched"][0]["evidence"][0]["locator"] == "packet:8"
    other = corpus / "net/cs_tcp_refuseconnection.pcapng"
    out = run("kb", "test", "--file", str(f), str(other), code=1)            # analysed now; no match: exit 1
    assert "KB-1001 no match" in out


def test_kb_usage_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: KB-1001\ntitle: t\nmatchers: [{finding: NET.TLS.ALERT, where: {x: {gte: high}}}]\n")
    r = runner.invoke(app, ["kb", "test", "--file", str(bad), str(tmp_path)])
    assert r.exit_code == 2 and "bad.yaml matchers[0].where.x.gte" in r.stderr
    r = runner.invoke(app, ["kb", "test", str(tmp_path)])
    assert r.exit_code == 2 and "--file" in r.stderr
    run("user", "add", "erin", "--role", "engineer")
    r = runner.invoke(app, ["kb", "add", str(bad), "--as", "erin"])
    assert r.exit_code == 2 and "matchers[0].where.x.gte" in r.stderr and "Traceback" not in r.stderr

"""``backline analyze`` with known issues: the starter pack by default, --kb files, the report sections."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from backline.cli import app
from backline.report import build_report, render_html, render_markdown
from backline.report.load import load_result
from backline.report.json_report import load_schema, to_document

runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
UNKNOWN_CA = "net/zeek_tls13draft16_ff52_unknown_ca.pcap"


def _run(*args: str):
    return runner.invoke(app, ["analyze", *args, "--no-store", "--quiet", "--jobs", "1"])


def test_the_pack_is_on_by_default_and_matches_are_reported_first(corpus, tmp_path):
    res = _run(str(corpus / UNKNOWN_CA), "--out", str(tmp_path), "--format", "text", "--format", "json",
               "--format", "md", "--format", "html")
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert "Known issues (1 matched)" in text and "KB-3 TLS certificate from an unknown CA" in text
    assert text.index("Known issues") < text.index("Severity")            # above the findings table
    assert "packet:8" in text and "workaround:" in text
    doc = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(doc, load_schema())
    (k,) = doc["known_issues"]
    assert (k["key"], k["verdict"], k["artifact"]) == ("KB-3", "match", "zeek_tls13draft16_ff52_unknown_ca.pcap")
    assert k["matched"][0]["evidence"][0]["locator"] == "packet:8"
    assert "full chain" in k["workaround"]
    assert doc["options"]["kb"]["matched"] == ["KB-3"] and doc["options"]["kb"]["entries"] >= 40
    assert [f["code"] for f in doc["findings"]].count("KB.MATCH") == 1
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Known issues") < md.index("## Findings") and "### KB-3" in md and "`packet:8`" in md
    html = (tmp_path / "report.html").read_text()
    assert html.index('id="known-issues"') < html.index('id="findings"') and "Workaround:" in html


def test_a_saved_report_shows_its_known_issues_again(corpus, tmp_path):
    assert _run(str(corpus / UNKNOWN_CA), "--out", str(tmp_path), "--format", "json").exit_code == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    again = to_document(build_report(load_result(doc)))
    assert again["known_issues"] == doc["known_issues"]
    assert "KB-3" in render_markdown(build_report(load_result(doc)))
    assert 'id="known-issues"' in render_html(build_report(load_result(doc)))


def test_no_pack_no_matches(corpus):
    res = _run(str(corpus / UNKNOWN_CA), "--no-kb-pack", "--format", "json")
    doc = json.loads(res.stdout)
    assert doc["known_issues"] == [] and "kb" not in doc["options"]
    assert all(not f["code"].startswith("KB.") for f in doc["findings"])


def _team_kb(tmp_path: Path) -> Path:
    kb = tmp_path / "team-kb"
    kb.mkdir()
    (kb / "orders.yaml").write_text("""
entries:
  - key: KB-1001
    title: Orders gateway sends no intermediate certificate
    workaround: Apply hotfix HF-7 or install the intermediate on the gateway.
    fix: {bug: ORD-77, fixed_in: 4.2.3, hotfix: HF-7}
    affects: [{product: orders, versions: ">=4.0"}]
    matchers:
      - finding: NET.TLS.ALERT
        where: {description: unknown_ca}
  - key: KB-3
    title: retired here
    status: retired
    matchers: [{finding: NET.TLS.ALERT}]
""")
    return kb


def test_team_entries_add_to_and_replace_pack_entries_and_respect_versions(corpus, tmp_path):
    kb = _team_kb(tmp_path)
    doc = json.loads(_run(str(corpus / UNKNOWN_CA), "--kb", str(kb), "--product", "orders",
                          "--product-version", "4.2.1", "--format", "json").stdout)
    assert [(k["key"], k["verdict"]) for k in doc["known_issues"]] == [("KB-1001", "match")]   # KB-3 retired
    assert doc["known_issues"][0]["reason"] == "fixed in 4.2.3, customer runs 4.2.1: upgrade or apply hotfix HF-7"
    doc = json.loads(_run(str(corpus / UNKNOWN_CA), "--kb", str(kb), "--product", "orders",
                          "--product-version", "4.2.5", "--format", "json").stdout)
    (k,) = doc["known_issues"]
    assert (k["key"], k["verdict"], k["severity"]) == ("KB-1001", "not_affected", "info")
    assert k["reason"] == "fixed in 4.2.3, customer runs 4.2.5"
    assert any(f["code"] == "KB.NOT_AFFECTED" for f in doc["findings"])


def test_a_bad_kb_file_is_a_usage_error_naming_file_and_field(corpus, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"key": "KB-1001", "title": "t", "matchers": [{"finding": "NET.TLS.ALERT",
                                                                            "where": {"rate": {"gte": "x"}}}]}))
    res = _run(str(corpus / UNKNOWN_CA), "--kb", str(bad))
    assert res.exit_code == 2
    assert "bad.json matchers[0].where.rate.gte" in res.stderr and "Traceback" not in res.stderr

"""``backline case evidence`` and ``backline analyze --case`` on the local database."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from backline.cli import app
from backline.cases.hub import Hub
from backline.testing import EXAMPLE_INTAKE, example_bundle

runner = CliRunner()
EXAMPLE = example_bundle()
FULL = EXAMPLE_INTAKE


def run(*args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, (args, r.exit_code, r.output)
    return r.output


def _case(tmp_path) -> str:
    run("user", "add", "erin", "--role", "engineer")
    run("user", "add", "carl", "--role", "customer", "--org", "acme")
    intake = tmp_path / "esc.json"
    intake.write_text(json.dumps(FULL))
    out = run("case", "new", "Orders fail", "--product", "orders", "--version", "4.2.1", "--org", "acme",
              "--intake", intake, "--as", "erin")
    return out.split()[0]


def test_case_evidence_uploads_and_waits(tmp_path):
    key = _case(tmp_path)
    out = run("case", "evidence", key, EXAMPLE, "--as", "erin")
    assert f"{key}: evidence 1 bundle.zip (175,492 bytes) analysis done, " in out
    n = int(out.split("analysis done, ")[1].split()[0])
    hub = Hub.open()
    assert n == len(hub.evidence.findings(hub.users.get("erin"), key)) > 5
    log = tmp_path / "app.log"
    log.write_text("2026-11-23 10:00:00 ERROR disk full\n")
    out = json.loads(run("case", "evidence", key, log, "--no-wait", "--json", "--as", "carl"))
    assert out[0]["job"]["status"] == "queued" and out[0]["findings"] is None     # customers see no findings


def test_case_evidence_errors(tmp_path):
    key = _case(tmp_path)
    out = run("case", "evidence", "ESC-9999", EXAMPLE, "--as", "erin", code=1)
    assert "no case ESC-9999" in out
    out = run("case", "evidence", key, tmp_path / "missing.log", "--as", "erin", code=2)
    assert "missing.log: not a readable file" in out
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert "is empty" in run("case", "evidence", key, empty, "--as", "erin", code=1)
    run("case", "evidence", key, EXAMPLE, code=2)                                  # who are you?
    assert Hub.open().evidence.list(Hub.open().users.get("erin"), key) == []      # nothing half-uploaded


def test_analyze_attaches_to_a_case(tmp_path):
    key = _case(tmp_path)
    r = runner.invoke(app, ["analyze", str(EXAMPLE), "--format", "json", "--quiet", "--case", key, "--as", "erin"])
    assert r.exit_code == 0, r.output
    hub = Hub.open()
    erin = hub.users.get("erin")
    found = hub.evidence.findings(erin, key)
    assert found and {f["source"] for f in found} == {f"attached by erin from a local analysis on "
                                                      f"{hub.evidence.list(erin, key)[0].origin['host']}"}
    r = runner.invoke(app, ["analyze", str(EXAMPLE), "--quiet", "--case", key, "--as", "carl"])
    assert r.exit_code == 2 and "may not attach analyses" in r.output
    r = runner.invoke(app, ["analyze", str(EXAMPLE), "--quiet", "--case", "ESC-9999", "--as", "erin"])
    assert r.exit_code == 2 and "no case ESC-9999" in r.output
    assert len(hub.evidence.list(erin, key)) == 1                                  # refused before analysing

"""``backline user`` and ``backline case`` on the local database (SQLite in BACKLINE_HOME)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from backline.cli import app

runner = CliRunner()
FULL = {"symptoms": "Gateway restarts with OutOfMemoryError", "business_impact": "4,000 users disconnected",
        "environment": "7.2.1 on RHEL 9", "steps_to_reproduce": "Run the nightly batch", "already_tried": "More heap",
        "expected": "Stable", "actual": "Dies", "evidence": ["gc.log"]}


def run(*args, code=0):
    r = runner.invoke(app, list(args))
    assert r.exit_code == code, (args, r.exit_code, r.output)
    return r.output


def test_user_and_case_workflow(tmp_path):
    token = run("user", "add", "sam", "--role", "support", "--team", "emea").strip()
    assert token.startswith("bl_") and len(token) > 30
    run("user", "add", "erin", "--role", "engineer")
    run("user", "add", "carl", "--role", "customer", code=2)               # needs --org
    run("user", "add", "sam", "--role", "support", code=2)                 # exists
    run("user", "add", "x", "--role", "wizard", code=2)
    intake = tmp_path / "esc.json"
    intake.write_text(json.dumps(FULL))
    out = run("case", "new", "Gateway OOM", "--product", "other", "--version", "7.2", "--org", "acme",
              "--severity", "S2", "--intake", str(intake), "--as", "sam")
    assert out.startswith("ESC-1001 new")
    out = run("case", "new", "Thin", "--product", "other", "--version", "7.2", "--org", "acme",
              "-f", "symptoms=It crashes a lot, really", "--as", "sam")
    assert "ESC-1002 needs_info" in out and "missing: business_impact" in out
    run("case", "assign", "ESC-1001", "erin", "--as", "erin")
    run("case", "status", "ESC-1001", "investigating", "--as", "erin")
    run("case", "status", "ESC-1001", "closed", "--as", "erin", code=1)    # not allowed from investigating
    run("case", "note", "ESC-1001", "Heap dump requested", "--public", "--as", "erin")
    shown = json.loads(run("case", "show", "ESC-1001", "--json", "--as", "erin"))
    assert shown["status"] == "investigating" and shown["owner"] == "erin"
    assert [n["visibility"] for n in shown["notes"]] == ["public"] and shown["first_response_at"]
    listed = json.loads(run("case", "list", "--json", "--status", "needs_info", "--as", "erin"))
    assert [c["key"] for c in listed] == ["ESC-1002"]
    clocks = json.loads(run("case", "sla", "ESC-1001", "--json", "--as", "erin"))
    assert [c["clock"] for c in clocks] == ["first_response", "update", "resolution"]
    assert clocks[0]["state"] == "met"
    md = run("case", "bug", "ESC-1001", "--as", "erin", "--suggested-fix", "close the pool")
    assert md.startswith("# [other 7.2] Gateway OOM") and "close the pool" in md
    jira = json.loads(run("case", "bug", "ESC-1001", "--format", "jira", "--as", "erin"))
    assert jira["fields"]["summary"] == "[other 7.2] Gateway OOM"


def test_usage_errors_exit_2_with_one_line(tmp_path):
    out = run("case", "list", code=2)
    assert "--as" in out and "Traceback" not in out
    run("user", "add", "erin", "--role", "engineer")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    out = run("case", "new", "t", "--product", "p", "--version", "1", "--org", "o", "--intake", str(bad),
              "--as", "erin", code=2)
    assert "bad.json" in out
    run("case", "new", "t", "--product", "p", "--version", "1", "--org", "o", "--severity", "S7", "--as", "erin",
        code=2)
    run("case", "list", "--status", "bogus", "--as", "erin", code=2)
    out = run("case", "show", "ESC-4242", "--as", "erin", code=1)
    assert "no case ESC-4242" in out
    out = run("case", "list", "--as", "erin", "--database-url", "mysql://x/y", code=2)
    assert "unsupported database URL" in out


def test_rules_and_policies_from_files(tmp_path, monkeypatch):
    """Intake rules and SLA policies are data: files named in the environment replace the built-ins."""
    rules = {"products": {"*": {"items": [{"name": "symptoms", "min_length": 3}]}}}
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    sla = {"calendars": {}, "policies": {"default": {"calendar": "24x7", "targets": {
        s: {"first_response": 5, "update": 10, "resolution": 20} for s in ("S1", "S2", "S3", "S4")}}}}
    (tmp_path / "sla.json").write_text(json.dumps(sla))
    monkeypatch.setenv("BACKLINE_INTAKE_RULES", str(tmp_path / "rules.json"))
    monkeypatch.setenv("BACKLINE_SLA_POLICIES", str(tmp_path / "sla.json"))
    run("user", "add", "erin", "--role", "engineer")
    out = run("case", "new", "t", "--product", "p", "--version", "1", "--org", "o", "-f", "symptoms=boom",
              "--as", "erin")
    assert out.startswith("ESC-1001 new")                   # one short item is enough under these rules
    clocks = json.loads(run("case", "sla", "ESC-1001", "--json", "--as", "erin"))
    assert [c["target_minutes"] for c in clocks] == [5, 10, 20]
    (tmp_path / "sla.json").write_text("{broken")
    out = run("case", "list", "--as", "erin", code=2)
    assert "sla.json" in out


def test_user_passwords_from_stdin_and_disabling():
    from backline.cases.hub import Hub
    token = runner.invoke(app, ["user", "add", "ada", "--role", "engineer", "--password-stdin"],
                          input="correct horse battery\n")
    assert token.exit_code == 0 and token.output.strip().startswith("bl_")   # still prints the API token
    hub = Hub.open()
    assert hub.users.check_password("ada", "correct horse battery").name == "ada"
    r = runner.invoke(app, ["user", "passwd", "ada", "--password-stdin"], input="short\n")
    assert r.exit_code == 2 and "8" in r.output
    r = runner.invoke(app, ["user", "passwd", "ada"], input="a new passphrase\n")   # not a TTY: reads stdin
    assert r.exit_code == 0, r.output
    assert hub.users.check_password("ada", "a new passphrase") is not None
    run("user", "passwd", "nobody", "--password-stdin", code=2)
    run("user", "disable", "ada")
    assert hub.users.check_password("ada", "a new passphrase") is None
    run("user", "enable", "ada")
    assert hub.users.check_password("ada", "a new passphrase") is not None

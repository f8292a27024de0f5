"""``backline case import``, ``backline case reindex`` and ``backline similar`` on the local database."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from backline.cli import app

runner = CliRunner()


def run(*args, code=0):
    r = runner.invoke(app, list(args))
    assert r.exit_code == code, (args, r.exit_code, r.output)
    return r.output


def test_import_then_similar_by_external_id_and_text(tmp_path):
    run("user", "add", "erin", "--role", "engineer")
    src = tmp_path / "export.jsonl"
    rows = [{"id": "T-1", "project": "gateway", "title": "Gateway dies with OutOfMemoryError",
             "description": "java.lang.OutOfMemoryError: Java heap space after two hours", "custom": {"x": 1}},
            {"id": "T-2", "project": "gateway", "title": "Java heap space exhausted in the gateway",
             "description": "The gateway JVM runs out of heap (OutOfMemoryError) under load"},
            {"id": "T-3", "project": "gateway", "title": "Login page shows the wrong logo",
             "description": "Branding is wrong after the upgrade"}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    r = runner.invoke(app, ["case", "import", str(src), "--no-embed", "--as", "erin"])
    assert r.exit_code == 0, r.output
    assert "3 added, 0 updated, 0 unchanged, 1 bad lines" in r.output and f"{src}:4: not JSON" in r.output
    assert run("case", "reindex") == "indexed 3 cases\n"
    hits = json.loads(run("similar", "T-1", "--json", "--as", "erin"))
    assert [h["external_id"] for h in hits][:1] == ["T-2"] and "T-1" not in [h["external_id"] for h in hits]
    assert set(hits[0]) >= {"key", "external_id", "title", "score", "why"}
    top = json.loads(run("similar", "--text", "OutOfMemoryError in the gateway", "--product", "gateway",
                         "--top", "1", "--json", "--as", "erin"))
    assert len(top) == 1 and top[0]["external_id"] in ("T-1", "T-2")
    table = run("similar", "ESC-1001", "--as", "erin")
    assert "ESC-1002" in table and "T-2" in table


def test_similar_usage_errors(tmp_path):
    run("user", "add", "erin", "--role", "engineer")
    run("similar", "--as", "erin", code=2)                              # neither key nor --text
    run("similar", "ESC-1001", "--text", "x", "--as", "erin", code=2)   # both
    run("similar", "ESC-4242", "--as", "erin", code=1)                  # no such case
    run("case", "import", str(tmp_path / "missing.jsonl"), "--as", "erin", code=2)


def test_case_new_says_what_the_escalation_looks_like(tmp_path):
    run("user", "add", "erin", "--role", "engineer")
    src = tmp_path / "export.jsonl"
    rows = [{"id": "T-1", "project": "gateway", "title": "Gateway dies with OutOfMemoryError",
             "status": "Open", "description": "java.lang.OutOfMemoryError: Java heap space after two hours"},
            {"id": "T-2", "project": "gateway", "title": "Login page shows the wrong logo", "status": "Resolved",
             "description": "Branding is wrong after the upgrade"}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run("case", "import", str(src), "--as", "erin")
    out = run("case", "new", "Gateway OutOfMemoryError: Java heap space", "--product", "gateway", "--version", "7.2",
              "--org", "acme", "-f", "symptoms=the gateway dies with java heap space errors after hours", "--as", "erin")
    assert "ESC-1003 needs_info" in out
    assert "this looks like ESC-1001 (Gateway dies with OutOfMemoryError), open, no owner yet" in out
    assert "ESC-1002" not in out                                         # nothing like it
    body = json.loads(run("case", "new", "Gateway OutOfMemoryError: Java heap space", "--product", "gateway",
                          "--version", "7.2", "--org", "acme", "--json", "--as", "erin"))
    assert [s["key"] for s in body["similar"]][:1] == ["ESC-1001"] and body["key"] not in \
        [s["key"] for s in body["similar"]]

"""``backline report``: show, render, validate, schema; exit codes and errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from backline.cli import app
from backline.report import build_report, write_reports

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from samples import fixed_clock, rich_result  # noqa: E402

runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()


def _saved(tmp_path: Path) -> Path:
    return write_reports(build_report(rich_result(), now=fixed_clock), tmp_path / "orig", ["json"])["json"]


def test_show_prints_the_summary(tmp_path):
    res = runner.invoke(app, ["report", "show", str(_saved(tmp_path)), "-n", "2"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == "1 critical, 1 high, 1 medium, 1 low, 1 info findings in 4 artifacts"
    assert "NET.TCP.RST_TO_SYN" in res.stdout and "and 3 more findings" in res.stdout


def test_render_writes_the_formats(tmp_path):
    saved = _saved(tmp_path)
    res = runner.invoke(app, ["report", "render", str(saved), "-f", "html,md", "-f", "json",
                              "--out", str(tmp_path / "new")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["report.html", "report.json", "report.md"]
    again = json.loads((tmp_path / "new" / "report.json").read_text())
    orig = json.loads(saved.read_text())
    for doc in (again, orig):
        doc.pop("generated_at")
    assert again == orig                                     # nothing lost on the way back


def test_validate(tmp_path):
    saved = _saved(tmp_path)
    ok = runner.invoke(app, ["report", "validate", str(saved)])
    assert ok.exit_code == 0 and "valid report" in ok.stdout
    doc = json.loads(saved.read_text())
    doc["findings"][0]["severity"] = "apocalyptic"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    res = runner.invoke(app, ["report", "validate", str(bad)])
    assert res.exit_code == 1
    assert "$.findings[0].severity: 'apocalyptic' is not one of" in res.stdout


def test_unreadable_input_is_exit_2_with_one_line(tmp_path):
    for args in (["report", "show", str(tmp_path / "missing.json")],
                 ["report", "validate", str(tmp_path / "missing.json")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2
        assert len(res.stderr.strip().splitlines()) == 1 and "missing.json" in res.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": "1.0",\n  "oops"')
    res = runner.invoke(app, ["report", "show", str(broken)])
    assert res.exit_code == 2 and "broken.json line:2: not JSON" in res.stderr
    res = runner.invoke(app, ["report", "render", str(_saved(tmp_path)), "-f", "pdf", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown report format 'pdf'" in res.stderr


def test_invalid_report_is_named_with_its_json_path(tmp_path):
    doc = json.loads(_saved(tmp_path).read_text())
    doc["events"][3]["ts"] = "yesterday"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    res = runner.invoke(app, ["report", "show", str(bad)])
    assert res.exit_code == 2 and "bad.json $.events[3].ts: not a valid report" in res.stderr
    doc["schema_version"] = "2.0"
    bad.write_text(json.dumps(doc))
    res = runner.invoke(app, ["report", "show", str(bad)])
    assert res.exit_code == 2 and "schema_version '2.0' is not supported" in res.stderr


def test_schema_command_prints_the_schema():
    res = runner.invoke(app, ["report", "schema"])
    assert res.exit_code == 0 and json.loads(res.stdout)["title"] == "Backline analysis report"


def test_a_saved_report_with_a_diagnosis_shows_renders_and_validates(tmp_path):
    """The diagnosis survives the round trip: show opens with it, render keeps it, validate accepts it."""
    from backline.knowledge.diagnosis import diagnose

    result = rich_result()
    result = type(result)(**{**{f: getattr(result, f) for f in result.__dataclass_fields__},
                             "diagnosis": diagnose(result.findings, result.events, result.facts, result.artifacts)})
    assert result.diagnosis.causes
    saved = write_reports(build_report(result, now=fixed_clock), tmp_path / "orig", ["json"])["json"]
    shown = runner.invoke(app, ["report", "show", str(saved)])
    assert shown.exit_code == 0, shown.output
    # the section's heading: a confident cause, or (below 0.5) "No confident root cause" with the candidates
    assert shown.stdout.splitlines()[0].split(" (")[0].split(":")[0] in ("Probable root cause", "No confident root cause")
    assert runner.invoke(app, ["report", "validate", str(saved)]).exit_code == 0
    res = runner.invoke(app, ["report", "render", str(saved), "-f", "json,md", "--out", str(tmp_path / "new")])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "new" / "report.json").read_text())
    assert again["diagnosis"] == json.loads(saved.read_text())["diagnosis"]
    assert "root cause" in (tmp_path / "new" / "report.md").read_text().split("## Findings")[0]

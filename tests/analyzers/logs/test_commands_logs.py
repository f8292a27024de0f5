"""``backline logs``: show (merge by time, filters), templates (--per-line), query."""

from __future__ import annotations

import csv
import gzip

from typer.testing import CliRunner

from backline.cli import app

runner = CliRunner()


def _two_logs(tmp_path):
    a = tmp_path / "a.log"
    a.write_text("2024-01-01 10:00:00,000 INFO [m] x.A: alpha start\n"
                 "2024-01-01 10:00:02,000 ERROR [m] x.A: alpha failed code=7\n"
                 "2024-01-01 10:00:04,000 INFO [m] x.A: alpha done\n", encoding="utf-8")
    b = tmp_path / "b.log.gz"
    b.write_bytes(gzip.compress(b"2024-01-01 10:00:01,000 WARN [m] y.B: beta slow 300 ms\n"
                                b"2024-01-01 10:00:03,000 ERROR [m] y.B: beta failed code=9\n"))
    return a, b


def test_show_merges_by_time(tmp_path):
    a, b = _two_logs(tmp_path)
    r = runner.invoke(app, ["logs", str(a), str(b)])
    assert r.exit_code == 0, r.output
    order = [line.split(" ")[0].rsplit(":", 1) for line in r.output.strip().splitlines()]
    assert [(p.endswith("a.log"), int(n)) for p, n in order] == [
        (True, 1), (False, 1), (True, 2), (False, 2), (True, 3)]


def test_show_filters(tmp_path):
    a, b = _two_logs(tmp_path)
    r = runner.invoke(app, ["logs", str(a), str(b), "--level", "error", "--since", "2024-01-01T10:00:02.500"])
    assert r.exit_code == 0 and r.output.count("\n") == 1 and "beta failed" in r.output
    r = runner.invoke(app, ["logs", str(a), str(b), "--grep", "code=[79]"])
    assert r.output.count("\n") == 2
    r = runner.invoke(app, ["logs", str(a), "--until", "2024-01-01T10:00:01"])
    assert r.output.count("\n") == 1 and "alpha start" in r.output


def test_show_by_template_id(tmp_path):
    from backline.analyzers.logs.miner import template_id

    a, b = _two_logs(tmp_path)
    tid = template_id("beta failed code=<*>")
    r = runner.invoke(app, ["logs", str(a), str(b), "--template", tid])
    assert r.exit_code == 0 and r.output.count("\n") == 1 and "beta failed code=9" in r.output


def test_templates_per_line(corpus, tmp_path):
    log = corpus / "logs" / "loghub-2k" / "HDFS" / "HDFS_2k.log"
    out = tmp_path / "lines.csv"
    r = runner.invoke(app, ["logs", "templates", str(log), "--per-line", str(out)])
    assert r.exit_code == 0, r.output
    assert "PacketResponder <*> for block <*> terminating" in r.output.replace("\n", " ") or "templates" in r.output
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2000 and [int(x["line"]) for x in rows] == list(range(1, 2001))
    assert rows[0]["template"] == "PacketResponder <*> for block <*> terminating"
    assert all(row["template_id"].startswith("T") for row in rows)


def test_query_text_log_and_parquet(tmp_path):
    a, _ = _two_logs(tmp_path)
    r = runner.invoke(app, ["logs", "query", str(a), "SELECT line, level FROM records WHERE level='ERROR'", "--csv"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines() == ["line,level", "2,ERROR"]


def test_usage_errors_exit_2(tmp_path):
    r = runner.invoke(app, ["logs", str(tmp_path / "missing.log")])
    assert r.exit_code == 2 and "no such file" in r.output
    a, _ = _two_logs(tmp_path)
    r = runner.invoke(app, ["logs", "query", str(a), "SELEC nonsense"])
    assert r.exit_code == 2 and "SQL error" in r.output
    r = runner.invoke(app, ["logs", str(a), "--grep", "("])
    assert r.exit_code == 2 and "--grep" in r.output
    r = runner.invoke(app, ["logs", str(a), "--since", "yesterday"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["logs", str(a), "--tz", "Mars/Olympus"])
    assert r.exit_code == 2 and "time zone" in r.output


def test_show_reads_event_logs_too(corpus, tmp_path):
    a, _ = _two_logs(tmp_path)
    evtx = corpus / "logs" / "evtx" / "system.evtx"
    r = runner.invoke(app, ["logs", str(evtx), "--level", "warning", "--grep", "Disk 51"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 3 and all("system.evtx:" in x and "Disk 51" in x for x in lines)
    r = runner.invoke(app, ["logs", str(a), str(evtx), "--since", "2024-01-01", "--level", "error"])
    assert r.exit_code == 0 and r.output.count("\n") == 1      # merged: only the text log is that recent


def _escape_log(tmp_path):
    e = tmp_path / "e.log"
    e.write_bytes(b"2024-01-01 10:00:00 ERROR x\x1b]0;pwned\x07y \xe2\x80\xaeevil\r done\n")
    return e


def test_show_renders_control_characters_visibly(tmp_path):
    r = runner.invoke(app, ["logs", str(_escape_log(tmp_path))])
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\x07" not in r.output and "\u202e" not in r.output
    assert "\r" not in r.output
    assert r"x\x1b]0;pwned\x07y \u202eevil\x0d done" in r.output


def test_templates_and_query_render_control_characters_visibly(tmp_path):
    e = _escape_log(tmp_path)
    for args in (["logs", "templates", str(e)], ["logs", "query", str(e), "SELECT message FROM records"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        assert "\x1b" not in r.output and "\x07" not in r.output and r"\x1b]0;pwned\x07y" in r.output


def test_query_csv_to_a_file_keeps_the_raw_text(tmp_path):
    r = runner.invoke(app, ["logs", "query", str(_escape_log(tmp_path)), "SELECT message FROM records", "--csv"])
    assert r.exit_code == 0, r.output
    assert "x\x1b]0;pwned\x07y" in r.output          # not a terminal: the stored text as it is


def test_templates_started_without_typer_gives_the_same_output(tmp_path, monkeypatch, capsys):
    """``backline logs templates`` parses its options itself (``cli.main``'s fast path):
    the same table and per-line CSV as the Typer command; errors exit 2 with the same
    message; help and malformed options are left to Typer."""
    from backline import cli
    from backline.commands.logs import fast_templates

    a, _ = _two_logs(tmp_path)
    typer_csv, fast_csv = tmp_path / "typer.csv", tmp_path / "fast.csv"
    r = runner.invoke(app, ["logs", "templates", str(a), "--per-line", str(typer_csv), "--top", "5"])
    assert r.exit_code == 0, r.output
    monkeypatch.setattr("sys.argv", ["backline", "logs", "templates", "--top", "5", str(a),
                                     "--per-line", str(fast_csv)])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    assert code == 0, out.err
    assert fast_csv.read_bytes() == typer_csv.read_bytes()
    assert [ln for ln in out.out.splitlines() if "alpha" in ln] == [ln for ln in r.stdout.splitlines()
                                                                   if "alpha" in ln]
    assert fast_templates([str(tmp_path / "missing.log")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert fast_templates([str(a), "--tz", "Not/AZone"]) == 2
    assert fast_templates(["--help"]) is None
    assert fast_templates([str(a), "--top", "many"]) is None
    assert fast_templates([]) is None

"""Awkward files and folders on disk: FIFOs, dangling and looping links, zero-byte and
binary files named like logs, names that are not UTF-8, report folders that cannot be written.

Tests run as root, so unreadable files are made with FIFOs and dangling links, and
unwritable folders with paths under a regular file or in /proc.
Real ``backline`` processes are used where argv bytes and stdout encoding matter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backline.cli import app

from . import mutate as m

LOG = (b"2024-05-01T10:00:00Z INFO service starting\n"
       b"2024-05-01T10:00:01Z ERROR connection to db-01:5432 refused\n"
       b"2024-05-01T10:00:02Z ERROR connection to db-01:5432 refused\n")


def backline(*args: str | bytes, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the real command (``python -m``-free: the console entry point of this venv)."""
    exe = Path(sys.executable).with_name("backline")
    return subprocess.run([os.fsencode(exe), *[a if isinstance(a, bytes) else a.encode() for a in args]],
                          capture_output=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert b"Traceback (most recent call last)" not in proc.stderr, proc.stderr.decode("utf-8", "replace")
    assert b"Traceback (most recent call last)" not in proc.stdout[:100_000]


@pytest.fixture()
def awkward(tmp_path) -> Path:
    d = tmp_path / "evidence"
    d.mkdir()
    (d / "app.log").write_bytes(LOG)
    os.mkfifo(d / "pipe.log")
    (d / "dangling.log").symlink_to(tmp_path / "nowhere")
    (d / "sub").mkdir()
    (d / "sub" / "loop").symlink_to("..")
    (d / "empty.log").write_bytes(b"")
    (d / "binary.log").write_bytes(bytes(range(256)) * 40)
    return d


def test_folder_with_fifo_links_empty_and_binary(awkward):
    out = m.run_analyze(awkward)
    assert out.code == 0
    arts = {a["path"]: a for a in out.doc["artifacts"]}
    ref = {r["path"]: r["reason"] for r in out.doc["refusals"]}
    assert any(r["status"] == "ok" for r in arts["evidence/app.log"]["runs"])
    assert "FIFO" in ref["evidence/pipe.log"]
    assert "not followed" in ref["evidence/dangling.log"]
    assert "not followed" in ref["evidence/sub/loop"]
    empty = arts["evidence/empty.log"]
    assert empty["problems"] == ["zero-byte file"]
    # regression: the skip reason said only "no analyzer for kind 'text_log'"
    assert all(r["status"] == "skipped" and "zero-byte" in r["reason"] for r in empty["runs"])
    binary = arts["evidence/binary.log"]
    # regression: a binary file named .log was listed without a word
    assert any("binary content" in x for x in binary["problems"])
    assert all("binary content" in r["reason"] for r in binary["runs"])


@pytest.mark.parametrize("which, words", [("pipe.log", ("FIFO",)), ("dangling.log", ("cannot read",)),
                                          ("empty.log", ("zero-byte",))])
def test_one_unreadable_file_alone(awkward, which, words):
    out = m.run_analyze(awkward / which)
    assert out.code == 2
    line = " ".join(out.stderr.split())
    assert which in line and all(w in line for w in words), line   # regression: the reason is named


def test_fifo_is_never_opened(awkward):
    """A FIFO with no writer would block a reader forever: the command must return."""
    proc = backline("analyze", str(awkward / "pipe.log"), "-q", timeout=30)
    assert proc.returncode == 2
    _no_traceback(proc)
    proc = backline("dump", str(awkward / "pipe.log"), timeout=30)
    assert proc.returncode == 2 and proc.stderr.startswith(b"error:")
    _no_traceback(proc)


def test_empty_folder(tmp_path):
    (tmp_path / "nothing").mkdir()
    out = m.run_analyze(tmp_path / "nothing")
    assert out.code == 2 and "nothing readable" in out.stderr


def test_non_utf8_path_gives_utf8_reports(tmp_path):
    """Regression: a path with a 0xFF byte was written raw into the JSON on stdout
    (invalid UTF-8) and into report.json."""
    folder = os.fsencode(tmp_path) + b"/ev\xffidence"
    os.mkdir(folder)
    with open(folder + b"/caf\xe9.log", "wb") as f:
        f.write(LOG)
    proc = backline("analyze", folder, "-f", "json", "-q", "-j", "1", "--no-store")
    _no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.decode("utf-8"))             # strict: raises on raw bytes
    assert doc["inputs"][0].endswith("ev\\xffidence")
    assert [a["path"] for a in doc["artifacts"]] == ["ev\\xffidence/caf\\xe9.log"]
    assert any("not valid UTF-8" in p for p in doc["artifacts"][0]["problems"])

    out = tmp_path / "report"
    proc = backline("analyze", folder, "--out", str(out), "-q", "-j", "1", "--no-store")
    _no_traceback(proc)
    assert proc.returncode == 0
    for name in ("report.json", "report.md", "report.html"):
        (out / name).read_bytes().decode("utf-8")
    assert "\\xff" in json.loads((out / "report.json").read_text("utf-8"))["inputs"][0]

    proc = backline("inventory", folder, "-f", "json")
    _no_traceback(proc)
    assert "ev\\xffidence" in json.loads(proc.stdout.decode("utf-8"))["inputs"][0]

    proc = backline("analyze", os.fsencode(tmp_path) + b"/missing\xfe.log", "-q")
    assert proc.returncode == 2 and b"missing\\xfe.log" in proc.stderr


def test_report_folder_under_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    res = CliRunner().invoke(app, ["analyze", str(log), "--out", str(blocker / "report"), "-q"])
    m.check_no_crash(res)
    assert res.exit_code == 2
    assert "cannot create the report folder" in res.stderr and str(blocker) in " ".join(res.stderr.split())
    assert res.stdout == ""          # checked before the analysis: nothing was analysed


def test_report_file_that_cannot_be_written(tmp_path):
    """Regression: a StorageError from writing report.json escaped as a traceback."""
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    out = tmp_path / "report"
    (out / "report.json").mkdir(parents=True)       # a folder where the file must go
    res = CliRunner().invoke(app, ["analyze", str(log), "--out", str(out), "-f", "json", "-q"])
    m.check_no_crash(res)
    assert res.exit_code == 2
    assert res.stderr.startswith("error:") and "report.json" in res.stderr


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc for a folder nobody can write")
def test_report_folder_not_writable_is_found_before_analysis(tmp_path):
    """Regression: the analysis ran first and the failure to write came as a traceback."""
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    proc = backline("analyze", str(log), "--out", "/proc/self", "-q")
    _no_traceback(proc)
    assert proc.returncode == 2
    assert proc.stderr.startswith(b"error: cannot write into the report folder /proc/self")
    assert proc.stdout == b""


@pytest.mark.parametrize("target", ["folder", "dangling", "missing"])
def test_dump_of_something_that_is_not_a_file(tmp_path, target):
    p = tmp_path / target
    if target == "folder":
        p.mkdir()
    elif target == "dangling":
        p.symlink_to(tmp_path / "gone")
    res = CliRunner().invoke(app, ["dump", str(p)])
    m.check_no_crash(res)
    assert res.exit_code == 2 and res.stderr.startswith("error:") and target in res.stderr


def test_names_that_look_like_rich_markup(tmp_path):
    """Regression: ``x[/].log`` in an error message was read as Rich markup and crashed
    (MarkupError traceback) in analyze and inventory."""
    odd = tmp_path / "case[" / "]" / "[bold]app.log"
    odd.parent.mkdir(parents=True)
    odd.write_bytes(LOG)
    out = m.run_analyze(tmp_path / "case[")
    assert out.code == 0 and [a["path"] for a in out.doc["artifacts"]] == ["case[/]/[bold]app.log"]
    for cmd in (["analyze", str(tmp_path / "case[" / "]" / "gone.log")],
                ["inventory", str(tmp_path / "case[" / "]" / "gone.log")],
                ["analyze", str(tmp_path / "case["), "--out", str(odd / "x")]):
        res = CliRunner().invoke(app, cmd)
        m.check_no_crash(res)
        assert res.exit_code == 2
        assert "case[/]" in res.stderr, res.stderr


def test_error_is_one_line_however_long_the_path(tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 8)
    deep.mkdir(parents=True)
    for cmd in ("analyze", "inventory"):
        res = CliRunner().invoke(app, [cmd, str(deep)])
        m.check_no_crash(res)
        assert res.exit_code == 2
        assert res.stderr.count("\n") == 1 and str(deep) in res.stderr, res.stderr


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_work_dir_that_cannot_be_made(tmp_path, where):
    """Regression: ``--work-dir`` on a file ended in a FileExistsError traceback."""
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    work = blocker if where == "a file" else blocker / "work"
    res = CliRunner().invoke(app, ["analyze", str(log), "--work-dir", str(work), "-q"])
    m.check_no_crash(res)
    assert res.exit_code == 2 and res.stderr.startswith("error: cannot create the work folder")


def test_evidence_store_not_writable(tmp_path, monkeypatch):
    """Regression: an unusable BACKLINE_HOME made every evidence file 'unreadable'."""
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("BACKLINE_HOME", str(blocker))
    res = CliRunner().invoke(app, ["analyze", str(log), "-q"])
    m.check_no_crash(res)
    assert res.exit_code == 2
    assert "evidence store" in res.stderr and "--no-store" in res.stderr
    assert "unreadable" not in res.stderr
    # --no-store still works
    res = CliRunner().invoke(app, ["analyze", str(log), "-q", "--no-store", "-f", "json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["artifacts"][0]["status"] == "analyzed"


def test_evidence_store_failing_during_intake(tmp_path, monkeypatch):
    """The store's root is writable but storing fails (here: its tmp folder is a file;
    in life: a full disk).  One clear error about the store, not 'file unreadable'."""
    home = tmp_path / "home"
    (home / "blobs").mkdir(parents=True)
    (home / "blobs" / "tmp").write_text("in the way")
    monkeypatch.setenv("BACKLINE_HOME", str(home))
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    res = CliRunner().invoke(app, ["analyze", str(log), "-q"])
    m.check_no_crash(res)
    assert res.exit_code == 2
    assert "cannot store evidence in" in res.stderr and "app.log" in res.stderr

"""The session: parsing WinDbg's spellings, several targets, errors that never end a session,
every command on every corpus dump without a traceback, and the `backline dbg` command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from backline.cli import app
from backline.debugger.expr import Evaluator, parse_number
from backline.debugger.session import Session, command_table
from backline.debugger.target import open_target
from backline.errors import BacklineError, UsageError

from analyzers.dumps.minidump.conftest import oracle_dumps, symbols_dir

runner = CliRunner()

EVERY_COMMAND = ("|; lm; lmv m *; ~; ~#s; ~*k; ~*kv; ~0 kb; k 3; kb; kv; .frame 1; r; .ecxr; r; .exr -1; "
                 "!analyze -v; u; ub; uf @$ip; db @$csp; dw @$csp; dd @$csp L8; dq @$csp; dp @$csp; "
                 "dps @$csp; da @$csp; du @$csp; db; s -a @$csp L100 \"a\"; s -b @$csp L100 00; !address @$csp; "
                 "!address; !runaway; !handle; !locks; !cs; x *!main; ln @$ip; .time; vertarget; .help; "
                 "db 0 L10; u 0; ub 0; uf 0; !address 0; ln 0; ~99s; .frame 999; r nosuchreg; zzz; q")


@pytest.fixture
def minidump2(corpus):
    d = corpus / "dumps/breakpad"
    s = Session([open_target(d / "minidump2.dmp", symbols=[d / "symbols"])])
    yield s
    s.close()


def test_parse_numbers_and_expressions():
    assert parse_number("0n42") == 42 and parse_number("2a") == 42 and parse_number("0y101") == 5
    with pytest.raises(UsageError):
        parse_number("xyz")
    ev = Evaluator(registers={"rsp": 0x1000, "rip": 0x4000}, ptr_size=8,
                   read_pointer=lambda a: 0x1234 if a == 0x1008 else None)
    assert ev.eval("poi(@rsp+8)") == 0x1234
    assert ev.eval("@$ip - 0x10") == 0x3FF0
    with pytest.raises(UsageError, match="not in the dump"):
        ev.eval("poi(0)")


@pytest.mark.parametrize("dmp", [d for d, _ in oracle_dumps()][:40], ids=lambda d: f"{d.parent.name}/{d.stem}")
def test_every_command_on_every_dump_gives_a_result_not_a_traceback(dmp):
    try:
        t = open_target(dmp, symbols=[symbols_dir(dmp)])
    except BacklineError:
        return                                  # the deliberately broken dumps: refused with an error
    s = Session([t])
    try:
        results = s.execute(EVERY_COMMAND)
    finally:
        s.close()
    assert results[-1].command == "q" and results[-1].quit
    by = {r.command: r for r in results}
    assert by["zzz"].error.startswith("unknown command")
    assert by["~s"].error is None or "does not exist" in by["~s"].error
    for r in results:
        assert r.error is None or len(r.error.splitlines()) == 1, r.error
        assert not (r.error or "").startswith("internal error"), r.error
        json.dumps(r.to_json(), default=str)


def test_several_targets(corpus):
    a = corpus / "dumps/breakpad/minidump2.dmp"
    b = corpus / "dumps/rust-minidump/linux-mini.dmp"
    s = Session([open_target(a, symbols=[a.parent / "symbols"]), open_target(b)])
    try:
        r = s.run("|")
        assert [t["name"] for t in r.data["targets"]] == ["minidump2.dmp", "linux-mini.dmp"]
        assert s.run("|1 s").error is None and s.current == 1
        assert s.target.name == "linux-mini.dmp"
        assert s.run("|7 s").error.startswith("target 7 does not exist")
        assert s.run("|0s").error is None and s.target.name == "minidump2.dmp"
    finally:
        s.close()


def test_scope_commands(minidump2):
    s = minidump2
    assert s.run(".frame 1").data["frame"]["function"] == "main"
    assert s.run("r").data["registers"]["eip"] == 0x404200          # unwound: the return address
    assert s.run(".ecxr").data["registers"]["eip"] == 0x40429E      # the exception context
    exr = s.run(".exr -1").data
    assert exr["code"] == 0xC0000005 and exr["parameters"] == [1, 0x45]
    assert "Attempt to write to address" in s.run(".exr -1").text
    x = s.run("x test_app!*Crash*").data["symbols"]
    assert [h["name"] for h in x] == ["`anonymous namespace'::CrashFunction"]
    ln = s.run("ln 0040429e").data
    assert ln["below"]["name"].endswith("CrashFunction") and ln["below"]["address"] == 0x404290
    dps = s.run("dps @esp L4").data["values"]
    assert dps[2]["symbol"] == "test_app!main+0x50"


def test_commands_in_a_named_thread_do_not_switch(minidump2):
    s = minidump2
    before = s.thread_index
    r = s.run("~1 k")
    assert r.error is None and r.data["thread"] == 1
    assert s.thread_index == before


def test_cli_runs_commands_and_exits(corpus):
    d = corpus / "dumps/breakpad"
    r = runner.invoke(app, ["dbg", str(d / "minidump2.dmp"), "--symbols", str(d / "symbols"),
                            "-c", "lm; ~*k; !analyze -v; nope"])
    assert r.exit_code == 0, r.output
    assert "0:000> lm" in r.output and "test_app" in r.output
    assert "FAILURE_BUCKET_ID:  NULL_POINTER_WRITE_c0000005" in r.output
    assert "error: unknown command 'nope'" in r.output


def test_cli_json_is_one_object_per_command(corpus):
    d = corpus / "dumps/breakpad"
    r = runner.invoke(app, ["dbg", str(d / "minidump2.dmp"), "-c", "lm; ~; db @esp L10", "--json"])
    assert r.exit_code == 0, r.output
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["command"] for x in docs] == ["lm", "~", "db"]
    assert all(x["ok"] for x in docs) and docs[2]["data"]["bytes"][:4] == [0x45, 0, 0, 0]


def test_the_command_line_starts_without_typer(corpus):
    """`backline dbg -c` (scripts, bug reports) runs through the Typer-free fast path: same output,
    and Typer is never imported."""
    import subprocess
    import sys
    d = corpus / "dumps/breakpad"
    code = ("import sys; from backline.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n"
            "    print('TYPER', 'typer' in sys.modules, file=sys.stderr); raise")
    r = subprocess.run([sys.executable, "-c", code, "dbg", str(d / "minidump2.dmp"), "--symbols", str(d / "symbols"),
                        "-c", "k 1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0:000> k 1" in r.stdout and "CrashFunction" in r.stdout
    assert "TYPER False" in r.stderr


def test_cli_bad_target_exits_2(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"\x00\x01binary junk")
    r = runner.invoke(app, ["dbg", str(bad), "-c", "lm"])
    assert r.exit_code == 2 and "error:" in r.output
    r = runner.invoke(app, ["dbg", str(tmp_path / "missing.dmp"), "-c", "lm"])
    assert r.exit_code == 2 and "no such file" in r.output


def test_command_table_is_explicit_and_documented():
    table = command_table()
    for name in ("lm", "~", "~*", "k", "kb", "kv", ".frame", "r", ".ecxr", ".exr", "!analyze", "u", "ub", "uf",
                 "db", "dw", "dd", "dq", "dps", "da", "du", "s", "!address", "!runaway", "!handle", "!locks",
                 "!cs", "x", "ln", ".time", "vertarget", "q", "|"):
        assert name in table, name
        assert table[name].__doc__, f"{name} has no help line"

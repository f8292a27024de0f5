"""``backline dump``: text, JSON, options, and exit code 2 with a one-line error."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from backline.cli import app
from backline.commands.dump import classify
from backline.errors import BacklineError

runner = CliRunner()


def test_dump_text_with_symbols(corpus):
    d = corpus / "dumps/breakpad"
    r = runner.invoke(app, ["dump", str(d / "minidump2.dmp"), "--symbols", str(d / "symbols"), "--threads"])
    assert r.exit_code == 0, r.output
    assert "EXCEPTION_ACCESS_VIOLATION_WRITE" in r.output
    assert "NULL_POINTER_WRITE" in r.output and "CrashFunction" in r.output
    assert "Thread 1" in r.output


def test_dump_json_follows_rust_schema(corpus):
    d = corpus / "dumps/rust-minidump"
    r = runner.invoke(app, ["dump", str(d / "linux-mini.dmp"), "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    oracle = json.loads((d / "generated/linux-mini.nosym.rust.json").read_text())
    assert doc["crash_info"]["type"] == oracle["crash_info"]["type"] == "SIGSEGV"
    assert [f["module_offset"] for f in doc["crashing_thread"]["frames"]] == \
        [f["module_offset"] for f in oracle["crashing_thread"]["frames"]]
    assert doc["analysis"]["crashing_instruction"]["text"] == "mov dword ptr [0x45], 5"


def test_dump_disasm(corpus):
    r = runner.invoke(app, ["dump", str(corpus / "dumps/breakpad/write_av_non_canonical.dmp"), "--disasm"])
    assert r.exit_code == 0
    assert "mov qword ptr [rax + rcx], 0x41414141" in r.output
    assert "0xfefefefefefefefe" in r.output


@pytest.mark.parametrize("args,needle", [
    (["dump", "/nonexistent.dmp"], "no such file"),
    (["dump", "{broken}"], "exceeds file"),
    (["dump", "{dump}", "--symbols", "/nonexistent"], "not a folder"),
])
def test_errors_exit_2_with_one_line(corpus, args, needle):
    args = [a.replace("{broken}", str(corpus / "dumps/rust-minidump/invalid-range.dmp"))
             .replace("{dump}", str(corpus / "dumps/breakpad/minidump2.dmp")) for a in args]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


def test_classify(tmp_path, corpus):
    assert classify(corpus / "dumps/breakpad/minidump2.dmp") == "minidump"
    assert classify(corpus / "dumps/lldb/elf-core/linux-x86_64.core") == "elf_core"
    assert classify(corpus / "dumps/text/gen/java_caused_by.txt") == "text"
    with pytest.raises(BacklineError, match="not a core file"):
        classify(corpus / "dumps/lldb/elf-core/linux-x86_64.out")
    z = tmp_path / "z.bin"
    z.write_bytes(bytes(100))
    with pytest.raises(BacklineError, match="not a minidump"):
        classify(z)

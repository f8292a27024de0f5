"""`backline dbg` over real ELF cores (made by gcc + gdb in tests/core_programs.py), with gdb
itself as the oracle: every thread's stack, registers, memory and the faulting instruction."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from backline.analyzers.dumps.elfcore.analysis import clean_function
from backline.debugger.session import Session
from backline.debugger.target import open_target


def _session(b) -> Session:
    return Session([open_target(b.core, binaries=[b.exe.parent])])


def _gdb(b, *commands: str) -> str:
    args = [a for c in commands for a in ("-ex", c)]
    return subprocess.run(["gdb", "-q", "-batch", *args, str(b.exe), str(b.core)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "LC_ALL": "C"}).stdout


@pytest.mark.parametrize("name", ["null_deref", "abort_assert", "deadlock", "cpp_crash", "handler"])
def test_all_threads_stacks_equal_gdb(linux_cores, name):
    if name not in linux_cores:
        pytest.skip(f"{name} was not built: its compiler is missing (apt-get install g++)")
    b = linux_cores[name]
    s = _session(b)
    try:
        threads = s.run("~*k").data["threads"]
        assert {t["tid"] for t in threads} == set(b.gdb_threads)
        for t in threads:
            ours = [clean_function(f["function"]) or "??" for f in t["frames"]]
            gdb = [clean_function(n) or "??" for n in b.gdb_threads[t["tid"]].functions]
            assert ours[:len(gdb)] == gdb, f"thread {t['tid']}"
    finally:
        s.close()


def test_registers_memory_and_instruction_equal_gdb(linux_cores):
    b = linux_cores["null_deref"]
    out = _gdb(b, "info registers rip rsp rbp rax", "x/16xb $rsp", "x/i $pc")
    regs = {m[1]: int(m[2], 16) for m in re.finditer(r"^(rip|rsp|rbp|rax)\s+(0x[0-9a-f]+)", out, re.M)}
    gdb_bytes = [int(x, 16) for line in re.findall(r"^0x[0-9a-f]+.*?:\s+(.*)$", out, re.M)
                 for x in line.split() if x.startswith("0x")][:16]
    gdb_insn = re.search(r"=> 0x[0-9a-f]+ <[^>]+>:\s+(\S+)", out)
    s = _session(b)
    try:
        assert s.run(".ecxr").error is None
        r = s.run("r").data["registers"]
        assert {k: r[k] for k in regs} == regs
        db = s.run("db @rsp L0n16").data["bytes"]
        assert db == gdb_bytes and len(db) == 16
        u = s.run("u @rip L1").data["instructions"]
        assert gdb_insn and u and u[0]["text"].split()[0] == gdb_insn.group(1)
        assert u[0]["address"] == regs["rip"]
        # the caller frame's registers are the unwound ones: rsp grows, rip is the return address
        s.run(".frame 1")
        caller = s.run("r").data["registers"]
        assert caller["rsp"] > regs["rsp"]
        assert s.run("ln @rip").data["below"]["name"] == "process"
    finally:
        s.close()


def test_locks_show_the_deadlock_cycle(linux_cores):
    s = _session(linux_cores["deadlock"])
    try:
        r = s.run("!locks")
        assert r.error is None
        assert r.data["deadlocks"], r.text
        cycle = r.data["deadlocks"][0]
        assert len(cycle["threads"]) == 2 and len(cycle["resources"]) == 2
        owners = {x["resource"]: x["owner"] for x in r.data["locks"]}
        assert all(owners[res] in cycle["threads"] for res in cycle["resources"])
        assert "DEADLOCK" in r.text
        assert "DEADLOCK" in s.run("!analyze -v").text
    finally:
        s.close()


def test_symbols_and_disassembly_of_a_function(linux_cores):
    b = linux_cores["null_deref"]
    s = _session(b)
    try:
        x = s.run("x null_deref!*process*").data["symbols"]
        assert [h["name"] for h in x] == ["process"]
        uf = s.run("uf null_deref!main").data["instructions"]
        assert uf[0]["address"] == next(h["address"] for h in s.run("x null_deref!main").data["symbols"])
        assert any(i["target_symbol"] == "null_deref!process" for i in uf), "call targets carry symbols"
        assert uf[-1]["text"].startswith("ret")
    finally:
        s.close()


@pytest.mark.parametrize("name", ["null_deref", "abort_assert", "deadlock", "stack_overflow"])
def test_every_command_on_a_core_gives_a_result(linux_cores, name):
    from test_session import EVERY_COMMAND
    s = _session(linux_cores[name])
    try:
        results = s.execute(EVERY_COMMAND)
    finally:
        s.close()
    assert results[-1].quit
    for r in results:
        assert not (r.error or "").startswith("internal error"), r.error

"""Frame views of minidumps against rust-minidump's reading of the same dumps."""

from __future__ import annotations

import json
import re

from backline.cases.drill.dumps import frame_view, open_crash


def _norm(text: str) -> list[object]:
    """Instruction text without the syntax differences (``dword ptr`` / ``dword``, ``* 1``, 5 / 0x5)."""
    text = text.replace(" ptr", "").replace(" * 1]", "]")
    return [int(t, 0) if re.fullmatch(r"-?(0x[0-9a-f]+|\d+)", t) else t for t in re.findall(r"-?\w+|\S", text)]


def test_faulting_instruction_agrees_with_rust_minidump(corpus):
    checked = 0
    for oracle in sorted((corpus / "dumps/breakpad/generated").glob("*.rust.json")):
        if ".nosym." in oracle.name:
            continue
        want = json.loads(oracle.read_text())["crash_info"].get("instruction")
        dmp = corpus / "dumps/breakpad" / oracle.name.replace(".rust.json", ".dmp")
        if not want or not dmp.exists():
            continue
        with open_crash(dmp, "minidump", "", dmp.name) as (rep, read):
            body = frame_view(rep, read, None, 0)
        this = [i for i in body["disassembly"] if i["this"]]
        assert len(this) == 1 and _norm(this[0]["text"]) == _norm(want), (dmp.name, this, want)
        ip = int(this[0]["address"], 16)
        assert sum(int(i["address"], 16) < ip for i in body["disassembly"]) >= 4, dmp.name   # context before
        checked += 1
    assert checked >= 12


def test_a_dump_without_code_bytes_says_so(corpus):
    dmp = corpus / "dumps/breakpad/linux_jmp_to_0.dmp"
    with open_crash(dmp, "minidump", "", dmp.name) as (rep, read):
        body = frame_view(rep, read, None, 0)
    assert body["disassembly"] == [] and any("not in the dump" in n for n in body["notes"])

"""The crashing thread of every corpus minidump equals rust-minidump's and Breakpad's walk,
frame by frame, with the corpus symbols and without; crash reason and address equal.

Dumps are found by their oracles (``*/generated/X.rust.json``), so dumps added later are
checked too.  A dump whose rust-minidump output is empty (the tool refused it) is a
deliberately broken dump: Backline must refuse it with a clear error.
"""

from __future__ import annotations

import pytest

from backline.analyzers.dumps.minidump.process import process_minidump
from backline.analyzers.dumps.symbols import SymbolStore
from backline.errors import FormatError

from .conftest import load_json, oracle_dumps, symbols_dir

ALL = oracle_dumps()
BROKEN = [(d, g) for d, g in ALL if load_json(g / f"{d.stem}.rust.json") is None]
DUMPS = [(d, g) for d, g in ALL if (d, g) not in BROKEN]


def _cases(suffix: str) -> list:
    """(dump, oracle file, nosym) for every dump that has this oracle, with and without symbols."""
    out = []
    for d, g in DUMPS:
        for nosym in (False, True):
            f = g / f"{d.stem}{'.nosym' if nosym else ''}{suffix}"
            if f.exists():
                out.append(pytest.param(d, f, nosym, id=f"{d.parent.name}/{d.stem}{'.nosym' if nosym else ''}"))
    return out


def _ours(dmp, nosym):
    syms = [] if nosym else [symbols_dir(dmp)]
    return process_minidump(dmp, syms, store=SymbolStore(syms))


def _rust_frames(oracle):
    ct = oracle.get("crashing_thread") or {"frames": oracle["threads"][0]["frames"]}
    out = []
    for f in ct["frames"]:
        if f["module"] is None:
            out.append((None, int(f["offset"], 16)))
        elif f["function"]:
            out.append((f["module"], f["function"]))
        else:
            out.append((f["module"], int(f["module_offset"], 16)))
    return out


def _our_frames(rep):
    th = rep.crashed_thread or rep.threads[0]
    out = []
    for f in th.frames:
        if f.module is None:
            out.append((None, f.instruction))
        elif f.function:
            out.append((f.module, f.function))
        else:
            out.append((f.module, f.module_offset))
    return out


def test_corpus_has_oracles():
    assert len(DUMPS) >= 30
    assert {"invalid-range", "invalid-record-count"} <= {d.stem for d, _ in BROKEN}


@pytest.mark.parametrize("dmp,js,nosym", _cases(".rust.json"))
def test_crashing_thread_equals_rust_minidump(dmp, js, nosym):
    oracle = load_json(js)
    assert oracle is not None, js
    rep = _ours(dmp, nosym)
    assert _our_frames(rep) == _rust_frames(oracle)
    th = rep.crashed_thread or rep.threads[0]
    ct = oracle.get("crashing_thread") or {"frames": oracle["threads"][0]["frames"]}
    assert [f.trust for f in th.frames] == [f["trust"] for f in ct["frames"]]


@pytest.mark.parametrize("dmp,mr,nosym", _cases(".breakpad.mr.txt"))
def test_crashing_thread_equals_breakpad(dmp, mr, nosym):
    lines = mr.read_text().splitlines()
    crash = next(l for l in lines if l.startswith("Crash|")).split("|")
    tid = crash[3] if len(crash) > 3 and crash[3] else "0"
    expected = []
    for line in lines:
        p = line.split("|")
        if len(p) == 7 and p[0] == tid and p[1].isdigit():
            expected.append((p[2] or None, p[3] or int(p[6], 16)))
    rep = _ours(dmp, nosym)
    th = rep.crashed_thread or rep.threads[0]
    got = []
    for f in th.frames:
        # Breakpad prints, for callers without symbols, the offset of the return address
        bump = 0 if f.index == 0 else 1
        if f.module is None:
            got.append((None, f.instruction + bump))
        else:
            got.append((f.module, f.function or f.module_offset + bump))
    assert got == expected


@pytest.mark.parametrize("dmp,gen", DUMPS, ids=[f"{d.parent.name}/{d.stem}" for d, _ in DUMPS])
def test_crash_reason_and_address(dmp, gen):
    oracle = load_json(gen / f"{dmp.stem}.rust.json")
    rep = _ours(dmp, nosym=True)
    ci = oracle.get("crash_info") or {}
    if ci.get("type") is None:
        assert rep.exception is None
        return
    assert rep.exception.type == ci["type"]
    assert rep.exception.address == int(ci["address"], 16)
    assert rep.crashing_thread == ci["crashing_thread"]
    assert rep.os == oracle["system_info"]["os"]
    assert rep.cpu == oracle["system_info"]["cpu_arch"]
    assert len(rep.threads) == oracle["thread_count"]


@pytest.mark.parametrize("dmp,gen", BROKEN, ids=[d.stem for d, _ in BROKEN])
def test_broken_dumps_rejected(dmp, gen):
    with pytest.raises(FormatError) as err:
        process_minidump(dmp)
    assert str(err.value).startswith(f"{dmp.name} ")            # names the file and the place


def test_modules_match_rust(corpus):
    d = corpus / "dumps/breakpad"
    oracle = load_json(d / "generated/minidump2.rust.json")
    rep = _ours(d / "minidump2.dmp", nosym=False)
    loaded = [m for m in rep.modules if not m.unloaded]
    assert [m.name for m in loaded] == [m["filename"] for m in oracle["modules"]]
    assert [m.debug_id for m in loaded] == [m["debug_id"] for m in oracle["modules"]]
    assert [m.base for m in loaded] == [int(m["base_addr"], 16) for m in oracle["modules"]]
    assert [m.symbols_loaded for m in loaded] == [m["loaded_symbols"] for m in oracle["modules"]]

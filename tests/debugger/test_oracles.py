"""`backline dbg` over every corpus minidump against rust-minidump's output (the oracle), and its
memory commands against the dump's raw memory list (read here with a separate, minimal reader).

``lm`` equals rust-minidump's module list, ``~`` its thread list, ``~*k`` its frames for every
thread (module, function or offset, trust), ``r`` the crashing thread's context registers.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from backline.debugger.session import Session
from backline.debugger.target import open_target

from analyzers.dumps.minidump.conftest import load_json, oracle_dumps, symbols_dir

CASES = []
for _dmp, _gen in oracle_dumps():
    for _nosym in (False, True):
        _js = _gen / f"{_dmp.stem}{'.nosym' if _nosym else ''}.rust.json"
        if _js.exists() and load_json(_js) is not None:
            CASES.append(pytest.param(_dmp, _js, _nosym, id=f"{_dmp.parent.name}/{_dmp.stem}{'.nosym' if _nosym else ''}"))


def _session(dmp: Path, nosym: bool) -> Session:
    return Session([open_target(dmp, symbols=[] if nosym else [symbols_dir(dmp)])])


def _frame_key(module, function, module_offset, address, trust):
    return (module, function if function else (module_offset if module else address), trust)


def test_every_oracle_dump_is_covered():
    assert len(CASES) >= 60


@pytest.mark.parametrize("dmp,js,nosym", CASES)
def test_session_equals_rust_minidump(dmp, js, nosym):
    oracle = load_json(js)
    s = _session(dmp, nosym)
    try:
        lm = s.run("lm").data["modules"]
        assert [(m["name"], m["base"], m["base"] + m["size"], m["debug_id"], m["version"]) for m in lm] == \
            [(m["filename"], int(m["base_addr"], 16), int(m["end_addr"], 16), m["debug_id"], m["version"])
             for m in oracle["modules"]]
        assert [t["tid"] for t in s.run("~").data["threads"]] == [t["thread_id"] for t in oracle["threads"]]
        ours = s.run("~*k").data["threads"]
        assert len(ours) == len(oracle["threads"])
        for i, (a, b) in enumerate(zip(ours, oracle["threads"])):
            mine = [_frame_key(f["module"], f["function"], f["module_offset"], f["instruction"], f["trust"])
                    for f in a["frames"]]
            theirs = [_frame_key(f["module"], f["function"],
                                 int(f["module_offset"], 16) if f["module"] else None, int(f["offset"], 16),
                                 f["trust"]) for f in b["frames"]]
            assert mine == theirs, f"thread {i}"
        crash = (oracle.get("crash_info") or {}).get("crashing_thread")
        if crash is not None and oracle.get("crashing_thread"):
            want = {k: int(v, 16) for k, v in (oracle["crashing_thread"]["frames"][0].get("registers") or {}).items()}
            assert s.run(f"~{crash}s").error is None
            got = s.run("r").data["registers"]
            assert {k: got.get(k) for k in want} == want
    finally:
        s.close()


def _raw_memory(path: Path) -> list[tuple[int, bytes]]:
    """(address, bytes) of every range of the MemoryList (5) and Memory64List (9) streams."""
    data = path.read_bytes()
    _sig, _ver, nstreams, dir_rva = struct.unpack_from("<IIII", data, 0)
    out = []
    for i in range(nstreams):
        typ, size, rva = struct.unpack_from("<III", data, dir_rva + 12 * i)
        if typ == 5:
            (n,) = struct.unpack_from("<I", data, rva)
            for k in range(n):
                start, dsize, drva = struct.unpack_from("<QII", data, rva + 4 + 16 * k)
                out.append((start, data[drva:drva + dsize]))
        elif typ == 9:
            n, base = struct.unpack_from("<QQ", data, rva)
            for k in range(n):
                start, dsize = struct.unpack_from("<QQ", data, rva + 16 + 16 * k)
                out.append((start, data[base:base + dsize]))
                base += dsize
    return out


MEMORY_DUMPS = sorted({p.values[0] for p in CASES}, key=str)


@pytest.mark.parametrize("dmp", MEMORY_DUMPS, ids=[f"{d.parent.name}/{d.stem}" for d in MEMORY_DUMPS])
def test_memory_commands_return_the_dumps_bytes(dmp):
    ranges = [(a, b) for a, b in _raw_memory(dmp) if b]
    if not ranges:
        pytest.skip(f"{dmp.name} holds no memory ranges")      # microdumps keep memory in text form
    s = Session([open_target(dmp)])
    rnd = random.Random(dmp.name)
    try:
        for start, blob in rnd.sample(ranges, min(8, len(ranges))):
            off = rnd.randrange(0, len(blob))
            n = min(64, len(blob) - off)
            got = s.run(f"db {start + off:#x} L0n{n}").data["bytes"]
            assert got == list(blob[off:off + n])
            q = s.run(f"dq {start + off:#x} L1").data["bytes"]
            want = list(blob[off:off + 8]) + [None] * (8 - len(blob[off:off + 8]))
            covered = [b for b in want]
            # bytes past this range may be in the next range: only check what this range holds
            assert q[:len(blob[off:off + 8])] == covered[:len(blob[off:off + 8])]
        # an address in no range reads as missing, never as an error
        hole = max(a + len(b) for a, b in ranges) + 0x10000
        if not any(a <= hole < a + len(b) for a, b in ranges):
            r = s.run(f"db {hole:#x} L10")
            assert r.error is None and r.data["missing"] == 0x10 and "??" in r.text
    finally:
        s.close()

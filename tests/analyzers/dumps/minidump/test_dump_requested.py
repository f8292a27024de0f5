"""A Linux minidump written on request, without a crash (Breakpad ``DUMP_REQUESTED``).

Breakpad's Linux writer puts exception code 0xFFFFFFFF
(``MD_EXCEPTION_CODE_LIN_DUMP_REQUESTED``) in the exception stream when a program
asks for a dump of itself; rust-minidump and Breakpad name the reason
``DUMP_REQUESTED``, not a number.  The evidence is made here from every corpus
Linux minidump whose exception stream is rewritten that way.  The oracle, run on
these rewritten dumps with rust-minidump ``minidump-stackwalk`` 0.25.0 (the corpus
tool), said: code 0xFFFFFFFF flags 0 -> ``DUMP_REQUESTED`` (address and crashing
thread unchanged); flags 5 -> ``DUMP_REQUESTED / 0x00000005``.
"""

from __future__ import annotations

import struct

import pytest

from backline.analyzers.dumps.minidump.process import process_minidump
from backline.analyzers.dumps.symbols import SymbolStore

from .conftest import load_json, oracle_dumps

EXCEPTION_STREAM = 6


def _linux_dumps():
    out = []
    for d, g in oracle_dumps():
        js = load_json(g / f"{d.stem}.rust.json")
        if js and (js.get("system_info") or {}).get("os") == "Linux" and (js.get("crash_info") or {}).get("type"):
            out.append(pytest.param(d, js, id=f"{d.parent.name}/{d.stem}"))
    return out


def _requested(src, dst, flags=0):
    b = bytearray(src.read_bytes())
    _sig, _ver, n, rva = struct.unpack_from("<IIII", b, 0)
    for i in range(n):
        stype, _size, off = struct.unpack_from("<III", b, rva + 12 * i)
        if stype == EXCEPTION_STREAM:
            struct.pack_into("<II", b, off + 8, 0xFFFFFFFF, flags)
            dst.write_bytes(bytes(b))
            return dst
    raise AssertionError(f"{src}: its oracle names a crash but the dump has no exception stream")


LINUX = _linux_dumps()


def test_there_are_linux_dumps_to_rewrite():
    assert len(LINUX) >= 3


@pytest.mark.parametrize("dmp,oracle", LINUX)
def test_dump_requested_is_named_like_rust_minidump(dmp, oracle, tmp_path):
    req = _requested(dmp, tmp_path / "requested.dmp")
    rep = process_minidump(req, [], store=SymbolStore([]))
    ci = oracle["crash_info"]
    assert rep.exception.type == "DUMP_REQUESTED"
    assert rep.exception.code == 0xFFFFFFFF
    # what is not the reason stays as the oracle of the original dump has it
    assert rep.exception.address == int(ci["address"], 16)
    assert rep.crashing_thread == ci["crashing_thread"]


def test_dump_requested_with_flags(tmp_path):
    dmp = LINUX[0].values[0]
    rep = process_minidump(_requested(dmp, tmp_path / "r.dmp", flags=5), [], store=SymbolStore([]))
    assert rep.exception.type == "DUMP_REQUESTED / 0x00000005"
    assert "0xffffffff" not in rep.exception.message.lower()

"""The JSON output follows rust-minidump's schema: every corpus dump compares field by field."""

from __future__ import annotations

import json

import pytest

from backline.analyzers.dumps.analysis import analyze_crash
from backline.analyzers.dumps.json_out import report_to_json
from backline.analyzers.dumps.minidump.process import process_minidump
from backline.analyzers.dumps.symbols import SymbolStore
from backline.testing import corpus_dir

FRAME_KEYS = ("file", "frame", "function", "function_offset", "line", "module", "module_offset",
              "offset", "trust", "missing_symbols", "inlines", "unloaded_modules")
MODULE_KEYS = ("filename", "base_addr", "end_addr", "debug_id", "debug_file", "loaded_symbols",
               "code_id", "version")
SYSTEM_KEYS = ("os", "os_ver", "cpu_arch", "cpu_info", "cpu_count")


def _cases():
    out = []
    for js in sorted((corpus_dir() / "dumps").glob("**/generated/*.rust.json")):
        stem = js.name[: -len(".rust.json")]
        nosym = stem.endswith(".nosym")
        name = stem[: -len(".nosym")] if nosym else stem
        dmp = js.parent.parent / f"{name}.dmp"
        try:
            oracle = json.loads(js.read_text())
        except ValueError:
            continue          # the broken dumps: rust-minidump wrote no JSON
        out.append(pytest.param(dmp, oracle, nosym, id=f"{name}{'.nosym' if nosym else ''}"))
    return out


@pytest.mark.parametrize("dmp,oracle,nosym", _cases())
def test_json_matches_rust_minidump(dmp, oracle, nosym):
    syms = [] if nosym else [dmp.parent / "symbols"]
    doc = report_to_json(analyze_crash(process_minidump(dmp, syms, store=SymbolStore(syms))))
    json.dumps(doc)                                   # serialisable
    assert doc["crash_info"]["type"] == oracle["crash_info"]["type"]
    assert doc["crash_info"]["address"] == oracle["crash_info"]["address"]
    assert doc["pid"] == oracle["pid"] and doc["thread_count"] == oracle["thread_count"]
    assert {k: doc["system_info"][k] for k in SYSTEM_KEYS} == {k: oracle["system_info"][k] for k in SYSTEM_KEYS}
    assert [{k: m[k] for k in MODULE_KEYS} for m in doc["modules"]] == \
        [{k: m[k] for k in MODULE_KEYS} for m in oracle["modules"]]
    assert doc["unloaded_modules"] == oracle["unloaded_modules"]
    if oracle.get("crashing_thread"):
        ours, theirs = doc["crashing_thread"]["frames"], oracle["crashing_thread"]["frames"]
        assert [{k: f[k] for k in FRAME_KEYS} for f in ours] == [{k: f[k] for k in FRAME_KEYS} for f in theirs]
        assert ours[0].get("registers") == theirs[0].get("registers")
    key = lambda f: (f["module"], f["function"], f["module_offset"] if f["module"] else f["offset"])
    assert [[key(f) for f in t["frames"]] for t in doc["threads"]] == \
        [[key(f) for f in t["frames"]] for t in oracle["threads"]]
    assert [t["thread_name"] for t in doc["threads"]] == [t["thread_name"] for t in oracle["threads"]]
    assert doc["analysis"]["signature"] and doc["analysis"]["problem_class"]


def _access_cases():
    out = []
    for js in sorted((corpus_dir() / "dumps").glob("**/generated/*.rust.json")):
        if ".nosym." in js.name:
            continue
        try:
            oracle = json.loads(js.read_text())
        except ValueError:
            continue
        ci = oracle.get("crash_info") or {}
        if ci.get("memory_accesses") is not None:
            dmp = js.parent.parent / (js.name[: -len(".rust.json")] + ".dmp")
            out.append(pytest.param(dmp, ci, id=dmp.stem))
    return out


@pytest.mark.parametrize("dmp,crash_info", _access_cases())
def test_memory_accesses_of_the_faulting_instruction_match(dmp, crash_info):
    """Effective address and size from capstone + registers equal rust-minidump's analysis;
    the access type too wherever rust-minidump states one; so does the adjusted address."""
    accesses = crash_info["memory_accesses"]
    doc = report_to_json(analyze_crash(process_minidump(dmp)))["crash_info"]
    assert doc["adjusted_address"] == crash_info["adjusted_address"]
    ours = doc["memory_accesses"]
    assert [(a["address"], a["size"]) for a in ours] == [(a["address"], a["size"]) for a in accesses]
    for a, b in zip(ours, accesses):
        if "access_type" in b:
            assert a["access_type"] == b["access_type"]

"""Ways to damage real evidence files, and a CLI runner that checks the promises.

Every mutation is deterministic (a fixed seed per name) so a failure can be
replayed; each returns new bytes and never touches the corpus file.

>>> truncate(b"abcdef", 0.5)
b'abc'
>>> zero_range(b"abcdef", 2, 2)
b'ab\\x00\\x00ef'
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from backline.cli import app

#: Names of ``backline.errors`` classes: a failed run whose reason starts with
#: one of these is a diagnosed input problem; anything else is a code bug.
DIAGNOSED = ("BacklineError", "FormatError", "TruncatedError", "AnalyzerError", "EvidenceError",
             "ArchiveError", "UnsafeArchiveEntry", "StorageError")


# ------------------------------------------------------------ byte mutations

def truncate(data: bytes, fraction: float) -> bytes:
    """The first ``fraction`` of ``data`` (at least one byte)."""
    return data[: max(1, int(len(data) * fraction))]


def zero_range(data: bytes, start: int, length: int) -> bytes:
    """``data`` with ``length`` bytes from ``start`` set to zero."""
    b = bytearray(data)
    b[start:start + length] = bytes(len(b[start:start + length]))
    return bytes(b)


def flip_bytes(data: bytes, seed: int, count: int = 24, within: int | None = None) -> bytes:
    """``count`` random bytes replaced (in the first ``within`` bytes when given)."""
    rng = random.Random(seed)
    b = bytearray(data)
    span = min(len(b), within or len(b))
    for _ in range(count):
        b[rng.randrange(span)] = rng.randrange(256)
    return bytes(b)


def splat_ints(data: bytes, seed: int, count: int = 12, within: int = 4096) -> bytes:
    """Aligned 32-bit fields in the header area set to extreme values (lengths, counts, offsets)."""
    rng = random.Random(seed)
    b = bytearray(data)
    span = max(4, min(len(b), within) - 4)
    for _ in range(count):
        at = rng.randrange(span) & ~3
        b[at:at + 4] = rng.choice((b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\xff\xff\xff\x7f",
                                   b"\x01\x00\x00\x00", b"\x00\x00\x00\x00"))
    return bytes(b)


def splice(head_of: bytes, body_of: bytes, head_len: int = 64) -> bytes:
    """The first ``head_len`` bytes of one file on the rest of another."""
    return head_of[:head_len] + body_of[head_len:]


# ------------------------------------------------------ minidump structure

@dataclass(frozen=True, slots=True)
class Stream:
    type: int
    size: int
    rva: int
    entry_offset: int      # where its directory entry is


def minidump_streams(data: bytes) -> list[Stream]:
    """The stream directory of a well-formed minidump."""
    count, dir_rva = struct.unpack_from("<II", data, 8)
    out = []
    for i in range(count):
        off = dir_rva + 12 * i
        st, size, rva = struct.unpack_from("<III", data, off)
        out.append(Stream(st, size, rva, off))
    return out


def md_set_header(data: bytes, *, count: int | None = None, dir_rva: int | None = None) -> bytes:
    b = bytearray(data)
    if count is not None:
        struct.pack_into("<I", b, 8, count)
    if dir_rva is not None:
        struct.pack_into("<I", b, 12, dir_rva)
    return bytes(b)


def md_streams_point_at_directory(data: bytes) -> bytes:
    """Every stream's data is the stream directory itself (self-reference)."""
    b = bytearray(data)
    dir_rva = struct.unpack_from("<I", data, 12)[0]
    for s in minidump_streams(data):
        struct.pack_into("<I", b, s.entry_offset + 8, dir_rva)
    return bytes(b)


def md_every_stream_is(data: bytes, stream_type: int) -> bytes:
    """Every directory entry claims the same stream type (duplicates)."""
    b = bytearray(data)
    for s in minidump_streams(data):
        struct.pack_into("<I", b, s.entry_offset, stream_type)
    return bytes(b)


def md_threads(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """(thread entry offset, stack start, stack size, stack rva, context rva) per thread."""
    out = []
    for s in minidump_streams(data):
        if s.type == 3:   # ThreadListStream
            (n,) = struct.unpack_from("<I", data, s.rva)
            for i in range(n):
                off = s.rva + 4 + 48 * i
                start, size, rva = struct.unpack_from("<QII", data, off + 24)
                _csize, crva = struct.unpack_from("<II", data, off + 40)
                out.append((off, start, size, rva, crva))
    return out


def md_cyclic_stacks(data: bytes, word: int = 8) -> bytes:
    """Every word of every thread's stack holds its own address, so a
    frame-pointer or scanning walk keeps finding the same frame."""
    b = bytearray(data)
    fmt = "<Q" if word == 8 else "<I"
    for _off, start, size, rva, _crva in md_threads(data):
        for i in range(0, size - word + 1, word):
            if rva + i + word <= len(b):
                struct.pack_into(fmt, b, rva + i, (start + i) & ((1 << (8 * word)) - 1))
    return bytes(b)


def md_stack_missing(data: bytes) -> bytes:
    """Every thread's stack memory points past the end of the file."""
    b = bytearray(data)
    for off, _start, _size, _rva, _crva in md_threads(data):
        struct.pack_into("<II", b, off + 32, 0x7FFFFFF0, len(data) + 4096)
    return bytes(b)


def md_context_is_header(data: bytes) -> bytes:
    """Every thread context points at the file header."""
    b = bytearray(data)
    for off, *_ in md_threads(data):
        struct.pack_into("<I", b, off + 44, 0)
    return bytes(b)


# ------------------------------------------------------------ CLI checks

def runner() -> CliRunner:
    return CliRunner()


@dataclass(frozen=True, slots=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    doc: dict | None


def run_analyze(path: Path | list[Path], *extra: str) -> Outcome:
    """``backline analyze PATH -f json -q -j 1 --no-store``, checked for the promises that
    hold whatever the input: no exception escapes, no traceback is printed, exit code is
    0/1/2, exit 2 comes with one ``error:`` line, and on success the JSON report lists
    every artifact with a status, and every failed run is a diagnosed input problem."""
    paths = [str(p) for p in (path if isinstance(path, list) else [path])]
    res = runner().invoke(app, ["analyze", *paths, "-f", "json", "-q", "-j", "1", "--no-store", *extra])
    check_no_crash(res)
    assert res.exit_code in (0, 1, 2), res.exit_code
    doc = None
    if res.exit_code == 2:
        assert res.stderr.startswith("error:"), res.stderr
    else:
        doc = json.loads(res.stdout)
        check_report(doc)
    return Outcome(res.exit_code, res.stdout, res.stderr, doc)


def run_dump(path: Path, *extra: str) -> Outcome:
    """``backline dump PATH --json``: exit 0 with a JSON document, or exit 2 with one
    ``error:`` line naming the file."""
    res = runner().invoke(app, ["dump", str(path), "--json", *extra])
    check_no_crash(res)
    assert res.exit_code in (0, 2), (res.exit_code, res.stderr)
    doc = None
    if res.exit_code == 2:
        assert res.stderr.startswith("error:") and path.name in res.stderr, res.stderr
    else:
        doc = json.loads(res.stdout)
    return Outcome(res.exit_code, res.stdout, res.stderr, doc)


def check_no_crash(res) -> None:
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback
        raise AssertionError("exception escaped the CLI:\n" + "".join(
            traceback.format_exception(res.exception)))
    assert "Traceback (most recent call last)" not in res.stderr, res.stderr
    assert "Traceback (most recent call last)" not in res.stdout[:100_000]


def check_report(doc: dict) -> None:
    """Every artifact has a status and runs; failed runs are diagnosed and name the artifact."""
    for art in doc["artifacts"]:
        assert art["status"], art["path"]
        if not art.get("known", True):
            # a row the report adds for findings of no artifact (case-level correlation)
            assert not art["runs"] and art["findings"], art
            continue
        assert art["runs"], f"{art['path']} has no run record"
        for run in art["runs"]:
            if run["status"] != "failed":
                continue
            assert run["reason"].startswith(DIAGNOSED), (
                f"{run['analyzer']} crashed on {art['path']}: {run['reason']}\n{run['traceback']}")
            assert not run["traceback"], run["traceback"]


#: Finding codes that say the evidence itself is damaged.
DAMAGE_CODES = ("DUMP.UNREADABLE", "DUMP.INCOMPLETE")


def flagged(doc: dict, name: str) -> bool:
    """True when the report says something is wrong with the artifact called ``name``:
    a problem, a failed run, a run warning, a damage finding, or a refusal."""
    if any(f["code"] in DAMAGE_CODES and f["artifact"].endswith(name) for f in doc["findings"]):
        return True
    for art in doc["artifacts"]:
        if not art["path"].endswith(name):
            continue
        if art["problems"] or any(r["status"] == "failed" or r["warnings"] for r in art["runs"]):
            return True
    return any(r["path"].endswith(name) for r in doc["refusals"])


# ------------------------------------------------------- ELF core structure

def elf_phdrs(data: bytes) -> list[tuple[int, int, int, int, int, int, int, int, int]]:
    """(header offset, p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align)
    of each program header of a little-endian ELF64 file."""
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return [(phoff + i * phentsize, *struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize))
            for i in range(phnum)]


def put(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``data`` with ``value`` packed at ``offset``."""
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def elf_core_damages(data: bytes) -> dict[str, bytes]:
    """Structural damage to an ELF64 core: header counts and sizes, notes, load segments."""
    ph = elf_phdrs(data)
    notes = [p for p in ph if p[1] == 4]
    loads = [p for p in ph if p[1] == 1]
    out = {
        "phnum-ffff": put(data, 0x38, "<H", 0xFFFF),
        "phentsize-1": put(data, 0x36, "<H", 1),
        "phoff-at-end": put(data, 0x20, "<Q", len(data) - 10),
    }
    if notes:
        n = notes[0]
        out["note-filesz-2^63"] = put(data, n[0] + 32, "<Q", 1 << 63)
        out["note-namesz-ffffffff"] = put(data, n[3], "<I", 0xFFFFFFFF)
        out["note-descsz-ffffffff"] = put(data, n[3] + 4, "<I", 0xFFFFFFFF)
        out["notes-zeroed"] = zero_range(data, n[3], n[6])
    at_header, huge, same = data, data, data
    for p in loads:
        at_header = put(at_header, p[0] + 8, "<Q", 0)
        huge = put(put(huge, p[0] + 40, "<Q", 1 << 62), p[0] + 32, "<Q", 1 << 62)
        same = put(same, p[0] + 16, "<Q", loads[0][4])
    out.update({"loads-at-header": at_header, "loads-2^62-bytes": huge, "loads-same-address": same})
    return out

"""7z, RAR and CAB archives: expanded through libarchive with the zip/tar defences.

The archives are made at test time with real tools: 7z with ``7z`` (Debian
``p7zip-full``) and with libarchive's own 7-Zip writer (for names the 7z tool will not
store: ``..``, absolute, duplicates), CAB with ``gcab`` (names patched in place for the
hostile ones; a CAB has no checksum over its file table).  RAR cannot be written by any
free tool (libarchive reads RAR but does not write it): the RAR 4 archives here are
built byte by byte from the format description (stored entries, CRC-16 headers), and
``7z l`` and ``bsdtar -t`` both read them, so they are real RAR as far as two
independent readers tell.  RAR compression cannot be produced here, so the ratio bomb
is tested on 7z and CAB only; RAR gets the size bomb.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from backline.evidence import IntakeLimits, collect
from backline.model.core import ArtifactKind as K

MiB = 1 << 20
LOG = b"2024-05-01T10:00:00Z INFO fine\n2024-05-01T10:00:01Z ERROR broken\n"

@pytest.fixture
def _7z():
    if not shutil.which("7z"):
        pytest.fail("7z is needed to make the hostile 7z archives (apt-get install p7zip-full; .ci/run does)")


@pytest.fixture
def _gcab():
    if not shutil.which("gcab"):
        pytest.fail("gcab is needed to make the hostile CAB archives (apt-get install gcab; .ci/run does)")


needs_7z = pytest.mark.usefixtures("_7z")
needs_gcab = pytest.mark.usefixtures("_gcab")


def _intake(tmp_path: Path, archive: Path, limits: IntakeLimits | None = None):
    work = tmp_path / "work"
    outside = {p for p in tmp_path.rglob("*") if work not in p.parents and p != work}
    intake = collect([archive], work, limits=limits, require_readable=False)
    after = {p for p in tmp_path.rglob("*") if work not in p.parents and p != work}
    assert after == outside, "something was written outside the work folder"
    return intake


def _reasons(intake) -> dict[str, str]:
    return {r.path.split("!/", 1)[-1]: r.reason for r in intake.refusals}


def _files(d: Path, files: dict[str, bytes]) -> list[str]:
    for name, data in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return list(files)


# ------------------------------------------------------------------ makers

def make_7z(tmp: Path, name: str, files: dict[str, bytes], *args: str) -> Path:
    src = tmp / f"src-{name}"
    src.mkdir()
    names = _files(src, files)
    out = tmp / name
    subprocess.run(["7z", "a", "-bd", "-y", *args, str(out), *names], cwd=src, check=True,
                   stdout=subprocess.DEVNULL)
    return out


def make_7z_raw(tmp: Path, name: str, entries: list[tuple[str, bytes]]) -> Path:
    """7-Zip archive written by libarchive: any names, duplicates included."""
    import libarchive

    out = tmp / name
    with libarchive.file_writer(str(out), "7zip") as a:
        for n, data in entries:
            a.add_file_from_memory(n, len(data), data)
    return out


def make_cab(tmp: Path, name: str, files: dict[str, bytes], compress: bool = False,
             patch: dict[bytes, bytes] | None = None) -> Path:
    src = tmp / f"src-{name}"
    src.mkdir()
    names = _files(src, files)
    out = tmp / name
    subprocess.run(["gcab", "-c", *(["-z"] if compress else []), str(out), *names], cwd=src, check=True)
    if patch:
        data = out.read_bytes()
        for old, new in patch.items():
            assert len(old) == len(new) and old in data
            data = data.replace(old, new)
        out.write_bytes(data)
    return out


def _rar_block(htype: int, flags: int, body: bytes) -> bytes:
    rest = struct.pack("<BHH", htype, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(rest) & 0xFFFF) + rest


def make_rar(tmp: Path, name: str, entries: list[tuple[str, bytes, int, int]]) -> Path:
    """RAR 4: marker, archive header, one stored file block per (name, data, unix mode,
    extra flags: 0x04 = encrypted), end block."""
    out = b"Rar!\x1a\x07\x00" + _rar_block(0x73, 0, bytes(6))
    for n, data, mode, flags in entries:
        nb = n.encode()
        body = struct.pack("<IIBIIBBHI", len(data), len(data), 3, zlib.crc32(data), 0x5A210000,
                           29, 0x30, len(nb), mode) + nb
        out += _rar_block(0x74, 0x8000 | flags, body) + data
    out += _rar_block(0x7B, 0x4000, b"")
    p = tmp / name
    p.write_bytes(out)
    return p


REG, LNK = 0o100644, 0o120777


# ------------------------------------------------------------------ good archives

@needs_7z
@needs_gcab
def test_each_format_expands(tmp_path):
    for arc in (make_7z(tmp_path, "a.7z", {"logs/app.log": LOG}),
                make_cab(tmp_path, "a.cab", {"app.log": LOG}, compress=True),
                make_rar(tmp_path, "a.rar", [("logs/app.log", LOG, REG, 0)])):
        intake = _intake(tmp_path, arc)
        arts = [a for a in intake.artifacts if a.path.startswith(arc.name)]
        assert [(a.kind, a.size) for a in arts] == [(K.TEXT_LOG, len(LOG))], arc.name
        assert not intake.refusals
        assert Path(arts[0].local_path).read_bytes() == LOG


def test_rar_built_here_is_read_by_independent_readers(tmp_path):
    arc = make_rar(tmp_path, "x.rar", [("a.log", LOG, REG, 0), ("../b.log", b"b\n", REG, 0)])
    if shutil.which("bsdtar"):
        out = subprocess.run(["bsdtar", "-tf", str(arc)], capture_output=True, text=True).stdout
        assert out.split() == ["a.log", "../b.log"]
    if shutil.which("7z"):
        out = subprocess.run(["7z", "l", str(arc)], capture_output=True, text=True).stdout
        assert "Type = Rar" in out and "a.log" in out


# ------------------------------------------------------------------ names

@needs_7z
@needs_gcab
def test_traversal_and_absolute_names_refused(tmp_path):
    cases = [
        make_7z_raw(tmp_path, "t.7z", [("../evil.log", b"x\n"), ("/etc/abs.log", b"y\n"), ("ok.log", LOG)]),
        make_cab(tmp_path, "t.cab", {"aa/evil.log": b"x\n", "ok.log": LOG},
                 patch={b"aa\\evil.log": b"..\\evil.log"}),
        make_rar(tmp_path, "t.rar", [("../evil.log", b"x\n", REG, 0), ("/etc/abs.log", b"y\n", REG, 0),
                                     ("ok.log", LOG, REG, 0)]),
    ]
    for arc in cases:
        intake = _intake(tmp_path, arc)
        got = {a.path for a in intake.artifacts if a.path.startswith(arc.name)}
        assert got == {f"{arc.name}!/ok.log"}, arc.name
        reasons = _reasons(intake)
        assert any(".." in k and "escapes" in v for k, v in reasons.items()), (arc.name, reasons)
    assert not (tmp_path / "evil.log").exists() and not (tmp_path.parent / "evil.log").exists()


# ------------------------------------------------------------------ links

@needs_7z
def test_7z_symlinks_refused(tmp_path):
    src = tmp_path / "src-l"
    src.mkdir()
    (src / "f.log").write_bytes(LOG)
    os.symlink("/etc/passwd", src / "out")
    os.symlink("f.log", src / "in")
    arc = tmp_path / "l.7z"
    subprocess.run(["7z", "a", "-bd", "-y", "-snl", str(arc), "f.log", "out", "in"], cwd=src, check=True,
                   stdout=subprocess.DEVNULL)
    intake = _intake(tmp_path, arc)
    reasons = _reasons(intake)
    assert "symbolic link to /etc/passwd leads outside the archive" == reasons["out"]
    assert "symbolic link to f.log is not followed" == reasons["in"]
    assert [a.path for a in intake.artifacts] == ["l.7z!/f.log"]


def test_rar_symlink_refused(tmp_path):
    arc = make_rar(tmp_path, "l.rar", [("link", b"/etc/passwd", LNK, 0), ("ok.log", LOG, REG, 0)])
    intake = _intake(tmp_path, arc)
    assert _reasons(intake)["link"] == "symbolic link to /etc/passwd leads outside the archive"
    assert [a.path for a in intake.artifacts] == ["l.rar!/ok.log"]


# ------------------------------------------------------------------ encryption

@needs_7z
def test_encrypted_entries_refused_with_a_clear_message(tmp_path):
    arc = make_7z(tmp_path, "e.7z", {"secret.log": LOG}, "-pSECRET")
    intake = _intake(tmp_path, arc)
    assert _reasons(intake) == {"secret.log": "encrypted entry (password protected): cannot be read"}
    arc2 = make_7z(tmp_path, "eh.7z", {"secret.log": LOG}, "-pSECRET", "-mhe=on")
    intake2 = _intake(tmp_path, arc2)
    assert list(_reasons(intake2).values()) == [
        "encrypted archive (password-protected headers): cannot be read"]
    arc3 = make_rar(tmp_path, "e.rar", [("secret.log", b"\x93" * 16, REG, 0x04), ("ok.log", LOG, REG, 0)])
    intake3 = _intake(tmp_path, arc3)
    assert _reasons(intake3)["secret.log"] == "encrypted entry (password protected): cannot be read"
    assert [a.path for a in intake3.artifacts] == ["e.rar!/ok.log"]


# ------------------------------------------------------------------ duplicates

def test_duplicate_names_refused(tmp_path):
    arc = make_7z_raw(tmp_path, "d.7z", [("a.log", LOG), ("a.log", b"second\n")])
    intake = _intake(tmp_path, arc)
    assert "duplicate name" in _reasons(intake)["a.log"]
    (art,) = intake.artifacts
    assert Path(art.local_path).read_bytes() == LOG
    # libarchive hands the second same-named RAR entry over without a name: refused as such
    arc2 = make_rar(tmp_path, "d.rar", [("a.log", LOG, REG, 0), ("a.log", b"2\n", REG, 0)])
    intake2 = _intake(tmp_path, arc2)
    assert len(intake2.refusals) == 1
    (art2,) = intake2.artifacts
    assert Path(art2.local_path).read_bytes() == LOG


# ------------------------------------------------------------------ bombs

RATIO = IntakeLimits(ratio_grace_bytes=1 * MiB)


@needs_7z
@needs_gcab
def test_ratio_bombs_refused(tmp_path):
    zeros = bytes(20 * MiB)
    for arc in (make_7z(tmp_path, "b.7z", {"zeros.log": zeros}),
                make_cab(tmp_path, "b.cab", {"zeros.log": zeros}, compress=True)):
        assert arc.stat().st_size * 200 < len(zeros), "not a bomb: the test would prove nothing"
        intake = _intake(tmp_path, arc, RATIO)
        reason = _reasons(intake)["zeros.log"]
        assert "decompression bomb" in reason and "ratio above 200" in reason, (arc.name, reason)
        assert not [a for a in intake.artifacts if a.path.startswith(arc.name + "!/")]
        assert not list((tmp_path / "work").rglob("*zeros*")), "the partial output was kept"


@needs_7z
@needs_gcab
def test_size_bombs_refused(tmp_path):
    data = os.urandom(1 * MiB).hex().encode()            # 2 MiB, compresses about 2:1
    limits = IntakeLimits(max_file_bytes=1 * MiB)
    for arc in (make_7z(tmp_path, "s.7z", {"big.log": data}),
                make_cab(tmp_path, "s.cab", {"big.log": data}, compress=True),
                make_rar(tmp_path, "s.rar", [("big.log", data, REG, 0)])):
        intake = _intake(tmp_path, arc, limits)
        reason = _reasons(intake)["big.log"]
        assert "single-file limit" in reason, (arc.name, reason)


# ------------------------------------------------------------------ entry count and nesting

@needs_7z
@needs_gcab
def test_entry_limit(tmp_path):
    files = {f"f{i}.log": LOG for i in range(10)}
    limits = IntakeLimits(max_entries=5)
    for arc in (make_7z(tmp_path, "n.7z", files), make_cab(tmp_path, "n.cab", files),
                make_rar(tmp_path, "n.rar", [(n, d, REG, 0) for n, d in files.items()])):
        intake = _intake(tmp_path, arc, limits)
        assert len([a for a in intake.artifacts if a.path.startswith(arc.name)]) == 5, arc.name
        assert any("entry limit of 5" in r.reason for r in intake.refusals), arc.name


@needs_7z
@needs_gcab
def test_nesting_limit(tmp_path):
    limits = IntakeLimits(max_depth=2)
    inner = make_7z(tmp_path, "inner.7z", {"deep.log": LOG})
    mid = make_cab(tmp_path, "mid.cab", {"inner.7z": inner.read_bytes()})
    outer = make_rar(tmp_path, "outer.rar", [("mid.cab", mid.read_bytes(), REG, 0)])
    intake = _intake(tmp_path, outer, limits)
    assert not [a for a in intake.artifacts if a.path.endswith("deep.log")]
    assert any("nested deeper than the limit of 2" in r.reason for r in intake.refusals)
    # one level more allowed: the log is reached through RAR -> CAB -> 7z
    intake3 = _intake(tmp_path, outer, IntakeLimits(max_depth=3))
    assert [a.path for a in intake3.artifacts] == ["outer.rar!/mid.cab!/inner.7z!/deep.log"]


# ------------------------------------------------------------------ damage

@needs_7z
@needs_gcab
def test_cut_archives_give_clear_refusals_not_tracebacks(tmp_path):
    files = {f"f{i}.log": os.urandom(20_000).hex().encode() for i in range(4)}
    for arc in (make_7z(tmp_path, "c.7z", files), make_cab(tmp_path, "c.cab", files, compress=True),
                make_rar(tmp_path, "c.rar", [(n, d, REG, 0) for n, d in files.items()])):
        data = arc.read_bytes()
        for cut in (len(data) // 3, len(data) - 5):
            cutp = tmp_path / f"cut{cut}-{arc.name}"
            cutp.write_bytes(data[:cut])
            intake = _intake(tmp_path, cutp)
            for r in intake.refusals:
                assert "Traceback" not in r.reason and r.reason
            for a in intake.artifacts:
                if a.path.startswith(cutp.name + "!/"):
                    name = a.path.rsplit("!/", 1)[1]
                    # what was kept is whole, or says it is not
                    assert a.problems or Path(a.local_path).read_bytes() == files[name], a.path
            if cut == len(data) // 3:
                whole = [a for a in intake.artifacts if a.path.startswith(cutp.name + "!/")
                         and not a.problems]
                assert len(whole) < len(files), cutp.name
                assert intake.refusals or any(a.problems for a in intake.artifacts), cutp.name

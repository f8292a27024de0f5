"""Hostile archives, built here: every bad entry is refused by name, nothing is
written outside the work folder, and the good entries are still taken in."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from backline.evidence import IntakeLimits, collect
from backline.evidence.archives import zip_declared_entries
from backline.model.core import ArtifactKind as K

GOOD = b"2024-05-01T10:00:00Z INFO fine\n" * 4
MiB = 1 << 20


def _files_outside(root: Path, work: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p != work and work not in p.parents}


def _run(tmp_path: Path, name: str, data: bytes, limits: IntakeLimits | None = None):
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    p = src / name
    p.write_bytes(data)
    work = tmp_path / "work"
    before = _files_outside(tmp_path, work)
    intake = collect([p], work, limits=limits, require_readable=False)
    assert _files_outside(tmp_path, work) == before, "something was written outside the work folder"
    return intake


def _reasons(intake) -> dict[str, str]:
    return {r.path: r.reason for r in intake.refusals}


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as tf:
        for ti, data in members:
            if data is not None:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def _ti(name: str, type_: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.linkname = link
    return ti


def test_zip_traversal_and_absolute_names(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.log", GOOD)
        zf.writestr(zipfile.ZipInfo("../../evil.txt"), b"x")
        zf.writestr(zipfile.ZipInfo("/etc/evil.txt"), b"x")
        zf.writestr(zipfile.ZipInfo("a/../../evil2.txt"), b"x")
        zf.writestr(zipfile.ZipInfo("C:\\Windows\\evil.ini"), b"x")
    intake = _run(tmp_path, "t.zip", buf.getvalue())
    assert [a.path for a in intake.artifacts] == ["t.zip!/good.log"]
    r = _reasons(intake)
    assert "escapes" in r["t.zip!/../../evil.txt"]
    assert "absolute" in r["t.zip!//etc/evil.txt"]
    assert "escapes" in r["t.zip!/a/../../evil2.txt"]
    assert "absolute" in r["t.zip!/C:\\Windows\\evil.ini"]


def test_tar_traversal_links_and_devices(tmp_path: Path) -> None:
    data = _tar([
        (_ti("good.log"), GOOD),
        (_ti("../escape.txt"), b"x"),
        (_ti("/abs.txt"), b"x"),
        (_ti("sym_out", tarfile.SYMTYPE, "/etc/passwd"), None),
        (_ti("sym_up", tarfile.SYMTYPE, "../../outside"), None),
        (_ti("sym_in", tarfile.SYMTYPE, "good.log"), None),
        (_ti("hard_out", tarfile.LNKTYPE, "../../etc/shadow"), None),
        (_ti("dev_null", tarfile.CHRTYPE), None),
        (_ti("disk", tarfile.BLKTYPE), None),
        (_ti("pipe", tarfile.FIFOTYPE), None),
    ], "w:gz")
    intake = _run(tmp_path, "t.tar.gz", data)
    assert [a.path for a in intake.artifacts] == ["t.tar.gz!/good.log"]
    r = _reasons(intake)
    assert "escapes" in r["t.tar.gz!/../escape.txt"]
    assert "absolute" in r["t.tar.gz!//abs.txt"]
    assert "leads outside" in r["t.tar.gz!/sym_out"]
    assert "leads outside" in r["t.tar.gz!/sym_up"]
    assert "not followed" in r["t.tar.gz!/sym_in"]
    assert "hard link" in r["t.tar.gz!/hard_out"] and "leads outside" in r["t.tar.gz!/hard_out"]
    for dev in ("dev_null", "disk", "pipe"):
        assert "device" in r[f"t.tar.gz!/{dev}"]


def test_zip_symlink_entry_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.log", GOOD)
        link = zipfile.ZipInfo("link")
        link.create_system = 3
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    intake = _run(tmp_path, "l.zip", buf.getvalue())
    assert [a.path for a in intake.artifacts] == ["l.zip!/good.log"]
    assert "symbolic link" in _reasons(intake)["l.zip!/link"]


def test_zip_bomb_entry_refused_while_streaming(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.log", GOOD)
        zf.writestr("bomb.bin", bytes(40 * MiB))
    limits = IntakeLimits(max_ratio=100, ratio_grace_bytes=2 * MiB)
    intake = _run(tmp_path, "bomb.zip", buf.getvalue(), limits)
    assert [a.path for a in intake.artifacts] == ["bomb.zip!/good.log"]
    reason = _reasons(intake)["bomb.zip!/bomb.bin"]
    assert "ratio" in reason and "bomb" in reason
    # the partial output was removed
    assert sum(p.stat().st_size for p in (tmp_path / "work").rglob("*") if p.is_file()) < 3 * MiB


def test_zip_entry_with_lying_sizes_is_still_bounded(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.bin", bytes(30 * MiB))
    data = bytearray(buf.getvalue())
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 10)            # uncompressed size claims 10 bytes
    struct.pack_into("<I", data, 22, 10)                 # ... in the local header too
    limits = IntakeLimits(max_ratio=50, ratio_grace_bytes=MiB, max_file_bytes=4 * MiB)
    intake = _run(tmp_path, "liar.zip", bytes(data), limits)
    assert all(a.size <= 4 * MiB for a in intake.artifacts)
    # either refused, or kept as the few bytes the header admits, marked corrupt
    assert intake.refusals or all(any("corrupt" in p for p in a.problems) for a in intake.artifacts)


def test_gzip_bomb_single_file(tmp_path: Path) -> None:
    data = gzip.compress(bytes(50 * MiB), compresslevel=9)
    intake = _run(tmp_path, "big.log.gz", data, IntakeLimits(max_ratio=100, ratio_grace_bytes=MiB))
    assert intake.artifacts == ()
    assert "bomb" in _reasons(intake)["big.log.gz"]


def test_tar_gz_bomb_stops_and_keeps_earlier_members(tmp_path: Path) -> None:
    data = _tar([(_ti("good.log"), GOOD), (_ti("zeros.bin"), bytes(40 * MiB))], "w:gz")
    intake = _run(tmp_path, "b.tgz", data, IntakeLimits(max_ratio=100, ratio_grace_bytes=MiB))
    assert [a.path for a in intake.artifacts] == ["b.tgz!/good.log"]
    assert any("bomb" in r.reason for r in intake.refusals)


def test_total_and_file_size_limits(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("huge.log", GOOD * 20000)               # ~2.4 MB
        for i in range(5):
            zf.writestr(f"f{i}.log", GOOD * 2000)          # ~240 KB each
    # bytes of a refused entry stay counted: 1 MiB + three 240 KB files fit, the fourth does not
    limits = IntakeLimits(max_file_bytes=MiB, max_total_bytes=MiB + 3 * 240_000 + 100_000)
    intake = _run(tmp_path, "s.zip", buf.getvalue(), limits)
    r = _reasons(intake)
    assert "single-file limit" in r["s.zip!/huge.log"]
    assert any("total limit" in v for v in r.values())
    assert [a.path for a in intake.artifacts] == ["s.zip!/f0.log", "s.zip!/f1.log", "s.zip!/f2.log"]


def test_entry_count_limit(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(30):
            zf.writestr(f"f{i:02d}.log", GOOD)
    assert zip_declared_entries_bytes(buf.getvalue(), tmp_path) == 30
    intake = _run(tmp_path, "many.zip", buf.getvalue(), IntakeLimits(max_entries=10))
    (a,) = intake.artifacts                 # listed, not expanded
    assert a.kind is K.ARCHIVE and "30 entries" in a.problems[0]
    assert "30 entries" in intake.refusals[0].reason


def zip_declared_entries_bytes(data: bytes, tmp_path: Path) -> int | None:
    p = tmp_path / "probe.zip"
    p.write_bytes(data)
    return zip_declared_entries(p)


def test_tar_entry_count_limit_stops_streaming(tmp_path: Path) -> None:
    data = _tar([(_ti(f"f{i:02d}.log"), GOOD) for i in range(30)], "w")
    intake = _run(tmp_path, "many.tar", data, IntakeLimits(max_entries=10))
    assert len(intake.artifacts) == 10
    assert "entry limit" in intake.refusals[-1].reason


def _nested_zip(depth: int) -> bytes:
    data = GOOD
    name = "deep.log"
    for level in range(depth):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(name, data)
        data, name = buf.getvalue(), f"level{level}.zip"
    return data


def test_nesting_deeper_than_limit_refused(tmp_path: Path) -> None:
    intake = _run(tmp_path, "n.zip", _nested_zip(6), IntakeLimits(max_depth=3))
    assert not any(a.kind is K.TEXT_LOG for a in intake.artifacts)
    (r,) = intake.refusals
    assert r.path == "n.zip!/level4.zip!/level3.zip!/level2.zip"
    assert "nested deeper than the limit of 3" in r.reason
    ok = _run(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, "n.zip", _nested_zip(3),
              IntakeLimits(max_depth=3))
    assert [a.path for a in ok.artifacts] == ["n.zip!/level1.zip!/level0.zip!/deep.log"]


def test_gzip_layers_count_as_nesting(tmp_path: Path) -> None:
    data = GOOD
    for _ in range(6):
        data = gzip.compress(data)
    intake = _run(tmp_path, "onion.log.gz", data, IntakeLimits(max_depth=3))
    assert any("nested deeper" in r.reason for r in intake.refusals)


def test_encrypted_zip_entry_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.log", GOOD)
        zf.writestr("secret.log", GOOD)
    data = bytearray(buf.getvalue())
    # set the "encrypted" flag of secret.log in its local header and central record
    loc = data.find(b"PK\x03\x04", data.find(b"secret.log") - 40)
    struct.pack_into("<H", data, loc + 6, struct.unpack_from("<H", data, loc + 6)[0] | 1)
    cen = data.rfind(b"PK\x01\x02")
    struct.pack_into("<H", data, cen + 8, struct.unpack_from("<H", data, cen + 8)[0] | 1)
    intake = _run(tmp_path, "enc.zip", bytes(data))
    assert [a.path for a in intake.artifacts] == ["enc.zip!/good.log"]
    assert "encrypted" in _reasons(intake)["enc.zip!/secret.log"]


def test_duplicate_names_first_kept(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("app.log", GOOD)
        zf.writestr("app.log", b"2024-05-01T11:00:00Z ERROR second copy\n")
    intake = _run(tmp_path, "dup.zip", buf.getvalue())
    (a,) = intake.artifacts
    assert a.local_path.read_bytes() == GOOD
    (r,) = intake.refusals
    assert r.path == "dup.zip!/app.log" and "duplicate" in r.reason
    tdata = _tar([(_ti("x.log"), GOOD), (_ti("./x.log"), b"other\n")])
    t = _run(tmp_path, "dup.tar", tdata)
    assert len(t.artifacts) == 1 and "duplicate" in t.refusals[0].reason


def test_overlapping_zip_entries_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("aaaa.log", GOOD)
    data = buf.getvalue()
    cd = data.find(b"PK\x01\x02")
    eocd = data.find(b"PK\x05\x06")
    rec = data[cd:eocd]
    rec2 = rec.replace(b"aaaa.log", b"bbbb.log")          # a second name for the same data
    new_cd = rec + rec2
    tail = bytearray(data[eocd:])
    struct.pack_into("<HHII", tail, 8, 2, 2, len(new_cd), cd)
    intake = _run(tmp_path, "ov.zip", data[:cd] + new_cd + bytes(tail))
    assert len(intake.artifacts) == 1
    assert "overlaps" in intake.refusals[0].reason


def test_non_utf8_names_in_archives(tmp_path: Path) -> None:
    t = _tar([(_ti("caf\udce9.log"), GOOD)])
    intake = _run(tmp_path, "n.tar", t)
    (a,) = intake.artifacts
    assert a.path == "n.tar!/caf\\xe9.log" and any("UTF-8" in p for p in a.problems)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("r\u00e9sum\u00e9.log", GOOD)          # stored as UTF-8 with the flag
        zf.writestr("_t_.log", GOOD)                      # ASCII now; made latin-1 below
    raw = buf.getvalue().replace(b"_t_.log", b"\xe9t\xe9.log")   # no UTF-8 flag, not UTF-8
    buf = io.BytesIO(raw)
    z = _run(tmp_path, "n.zip", buf.getvalue())
    paths = sorted(a.path for a in z.artifacts)
    assert "n.zip!/r\u00e9sum\u00e9.log" in paths
    (bad,) = [a for a in z.artifacts if "\\x" in a.path]
    assert bad.path == "n.zip!/\\xe9t\\xe9.log" and any("UTF-8" in p for p in bad.problems)


def test_truncated_tar_gz_keeps_what_came_before(tmp_path: Path) -> None:
    big = b"2024-05-01T10:00:00Z INFO line with some words %d\n"
    data = _tar([(_ti("first.log"), GOOD), (_ti("second.log"), b"".join(big % i for i in range(20000)))], "w:gz")
    intake = _run(tmp_path, "cut.tgz", data[: len(data) // 2])
    paths = {a.path: a for a in intake.artifacts}
    assert "cut.tgz!/first.log" in paths
    second = paths.get("cut.tgz!/second.log")
    if second is not None:          # the partial member is kept and says why
        assert any("truncated" in p for p in second.problems)
    else:
        assert intake.refusals
    assert intake.refusals or any(a.problems for a in intake.artifacts)


def test_corrupt_zip_listed_as_archive(tmp_path: Path) -> None:
    intake = _run(tmp_path, "bad.zip", b"PK\x03\x04" + bytes(100))
    (a,) = intake.artifacts
    assert a.kind is K.ARCHIVE and a.problems
    assert intake.refusals and intake.refusals[0].path == "bad.zip"


def test_empty_archives_are_listed(tmp_path: Path) -> None:
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    intake = _run(tmp_path, "empty.zip", buf.getvalue())
    (a,) = intake.artifacts
    assert a.kind is K.ARCHIVE and "empty archive" in a.problems[-1]
    t = _run(tmp_path, "empty.tar.gz", _tar([], "w:gz"))
    (b,) = t.artifacts
    assert b.kind is K.ARCHIVE and b.path == "empty.tar.gz"


def test_zip_with_a_corrupt_member_keeps_the_others(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bad.log", GOOD * 50)
        zf.writestr("good.log", GOOD)
    data = bytearray(buf.getvalue())
    start = data.find(b"bad.log") + len(b"bad.log")
    data[start + 5:start + 25] = b"\xff" * 20           # damage the deflate stream of bad.log
    intake = _run(tmp_path, "c.zip", bytes(data))
    paths = {a.path: a for a in intake.artifacts}
    assert "c.zip!/good.log" in paths
    bad = paths.get("c.zip!/bad.log")
    assert (bad is not None and bad.problems) or any(r.path == "c.zip!/bad.log" for r in intake.refusals)


def test_zip_with_lying_entry_count_refused_before_loading_directory(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(300):
            zf.writestr(f"f{i:03d}.log", GOOD)
    data = bytearray(buf.getvalue())
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 3, 3)          # claims 3 entries, the directory holds 300
    intake = _run(tmp_path, "liar.zip", bytes(data), IntakeLimits(max_entries=5))
    assert intake.artifacts[0].kind is K.ARCHIVE
    assert "central directory" in intake.refusals[0].reason


def test_zip_entry_with_an_empty_name_is_refused_not_an_internal_error(tmp_path):
    """Found by benchmarks/fuzz.py (archive): ``ZipInfo.is_dir()`` raises IndexError on an empty
    name, which intake turned into "internal error while reading this input" for the whole zip."""
    import io
    import zipfile

    from backline.evidence import collect

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo(""), b"x")
        z.writestr("logs/app.log", b"2024-05-01 10:00:00 INFO up\n")
    (tmp_path / "b.zip").write_bytes(buf.getvalue())
    intake = collect([tmp_path / "b.zip"], tmp_path / "work")
    assert [a.path for a in intake.artifacts] == ["b.zip!/logs/app.log"]
    assert [(r.path, r.reason) for r in intake.refusals] == [("b.zip!/", "empty name: ''")]

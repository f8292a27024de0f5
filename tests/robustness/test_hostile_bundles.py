"""Hostile and damaged bundles built in the test, through ``backline analyze`` and ``inventory``.

Each bundle mixes bad entries with a good log or dump: the bad ones are
refused with a reason that names them, the good ones are still analysed.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backline.cli import app

from . import mutate as m

LOG_REL = "logs/loghub-2k/Apache/Apache_2k.log"
DUMP_REL = "dumps/breakpad/null_read_av.dmp"


@pytest.fixture(scope="module")
def log_bytes(corpus) -> bytes:
    return (corpus / LOG_REL).read_bytes()


@pytest.fixture(scope="module")
def dump_bytes(corpus) -> bytes:
    return (corpus / DUMP_REL).read_bytes()


def _zip(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _paths(doc) -> dict[str, dict]:
    """The real artifacts (not the report's row for case-level findings)."""
    return {a["path"]: a for a in doc["artifacts"] if a.get("known", True)}


def _refused(doc) -> dict[str, str]:
    return {r["path"]: r["reason"] for r in doc["refusals"]}


def _analysed(art) -> bool:
    return art["status"] != "skipped" and any(r["status"] == "ok" for r in art["runs"])


def test_traversal_and_absolute_names(tmp_path, log_bytes):
    p = tmp_path / "trav.zip"
    p.write_bytes(_zip([("../../evil.log", log_bytes), ("/etc/abs.log", log_bytes),
                        ("C:\\win.log", log_bytes), ("ok/app.log", log_bytes)]))
    doc = m.run_analyze(p).doc
    assert _analysed(_paths(doc)["trav.zip!/ok/app.log"])
    ref = _refused(doc)
    assert "path escapes the archive" in ref["trav.zip!/../../evil.log"]
    assert "absolute path" in next(r for k, r in ref.items() if "abs.log" in k)
    assert "absolute path" in next(r for k, r in ref.items() if "win.log" in k)
    assert not (tmp_path.parent / "evil.log").exists()


def test_links_devices_and_odd_names_in_tar(tmp_path, log_bytes):
    p = tmp_path / "links.tar"
    with tarfile.open(p, "w") as tf:
        for name, kind, target in (("sym.log", tarfile.SYMTYPE, "/etc/passwd"),
                                   ("hard.log", tarfile.LNKTYPE, "../x"),
                                   ("inside.log", tarfile.SYMTYPE, "app.log"),
                                   ("dev", tarfile.CHRTYPE, ""), ("fifo", tarfile.FIFOTYPE, "")):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = kind, target
            tf.addfile(ti)
        for name in ("app.log", "caf\udce9.log"):
            ti = tarfile.TarInfo(name)
            ti.size = len(log_bytes)
            tf.addfile(ti, io.BytesIO(log_bytes))
    doc = m.run_analyze(p).doc
    arts = _paths(doc)
    assert _analysed(arts["links.tar!/app.log"])
    odd = arts["links.tar!/caf\\xe9.log"]
    assert _analysed(odd) and any("not valid UTF-8" in x for x in odd["problems"])
    ref = _refused(doc)
    assert "symbolic link" in ref["links.tar!/sym.log"] and "outside" in ref["links.tar!/sym.log"]
    assert "hard link" in ref["links.tar!/hard.log"]
    assert "not followed" in ref["links.tar!/inside.log"]
    assert "device" in ref["links.tar!/dev"] and "device" in ref["links.tar!/fifo"]


def test_duplicates_encrypted_and_lying_entry_count(tmp_path, log_bytes, dump_bytes):
    raw = bytearray(_zip([("secret.log", log_bytes), ("a.log", log_bytes), ("./a.log", b"x\n"),
                          ("crash.dmp", dump_bytes)], zipfile.ZIP_STORED))
    lh = raw.find(b"PK\x03\x04")
    raw[lh + 6] |= 1                                   # secret.log: encrypted flag
    raw[raw.find(b"PK\x01\x02") + 8] |= 1
    end = raw.rfind(b"PK\x05\x06")
    lying = bytes(raw[:end + 8]) + b"\xff\xff\xff\xff" + bytes(raw[end + 12:])   # 4 billion entries?
    for name, data in (("enc.zip", bytes(raw)), ("lying.zip", lying)):
        p = tmp_path / name
        p.write_bytes(data)
        out = m.run_analyze(p)
        arts, ref = _paths(out.doc), _refused(out.doc)
        if name == "enc.zip":
            assert "encrypted" in ref["enc.zip!/secret.log"]
            assert "duplicate name" in ref["enc.zip!/./a.log"]
            assert _analysed(arts["enc.zip!/a.log"]) and _analysed(arts["enc.zip!/crash.dmp"])
            assert any(f["code"] == "DUMP.CRASH" for f in out.doc["findings"])
        else:   # the end record's count is not trusted; the entries are read (or refused with a reason)
            assert ref or arts, "a zip with a lying entry count vanished without a word"


def test_zip_and_gzip_bombs_are_refused_the_rest_kept(tmp_path, log_bytes):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.log", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(256):
                f.write(block)
        zf.writestr("app.log", log_bytes)
    doc = m.run_analyze(bomb).doc
    assert "decompression bomb" in _refused(doc)["bomb.zip!/zeros.log"]
    assert _analysed(_paths(doc)["bomb.zip!/app.log"])

    gz = tmp_path / "zeros.log.gz"
    with gzip.open(gz, "wb", compresslevel=9) as f:
        for _ in range(256):
            f.write(bytes(1 << 20))
    out = m.run_analyze(gz)
    assert out.code == 2 and "zeros.log.gz" in out.stderr and "decompression bomb" in out.stderr


def test_nesting_beyond_the_limit_is_listed_not_expanded(tmp_path, log_bytes):
    data, name = log_bytes, "app.log"
    for i in range(12):
        data, name = _zip([(name, data)]), f"n{i}.zip"
    p = tmp_path / "deep.zip"
    p.write_bytes(data)
    doc = m.run_analyze(p).doc
    (deepest,) = doc["artifacts"]
    assert deepest["kind"] == "archive" and deepest["problems"]
    assert any("nested deeper than the limit" in r for r in _refused(doc).values())


def test_truncated_tgz_keeps_the_bytes_before_the_cut(tmp_path, log_bytes, dump_bytes):
    """Regression: a member cut short by the end of a .tar.gz was kept with 0 bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for k in range(3):
            ti = tarfile.TarInfo(f"app{k}.log")
            ti.size = len(log_bytes)
            tf.addfile(ti, io.BytesIO(log_bytes))
        ti = tarfile.TarInfo("crash.dmp")
        ti.size = len(dump_bytes)
        tf.addfile(ti, io.BytesIO(dump_bytes))
    whole = buf.getvalue()
    p = tmp_path / "cut.tgz"
    p.write_bytes(whole[: len(whole) * 2 // 3])
    avail = len(gzip.decompress(whole))     # sanity: the cut really is inside the third log
    assert avail > 3 * len(log_bytes)
    doc = m.run_analyze(p).doc
    arts = _paths(doc)
    cut = [a for a in arts.values() if any("truncated" in x for x in a["problems"])]
    assert len(cut) == 1, arts.keys()
    assert 0 < cut[0]["size"] < len(log_bytes)
    assert _analysed(cut[0])
    assert any("damaged or truncated" in r for r in _refused(doc).values())
    # the bytes kept are exactly the bytes the stream holds before the cut
    import zlib
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    got = d.decompress(p.read_bytes())
    full_members = sum(512 + -(-len(log_bytes) // 512) * 512 for _ in range(2))
    assert cut[0]["size"] == len(got) - full_members - 512


def test_truncated_plain_tar_member_keeps_its_bytes(tmp_path, log_bytes):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("app.log")
        ti.size = len(log_bytes)
        tf.addfile(ti, io.BytesIO(log_bytes))
    p = tmp_path / "cut.tar"
    p.write_bytes(buf.getvalue()[: 512 + 70_000])
    doc = m.run_analyze(p).doc
    art = _paths(doc)["cut.tar!/app.log"]
    assert art["size"] == 70_000
    assert any("truncated" in x and "70000" in x for x in art["problems"])
    assert _analysed(art)


@pytest.mark.parametrize("frac", [0.05, 0.3, 0.7, 0.97])
def test_truncated_zip_is_named(tmp_path, log_bytes, dump_bytes, frac):
    data = _zip([("app.log", log_bytes), ("crash.dmp", dump_bytes), ("more.log", log_bytes)])
    p = tmp_path / "cut.zip"
    p.write_bytes(m.truncate(data, frac))
    out = m.run_analyze(p)
    if out.code == 2:
        assert "cut.zip" in out.stderr
    else:
        assert m.flagged(out.doc, "cut.zip") or _refused(out.doc)


def test_zip_central_directory_pointing_at_itself(tmp_path, log_bytes):
    raw = bytearray(_zip([("app.log", log_bytes), ("b.log", log_bytes)]))
    end = raw.rfind(b"PK\x05\x06")
    struct.pack_into("<I", raw, end + 16, end)
    p = tmp_path / "selfref.zip"
    p.write_bytes(bytes(raw))
    out = m.run_analyze(p)
    assert out.code == 2
    assert "selfref.zip" in out.stderr and "refused" in out.stderr and ":" in out.stderr


def test_inventory_json_of_a_hostile_bundle_is_strict_utf8(tmp_path, log_bytes):
    p = tmp_path / "mix.tar"
    with tarfile.open(p, "w", format=tarfile.GNU_FORMAT) as tf:
        for name in ("caf\udce9.log", "ok.log", "../up.log"):
            ti = tarfile.TarInfo(name)
            ti.size = len(log_bytes)
            tf.addfile(ti, io.BytesIO(log_bytes))
    res = CliRunner().invoke(app, ["inventory", str(p), "--format", "json"])
    m.check_no_crash(res)
    assert res.exit_code == 0
    doc = json.loads(res.stdout_bytes.decode("utf-8"))
    assert {a["path"] for a in doc["artifacts"]} == {"mix.tar!/caf\\xe9.log", "mix.tar!/ok.log"}
    assert "escapes" in doc["refusals"][0]["reason"]


@pytest.mark.parametrize("compress", [False, True])
def test_tar_header_declaring_a_terabyte(tmp_path, compress):
    """Regression: a tar header claiming 10**12 bytes on a small file made the walk spin on
    empty reads for hours (tarfile skips a member by reading up to its declared size)."""
    import time
    ti = tarfile.TarInfo("huge.log")
    ti.size = 10**12
    data = ti.tobuf(format=tarfile.PAX_FORMAT) + b"2024-01-01T00:00:00Z ERROR x\n" * 10 + bytes(512)
    p = tmp_path / ("claims.tar.gz" if compress else "claims.tar")
    p.write_bytes(gzip.compress(data) if compress else data)
    started = time.perf_counter()
    doc = m.run_analyze(p).doc
    assert time.perf_counter() - started < 20
    (art,) = doc["artifacts"]
    assert any("ends inside this entry" in x and "1000000000000" in x for x in art["problems"])
    assert any("declares" in r for r in _refused(doc).values())


def test_names_that_spoof_the_display(tmp_path, log_bytes):
    """Bidi overrides and control characters in member names are shown escaped."""
    p = tmp_path / "spoof.zip"
    p.write_bytes(_zip([("evil\u202egol.exe", log_bytes), ("new\nline.log", log_bytes),
                        ("esc\x1b[31mred.log", log_bytes)]))
    doc = m.run_analyze(p).doc
    paths = set(_paths(doc))
    assert paths == {"spoof.zip!/evil\\u202egol.exe", "spoof.zip!/new\\x0aline.log",
                     "spoof.zip!/esc\\x1b[31mred.log"}

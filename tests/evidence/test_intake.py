"""collect(): folders, plain files, nested archives, compression, the blob store."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard

from backline.errors import EvidenceError, NothingReadable
from backline.evidence import IntakeLimits, collect
from backline.model.core import ArtifactKind as K
from backline.storage.blobs import BlobStore, sha256_file

LOG = b"2024-05-01T10:00:00Z INFO start\n2024-05-01T10:05:00Z ERROR disk full\n"


def _tar_bytes(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _outside_snapshot(root: Path, work: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if work not in p.parents and p != work}


def test_nested_bundle_display_paths_and_kinds(corpus: Path, tmp_path: Path) -> None:
    pcap = (corpus / "net/zeek_tcp_rst_inject.pcap").read_bytes()
    inner = _tar_bytes({"logs/app.log": LOG, "net/capture.pcap": pcap})
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(_zip_bytes({"inner.tar.gz": inner, "notes/readme.md": b"# Notes\n\nCustomer says slow.\n",
                                   "dumps/crash.dmp": (corpus / "dumps/breakpad/minidump2.dmp").read_bytes()}))
    intake = collect([bundle], tmp_path / "work")
    got = {a.path: a.kind for a in intake.artifacts}
    assert got == {
        "bundle.zip!/inner.tar.gz!/logs/app.log": K.TEXT_LOG,
        "bundle.zip!/inner.tar.gz!/net/capture.pcap": K.CAPTURE,
        "bundle.zip!/notes/readme.md": K.DOCUMENT,
        "bundle.zip!/dumps/crash.dmp": K.MINIDUMP,
    }
    assert intake.refusals == ()
    assert intake.inputs == (str(bundle),)
    for a in intake.artifacts:
        assert a.local_path is not None and a.local_path.is_file()
        assert sha256_file(a.local_path) == a.sha256
        assert a.local_path.stat().st_size == a.size
    cap = next(a for a in intake.artifacts if a.kind is K.CAPTURE)
    assert cap.local_path.read_bytes() == pcap


def test_folder_walk_keeps_relative_display_paths(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.log").write_bytes(LOG)
    (root / "b.evtx").write_bytes((corpus / "logs/evtx/new-user-security.evtx").read_bytes())
    (root / "empty.log").write_bytes(b"")
    intake = collect([root], tmp_path / "work")
    by_path = {a.path: a for a in intake.artifacts}
    assert set(by_path) == {"evidence/sub/a.log", "evidence/b.evtx", "evidence/empty.log"}
    assert by_path["evidence/b.evtx"].kind is K.EVTX
    assert by_path["evidence/empty.log"].problems == ("zero-byte file",)
    assert by_path["evidence/sub/a.log"].local_path == (root / "sub" / "a.log").resolve()
    assert [a.path for a in intake.usable] == ["evidence/b.evtx", "evidence/sub/a.log"]


@pytest.mark.parametrize("suffix,compress", [
    (".gz", gzip.compress), (".xz", lzma.compress),
    (".zst", lambda b: zstandard.ZstdCompressor().compress(b)),
    (".bz2", __import__("bz2").compress)])
def test_single_file_compression_is_decompressed(corpus: Path, tmp_path: Path, suffix, compress) -> None:
    raw = (corpus / "net/cs_tcp_dupack.pcapng").read_bytes()
    p = tmp_path / f"cap.pcapng{suffix}"
    p.write_bytes(compress(raw))
    (a,) = collect([p], tmp_path / "work").artifacts
    assert (a.kind, a.format, a.path) == (K.CAPTURE, "pcapng", p.name)
    assert a.compression == {".gz": "gzip", ".xz": "xz", ".zst": "zstd", ".bz2": "bzip2"}[suffix]
    assert a.size == len(raw) and a.local_path.read_bytes() == raw
    assert a.time_start is not None


@pytest.mark.parametrize("mode,suffix", [("w", ".tar"), ("w:gz", ".tgz"), ("w:bz2", ".tar.bz2"),
                                         ("w:xz", ".tar.xz")])
def test_tar_flavours(tmp_path: Path, mode: str, suffix: str) -> None:
    p = tmp_path / f"b{suffix}"
    p.write_bytes(_tar_bytes({"x/app.log": LOG}, mode))
    (a,) = collect([p], tmp_path / "work").artifacts
    assert a.path == f"b{suffix}!/x/app.log" and a.kind is K.TEXT_LOG


def test_tar_zst(tmp_path: Path) -> None:
    p = tmp_path / "b.tar.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(_tar_bytes({"app.log": LOG}, "w")))
    (a,) = collect([p], tmp_path / "work").artifacts
    assert a.path == "b.tar.zst!/app.log" and a.kind is K.TEXT_LOG and a.compression == ""


def test_store_dedupes_and_points_at_blobs(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(_zip_bytes({"one/app.log": LOG, "two/app.log": LOG}))
    first = collect([bundle], tmp_path / "w1", store=store)
    second = collect([bundle], tmp_path / "w2", store=store)
    shas = {a.sha256 for a in first.artifacts + second.artifacts}
    assert len(shas) == 1
    blobs = [p for p in (tmp_path / "blobs" / "sha256").rglob("*") if p.is_file()]
    assert len(blobs) == 1
    for a in first.artifacts + second.artifacts:
        assert a.local_path == store.path(a.sha256)
    # with a store, extracted copies do not stay in the work folder
    assert not [p for p in (tmp_path / "w1").rglob("*") if p.is_file()]


def test_same_display_path_twice_is_made_unique(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "app.log").write_bytes(LOG)
    intake = collect([tmp_path / "a" / "app.log", tmp_path / "b" / "app.log"], tmp_path / "work")
    assert [a.path for a in intake.artifacts] == ["app.log", "app.log~2"]


def test_missing_path_raises_evidence_error(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError) as ei:
        collect([tmp_path / "nope.zip"], tmp_path / "work")
    assert "nope.zip" in str(ei.value)


def test_unreadable_file_is_listed_with_reason(tmp_path: Path, monkeypatch) -> None:
    import backline.evidence.intake as collect_mod

    p = tmp_path / "secret.log"
    p.write_bytes(LOG)
    real = collect_mod.read_head

    def deny(path, limit=65536):
        if Path(path).name == "secret.log":
            raise PermissionError(13, "Permission denied")
        return real(path, limit)

    monkeypatch.setattr(collect_mod, "read_head", deny)
    (a,) = collect([p], tmp_path / "work", require_readable=False).artifacts
    assert a.local_path is None and a.problems == ("unreadable: Permission denied",)


def test_fifo_in_folder_is_refused_not_opened(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    root.mkdir()
    os.mkfifo(root / "pipe")
    (root / "app.log").write_bytes(LOG)
    intake = collect([root], tmp_path / "work")
    assert [a.path for a in intake.artifacts] == ["ev/app.log"]
    assert intake.refusals[0].path == "ev/pipe"


def test_symlink_out_of_folder_refused(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    root.mkdir()
    (tmp_path / "outside.log").write_bytes(LOG)
    os.symlink(tmp_path / "outside.log", root / "link.log")
    (root / "real.log").write_bytes(LOG)
    os.symlink(root / "real.log", root / "inside.log")
    intake = collect([root], tmp_path / "work")
    assert {a.path for a in intake.artifacts} == {"ev/real.log", "ev/inside.log"}
    assert [r.path for r in intake.refusals] == ["ev/link.log"]
    assert "outside" in intake.refusals[0].reason


def test_non_utf8_file_name_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    root.mkdir()
    name = os.fsdecode(b"caf\xe9.log")
    (root / name).write_bytes(LOG)
    (a,) = collect([root], tmp_path / "work").artifacts
    assert a.path == "ev/caf\\xe9.log"
    assert any("not valid UTF-8" in p for p in a.problems)
    assert a.kind is K.TEXT_LOG


def test_progress_callback_sees_every_file(tmp_path: Path) -> None:
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(_zip_bytes({"a.log": LOG, "b.log": LOG}))
    seen: list[str] = []
    collect([bundle], tmp_path / "work", progress=seen.append)
    assert "b.zip!/a.log" in seen and "b.zip!/b.log" in seen


def test_limits_validate() -> None:
    with pytest.raises(ValueError):
        IntakeLimits(max_depth=0)
    with pytest.raises(ValueError):
        IntakeLimits(max_ratio=1)


def test_nothing_readable_raises_with_the_partial_intake(tmp_path: Path) -> None:
    root = tmp_path / "ev"
    root.mkdir()
    (root / "empty.log").write_bytes(b"")
    with pytest.raises(NothingReadable) as ei:
        collect([root], tmp_path / "work")
    (a,) = ei.value.intake.artifacts
    assert a.path == "ev/empty.log" and a.problems == ("zero-byte file",)
    assert "nothing readable" in str(ei.value)


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_truncated_compressed_file_keeps_what_was_there(tmp_path: Path, suffix: str) -> None:
    body = b"".join(b"2024-05-01T10:%02d:00Z INFO request %d served\n" % (i % 60, i) for i in range(30000))
    comp = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": lambda b: __import__("bz2").compress(b, 1),
            ".zst": lambda b: zstandard.ZstdCompressor().compress(b)}[suffix](body)
    p = tmp_path / f"app.log{suffix}"
    p.write_bytes(comp[: len(comp) * 2 // 3])
    (a,) = collect([p], tmp_path / "work").artifacts
    assert a.kind is K.TEXT_LOG
    assert 0 < a.size < len(body)
    assert body.startswith(a.local_path.read_bytes())
    assert any(x.startswith("truncated") for x in a.problems)


def test_multi_member_gzip_and_multi_frame_zstd(tmp_path: Path) -> None:
    p = tmp_path / "two.log.gz"
    p.write_bytes(gzip.compress(LOG) + gzip.compress(LOG))
    (a,) = collect([p], tmp_path / "w1").artifacts
    assert a.local_path.read_bytes() == LOG + LOG and a.problems == ()
    z = tmp_path / "two.log.zst"
    c = zstandard.ZstdCompressor()
    z.write_bytes(c.compress(LOG) + c.compress(LOG))
    (b,) = collect([z], tmp_path / "w2").artifacts
    assert b.local_path.read_bytes() == LOG + LOG and b.problems == ()


def test_bzip2_with_blocks_larger_than_the_head(tmp_path: Path) -> None:
    import bz2
    import random

    rnd = random.Random(7)
    body = b"".join(b"2024-05-01T10:00:%02dZ INFO %08x %08x\n" % (i % 60, rnd.getrandbits(32), i)
                    for i in range(40000))
    data = bz2.compress(body, 9)
    assert len(data) > 64 * 1024            # the first block does not fit in the classification head
    p = tmp_path / "big.log.bz2"
    p.write_bytes(data)
    (a,) = collect([p], tmp_path / "w").artifacts
    assert (a.kind, a.compression, a.size, a.problems) == (K.TEXT_LOG, "bzip2", len(body), ())

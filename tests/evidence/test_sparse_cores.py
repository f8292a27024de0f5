"""A zipped, gzipped or tarred core of a process is mostly zero pages: it really expands 500:1
and more, and must not be refused as a decompression bomb.  Anything else at that ratio still is,
and a "core" is still bounded by the file size limit."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from backline.evidence import IntakeLimits, collect
from backline.evidence.streams import is_memory_image

MiB = 1 << 20
PROGRAM = r"""
#include <string.h>
#include <unistd.h>
static char buf[48 << 20];
int main(void) { memset(buf, 0, sizeof buf); buf[12345] = 1; write(1, "ready\n", 6); pause(); return 0; }
"""


@pytest.fixture(scope="module")
def sparse_core(tmp_path_factory) -> Path:
    for tool in ("gcc", "gcore"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed to make a real core (apt-get install gcc gdb)")
    d = tmp_path_factory.mktemp("sparse")
    (d / "idle.c").write_text(PROGRAM)
    subprocess.run(["gcc", "-O0", "-o", str(d / "idle"), str(d / "idle.c")], check=True, capture_output=True)
    proc = subprocess.Popen([str(d / "idle")], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        subprocess.run(["gcore", "-o", str(d / "core"), str(proc.pid)], capture_output=True, timeout=120)
    finally:
        proc.kill()
        proc.wait()
    core = d / f"core.{proc.pid}"
    assert core.is_file() and core.stat().st_size > 48 * MiB
    return core


def _collect(tmp_path: Path, name: str, data: bytes, limits: IntakeLimits):
    src = tmp_path / name
    src.write_bytes(data)
    return collect([src], tmp_path / "work", limits=limits, require_readable=False)


def _zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def _tgz(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mtime = len(data), int(time.time()) - 60
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


LIMITS = IntakeLimits(max_ratio=100, ratio_grace_bytes=4 * MiB)


@pytest.mark.parametrize("pack", ["zip", "gz", "tgz"])
def test_a_packed_sparse_core_is_taken_whole(tmp_path, sparse_core, pack):
    raw = sparse_core.read_bytes()
    assert is_memory_image(raw[:20])
    name, data = {"zip": ("case.zip", _zip("core.1234", raw)), "gz": ("core.1234.gz", gzip.compress(raw, 6)),
                  "tgz": ("case.tgz", _tgz("core.1234", raw))}[pack]
    assert len(raw) / len(data) > LIMITS.max_ratio          # a real core really is past the plain limit
    intake = _collect(tmp_path, name, data, LIMITS)
    assert not intake.refusals, intake.refusals
    (art,) = intake.artifacts
    assert art.size == len(raw) and art.kind.value == "elf_core"


def test_the_same_bytes_without_a_core_header_are_still_a_bomb(tmp_path, sparse_core):
    raw = bytearray(sparse_core.read_bytes())
    raw[16:18] = b"\x02\x00"                                  # an executable, not a core
    intake = _collect(tmp_path, "case.zip", _zip("core.1234", bytes(raw)), LIMITS)
    assert intake.artifacts == () and "bomb" in intake.refusals[0].reason


def test_a_core_header_does_not_lift_the_file_size_limit(tmp_path):
    fake = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x04\x00\x3e\x00" + bytes(40 * MiB)
    limits = IntakeLimits(max_ratio=100, ratio_grace_bytes=MiB, max_file_bytes=8 * MiB)
    intake = _collect(tmp_path, "case.zip", _zip("core.1", fake), limits)
    assert intake.artifacts == () and "single-file limit" in intake.refusals[0].reason

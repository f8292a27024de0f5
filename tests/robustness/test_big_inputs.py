"""Big inputs generated on the fly, with peak memory measured in a real process.

Peak resident memory (``ru_maxrss``) of ``backline analyze`` is compared with the same
command on a tiny file in the same run, so the assertion is about growth, not about
how big Python and the imports are on this machine.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

MB = 1 << 20

_MEASURE = r"""
import json, resource, sys
from backline.cli import app
code = 0
try:
    app(args=sys.argv[2:], prog_name="backline")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "peak_kb": peak}, f)
"""


def measure(tmp_path: Path, *args: str, timeout: float = 120) -> tuple[int, int, str, str]:
    """Run ``backline ARGS`` in a fresh process; (exit code, peak RSS in bytes, stdout, stderr)."""
    stats = tmp_path / f"stats-{os.getpid()}-{len(list(tmp_path.iterdir()))}.json"
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(stats), *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback (most recent call last)" not in proc.stderr, proc.stderr
    got = json.loads(stats.read_text())
    return got["code"], got["peak_kb"] * 1024, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> int:
    d = tmp_path_factory.mktemp("baseline")
    p = d / "tiny.log"
    p.write_text("2024-01-01T00:00:00Z ERROR tiny\n2024-01-01T00:00:01Z INFO fine\n")
    code, peak, _, _ = measure(d, "analyze", str(p), "-f", "json", "-q", "-j", "1", "--no-store")
    assert code == 0
    return peak


def test_single_256mb_line(tmp_path, baseline):
    """The "2 GB single line" case, scaled to 256 MB: read in bounded pieces, not whole."""
    size = 256 * MB
    p = tmp_path / "one-line.log"
    with open(p, "wb") as f:
        f.write(b"2024-01-01T00:00:00Z ERROR start of a very long record ")
        block = b"A" * MB
        for _ in range(size // MB):
            f.write(block)
        f.write(b"\n2024-01-01T00:00:05Z INFO after the long line\n")
    code, peak, out, err = measure(tmp_path, "analyze", str(p), "-f", "json", "-q", "-j", "1", "--no-store")
    assert code == 0, err
    doc = json.loads(out)
    (art,) = doc["artifacts"]
    (run,) = art["runs"]
    assert run["status"] == "ok" and any("longer than" in w for w in run["warnings"])
    assert peak - baseline < size // 4, f"peak grew by {(peak - baseline) >> 20} MB for a {size >> 20} MB line"


def test_gzip_bomb_memory(tmp_path, baseline):
    """1 GiB of zeros in a ~1 MB .gz: refused by ratio after the grace bytes, memory flat."""
    p = tmp_path / "bomb.log.gz"
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(4 * MB)
    with open(p, "wb") as f:
        for _ in range(256):
            f.write(comp.compress(block))
        f.write(comp.flush())
    code, peak, out, err = measure(tmp_path, "analyze", str(p), "-q", "-j", "1", "--no-store")
    assert code == 2 and "decompression bomb" in err
    assert peak - baseline < 64 * MB, f"peak grew by {(peak - baseline) >> 20} MB"


def test_nested_zip_bomb_memory(tmp_path, baseline):
    """A zip of zips of 64 MB zero files next to a real log: bombs refused, the log analysed."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(4):
            with zf.open(f"zeros{i}.log", "w") as f:
                for _ in range(64):
                    f.write(bytes(MB))
    p = tmp_path / "bundle.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"layer{i}.zip", inner.getvalue())
        zf.writestr("app.log", "2024-01-01T00:00:00Z ERROR real problem here\n" * 100)
    code, peak, out, err = measure(tmp_path, "analyze", str(p), "-f", "json", "-q", "-j", "1", "--no-store")
    assert code == 0, err
    doc = json.loads(out)
    assert sum("decompression bomb" in r["reason"] for r in doc["refusals"]) == 16
    assert any(a["path"] == "bundle.zip!/app.log" and a["findings"] for a in doc["artifacts"])
    assert peak - baseline < 96 * MB, f"peak grew by {(peak - baseline) >> 20} MB"


def test_many_events_are_capped(tmp_path, baseline):
    """300,000 error records of a few shapes: events kept up to the cap, the rest counted."""
    p = tmp_path / "flood.log"
    with open(p, "w") as f:
        for i in range(300_000):
            f.write(f"2024-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z ERROR "
                    f"request {i} to db-{i % 5} failed after {i % 900} ms\n")
    code, peak, out, err = measure(tmp_path, "analyze", str(p), "-f", "json", "-q", "-j", "1", "--no-store",
                                   timeout=300)
    assert code == 0, err
    doc = json.loads(out)
    (art,) = doc["artifacts"]
    (run,) = art["runs"]
    facts = {f["name"]: f["value"] for f in doc["facts"] if f["artifact"] == "flood.log"}
    dropped = facts.get("log.events_dropped", 0) + sum(
        int(w.split()[0]) for w in run["warnings"] if "not kept" in w)
    assert run["events"] + dropped == 300_000          # every error record kept or counted
    assert run["events"] <= 20_000
    assert peak - baseline < 400 * MB, f"peak grew by {(peak - baseline) >> 20} MB"


def _flood(path: Path, n: int) -> None:
    with open(path, "w") as f:
        for i in range(n):
            f.write(f"2024-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z ERROR "
                    f"request {i} to db-{i % 5} failed after {i % 900} ms\n")


def test_memory_does_not_grow_with_the_number_of_records(tmp_path):
    small, big = tmp_path / "small.log", tmp_path / "big.log"
    _flood(small, 50_000)
    _flood(big, 400_000)
    args = ("-f", "json", "-q", "-j", "1", "--no-store")
    _, peak_small, _, _ = measure(tmp_path, "analyze", str(small), *args)
    _, peak_big, _, _ = measure(tmp_path, "analyze", str(big), *args, timeout=300)
    assert peak_big - peak_small < 64 * MB, f"{(peak_big - peak_small) >> 20} MB more for 8x the records"


def test_entry_limit_on_a_zip_of_many_files(tmp_path):
    from typer.testing import CliRunner

    from backline.cli import app

    p = tmp_path / "many.zip"
    with zipfile.ZipFile(p, "w") as zf:
        for i in range(3000):
            zf.writestr(f"f{i}.log", b"x\n")
    res = CliRunner().invoke(app, ["inventory", str(p), "--max-entries", "1000", "--format", "json"])
    assert res.exit_code in (0, 2) and res.exception is None or isinstance(res.exception, SystemExit)
    doc = json.loads(res.stdout)
    assert doc["summary"]["files"] <= 1000
    assert any("entries" in r["reason"] for r in doc["refusals"])

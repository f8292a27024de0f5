"""Benchmark evidence intake against plain baselines, in the same run.

1. Classification of every corpus file vs libmagic's ``file -b`` over the same
   files (one process each; ratio = ours / file).
2. Intake of a generated bundle (zip of logs + tar.gz of captures + gzip'd
   capture, ~N MB) vs ``zipfile.extractall`` + ``tarfile.extractall(filter="data")``
   of the nested tar.gz + gunzip of the .gz + sha256 of every file (the least an
   intake must do, without classification, checks or time probes; ratio = ours /
   baseline), with peak RSS of each in a fresh process.

Run: .venv/bin/python benchmarks/bench_intake.py [--mb 300]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def bench_classify() -> dict:
    from backline.evidence import classify_file

    files = [p for p in sorted(CORPUS.rglob("*")) if p.is_file()]
    t = time.perf_counter()
    for p in files:
        classify_file(p)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run(["file", "-b", *map(str, files)], check=True, stdout=subprocess.DEVNULL)
    base = time.perf_counter() - t
    return {"files": len(files), "ours_s": round(ours, 3), "file_cmd_s": round(base, 3),
            "ratio": round(ours / base, 2)}


def make_bundle(dest: Path, mb: int) -> Path:
    log_lines = (CORPUS / "logs/loghub-2k/Hadoop/Hadoop_2k.log").read_bytes()
    pcap = gzip.decompress((CORPUS / "net/zeek_echo_connections.pcap.gz").read_bytes())
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz", compresslevel=1) as tf:
        for i in range(max(1, mb // 40)):
            ti = tarfile.TarInfo(f"net/cap{i}.pcap")
            ti.size = len(pcap)
            tf.addfile(ti, io.BytesIO(pcap))
    bundle = dest / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("captures.tar.gz", inner.getvalue())
        zf.writestr("net/single.pcap.gz", gzip.compress(pcap, 1))
        n_logs = max(1, (mb * 1_000_000 // 2) // len(log_lines))
        for i in range(n_logs):
            zf.writestr(f"logs/app{i:04d}.log", log_lines)
    return bundle


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would include the
    parent's peak inherited across fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, bundle: str, work: str) -> None:
    t = time.perf_counter()
    if mode == "ours":
        from backline.evidence import collect

        intake = collect([Path(bundle)], Path(work))
        n = len(intake.artifacts)
    else:
        with zipfile.ZipFile(bundle) as zf:
            zf.extractall(work)
        # expand what the bundle nests too, as intake does (tar.gz members, .gz files)
        for p in list(Path(work).rglob("*.tar.gz")):
            with tarfile.open(p) as tf:
                tf.extractall(p.parent / (p.name + ".d"), filter="data")
            p.unlink()
        for p in list(Path(work).rglob("*.gz")):
            with gzip.open(p) as src, open(p.with_suffix(""), "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            p.unlink()
        n = 0
        for p in Path(work).rglob("*"):
            if p.is_file():
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                n += 1
    dt = time.perf_counter() - t
    rss_mb = _peak_rss_mb()
    print(json.dumps({"mode": mode, "seconds": round(dt, 3), "files": n, "peak_rss_mb": round(rss_mb, 1)}))


def bench_intake(mb: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    try:
        bundle = make_bundle(tmp, mb)
        out = {"bundle_mb": round(bundle.stat().st_size / 1e6, 1)}
        for mode in ("baseline", "ours"):
            work = tmp / f"work-{mode}"
            res = subprocess.run([sys.executable, __file__, "--child", mode, str(bundle), str(work)],
                                 check=True, capture_output=True, text=True)
            out[mode] = json.loads(res.stdout)
            expanded = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
            out[mode]["expanded_mb"] = round(expanded / 1e6, 1)
            shutil.rmtree(work)
        out["ratio"] = round(out["ours"]["seconds"] / out["baseline"]["seconds"], 2)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:5])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=300, help="approximate expanded size of the bundle")
    args = ap.parse_args()
    print("classification:", json.dumps(bench_classify()))
    print("intake:", json.dumps(bench_intake(args.mb)))


if __name__ == "__main__":
    main()

"""Minidump analysis speed: Backline in-process vs Breakpad's native ``minidump_stackwalk``.

For every minidump of the corpus (``../shared/corpus/dumps``), with the
collection's symbols, measure the median of ``--repeat`` runs of

* Backline, **cold**: parse + walk every thread + symbolize (fresh symbol cache,
  so .sym parsing is included) + automatic analysis + JSON document;
* Backline, **warm**: the same with symbol files already parsed (a server or
  a batch run over many dumps);
* the baseline: ``minidump_stackwalk -m DUMP SYMBOLS`` from the npm package
  ``minidump`` 0.26.0 (process start included; it is how the tool is used).

Prints one row per dump, then median and max of each column and the ratio.
Target (issue 5): median <= 50 ms per minidump.

Usage::

    python benchmarks/dumps_bench.py [--repeat 5] [--stackwalk PATH]

Without ``--stackwalk`` (or ``$BACKLINE_MINIDUMP_STACKWALK``) the binary is
installed with ``npm install --ignore-scripts minidump@0.26.0`` into a
temporary folder; if that fails the baseline column is left empty.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backline.analyzers.dumps.analysis import analyze_crash
from backline.analyzers.dumps.json_out import report_to_json
from backline.analyzers.dumps.minidump.parser import read_minidump
from backline.analyzers.dumps.minidump.process import report_from_minidump
from backline.analyzers.dumps.symbols import SymbolStore
from backline.errors import FormatError
from backline.testing import corpus_dir


def find_stackwalk(explicit: str | None) -> Path | None:
    cand = explicit or os.environ.get("BACKLINE_MINIDUMP_STACKWALK")
    if cand:
        return Path(cand)
    if shutil.which("npm") is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="mdsw-"))
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
                        "--prefix", str(tmp), "minidump@0.26.0"], capture_output=True, timeout=600)
    binary = tmp / "node_modules/minidump/bin/linux-x64/minidump_stackwalk"
    return binary if r.returncode == 0 and binary.exists() else None


def ours(dmp: Path, symbols: Path, store: SymbolStore | None) -> float:
    t = time.perf_counter()
    md = read_minidump(dmp)
    rep = report_from_minidump(md, store or SymbolStore([symbols]))
    rep = analyze_crash(rep, lambda a, n: md.memory.read_ptr(a, n))
    report_to_json(rep)
    return time.perf_counter() - t


def native(binary: Path, dmp: Path, symbols: Path) -> float:
    t = time.perf_counter()
    subprocess.run([str(binary), "-m", str(dmp), str(symbols)], capture_output=True, timeout=120)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stackwalk", default=None)
    args = ap.parse_args()
    dumps = sorted(p for p in (corpus_dir() / "dumps").glob("**/*.dmp"))
    binary = find_stackwalk(args.stackwalk)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.node()}  "
          f"{os.cpu_count()} cpus  Python {platform.python_version()}")
    print(f"# baseline: {binary or 'not available'}")
    print(f"{'dump':45} {'cold ms':>9} {'warm ms':>9} {'native ms':>10}")
    cold_all, warm_all, nat_all = [], [], []
    for dmp in dumps:
        symbols = dmp.parent / "symbols"
        try:
            read_minidump(dmp)
        except FormatError:
            continue                          # the deliberately broken dumps and the microdump
        cold = statistics.median(ours(dmp, symbols, None) for _ in range(args.repeat))
        store = SymbolStore([symbols])
        ours(dmp, symbols, store)
        warm = statistics.median(ours(dmp, symbols, store) for _ in range(args.repeat))
        nat = statistics.median(native(binary, dmp, symbols) for _ in range(args.repeat)) if binary else None
        cold_all.append(cold)
        warm_all.append(warm)
        if nat is not None:
            nat_all.append(nat)
        name = str(dmp.relative_to(corpus_dir() / "dumps"))
        print(f"{name:45} {cold * 1e3:9.1f} {warm * 1e3:9.1f} {'' if nat is None else f'{nat * 1e3:10.1f}'}")
    print()
    for label, vals in (("backline cold", cold_all), ("backline warm", warm_all), ("native", nat_all)):
        if vals:
            print(f"{label:15} median {statistics.median(vals) * 1e3:7.1f} ms   max {max(vals) * 1e3:7.1f} ms   n={len(vals)}")
    if nat_all:
        print(f"ratio backline cold / native (medians): {statistics.median(cold_all) / statistics.median(nat_all):.2f}")
        print(f"ratio backline warm / native (medians): {statistics.median(warm_all) / statistics.median(nat_all):.2f}")
    target = statistics.median(cold_all) * 1e3 if cold_all else float("nan")
    print(f"target median <= 50 ms: {'met' if target <= 50 else 'NOT met'} ({target:.1f} ms cold)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

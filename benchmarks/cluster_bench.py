"""A bundle of large logs analysed on a local Dask cluster against one process, same run.

Generates ``--logs`` log4j logs of ``--mb`` MB each (``logs_scale.generate``, a
different seed each), then runs ``backline analyze FOLDER --format json --out DIR
--no-store --no-kb-pack``:

1. with ``--jobs 1`` (the baseline: one process);
2. with ``--scheduler`` on a cluster started here (``dask scheduler`` and
   ``--workers`` ``dask worker`` processes of one thread each on 127.0.0.1,
   torn down afterwards).

Prints wall clock and CPU seconds of each, the CPU of every part of the cluster
run (the ``backline analyze`` client, the scheduler, each worker: read with
psutil before and after, so the cluster's start is not counted), the ratios
cluster / one process of wall clock and of total CPU, and whether the two
reports are equal (findings, facts but the records paths, events).  The load
average is printed before and after: on a loaded machine the wall ratio says
little and the CPU ratio is the figure to compare.

Usage::

    python benchmarks/cluster_bench.py [--logs 20] [--mb 10] [--workers 2] [--keep DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from logs_scale import BACKLINE, _report_view, generate, run  # noqa: E402

from backline.testing import local_dask_cluster  # noqa: E402


def _cpu(proc: psutil.Process) -> float:
    """User + system CPU seconds of a running process (its own threads; children not counted)."""
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", type=int, default=20)
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the one with least CPU is shown")
    ap.add_argument("--keep", type=Path, default=Path("/tmp/backline-cluster-bench"))
    a = ap.parse_args(argv)
    ev = a.keep / f"bundle-{a.logs}x{a.mb:g}mb"
    ev.mkdir(parents=True, exist_ok=True)
    for i in range(a.logs):
        p = ev / f"app{i:02d}.log"
        if not p.exists():
            generate(p, a.mb / 1000, seed=100 + i)
    size = sum(p.stat().st_size for p in ev.iterdir())
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores; {a.logs} logs, {size / 1e6:.0f} MB")
    base = [BACKLINE, "analyze", str(ev), "--format", "json", "--no-store", "--no-kb-pack"]
    ones = [run(base + ["--jobs", "1", "--out", str(a.keep / "report-local")]) for _ in range(a.repeat)]
    one = min(ones, key=lambda r: r["cpu"])

    dists = []
    with local_dask_cluster(a.keep / "dask", workers=a.workers) as (addr, procs):
        parts = {"scheduler": psutil.Process(procs[0].pid),
                 **{f"worker {i + 1}": psutil.Process(p.pid) for i, p in enumerate(procs[1:])}}
        for _ in range(a.repeat):
            before = {k: _cpu(p) for k, p in parts.items()}
            r = run(base + ["--jobs", "1", "--scheduler", addr, "--out", str(a.keep / "report-cluster")])
            r["parts"] = {"client (backline analyze)": r["cpu"],
                          **{k: _cpu(p) - before[k] for k, p in parts.items()}}
            r["cpu"] = sum(r["parts"].values())
            dists.append(r)
    dist = min(dists, key=lambda r: r["cpu"])
    same = _report_view(a.keep / "report-local" / "report.json") == _report_view(
        a.keep / "report-cluster" / "report.json")
    print(f"{'what':44} {'wall s':>8} {'CPU s':>7}")
    print(f"{'backline analyze --jobs 1 (one process)':44} {one['wall']:8.1f} {one['cpu']:7.1f}")
    print(f"{f'backline analyze --scheduler ({a.workers} workers)':44} {dist['wall']:8.1f} {dist['cpu']:7.1f}")
    for k, v in dist["parts"].items():
        print(f"{'  ' + k:44} {'':8} {v:7.1f}")
    print(f"cluster / one process: wall {dist['wall'] / one['wall']:.2f}x, CPU {dist['cpu'] / one['cpu']:.2f}x; "
          f"reports equal: {same}")
    if a.repeat > 1:
        print("all runs (wall s / CPU s): one process " + ", ".join(f"{r['wall']:.1f}/{r['cpu']:.1f}" for r in ones)
              + "; cluster " + ", ".join(f"{r['wall']:.1f}/{r['cpu']:.1f}" for r in dists))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

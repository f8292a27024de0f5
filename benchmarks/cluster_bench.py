"""A bundle of large logs analysed on a local Dask cluster against one process, same run.

Generates ``--logs`` log4j logs of ``--mb`` MB each (``logs_scale.generate``, a
different seed each), then runs ``backline analyze FOLDER --format json --out DIR
--no-store --no-kb-pack``:

1. with ``--jobs 1`` (the baseline: one process);
2. with ``--scheduler`` on a cluster started here (``dask scheduler`` and
   ``--workers`` ``dask worker`` processes of one thread each on 127.0.0.1,
   torn down afterwards).

Prints wall clock and CPU seconds of each (the cluster's CPU is the sum over its
processes, read from /proc before they end), the ratio, and whether the two
reports are equal (findings, facts but the records paths, events).

Usage::

    python benchmarks/cluster_bench.py [--logs 20] [--mb 10] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from logs_scale import BACKLINE, _report_view, generate, run  # noqa: E402

from backline.testing import local_dask_cluster  # noqa: E402



def _cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", type=int, default=20)
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
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
    one = run(base + ["--jobs", "1", "--out", str(a.keep / "report-local")])

    with local_dask_cluster(a.keep / "dask", workers=a.workers) as (addr, procs):
        before = sum(_cpu(p.pid) for p in procs)
        dist = run(base + ["--jobs", "1", "--scheduler", addr, "--out", str(a.keep / "report-cluster")])
        dist["cpu"] += sum(_cpu(p.pid) for p in procs) - before
    same = _report_view(a.keep / "report-local" / "report.json") == _report_view(
        a.keep / "report-cluster" / "report.json")
    print(f"{'what':44} {'wall s':>8} {'CPU s':>7}")
    print(f"{'backline analyze --jobs 1 (one process)':44} {one['wall']:8.1f} {one['cpu']:7.1f}")
    print(f"{f'backline analyze --scheduler ({a.workers} workers)':44} {dist['wall']:8.1f} {dist['cpu']:7.1f}")
    print(f"cluster / one process (wall): {dist['wall'] / one['wall']:.2f}x; reports equal: {same}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""A bundle of large logs analysed on a local Dask cluster against one process, same run.

Generates ``--logs`` log4j logs of ``--mb`` MB each (``logs_scale.generate``, a
different seed each), then runs ``backline analyze FOLDER --format json --out DIR
--no-store --no-kb-pack``:

1. with ``--jobs 1`` (the baseline: one process);
2. with ``--scheduler`` on a cluster started here (``dask scheduler`` and
   ``--workers`` ``dask worker`` processes of one thread each on 127.0.0.1,
   torn down afterwards);

in turn, ``--repeat`` times each, so that both see the same machine load.

Prints wall clock and CPU seconds of each, the CPU of every part of the cluster
run (the ``backline analyze`` client, the scheduler, each worker with the task
processes it starts: read with psutil before and after, so the cluster's start
is not counted), the ratios
cluster / one process of wall clock and of total CPU, and whether the two
reports are equal (findings, facts but the records paths, events) and whether
their JSON files are the same bytes (but for the times the analysis ran and its
temporary work folder).  The load average is printed before and after: on a loaded
machine the wall ratio says little and the CPU ratio is the figure to compare.

``--compare SRC``: each round also runs the cluster client from the ``src``
folder of another checkout of Backline (``PYTHONPATH=SRC/src``; e.g. the commit
before a change, ``git archive COMMIT src | tar -x -C SRC``, with the compiled
``_engine`` modules copied in), on the same cluster, so that the two clients are
compared under the same load.

Usage::

    python benchmarks/cluster_bench.py [--logs 20] [--mb 10] [--workers 2] [--keep DIR] [--repeat N]
                                       [--compare SRC]
"""

from __future__ import annotations

import argparse
import os
import re
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
    """CPU seconds (user + system) of a running process and everything under it: its live
    descendants (a worker's fork server, task supervisors) and the ones already reaped (task
    processes), whose time the kernel adds to their parent's children times."""
    return sum(_tree(proc))


def _tree(proc: psutil.Process) -> tuple[float, float]:
    """(the process's own CPU seconds, its descendants' live and reaped)."""
    own = rest = 0.0
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0
    for p in tree:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        if p.pid == proc.pid:
            own += t.user + t.system
            rest += t.children_user + t.children_system
        else:
            rest += t.user + t.system + t.children_user + t.children_system
    return own, rest


def _run_watched(cmd: list[str]) -> dict:
    """``run(cmd)``, plus the CPU of its main process alone (sampled until it exits)."""
    import threading

    own = [0.0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for p in psutil.Process().children():
                if p.cmdline()[-len(cmd) + 1:] == cmd[1:]:
                    try:
                        while not stop.is_set():
                            t = p.cpu_times()
                            own[0] = t.user + t.system
                            stop.wait(0.05)
                    except psutil.Error:
                        pass
                    return
            stop.wait(0.05)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    r = run(cmd)
    stop.set()
    th.join()
    r["main"] = own[0]
    return r


def _report_bytes(path: Path) -> bytes:
    """The JSON report's bytes without the times the analysis ran and its temporary work folder."""
    data = path.read_bytes()
    data = re.sub(rb'/backline-[A-Za-z0-9_]+/', b'/W/', data)
    return re.sub(rb'"(duration_s|started_at|finished_at|generated_at)": [^,\n]*', rb'"\1": null', data)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", type=int, default=20)
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the one with least CPU is shown")
    ap.add_argument("--keep", type=Path, default=Path("/tmp/backline-cluster-bench"))
    ap.add_argument("--compare", type=Path, default=None,
                    help="another checkout: its client (PYTHONPATH=SRC/src) also runs in each round")
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
    ones, dists, others = [], [], []
    with local_dask_cluster(a.keep / "dask", workers=a.workers) as (addr, procs):
        parts = {"scheduler": psutil.Process(procs[0].pid),
                 **{f"worker {i + 1}": psutil.Process(p.pid) for i, p in enumerate(procs[1:])}}

        def on_cluster(out: str, **kw) -> dict:
            before = {k: _tree(p) for k, p in parts.items()}
            r = run(base + ["--jobs", "1", "--scheduler", addr, "--out", str(a.keep / out)], **kw)
            after = {k: _tree(p) for k, p in parts.items()}
            r["parts"] = {"client (backline analyze)": r["cpu"]}
            for k in parts:
                own, rest = (after[k][0] - before[k][0]), (after[k][1] - before[k][1])
                r["parts"][k] = own + rest
                if rest:
                    r["parts"][f"  {k}: Dask process / task processes"] = f"{own:.1f} / {rest:.1f}"
            r["cpu"] = sum(v for v in r["parts"].values() if isinstance(v, float))
            r["load"] = os.getloadavg()[0]
            return r

        for _ in range(a.repeat):       # one process and cluster in turn: both see the same load
            ones.append(_run_watched(base + ["--jobs", "1", "--out", str(a.keep / "report-local")]))
            ones[-1]["load"] = os.getloadavg()[0]
            dists.append(on_cluster("report-cluster"))
            if a.compare is not None:
                env = {**os.environ, "PYTHONPATH": str(a.compare.resolve() / "src")}
                others.append(on_cluster("report-compare", env=env))
    one = min(ones, key=lambda r: r["cpu"])
    dist = min(dists, key=lambda r: r["cpu"])
    same = _report_view(a.keep / "report-local" / "report.json") == _report_view(
        a.keep / "report-cluster" / "report.json")
    same_bytes = _report_bytes(a.keep / "report-local" / "report.json") == _report_bytes(
        a.keep / "report-cluster" / "report.json")
    print(f"{'what':44} {'wall s':>8} {'CPU s':>7}")
    print(f"{'backline analyze --jobs 1 (one process)':44} {one['wall']:8.1f} {one['cpu']:7.1f}")
    print(f"{'  main process / its task processes':44} {one['main']:.1f} / {one['cpu'] - one['main']:.1f}".rjust(10))
    print(f"{f'backline analyze --scheduler ({a.workers} workers)':44} {dist['wall']:8.1f} {dist['cpu']:7.1f}")
    for k, v in dist["parts"].items():
        print(f"{'  ' + k:44} {'':8} {v:7.1f}" if isinstance(v, float) else f"{'  ' + k:44} {v:>16}")
    print(f"cluster / one process: wall {dist['wall'] / one['wall']:.2f}x, CPU {dist['cpu'] / one['cpu']:.2f}x; "
          f"reports equal: {same}; JSON files the same bytes (times and work folder aside): {same_bytes}")
    if a.repeat > 1:
        print("all runs (wall s / CPU s): one process " + ", ".join(f"{r['wall']:.1f}/{r['cpu']:.1f}" for r in ones)
              + "; cluster " + ", ".join(f"{r['wall']:.1f}/{r['cpu']:.1f}" for r in dists))
        print("pairs run in turn, cluster / one process (wall, CPU): " + ", ".join(
            f"{d['wall'] / o['wall']:.2f}x {d['cpu'] / o['cpu']:.2f}x" for o, d in zip(ones, dists)))
        print("load average after each run (one process, cluster): " + ", ".join(
            f"{o['load']:.1f} {d['load']:.1f}" for o, d in zip(ones, dists)))
        for n, r in enumerate(dists, 1):   # the first run of a new cluster starts its workers' fork servers
            print(f"  cluster run {n}: " + ", ".join(f"{k.strip()} {v:.1f}" for k, v in r["parts"].items()
                                                      if isinstance(v, float)))
    for n, r in enumerate(others, 1):
        print(f"  --compare client, run {n}: wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s (load {r['load']:.1f}): "
              + ", ".join(f"{k.strip()} {v:.1f}" for k, v in r["parts"].items() if isinstance(v, float)))
    if others:
        same_cmp = _report_bytes(a.keep / "report-compare" / "report.json") == _report_bytes(
            a.keep / "report-cluster" / "report.json")
        print(f"  --compare client's JSON file the same bytes: {same_cmp}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0 if same and same_bytes else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

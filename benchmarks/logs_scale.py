"""Speed and memory of the whole commands a user runs on large logs, against a baseline in the same run.

Two measurements, each a fresh process timed from outside (wall clock, CPU seconds
of the process and its children, peak memory: the largest resident size of the
process tree summed over its processes, sampled every 0.1 s):

1. ``templates``: ``backline logs templates FILE --per-line OUT.csv`` on 1,000,000
   mixed loghub lines (the input of ``benchmarks/logs_bench.py``: the 8 loghub-2k
   logs in 2,000-line blocks, runs of 3+ digits made fresh), and as the baseline
   Drain3 (default configuration) in a process of its own on the same file: read,
   mine every line, write the cluster id of every line (by default on the first
   200,000 lines; its rate is flat in the number of lines).  Backline's command runs once
   to warm up (the first run after an install compiles the bytecode), then ``--repeat``
   times; the median run by CPU time is reported.
2. ``analyze``: ``backline analyze FILE --format json --out DIR`` on a generated
   log4j log of ``--gb`` gigabytes (increasing time stamps, 12 message kinds with
   numbers, 12-digit hex ids, hosts; a stack trace every ~5,000 lines), with ``--jobs 1`` (the
   baseline) and ``--jobs 2`` (the file read in byte ranges by two processes); the
   two reports are compared (findings, facts but the records path, events).  The
   evidence store is left out (``--no-store``: copying the file into it is the
   intake's cost, ``benchmarks/bench_intake.py``), as are known issues (``--no-kb-pack``).

Usage::

    python benchmarks/logs_scale.py [--what templates,analyze] [--gb 1.0] [--drain3-lines 200000] [--repeat 3]
                                    [--keep DIR]

Needs the ``bench`` extra (``pip install -e '.[bench]'``) for Drain3.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

BACKLINE = str(Path(sys.executable).with_name("backline"))


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            continue
    return total


def run(cmd: list[str], **kw) -> dict:
    """Run ``cmd``; wall, CPU (user+sys, children included), peak tree RSS, peak single RSS."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            done.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, status, ru = os.wait4(proc.pid, 0)
    done.set()
    th.join()
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({status}):\n{err[-2000:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "peak_tree_mb": peak / 2**20}


_DRAIN3 = r"""
import sys
from drain3 import TemplateMiner
path, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = TemplateMiner()
with open(path, encoding="utf-8", errors="replace") as fh, open(out, "w") as o:
    for i, line in enumerate(fh):
        if i >= limit:
            break
        r = m.add_log_message(line.rstrip("\n"))
        o.write(f"{i + 1},{r['cluster_id']}\n")
"""


def templates_section(folder: Path, drain3_lines: int, repeat: int = 3) -> None:
    from logs_bench import build_input

    log = folder / "mixed-1m.log"
    if not log.exists():
        raw, _ = build_input(1_000_000)
        log.write_text("\n".join(raw[:1_000_000]) + "\n", encoding="utf-8")
    n = 1_000_000
    out = folder / "per-line.csv"
    cmd = [BACKLINE, "logs", "templates", str(log), "--per-line", str(out)]
    run(cmd)                        # warm-up: the first run after an install compiles the bytecode
    runs = sorted((run(cmd) for _ in range(repeat)), key=lambda r: r["cpu"])
    b = runs[len(runs) // 2]        # the median run by CPU time
    print("backline runs (CPU s): " + ", ".join(f"{r['cpu']:.2f}" for r in runs) + "; the median is reported")
    lines = sum(1 for _ in open(out)) - 1
    assert lines == n, lines
    d = run([sys.executable, "-c", _DRAIN3, str(log), str(folder / "drain3.csv"), str(drain3_lines)])
    dn = min(n, drain3_lines)
    print(f"input: {log} ({log.stat().st_size / 1e6:.0f} MB, {n:,} lines)")
    print(f"{'what':58} {'lines/s wall':>13} {'lines/CPU s':>12} {'peak MB':>8}")
    print(f"{'backline logs templates FILE --per-line OUT.csv':58} {n / b['wall']:13,.0f} "
          f"{n / b['cpu']:12,.0f} {b['peak_tree_mb']:8.0f}")
    print(f"{f'Drain3 default config, whole process ({dn:,} lines)':58} {dn / d['wall']:13,.0f} "
          f"{dn / d['cpu']:12,.0f} {d['peak_tree_mb']:8.0f}")
    print(f"ratio backline / Drain3: {(n / b['wall']) / (dn / d['wall']):.1f}x wall, "
          f"{(n / b['cpu']) / (dn / d['cpu']):.1f}x per CPU second")


_WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]


def generate(path: Path, gb: float, seed: int = 1) -> int:
    """A log4j log of about ``gb`` GB; returns its lines."""
    rng = random.Random(seed)
    target = int(gb * 1e9)
    t = 1_767_225_600.0                      # 2026-01-01
    kinds = [
        "INFO [{th}] org.app.Store: wrote {n} rows to table orders_{k} in {ms} ms",
        "INFO [{th}] org.app.Http: GET /api/v{k}/items/{n} answered 200 in {ms} ms",
        "DEBUG [{th}] org.app.Cache: hit ratio 0.{n} for region r{k}, {ms} entries",
        "INFO [{th}] org.app.Session: user {w} logged in from 10.{k}.{n3}.{n3b}",
        "WARN [{th}] org.app.Pool: pool {w} at {n} of 512 connections, waited {ms} ms",
        "INFO [{th}] org.app.Job: job {hex} step {k} done",
        "DEBUG [{th}] org.app.Net: sent {n} bytes to host-{k}.example.net:{port}",
        "INFO [{th}] org.app.Queue: queue {w} depth {n}",
        "ERROR [{th}] org.app.Client: call to host-{k}.example.net:{port} failed after {ms} ms",
        "INFO [{th}] org.app.Gc: young collection freed {n} KB in {ms} ms",
        "INFO [{th}] org.app.Audit: record {hex} written by {w}",
        "DEBUG [{th}] org.app.Sched: timer {k} fired, next in {ms} ms",
    ]
    trace = ("\njava.lang.IllegalStateException: order {n} in state {w}\n"
             "\tat org.app.Orders.ship(Orders.java:{k})\n\tat org.app.Worker.run(Worker.java:88)\n"
             "\tat java.lang.Thread.run(Thread.java:748)")
    size = lines = 0
    with open(path, "w", encoding="utf-8") as fh:
        while size < target:
            buf = []
            for _ in range(50_000):
                t += rng.random() * 0.004
                lt = time.gmtime(t)
                st = time.strftime("%Y-%m-%d %H:%M:%S", lt) + f",{int((t % 1) * 1000):03d}"
                k = rng.randrange(len(kinds))
                v = dict(th=f"worker-{rng.randrange(16)}", n=rng.randrange(100000), k=rng.randrange(9),
                         ms=rng.randrange(5000), w=rng.choice(_WORDS), n3=rng.randrange(256),
                         n3b=rng.randrange(256), hex=f"{rng.getrandbits(48):012x}", port=rng.randrange(1024, 65535))
                s = f"{st} {kinds[k].format(**v)}"
                if rng.random() < 0.0002:
                    s = f"{st} ERROR [{v['th']}] org.app.Worker: shipping failed" + trace.format(**v)
                    lines += 4
                buf.append(s)
            data = "\n".join(buf) + "\n"
            fh.write(data)
            size += len(data)
            lines += len(buf)
    return lines


def _report_view(path: Path) -> dict:
    doc = json.loads(path.read_text())
    facts = [f for f in doc.get("facts", []) if f.get("name") != "log.parquet"]
    return {"findings": doc.get("findings"), "facts": facts, "events": doc.get("events")}


def analyze_section(folder: Path, gb: float) -> None:
    log = folder / f"gen-{gb:g}gb.log"
    if not log.exists():
        t = time.perf_counter()
        n = generate(log, gb)
        print(f"generated {log} ({n:,} lines) in {time.perf_counter() - t:.0f} s")
    size = log.stat().st_size
    lines = sum(block.count(b"\n") for block in iter(lambda f=open(log, "rb"): f.read(1 << 24), b""))
    res = {}
    for jobs in (1, 2):
        out = folder / f"report-j{jobs}"
        res[jobs] = run([BACKLINE, "analyze", str(log), "--jobs", str(jobs), "--format", "json", "--out", str(out),
                         "--no-kb-pack", "--no-store"])
    same = _report_view(folder / "report-j1" / "report.json") == _report_view(folder / "report-j2" / "report.json")
    print(f"input: {log} ({size / 1e9:.2f} GB, {lines:,} lines)")
    print(f"{'what':40} {'wall s':>8} {'CPU s':>7} {'MB/s wall':>10} {'peak MB':>8}")
    for jobs in (1, 2):
        r = res[jobs]
        print(f"{f'backline analyze --jobs {jobs}':40} {r['wall']:8.1f} {r['cpu']:7.1f} {size / 1e6 / r['wall']:10.1f} "
              f"{r['peak_tree_mb']:8.0f}")
    print(f"ratio --jobs 2 / --jobs 1 (wall): {res[1]['wall'] / res[2]['wall']:.2f}x faster; reports equal: {same}")
    print(f"extrapolated to 10 GB at the --jobs 2 rate: {10e9 / (size / res[2]['wall']) / 60:.1f} min")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--what", default="templates,analyze")
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--drain3-lines", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3, help="measured runs of backline templates (after a warm-up)")
    ap.add_argument("--keep", type=Path, default=Path("/tmp/backline-logs-scale"))
    a = ap.parse_args(argv)
    a.keep.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    if "templates" in a.what:
        templates_section(a.keep, a.drain3_lines, a.repeat)
    if "analyze" in a.what:
        analyze_section(a.keep, a.gb)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

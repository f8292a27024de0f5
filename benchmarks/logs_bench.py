"""Speed of Backline's template miner against Drain3 (default config), same input, same run.

Builds a mixed input of >= 1,000,000 lines from the loghub-2k corpus: the 8
systems' raw logs, one 2,000-line block at a time (as separate files would
be), every run of 3+ digits replaced by fresh random digits so that repeated
blocks are new messages, not cache hits.  Headers are split off once with
Backline's header detection; both miners then get the same message list.

Prints lines/s for: plain Python iteration over the lines (the floor),
Backline's miner (block API), Backline end to end on a file (read, decode,
header split, mine), and Drain3; then the ratio Backline / Drain3.

Usage::

    python benchmarks/logs_bench.py [--lines N] [--drain3-lines N] [--analyzer]
                                    [--analyzer-baseline REV] [--analyzer-only] [--repeat N]

``--analyzer`` also times the whole ``logs.text`` analyzer on a 1M-line log4j
file (in a fresh process); ``--analyzer-baseline REV`` times the analyzer of git
revision REV on the same file in the same run and prints the ratio.

``--drain3-lines`` times Drain3 on the first N messages only (its rate is
flat in N); by default it gets all of them.  Needs the ``bench`` extra
(``pip install -e '.[bench]'``) for Drain3.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from backline.analyzers.logs.formats import detect_format  # noqa: E402
from backline.analyzers.logs.miner import TemplateMiner  # noqa: E402
from backline.analyzers.logs.reader import open_log  # noqa: E402
from backline.testing import corpus_dir  # noqa: E402

_DIGITS = re.compile(r"\d{3,}")


def build_input(n_lines: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(raw lines, messages) of at least ``n_lines`` lines, in per-system blocks."""
    base = corpus_dir() / "logs" / "loghub-2k"
    systems = []
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        lines = [ln.text for ln in open_log(d / f"{d.name}_2k.log")]
        systems.append((lines, detect_format(lines[:400])))
    rng = random.Random(seed)

    def fresh(m: re.Match[str]) -> str:
        return "".join(rng.choice("0123456789") for _ in m.group())

    raw: list[str] = []
    msgs: list[str] = []
    while len(raw) < n_lines:
        for lines, fmt in systems:
            for s in lines:
                s = _DIGITS.sub(fresh, s)
                raw.append(s)
                h = fmt.split(s)
                msgs.append(h.message if h else s)
    return raw, msgs


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_backline_messages(msgs: list[str], block: int = 65536) -> tuple[float, float, TemplateMiner]:
    """(wall seconds, CPU seconds of this process, miner)."""
    t, c = time.perf_counter(), time.process_time()
    miner = TemplateMiner()
    for i in range(0, len(msgs), block):
        miner.add_block(msgs[i:i + block])
    return time.perf_counter() - t, time.process_time() - c, miner


def bench_backline_file(raw: list[str]) -> tuple[float, float]:
    """End to end: write a file, then read + decode + split headers + mine it."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "mixed.log"
        p.write_text("\n".join(raw) + "\n", encoding="utf-8")
        t, c = time.perf_counter(), time.process_time()
        miner = TemplateMiner()
        fmt = None
        buf: list[str] = []
        for _, text in open_log(p).numbered():
            buf.append(text)
            if len(buf) == 2000:                       # one system's block: learn its format
                fmt = detect_format(buf[:400]) if fmt is None or not fmt.regex.match(buf[0]) else fmt
                rx = fmt.regex
                out = []
                for s in buf:
                    m = rx.match(s)
                    out.append(m.group("msg") if m else s)
                miner.add_block(out)
                buf = []
        return time.perf_counter() - t, time.process_time() - c


_ANALYZER_CHILD = r"""
import json, sys, time, tempfile, pathlib
import backline
from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs.text_analyzer import analyze_text_log
path, repeat = sys.argv[1], int(sys.argv[2])
best = None
for _ in range(repeat):
    with tempfile.TemporaryDirectory() as d:
        t, c = time.perf_counter(), time.process_time()
        n_out = sum(1 for _ in analyze_text_log(path, "big.log", AnalysisContext(work_dir=pathlib.Path(d))))
        run = (time.perf_counter() - t, time.process_time() - c)
    best = run if best is None else (min(best[0], run[0]), min(best[1], run[1]))
print(json.dumps({"wall": best[0], "cpu": best[1], "outputs": n_out, "module": backline.__file__}))
"""


def analyzer_input(raw: list[str], folder: Path, system_lines: int = 2000) -> tuple[Path, int]:
    """One system's log (Hadoop, log4j) grown to the input size: one file = one header format."""
    hadoop = [s for s in raw[: 16 * system_lines] if s[:4].isdigit() and " [" in s[:40]]
    lines = (hadoop * (len(raw) // max(1, len(hadoop)) + 1))[: len(raw)]
    p = folder / "big.log"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p, len(lines)


def bench_analyzer(log: Path, src: Path, repeat: int) -> dict:
    """The whole logs.text analyzer (records, miner, stats, findings, Parquet) on ``log``, with
    the ``backline`` package found under ``src``, in a fresh process (best of ``repeat``)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", _ANALYZER_CHILD, str(log), str(repeat)], env=env,
                         capture_output=True, text=True, check=True, timeout=3600)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not res["module"].startswith(str(src)):
        raise SystemExit(f"analyzer benchmark loaded {res['module']}, not the tree under {src}")
    return res


def baseline_tree(rev: str, folder: Path) -> Path:
    """The ``src`` folder of git revision ``rev`` of this repository, extracted into ``folder``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True,
                          check=True, timeout=300).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        tf.extractall(folder, filter="data")
    return folder / "src"


def bench_drain3(msgs: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for Drain3 with its default configuration."""
    from drain3 import TemplateMiner as Drain3

    d = Drain3()
    t, c = time.perf_counter(), time.process_time()
    for m in msgs:
        d.add_log_message(m)
    return time.perf_counter() - t, time.process_time() - c


def analyzer_section(raw: list[str], baseline: str, repeat: int) -> None:
    """Time the analyzer now (and at git revision ``baseline``) on the same input; print."""
    with tempfile.TemporaryDirectory() as d:
        log, na = analyzer_input(raw, Path(d))
        runs = [("logs.text analyzer (file)", ROOT / "src")]
        if baseline:
            runs.append((f"  same, at {baseline}", baseline_tree(baseline, Path(d))))
        res = []
        for label, src in runs:
            r = bench_analyzer(log, src, repeat)
            res.append(r)
            print(f"{label:<30}: {rate(na, r['wall']):>12,.0f} lines/s  (per CPU second: "
                  f"{rate(na, r['cpu']):,.0f}; records, templates, stats, findings, Parquet; "
                  f"{na:,} log4j lines)")
        if len(res) == 2:
            print(f"ratio analyzer now / {baseline:<9}: {res[1]['wall'] / res[0]['wall']:>8.1f}x  "
                  f"(per CPU second: {res[1]['cpu'] / res[0]['cpu']:.1f}x)")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--drain3-lines", type=int, default=0)
    ap.add_argument("--analyzer", action="store_true", help="also time the whole logs.text analyzer")
    ap.add_argument("--analyzer-baseline", metavar="REV", default="",
                    help="also time the analyzer as it was at git revision REV (same input, same run)")
    ap.add_argument("--analyzer-only", action="store_true",
                    help="time only the analyzer (with --analyzer / --analyzer-baseline)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs for each timing (shared machines are noisy)")
    args = ap.parse_args(argv)

    raw, msgs = build_input(args.lines)
    n = len(msgs)
    print(f"best of {args.repeat} runs each; load average now {os.getloadavg()[0]:.1f}")
    print(f"input: {n:,} lines from loghub-2k ({len(set(msgs)):,} distinct messages); "
          f"python {platform.python_version()}, {os.cpu_count()} cores")

    if args.analyzer_only:
        if not (args.analyzer or args.analyzer_baseline):
            ap.error("--analyzer-only needs --analyzer or --analyzer-baseline")
        analyzer_section(raw, args.analyzer_baseline, args.repeat)
        return 0
    floor = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        for _ in msgs:
            pass
        floor = min(floor, time.perf_counter() - t)
    print(f"python line iteration (floor) : {rate(n, floor):>12,.0f} lines/s")

    best = [bench_backline_messages(msgs) for _ in range(args.repeat)]
    dt, cpu, miner = min(best, key=lambda x: x[0])
    bl, bl_cpu = rate(n, dt), rate(n, min(b[1] for b in best))
    print(f"backline miner (messages)     : {bl:>12,.0f} lines/s  (per CPU second: {bl_cpu:,.0f}; "
          f"{len(list(miner.templates()))} templates, {miner.shapes} shapes)")
    runs2 = [bench_backline_file(raw) for _ in range(args.repeat)]
    print(f"backline end to end (file)    : {rate(n, min(r[0] for r in runs2)):>12,.0f} lines/s  "
          f"(per CPU second: {rate(n, min(r[1] for r in runs2)):,.0f}; read, decode, headers, mine)")

    if args.analyzer or args.analyzer_baseline:
        analyzer_section(raw, args.analyzer_baseline, args.repeat)

    try:
        sub = msgs[: args.drain3_lines] if args.drain3_lines else msgs
        runs = [bench_drain3(sub) for _ in range(args.repeat)]
        d3 = rate(len(sub), min(r[0] for r in runs))
        d3_cpu = rate(len(sub), min(r[1] for r in runs))
        print(f"drain3 default (messages)     : {d3:>12,.0f} lines/s  (per CPU second: {d3_cpu:,.0f}; "
              f"on {len(sub):,} lines)")
        print(f"ratio backline / drain3       : {bl / d3:>12.1f}x  (per CPU second: {bl_cpu / d3_cpu:.1f}x)")
    except ImportError:
        print("drain3 not installed (pip install -e '.[bench]'): no baseline")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process      : {peak:,.0f} MB (includes the input lists)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

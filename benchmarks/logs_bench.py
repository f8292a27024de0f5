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

    python benchmarks/logs_bench.py [--lines N] [--drain3-lines N]

``--drain3-lines`` times Drain3 on the first N messages only (its rate is
flat in N); by default it gets all of them.  Needs the ``bench`` extra
(``pip install -e '.[bench]'``) for Drain3.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import resource
import sys
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
        for ln in open_log(p):
            buf.append(ln.text)
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


def bench_analyzer(raw: list[str], system_lines: int = 2000) -> tuple[float, float, int]:
    """The whole logs.text analyzer (records, miner, stats, findings, Parquet) on one
    system's log grown to the input size (one file = one header format)."""
    from backline.analyzers.base import AnalysisContext
    from backline.analyzers.logs.text_analyzer import analyze_text_log

    hadoop = [s for s in raw[: 16 * system_lines] if s[:4].isdigit() and " [" in s[:40]]
    lines = (hadoop * (len(raw) // max(1, len(hadoop)) + 1))[: len(raw)]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "big.log"
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        (Path(d) / "work").mkdir()
        t, c = time.perf_counter(), time.process_time()
        for _ in analyze_text_log(p, "big.log", AnalysisContext(work_dir=Path(d) / "work")):
            pass
        return time.perf_counter() - t, time.process_time() - c, len(lines)


def bench_drain3(msgs: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for Drain3 with its default configuration."""
    from drain3 import TemplateMiner as Drain3

    d = Drain3()
    t, c = time.perf_counter(), time.process_time()
    for m in msgs:
        d.add_log_message(m)
    return time.perf_counter() - t, time.process_time() - c


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--drain3-lines", type=int, default=0)
    ap.add_argument("--analyzer", action="store_true", help="also time the whole logs.text analyzer")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs for each timing (shared machines are noisy)")
    args = ap.parse_args(argv)

    raw, msgs = build_input(args.lines)
    n = len(msgs)
    print(f"best of {args.repeat} runs each; load average now {os.getloadavg()[0]:.1f}")
    print(f"input: {n:,} lines from loghub-2k ({len(set(msgs)):,} distinct messages); "
          f"python {platform.python_version()}, {os.cpu_count()} cores")

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

    if args.analyzer:
        da, ca, na = bench_analyzer(raw)
        print(f"logs.text analyzer (file)     : {rate(na, da):>12,.0f} lines/s  (per CPU second: "
              f"{rate(na, ca):,.0f}; records, templates, stats, findings, Parquet; {na:,} log4j lines)")

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

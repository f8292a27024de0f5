"""Drill-down views on large evidence: what a click on a reference costs.

Times are CPU seconds of this process (DuckDB's threads included).  Captures: the packet index a capture's first packet view builds
(:func:`backline.cases.drill.net.build_index`) against the capture analysis
of the same file in the same run (``analyze_capture``, the baseline), then the
view of a packet near the end (conversation query + decoded fields, which
reads the capture up to that packet).  Logs: the log view at a line near the
end of a large log's records (DuckDB over the Parquet the analyzer wrote),
plain and with a search and a level filter, against the analysis of the log
(the baseline).

    python benchmarks/drill_bench.py [--packets 1000000] [--lines 1000000]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(fn):
    """(CPU seconds of this process, result): CPU time, not wall time, so that other work on a
    shared machine does not count; the ratios against the same-run baselines are the figures."""
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def bench_capture(tmp: Path, packets: int) -> None:
    from backline.analyzers.net.capture import analyze_capture
    from backline.cases.drill.net import build_index, conversation, packet_fields

    cap = tmp / "big.pcap"
    subprocess.run([sys.executable, str(Path(__file__).with_name("net_capgen.py")), str(cap), "--packets",
                    str(packets)], check=True, stdout=subprocess.DEVNULL)
    base, st = timed(lambda: analyze_capture(cap))
    index = tmp / "packets.parquet"
    t_index, built = timed(lambda: build_index(cap, index, cap.name, 1 << 40))
    n = built["packets"]
    target = n - 10
    t_conv, conv = timed(lambda: conversation(index, target))
    earlier = [p["number"] for p in conv["packets"] if p["number"] < target]
    t_fields, _ = timed(lambda: packet_fields(cap, target, cap.name, earlier))
    mb = cap.stat().st_size / 1e6
    print(f"capture: {n:,} packets, {mb:.0f} MB; packet index {index.stat().st_size / 1e6:.1f} MB")
    print(f"  baseline analyze_capture      {base:7.2f} s  ({n / base:,.0f} packets/s)")
    print(f"  build_index (first view)      {t_index:7.2f} s  ({n / t_index:,.0f} packets/s) "
          f"= {t_index / base:.2f}x the analysis")
    print(f"  conversation of packet {target:,}  {t_conv * 1000:7.0f} ms ({conv['count']} packets in it)")
    print(f"  packet_fields of packet {target:,} {t_fields:7.2f} s  (reads the capture up to it) "
          f"= {t_fields / base:.2f}x the analysis")


def bench_log(tmp: Path, lines: int) -> None:
    from backline.analyzers.base import AnalysisContext
    from backline.analyzers.logs.text_analyzer import analyze_text_log
    from backline.cases.drill.logs import LogQuery, log_view

    log = tmp / "app.log"
    rnd = random.Random(1)
    levels = ["INFO"] * 80 + ["DEBUG"] * 15 + ["WARN"] * 4 + ["ERROR"]
    with open(log, "w") as f:
        for i in range(lines):
            lv = rnd.choice(levels)
            f.write(f"2026-11-27 11:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d},{i % 1000:03d} {lv} "
                    f"[worker-{i % 8}] orders.svc - request {i} for sku-{rnd.randint(1, 500)} took "
                    f"{rnd.randint(1, 900)} ms\n")
    work = tmp / "work"
    work.mkdir()
    ctx = AnalysisContext(work_dir=work)
    base, _ = timed(lambda: list(analyze_text_log(log, "app.log", ctx)))
    records = work / "records.parquet"
    at = lines - 100
    t_plain, v = timed(lambda: log_view(records, at, LogQuery()))
    t_filt, vf = timed(lambda: log_view(records, at, LogQuery(levels=("ERROR",), search="sku-42 ")))
    print(f"log: {lines:,} lines, records {records.stat().st_size / 1e6:.1f} MB")
    print(f"  baseline analysis of the log  {base:7.2f} s")
    print(f"  log view at line {at:,}       {t_plain * 1000:7.0f} ms  ({len(v['records'])} rows)")
    print(f"  ... ERROR + search 'sku-42 '   {t_filt * 1000:7.0f} ms  ({vf['matching']} matching)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as d:
        bench_capture(Path(d), args.packets)
        bench_log(Path(d), args.lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

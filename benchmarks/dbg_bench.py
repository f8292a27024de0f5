#!/usr/bin/env python3
"""`backline dbg FILE -c "lm; ~*k; !analyze -v"` on every corpus minidump, process start included.

Target (issue 14): median <= 200 ms.  Baseline in the same run: `backline dump FILE --json`
(the automatic analysis alone, same process start), and `python -c pass` (the interpreter's own
start), so the ratio says what the session adds.

Wall time depends on what else the machine runs; each command is single-threaded, so its CPU time
(user + system, from the kernel's accounting of the child) is the wall time it takes on a core it
has to itself.  Both are printed, with the load average; the verdict uses wall time when the
machine was quiet (1-minute load below the core count) and CPU time otherwise, and says which.

    python benchmarks/dbg_bench.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from backline.testing import corpus_dir  # noqa: E402

BACKLINE = str(Path(sys.executable).with_name("backline"))
TARGET_MS = 200.0


def dumps() -> list[Path]:
    root = corpus_dir() / "dumps"
    out = []
    for gen in sorted(root.glob("**/generated")):
        for js in sorted(gen.glob("*.rust.json")):
            stem = js.name[: -len(".rust.json")]
            d = gen.parent / f"{stem}.dmp"
            if not stem.endswith(".nosym") and d.exists() and js.stat().st_size > 0:
                out.append(d)
    return out


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run of ``cmd``."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = (time.perf_counter() - t0) * 1000
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000
    return wall, cpu


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    load_before = os.getloadavg()[0]
    python = _medians([timed([sys.executable, "-c", "pass"]) for _ in range(a.runs)])[0]
    for d in dumps():
        syms = d.parent / "symbols"
        sym_args = ["--symbols", str(syms)] if syms.is_dir() else []
        dbg = [timed([BACKLINE, "dbg", str(d), *sym_args, "-c", "lm; ~*k; !analyze -v"]) for _ in range(a.runs)]
        dump = [timed([BACKLINE, "dump", str(d), *sym_args, "--json"]) for _ in range(a.runs)]
        (dbg_wall, dbg_cpu), (dump_wall, dump_cpu) = _medians(dbg), _medians(dump)
        rows.append({"dump": f"{d.parent.name}/{d.name}", "dbg_ms": dbg_wall, "dump_ms": dump_wall,
                     "dbg_cpu_ms": dbg_cpu, "dump_cpu_ms": dump_cpu})
    load = max(load_before, os.getloadavg()[0])
    quiet = load < (os.cpu_count() or 1)
    med_dbg = statistics.median(r["dbg_ms"] for r in rows)
    med_dump = statistics.median(r["dump_ms"] for r in rows)
    cpu_dbg = statistics.median(r["dbg_cpu_ms"] for r in rows)
    cpu_dump = statistics.median(r["dump_cpu_ms"] for r in rows)
    judged, basis = (med_dbg, "wall") if quiet else (cpu_dbg, "CPU (machine loaded)")
    summary = {"dumps": len(rows), "runs": a.runs, "median_dbg_ms": round(med_dbg, 1),
               "median_dump_json_ms": round(med_dump, 1), "median_dbg_cpu_ms": round(cpu_dbg, 1),
               "median_dump_json_cpu_ms": round(cpu_dump, 1), "python_start_ms": round(python, 1),
               "ratio_dbg_to_dump": round(med_dbg / med_dump, 2), "load_average": round(load, 2),
               "judged_on": basis, "target_ms": TARGET_MS, "meets_target": judged <= TARGET_MS}
    if a.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=2))
        return 0
    print(f"{'dump':<48} {'dbg -c ms':>10} {'(CPU)':>7} {'dump --json ms':>15} {'(CPU)':>7}")
    for r in rows:
        print(f"{r['dump']:<48} {r['dbg_ms']:>10.1f} {r['dbg_cpu_ms']:>7.1f} {r['dump_ms']:>15.1f} "
              f"{r['dump_cpu_ms']:>7.1f}")
    print(f"\nmedian over {len(rows)} dumps, {a.runs} runs each (load average {load:.1f}, "
          f"{os.cpu_count()} cores): backline dbg -c \"lm; ~*k; !analyze -v\" {med_dbg:.1f} ms wall, "
          f"{cpu_dbg:.1f} ms CPU; baseline backline dump --json {med_dump:.1f} ms wall, {cpu_dump:.1f} ms CPU "
          f"(ratio {med_dbg / med_dump:.2f} wall, {cpu_dbg / cpu_dump:.2f} CPU); python -c pass {python:.1f} ms")
    print(f"target <= {TARGET_MS:.0f} ms, judged on {basis}: {'met' if judged <= TARGET_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

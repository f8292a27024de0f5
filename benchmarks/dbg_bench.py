#!/usr/bin/env python3
"""`backline dbg FILE -c "lm; ~*k; !analyze -v"` on every corpus minidump, process start included.

Target (issue 14): median <= 200 ms.  Baseline in the same run: `backline dump FILE --json`
(the automatic analysis alone, same process start), and `python -c pass` (the interpreter's own
start), so the ratio says what the session adds.

    python benchmarks/dbg_bench.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
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


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    python = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(a.runs))
    for d in dumps():
        syms = d.parent / "symbols"
        sym_args = ["--symbols", str(syms)] if syms.is_dir() else []
        dbg = [timed([BACKLINE, "dbg", str(d), *sym_args, "-c", "lm; ~*k; !analyze -v"]) for _ in range(a.runs)]
        dump = [timed([BACKLINE, "dump", str(d), *sym_args, "--json"]) for _ in range(a.runs)]
        rows.append({"dump": f"{d.parent.name}/{d.name}", "dbg_ms": statistics.median(dbg),
                     "dump_ms": statistics.median(dump)})
    med_dbg = statistics.median(r["dbg_ms"] for r in rows)
    med_dump = statistics.median(r["dump_ms"] for r in rows)
    summary = {"dumps": len(rows), "runs": a.runs, "median_dbg_ms": round(med_dbg, 1),
               "median_dump_json_ms": round(med_dump, 1), "python_start_ms": round(python, 1),
               "ratio_dbg_to_dump": round(med_dbg / med_dump, 2), "target_ms": TARGET_MS,
               "meets_target": med_dbg <= TARGET_MS}
    if a.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=2))
        return 0
    print(f"{'dump':<55} {'dbg -c ms':>10} {'dump --json ms':>15}")
    for r in rows:
        print(f"{r['dump']:<55} {r['dbg_ms']:>10.1f} {r['dump_ms']:>15.1f}")
    print(f"\nmedian over {len(rows)} dumps, {a.runs} runs each: backline dbg -c \"lm; ~*k; !analyze -v\" "
          f"{med_dbg:.1f} ms; baseline backline dump --json {med_dump:.1f} ms (ratio {med_dbg / med_dump:.2f}); "
          f"python -c pass {python:.1f} ms")
    print(f"target <= {TARGET_MS:.0f} ms: {'met' if med_dbg <= TARGET_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

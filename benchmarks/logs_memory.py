"""Peak memory of the ``logs.text`` analyzer on many *distinct* free-text lines.

Each size runs in a fresh process (``resource.getrusage`` ``ru_maxrss``), next
to a 10-line baseline run in the same invocation, so the printed growth is
what the lines cost.  The lines are timestamped sentences of random words
(none repeat, few share a shape): the worst case for a template miner.

Usage::

    python benchmarks/logs_memory.py [--lines 200000 1000000] [--rev REV]

``--rev REV`` also runs git revision REV's analyzer (from a temporary
worktree) on the same files in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs.text_analyzer import analyze_text_log
from backline.model import Fact
t0 = time.process_time()
ctx = AnalysisContext()
facts = {o.name: o.value for o in analyze_text_log(sys.argv[2], "f.log", ctx) if isinstance(o, Fact)}
print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "cpu_s": time.process_time() - t0, "records": facts["log.records"],
                  "templates": facts["log.templates"]}))
"""


def write_distinct(path: Path, n: int, seed: int = 0) -> None:
    """``n`` distinct timestamped lines of 5-12 random lower-case words."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(20000)]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            words = " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 12)))
            fh.write(f"2024-01-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} INFO {words}\n")


def measure(src: Path, log: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(log)], check=True,
                         capture_output=True, text=True, timeout=1800)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--rev", help="also measure this git revision's analyzer")
    a = ap.parse_args()
    srcs = [("this tree", ROOT / "src")]
    tmp = Path(tempfile.mkdtemp())
    if a.rev:
        wt = tmp / "rev"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), a.rev],
                       check=True, capture_output=True)
        srcs.append((a.rev, wt / "src"))
    print(f"{time.strftime('%Y-%m-%d')} {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}")
    try:
        small = tmp / "small.log"
        write_distinct(small, 10)
        for label, src in srcs:
            base = measure(src, small)
            print(f"[{label}] baseline (10 lines): {base['rss_kb'] / 1024:.0f} MB")
            for n in a.lines:
                log = tmp / f"d{n}.log"
                if not log.exists():
                    write_distinct(log, n)
                r = measure(src, log)
                print(f"[{label}] {n:>9,} distinct lines ({log.stat().st_size / 1e6:.0f} MB): peak "
                      f"{r['rss_kb'] / 1024:.0f} MB (+{(r['rss_kb'] - base['rss_kb']) / 1024:.0f} MB), "
                      f"{r['cpu_s']:.1f} s CPU, {r['records']:,} records, {r['templates']:,} templates")
    finally:
        if a.rev:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "rev")],
                           capture_output=True)


if __name__ == "__main__":
    main()

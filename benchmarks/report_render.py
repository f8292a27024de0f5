"""Benchmark: build and render reports of large analyses.

Measures build_report, render_json, render_html, render_markdown and
write_reports (all formats) on a synthetic result with N events over 40
artifacts, with time (best of 3 up to 200k events) and peak traced memory; the baseline is the naive
export of the same events (``json.dumps`` of ``dataclasses.asdict`` per
event, ``default=str``), run in the same process.  Prints the ratio.

    .venv/bin/python benchmarks/report_render.py            # 100k events
    .venv/bin/python benchmarks/report_render.py 1000000
"""

from __future__ import annotations

import dataclasses
import gc
import json
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))

from samples import many_events_result  # noqa: E402

from backline.report import build_report, render_html, render_json, render_markdown, write_reports  # noqa: E402

REPEAT = 3


def measure(label: str, fn):
    """Best of ``REPEAT`` untraced timings of ``fn`` (the machine is shared, so
    the minimum is the least noisy), then one run under tracemalloc for the peak."""
    elapsed = float("inf")
    for _ in range(REPEAT):
        gc.collect()
        t0 = time.perf_counter()
        value = fn()
        elapsed = min(elapsed, time.perf_counter() - t0)
        del value
    gc.collect()
    tracemalloc.start()
    value = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<36} {elapsed:8.2f} s   peak {peak / 2**20:8.1f} MiB")
    return value, elapsed, peak


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    global REPEAT
    REPEAT = 3 if n <= 200_000 else 1
    print(f"python {platform.python_version()} on {platform.machine()}, {n:,} events, 40 artifacts")
    result = many_events_result(n)
    _, base_t, base_m = measure("baseline: json.dumps(asdict(event))",
                                lambda: json.dumps([dataclasses.asdict(e) for e in result.events], default=str))
    report, t_build, _ = measure("build_report", lambda: build_report(result))
    _, t_json, m_json = measure("render_json", lambda: render_json(report))
    _, t_html, m_html = measure("render_html", lambda: render_html(report))
    _, t_md, _ = measure("render_markdown", lambda: render_markdown(report))
    with tempfile.TemporaryDirectory() as tmp:
        _, t_all, m_all = measure("write_reports json+md+html+txt",
                                  lambda: write_reports(report, Path(tmp), ["json", "md", "html", "txt"]))
        sizes = {p.name: p.stat().st_size for p in Path(tmp).iterdir()}
    print("sizes:", ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sorted(sizes.items())))
    print(f"ratio render_json / baseline: time {t_json / base_t:.2f}x, memory {m_json / base_m:.2f}x")
    print(f"ratio build+all formats / baseline: time {(t_build + t_all) / base_t:.2f}x, "
          f"memory {m_all / base_m:.2f}x")


if __name__ == "__main__":
    main()

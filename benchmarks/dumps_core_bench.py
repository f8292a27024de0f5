"""ELF core and text-trace analysis time, side by side with gdb on the same cores.

Builds the corpus's Linux crash programs (``corpus/dumps/linux``) with gcc,
makes their cores (kernel core, or gdb's generate-core-file; gcore for the
deadlock), then for each core measures in-process ``load_core`` time (first
call, and median of warm repeats) and ``gdb -batch -ex 'thread apply all bt'``
(median of 3 runs) and prints the ratio.  Text artifacts of
``corpus/dumps/text`` are timed too.

    .venv/bin/python benchmarks/dumps_core_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "analyzers" / "dumps" / "elfcore"))

from backline.analyzers.dumps import elfsym  # noqa: E402
from backline.analyzers.dumps.elfcore import load_core  # noqa: E402
from backline.analyzers.dumps.text import parse_text_crash  # noqa: E402
from backline.testing import corpus_dir  # noqa: E402


def build(out: Path) -> dict[str, tuple[Path, Path]]:
    import conftest as c    # the test fixture's helpers: same build, same cores
    src = corpus_dir() / "dumps" / "linux"
    cores = {}
    for name in c.PROGRAMS:
        exe = out / name
        subprocess.run(["gcc", *c.CFLAGS, *(["-pthread"] if name == "deadlock" else []), "-o", str(exe),
                        str(src / f"{name}.c")], check=True, capture_output=True)
        core, _how = c._gcore_hung(exe, out) if name == "deadlock" else c._crash(exe, out)
        cores[name] = (exe, core)
    return cores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cores = build(Path(tmp))
        load_core(cores["null_deref"][1], [cores["null_deref"][0].parent])     # imports, warm-up
        print(f"{'core':16} {'size':>9} {'frames':>7} {'cold ms':>8} {'warm ms':>8} {'gdb ms':>8} "
              f"{'gdb/cold':>8} {'gdb/warm':>8}")
        for name, (exe, core) in cores.items():
            elfsym._IMAGE_CACHE.clear()          # cold: every ELF/debug file opened and indexed again
            t0 = time.perf_counter()
            rep = load_core(core, [exe.parent])
            first = time.perf_counter() - t0
            warm = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                load_core(core, [exe.parent])
                warm.append(time.perf_counter() - t0)
            gdb = []
            for _ in range(3):
                t0 = time.perf_counter()
                subprocess.run(["gdb", "-q", "-batch", "-ex", "thread apply all bt", str(exe), str(core)],
                               capture_output=True)
                gdb.append(time.perf_counter() - t0)
            frames = sum(len(t.frames) for t in rep.threads)
            w, g = statistics.median(warm), statistics.median(gdb)
            print(f"{name:16} {core.stat().st_size:>9} {frames:>7} {first * 1e3:>8.1f} {w * 1e3:>8.1f} "
                  f"{g * 1e3:>8.1f} {g / first:>8.2f} {g / w:>8.2f}")
    texts = sorted((corpus_dir() / "dumps" / "text").glob("*/*"))
    texts = [p for p in texts if p.suffix in (".txt", ".log")]
    times = []
    for p in texts:
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            parse_text_crash(p)
        times.append((time.perf_counter() - t0) / args.repeat)
    print(f"text artifacts: {len(texts)} files, median {statistics.median(times) * 1e3:.2f} ms, "
          f"max {max(times) * 1e3:.2f} ms per file")


if __name__ == "__main__":
    main()

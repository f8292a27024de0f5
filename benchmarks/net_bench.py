"""Benchmark ``backline net`` against ``tshark -q -z expert`` on one large capture.

Makes the capture with Backline's own generator (``net_capgen.py``: HTTP, DNS,
TLS over many interleaved connections with loss, retransmissions, resets and
zero windows), then runs both tools on it in this same run and prints packets
per second (wall and CPU) and peak memory (max RSS) of each, and the ratios.

Usage::

    python benchmarks/net_bench.py [--packets 5200000] [--capture /tmp/net-bench.pcap]
                                   [--keep] [--no-tshark]
                                   [--analyzer-baseline REV] [--analyzer-baseline-src DIR]
                                   [--analyzer-only] [--repeat N]

``--analyzer-baseline REV`` also times the analysis function
(``analyze_capture``) of git revision ``REV`` of this repository against the
current code, on the same file in the same run, each in a fresh process,
alternating, and prints the best CPU time of each and the ratio.  The compiled
engine is not in ``git archive``: give a built copy of REV's ``src`` with
``--analyzer-baseline-src DIR`` (e.g. ``cp -r src /tmp/base-src`` before a change).

Targets (issue 4): >= 500,000 packets/s and <= 450 MB peak for Backline.
tshark comes from Debian (``apt-get install -y tshark``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_MEASURE = r"""
import json, resource, subprocess, sys, time
t = time.time()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.time() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": r.returncode, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "max_rss_mb": ru.ru_maxrss / 1024, "stderr": r.stderr.decode()[-300:]}))
"""


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd`` in a fresh process; return wall/CPU seconds and its peak RSS."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


_ANALYZE = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from backline.analyzers.net.capture import analyze_capture
t, c = time.time(), time.process_time()
s = analyze_capture(sys.argv[2])
wall, cpu = time.time() - t, time.process_time() - c
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "packets": s.packets,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "check": [s.tcp.n_streams, s.tcp.counts, s.tcp.state_counts(), s.rst_frames,
                            s.syn_frames, s.http_request_frames, s.http_status, s.dns.queries,
                            s.dns.responses, s.tls_alert_counts, len(s.http), len(s.zero_windows)]}))
"""


def baseline_tree(rev: str, folder: Path) -> Path:
    """The ``src`` folder of git revision ``rev`` of this repository, extracted into ``folder``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True,
                          check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=data, check=True)
    return folder / "src"


def analyzer_section(cap: Path, baseline: str, base_src: Path, repeat: int) -> None:
    """Time ``analyze_capture`` now and at git revision ``baseline``, alternating; print."""
    trees = [("now", ROOT / "src"), (baseline, base_src)]
    best: dict[str, dict] = {}
    for _ in range(repeat):
        for name, tree in trees:
            out = subprocess.run([sys.executable, "-c", _ANALYZE, str(tree), str(cap)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if name not in best or r["cpu_s"] < best[name]["cpu_s"]:
                best[name] = r
    print(f"\nanalysis only (analyze_capture), best of {repeat}, load {os.getloadavg()[0]:.1f}")
    print(f"{'code':12} {'wall s':>8} {'cpu s':>8} {'pkt/s cpu':>12} {'peak MB':>9}")
    for name, r in best.items():
        print(f"{name:12} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} {r['packets'] / r['cpu_s']:>12,.0f} "
              f"{r['max_rss_mb']:>9,.0f}")
    now, base = best["now"], best[baseline]
    same = now["check"] == base["check"]
    print(f"ratio now / {baseline}: {base['cpu_s'] / now['cpu_s']:.2f}x faster per CPU second; "
          f"counts {'identical' if same else 'DIFFER'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="backline net vs tshark -z expert")
    ap.add_argument("--packets", type=int, default=5_200_000)
    ap.add_argument("--capture", default="/tmp/net-bench.pcap")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the capture file")
    ap.add_argument("--no-tshark", action="store_true", help="skip the baseline")
    ap.add_argument("--analyzer-baseline", metavar="REV", default="",
                    help="also time analyze_capture as it was at git revision REV")
    ap.add_argument("--analyzer-baseline-src", metavar="DIR", default="",
                    help="the baseline's src folder, already built (git archive has no "
                         "compiled engine); named REV in the output")
    ap.add_argument("--analyzer-only", action="store_true",
                    help="only the analyze_capture comparison (needs --analyzer-baseline)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (best is kept)")
    a = ap.parse_args(argv)

    cap = Path(a.capture)
    sys.path.insert(0, str(HERE))
    import net_capgen  # noqa: E402

    if not (a.keep and cap.exists()):
        t = time.time()
        n, size = net_capgen.generate(str(cap), a.packets, seed=a.seed)
        print(f"generated {cap}: {n:,} packets, {size / 1e6:,.0f} MB in {time.time() - t:.0f} s")
    packets = a.packets
    size_mb = cap.stat().st_size / 1e6
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}")

    if a.analyzer_only and not a.analyzer_baseline:
        ap.error("--analyzer-only needs --analyzer-baseline")
    with tempfile.TemporaryDirectory() as tmp:
        base_src = (Path(a.analyzer_baseline_src) if a.analyzer_baseline_src else
                    baseline_tree(a.analyzer_baseline, Path(tmp))) if a.analyzer_baseline else None
        if base_src is not None:
            analyzer_section(cap, a.analyzer_baseline, base_src, a.repeat)
        if a.analyzer_only:
            if not a.keep:
                cap.unlink(missing_ok=True)
            return 0
        backline = shutil.which("backline", path=str(Path(sys.executable).parent)) or "backline"
        results = {"backline": measure([backline, "net", str(cap), "--json"])}
        if base_src is not None:
            # the whole command as it was at REV: its src first on the path
            env = dict(os.environ, PYTHONPATH=str(base_src))
            results["baseline"] = measure(
                [sys.executable, "-c", "import sys; from backline.cli import main; "
                 "sys.argv[0] = 'backline'; main()", "net", str(cap), "--json"], env=env)
            print(f"baseline: the backline command at git revision {a.analyzer_baseline}")
    tshark = shutil.which("tshark")
    if tshark and not a.no_tshark:
        results["tshark"] = measure([tshark, "-n", "-q", "-r", str(cap), "-z", "expert"])
    elif not a.no_tshark:
        print("tshark not found: apt-get install -y tshark")

    print(f"\ncapture: {packets:,} packets, {size_mb:,.0f} MB")
    print(f"{'tool':10} {'rc':>3} {'wall s':>8} {'cpu s':>8} {'pkt/s wall':>12} {'pkt/s cpu':>12} "
          f"{'peak MB':>9}")
    for name, r in results.items():
        r["pps_wall"] = packets / r["wall_s"]
        r["pps_cpu"] = packets / r["cpu_s"] if r["cpu_s"] else 0
        print(f"{name:10} {r['rc']:>3} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} {r['pps_wall']:>12,.0f} "
              f"{r['pps_cpu']:>12,.0f} {r['max_rss_mb']:>9,.0f}")
        if r["rc"]:
            print(f"  stderr: {r['stderr']}")
    if base_src is not None:
        b, o = results["backline"], results["baseline"]
        print(f"ratio backline now/{a.analyzer_baseline}: speed (cpu) "
              f"{b['pps_cpu'] / o['pps_cpu']:.2f}x, peak memory {b['max_rss_mb'] / o['max_rss_mb']:.2f}x")
    if "tshark" in results:
        b, t = results["backline"], results["tshark"]
        print(f"\nratio backline/tshark: speed (wall) {b['pps_wall'] / t['pps_wall']:.2f}x, "
              f"speed (cpu) {b['pps_cpu'] / t['pps_cpu']:.2f}x, "
              f"peak memory {b['max_rss_mb'] / t['max_rss_mb']:.2f}x")
    b = results["backline"]
    print(f"targets: >= 500,000 pkt/s: {'met' if b['pps_wall'] >= 500_000 else 'NOT met'}; "
          f"<= 450 MB: {'met' if b['max_rss_mb'] <= 450 else 'NOT met'}")
    if not a.keep:
        cap.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

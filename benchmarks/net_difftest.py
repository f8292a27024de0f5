"""Differential test of ``backline net`` against tshark on every capture in a folder.

For each capture file in FOLDER (pcap, pcapng, nanosecond pcap, Network Monitor
.cap, optionally gzip-compressed), this runs the corpus ``oracle.sh`` (tshark
and capinfos 4.0.17, exactly as the corpus oracles were made) unless an oracle
``<capture>.oracle.json`` already sits beside the capture and is newer than it
(the oracle is cached there), then runs Backline's analysis
(``oracle_counts(analyze_capture(path))``) and compares every key of
``ORACLE_KEYS`` the oracle holds, the same comparison ``test_oracle.py`` makes
on the corpus.  Dict-valued keys (``tcp_analysis``, ``http_status``, ...) are
compared item by item, so the table names e.g. ``tcp_analysis.window_full``.

It prints one row per mismatching capture and key with tshark's value and
Backline's, then a summary line, and exits 1 if anything differs (0 when all
captures match, 2 on a usage error).  tshark is needed, so this is a developer
tool, not part of the test suite.  Build a varied folder of captures with
``net_difftest_build.py``.

Usage::

    python benchmarks/net_difftest.py FOLDER [--oracle-sh PATH] [--jobs N] [--refresh]
                                             [--only SUBSTR] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from backline.analyzers.net.capture import analyze_capture
from backline.analyzers.net.summary import ORACLE_KEYS, oracle_counts

HERE = Path(__file__).resolve().parent
DEFAULT_ORACLE_SH = HERE.parent.parent / "shared" / "corpus" / "net" / "oracle.sh"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz")


def captures(folder: Path, only: str | None) -> list[Path]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES) and (not only or only in p.name):
            out.append(p)
    return out


def oracle_for(cap: Path, oracle_sh: Path, refresh: bool) -> dict[str, Any]:
    """The cached oracle beside the capture, made with oracle.sh when missing or stale."""
    oracle = cap.with_name(cap.name + ".oracle.json")
    if refresh or not oracle.exists() or oracle.stat().st_mtime < cap.stat().st_mtime:
        subprocess.run(["bash", str(oracle_sh), str(cap), str(oracle)], check=True,
                       stdout=subprocess.DEVNULL)
    return json.loads(oracle.read_text())


def flatten(key: str, tshark: Any, mine: Any) -> list[tuple[str, Any, Any]]:
    """Differences of one key; dicts item by item (a missing item counts as 0)."""
    if isinstance(tshark, dict) and isinstance(mine, dict):
        rows = []
        for k in sorted(set(tshark) | set(mine), key=str):
            a, b = tshark.get(k, 0), mine.get(k, 0)
            if a != b:
                rows.append((f"{key}.{k}", a, b))
        # also report a zero item present only on one side, which == would flag
        if not rows and tshark != mine:
            rows.append((key, tshark, mine))
        return rows
    return [] if tshark == mine else [(key, tshark, mine)]


def compare(cap: Path, oracle_sh: Path, refresh: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    expected = oracle_for(cap, oracle_sh, refresh)
    t1 = time.perf_counter()
    try:
        mine = oracle_counts(analyze_capture(cap))
    except Exception as e:  # a crash is a finding too
        return {"capture": cap.name, "packets": expected.get("packets"), "error": repr(e),
                "diffs": [("backline", "ok", repr(e))], "tshark_s": t1 - t0, "backline_s": 0.0}
    t2 = time.perf_counter()
    diffs = []
    for key in ORACLE_KEYS:
        if key in expected:
            diffs += flatten(key, expected[key], mine[key])
    return {"capture": cap.name, "packets": expected.get("packets"), "diffs": diffs,
            "tshark_s": t1 - t0, "backline_s": t2 - t1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="exit status: 0 all equal, 1 some capture differs, 2 usage")
    ap.add_argument("folder", type=Path, help="folder of captures (oracles are cached beside them)")
    ap.add_argument("--oracle-sh", type=Path, default=DEFAULT_ORACLE_SH,
                    help="the corpus oracle.sh (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=2, help="captures compared in parallel")
    ap.add_argument("--refresh", action="store_true", help="remake every oracle")
    ap.add_argument("--only", help="only captures whose name contains this")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    a = ap.parse_args(argv)
    if not a.folder.is_dir():
        ap.error(f"{a.folder} is not a folder")
    if not a.oracle_sh.exists():
        ap.error(f"oracle.sh not found at {a.oracle_sh} (use --oracle-sh)")
    caps = captures(a.folder, a.only)
    if not caps:
        ap.error(f"no captures in {a.folder}")
    # largest first so the parallel run ends together
    caps.sort(key=lambda p: -p.stat().st_size)
    with ThreadPoolExecutor(max(1, a.jobs)) as ex:
        results = list(ex.map(lambda c: compare(c, a.oracle_sh, a.refresh), caps))
    results.sort(key=lambda r: r["capture"])
    bad = [r for r in results if r["diffs"]]
    if bad:
        w1 = max(len(r["capture"]) for r in bad)
        w2 = max(len(d[0]) for r in bad for d in r["diffs"])
        print(f"{'capture':<{w1}}  {'key':<{w2}}  {'tshark':>10}  {'backline':>10}")
        for r in bad:
            for key, t, m in r["diffs"]:
                print(f"{r['capture']:<{w1}}  {key:<{w2}}  {t!s:>10}  {m!s:>10}")
        print()
    pk = sum(r["packets"] or 0 for r in results)
    print(f"{len(results)} captures, {pk} packets: {len(results) - len(bad)} equal, {len(bad)} differ"
          f" ({sum(len(r['diffs']) for r in bad)} mismatching keys)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

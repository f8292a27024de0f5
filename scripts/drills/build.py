#!/usr/bin/env python3
"""Build the incident drills: ``python scripts/drills/build.py [--out DIR] [NAME...]``.

Each drill lands in ``DIR/<name>/`` (default ``/work/drills-out``, or ``$BACKLINE_DRILLS``):
the bundle as a customer would send it and ``truth.json``.  A drill is built in a scratch
folder and moved into place only when it is complete.  Needs root (see ``kit.py``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

# one module per drill, in the order they are built (explicit: nothing is discovered)
DRILL_MODULES = (
    "refused_ledger",
    "dns_servfail",
    "tls_version",
    "slow_backend",
    "deadlock_pricer",
    "plugin_crash",
    "bad_config",
    "disk_full",
    "zero_window",
    "crash_midstream",
    "fd_exhaustion",
    "tls_unknown_ca",
    "oom_tiler",
    "config_exit",
    "abort_timeouts",
    "container_exit",
    "dns_typo",
    "pool_exhaustion",
    "startup_exit",
    "healthy_shop",
    "healthy_resolver",
    "healthy_stream",
    "healthy_catalog",
    "healthy_docstore",
    "healthy_inventory",
)
DEFAULT_OUT = Path(os.environ.get("BACKLINE_DRILLS", "/work/drills-out"))


def drill_modules(names: list[str] | None = None) -> list:
    mods = [importlib.import_module(m) for m in DRILL_MODULES]
    if names:
        unknown = set(names) - {m.NAME for m in mods}
        if unknown:
            raise SystemExit(f"unknown drill(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(m.NAME for m in mods)}")
        mods = [m for m in mods if m.NAME in names]
    return mods


def build_one(mod, out_root: Path) -> Path:
    """Build one drill into ``out_root/<name>`` (replacing an older build)."""
    final = out_root / mod.NAME
    tmp = out_root / f".building-{mod.NAME}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        mod.build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="drills to build (default: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--list", action="store_true", help="list the drills and their classes")
    ap.add_argument("--keep-going", action="store_true", help="build the others when one fails")
    args = ap.parse_args(argv)
    mods = drill_modules(args.names)
    if args.list:
        for m in mods:
            print(f"{m.NAME:24} {m.CLASS}")
        return 0
    failed = []
    for m in mods:
        t0 = time.monotonic()
        try:
            path = build_one(m, args.out)
        except Exception as exc:  # noqa: BLE001 - report and go on when asked
            failed.append(m.NAME)
            print(f"FAILED {m.NAME}: {exc}", file=sys.stderr)
            traceback.print_exc()
            if not args.keep_going:
                return 1
            continue
        print(f"built {m.NAME:24} {time.monotonic() - t0:5.1f} s  {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

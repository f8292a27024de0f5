"""Accuracy of Backline's template miner on loghub-2k (raw .log files, own header detection).

Prints GA / FGA / PA / FTA per system and the averages, computed as in the
Loghub-2.0 evaluator against ``*_structured_corrected.csv``:

* GA  - share of lines whose ground-truth group is reproduced exactly (same line set);
* FGA - F1 of exactly reproduced groups (by group);
* PA  - share of lines whose template string equals the ground truth exactly;
* FTA - F1 of templates that are both grouped right and string-equal.

Usage::

    python benchmarks/loghub_eval.py [CORPUS_DIR/logs/loghub-2k] [--show-errors SYSTEM]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from backline.analyzers.logs.loghub import evaluate_system, loghub_systems  # noqa: E402
from backline.testing import corpus_dir  # noqa: E402


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    show = argv[argv.index("--show-errors") + 1] if "--show-errors" in argv else None
    if show:
        args = [a for a in args if a != show]
    base = Path(args[0]) if args else corpus_dir() / "logs" / "loghub-2k"
    rows = []
    print(f"{'system':10} {'lines':>6} {'GA':>6} {'FGA':>6} {'PA':>6} {'FTA':>6} {'tpl':>5} {'gt':>5}")
    for system in loghub_systems(base):
        r = evaluate_system(base, system)
        rows.append(r)
        print(f"{system:10} {r.lines:6d} {r.ga:6.3f} {r.fga:6.3f} {r.pa:6.3f} {r.fta:6.3f} "
              f"{r.templates:5d} {r.gt_templates:5d}")
        if show == system:
            for e in r.errors[:60]:
                print("   ", e)
    n = len(rows)
    if n:
        print(f"{'average':10} {'':6} {sum(r.ga for r in rows) / n:6.3f} {sum(r.fga for r in rows) / n:6.3f} "
              f"{sum(r.pa for r in rows) / n:6.3f} {sum(r.fta for r in rows) / n:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

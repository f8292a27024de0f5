"""Accuracy of Backline's template miner on loghub-2k (raw .log files, own header detection).

Prints GA / FGA / PA / FTA per system and the averages, computed as in the
Loghub-2.0 evaluator against ``*_structured_corrected.csv``:

* GA  - share of lines whose ground-truth group is reproduced exactly (same line set);
* FGA - F1 of exactly reproduced groups (by group);
* PA  - share of lines whose template string equals the ground truth exactly;
* FTA - F1 of templates that are both grouped right and string-equal.

Two tables:

1. **in-sample**: the shipped configuration (``loghub.Config()``) on every system;
2. **leave one system out**: for each system S, every tunable value of the
   header learner and the miner (similarity threshold, low-cardinality split,
   the user/host-words rule, the header column share; :data:`GRID`) is chosen
   by the best average GA + PA over the *other* seven systems, and the library
   header formats that only S uses are switched off (S's header must be found
   by the generic column learner); then S is scored.

Usage::

    python benchmarks/loghub_eval.py [CORPUS_DIR/logs/loghub-2k] [--show-errors SYSTEM] [--no-loso]
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from backline.analyzers.logs.formats import FORMATS, RULES, detect_format  # noqa: E402
from backline.analyzers.logs.loghub import (  # noqa: E402
    Config, Score, ground_truth, loghub_systems, messages_of, mine, score)
from backline.analyzers.logs.reader import open_log  # noqa: E402
from backline.testing import corpus_dir  # noqa: E402

#: The values tried when tuning on seven systems.
GRID = {
    "sim_threshold": (0.4, 0.5, 0.6, 0.7),
    "split_values": (2, 3, 4, 5),
    "data_words": (True, False),
    "share": (0.8, 0.9, 0.95),
}


def configs() -> list[Config]:
    out = []
    for sim, split, data, share in itertools.product(*GRID.values()):
        out.append(Config(sim, split, data, dataclasses.replace(RULES, share=share)))
    return out


def own_formats(base: Path, systems: list[str]) -> dict[str, frozenset[str]]:
    """Per system, the library header formats that only it uses among the corpus systems
    (switched off when it is the one left out), found by switching them off in turn."""
    samples = {s: [ln.text for ln in open_log(base / s / f"{s}_2k.log")][:400] for s in systems}
    chosen = {s: detect_format(samples[s]).name for s in systems}
    library = {f.name for f in FORMATS}
    out: dict[str, frozenset[str]] = {}
    for s in systems:
        excl: set[str] = set()
        name = chosen[s]
        while name in library and all(chosen[o] != name for o in systems if o != s):
            excl.add(name)
            name = detect_format(samples[s], exclude=frozenset(excl)).name
        out[s] = frozenset(excl)
    return out


def line(label: str, r: Score, extra: str = "") -> str:
    return (f"{label:10} {r.lines:6d} {r.ga:6.3f} {r.fga:6.3f} {r.pa:6.3f} {r.fta:6.3f} "
            f"{r.templates:5d} {r.gt_templates:5d}{extra}")


def average(label: str, rows: list[Score]) -> str:
    n = len(rows)
    return (f"{label:10} {'':6} {sum(r.ga for r in rows) / n:6.3f} {sum(r.fga for r in rows) / n:6.3f} "
            f"{sum(r.pa for r in rows) / n:6.3f} {sum(r.fta for r in rows) / n:6.3f}")


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    show = argv[argv.index("--show-errors") + 1] if "--show-errors" in argv else None
    if show:
        args = [a for a in args if a != show]
    base = Path(args[0]) if args else corpus_dir() / "logs" / "loghub-2k"
    systems = loghub_systems(base)
    truth = {s: ground_truth(base, s) for s in systems}
    path = {s: base / s / f"{s}_2k.log" for s in systems}
    head = f"{'system':10} {'lines':>6} {'GA':>6} {'FGA':>6} {'PA':>6} {'FTA':>6} {'tpl':>5} {'gt':>5}"

    print("in-sample (shipped configuration, every header format):")
    print(head)
    rows = []
    for s in systems:
        r = score(s, truth[s], mine(messages_of(path[s])))
        rows.append(r)
        print(line(s, r))
        if show == s:
            for e in r.errors[:60]:
                print("   ", e)
    print(average("average", rows))
    if "--no-loso" in argv:
        return 0

    grid = configs()
    # messages depend on the header rules only: learn them once per (system, rules)
    msgs: dict[tuple[str, object], list[str]] = {}
    results: dict[tuple[int, str], Score] = {}
    for i, cfg in enumerate(grid):
        for s in systems:
            key = (s, cfg.rules)
            if key not in msgs:
                msgs[key] = messages_of(path[s], cfg)
            results[(i, s)] = score(s, truth[s], mine(msgs[key], cfg))
    own = own_formats(base, systems)

    print()
    print(f"leave one system out ({len(grid)} configurations tuned on the other 7; "
          "the system's own library formats off):")
    print(head + "  chosen (sim, split, user/host words, header share); formats off")
    loso = []
    for s in systems:
        others = [o for o in systems if o != s]
        best = max(range(len(grid)), key=lambda i: (
            sum(results[(i, o)].ga + results[(i, o)].pa for o in others), -abs(grid[i].sim_threshold - 0.5)))
        cfg = dataclasses.replace(grid[best], exclude=own[s])
        r = score(s, truth[s], mine(messages_of(path[s], cfg), cfg))
        loso.append(r)
        print(line(s, r, f"  ({cfg.sim_threshold}, {cfg.split_values}, {cfg.data_words}, {cfg.rules.share}); "
                         f"{', '.join(sorted(own[s])) or '-'}"))
        if show == s:
            for e in r.errors[:60]:
                print("   ", e)
    print(average("average", loso))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

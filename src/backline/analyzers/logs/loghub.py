"""Scoring the template miner against loghub ground truth (GA, FGA, PA, FTA).

Metrics as in the Loghub-2.0 evaluator: GA counts lines whose ground-truth
group is reproduced exactly (same line set); FGA is the F1 over exactly
reproduced groups; PA counts lines whose template string equals the ground
truth; FTA is the F1 over templates that are grouped right *and* string-equal.
The miner runs on the raw ``.log`` file with Backline's own header detection,
as a user would run it.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from backline.analyzers.logs.formats import RULES, HeaderRules, detect_format
from backline.analyzers.logs.miner import TemplateMiner
from backline.analyzers.logs.reader import open_log


@dataclass(frozen=True, slots=True)
class Score:
    """Accuracy of one system."""

    system: str
    lines: int
    ga: float
    fga: float
    pa: float
    fta: float
    templates: int
    gt_templates: int
    errors: tuple[str, ...] = field(default=())


def loghub_systems(base: Path) -> list[str]:
    """Systems in a loghub-2k folder (those with a ``*_2k.log`` and corrected ground truth)."""
    return sorted(p.name for p in base.iterdir()
                  if p.is_dir() and (p / f"{p.name}_2k.log_structured_corrected.csv").is_file())


@dataclass(frozen=True, slots=True)
class Config:
    """Everything tunable in the header learner and the miner (one value for every log)."""

    sim_threshold: float = 0.5
    split_values: int = 3
    data_words: bool = True
    rules: HeaderRules = RULES
    exclude: frozenset[str] = frozenset()     # library header formats not to use


def messages_of(path: Path, cfg: Config = Config()) -> list[str]:
    """The message part of every line of a raw log file (the whole line when it has no header)."""
    lines = [ln.text for ln in open_log(path)]
    fmt = detect_format(lines[:400], exclude=cfg.exclude, rules=cfg.rules)
    messages = []
    for text in lines:
        h = fmt.split(text)
        messages.append(h.message if h else text)
    return messages


def mine(messages: list[str], cfg: Config = Config()) -> list[str]:
    """Templates of ``messages`` (learned from all of them first), in order."""
    miner = TemplateMiner(cfg.sim_threshold, cfg.split_values, cfg.data_words)
    miner.add_all(messages)
    return [miner.match(m) for m in messages]


def parse_file(path: Path, cfg: Config = Config()) -> list[str]:
    """Templates for every line of a raw log file, in order."""
    return mine(messages_of(path, cfg), cfg)


def score(system: str, truth: list[str], predicted: list[str]) -> Score:
    """Compare predicted templates with ground-truth templates, line by line."""
    n = len(truth)
    if len(predicted) != n:
        raise ValueError(f"{system}: {len(predicted)} parsed lines vs {n} ground-truth lines")
    gt_groups: dict[str, list[int]] = defaultdict(list)
    pr_groups: dict[str, list[int]] = defaultdict(list)
    for i, (t, p) in enumerate(zip(truth, predicted)):
        gt_groups[t].append(i)
        pr_groups[p].append(i)
    pr_sets = {p: frozenset(v) for p, v in pr_groups.items()}
    ga_lines = correct_groups = correct_templates = 0
    errors: list[str] = []
    for t, idx in gt_groups.items():
        p = predicted[idx[0]]
        if pr_sets[p] == frozenset(idx):
            ga_lines += len(idx)
            correct_groups += 1
            if p == t:
                correct_templates += 1
            else:
                errors.append(f"[text ] {len(idx):4d}  gt={t!r}  got={p!r}")
        else:
            errors.append(f"[group] {len(idx):4d}  gt={t!r}  got={sorted({predicted[i] for i in idx})[:3]!r}"
                          f" (pred group size {len(pr_sets[p])})")
    pa = sum(1 for t, p in zip(truth, predicted) if t == p) / n if n else 0.0

    def f1(correct: int) -> float:
        if not correct:
            return 0.0
        prec, rec = correct / len(pr_groups), correct / len(gt_groups)
        return 2 * prec * rec / (prec + rec)

    errors.sort(key=lambda e: -int(e[8:12]))
    return Score(system, n, ga_lines / n if n else 0.0, f1(correct_groups), pa, f1(correct_templates),
                 len(pr_groups), len(gt_groups), tuple(errors))


def ground_truth(base: Path, system: str) -> list[str]:
    """Ground-truth templates of a system, in line order."""
    path = base / system / f"{system}_2k.log_structured_corrected.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        return [row["EventTemplate"] for row in csv.DictReader(fh)]


def evaluate_system(base: Path, system: str, cfg: Config = Config()) -> Score:
    """Parse ``<system>_2k.log`` and score it."""
    predicted = parse_file(base / system / f"{system}_2k.log", cfg)
    return score(system, ground_truth(base, system), predicted)

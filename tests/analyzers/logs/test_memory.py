"""Memory grows with templates, not lines: many distinct free-text lines level off."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from backline.analyzers.logs import miner as miner_mod
from backline.analyzers.logs.miner import TemplateMiner

_CHILD = r"""
import json, resource, sys
from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs.text_analyzer import analyze_text_log
from backline.model import Fact
ctx = AnalysisContext()
facts = {o.name: o.value for o in analyze_text_log(sys.argv[1], "f.log", ctx) if isinstance(o, Fact)}
print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "records": facts["log.records"], "warnings": ctx.warnings}))
"""


def _sentences(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
             for _ in range(20000)]
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 12))) for _ in range(n)]


def _write(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i, s in enumerate(_sentences(n)):
            fh.write(f"2024-01-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} INFO {s}\n")


def _run(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True,
                         timeout=100, check=True)
    return json.loads(out.stdout)


def test_peak_memory_levels_off_with_distinct_lines(tmp_path):
    small, big = tmp_path / "small.log", tmp_path / "big.log"
    _write(small, 30_000)
    _write(big, 120_000)
    a, b = _run(small), _run(big)
    assert a["records"] == 30_000 and b["records"] == 120_000
    grown_mb = (b["rss_kb"] - a["rss_kb"]) / 1024
    assert grown_mb < 25, f"4x the distinct lines grew peak RSS by {grown_mb:.0f} MB"
    assert any("distinct templates" in w and "all-<*>" in w for w in b["warnings"])


def test_miner_caps_keep_counts_exact(monkeypatch):
    monkeypatch.setattr(miner_mod, "SHAPE_MAX", 300)
    monkeypatch.setattr(miner_mod, "CLUSTER_MAX", 200)
    m = TemplateMiner()
    msgs = ["connection from 10.0.0.1 closed"] * 50 + _sentences(3000) + ["connection from 10.0.0.2 closed"]
    m.add_block(msgs[:1500])
    m.add_all(msgs[1500:])
    assert len(m) <= 200 + 8                      # + one overflow cluster per word count (5..12)
    assert m.shapes <= 300 + len(m)
    assert m.overflow_templates >= 1
    infos = list(m.templates())
    assert sum(t.count for t in infos) == len(msgs)
    assert any(t.template == "<*> <*> <*> <*> <*>" for t in infos)
    assert {t.template: t.count for t in infos}["connection from <*> closed"] == 51   # known ones still match

"""Benchmark: how the diagnosis holds up when a piece of evidence is missing.

For every built drill (folders with ``truth.json``, as ``scripts/drills/build.py`` makes them)
the bundle is analysed once; then the diagnosis runs on everything (the baseline: what
``benchmarks/drills.py`` scores) and again once per artifact left out (its findings, events
and facts removed), as if the customer had not sent that file.  A variant counts when a
finding that expresses the root cause is still there.  Prints the misses and, for the full
bundles and the variants, how often the root cause is first and in the top 3; healthy
bundles must keep every confidence at or below 0.5 in every variant.

    .venv/bin/python benchmarks/diagnosis_ablation.py [DRILLS_DIR]     # default $BACKLINE_DRILLS or /work/drills-out
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "drills"))

from truth import drill_dirs, drill_inputs, load_truth, matching_findings  # noqa: E402

from backline.knowledge.diagnosis import diagnose  # noqa: E402
from backline.pipeline import AnalyzeOptions, analyze  # noqa: E402
from backline.report.json_report import jsonable  # noqa: E402


def _doc(f) -> dict:
    """A finding as the JSON report writes it (what the truth is checked against)."""
    return {"code": f.code, "artifact": f.artifact, "title": f.title, "detail": f.detail, "data": jsonable(f.data),
            "evidence": [{"artifact": r.artifact, "locator": r.locator, "excerpt": r.excerpt} for r in f.evidence]}


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("BACKLINE_DRILLS", "/work/drills-out"))
    full = {"n": 0, "first": 0, "top3": 0}
    var = {"n": 0, "first": 0, "top3": 0}
    healthy_bad = 0
    for drill in drill_dirs(root):
        truth = load_truth(drill)
        r = analyze(drill_inputs(drill), AnalyzeOptions(jobs=1, diagnose=False))
        findings = [f for f in r.findings if not f.code.startswith("CASE.")]
        arts = sorted({f.artifact for f in findings if f.artifact})
        for drop in [None, *arts]:
            fs = [f for f in findings if f.artifact != drop]
            d = diagnose(fs, [e for e in r.events if e.artifact != drop], [x for x in r.facts if x.artifact != drop],
                         [a for a in r.artifacts if a.path != drop])
            what = "all evidence" if drop is None else "without " + drop.rsplit("/", 1)[-1]
            if truth["healthy"]:
                top = max((c.confidence for c in d.causes), default=0.0)
                if top > 0.5:
                    healthy_bad += 1
                    print(f"HEALTHY > 0.5  {truth['name']} {what}: {top:.2f} {d.causes[0].title[:90]}")
                continue
            hits = set(matching_findings(truth["root_cause"], [_doc(f) for f in fs]))
            if not hits:
                continue
            rank = next((i + 1 for i, c in enumerate(d.causes) if c.finding in hits), None)
            bucket = full if drop is None else var
            bucket["n"] += 1
            bucket["first"] += rank == 1
            bucket["top3"] += rank is not None and rank <= 3
            if rank != 1:
                top = d.causes[0] if d.causes else None
                print(f"{'#' + str(rank) if rank else 'missing':8s} {truth['name']} {what}: top is "
                      + (f"{top.confidence:.2f} {top.code} {top.title[:90]}" if top else "(none)"))
    for label, b in (("all evidence", full), ("one artifact left out", var)):
        if b["n"]:
            print(f"{label}: {b['n']} runs, first {b['first']} ({b['first'] / b['n']:.0%}), "
                  f"top 3 {b['top3']} ({b['top3'] / b['n']:.0%})")
    print(f"healthy runs with a confidence above 0.5: {healthy_bad}")


if __name__ == "__main__":
    main()

"""The starter pack over incident drills (scripts/drills): does a known issue name the incident,
and does any fire on a healthy bundle?

For every drill folder (a bundle plus ``truth.json``) the bundle is analysed with the pack.
An unhealthy drill counts as *recognised* when a ``KB.MATCH`` matched a finding whose code is
one of the truth's root-cause codes (``truth.root_cause.codes``); a healthy drill counts as a
*false alarm* for every ``KB.MATCH``.  Baseline (same run): the analysis alone, whose findings
of the truth's codes are there in every drill - the question is whether the pack adds the right
name and workaround to them.

    python benchmarks/kb_drills.py /work/drills-out [/work/drills-heldout]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from backline.knowledge.kb import load_pack, match_issues
from backline.pipeline import AnalyzeOptions, analyze


def evaluate(root: Path, pack) -> dict:
    out = {"unhealthy": 0, "recognised": 0, "healthy": 0, "false_alarms": 0, "analysis_s": 0.0, "match_s": 0.0,
           "rows": []}
    for d in sorted(p for p in root.iterdir() if (p / "truth.json").is_file()):
        truth = json.loads((d / "truth.json").read_text())
        t = time.perf_counter()
        res = analyze([p for p in d.iterdir() if p.name != "truth.json"], AnalyzeOptions(jobs=1, timeout_s=300))
        out["analysis_s"] += time.perf_counter() - t
        t = time.perf_counter()
        matched = [r for r in match_issues(pack, res.findings, res.facts) if r.verdict == "match"]
        out["match_s"] += time.perf_counter() - t
        keys = [r.issue.key for r in matched]
        if truth.get("healthy"):
            out["healthy"] += 1
            out["false_alarms"] += len(matched)
            verdict = "ok" if not matched else "false alarm"
        else:
            codes = set((truth.get("root_cause") or {}).get("codes") or ())
            hit = [r.issue.key for r in matched if any(set(h.codes) & codes for h in r.hits)]
            out["unhealthy"] += 1
            out["recognised"] += bool(hit)
            verdict = f"recognised by {', '.join(hit)}" if hit else "not recognised"
        out["rows"].append((d.name, verdict, keys))
    return out


def main() -> None:
    pack = load_pack()
    for arg in sys.argv[1:] or ["/work/drills-out"]:
        r = evaluate(Path(arg), pack)
        print(f"== {arg}")
        for name, verdict, keys in r["rows"]:
            print(f"  {name:22} {verdict:32} all matches: {', '.join(keys) or '-'}")
        print(f"  recognised {r['recognised']}/{r['unhealthy']} incidents; false alarms on healthy bundles: "
              f"{r['false_alarms']} in {r['healthy']} bundles; matching {r['match_s']:.2f} s = "
              f"{r['match_s'] / max(r['analysis_s'], 1e-9):.2%} of the analysis ({r['analysis_s']:.1f} s)")


if __name__ == "__main__":
    main()

"""Benchmark: is the diagnosis's first probable cause the real root cause of each incident drill?

Incident drills are made by real programs failing on this machine (``scripts/drills/``, see
docs/drills.md).  Each drill folder holds a bundle and ``truth.json``.  This script analyses
every drill in-process (``backline.pipeline.analyze``, then the JSON report exactly as
``backline analyze --format json`` writes it), reads ``diagnosis.probable_causes`` and scores:

* incident: ``first`` when the first probable cause expresses the truth (its ``code`` is one of
  the truth's codes and ``findings[cause.finding]`` matches the truth's artifact glob and
  strings, see ``scripts/drills/truth.py``), ``top3`` when one of the first three does,
  ``missing`` otherwise (also when the report has no diagnosis yet);
* healthy bundle: ``ok`` when no probable cause has a confidence above 0.5.

Targets (issue 11): first >= 80 %, top-3 >= 95 % of incidents; healthy bundles all ``ok``.
It also says, per incident, whether any finding expresses the truth at all ("expressible": no
means an analyzer gap, not a diagnosis miss), and the share of the analysis time the diagnosis
took when the report exposes it.

    .venv/bin/python benchmarks/drills.py                      # build what is missing (root), then score
    .venv/bin/python benchmarks/drills.py --rebuild            # rebuild every drill first
    .venv/bin/python benchmarks/drills.py --drills /work/drills-heldout --json
    BACKLINE_DRILLS=/tmp/drills .venv/bin/python benchmarks/drills.py

The drill folder defaults to ``$BACKLINE_DRILLS`` or ``/work/drills-out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "drills"))

from truth import TruthError, cause_matches, drill_dirs, drill_inputs, finding_matches, load_truth  # noqa: E402

DEFAULT_DIR = Path(os.environ.get("BACKLINE_DRILLS", "/work/drills-out"))
TARGET_FIRST, TARGET_TOP3, HEALTHY_MAX_CONFIDENCE = 0.80, 0.95, 0.5


#: The known issues the analysis matches, as ``backline analyze`` does by default (the starter pack);
#: ``--no-kb-pack`` leaves them out (what this script did before 2026-12-07 22:00).
KB_PACK = True


def analyse(drill: Path) -> tuple[dict, float]:
    """The JSON report of one drill's bundle, and the wall time of the analysis."""
    from backline.knowledge.kb.apply import knowledge_base
    from backline.pipeline import AnalyzeOptions, analyze
    from backline.report import build_report, iter_json

    kb = knowledge_base([], pack=KB_PACK)
    t0 = time.perf_counter()
    result = analyze(drill_inputs(drill), AnalyzeOptions(jobs=1, kb=kb))
    elapsed = time.perf_counter() - t0
    doc = json.loads("".join(iter_json(build_report(result))))
    return doc, elapsed


def diagnosis_seconds(doc: dict) -> float | None:
    """Time the diagnosis took, if the report says (``diagnosis.duration_s`` or similar)."""
    diag = doc.get("diagnosis")
    if not isinstance(diag, dict):
        return None
    for key in ("duration_s", "elapsed_s", "seconds"):
        v = diag.get(key)
        if isinstance(v, (int, float)):
            return float(v)
    return None


def score(truth: dict, doc: dict) -> dict:
    """Score one analysed drill against its truth."""
    findings = doc.get("findings") or []
    diag = doc.get("diagnosis")
    causes = diag.get("probable_causes") if isinstance(diag, dict) else None
    causes = causes if isinstance(causes, list) else []
    top = causes[0] if causes else None
    row: dict = {"name": truth["name"], "healthy": truth["healthy"], "causes": len(causes),
                 "diagnosis": isinstance(diag, dict),
                 "top": ({"title": top.get("title"), "confidence": top.get("confidence"), "code": top.get("code")}
                         if isinstance(top, dict) else None)}
    if truth["healthy"]:
        worst = max((c.get("confidence") or 0.0 for c in causes if isinstance(c, dict)), default=0.0)
        row.update(max_confidence=worst, result="ok" if worst <= HEALTHY_MAX_CONFIDENCE else "fail")
        return row
    rc = truth["root_cause"]
    row["expressible"] = any(finding_matches(rc, f) for f in findings)
    rank = None
    for i, c in enumerate(causes):
        idx = c.get("finding") if isinstance(c, dict) else None
        if isinstance(idx, int) and 0 <= idx < len(findings) and cause_matches(rc, c.get("code"), findings[idx]):
            rank = i + 1
            break
    row["rank"] = rank
    row["result"] = "first" if rank == 1 else "top3" if rank is not None and rank <= 3 else "missing"
    return row


def totals(rows: list[dict]) -> dict:
    inc = [r for r in rows if not r["healthy"] and "error" not in r]
    hel = [r for r in rows if r["healthy"] and "error" not in r]
    first = sum(r["result"] == "first" for r in inc)
    top3 = sum(r["result"] in ("first", "top3") for r in inc)
    ok = sum(r["result"] == "ok" for r in hel)
    timed = [r for r in rows if r.get("diagnosis_s") is not None and r.get("analysis_s")]
    t = {"incidents": len(inc), "first": first, "top3": top3,
         "first_rate": first / len(inc) if inc else None, "top3_rate": top3 / len(inc) if inc else None,
         "expressible": sum(bool(r.get("expressible")) for r in inc),
         "healthy": len(hel), "healthy_ok": ok, "errors": sum("error" in r for r in rows),
         # diagnosis time over analysis time, summed over the drills (tiny analyses do not dominate)
         "diagnosis_share": (sum(r["diagnosis_s"] for r in timed) / sum(r["analysis_s"] for r in timed)
                             if timed else None),
         "diagnosis_share_max": max((r["diagnosis_s"] / r["analysis_s"] for r in timed), default=None)}
    t["targets"] = {
        "first >= 80%": t["first_rate"] is not None and t["first_rate"] >= TARGET_FIRST,
        "top3 >= 95%": t["top3_rate"] is not None and t["top3_rate"] >= TARGET_TOP3,
        "healthy: no cause > 0.5": ok == len(hel),
    }
    return t


def ensure_built(folder: Path, rebuild: bool) -> None:
    """Build the repository's drills that are missing from ``folder`` (all with ``rebuild``)."""
    import build as drill_build

    mods = drill_build.drill_modules()
    todo = [m for m in mods if rebuild or not (folder / m.NAME / "truth.json").is_file()]
    if not todo:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"{len(todo)} drill(s) missing in {folder} and building them needs root "
                         f"({', '.join(m.NAME for m in todo)}); run as root or pass --drills DIR")
    folder.mkdir(parents=True, exist_ok=True)
    for m in todo:
        t0 = time.monotonic()
        drill_build.build_one(m, folder)
        print(f"built {m.NAME} in {time.monotonic() - t0:.1f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drills", type=Path, help="score the drills in this folder (never builds)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the repository's drills first (root)")
    ap.add_argument("--no-build", action="store_true", help="score what is built, build nothing")
    ap.add_argument("--json", action="store_true", help="print the scores as JSON")
    ap.add_argument("--only", nargs="*", default=None, help="score only these drill names")
    ap.add_argument("--no-kb-pack", action="store_true",
                    help="analyse without the starter pack of known issues (backline analyze matches it by default)")
    args = ap.parse_args(argv)
    global KB_PACK
    KB_PACK = not args.no_kb_pack
    folder = args.drills or DEFAULT_DIR
    if args.drills is None and not args.no_build:
        ensure_built(folder, args.rebuild)
    if not folder.is_dir():
        print(f"error: no drill folder {folder}", file=sys.stderr)
        return 2
    dirs = [d for d in drill_dirs(folder) if not args.only or d.name in args.only]
    if not dirs:
        print(f"error: no drills (folders with truth.json) in {folder}", file=sys.stderr)
        return 2
    rows = []
    for d in dirs:
        try:
            truth = load_truth(d)
            doc, elapsed = analyse(d)
        except (TruthError, OSError, ValueError) as exc:
            rows.append({"name": d.name, "healthy": False, "result": "error", "error": str(exc)})
            continue
        except Exception as exc:  # noqa: BLE001 - a drill the analysis cannot take is a result too
            rows.append({"name": d.name, "healthy": False, "result": "error", "error": f"{type(exc).__name__}: {exc}"})
            continue
        row = score(truth, doc)
        row["analysis_s"] = round(elapsed, 3)
        row["diagnosis_s"] = diagnosis_seconds(doc)
        rows.append(row)
    tot = totals(rows)
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "drills_dir": str(folder)}
    if args.json:
        print(json.dumps({"meta": meta, "drills": rows, "totals": tot}, indent=2))
        return 0
    print(f"incident drills in {folder}  ({meta['date']}, {meta['machine']}, {meta['cpus']} CPUs)")
    print(f"{'drill':24} {'result':8} {'rank':>4}  {'conf':>5}  {'secs':>5}  top probable cause")
    for r in rows:
        if "error" in r:
            print(f"{r['name']:24} {'ERROR':8} {'':>4}  {'':>5}  {'':>5}  {r['error']}")
            continue
        top = r["top"] or {}
        conf = top.get("confidence")
        rank = r.get("rank") or ""
        note = "" if r["healthy"] or r.get("expressible") else "  [no finding expresses the truth: analyzer gap]"
        title = (top.get("title") or ("(no diagnosis in the report)" if not r["diagnosis"] else "(no cause)"))[:70]
        print(f"{r['name']:24} {r['result']:8} {rank!s:>4}  {conf if conf is None else f'{conf:.2f}'!s:>5}  "
              f"{r['analysis_s']:5.1f}  {title}{note}")
    pct = lambda v: "n/a" if v is None else f"{v:.0%}"  # noqa: E731
    print(f"\nincidents: {tot['incidents']}  first: {tot['first']} ({pct(tot['first_rate'])}, target >= 80%)  "
          f"top-3: {tot['top3']} ({pct(tot['top3_rate'])}, target >= 95%)  expressible: {tot['expressible']}")
    print(f"healthy: {tot['healthy']}  without a cause above 0.5: {tot['healthy_ok']}  errors: {tot['errors']}")
    share = tot["diagnosis_share"]
    print("diagnosis share of analysis time: " + ("not exposed by the report" if share is None else
                                                 f"{share:.1%} over all drills (largest for one drill "
                                                 f"{tot['diagnosis_share_max']:.1%})"))
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in tot["targets"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

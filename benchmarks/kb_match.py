"""Cost of known-issue matching, against the analysis it follows.

Baseline (same run): ``backline.pipeline.analyze`` of each corpus file without the known
issues.  Measured: matching the starter pack against that file's findings and
facts (median of 5).  Prints per-area totals and the ratio matching / analysis; then a
synthetic large bundle (N log findings plus template indexes of many logs) as an absolute
figure, since no analysis of such a bundle is at hand to compare with.

    python benchmarks/kb_match.py [--synthetic 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from backline.knowledge.kb import load_pack, match_issues  # noqa: E402
from backline.model import EvidenceRef, Fact, Finding, Severity  # noqa: E402
from backline.pipeline import AnalyzeOptions, analyze  # noqa: E402
from backline.testing import corpus_dir  # noqa: E402


def corpus_files() -> list[Path]:
    from knowledge.kb.test_pack_corpus import corpus_files as files

    return [corpus_dir() / rel for rel in files()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, default=5000, help="log findings in the synthetic bundle")
    args = ap.parse_args()
    t = time.perf_counter()
    pack = load_pack()
    print(f"pack: {len(pack)} entries loaded and validated in {time.perf_counter() - t:.3f} s")
    by_area: dict[str, list[float]] = {}
    for path in corpus_files():
        t = time.perf_counter()
        res = analyze([path], AnalyzeOptions(jobs=1, correlate=False))
        t_an = time.perf_counter() - t
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            match_issues(pack, res.findings, res.facts)
            runs.append(time.perf_counter() - t)
        area = path.relative_to(corpus_dir()).parts[0]
        a = by_area.setdefault(area, [0.0, 0.0, 0])
        a[0] += t_an
        a[1] += statistics.median(runs)
        a[2] += 1
    print(f"{'area':8} {'files':>5} {'analysis s':>11} {'matching s':>11} {'ratio':>7}")
    tot = [0.0, 0.0, 0]
    for area, (an, m, n) in sorted(by_area.items()):
        print(f"{area:8} {n:5d} {an:11.3f} {m:11.4f} {m / an:7.2%}")
        tot = [tot[0] + an, tot[1] + m, tot[2] + n]
    print(f"{'all':8} {tot[2]:5d} {tot[0]:11.3f} {tot[1]:11.4f} {tot[1] / tot[0]:7.2%}")

    n = args.synthetic
    findings = [Finding("LOG.ERROR_TEMPLATE", f"t{i}", Severity.HIGH, f"a{i % 50}.log",
                        (EvidenceRef.line(f"a{i % 50}.log", i + 1, f"error number {i} x happened"),), count=3,
                        data={"template": f"error number {i} <*> happened", "template_id": str(i)}) for i in range(n)]
    facts = [Fact("log.template_index", [{"template_id": f"{k}.{j}", "template": f"line {j} of {k} <*>", "count": 3,
                                          "first_line": j + 1, "example": f"line {j} of {k} 7"} for j in range(2000)],
                  f"a{k}.log", "logs.text") for k in range(10)]
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        match_issues(pack, findings, facts)
        runs.append(time.perf_counter() - t)
    print(f"synthetic: {n} log findings + 10 logs x 2,000 indexed templates: {statistics.median(runs):.3f} s (median of 3)")


if __name__ == "__main__":
    main()

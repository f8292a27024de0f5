"""Benchmark: the diagnosis' share of the example case's analysis time (target: at most 5 %).

Analyses ``examples/case-001`` ROUNDS times with the diagnosis and ROUNDS times without it,
alternating (the machine is shared: alternation spreads its load over both), in one process.
Prints, per round, the analysis wall time, the diagnosis' own time
(``result.diagnosis.duration_s``), and the share; then the medians, and the difference of the
median wall times with and without (the baseline: the same analysis with ``diagnose=False``).
The first analysis of the process pays the one-off load of the relation library (TOML parse and
regular expressions); it is printed on its own.  The diagnosis remembers the words it has read
(classes, names and entities per text: the same templates recur in every upload of a case, and
the case-wide diagnosis reads the stored findings again), so a second analysis of the *same*
evidence finds them remembered; each round therefore also analyses with those memos forgotten
first (``forget_texts``), which is what evidence never seen before costs.  Both shares are
printed; the one for new evidence is the figure to hold against the target.

Then the case page's cost: the example case uploaded to a case service (SQLite in a temporary
folder, the real job runner), and ``DiagnosisService.current`` - what the case page and a bug
draft call - timed on its first call (computed) and on the calls after it (cached by the case's
analysis version), and again after one more upload (the version changed: computed once more).

Then the bound on work: a synthetic case far larger than analyzers produce (600 error findings
in 3 logs that all name endpoints and pids, 20,000 events), diagnosed once; the caps of
``DiagnosisSettings`` (300 findings reasoned about, 20 links out of each, 60 findings per chain)
keep it to seconds.

    .venv/bin/python benchmarks/diagnosis_bench.py          # 7 rounds
    .venv/bin/python benchmarks/diagnosis_bench.py 15
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

from datetime import datetime, timedelta, timezone

from backline.knowledge.diagnosis import diagnose, forget_texts
from backline.model import Event, EvidenceRef, Finding, Severity
from backline.pipeline import AnalyzeOptions, analyze

CASE = Path(__file__).resolve().parents[1] / "examples" / "case-001"


def run(diagnose: bool) -> tuple[float, float]:
    t0 = time.perf_counter()
    r = analyze([CASE], AnalyzeOptions(jobs=1, diagnose=diagnose))
    wall = time.perf_counter() - t0
    return wall, (r.diagnosis.duration_s if r.diagnosis else 0.0)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.1f}; example case, {rounds} rounds each")
    wall, diag = run(True)                 # the first: includes loading the relation library
    print(f"first analysis of the process: {wall:.3f} s, diagnosis {diag * 1000:.1f} ms "
          f"({diag / wall:.1%}, with the one-off library load)")
    with_d, without, diags, fresh_w, fresh_d = [], [], [], [], []
    for i in range(rounds):
        w, d = run(True)
        forget_texts()
        wf, df = run(True)
        w0, _ = run(False)
        with_d.append(w)
        without.append(w0)
        diags.append(d)
        fresh_w.append(wf)
        fresh_d.append(df)
        print(f"round {i + 1}: with {w:.3f} s (diagnosis {d * 1000:.1f} ms, {d / w:.1%}); words forgotten first "
              f"{wf:.3f} s (diagnosis {df * 1000:.1f} ms, {df / wf:.1%}); without {w0:.3f} s")
    mw, m0, md = statistics.median(with_d), statistics.median(without), statistics.median(diags)
    fw, fd = statistics.median(fresh_w), statistics.median(fresh_d)
    print(f"median, same evidence again: analysis {mw:.3f} s, diagnosis {md * 1000:.1f} ms = {md / mw:.1%} of the "
          f"analysis; baseline without the diagnosis {m0:.3f} s (difference {mw - m0:+.3f} s)")
    print(f"median, new evidence (memos forgotten): analysis {fw:.3f} s, diagnosis {fd * 1000:.1f} ms = "
          f"{fd / fw:.1%} of the analysis (target <= 5 %)")

    case_service()
    big()


def case_service() -> None:
    import io
    import tempfile

    from backline.cases.diagnosis import DiagnosisService
    from backline.cases.evidence import JobRunner
    from backline.cases.hub import Hub
    from backline.cases.model import CaseSeverity, Role
    from backline.cases.service import NewCase
    from backline.storage.db import make_engine, upgrade

    intake = {"symptoms": "s", "business_impact": "b", "environment": "e", "steps_to_reproduce": "r",
              "already_tried": "a", "expected": "x", "actual": "y", "evidence": ["logs"]}
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        hub = Hub.build(engine, blob_root=Path(tmp) / "blobs", kb_pack=False)
        eng, _ = hub.users.add("erin", Role.ENGINEER)
        case = hub.cases.create(eng, NewCase("bench", "shop", "1", "acme", CaseSeverity.S2, intake))
        files = sorted((p for p in CASE.rglob("*") if p.is_file()), key=lambda p: (p.suffix == ".md", p.name))
        for f in files[: len(files) // 2 or 1]:
            hub.evidence.upload(eng, case.key, f.name, io.BytesIO(f.read_bytes()))
        JobRunner(hub.cases, hub.store).run_pending()
        svc = DiagnosisService(hub.cases)
        t = time.perf_counter()
        first = svc.current(eng, case.key)
        t_first = time.perf_counter() - t
        cached = []
        for _ in range(20):
            t = time.perf_counter()
            svc.current(eng, case.key)
            cached.append(time.perf_counter() - t)
        for f in files[len(files) // 2 or 1:]:
            hub.evidence.upload(eng, case.key, f.name, io.BytesIO(f.read_bytes()))
        JobRunner(hub.cases, hub.store).run_pending()
        t = time.perf_counter()
        after = svc.current(eng, case.key)
        t_after = time.perf_counter() - t
        print(f"case page's diagnosis ({first['findings']} stored findings): first call {t_first * 1000:.1f} ms, "
              f"cached calls median {statistics.median(cached) * 1000:.2f} ms "
              f"({t_first / statistics.median(cached):.0f}x faster); after another upload "
              f"({after['findings']} findings) computed again in {t_after * 1000:.1f} ms")
        engine.dispose()


def big() -> None:
    t0 = datetime(2024, 5, 1, 14, 0, tzinfo=timezone.utc)
    findings = [Finding("LOG.ERROR_TEMPLATE", f"{1 + i % 5}x job {i} failed: connection refused", Severity.HIGH,
                        f"app{i % 3}.log", (EvidenceRef.line(f"app{i % 3}.log", i, f"ERROR job {i} failed: connection "
                                            f"refused by 10.0.0.{i % 250}:5432 pid {1000 + i % 7}"),),
                        count=1 + i % 5, first_seen=t0 + timedelta(seconds=i), last_seen=t0 + timedelta(seconds=i))
                for i in range(600)]
    events = [Event(t0 + timedelta(seconds=i / 10), f"app{i % 3}.log", "log.error", f"job failed 10.0.0.{i % 250}:5432",
                    Severity.HIGH, EvidenceRef.line(f"app{i % 3}.log", i, "x")) for i in range(20_000)]
    t = time.perf_counter()
    d = diagnose(findings, events)
    print(f"bound on work: 600 findings, 20,000 events diagnosed in {time.perf_counter() - t:.2f} s "
          f"({len(d.causes)} causes, {len(d.causes[0].chain) if d.causes else 0} links in the first)")


if __name__ == "__main__":
    main()

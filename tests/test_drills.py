"""The incident drills (scripts/drills/) and their scorer (benchmarks/drills.py).

One cheap drill is really built (real processes, a real loopback capture: needs root, as CI is)
and analysed: its bundle must be read whole and the finding its truth names must be among
Backline's findings.  The scorer is checked on hand-made reports.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest

from backline.model import RunStatus
from backline.pipeline import AnalyzeOptions, analyze
from backline.report import build_report, render_json
from backline.testing import project_root

DRILLS = project_root() / "scripts" / "drills"
sys.path.insert(0, str(DRILLS))

import build as drill_build  # noqa: E402
import logfmt  # noqa: E402
import truth  # noqa: E402


def _bench():
    spec = importlib.util.spec_from_file_location("drills_bench", project_root() / "benchmarks" / "drills.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("module", [logfmt, truth])
def test_helper_doctests(module):
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_every_drill_module_is_listed_and_named():
    listed = set(drill_build.DRILL_MODULES)
    on_disk = {p.stem for p in DRILLS.glob("*.py")} - {"build", "bundle", "capture", "kit", "logfmt", "truth"}
    assert listed == on_disk
    mods = drill_build.drill_modules()
    names = [m.NAME for m in mods]
    assert len(set(names)) == len(names)
    classes = {m.CLASS for m in mods}
    assert len(classes - {"healthy"}) >= 10 and sum(m.CLASS == "healthy" for m in mods) >= 3


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="building a drill needs root (raw loopback capture)")
def test_a_real_drill_is_well_formed_and_its_truth_is_found(tmp_path):
    (mod,) = drill_build.drill_modules(["zero-window"])
    scratch_before = set(Path(tempfile.gettempdir()).glob(f"drill-{mod.NAME}-*"))
    folder = drill_build.build_one(mod, tmp_path)
    t = truth.load_truth(folder)
    assert t["name"] == folder.name == mod.NAME and t["healthy"] is False
    inputs = truth.drill_inputs(folder)
    assert inputs and all(p.exists() for p in inputs)
    result = analyze(inputs, AnalyzeOptions(jobs=1))
    assert not result.refusals
    assert not [r for r in result.runs if r.status is RunStatus.FAILED]
    kinds = {a.kind.value for a in result.artifacts}
    assert {"capture", "text_log"} <= kinds
    doc = __import__("json").loads(render_json(build_report(result)))
    hits = truth.matching_findings(t["root_cause"], doc["findings"])
    assert hits, "no finding expresses the drill's root cause"
    assert all(doc["findings"][i]["artifact"].endswith(".pcap") for i in hits)
    row = _bench().score(t, doc)                 # scored whether or not a diagnosis is there yet
    assert row["expressible"] is True and row["result"] in ("first", "top3", "missing")
    scratch_after = set(Path(tempfile.gettempdir()).glob(f"drill-{mod.NAME}-*"))
    assert scratch_after <= scratch_before, "the drill left its scratch folder behind"


def _doc(causes, findings):
    return {"findings": findings, "diagnosis": {"probable_causes": causes}}


RC = {"name": "x", "healthy": False,
      "root_cause": {"codes": ["NET.TCP.RST_TO_SYN", "LOG.ERROR_TEMPLATE"], "artifact": "*", "contains": ["25433"]}}
FINDINGS = [
    {"code": "LOG.ERROR_TEMPLATE", "artifact": "b.zip!/app.log", "title": "5x HTTP 503", "detail": "",
     "evidence": [], "data": {}},
    {"code": "NET.TCP.RST_TO_SYN", "artifact": "b.zip!/lo.pcap", "title": "Connection refused by 127.0.0.1:25433",
     "detail": "", "evidence": [], "data": {}},
    {"code": "LOG.ERROR_TEMPLATE", "artifact": "b.zip!/app.log", "title": "3x could not connect",
     "detail": "", "evidence": [{"artifact": "b.zip!/app.log", "locator": "line:9",
                                 "excerpt": "could not connect to 127.0.0.1:25433"}], "data": {}},
]


def cause(i, conf=0.9, code=None):
    return {"title": f"cause {i}", "confidence": conf, "code": code or FINDINGS[i]["code"], "finding": i,
            "chain": [], "evidence": [], "next_steps": []}


@pytest.mark.parametrize("causes,result,rank", [
    ([cause(1)], "first", 1),
    ([cause(0), cause(2)], "top3", 2),                  # the log template naming the port counts too
    ([cause(0), cause(0), cause(0), cause(1)], "missing", 4),    # found, but below the top 3
    ([cause(1, code="DUMP.CRASH")], "missing", None),  # the cause's own code must be a truth code
    ([{"title": "t", "confidence": 0.9, "code": "NET.TCP.RST_TO_SYN", "finding": 99}], "missing", None),
    ([], "missing", None),
])
def test_score_ranks_the_first_cause_that_expresses_the_truth(causes, result, rank):
    row = _bench().score(RC, _doc(causes, FINDINGS))
    assert (row["result"], row["rank"], row["expressible"]) == (result, rank, True)


def test_an_alternative_matcher_counts_with_its_own_codes():
    rc = {"name": "t", "healthy": False,
          "root_cause": {"codes": ["NET.TLS.ALERT"], "artifact": "*", "contains": ["unknown_ca"],
                         "alternatives": [{"codes": ["LOG.ERROR_TEMPLATE"], "artifact": "*app.log",
                                           "contains": ["could not connect"]}]}}
    bench = _bench()
    assert bench.score(rc, _doc([cause(0), cause(2)], FINDINGS))["rank"] == 2
    # the capture's finding is no TLS alert, and a cause's code must belong to the matcher it satisfies
    assert bench.score(rc, _doc([cause(1), cause(2, code="NET.TLS.ALERT")], FINDINGS))["result"] == "missing"


def test_score_without_a_diagnosis_is_missing_and_healthy_is_judged_by_confidence():
    bench = _bench()
    assert bench.score(RC, {"findings": FINDINGS})["result"] == "missing"
    healthy = {"name": "h", "healthy": True}
    assert bench.score(healthy, _doc([cause(0, 0.5)], FINDINGS))["result"] == "ok"
    assert bench.score(healthy, _doc([cause(0, 0.2), cause(1, 0.51)], FINDINGS))["result"] == "fail"
    tot = bench.totals([bench.score(RC, _doc([cause(1)], FINDINGS)), bench.score(healthy, _doc([], FINDINGS))])
    assert tot["first_rate"] == 1.0 and tot["healthy_ok"] == 1 and all(tot["targets"].values())


def test_truth_files_are_checked(tmp_path):
    (tmp_path / "truth.json").write_text('{"name": "x", "healthy": false, "root_cause": {"codes": []}}')
    with pytest.raises(truth.TruthError, match="root_cause matcher needs"):
        truth.load_truth(tmp_path)
    ok = '"root_cause": {"codes": ["X"], "artifact": "*", "contains": []'
    (tmp_path / "truth.json").write_text('{"name": "x", "healthy": false, ' + ok + ', "alternatives": {}}}')
    with pytest.raises(truth.TruthError, match="alternatives"):
        truth.load_truth(tmp_path)
    (tmp_path / "truth.json").write_text('{"name": "x", "healthy": false, ' + ok + ', "data_at_least": {"s": "1"}}}')
    with pytest.raises(truth.TruthError, match="data_at_least"):
        truth.load_truth(tmp_path)
    (tmp_path / "truth.json").write_text("{not json")
    with pytest.raises(truth.TruthError, match="truth.json"):
        truth.load_truth(tmp_path)

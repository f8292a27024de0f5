"""The ``dumps.elfcore`` analyzer through the runner: findings, evidence, facts."""

from __future__ import annotations

from backline.analyzers.dumps.elfcore.analyzer import ElfCoreAnalyzer
from backline.model import ArtifactKind, RunStatus
from backline.testing import run_analyzer


def test_crash_finding_points_at_frames(linux_cores):
    b = linux_cores["abort_assert"]
    res = run_analyzer(ElfCoreAnalyzer, b.core, ArtifactKind.ELF_CORE, binary_paths=(str(b.exe.parent),))
    assert res.run.status == RunStatus.OK, res.run.reason
    crash = [f for f in res.findings if f.code == "DUMP.CRASH"]
    assert len(crash) == 1
    f = crash[0]
    assert f.data["signal"] == "SIGABRT" and f.data["problem_class"] == "ABORT_ASSERT"
    locs = [e.locator for e in f.evidence]
    assert locs[0] == "thread:0/frame:0"
    assert any(e.excerpt and "check_config" in e.excerpt for e in f.evidence)
    facts = {x.name: x.value for x in res.facts}
    assert facts["dump.signal"] == "SIGABRT" and facts["dump.threads"] == 1
    assert facts["dump.signature"].endswith("check_config")
    assert f.code in ElfCoreAnalyzer.emits and all(x.name in ElfCoreAnalyzer.emits for x in res.facts)


def test_deadlock_finding(linux_cores):
    b = linux_cores["deadlock"]
    res = run_analyzer(ElfCoreAnalyzer, b.core, ArtifactKind.ELF_CORE, binary_paths=(str(b.exe.parent),))
    assert res.run.status == RunStatus.OK, res.run.reason
    codes = [f.code for f in res.findings]
    assert codes == ["DUMP.DEADLOCK"]
    d = res.findings[0]
    assert len(d.data["threads"]) == 2 and len(d.evidence) == 2
    assert all(e.locator.endswith("/frame:0") for e in d.evidence)


def test_bad_core_fails_with_reason(tmp_path):
    p = tmp_path / "junk.core"
    p.write_bytes(b"\x7fELF" + b"\xff" * 60)
    res = run_analyzer(ElfCoreAnalyzer, p, ArtifactKind.ELF_CORE)
    assert res.run.status == RunStatus.FAILED
    assert "junk.core" in res.run.reason


def test_hung_process_killed_from_outside(linux_cores, killed_deadlock):
    b = linux_cores["deadlock"]
    res = run_analyzer(ElfCoreAnalyzer, killed_deadlock, ArtifactKind.ELF_CORE,
                       binary_paths=(str(b.exe.parent),))
    assert res.run.status == RunStatus.OK, res.run.reason
    codes = sorted(f.code for f in res.findings)
    assert codes == ["DUMP.DEADLOCK", "DUMP.EXTERNAL_SIGNAL"]
    ext = next(f for f in res.findings if f.code == "DUMP.EXTERNAL_SIGNAL")
    assert ext.data["signal"] == "SIGABRT" and ext.data["si_code"] == "SI_USER"

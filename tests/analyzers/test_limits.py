"""Hard limits: native code that never returns is killed at the time limit, native code that
allocates without bound is stopped at the memory limit; the task is recorded as failed with the
reason, a finding names the artifact and the limit, and the rest of the report stands.

The hostile analyzers are a third-party pack built at test time (tests/hostile_pack.py: a C
library called through ctypes), loaded through the ``backline.analyzers`` entry point by a real
``backline analyze`` process, and directly by the runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backline.analyzers.runner import RunSettings, run_all
from backline.model import Artifact, ArtifactKind, RunStatus
from hostile_pack import BOMB_MIB, make_pack

from .test_runner import CountLines

LOG = "2024-01-01 10:00:00 ERROR payment service refused connection\n" * 5


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    folder = make_pack(tmp_path_factory.mktemp("hostile"))
    sys.path.insert(0, str(folder))
    try:
        import backline_hostile_pack
        yield backline_hostile_pack
    finally:
        sys.path.remove(str(folder))


def _art(tmp: Path, name: str) -> Artifact:
    p = tmp / name
    p.write_text(LOG)
    return Artifact(path=f"bundle.zip!/{name}", kind=ArtifactKind.TEXT_LOG, size=p.stat().st_size,
                    sha256="0" * 64, local_path=p)


@pytest.mark.parametrize("jobs", [1, 2])
def test_native_busy_loop_is_killed_at_the_time_limit(tmp_path, pack, jobs):
    spin, ok = _art(tmp_path, "spin.log"), _art(tmp_path, "ok.log")
    t0 = time.monotonic()
    out = run_all([spin, ok], [pack.NativeSpin, CountLines], RunSettings(timeout_s=0.5, isolate=True), jobs=jobs)
    took = time.monotonic() - t0
    by = {(r.artifact, r.analyzer): r for r in out.runs}
    stuck = by[("bundle.zip!/spin.log", "hostile.spin")]
    assert stuck.status is RunStatus.FAILED
    assert "killed at the time limit of 0.5 s" in stuck.reason
    assert "analyze" in stuck.traceback and "backline_hostile_pack" in stuck.traceback   # where it was stuck
    assert by[("bundle.zip!/ok.log", "test.count")].status is RunStatus.OK
    assert by[("bundle.zip!/spin.log", "test.count")].status is RunStatus.OK
    finding = next(f for f in out.findings if f.code == "ANALYZER.LIMIT_REACHED")
    assert finding.artifact == "bundle.zip!/spin.log" and finding.data["limit"] == "time"
    assert "hostile.spin" in finding.title and "time limit" in finding.title
    assert sum(1 for f in out.findings if f.code == "TEST.LINES") == 2      # the rest stands
    assert took < 10


def test_native_allocation_bomb_is_stopped_at_the_memory_limit(tmp_path, pack):
    bomb, ok = _art(tmp_path, "bomb.log"), _art(tmp_path, "ok.log")
    out = run_all([bomb, ok], [pack.NativeBomb, CountLines],
                  RunSettings(timeout_s=60, memory_mb=512, isolate=True), jobs=1)
    by = {(r.artifact, r.analyzer): r for r in out.runs}
    boom = by[("bundle.zip!/bomb.log", "hostile.bomb")]
    assert boom.status is RunStatus.FAILED, boom
    assert "memory limit of 512 MiB" in boom.reason and "SIGABRT" in boom.reason
    assert not any(f.name == "hostile.allocated_mib" for f in out.facts)
    finding = next(f for f in out.findings if f.code == "ANALYZER.LIMIT_REACHED")
    assert finding.artifact == "bundle.zip!/bomb.log" and finding.data["limit"] == "memory"
    assert finding.data["peak_rss_mb"] >= 256        # it did reach the limit (resident memory, libraries too)
    assert by[("bundle.zip!/ok.log", "test.count")].status is RunStatus.OK


def test_the_bomb_is_real_without_a_limit(tmp_path, pack):
    """The same bomb with a limit above what it asks for finishes: the limit is what stopped it."""
    bomb = _art(tmp_path, "bomb.log")
    out = run_all([bomb], [pack.NativeBomb], RunSettings(timeout_s=60, memory_mb=BOMB_MIB + 1024, isolate=True))
    assert out.runs[0].status is RunStatus.OK, out.runs[0].reason
    assert [f.value for f in out.facts if f.name == "hostile.allocated_mib"] == [BOMB_MIB]


def test_python_memory_error_names_the_limit(tmp_path):
    out = run_all([_art(tmp_path, "a.log")], [Greedy, CountLines], RunSettings(memory_mb=512, isolate=True))
    by = {r.analyzer: r for r in out.runs}
    assert by["test.greedy"].status is RunStatus.FAILED
    assert by["test.greedy"].reason.startswith("MemoryError") and "memory limit of 512 MiB" in by["test.greedy"].reason
    assert by["test.count"].status is RunStatus.OK
    assert any(f.code == "ANALYZER.LIMIT_REACHED" and f.data["limit"] == "memory" for f in out.findings)


from backline.analyzers.base import Analyzer  # noqa: E402


class Greedy(Analyzer):
    name = "test.greedy"
    version = "1"
    consumes = frozenset({ArtifactKind.TEXT_LOG})

    def analyze(self, artifact, ctx):
        hoard = []
        while True:                       # Python objects without bound: MemoryError at the limit
            hoard.append(bytearray(16 << 20))
        yield  # pragma: no cover


def _backline() -> list[str]:
    exe = Path(sys.executable).with_name("backline")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "backline"]


def test_cli_reports_killed_tasks_and_keeps_the_rest(tmp_path, pack):
    """A real ``backline analyze`` with the pack on PYTHONPATH (an installed third-party pack)."""
    ev = tmp_path / "ev"
    ev.mkdir()
    for name in ("spin.log", "bomb.log", "app.log"):
        (ev / name).write_text(LOG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(pack.__file__).parent),
                                                         os.environ.get("PYTHONPATH", "")])}
    env["BACKLINE_ANALYZER_MEMORY_MB"] = "512"         # the option's environment variable
    t0 = time.monotonic()
    proc = subprocess.run(_backline() + ["analyze", str(ev), "--no-store", "-q", "--format", "json",
                                         "--timeout", "3", "--jobs", "2"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.monotonic() - t0 < 60
    doc = json.loads(proc.stdout)
    runs = {(Path(a["path"]).name, r["analyzer"]): r for a in doc["artifacts"] for r in a["runs"]}
    assert runs[("spin.log", "hostile.spin")]["status"] == "failed"
    assert "killed at the time limit of 3 s" in runs[("spin.log", "hostile.spin")]["reason"]
    assert runs[("bomb.log", "hostile.bomb")]["status"] == "failed"
    assert "memory limit of 512 MiB" in runs[("bomb.log", "hostile.bomb")]["reason"]
    for name in ("spin.log", "bomb.log", "app.log"):
        assert runs[(name, "logs.text")]["status"] == "ok"
    limits = {(Path(f["artifact"]).name, f["data"]["limit"]) for f in doc["findings"]
              if f["code"] == "ANALYZER.LIMIT_REACHED"}
    assert limits == {("spin.log", "time"), ("bomb.log", "memory")}
    assert any(f["code"].startswith("LOG.") for f in doc["findings"])      # the rest of the report stands

"""Short coverage-guided fuzz runs of every parser that reads customer bytes (benchmarks/fuzz.py).

Each target runs for a few seconds in its own process (atheris + libFuzzer, seeded from the
corpus, a fixed random seed so a pass can be repeated) and must end without a finding: no
exception other than Backline's clear errors, no input running past the time limit, no
memory past the cap.  The harness itself is checked first: a crash, a hang and a runaway
allocation planted in a self-test target must each be reported.  Long runs and their
results: docs/robustness.md, "Fuzzing".
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys

import pytest

from backline.testing import project_root

if not (sys.platform == "linux" and platform.machine() == "x86_64"):
    pytest.skip("atheris ships wheels for Linux x86_64 only (the test extra installs it there)",
                allow_module_level=True)

FUZZ = project_root() / "benchmarks" / "fuzz.py"
TARGETS = ("minidump", "elfcore", "sym", "net", "evtx", "log", "logheader", "text", "archive")
SECONDS = 2


def _fuzz(tmp_path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FUZZ), *args, "--work", str(tmp_path / "work"),
                           "--artifacts", str(tmp_path / "artifacts")],
                          capture_output=True, text=True, errors="replace", timeout=120,
                          env={**os.environ, **(env or {})}, cwd=tmp_path)


def _execs(err: str) -> int:
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", err)
    return int(m.group(1)) if m else 0


def test_every_parser_has_a_target():
    out = subprocess.run([sys.executable, str(FUZZ), "--list"], capture_output=True, text=True, check=True).stdout
    listed = [line.split()[0] for line in out.splitlines()]
    assert listed == list(TARGETS)
    for line in out.splitlines():                      # every target starts from real corpus files
        assert int(line.split()[-3]) > 0, line


@pytest.mark.parametrize("mode, exit_code, artifact", [
    ("crash", 77, "crash"), ("hang", 70, "timeout"), ("oom", 71, "oom"), ("clear", 0, None)])
def test_the_harness_reports_crashes_hangs_and_memory(tmp_path, mode, exit_code, artifact):
    # only the hang needs the short per-input timeout; with it, an allocation slowed down by a
    # loaded machine could be reported as a hang before libFuzzer's once-a-second RSS check
    timeout = "1" if mode == "hang" else "30"
    p = _fuzz(tmp_path, "selftest", "--seconds", "2", "--timeout", timeout, "--rss-mb", "300", "--seed", "1",
              env={"BACKLINE_FUZZ_SELFTEST": mode})
    saved = sorted(x.name for x in (tmp_path / "artifacts").iterdir())
    if mode == "oom" and p.returncode == 77:
        # the address-space cap (RLIMIT_AS) can stop the allocation before libFuzzer's once-a-second
        # RSS check sees it: the process then ends as a crash, with the input saved as one
        exit_code, artifact = 77, "crash"
    assert p.returncode == exit_code, p.stderr[-3000:]
    if artifact is None:
        assert saved == [] and _execs(p.stderr) > 1000
    else:
        assert saved and all(n.startswith(f"selftest-{artifact}-") for n in saved), saved
        assert (tmp_path / "artifacts" / saved[0]).read_bytes().startswith(b"TRIGGER")


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_short_fuzz_run_finds_nothing(tmp_path, target):
    p = _fuzz(tmp_path, target, "--seconds", str(SECONDS), "--seed", "1")
    found = sorted(x.name for x in (tmp_path / "artifacts").iterdir()) if (tmp_path / "artifacts").exists() else []
    assert p.returncode == 0 and not found, f"{target}: finding {found}\n{p.stderr[-6000:]}"
    assert _execs(p.stderr) >= 20, p.stderr[-3000:]        # it really ran the inputs
    assert "Instrumenting backline" in p.stderr              # coverage came from Backline's code

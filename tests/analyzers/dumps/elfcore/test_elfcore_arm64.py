"""arm64 cores: the corpus programs cross-compiled (static) and crashed under qemu-user, which
writes the guest's core (NT_PRSTATUS, NT_PRPSINFO, NT_AUXV; no NT_FILE, no NT_SIGINFO).

Needs ``gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user`` (Debian); without them the
tests are skipped with that reason.  The oracle is the source: the same frames gdb shows for
the x86-64 build of the same programs."""

from __future__ import annotations

import resource
import shutil
import subprocess

import pytest

from backline.analyzers.dumps.elfcore import load_core

TOOLS = ("aarch64-linux-gnu-gcc", "qemu-aarch64")


@pytest.fixture(scope="module")
def arm64_cores(corpus, tmp_path_factory):
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"arm64 cross tools missing: {', '.join(missing)} "
                    "(apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)")
    out = tmp_path_factory.mktemp("arm64")
    cores = {}
    for name in ("null_deref", "abort_assert"):
        exe = out / name
        subprocess.run(["aarch64-linux-gnu-gcc", "-g", "-O0", "-fno-omit-frame-pointer", "-static", "-o",
                        str(exe), str(corpus / "dumps" / "linux" / f"{name}.c")], check=True,
                       capture_output=True, timeout=120)
        run = out / f"run-{name}"
        run.mkdir()

        def limits():
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

        subprocess.run(["qemu-aarch64", str(exe)], cwd=run, preexec_fn=limits, capture_output=True, timeout=120)
        guest = sorted(run.glob("qemu_*.core"))
        assert guest, f"qemu wrote no guest core for {name}"
        for other in run.glob("core*"):
            other.unlink()                      # a host core of qemu itself, if any
        cores[name] = (exe, guest[0])
    return cores


def test_arm64_null_deref(arm64_cores):
    exe, core = arm64_cores["null_deref"]
    rep = load_core(core, [exe.parent])
    assert rep.cpu == "arm64" and rep.exception.type == "SIGSEGV"
    frames = rep.crashed_thread.frames
    assert [(f.function, f.line) for f in frames[:3]] == [("store_value", 5), ("process", 8), ("main", 14)]
    assert frames[1].trust == "cfi"
    assert rep.extra["crash_instruction"]["text"].startswith("str ")
    assert rep.exception.address == 4 and rep.problem_class == "NULL_POINTER_WRITE"


def test_arm64_abort_in_static_executable(arm64_cores):
    exe, core = arm64_cores["abort_assert"]
    rep = load_core(core, [exe.parent])
    assert rep.exception.type == "SIGABRT" and rep.problem_class == "ABORT_ASSERT"
    names = [f.function for f in rep.crashed_thread.frames]
    i = names.index("check_config")
    assert names[i:i + 3] == ["check_config", "load", "main"]
    assert "abort" in names[:i] and "raise" in names[:i]
    # libc is inside the static executable: blame skips the abort machinery
    assert rep.crashed_thread.frames[rep.blamed_frame].function == "check_config"

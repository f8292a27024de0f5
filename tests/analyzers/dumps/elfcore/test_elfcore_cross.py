"""Cores of other CPUs (arm64, ppc64le, s390x, mips64el, mipsel): the corpus programs cross-compiled (static) and crashed under qemu-user,
which writes the guest's core (NT_PRSTATUS, NT_PRPSINFO, NT_AUXV; no NT_FILE, no NT_SIGINFO,
no NT_FPREGSET).  arm64 and ppc64le are little-endian, s390x big-endian.

Needs the Debian packages ``qemu-user`` and ``gcc-<triple> libc6-dev-<arch>-cross`` for
aarch64-linux-gnu (arm64), powerpc64le-linux-gnu (ppc64el), s390x-linux-gnu (s390x),
mips64el-linux-gnuabi64 (mips64el), mipsel-linux-gnu (mipsel); a CPU
whose tools are missing is skipped with that reason.  The oracle is the source: the frames
gdb shows for the x86-64 build of the same programs."""

from __future__ import annotations

import resource
import shutil
import subprocess

import pytest

from backline.analyzers.dumps.elfcore import load_core

ARCHES = {   # target: (compiler, qemu, cpu name in the report)
    "arm64": ("aarch64-linux-gnu-gcc", "qemu-aarch64", "arm64"),
    "ppc64le": ("powerpc64le-linux-gnu-gcc", "qemu-ppc64le", "ppc64"),
    "s390x": ("s390x-linux-gnu-gcc", "qemu-s390x", "s390x"),
    "mips64el": ("mips64el-linux-gnuabi64-gcc", "qemu-mips64el", "mips"),
    "mipsel": ("mipsel-linux-gnu-gcc", "qemu-mipsel", "mips"),
}


def _limits():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


@pytest.fixture(scope="module", params=sorted(ARCHES))
def cross_cores(request, corpus, tmp_path_factory):
    target = request.param
    cc, qemu, cpu = ARCHES[target]
    missing = [t for t in (cc, qemu) if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{cpu} cross tools missing: {', '.join(missing)} (Debian: qemu-user and the "
                    f"gcc/libc6-dev cross packages)")
    out = tmp_path_factory.mktemp(target)
    cores = {}
    for name in ("null_deref", "abort_assert"):
        exe = out / name
        subprocess.run([cc, "-g", "-O0", "-fno-omit-frame-pointer", "-static", "-o", str(exe),
                        str(corpus / "dumps" / "linux" / f"{name}.c")], check=True, capture_output=True,
                       timeout=120)
        run = out / f"run-{name}"
        run.mkdir()
        subprocess.run([qemu, str(exe)], cwd=run, preexec_fn=_limits, capture_output=True, timeout=120)
        guest = sorted(run.glob("qemu_*.core"))
        assert guest, f"qemu wrote no guest core for {name} ({target})"
        for other in run.glob("core*"):
            other.unlink()                      # a host core of qemu itself, if any
        cores[name] = (exe, guest[0])
    return cpu, cores


def test_null_deref(cross_cores):
    cpu, cores = cross_cores
    exe, core = cores["null_deref"]
    rep = load_core(core, [exe.parent])
    assert rep.cpu == cpu and rep.exception.type == "SIGSEGV"
    frames = rep.crashed_thread.frames
    assert [(f.function, f.line) for f in frames[:3]] == [("store_value", 5), ("process", 8), ("main", 14)]
    assert frames[0].trust == "context" and frames[1].trust == "cfi"
    assert frames[0].file.endswith("null_deref.c")
    if cpu == "arm64":          # capstone decodes the instruction: the fault address without NT_SIGINFO
        assert rep.extra["crash_instruction"]["text"].startswith("str ")
        assert rep.exception.address == 4 and rep.problem_class == "NULL_POINTER_WRITE"


def test_abort_in_static_executable(cross_cores):
    cpu, cores = cross_cores
    exe, core = cores["abort_assert"]
    rep = load_core(core, [exe.parent])
    assert rep.cpu == cpu and rep.exception.type == "SIGABRT" and rep.problem_class == "ABORT_ASSERT"
    names = [f.function for f in rep.crashed_thread.frames]
    i = names.index("check_config")
    assert names[i:i + 3] == ["check_config", "load", "main"]
    assert {"raise", "abort"} <= set(names[:i])
    # MIPS glibc has functions without CFI (abort): their prologue is read instead
    assert all(f.trust in ("context", "cfi", "prologue") for f in rep.crashed_thread.frames[:i + 3])
    # libc is inside the static executable: blame skips the abort machinery
    assert rep.crashed_thread.frames[rep.blamed_frame].function == "check_config"

"""A hostile analyzer pack, built at test time: native code that never returns and native code
that allocates without bound (a tiny C library compiled with gcc, called through ctypes).

``make_pack(folder)`` writes the C library, a Python module with two analyzers and a
``*.dist-info`` with a ``backline.analyzers`` entry point, so a ``backline`` process started
with ``PYTHONPATH=folder`` (the CLI, the server) loads them like any third-party pack.
The analyzers only take text logs whose file name starts with ``spin``, ``bomb`` or ``slow``, so the
rest of the evidence is analysed as usual.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

C_SOURCE = r"""
#include <stdlib.h>
#include <string.h>
#include <time.h>
volatile unsigned long spins;
/* a parser stuck in native code: never returns, never lets Python run */
void spin_forever(void) { for (;;) spins++; }
/* slow native work that does return */
unsigned int slow_work(unsigned int ms) { struct timespec t = {ms / 1000, (ms % 1000) * 1000000L}; nanosleep(&t, 0); return ms; }
/* a decoder trusting a size field: allocate and touch n MiB, abort when malloc fails
   (as a C++ new_handler or g_malloc does); returns n when all of it fit */
long allocate_mib(long n) {
    for (long i = 0; i < n; i++) {
        char *p = malloc(1 << 20);
        if (!p) abort();
        memset(p, 1, 1 << 20);
    }
    return n;
}
"""

#: What the bomb asks for: far above the limits the tests set, small enough that the machine
#: survives should a limit not hold (the test then fails on the analyzer having finished).
BOMB_MIB = 2048

#: How long the slow analyzer works (files named ``slow*``), in native code.
SLOW_MS = 2500

PY_SOURCE = '''
import ctypes

from backline.analyzers.base import Analyzer
from backline.model import ArtifactKind, Fact, Finding, Severity

LIB = {lib!r}


class NativeSpin(Analyzer):
    name = "hostile.spin"
    version = "1"
    consumes = frozenset({{ArtifactKind.TEXT_LOG}})

    def applies_to(self, artifact):
        return super().applies_to(artifact) and artifact.name.startswith("spin")

    def analyze(self, artifact, ctx):
        ctypes.CDLL(LIB).spin_forever()
        yield Fact("hostile.returned", True, artifact.path)


class NativeBomb(Analyzer):
    name = "hostile.bomb"
    version = "1"
    consumes = frozenset({{ArtifactKind.TEXT_LOG}})

    def applies_to(self, artifact):
        return super().applies_to(artifact) and artifact.name.startswith("bomb")

    def analyze(self, artifact, ctx):
        lib = ctypes.CDLL(LIB)
        lib.allocate_mib.restype = ctypes.c_long
        got = lib.allocate_mib(ctypes.c_long({bomb}))
        yield Fact("hostile.allocated_mib", got, artifact.path)


class NativeSlow(Analyzer):
    name = "hostile.slow"
    version = "1"
    consumes = frozenset({{ArtifactKind.TEXT_LOG}})

    def applies_to(self, artifact):
        return super().applies_to(artifact) and artifact.name.startswith("slow")

    def analyze(self, artifact, ctx):
        ms = ctypes.CDLL(LIB).slow_work(ctypes.c_uint({slow_ms}))
        yield Finding("HOSTILE.SLOW_DONE", "slow native work finished", Severity.LOW, artifact.path, data={{"ms": ms}})
'''


def make_pack(folder: Path) -> Path:
    """Build the pack in ``folder`` (put it on PYTHONPATH / sys.path); returns ``folder``."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the hostile native library")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hostile.c").write_text(C_SOURCE)
    lib = folder / "libhostile.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(folder / "hostile.c")], check=True)
    (folder / "backline_hostile_pack.py").write_text(PY_SOURCE.format(lib=str(lib), bomb=BOMB_MIB, slow_ms=SLOW_MS))
    info = folder / "backline_hostile_pack-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: backline-hostile-pack\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [backline.analyzers]
        spin = backline_hostile_pack:NativeSpin
        bomb = backline_hostile_pack:NativeBomb
        slow = backline_hostile_pack:NativeSlow
        """))
    return folder

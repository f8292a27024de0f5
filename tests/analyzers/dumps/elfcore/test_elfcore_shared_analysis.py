"""ELF core reports through the shared crash analysis (``analysis.analyze_crash``), as
``backline dump`` runs them."""

from __future__ import annotations

from backline.analyzers.dumps.analysis import analyze_crash
from backline.analyzers.dumps.elfcore import load_core


def test_null_write_classified_from_the_shared_disassembly(linux_cores):
    b = linux_cores["null_deref"]
    rep = analyze_crash(load_core(b.core, [b.exe.parent]))
    ci = rep.extra["crashing_instruction"]
    assert ci["memory_access"] == "write" and ci["effective_address"] == rep.exception.address
    assert rep.problem_class == "NULL_POINTER_WRITE"
    assert rep.crashed_thread.frames[rep.blamed_frame].function == "store_value"


def test_deadlock_survives_shared_analysis(linux_cores):
    b = linux_cores["deadlock"]
    rep = analyze_crash(load_core(b.core, [b.exe.parent]))
    assert rep.problem_class == "DEADLOCK" and len(rep.deadlocks) == 1

"""The automatic analysis: problem class, blamed frame, bucket id, waits and deadlocks."""

from __future__ import annotations

import pytest

from backline.analyzers.dumps.analysis import analyze_crash, blamed_frame, disassemble, is_system_frame
from backline.analyzers.dumps.minidump.analyzer import crash_outputs
from backline.analyzers.dumps.minidump.process import process_minidump
from backline.analyzers.dumps.model import CrashException, CrashReport, CrashThread, StackFrame
from backline.model import Finding

# expected classes from the corpus facts (SOURCES.md, Breakpad's exploitability tests)
EXPECTED = {
    "breakpad/minidump2": "NULL_POINTER_WRITE",            # test_app.exe writes to 0x45
    "rust-minidump/linux-mini": "NULL_POINTER_WRITE",      # `mov dword [0x45], 0x5`
    "symbolic/windows-mini": "NULL_POINTER_WRITE",
    "breakpad/null_read_av": "NULL_POINTER_READ",
    "breakpad/null_write_av": "NULL_POINTER_WRITE",
    "breakpad/ascii_write_av": "INVALID_POINTER_WRITE",
    "breakpad/read_av_non_null": "INVALID_POINTER_READ",
    "breakpad/stack_exhaustion": "STACK_OVERFLOW",
    "breakpad/tiny-exe-fastfail": "STACK_BUFFER_OVERRUN",
    "breakpad/linux_divide_by_zero": "DIVIDE_BY_ZERO",
    "breakpad/linux_raise_sigabrt": "ABORT",
    "breakpad/linux_overflow": "ABORT",
    "breakpad/linux_jmp_to_0": "NULL_POINTER_EXECUTE",
    "breakpad/exec_av_on_stack": "EXECUTE_NON_CODE",
    "breakpad/linux_outside_module": "EXECUTE_NON_CODE",
    "breakpad/write_av_non_canonical": "INVALID_POINTER_WRITE",   # real address 0xfefe.. from the instruction
    "breakpad/linux_write_to_nonwritable_module": "INVALID_POINTER_WRITE",
    "breakpad/tiny-exe-with-cet-xsave": "NO_EXCEPTION",
    "rust-minidump/simple-crashpad": "ABORT",                     # annotation "abort() called"
}


@pytest.mark.parametrize("name,cls", sorted(EXPECTED.items()))
def test_problem_class(corpus, name, cls):
    d = corpus / "dumps" / f"{name}.dmp"
    rep = analyze_crash(process_minidump(d, [d.parent / "symbols"]))
    assert rep.problem_class == cls
    assert rep.bucket_id.startswith(cls + "_")


def test_bucket_and_blamed_frame_skip_system_modules(corpus):
    d = corpus / "dumps/breakpad"
    rep = analyze_crash(process_minidump(d / "linux_overflow.dmp", [d / "symbols"]))
    th = rep.crashed_thread
    assert [f.module for f in th.frames[:3]] == ["libc-2.13.so"] * 3
    assert th.frames[rep.blamed_frame].module == "overflow"
    assert th.frames[rep.blamed_frame].function == "overflow(char const*)"
    assert rep.bucket_id == "ABORT_SIGABRT_overflow!overflow"          # normalized: no parameters
    rep = analyze_crash(process_minidump(d / "minidump2.dmp", [d / "symbols"]))
    assert rep.blamed_frame == 0
    assert rep.bucket_id == "NULL_POINTER_WRITE_c0000005_test_app.exe!(anonymous namespace)::CrashFunction"


def test_system_frames_are_data_driven():
    assert is_system_frame(StackFrame(0, module="KERNELBASE.dll"))
    assert is_system_frame(StackFrame(0, module="libc.so.6"))
    assert not is_system_frame(StackFrame(0, module="app.exe"))
    assert is_system_frame(StackFrame(0, function="java.util.HashMap.get", language="java"))
    assert not is_system_frame(StackFrame(0, function="com.acme.Main.run", language="java"))
    th = CrashThread(1, (StackFrame(0, function="java.lang.Integer.parseInt", language="java"),
                         StackFrame(1, function="com.acme.Config.load", language="java")))
    assert blamed_frame(th) == 1


def test_disassemble_x86_registers_and_access():
    d = disassemble(bytes.fromhex("8b00"), 0x401000, "x86", {"eax": 0x41414141})
    assert d["text"] == "mov eax, dword ptr [eax]" and d["memory_access"] == "read"
    assert d["regs_read"] == ["eax"] and d["effective_address"] == 0x41414141
    assert disassemble(b"", 0, "amd64") is None


def _waiting(tid, fn, futex, regs=None):
    return CrashThread(tid, (StackFrame(0, "context", 0x7f0000001000, module="libc.so.6", function=fn,
                                        registers=regs or {"rdi": futex}),
                             StackFrame(1, "cfi", 0x401000, module="app", function="worker")))


def test_futex_deadlock_found_from_mutex_owners():
    lock_a, lock_b = 0x601000, 0x601040
    owners = {lock_a + 8: 102, lock_b + 8: 101}
    threads = (_waiting(101, "__lll_lock_wait", lock_a), _waiting(102, "__lll_lock_wait", lock_b),
               CrashThread(100, (StackFrame(0, "context", 0x7f0000002000, module="libc.so.6",
                                            function="__pthread_clockjoin_ex"),)))
    rep = analyze_crash(CrashReport("minidump", threads=threads), lambda a, n: owners.get(a))
    assert rep.problem_class == "DEADLOCK"
    assert [(d.threads, d.resources) for d in rep.deadlocks] == [((101, 102), (f"futex:{lock_a:#x}", f"futex:{lock_b:#x}"))]
    assert rep.threads[2].wait.kind == "join"
    codes = [o.code for o in crash_outputs(rep, "hang.dmp", "test") if isinstance(o, Finding)]
    assert "DUMP.DEADLOCK" in codes and "DUMP.HANG" in codes


def test_hang_without_owners_is_a_hang_not_a_deadlock():
    threads = (_waiting(1, "NtWaitForSingleObject", 0), _waiting(2, "NtDelayExecution", 0))
    rep = analyze_crash(CrashReport("minidump", threads=threads))
    assert rep.problem_class == "HANG" and not rep.deadlocks
    assert {t.wait.kind for t in rep.threads} == {"handle", "sleep"}


def test_text_trace_report():
    exc = CrashException("java.lang.IllegalStateException", "boom",
                         frames=(StackFrame(0, "text", function="java.util.Objects.requireNonNull", language="java"),
                                 StackFrame(1, "text", function="com.acme.App.start", language="java")))
    th = CrashThread("main", exc.frames, crashed=True)
    rep = analyze_crash(CrashReport("java", threads=(th,), crashing_thread=0, exception=exc))
    assert rep.problem_class == "UNHANDLED_EXCEPTION" and rep.blamed_frame == 1
    assert rep.bucket_id == "UNHANDLED_EXCEPTION_java_lang_IllegalStateException_com.acme.App.start"


def test_critical_section_owner_from_memory_x86():
    """Two x86 threads each own one CRITICAL_SECTION and wait in RtlEnterCriticalSection for the other's."""
    cs_a, cs_b = 0x500000, 0x500040
    mem = {0x1000: cs_b, 0x2000: cs_a, cs_a + 12: 11, cs_b + 12: 22}

    def thread(tid, esp):
        return CrashThread(tid, (
            StackFrame(0, "context", 0x7C90E514, module="ntdll.dll", function="NtWaitForSingleObject",
                       registers={"esp": esp - 0x20}),
            StackFrame(1, "cfi", 0x7C901046, module="ntdll.dll", function="RtlEnterCriticalSection",
                       registers={"esp": esp - 0x10}),
            StackFrame(2, "cfi", 0x401020, module="app.exe", function="worker", registers={"esp": esp})))
    rep = analyze_crash(CrashReport("minidump", cpu="x86", threads=(thread(11, 0x1000), thread(22, 0x2000))),
                        lambda a, n: mem.get(a))
    assert rep.threads[0].wait.resource == f"critical_section:{cs_b:#x}" and rep.threads[0].wait.owner == 22
    assert [d.threads for d in rep.deadlocks] == [(11, 22)]
    assert rep.problem_class == "DEADLOCK"


def test_managed_frames_are_not_classified_as_native_waits():
    th = CrashThread("worker", (StackFrame(0, "text", function="read", language="python"),))
    rep = analyze_crash(CrashReport("faulthandler", threads=(th,)))
    assert rep.threads[0].wait is None and rep.problem_class == "NO_EXCEPTION"

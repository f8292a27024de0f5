"""Every text artifact in corpus/dumps/text against the facts in its SOURCES.md."""

from __future__ import annotations

import pytest

from backline.analyzers.dumps.text import parse_text_crash


def _one(path):
    reps = parse_text_crash(path)
    assert len(reps) == 1, [r.source_format for r in reps]
    return reps[0]


def test_java_caused_by(corpus):
    rep = _one(corpus / "dumps/text/gen/java_caused_by.txt")
    e = rep.exception
    assert rep.source_format == "java" and e.thread == "main"
    assert (e.type, e.message) == ("java.io.UncheckedIOException", "service failed to start")
    assert [f.function for f in e.frames] == ["ChainedCause.start", "ChainedCause.main"]
    chain = [c for c in e.causes if c.relation == "cause"]
    assert [c.type for c in chain] == ["java.io.IOException", "java.lang.NumberFormatException"]
    assert chain[1].message == 'For input string: "80a"'
    assert [len(c.frames) for c in chain] == [2, 5]
    assert [c.subcode for c in chain] == ["elided:1", "elided:2"]        # "... N more"
    sup = [c for c in e.causes if c.relation == "suppressed"]
    assert [(c.type, c.message, len(c.frames)) for c in sup] == [
        ("java.lang.IllegalStateException", "close failed", 2)]
    nfe = chain[1].frames[0]
    assert (nfe.module, nfe.function, nfe.file, nfe.line) == (
        "java.base", "java.lang.NumberFormatException.forInputString", "NumberFormatException.java", 67)
    assert rep.signature == "java.io.UncheckedIOException | ChainedCause.start | ChainedCause.main"


def test_jstack_deadlock(corpus):
    rep = _one(corpus / "dumps/text/gen/java_deadlock_jstack.txt")
    assert rep.source_format == "jstack"
    names = {t.id: t.name for t in rep.threads}
    assert len(rep.deadlocks) == 1
    assert sorted(names[t] for t in rep.deadlocks[0].threads) == ["worker-ab", "worker-ba"]
    assert rep.extra["jvm_deadlocks"] == [["worker-ab", "worker-ba"]]          # the JVM's own section
    ab = next(t for t in rep.threads if t.name == "worker-ab")
    assert ab.state == "BLOCKED" and ab.wait.resource == "monitor:<0x000000069ec19b48>"
    assert ab.holds == ("monitor:<0x000000069ec19b38>",) and ab.id == 0x84a
    assert len(ab.frames) == 3 and ab.frames[1].file is None                 # (Unknown Source)
    main = next(t for t in rep.threads if t.name == "main")
    assert main.state == "WAITING" and main.wait is None and len(main.frames) == 4
    assert len(rep.threads) == 21


def test_python_explicit_cause(corpus):
    rep = _one(corpus / "dumps/text/gen/py_traceback_explicit.txt")
    e = rep.exception
    assert (e.type, e.message) == ("ValueError", "settings file is not valid JSON")
    assert [f.function for f in e.frames] == ["read_port", "<lambda>", "<module>"]
    assert e.frames[0].line == 12 and e.frames[0].file == "/src/gen/py_chained.py"
    assert [(c.type, c.relation, len(c.frames)) for c in e.causes] == [
        ("json.decoder.JSONDecodeError", "cause", 5)]
    assert e.causes[0].frames[0].function == "raw_decode"


def test_python_implicit_context(corpus):
    rep = _one(corpus / "dumps/text/gen/py_traceback_implicit.txt")
    e = rep.exception
    assert e.type == "AttributeError" and "close" in e.message
    assert len(e.frames) == 3
    assert [(c.type, c.message, c.relation, len(c.frames)) for c in e.causes] == [
        ("KeyError", "'missing'", "context", 1)]


def test_faulthandler_hang(corpus):
    rep = _one(corpus / "dumps/text/gen/py_faulthandler_hang.txt")
    assert rep.source_format == "faulthandler" and rep.exception is None
    assert rep.extra["timeout"] == "0:00:01"
    assert len(rep.threads) == 3
    tops = [(t.frames[0].function, t.frames[0].line) for t in rep.threads]
    assert tops.count(("take", 18)) == 2
    main = rep.threads[2]
    assert [f.function for f in main.frames] == ["_wait_for_tstate_lock", "join", "<module>"]
    assert main.wait is not None and main.wait.kind == "join"


def test_mono_inner_exceptions(corpus):
    rep = _one(corpus / "dumps/text/gen/dotnet_mono_inner_exception.txt")
    e = rep.exception
    assert rep.extra["runtime"] == "mono"
    assert [e.type] + [c.type for c in e.causes] == [
        "System.InvalidOperationException", "System.IO.InvalidDataException", "System.FormatException"]
    assert [c.relation for c in e.causes] == ["inner", "inner"]
    assert [len(e.frames)] + [len(c.frames) for c in e.causes] == [2, 2, 5]
    f = e.frames[0]
    assert (f.function, f.file, f.line) == ("InnerException.Start", "/src/gen/InnerException.cs", 14)
    assert e.causes[1].frames[0].file is None                         # <hash>:0 is no file
    assert rep.extra["repeated_at"] > rep.extra["line"]               # the "[ERROR] FATAL" repeat


@pytest.mark.parametrize("name,typ,frame0,problem", [
    ("hs_err/krashpad_dataset5.txt", "SIGSEGV", ("libc.so.6", "__memcpy_ssse3_back"), "JVM_SIGSEGV_IN_NATIVE"),
    ("hs_err/krashpad_dataset77.txt", "SIGSEGV", ("libpthread.so.0", "pthread_getcpuclockid"), "JVM_SIGSEGV_IN_NATIVE"),
    ("hs_err/krashpad_dataset17.txt", "SIGBUS", (None, "~StubRoutines::jbyte_disjoint_arraycopy"), "JVM_SIGBUS_IN_JVM_STUB"),
    ("gen/java_hs_err_pid2267.log", "SIGSEGV", ("libjvm.so", "Unsafe_PutLong"), "JVM_SIGSEGV_IN_JVM"),
])
def test_hs_err_signal(corpus, name, typ, frame0, problem):
    rep = _one(corpus / "dumps/text" / name)
    assert rep.source_format == "hs_err" and rep.exception.type == typ
    f = rep.crashed_thread.frames[0]
    assert (f.module, f.function) == frame0
    assert rep.problem_class == problem
    assert rep.extra["problematic_frame"] is not None


def test_hs_err_details(corpus):
    rep = _one(corpus / "dumps/text/gen/java_hs_err_pid2267.log")
    assert rep.extra["jre_version"] == "17.0.15+6" and rep.pid == 2267
    t = rep.crashed_thread
    assert (t.id, t.name) == (2268, "main")
    names = [f.function for f in t.frames]
    assert names.index("NativeCrash.corrupt") + 1 == names.index("NativeCrash.main")
    assert rep.crashed_thread.frames[0].function_offset == 0x124
    assert rep.exception.address == 0 or rep.exception.subcode == "SEGV_MAPERR"
    assert len(rep.threads) > 10
    r77 = _one(corpus / "dumps/text/hs_err/krashpad_dataset77.txt")
    assert r77.crashed_thread.name == "VM Thread" and r77.extra["jre_version"] == "11.0.15+10"


def test_hs_err_native_oom(corpus):
    rep = _one(corpus / "dumps/text/hs_err/krashpad_dataset41.txt")
    assert rep.exception.type == "OutOfMemoryError" and rep.problem_class == "JVM_NATIVE_OOM"
    assert rep.extra["error_location"] == "os_linux.cpp:2879"
    assert rep.extra["problematic_frame"] is None
    assert "34359738368 bytes" in rep.extra["detail"]
    assert rep.extra["heap_max_bytes"] == 32 * 2**30                  # krashpad: heap reserved 32 GB
    assert rep.extra["code_cache_bytes"] == 240 * 2**20               # krashpad: code cache 240 MB
    assert rep.extra["command_line"] == "-XX:+PrintFlagsFinal -Xms32g"


def test_hs_err_internal_error(corpus):
    rep = _one(corpus / "dumps/text/hs_err/krashpad_dataset72.txt")
    assert rep.exception.type == "InternalError" and rep.problem_class == "JVM_INTERNAL_ERROR"
    assert rep.extra["error_location"] == "loopnode.hpp:628"
    assert rep.crashed_thread.name == "C2 CompilerThread1"
    assert rep.extra["detail"].startswith("guarantee(n != NULL)")


def test_hs_err_console_summary(corpus):
    rep = _one(corpus / "dumps/text/gen/java_hs_err_console.txt")
    assert rep.exception.type == "SIGSEGV" and rep.pid == 2267
    assert rep.extra["problematic_frame"] == "V  [libjvm.so+0xed2f94]  Unsafe_PutLong+0x124"

"""Syntax variants written here, traces inside logs, and bad input."""

from __future__ import annotations

import random

import pytest

from backline.analyzers.dumps.text import parse_text_crash, parse_text_crash_text

CORECLR = """\
Unhandled exception. System.InvalidOperationException: service failed to start
 ---> System.FormatException: The input string '80a' was not in a correct format.
   at System.Number.ThrowFormatException[TChar](ReadOnlySpan`1 value)
   at System.Int32.Parse(String s)
   at Demo.Program.ParsePort(String raw) in /src/Program.cs:line 14
   --- End of inner exception stack trace ---
   at Demo.Program.Start(String raw) in /src/Program.cs:line 21
   at Demo.Program.Main(String[] args) in /src/Program.cs:line 30
"""

PY38 = """\
Traceback (most recent call last):
  File "app.py", line 9, in <module>
    main()
  File "app.py", line 6, in main
    return 1 / 0
ZeroDivisionError: division by zero
"""

JAVA_NATIVE = """\
Exception in thread "worker-1" java.lang.UnsatisfiedLinkError: no foo in java.library.path
\tat java.lang.ClassLoader.loadLibrary(Native Method)
\tat com.example.Loader.load(Unknown Source)
\tat com.example.Main.main(Main.java:5)
"""

FAULTHANDLER_SEGV = """\
Fatal Python error: Segmentation fault

Current thread 0x00007f0c1e8e5740 (most recent call first):
  File "/app/native.py", line 12 in crash
  File "/app/native.py", line 20 in <module>
"""


def test_coreclr_frames_and_inner():
    [rep] = parse_text_crash_text(CORECLR)
    e = rep.exception
    assert rep.extra["runtime"] == "coreclr"
    assert (e.type, [c.type for c in e.causes]) == ("System.InvalidOperationException", ["System.FormatException"])
    assert [(f.function, f.line) for f in e.frames] == [("Demo.Program.Start", 21), ("Demo.Program.Main", 30)]
    inner = e.causes[0]
    assert len(inner.frames) == 3 and inner.frames[2].file == "/src/Program.cs" and inner.frames[2].line == 14
    assert inner.frames[0].function == "System.Number.ThrowFormatException[TChar]"


def test_windows_paths_and_aggregate_inner_numbering():
    text = ("Unhandled exception. System.AggregateException: One or more errors occurred. (boom)\n"
            " ---> (Inner Exception #0) System.InvalidOperationException: boom\n"
            "   at App.Worker.Run() in C:\\src\\App\\Worker.cs:line 42\n"
            "   --- End of inner exception stack trace ---\n"
            "   at System.Threading.Tasks.Task.Wait()\n"
            "   at App.Program.Main(String[] args) in C:\\src\\App\\Program.cs:line 9\n")
    [rep] = parse_text_crash_text(text)
    e = rep.exception
    assert e.type == "System.AggregateException"
    assert [c.type for c in e.causes] == ["System.InvalidOperationException"]
    assert e.causes[0].frames[0].file == "C:\\src\\App\\Worker.cs" and e.causes[0].frames[0].line == 42
    assert [f.function for f in e.frames] == ["System.Threading.Tasks.Task.Wait", "App.Program.Main"]


def test_python_38_without_carets():
    [rep] = parse_text_crash_text(PY38)
    assert rep.exception.type == "ZeroDivisionError"
    assert [(f.function, f.line) for f in rep.exception.frames] == [("main", 6), ("<module>", 9)]
    assert rep.exception.causes == ()


def test_java_native_and_unknown_source():
    [rep] = parse_text_crash_text(JAVA_NATIVE)
    e = rep.exception
    assert e.type == "java.lang.UnsatisfiedLinkError" and e.thread == "worker-1"
    assert [(f.function, f.file, f.line) for f in e.frames] == [
        ("java.lang.ClassLoader.loadLibrary", None, None), ("com.example.Loader.load", None, None),
        ("com.example.Main.main", "Main.java", 5)]


def test_java_module_and_class_loader_prefixes():
    text = ("java.lang.IllegalStateException: x\n"
            "\tat com.foo.app//com.foo.Main.run(Main.java:7)\n"
            "\tat java.base/java.lang.Thread.run(Thread.java:840)\n")
    [rep] = parse_text_crash_text(text)
    assert [(f.module, f.function) for f in rep.exception.frames] == [
        ("com.foo.app", "com.foo.Main.run"), ("java.base", "java.lang.Thread.run")]


def test_faulthandler_fatal_error():
    [rep] = parse_text_crash_text(FAULTHANDLER_SEGV)
    assert rep.exception.type == "SIGSEGV" and rep.crashed_thread.frames[0].function == "crash"


def test_traces_inside_a_log_keep_their_lines():
    log = ["2024-01-01 10:00:00 INFO starting"] * 3 + PY38.splitlines() + \
          ["2024-01-01 10:00:05 ERROR request failed"] + JAVA_NATIVE.splitlines() + ["tail"]
    reps = parse_text_crash_text("\n".join(log), source="app.log")
    assert [(r.source_format, r.extra["line"]) for r in reps] == [("python", 4), ("java", 11)]
    assert all(r.extra["source"] == "app.log" for r in reps)
    assert reps[0].signature == "ZeroDivisionError | main | <module>"


def test_same_trace_same_signature_from_file_or_log(tmp_path):
    p = tmp_path / "trace.txt"
    p.write_text(JAVA_NATIVE)
    from_file = parse_text_crash(p)[0]
    from_log = parse_text_crash_text("noise\n" + JAVA_NATIVE + "more noise\n")[0]
    assert from_file.signature == from_log.signature


@pytest.mark.parametrize("text", [
    "", "\n\n", "Traceback (most recent call last):\n", "Traceback (most recent call last):\n  File \"x\", line",
    "Exception in thread \"main\" java.lang.Error\n\tat", "#  SIGSEGV (0xb) at pc=0x0, pid=1, tid=2\n",
    "Full thread dump Java\n\"t\" #1\n", "Thread 0x1 (most recent call first):\n",
    "System.Exception: x ---> \n   at ",
])
def test_truncated_inputs_do_not_crash(text):
    reps = parse_text_crash_text(text)
    assert isinstance(reps, list)


def test_binary_junk(tmp_path):
    rnd = random.Random(5)
    p = tmp_path / "junk.bin"
    p.write_bytes(bytes(rnd.randrange(256) for _ in range(200_000)))
    assert parse_text_crash(p) == []


def test_huge_trace_is_bounded():
    text = "Traceback (most recent call last):\n" + '  File "r.py", line 2, in r\n    r()\n' * 20_000 + \
           "RecursionError: maximum recursion depth exceeded\n"
    [rep] = parse_text_crash_text(text)
    assert rep.exception.type == "RecursionError"
    assert len(rep.exception.frames) == 5_000          # capped


def test_unreadable_file_is_a_clear_error(tmp_path):
    from backline.errors import FormatError
    with pytest.raises(FormatError, match="missing.txt"):
        parse_text_crash(tmp_path / "missing.txt")


def test_exception_header_on_a_log_line():
    log = ("2024-05-01 10:00:01,123 ERROR [http-nio-8080-exec-1] c.e.Api - request failed: "
           "java.lang.IllegalStateException: pool exhausted\n"
           "\tat com.example.Pool.take(Pool.java:88)\n"
           "\tat com.example.Api.handle(Api.java:12)\n"
           "2024-05-01 10:00:02,001 ERROR [worker] Host - System.TimeoutException: The operation has timed out.\n"
           "   at Host.Worker.Run() in /src/Worker.cs:line 7\n")
    reps = parse_text_crash_text(log)
    assert [(r.source_format, r.exception.type, r.extra["line"]) for r in reps] == [
        ("java", "java.lang.IllegalStateException", 1), ("dotnet", "System.TimeoutException", 4)]
    assert reps[0].exception.message == "pool exhausted"
    assert reps[1].exception.frames[0].line == 7


def test_windows_hs_err_header_and_siginfo():
    text = ("#\n# A fatal error has been detected by the Java Runtime Environment:\n#\n"
            "#  EXCEPTION_ACCESS_VIOLATION (0xc0000005) at pc=0x000000006d8c7e1e, pid=5772, tid=0x0000000000001a48\n"
            "#\n# JRE version: Java(TM) SE Runtime Environment (8.0_151-b12) (build 1.8.0_151-b12)\n"
            "# Problematic frame:\n# V  [jvm.dll+0x147e1e]\n#\n\n"
            "Current thread (0x0000000058f3e000):  JavaThread \"main\" [_thread_in_vm, id=6728, stack(0x1,0x2)]\n\n"
            "siginfo: EXCEPTION_ACCESS_VIOLATION (0xc0000005), reading address 0x0000000000000000\n")
    [rep] = parse_text_crash_text(text)
    e = rep.exception
    assert (e.type, e.code, e.subcode, e.address) == ("EXCEPTION_ACCESS_VIOLATION", 0xC0000005, "reading", 0)
    assert rep.extra["jre_version"] == "8.0_151-b12" and rep.crashed_thread.id == 6728
    assert rep.problem_class == "JVM_EXCEPTION_ACCESS_VIOLATION_IN_JVM"


def test_mutated_corpus_texts_never_raise(corpus):
    rnd = random.Random(3)
    files = sorted((corpus / "dumps/text").glob("*/*.txt"))
    assert files
    for f in files:
        lines = f.read_text(errors="replace").split("\n")
        for _ in range(15):
            ls = list(lines)
            for _ in range(rnd.choice([1, 5])):
                k = rnd.randrange(len(ls))
                op = rnd.random()
                if op < 0.35:
                    del ls[k]
                elif op < 0.7:
                    ls.insert(k, ls[rnd.randrange(len(ls))])
                else:
                    ls[k] = ls[k][:rnd.randrange(len(ls[k]) + 1)]
            for rep in parse_text_crash_text("\n".join(ls)):
                assert rep.source_format in ("python", "java", "dotnet", "hs_err", "jstack", "faulthandler")


def test_repeated_java_traces_stay_java():
    text = "java.lang.Error: x\n\tat a.B.c(B.java:1)\n" * 3 + \
           "java.lang.IllegalStateException: y\n\tat a.B.d(Native Method)\n"
    reps = parse_text_crash_text(text)
    assert [(r.source_format, r.extra["line"]) for r in reps] == [
        ("java", 1), ("java", 3), ("java", 5), ("java", 7)]

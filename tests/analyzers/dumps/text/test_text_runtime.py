"""Traces produced now by the running CPython (the corpus's own generator scripts and a few
written here), parsed back: the runtime is the oracle."""

from __future__ import annotations

import subprocess
import sys

from backline.analyzers.dumps.text import parse_text_crash_text


def _stderr(args: list[str], cwd=None) -> str:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert proc.returncode != 0
    return proc.stderr


def test_exception_group(corpus):
    text = _stderr([str(corpus / "dumps/text/gen/py_chained.py"), "group"])
    [rep] = parse_text_crash_text(text)
    e = rep.exception
    assert e.type == "ExceptionGroup" and e.message.startswith("all replicas failed")
    assert [f.function for f in e.frames] == ["group", "<module>"]
    assert [(c.type, c.message, c.relation) for c in e.causes] == [
        ("ConnectionError", "db1: connection refused", "group"),
        ("ConnectionError", "db2: connection refused", "group")]


def test_nested_exception_group_with_chained_member(tmp_path):
    script = tmp_path / "nested.py"
    script.write_text(
        "def inner():\n"
        "    try:\n"
        "        {}['k']\n"
        "    except KeyError as e:\n"
        "        raise ValueError('bad value') from e\n"
        "def leaf(i):\n"
        "    raise OSError(f'disk {i}')\n"
        "errs = []\n"
        "for f in (inner, lambda: leaf(1)):\n"
        "    try:\n"
        "        f()\n"
        "    except Exception as e:\n"
        "        errs.append(e)\n"
        "try:\n"
        "    raise ExceptionGroup('inner group', [OSError('a'), OSError('b')])\n"
        "except ExceptionGroup as g:\n"
        "    errs.append(g)\n"
        "raise ExceptionGroup('outer', errs)\n")
    [rep] = parse_text_crash_text(_stderr([str(script)]))
    e = rep.exception
    assert e.type == "ExceptionGroup" and e.message.startswith("outer")
    assert [c.type for c in e.causes] == ["ValueError", "OSError", "ExceptionGroup"]
    value_error = e.causes[0]
    assert [(c.type, c.relation) for c in value_error.causes] == [("KeyError", "cause")]
    assert [c.message for c in e.causes[2].causes] == ["a", "b"]


def test_faulthandler_segv(corpus):
    text = _stderr([str(corpus / "dumps/text/gen/py_faulthandler.py"), "segv"])
    [rep] = parse_text_crash_text(text)
    assert rep.source_format == "faulthandler"
    assert rep.exception.type == "SIGSEGV"
    crashed = rep.crashed_thread
    assert [f.function for f in crashed.frames[:2]] == ["read_null", "crash_worker"]
    assert len(rep.threads) == 2


def test_recursion_error_with_repeated_lines(tmp_path):
    script = tmp_path / "rec.py"
    script.write_text("def r(n):\n    return r(n + 1)\nr(0)\n")
    [rep] = parse_text_crash_text(_stderr([str(script)]))
    e = rep.exception
    assert e.type == "RecursionError"
    # CPython prints the repeated frame a few times, then "[Previous line repeated N more times]"
    assert e.frames[0].function == "r" and e.frames[-1].function == "<module>"


def test_syntax_error_location(tmp_path):
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    (tmp_path / "main.py").write_text("import broken\n")
    [rep] = parse_text_crash_text(_stderr([str(tmp_path / "main.py")], cwd=tmp_path))
    e = rep.exception
    assert e.type == "SyntaxError"
    assert e.frames[0].file.endswith("broken.py") and e.frames[0].line == 1 and e.frames[0].function is None
    assert e.frames[-1].function == "<module>"

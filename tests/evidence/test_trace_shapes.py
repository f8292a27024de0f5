"""Classification and the text trace parsers agree, shape by shape.

Every trace shape the parsers of ``analyzers/dumps/text`` read must be classified
as a crash trace (else ``backline analyze`` never hands it to them).  The Python
shapes are made here by running Python (tracebacks, chains, exception groups,
faulthandler dumps); the Java, jstack, .NET and hs_err shapes come from the corpus
(made by the real runtimes, see its SOURCES.md).  Each shape is also tried indented,
with CRLF line ends, and behind a line of other output, as tools and people paste them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from backline.analyzers.dumps.text import parse_text_crash_text
from backline.evidence.classify import classify_head
from backline.model.core import ArtifactKind
from backline.testing import corpus_dir

PROGRAMS = {
    "plain": """
        def f(d):
            return d["missing"]
        f({})
    """,
    "cause": """
        import json
        try:
            json.loads("{")
        except ValueError as e:
            raise RuntimeError("config unreadable") from e
    """,
    "context": """
        try:
            {}["k"]
        except KeyError:
            None.attr
    """,
    "group": """
        def f():
            raise ValueError("bad value")
        errors = []
        try:
            f()
        except ValueError as e:
            errors.append(e)
        raise ExceptionGroup("outer", [errors[0], ExceptionGroup("inner", [KeyError("x"), TypeError("t")])])
    """,
    "group_in_handler": """
        try:
            {}["k"]
        except KeyError as e:
            raise ExceptionGroup("while handling", [e, ValueError("v")])
    """,
    "group_flat": """
        raise ExceptionGroup("many", [OSError("disk"), TimeoutError("slow")])
    """,
    "group_caught_star": """
        try:
            raise ExceptionGroup("eg", [KeyError(1), ValueError(2)])
        except* KeyError:
            raise
    """,
    "indented": """
        import sys, textwrap, traceback
        try:
            int("x")
        except ValueError:
            sys.stderr.write(textwrap.indent(traceback.format_exc(), "    "))
    """,
    "faulthandler_current": """
        import faulthandler, sys
        def g():
            faulthandler.dump_traceback(sys.stderr, all_threads=False)
        g()
    """,
    "faulthandler_threads": """
        import faulthandler, sys, threading
        ev = threading.Event()
        t = threading.Thread(target=ev.wait)
        t.start()
        faulthandler.dump_traceback(sys.stderr, all_threads=True)
        ev.set(); t.join()
    """,
    "faulthandler_timeout": """
        import faulthandler, sys, time
        faulthandler.dump_traceback_later(0.05, file=sys.stderr)
        time.sleep(0.5)
    """,
    "faulthandler_fatal": """
        import ctypes, faulthandler
        faulthandler.enable()
        ctypes.string_at(0)
    """,
}


def _run(src: str) -> str:
    p = subprocess.run([sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(src)],
                       capture_output=True, text=True, timeout=60)
    assert p.stderr.strip(), f"the program printed nothing on stderr (rc {p.returncode})"
    return p.stderr


@pytest.fixture(scope="module")
def python_shapes() -> dict[str, str]:
    return {name: _run(src) for name, src in PROGRAMS.items()}


def _corpus_shapes() -> dict[str, str]:
    root = corpus_dir() / "dumps" / "text"
    out = {}
    for p in sorted([*(root / "gen").glob("*.txt"), *(root / "gen").glob("*.log"),
                     *(root / "hs_err").glob("*.txt")]):
        out[p.name] = p.read_text("utf-8", "replace")
    return out


#: Printed by OpenJDK 17.0.15 here (``throw new RuntimeException("boom")`` in ``main``, and a
#: ``Caused by`` whose outer exception has one frame): single-frame shapes.
JAVA_SHAPES = {
    "java_single_frame": 'Exception in thread "main" java.lang.RuntimeException: boom\n'
                         "\tat Two.main(Two.java:1)\n",
    "java_single_frame_caused_by": 'Exception in thread "main" java.lang.IllegalStateException: bad config\n'
                                   "\tat One.main(One.java:3)\n"
                                   'Caused by: java.lang.NumberFormatException: For input string: "x"\n'
                                   "\tat java.base/java.lang.NumberFormatException.forInputString("
                                   "NumberFormatException.java:67)\n"
                                   "\tat java.base/java.lang.Integer.parseInt(Integer.java:668)\n"
                                   "\t... 1 more\n",
}


@pytest.mark.parametrize("name", list(JAVA_SHAPES))
def test_java_single_frame_shapes(name):
    _check(name, JAVA_SHAPES[name])


def _variants(text: str) -> dict[str, str]:
    return {
        "as is": text,
        "crlf": text.replace("\n", "\r\n"),
        "after a line of output": "job 42 failed, its stderr follows:\n" + text,
    }


def _check(name: str, text: str) -> None:
    reps = parse_text_crash_text(text)
    assert reps, f"{name}: the parsers read no trace (the shape is not one they accept)"
    for vname, v in _variants(text).items():
        if not parse_text_crash_text(v):
            continue            # the parsers do not read this variant: nothing to agree on
        for fname in ("trace.txt", "stderr", "output.out"):
            c = classify_head(v.encode(), fname, len(v.encode()))
            assert c.kind is ArtifactKind.CRASH_TRACE or c.kind is ArtifactKind.HS_ERR, (
                f"{name} ({vname}, named {fname}): parsed as {reps[0].source_format} "
                f"but classified {c.kind.value}/{c.format}")


@pytest.mark.parametrize("shape", list(PROGRAMS))
def test_python_shapes_made_by_python_are_classified_as_traces(python_shapes, shape):
    text = python_shapes[shape]
    _check(shape, text)


def test_exception_group_is_a_trace_and_its_members_are_read(python_shapes):
    text = python_shapes["group"]
    assert text.lstrip().startswith("+ Exception Group Traceback")
    c = classify_head(text.encode(), "crash.txt", len(text.encode()))
    assert (c.kind, c.format) == (ArtifactKind.CRASH_TRACE, "python")
    rep = parse_text_crash_text(text)[0]
    assert rep.exception.type == "ExceptionGroup"
    assert [x.type for x in rep.exception.causes] == ["ValueError", "ExceptionGroup"]


def test_indented_python_shape_is_one_the_parser_accepts(python_shapes):
    # the indented form must really be indented, or the test proves nothing new
    assert python_shapes["indented"].startswith("    Traceback")


@pytest.mark.parametrize("name", list(_corpus_shapes()))
def test_corpus_trace_shapes_are_classified_as_traces(name):
    _check(name, _corpus_shapes()[name])


def test_indented_variant_of_every_python_shape(python_shapes):
    """An indented copy (a trace quoted in an e-mail or a ticket) is read and classified alike."""
    for name, text in python_shapes.items():
        ind = textwrap.indent(text, "    ")
        if parse_text_crash_text(ind):
            c = classify_head(ind.encode(), "pasted.txt", len(ind.encode()))
            assert c.kind is ArtifactKind.CRASH_TRACE, f"{name}: indented copy classified {c.kind.value}"

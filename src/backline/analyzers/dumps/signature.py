"""Crash signatures compatible with Mozilla Socorro's signature generation (siggen).

For native stacks: each frame of the crashing thread (inlined frames first,
at most 40) is normalized (function with C++/Rust clean-ups, else
``file#line``, else module, else ``@0xaddress``); the list is cut at the first
*sentinel*; *irrelevant* frames are skipped, repeated library frames merged,
and frames are taken while they match the *prefix* list.  The lists are data
files in ``data/siglists/`` (from socorro-siggen, MPL-2.0) so they are easy
to extend.  ``EXCEPTION_STACK_OVERFLOW`` crashes get ``stackoverflow | ``
and OOM reasons ``OOM | unknown | `` like Socorro.

For text traces (Java, Python, .NET) the signature is the exception type
plus the first frame's function: ``java.lang.NullPointerException at Foo.bar``.

>>> normalize_function("`anonymous namespace'::CrashFunction")
'(anonymous namespace)::CrashFunction'
>>> normalize_function("static void * Allocator<Base>::malloc(unsigned __int64)")
'Allocator<T>::malloc'
>>> normalize_function("stack_smash(char const*)")
'stack_smash'
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Iterator

from backline.analyzers.dumps.model import CrashReport, StackFrame

MAX_FRAMES = 40
MAX_LENGTH = 255
_OOM_REASONS = {"STATUS_FATAL_MEMORY_EXHAUSTION", "STATUS_NO_MEMORY"}
_PAIRS = {"(": ")", "{": "}", "[": "]", "<": ">", "`": "'"}


@lru_cache(maxsize=None)
def _list(name: str) -> tuple[str, ...]:
    text = resources.files("backline.analyzers.dumps").joinpath(f"data/siglists/{name}.txt").read_text("utf-8")
    return tuple(l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#"))


@lru_cache(maxsize=None)
def _regex(name: str) -> re.Pattern[str]:
    return re.compile("|".join(_list(name)))


def _skip_token(excs: tuple[str, ...], before: str, token: str) -> bool:
    return any(before.endswith(s) or s in token for s in excs)


def _collapse(text: str, open_: str, close: str, repl: str, excs: tuple[str, ...] = ()) -> str:
    """Replace every outermost ``open_ ... close`` group by ``repl`` unless an exception applies."""
    out: list[str] = []
    depth = 0
    tok: list[str] = []
    i = 0
    for i, ch in enumerate(text):
        if depth == 0:
            if ch == open_ and not _skip_token(excs, text[:i], ""):
                depth, tok = 1, [ch]
            else:
                out.append(ch)
            continue
        tok.append(ch)
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                t = "".join(tok)
                out.append(t if _skip_token(excs, text[:i], t) else repl)
                tok = []
    if depth:
        t = "".join(tok)
        out.append(t if _skip_token(excs, text[:i], t) else repl)
    return "".join(out)


def _last_token(function: str) -> str:
    """Drop storage class and return type: the last space-separated token, respecting brackets."""
    tokens: list[str] = []
    stack: list[str] = []
    cur: list[str] = []
    for ch in function:
        if ch in _PAIRS:
            stack.append(ch)
            cur.append(ch)
        elif ch in _PAIRS.values():
            if stack and _PAIRS[stack[-1]] == ch:
                stack.pop()
            cur.append(ch)
        elif ch == " " and not stack:
            tokens.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        tokens.append("".join(cur))
    while len(tokens) > 1 and tokens[-1].startswith(("(", "[clone")):
        tokens = tokens[:-2] + [tokens[-2] + " " + tokens[-1]]
    return tokens[-1] if tokens else function


_SPACE = re.compile(r" (?=[\*&,])")
_COMMA = re.compile(r",(?! )")
_RUST_HASH = re.compile(r"::h[0-9a-fA-F]+$")
_LAMBDA = re.compile(r"::\$_\d+::")


def normalize_function(function: str, line: int | None = None, rust: bool = False) -> str:
    """Socorro's normalization of one function name (C++ rules, or Rust rules for ``.rs`` files)."""
    f = function
    if rust:
        f = _last_token(f)
        f = _collapse(f, "<", ">", "<T>", (" as ",))
        f = _collapse(f, "(", ")", "")
    else:
        for q in ("const", "const&", "const &", "&&", "&"):
            if f.endswith(q):
                f = f[: -len(q)].strip()
        if "::operator" not in f:
            f = _last_token(f)
        f = f.replace("`anonymous namespace'", "(anonymous namespace)")
        f = _LAMBDA.sub("::$::", f)
        f = _collapse(f, "<", ">", "<T>", ("name omitted", "IPC::ParamTraits", " in "))
        f = _collapse(f, "(", ")", "", ("anonymous namespace", "operator"))
        if "clone .cold" in f:
            f = _collapse(f, "[", "]", "")
    if _regex("signatures_with_line_numbers_re").match(f):
        f = f"{f}:{line}"
    f = _SPACE.sub("", f)
    f = _COMMA.sub(", ", f)
    if rust:
        f = _RUST_HASH.sub("", f)
    return f


def _source_name(file: str | None) -> str | None:
    if not file:
        return None
    parts = file.split(":")
    if len(parts) == 4:
        return parts[2]
    if len(parts) == 2:
        return parts[1]
    return file if file.startswith("/") else None


def normalize_frame(module: str | None, function: str | None, file: str | None, line: int | None,
                    address: int | None, unloaded: str | None = None) -> str:
    """The one-string form of a frame used to build signatures."""
    if function:
        return normalize_function(function, line, rust=(_source_name(file) or "").endswith(".rs"))
    if file and line:
        name = file.rstrip("/\\")
        name = name.rsplit("\\")[-1] if "\\" in name else name.rsplit("/")[-1]
        return f"{name}#{line}"
    if module:
        return module.strip("[]")
    if unloaded:
        return f"(unloaded {unloaded})"
    if address is not None:        # Socorro keeps "@0x0": the offset text is non-empty
        return f"@{address:#x}"
    return ""


def _frames(report: CrashReport, ti: int) -> Iterator[tuple]:
    th = report.threads[ti]
    inl = (report.extra or {}).get("inlines") or {}
    unl = (report.extra or {}).get("unloaded_frames") or {}
    lower = report.os == "Windows NT"
    for f in th.frames:
        mod = f.module.lower() if (lower and f.module) else f.module
        for name, file, line in inl.get(f"{ti}/{f.index}", ()):
            yield mod, name, file, line, f.instruction, None
        u = unl.get(f"{ti}/{f.index}")
        yield mod, f.function, f.file, f.line, f.instruction, (u[0]["module"] if u else None)


def frame_list(report: CrashReport) -> list[str]:
    """Normalized frames of the crashing thread (thread 0 when none is marked, as Socorro does)."""
    if not report.threads:
        return []
    ti = report.crashing_thread if report.crashing_thread is not None else 0
    if not 0 <= ti < len(report.threads):
        return []
    out = []
    for i, fr in enumerate(_frames(report, ti)):
        if i >= MAX_FRAMES:
            break
        out.append(normalize_frame(*fr))
    return out


def _native_signature(frames: list[str], has_thread: bool) -> str:
    sentinels = [frames.index(s) for s in _list("signature_sentinels") if s in frames]
    if sentinels:
        frames = frames[min(sentinels):]
    irrelevant, prefix = _regex("irrelevant_signature_re"), _regex("prefix_signature_re")
    sig: list[str] = []
    for f in frames:
        if not f or irrelevant.match(f):
            continue
        if not f.startswith("(unloaded") and (f.lower().endswith((".dll", ".so")) or f == "XUL"
                                             or f == "<name omitted>" or f.startswith("<unknown in")):
            if sig and sig[-1] == f:
                continue
        sig.append(f)
        if not prefix.match(f):
            break
    out = " | ".join(sig)
    if not out:
        if not has_thread:
            return "EMPTY: no crashing thread identified"
        return frames[0] if frames else "EMPTY: no frame data available"
    return out


def _text_signature(report: CrashReport) -> str:
    exc = report.exception
    frames: tuple[StackFrame, ...] = ()
    if exc is not None and exc.frames:
        frames = exc.frames
    elif report.crashed_thread is not None:
        frames = report.crashed_thread.frames
    elif report.threads:
        frames = report.threads[0].frames
    top = next((f for f in frames if f.function), None)
    head = exc.type if exc is not None else "no exception"
    return f"{head} at {top.function}" if top else head


def socorro_signature(report: CrashReport) -> str:
    """The signature of ``report`` (native stacks: Socorro-compatible)."""
    native = report.source_format in ("minidump", "elf_core") or any(
        f.language == "native" and f.instruction is not None
        for t in report.threads for f in t.frames)
    if not native:
        sig = _text_signature(report)
    else:
        sig = _native_signature(frame_list(report), bool(report.threads))
        reason = report.exception.type if report.exception else None
        if reason in _OOM_REASONS:
            sig = f"OOM | unknown | {sig}"
        if reason == "EXCEPTION_STACK_OVERFLOW":
            sig = f"stackoverflow | {sig}"
    sig = re.sub(r"\s\s+", " ", re.sub(r"\s", " ", sig.strip()))
    if len(sig) > MAX_LENGTH:
        sig = sig[: MAX_LENGTH - 3] + "..."
    return sig

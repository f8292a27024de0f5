"""Helpers shared by the text crash parsers: signatures and limits.

>>> from backline.analyzers.dumps.model import CrashException, StackFrame
>>> e = CrashException("KeyError", frames=(StackFrame(0, "text", function="load"),))
>>> text_signature(e)
'KeyError | load'
"""

from __future__ import annotations

from dataclasses import replace

from backline.analyzers.dumps.model import CrashException, CrashReport, StackFrame

MAX_LINE = 10_000          # characters of one line that are looked at
MAX_FRAMES = 5_000         # frames kept per exception / thread
MAX_REPORTS = 1_000        # reports per text
SIGNATURE_FRAMES = 3


def short_type(name: str) -> str:
    return name.strip()


def text_signature(exc: CrashException | None, frames: tuple[StackFrame, ...] = ()) -> str | None:
    """``<exception type> | <top frame> | <next> | <next>`` (innermost frames first).

    The frames are the exception's own when it has any, else ``frames``.
    """
    if exc is None and not frames:
        return None
    own = exc.frames if exc is not None and exc.frames else frames
    parts = [exc.type] if exc is not None else []
    for f in own[:SIGNATURE_FRAMES]:
        parts.append(f.function or f.display())
    return " | ".join(parts)


def renumber(frames: list[StackFrame]) -> tuple[StackFrame, ...]:
    return tuple(replace(f, index=i) for i, f in enumerate(frames[:MAX_FRAMES]))


def finish(report: CrashReport) -> CrashReport:
    """Fill the signature (and blamed frame 0) of a text report."""
    frames: tuple[StackFrame, ...] = ()
    t = report.crashed_thread
    if t is not None:
        frames = t.frames
    sig = text_signature(report.exception, frames)
    return replace(report, signature=sig, blamed_frame=0 if frames else None)

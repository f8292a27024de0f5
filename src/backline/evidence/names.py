"""Names inside evidence: safe display and the checks on archive member names.

>>> check_member_name("logs/../../etc/passwd")
('', 'path escapes the archive (".." component): logs/../../etc/passwd')
>>> check_member_name("C:\\\\Windows\\\\win.ini")[1]
'absolute path: C:\\\\Windows\\\\win.ini'
>>> check_member_name("./logs//app.log")
('logs/app.log', '')
>>> render_name("caf\\udce9.log")
('caf\\\\xe9.log', True)
>>> render_name("evil\\u202egol.exe")
('evil\\\\u202egol.exe', True)
"""

from __future__ import annotations

import re

_DRIVE = re.compile(r"^[A-Za-z]:")


def render_name(name: str) -> tuple[str, bool]:
    """Printable form of a name that may hold undecodable bytes (surrogate escapes).

    Returns ``(display, changed)``; undecodable bytes become ``\\xNN``.
    """
    try:
        name.encode("utf-8")
        clean = name
        changed = False
    except UnicodeEncodeError:
        clean = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        changed = True
    if any(_unsafe(c) for c in clean):
        clean = "".join(_escape(c) if _unsafe(c) else c for c in clean)
        changed = True
    return clean, changed


#: Characters that change how the rest of a name is displayed: C0/C1 controls, DEL, and the
#: bidirectional overrides/isolates ("evil\u202egol.exe" would show as "evilexe.log").
_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C))


def _unsafe(c: str) -> bool:
    o = ord(c)
    return o < 32 or 127 <= o < 160 or c in _BIDI


def _escape(c: str) -> str:
    o = ord(c)
    return f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}"


def check_member_name(raw: str) -> tuple[str, str]:
    """Normalise an archive member name; ``(name, "")`` or ``("", reason)`` when refused."""
    shown = render_name(raw)[0]
    if "\x00" in raw:
        return "", f"name contains a NUL byte: {shown}"
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name):
        return "", f"absolute path: {shown}"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return "", f'path escapes the archive (".." component): {shown}'
    if not parts:
        return "", f"empty name: {shown!r}"
    return "/".join(parts), ""


def safe_basename(name: str, limit: int = 120) -> str:
    """A file name safe to create on any local file system (for the work folder)."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    base = render_name(base)[0]
    base = re.sub(r"[^\w.\-+@#=,]", "_", base)
    base = base.lstrip(".") or "file"
    if len(base.encode()) > limit:
        stem, dot, ext = base.rpartition(".")
        ext = ext[:16] if dot else ""
        base = base[: limit - len(ext) - 1] + ("." + ext if ext else "")
    return base

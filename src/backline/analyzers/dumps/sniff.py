"""What kind of crash evidence a file is, by its first bytes (``backline dump``, ``backline dbg``)."""

from __future__ import annotations

from pathlib import Path

from backline.errors import BacklineError


def classify(path: Path) -> str:
    """``minidump``, ``microdump``, ``elf_core``, ``text`` or raise BacklineError for anything else."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:4] == b"MDMP":
        return "minidump"
    if b"-----BEGIN BREAKPAD MICRODUMP-----" in head:
        return "microdump"
    if head[:4] == b"\x7fELF":
        if len(head) < 18:
            raise BacklineError("ELF header is truncated", artifact=str(path), locator="offset:0x0")
        order = "little" if head[5] == 1 else "big"
        e_type = int.from_bytes(head[16:18], order)
        if e_type == 4:
            return "elf_core"
        raise BacklineError(f"ELF file of type {e_type} is not a core file", artifact=str(path),
                            locator="offset:0x10")
    if not head:
        raise BacklineError("file is empty", artifact=str(path))
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "text"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 4:          # cut inside a multi-byte character
                return "text"
    raise BacklineError("not a minidump, ELF core or text crash trace", artifact=str(path),
                        locator="offset:0x0")

"""Which ELF file is loaded where in a core, and where to find its bytes.

Modules come from ``NT_FILE`` (every mapped file, grouped by path; the base is
the mapping of file offset 0).  Each module's build id is read from the core's
own memory (the kernel dumps the first page of every ELF mapping), and the
matching executable/library is looked up in the folders given with
``--binaries``: by file name, then by build id across all files there, then at
the original path if it still exists and the build id agrees.  The main
executable is also found by its entry point (``AT_ENTRY``) when ``NT_FILE`` is
absent or names a different file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from backline.analyzers.dumps.elfcore.reader import ElfCore
from backline.analyzers.dumps.elfsym import ElfImage, build_id_from_notes, open_image

AT_PHDR = 3
AT_ENTRY = 9
AT_SYSINFO_EHDR = 33
MAX_INDEXED_FILES = 20_000


@dataclass(slots=True)
class LoadedModule:
    """A module of the crashed process: name, runtime range, and the image when found."""

    name: str
    path: str
    base: int
    end: int
    build_id: str | None = None
    image: ElfImage | None = None
    bias: int = 0
    exec_ranges: list[tuple[int, int]] = field(default_factory=list)

    def contains(self, addr: int) -> bool:
        return self.base <= addr < self.end


def read_build_id(core: ElfCore, base: int) -> str | None:
    """Parse the ELF header and ``PT_NOTE`` segments of the image mapped at ``base``."""
    head = core.read(base, 64)
    if head is None or head[:4] != b"\x7fELF":
        return None
    is64 = head[4] == 2
    E = "<" if head[5] != 2 else ">"
    try:
        if is64:
            phoff, = struct.unpack_from(E + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(E + "HH", head, 54)
        else:
            phoff, = struct.unpack_from(E + "I", head, 28)
            phentsize, phnum = struct.unpack_from(E + "HH", head, 42)
    except struct.error:
        return None
    if phnum > 128 or phentsize not in (32, 56):
        return None
    phdrs = core.read(base + phoff, phnum * phentsize)
    if phdrs is None:
        return None
    loads: list[int] = []
    notes: list[tuple[int, int]] = []
    for i in range(phnum):
        off = i * phentsize
        if is64:
            p_type, _f, _o, p_vaddr, _pa, p_filesz, _m, _a = struct.unpack_from(E + "IIQQQQQQ", phdrs, off)
        else:
            p_type, _o, p_vaddr, _pa, p_filesz, _m, _f, _a = struct.unpack_from(E + "IIIIIIII", phdrs, off)
        if p_type == 1:
            loads.append(p_vaddr)
        elif p_type == 4 and p_filesz < 65536:
            notes.append((p_vaddr, p_filesz))
    bias = base - ((min(loads) & ~0xFFF) if loads else 0)
    for vaddr, size in notes:
        data = core.read(bias + vaddr, size)
        if data:
            bid = build_id_from_notes(data, E)
            if bid:
                return bid
    return None


def _modules_from_files(core: ElfCore) -> list[LoadedModule]:
    by_path: dict[str, LoadedModule] = {}
    for f in core.files:
        if not f.path:
            continue
        mod = by_path.get(f.path)
        if mod is None:
            mod = LoadedModule(name=os.path.basename(f.path), path=f.path, base=f.start, end=f.end)
            by_path[f.path] = mod
        mod.base = min(mod.base, f.start)
        mod.end = max(mod.end, f.end)
    mods = sorted(by_path.values(), key=lambda m: m.base)
    for m in mods:
        for seg in core.segments:
            if seg.flags & 1 and m.base <= seg.vaddr < m.end:
                m.exec_ranges.append((seg.vaddr, seg.end))
    return mods


class BinaryFinder:
    """Files under the ``--binaries`` folders, by name and (lazily) by build id."""

    def __init__(self, folders: Sequence[Path]):
        self.by_name: dict[str, list[Path]] = {}
        self._by_id: dict[str, Path] | None = None
        n = 0
        for folder in folders:
            folder = Path(folder)
            if folder.is_file():
                self.by_name.setdefault(folder.name, []).append(folder)
                continue
            for root, _dirs, files in os.walk(folder):
                for name in files:
                    n += 1
                    if n > MAX_INDEXED_FILES:
                        return
                    self.by_name.setdefault(name, []).append(Path(root) / name)

    def all_files(self) -> list[Path]:
        return [p for paths in self.by_name.values() for p in paths]

    def by_build_id(self, build_id: str) -> Path | None:
        if self._by_id is None:
            self._by_id = {}
            for p in self.all_files():
                try:
                    with open(p, "rb") as fh:
                        if fh.read(4) != b"\x7fELF":
                            continue
                except OSError:
                    continue
                img = open_image(p)
                if img is not None:
                    if img.build_id:
                        self._by_id.setdefault(img.build_id, p)
                    img.close()
        return self._by_id.get(build_id)


def _accept(path: Path, want_id: str | None, symbol_paths: Sequence[Path]) -> ElfImage | None:
    img = open_image(path, symbol_paths)
    if img is None:
        return None
    if want_id and img.build_id and img.build_id != want_id:
        img.close()
        return None
    return img


def _attach_executable(core: ElfCore, mods: list[LoadedModule], finder: BinaryFinder, entry: int,
                       symbol_paths: Sequence[Path], warnings: list[str]) -> None:
    """Find the executable among ``--binaries`` files by entry point, then build id / name."""
    phdr = core.auxv.get(AT_PHDR)
    core_id = read_build_id(core, phdr & ~0xFFF) if phdr else None
    owner = next((m for m in mods if m.contains(entry)), None)
    if owner is not None and owner.build_id:
        core_id = owner.build_id
    best: tuple[int, ElfImage, Path] | None = None
    for cand in finder.all_files():
        img = open_image(cand, symbol_paths)
        if img is None or img.elf_type != "ET_EXEC" or img.entry != entry:
            continue
        if core_id and img.build_id and img.build_id != core_id:
            continue                                    # same entry point, different program
        score = 2 if (core_id and img.build_id == core_id) else \
            1 if core.process_name and cand.name.startswith(core.process_name) else 0
        if best is None or score > best[0]:
            best = (score, img, cand)
    if best is None:
        return
    score, img, cand = best
    if score == 0:
        warnings.append(f"executable {cand.name} chosen by entry point only (no build id or name to confirm)")
    if owner is None:
        owner = LoadedModule(name=cand.name, path=str(cand), base=img.min_vaddr,
                             end=img.min_vaddr + _image_span(img), build_id=core_id)
        mods.append(owner)
    owner.image = img
    owner.bias = 0


def _image_span(img: ElfImage) -> int:
    if img._elf is None:
        return 0x1000000
    ends = [seg.header.p_vaddr + seg.header.p_memsz for seg in img._elf.iter_segments()
            if seg.header.p_type == "PT_LOAD"]
    return (max(ends) - img.min_vaddr) if ends else 0x1000000


def resolve_modules(core: ElfCore, binary_paths: Sequence[Path], symbol_paths: Sequence[Path],
                    warnings: list[str]) -> list[LoadedModule]:
    """Modules of ``core`` with their images attached where they could be found."""
    mods = _modules_from_files(core)
    finder = BinaryFinder(binary_paths)
    entry = core.auxv.get(AT_ENTRY)
    for m in mods:
        m.build_id = read_build_id(core, m.base)
        img = None
        for cand in finder.by_name.get(m.name, []):
            img = _accept(cand, m.build_id, symbol_paths)
            if img:
                break
        if img is None and m.build_id and finder.by_name:
            cand = finder.by_build_id(m.build_id)
            if cand is not None:
                img = _accept(cand, m.build_id, symbol_paths)
        if img is None and m.path.startswith("/") and m.build_id:
            # the original path, only when its build id proves it is the same file
            p = Path(m.path)
            if p.is_file():
                img = _accept(p, m.build_id, symbol_paths)
                if img is not None and not img.build_id:
                    img.close()
                    img = None
        if img is not None:
            m.image = img
            m.bias = m.base - img.min_vaddr
    # The main executable by entry point when NT_FILE did not lead to it.
    if entry is not None and not any(m.image and m.contains(entry) for m in mods):
        _attach_executable(core, mods, finder, entry, symbol_paths, warnings)
    for m in mods:
        if m.image is None and not m.name.startswith("["):
            warnings.append(f"no binary for {m.name} (build id {m.build_id or 'unknown'}): "
                            "frames in it are unsymbolized and unwound without CFI")
    mods.sort(key=lambda m: m.base)
    return mods

"""ELF executables and libraries as symbol and unwind sources.

:class:`ElfImage` opens an ELF file with pyelftools and offers what a stack
walker needs: the GNU build id, the link-time address of the first loadable
segment (to turn a runtime address into a link-time one), function symbols
from ``.symtab``/``.dynsym``, call-frame tables from ``.eh_frame`` and
``.debug_frame``, and DWARF (own or from a separate debug file found by build
id under ``.build-id/xx/rest.debug``).

>>> find_debug_file("00", [])
"""

from __future__ import annotations

import bisect
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile


#: Folders searched for separate debug files by build id, after the user's.
SYSTEM_DEBUG_DIRS = (Path("/usr/lib/debug"),)
MAX_SYMBOLS = 2_000_000
_BIND_RANK = {1: 0, 0: 1, 2: 2}          # STB_GLOBAL, STB_LOCAL, STB_WEAK (aliases last)
STT_FUNC, STT_GNU_IFUNC = 2, 10


def _iter_func_symbols(raw: bytes, strtab: bytes, is64: bool, endian: str = "<"):
    """``(name, st_info, st_value, st_size)`` of defined function symbols in a symbol table."""
    fmt = endian + ("IBBHQQ" if is64 else "IIIBBH")
    size = 24 if is64 else 16
    count = min(len(raw) // size, MAX_SYMBOLS)
    for i, entry in enumerate(struct.iter_unpack(fmt, raw[:count * size])):
        if is64:
            st_name, info, _other, shndx, value, sz = entry
        else:
            st_name, value, sz, info, _other, shndx = entry
        if (info & 0xF) not in (STT_FUNC, STT_GNU_IFUNC) or shndx == 0 or not value:
            continue
        end = strtab.find(b"\0", st_name)
        if st_name >= len(strtab) or end <= st_name:
            continue
        yield strtab[st_name:end].decode("utf-8", "replace"), info, value, sz


_DEMANGLER: object = None


def demangle(name: str) -> str:
    """Itanium C++ names as people read them (``_ZN3Foo3barEi`` -> ``Foo::bar(int)``),
    through the C++ runtime's own ``__cxa_demangle``; other names unchanged.

    >>> demangle("main")
    'main'
    """
    global _DEMANGLER
    if not name.startswith("_Z"):
        return name
    if _DEMANGLER is None:
        _DEMANGLER = False
        import ctypes
        import ctypes.util
        for lib in ("libstdc++.so.6", ctypes.util.find_library("stdc++"), ctypes.util.find_library("c++")):
            if not lib:
                continue
            try:
                fn = ctypes.CDLL(lib).__cxa_demangle
            except (OSError, AttributeError):
                continue
            fn.restype = ctypes.c_void_p
            fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            _DEMANGLER = (fn, ctypes, ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").free)
            break
    if not _DEMANGLER or len(name) > 4096:
        return name
    fn, ctypes, free = _DEMANGLER
    status = ctypes.c_int(0)
    ptr = fn(name.encode(), None, None, ctypes.byref(status))
    if not ptr or status.value != 0:
        return name
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        free.argtypes = [ctypes.c_void_p]
        free(ptr)


def find_debug_file(build_id: str | None, folders: Sequence[Path]) -> Path | None:
    """``<folder>/.build-id/ab/cdef….debug`` (or without ``.build-id``) for a build id."""
    if not build_id or len(build_id) < 4:
        return None
    rel = Path(build_id[:2]) / f"{build_id[2:]}.debug"
    for folder in list(folders) + list(SYSTEM_DEBUG_DIRS):
        for cand in (folder / ".build-id" / rel, folder / rel):
            try:
                if cand.is_file():
                    return cand
            except OSError:
                continue
    return None


def build_id_from_notes(data: bytes, endian: str = "<") -> str | None:
    """The NT_GNU_BUILD_ID in a block of ELF notes, as hex."""
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(endian + "III", data, pos)
        name_off = pos + 12
        desc_off = name_off + ((namesz + 3) & ~3)
        nxt = desc_off + ((descsz + 3) & ~3)
        if nxt > len(data) and desc_off + descsz > len(data):
            return None
        if ntype == 3 and data[name_off:name_off + namesz].rstrip(b"\0") == b"GNU":
            return data[desc_off:desc_off + descsz].hex()
        pos = nxt
    return None


@dataclass(slots=True)
class ElfImage:
    """One ELF file (executable, library or separate debug file) opened for lookups."""

    path: Path
    build_id: str | None
    elf_type: str
    entry: int
    min_vaddr: int
    ptr_size: int
    endian: str = "<"
    _fh: object = None
    _elf: ELFFile | None = None
    _sym_addrs: list[int] = field(default_factory=list)
    _syms: list[tuple[int, int, str]] = field(default_factory=list)
    _symbols_loaded: bool = False
    _cfi: list | None = None
    debug: "ElfImage | None" = None
    _dwarf: object = None
    _loads: list | None = None
    _by_name: dict | None = None
    cached: bool = False

    @classmethod
    def open(cls, path: Path) -> "ElfImage":
        """Open ``path``; raises ``ELFError``/``OSError`` when it is not a readable ELF file."""
        fh = open(path, "rb")
        try:
            elf = ELFFile(fh)
            build_id = None
            for sec in elf.iter_sections():
                if sec.header.sh_type == "SHT_NOTE":
                    for note in sec.iter_notes():
                        if note["n_type"] == "NT_GNU_BUILD_ID":
                            build_id = note["n_desc"]
                            break
                if build_id:
                    break
            loads = [seg.header.p_vaddr for seg in elf.iter_segments() if seg.header.p_type == "PT_LOAD"]
            min_vaddr = (min(loads) & ~0xFFF) if loads else 0
            img = cls(path=path, build_id=build_id, elf_type=elf.header.e_type,
                      entry=elf.header.e_entry, min_vaddr=min_vaddr,
                      ptr_size=8 if elf.elfclass == 64 else 4,
                      endian="<" if elf.little_endian else ">", _fh=fh, _elf=elf)
            return img
        except Exception:
            fh.close()
            raise

    def close(self) -> None:
        """Release the file handles (a no-op for images kept in the process-wide cache)."""
        if self.cached:
            return
        self._release()

    def _release(self) -> None:
        if self.debug is not None:
            self.debug.cached = False
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.debug is not None:
            self.debug.close()

    def read_vaddr(self, addr: int, size: int) -> bytes | None:
        """File bytes at link-time address ``addr`` (from ``PT_LOAD`` segments)."""
        if self._elf is None or size <= 0 or size > 1 << 20:
            return None
        if not hasattr(self, "_loads") or self._loads is None:
            self._loads = [(s.header.p_vaddr, s.header.p_filesz, s.header.p_offset)
                           for s in self._elf.iter_segments() if s.header.p_type == "PT_LOAD"]
        for vaddr, filesz, offset in self._loads:
            if vaddr <= addr and addr + size <= vaddr + filesz:
                self._fh.seek(offset + addr - vaddr)
                return self._fh.read(size)
        return None

    # -- symbols ------------------------------------------------------------
    def _load_symbols(self) -> None:
        self._symbols_loaded = True
        entries: dict[int, tuple[int, int, str]] = {}
        names: dict[str, int] = {}
        ranks: dict[int, tuple[int, int, int]] = {}
        self._by_name = names
        images = [self] + ([self.debug] if self.debug else [])
        for img in images:
            elf = img._elf
            if elf is None:
                continue
            for secname in (".symtab", ".dynsym"):
                sec = elf.get_section_by_name(secname)
                if sec is None or sec.header.sh_type == "SHT_NOBITS":
                    continue
                try:
                    strtab = elf.get_section(sec.header.sh_link).data()
                    raw = sec.data()
                except (ELFError, OSError, ValueError, IndexError):
                    continue
                for name, info, value, size in _iter_func_symbols(raw, strtab, img.ptr_size == 8, img.endian):
                    name = name.split("@", 1)[0]
                    names.setdefault(name, value)
                    if name.startswith("__GI_"):
                        names.setdefault(name[5:], value)
                    rank = (len(name) - len(name.lstrip("_")), _BIND_RANK.get(info >> 4, 3), len(name))
                    # gdb's choice among aliases: fewest leading underscores, then global, then shortest
                    # (raise over its alias gsignal)
                    if value not in entries or rank < ranks[value]:
                        entries[value] = (value, size, name)
                        ranks[value] = rank
        self._syms = sorted(entries.values())
        self._sym_addrs = [s[0] for s in self._syms]

    @property
    def has_symbols(self) -> bool:
        if not self._symbols_loaded:
            self._load_symbols()
        return bool(self._syms)

    def symbol_at(self, addr: int) -> tuple[str, int] | None:
        """``(name, offset)`` of the function symbol covering link-time ``addr``."""
        if not self._symbols_loaded:
            self._load_symbols()
        i = bisect.bisect_right(self._sym_addrs, addr) - 1
        if i < 0:
            return None
        start, size, name = self._syms[i]
        if size and addr >= start + size:
            # zero-sized symbols (hand-written assembly) cover up to the next one
            return None
        return name, addr - start

    def functions(self) -> list[tuple[int, int, str]]:
        """``(link-time address, size, name)`` of every function symbol, by address."""
        if not self._symbols_loaded:
            self._load_symbols()
        return list(self._syms)

    def address_of(self, name: str) -> int | None:
        """Link-time address of the function symbol ``name`` (first match)."""
        if not self._symbols_loaded:
            self._load_symbols()
        return (self._by_name or {}).get(name)

    # -- unwinding ----------------------------------------------------------
    def cfi_tables(self) -> list:
        """Call-frame tables (:class:`~backline.analyzers.dumps.elfcore.cfi.CfiTable`)."""
        if self._cfi is None:
            from backline.analyzers.dumps.elfcore.cfi import CfiTable
            self._cfi = []
            for img in [self] + ([self.debug] if self.debug else []):
                elf = img._elf
                if elf is None:
                    continue
                for secname, eh in ((".eh_frame", True), (".debug_frame", False)):
                    sec = elf.get_section_by_name(secname)
                    if sec is None or sec.header.sh_type == "SHT_NOBITS":
                        continue
                    try:
                        data = sec.data()
                    except (ELFError, OSError, ValueError):
                        continue
                    self._cfi.append(CfiTable(data, sec.header.sh_addr, eh, img.ptr_size, img.endian))
        return self._cfi

    def rules_for(self, addr: int):
        for table in self.cfi_tables():
            rules = table.rules_for(addr)
            if rules is not None:
                return rules
        return None

    # -- DWARF --------------------------------------------------------------
    def dwarf(self):
        """A :class:`~backline.analyzers.dumps.dwarf.DwarfIndex` or ``None``."""
        if self._dwarf is None:
            from backline.analyzers.dumps.dwarf import DwarfIndex
            self._dwarf = False
            for img in ([self.debug] if self.debug else []) + [self]:
                elf = img._elf
                if elf is not None and elf.get_section_by_name(".debug_info") is not None:
                    try:
                        self._dwarf = DwarfIndex(elf.get_dwarf_info(relocate_dwarf_sections=False))
                    except (ELFError, ValueError, KeyError, struct.error, AssertionError):
                        self._dwarf = False
                    break
        return self._dwarf or None


#: Images stay open between analyses (symbol tables, CFI and DWARF indexes are costly to
#: rebuild), keyed by path, size, mtime and the symbol folders; least recently used first out.
_IMAGE_CACHE: "OrderedDict[tuple, ElfImage | None]" = OrderedDict()
IMAGE_CACHE_SIZE = 32


def open_image(path: Path, symbol_paths: Sequence[Path] = ()) -> ElfImage | None:
    """Open ``path`` as an ELF image and attach its separate debug file if one exists.

    Results are cached per process (see :data:`IMAGE_CACHE_SIZE`); ``None`` when the file
    is not a readable ELF file.
    """
    try:
        st = Path(path).stat()
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns, tuple(str(p) for p in symbol_paths))
    if key in _IMAGE_CACHE:
        _IMAGE_CACHE.move_to_end(key)
        return _IMAGE_CACHE[key]
    img = _open_image(Path(path), symbol_paths)
    if img is not None:
        img.cached = True
        if img.debug is not None:
            img.debug.cached = True
    _IMAGE_CACHE[key] = img
    while len(_IMAGE_CACHE) > IMAGE_CACHE_SIZE:
        _key, old = _IMAGE_CACHE.popitem(last=False)
        if old is not None:
            old.cached = False
            old._release()
    return img


def _open_image(path: Path, symbol_paths: Sequence[Path] = ()) -> ElfImage | None:
    try:
        img = ElfImage.open(path)
    except (OSError, ELFError, ValueError, struct.error):
        return None
    dbg = find_debug_file(img.build_id, symbol_paths)
    if dbg is not None and dbg != path:
        try:
            img.debug = ElfImage.open(dbg)
        except (OSError, ELFError, ValueError, struct.error):
            img.debug = None
    return img

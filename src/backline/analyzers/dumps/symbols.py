"""Breakpad ``.sym`` symbol files and a symbol store of them.

A symbol file holds ``MODULE``, ``FILE``, ``INLINE_ORIGIN``, ``FUNC`` (with
line records), ``INLINE``, ``PUBLIC``, ``STACK WIN`` and ``STACK CFI``
records (google/breakpad ``docs/symbol_files.md``).  A store is one or more
folders laid out as ``<debug file>/<debug id>/<debug file minus .pdb>.sym``.

>>> sym = SymbolFile.parse_text('''MODULE Linux x86_64 ABC0 demo
... FILE 0 demo.c
... FUNC 1000 20 0 main
... 1000 10 7 0
... 1010 10 8 0
... PUBLIC 2000 0 helper
... STACK CFI INIT 1000 20 .cfa: $rsp 8 + .ra: .cfa -8 + ^
... STACK CFI 1004 .cfa: $rsp 16 +
... ''')
>>> s = sym.lookup(0x1012)
>>> (s.function, s.function_base, s.file, s.line)
('main', 4096, 'demo.c', 8)
>>> sym.lookup(0x2005).function
'helper'
>>> sym.cfi_rules(0x1006)
'.cfa: $rsp 8 + .ra: .cfa -8 + ^ .cfa: $rsp 16 +'
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from backline.errors import FormatError

MAX_SYM_BYTES = 2 << 30


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """The result of looking up one module offset."""

    function: str
    function_base: int            # module offset of the function (or public symbol) start
    parameter_size: int = 0
    file: str | None = None
    line: int | None = None
    line_base: int | None = None
    is_public: bool = False
    inlines: tuple[tuple[str, str | None, int | None], ...] = ()   # (function, file, line), outermost first


@dataclass(frozen=True, slots=True)
class WinFrameInfo:
    """One ``STACK WIN`` record (x86 Windows frame data)."""

    type: int
    rva: int
    code_size: int
    prologue_size: int
    epilogue_size: int
    parameter_size: int
    saved_register_size: int
    local_size: int
    max_stack_size: int
    program: str | None            # program string (type 4 with has_program_string)
    allocates_base_pointer: bool


@dataclass(slots=True)
class _Func:
    start: int
    size: int
    param_size: int
    name: str
    lines: list[tuple[int, int, int, int]] = field(default_factory=list)   # addr, size, line, file
    inlines: list[tuple[int, int, int, int, list[tuple[int, int]]]] = field(default_factory=list)


class SymbolFile:
    """A parsed Breakpad symbol file (one module)."""

    def __init__(self) -> None:
        self.os = self.arch = self.debug_id = self.name = ""
        self.code_id: str | None = None
        self.files: dict[int, str] = {}
        self.origins: dict[int, str] = {}
        self._func_starts: list[int] = []
        self._funcs: list[_Func] = []
        self._pub_addrs: list[int] = []
        self._pubs: list[tuple[str, int]] = []
        self._cfi_starts: list[int] = []
        self._cfi: list[tuple[int, str, list[int], list[str]]] = []   # end, init rules, addrs, rules
        self._win: dict[int, tuple[list[int], list[WinFrameInfo]]] = {}
        self.bad_lines = 0

    # ----------------------------------------------------------------- parsing
    @classmethod
    def parse_text(cls, text: str, name: str = "<sym>") -> "SymbolFile":
        return cls.parse_lines(text.splitlines(), name)

    @classmethod
    def from_path(cls, path: Path) -> "SymbolFile":
        if path.stat().st_size > MAX_SYM_BYTES:
            raise FormatError("symbol file is too large", artifact=str(path))
        with open(path, "r", encoding="utf-8", errors="replace") as fh:
            return cls.parse_lines(fh, str(path))

    @classmethod
    def parse_lines(cls, lines: Iterable[str], name: str = "<sym>") -> "SymbolFile":
        self = cls()
        funcs: list[_Func] = []
        pubs: list[tuple[int, str, int]] = []
        cfis: list[tuple[int, int, str, list[int], list[str]]] = []
        wins: dict[int, list[WinFrameInfo]] = {}
        cur: _Func | None = None
        cur_cfi: tuple | None = None
        for raw in lines:
            line = raw.rstrip("\r\n")
            if not line:
                continue
            c = line[0]
            try:
                if c.isdigit() or c in "abcdef":
                    if cur is not None:
                        a, s, ln, f = line.split(" ", 3)
                        cur.lines.append((int(a, 16), int(s, 16), int(ln), int(f)))
                    continue
                kw, _, rest = line.partition(" ")
                if kw == "FUNC":
                    parts = rest.split(" ", 3)
                    if parts[0] == "m":
                        parts = rest[2:].split(" ", 3)
                    cur = _Func(int(parts[0], 16), int(parts[1], 16), int(parts[2], 16),
                                parts[3] if len(parts) > 3 else "")
                    funcs.append(cur)
                elif kw == "STACK":
                    sub, _, rest = rest.partition(" ")
                    if sub == "CFI":
                        if rest.startswith("INIT "):
                            a, s, rules = rest[5:].split(" ", 2)
                            cur_cfi = (int(a, 16), int(s, 16), rules, [], [])
                            cfis.append(cur_cfi)
                        elif cur_cfi is not None:
                            a, rules = rest.split(" ", 1)
                            cur_cfi[3].append(int(a, 16))
                            cur_cfi[4].append(rules)
                    elif sub == "WIN":
                        p = rest.split(" ", 10)
                        typ = int(p[0], 16)
                        has_prog = p[9] == "1"
                        info = WinFrameInfo(typ, int(p[1], 16), int(p[2], 16), int(p[3], 16),
                                            int(p[4], 16), int(p[5], 16), int(p[6], 16),
                                            int(p[7], 16), int(p[8], 16),
                                            p[10] if has_prog else None,
                                            (not has_prog) and p[10].strip() == "1")
                        wins.setdefault(typ, []).append(info)
                elif kw == "PUBLIC":
                    parts = rest.split(" ", 2)
                    if parts[0] == "m":
                        parts = rest[2:].split(" ", 2)
                    pubs.append((int(parts[0], 16), parts[2] if len(parts) > 2 else "", int(parts[1], 16)))
                elif kw == "FILE":
                    n, _, fname = rest.partition(" ")
                    self.files[int(n)] = fname
                elif kw == "INLINE_ORIGIN":
                    n, _, fname = rest.partition(" ")
                    self.origins[int(n)] = fname
                elif kw == "INLINE":
                    if cur is not None:
                        p = rest.split()
                        depth, cline, cfile, origin = int(p[0]), int(p[1]), int(p[2]), int(p[3])
                        ranges = [(int(p[i], 16), int(p[i + 1], 16)) for i in range(4, len(p) - 1, 2)]
                        cur.inlines.append((depth, cline, cfile, origin, ranges))
                elif kw == "MODULE":
                    p = rest.split(" ", 3)
                    if len(p) == 4:
                        self.os, self.arch, self.debug_id, self.name = p
                elif kw == "INFO":
                    if rest.startswith("CODE_ID "):
                        self.code_id = rest.split(" ")[1]
                else:
                    self.bad_lines += 1
            except (ValueError, IndexError):
                self.bad_lines += 1
        funcs.sort(key=lambda f: f.start)
        for f in funcs:
            f.lines.sort()
        self._funcs = funcs
        self._func_starts = [f.start for f in funcs]
        pubs.sort()
        self._pub_addrs = [p[0] for p in pubs]
        self._pubs = [(p[1], p[2]) for p in pubs]
        cfis.sort(key=lambda c: c[0])
        self._cfi_starts = [c[0] for c in cfis]
        self._cfi = [(c[0] + c[1], c[2], c[3], c[4]) for c in cfis]
        for typ, infos in wins.items():
            infos.sort(key=lambda w: w.rva)
            self._win[typ] = ([w.rva for w in infos], infos)
        return self

    # ----------------------------------------------------------------- lookups
    def function_at(self, offset: int) -> _Func | None:
        i = bisect.bisect_right(self._func_starts, offset) - 1
        if i >= 0:
            f = self._funcs[i]
            if offset < f.start + max(f.size, 1):
                return f
        return None

    def lookup(self, offset: int) -> SymbolInfo | None:
        """Function (FUNC, else the nearest PUBLIC below), file and line at a module offset.

        With INLINE records the frame's file/line is the call site of the outermost inlined
        call, and ``inlines`` lists the inlined functions innermost first, each with the line
        inside it (rust-minidump's presentation).  A PUBLIC symbol is not used past a FUNC that
        starts after it (it cannot extend over a function).
        """
        f = self.function_at(offset)
        if f is not None:
            file = line = line_base = None
            if f.lines:
                j = bisect.bisect_right(f.lines, (offset, 1 << 62)) - 1
                if j >= 0:
                    a, s, ln, fi = f.lines[j]
                    if offset < a + s:
                        file, line, line_base = self.files.get(fi), ln, a
            inlines: tuple = ()
            if f.inlines:
                chain = self._inline_chain(f, offset)
                if chain:
                    inner_file, inner_line = file, (line or None)
                    file, line = self.files.get(chain[0][1]), chain[0][0]
                    names = [self.origins.get(o, "?") for _l, _f, o in chain]
                    locs = [(self.files.get(cf), cl) for cl, cf, _o in chain[1:]] + [(inner_file, inner_line)]
                    inlines = tuple(reversed([(n, lf, ll) for n, (lf, ll) in zip(names, locs)]))
            return SymbolInfo(f.name, f.start, f.param_size, file, line, line_base, inlines=inlines)
        i = bisect.bisect_right(self._pub_addrs, offset) - 1
        if i >= 0:
            k = bisect.bisect_left(self._func_starts, offset) - 1     # nearest FUNC starting before
            if k >= 0 and self._pub_addrs[i] <= self._func_starts[k]:
                return None
            nm, ps = self._pubs[i]
            return SymbolInfo(nm, self._pub_addrs[i], ps, is_public=True)
        return None

    @staticmethod
    def _inline_chain(f: _Func, offset: int) -> list[tuple[int, int, int]]:
        """(call line, call file, origin) of the inlined calls covering ``offset``, depth 0 first."""
        by_depth: dict[int, tuple[int, int, int]] = {}
        for depth, cline, cfile, origin, ranges in f.inlines:
            if depth not in by_depth and any(a <= offset < a + s for a, s in ranges):
                by_depth[depth] = (cline, cfile, origin)
        chain = []
        d = 0
        while d in by_depth:
            chain.append(by_depth[d])
            d += 1
        return chain

    def cfi_rules(self, offset: int) -> str | None:
        """The STACK CFI rules in force at ``offset`` (INIT rules then every delta up to it)."""
        i = bisect.bisect_right(self._cfi_starts, offset) - 1
        if i < 0:
            return None
        end, init, addrs, rules = self._cfi[i]
        if offset >= end:
            return None
        k = bisect.bisect_right(addrs, offset)
        return " ".join([init] + rules[:k])

    def win_info(self, offset: int) -> WinFrameInfo | None:
        """The STACK WIN record covering ``offset``: frame data (type 4) first, then FPO (type 0)."""
        for typ in (4, 0):
            if typ not in self._win:
                continue
            starts, infos = self._win[typ]
            i = bisect.bisect_right(starts, offset) - 1
            if i >= 0 and offset < infos[i].rva + infos[i].code_size:
                return infos[i]
        return None

    def functions(self) -> Iterator[tuple[str, int, int]]:
        """``(name, module offset, size)`` of every FUNC, then every PUBLIC (size 0)."""
        for f in self._funcs:
            yield f.name, f.start, f.size
        for (name, _ps), addr in zip(self._pubs, self._pub_addrs):
            yield name, addr, 0

    @property
    def has_functions(self) -> bool:
        return bool(self._funcs or self._pubs)


def sym_relpath(debug_file: str, debug_id: str) -> str:
    """Store path of a module's symbols: ``test_app.pdb/<ID>/test_app.sym``.

    >>> sym_relpath("c:\\\\build\\\\test_app.pdb", "5A98")
    'test_app.pdb/5A98/test_app.sym'
    """
    base = debug_file.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base[:-4] if base.lower().endswith(".pdb") else base
    return f"{base}/{debug_id}/{stem}.sym"


class SymbolStore:
    """Symbol folders searched in order; parsed files are cached (thread-safe).

    A missing or unreadable file caches as ``None`` so each is tried once; at most
    ``max_files`` lookups are kept (least recently used dropped).
    """

    def __init__(self, paths: Sequence[Path] = (), max_files: int = 256) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self.max_files = max_files
        self._cache: OrderedDict[tuple[str, str], SymbolFile | None] = OrderedDict()
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def get(self, debug_file: str | None, debug_id: str | None) -> SymbolFile | None:
        if not debug_file or not debug_id or not self.paths:
            return None
        key = (debug_file, debug_id)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        rels = [sym_relpath(debug_file, debug_id)]
        if debug_id.upper() != debug_id:
            rels.append(sym_relpath(debug_file, debug_id.upper()))
        found: SymbolFile | None = None
        for root, rel in ((r, x) for r in self.paths for x in rels):
            p = root / rel
            if p.is_file():
                try:
                    found = SymbolFile.from_path(p)
                except (OSError, FormatError) as exc:
                    self.errors.append(f"{p}: {exc}")
                    continue
                break
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > self.max_files:
                self._cache.popitem(last=False)
        return found


_SHARED: dict[tuple[Path, ...], SymbolStore] = {}


def shared_store(paths: Sequence[Path]) -> SymbolStore:
    """One cached store per distinct list of folders (symbol files are parsed once per process)."""
    key = tuple(Path(p).resolve() for p in paths)
    if key not in _SHARED:
        if len(_SHARED) > 32:
            _SHARED.clear()
        _SHARED[key] = SymbolStore(key)
    return _SHARED[key]

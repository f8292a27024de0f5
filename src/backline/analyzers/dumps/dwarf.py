"""DWARF lookups for symbolication: function (with inlined calls), file and line.

:class:`DwarfIndex` wraps a pyelftools ``DWARFInfo`` and answers
:meth:`DwarfIndex.frames_at`: for a link-time address, the chain of source
frames, innermost first - every ``DW_TAG_inlined_subroutine`` that covers the
address, then the ``DW_TAG_subprogram`` - each with its file and line (the
innermost from the line table, outer ones from the ``DW_AT_call_file`` /
``DW_AT_call_line`` of the inlined call).  Only the compilation unit holding
the address is parsed (found through ``.debug_aranges``), so large libraries
stay cheap.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from typing import Any

MAX_CU_CACHE = 64
DW_LANG_MIPS_ASSEMBLER = 0x8001
SCOPE_TAGS = ("DW_TAG_namespace", "DW_TAG_class_type", "DW_TAG_structure_type", "DW_TAG_union_type")


@dataclass(frozen=True, slots=True)
class SourceFrame:
    function: str | None
    file: str | None
    line: int | None
    inlined: bool = False
    low_pc: int | None = None


def _ranges(die, dwarf) -> list[tuple[int, int]]:
    attrs = die.attributes
    if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
        low = attrs["DW_AT_low_pc"].value
        high = attrs["DW_AT_high_pc"]
        hv = high.value
        if high.form not in ("DW_FORM_addr",):
            hv = low + hv
        return [(low, hv)]
    if "DW_AT_ranges" in attrs:
        try:
            rl = dwarf.range_lists()
            if rl is None:
                return []
            entries = rl.get_range_list_at_offset(attrs["DW_AT_ranges"].value, cu=die.cu) \
                if die.cu.header["version"] < 5 or attrs["DW_AT_ranges"].form != "DW_FORM_rnglistx" \
                else []
        except Exception:
            return []
        out = []
        base = attrs["DW_AT_low_pc"].value if "DW_AT_low_pc" in attrs else _cu_base(die)
        for e in entries:
            name = type(e).__name__
            if name == "BaseAddressEntry":
                base = e.base_address
            elif hasattr(e, "begin_offset"):
                if getattr(e, "is_absolute", False):
                    out.append((e.begin_offset, e.end_offset))
                else:
                    out.append((base + e.begin_offset, base + e.end_offset))
        return out
    return []


def _cu_base(die) -> int:
    top = die.cu.get_top_DIE()
    attr = top.attributes.get("DW_AT_low_pc")
    return attr.value if attr is not None else 0


class DwarfIndex:
    """Address -> source frames for one DWARF-bearing ELF image (link-time addresses)."""

    def __init__(self, dwarf: Any):
        self.dwarf = dwarf
        self._aranges = None
        self._cu_ranges: list[tuple[int, int, int]] | None = None
        self._lines: dict[int, tuple[list[int], list[tuple[int, int]]]] = {}
        self._files: dict[int, list[str]] = {}
        self._line_versions: dict[int, int] = {}
        self._subprograms: dict[int, list] = {}

    # -- finding the CU -----------------------------------------------------
    def _cu_offset(self, addr: int) -> int | None:
        if self._aranges is None:
            try:
                self._aranges = self.dwarf.get_aranges() or False
            except Exception:
                self._aranges = False
        if self._aranges:
            try:
                off = self._aranges.cu_offset_at_addr(addr)
                if off is not None:
                    return off
            except Exception:
                pass
        if self._cu_ranges is None:
            self._cu_ranges = []
            for n, cu in enumerate(self.dwarf.iter_CUs()):
                if n > 50_000:
                    break
                try:
                    for lo, hi in _ranges(cu.get_top_DIE(), self.dwarf):
                        self._cu_ranges.append((lo, hi, cu.cu_offset))
                except Exception:
                    continue
            self._cu_ranges.sort()
        for lo, hi, off in self._cu_ranges:
            if lo <= addr < hi:
                return off
        return None

    # -- line table ---------------------------------------------------------
    def _line_table(self, cu) -> tuple[list[int], list[tuple[int, int]]]:
        key = cu.cu_offset
        got = self._lines.get(key)
        if got is not None:
            return got
        addrs: list[int] = []
        rows: list[tuple[int, int]] = []
        files: list[str] = []
        try:
            lp = self.dwarf.line_program_for_CU(cu)
        except Exception:
            lp = None
        if lp is not None:
            ver = lp.header["version"]
            incdirs = [d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d)
                       for d in lp.header["include_directory"]]
            for fe in lp.header["file_entry"]:
                name = fe.name.decode("utf-8", "replace") if isinstance(fe.name, bytes) else str(fe.name)
                di = fe.dir_index
                if ver < 5:
                    d = incdirs[di - 1] if 0 < di <= len(incdirs) else ""
                else:
                    d = incdirs[di] if 0 <= di < len(incdirs) else ""
                files.append(os.path.join(d, name) if d and not name.startswith("/") else name)
            seq: list[tuple[int, int, int]] = []
            for entry in lp.get_entries():
                st = entry.state
                if st is None:
                    continue
                seq.append((st.address, st.file, st.line if not st.end_sequence else -1))
            seq.sort(key=lambda r: r[0])
            for a, f, ln in seq:
                addrs.append(a)
                rows.append((f, ln))
        self._files[key] = files
        self._line_versions[key] = lp.header["version"] if lp is not None else cu.header["version"]
        self._lines[key] = (addrs, rows)
        if len(self._lines) > MAX_CU_CACHE:
            self._lines.pop(next(iter(self._lines)))
        return addrs, rows

    def _file_name(self, cu, index: int) -> str | None:
        files = self._files.get(cu.cu_offset, [])
        ver = self._line_versions.get(cu.cu_offset, cu.header["version"])   # the line table's own
        i = index if ver >= 5 else index - 1
        return files[i] if 0 <= i < len(files) else None

    def _line_at(self, cu, addr: int) -> tuple[str | None, int | None]:
        addrs, rows = self._line_table(cu)
        i = bisect.bisect_right(addrs, addr) - 1
        if i < 0:
            return None, None
        f, ln = rows[i]
        if ln < 0:
            return None, None
        return self._file_name(cu, f), ln

    # -- functions ----------------------------------------------------------
    def _name(self, die, depth: int = 0) -> str | None:
        """The function's name as gdb prints it: qualified by its namespaces and classes."""
        if depth > 8:
            return None
        attrs = die.attributes
        if "DW_AT_name" in attrs:
            v = attrs["DW_AT_name"].value
            name = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            return self._scope_prefix(die) + name
        for key in ("DW_AT_abstract_origin", "DW_AT_specification"):
            if key in attrs:
                try:
                    ref = die.get_DIE_from_attribute(key)
                except Exception:
                    return None
                return self._name(ref, depth + 1)
        return None

    @staticmethod
    def _scope_prefix(die) -> str:
        parts: list[str] = []
        node = die
        for _ in range(32):
            try:
                node = node.get_parent()
            except Exception:
                break
            if node is None or node.tag not in SCOPE_TAGS:
                break
            attr = node.attributes.get("DW_AT_name")
            if attr is None:
                parts.append("(anonymous namespace)" if node.tag == "DW_TAG_namespace" else "{anonymous}")
            else:
                v = attr.value
                parts.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
        return "".join(p + "::" for p in reversed(parts))

    def _scopes(self, cu):
        key = cu.cu_offset
        got = self._subprograms.get(key)
        if got is None:
            got = []
            try:
                for die in cu.get_top_DIE().iter_children():
                    if die.tag == "DW_TAG_subprogram":
                        for lo, hi in _ranges(die, self.dwarf):
                            got.append((lo, hi, die))
                    elif die.tag in ("DW_TAG_namespace", "DW_TAG_class_type", "DW_TAG_structure_type"):
                        for sub in die.iter_children():
                            if sub.tag == "DW_TAG_subprogram":
                                for lo, hi in _ranges(sub, self.dwarf):
                                    got.append((lo, hi, sub))
            except Exception:
                pass
            self._subprograms[key] = got
            if len(self._subprograms) > MAX_CU_CACHE:
                self._subprograms.pop(next(iter(self._subprograms)))
        return got

    def frames_at(self, addr: int) -> list[SourceFrame]:
        """Source frames for ``addr``, innermost (deepest inlined) first; ``[]`` if unknown."""
        off = self._cu_offset(addr)
        if off is None:
            return []
        try:
            cu = self.dwarf.get_CU_at(off)
        except Exception:
            return []
        self._line_table(cu)
        sub = None
        low = None
        for lo, hi, die in self._scopes(cu):
            if lo <= addr < hi:
                sub, low = die, lo
                break
        file, line = self._line_at(cu, addr)
        lang = cu.get_top_DIE().attributes.get("DW_AT_language")
        if lang is not None and lang.value == DW_LANG_MIPS_ASSEMBLER:
            sub = None          # assembly: the ELF symbol names the function (as gdb does)
        if sub is None:
            return [SourceFrame(None, file, line)] if line is not None else []
        chain = [(sub, low)]
        node = sub
        for _ in range(64):
            nxt = None
            try:
                for child in node.iter_children():
                    if child.tag in ("DW_TAG_inlined_subroutine", "DW_TAG_lexical_block"):
                        for lo, hi in _ranges(child, self.dwarf):
                            if lo <= addr < hi:
                                nxt = (child, lo)
                                break
                        if nxt is None and child.tag == "DW_TAG_lexical_block" and not _ranges(child, self.dwarf):
                            # a block without ranges: look inside it
                            for g in child.iter_children():
                                if g.tag == "DW_TAG_inlined_subroutine":
                                    for lo, hi in _ranges(g, self.dwarf):
                                        if lo <= addr < hi:
                                            nxt = (g, lo)
                                            break
                                if nxt:
                                    break
                    if nxt:
                        break
            except Exception:
                break
            if nxt is None:
                break
            node = nxt[0]
            if node.tag == "DW_TAG_inlined_subroutine":
                chain.append(nxt)
        out: list[SourceFrame] = []
        cur_file, cur_line = file, line
        for die, lo in reversed(chain):
            inlined = die.tag == "DW_TAG_inlined_subroutine"
            out.append(SourceFrame(self._name(die), cur_file, cur_line, inlined, lo))
            if inlined:
                a = die.attributes
                cf = a.get("DW_AT_call_file")
                cl = a.get("DW_AT_call_line")
                cur_file = self._file_name(cu, cf.value) if cf is not None else None
                cur_line = cl.value if cl is not None else None
        return out


# -- call sites (for frames of tail calls, which leave no return address) -------------------
CALL_SITE_TAGS = ("DW_TAG_call_site", "DW_TAG_GNU_call_site")
MAX_SITES = 5_000


@dataclass(frozen=True, slots=True)
class CallSite:
    """One call in a function body: its return pc (or pc of a tail call) and its target."""

    return_pc: int | None
    pc: int | None
    target: str | None
    target_low_pc: int | None
    tail: bool


def _call_sites_of(index: "DwarfIndex", die) -> list[CallSite]:
    out: list[CallSite] = []
    stack = list(die.iter_children())
    seen = 0
    while stack and seen < MAX_SITES:
        d = stack.pop()
        seen += 1
        if d.tag in CALL_SITE_TAGS:
            a = d.attributes
            rpc = a.get("DW_AT_call_return_pc") or (a.get("DW_AT_low_pc") if d.tag == "DW_TAG_GNU_call_site" else None)
            cpc = a.get("DW_AT_call_pc")
            tail = "DW_AT_call_tail_call" in a or "DW_AT_GNU_tail_call" in a
            origin_key = "DW_AT_call_origin" if "DW_AT_call_origin" in a else "DW_AT_abstract_origin"
            name = low = None
            if origin_key in a:
                try:
                    od = d.get_DIE_from_attribute(origin_key)
                    name = index._name(od)
                    r = _ranges(od, index.dwarf)
                    low = r[0][0] if r else None
                except Exception:
                    name = None
            out.append(CallSite(rpc.value if rpc is not None else None,
                                cpc.value if cpc is not None else None, name, low, tail))
        elif d.tag in ("DW_TAG_lexical_block", "DW_TAG_inlined_subroutine"):
            stack.extend(d.iter_children())
    return out


def _subprogram_die(index: "DwarfIndex", addr: int):
    off = index._cu_offset(addr)
    if off is None:
        return None
    try:
        cu = index.dwarf.get_CU_at(off)
    except Exception:
        return None
    for lo, hi, die in index._scopes(cu):
        if lo <= addr < hi:
            return die
    return None


def call_sites_at(index: "DwarfIndex", addr: int) -> list[CallSite]:
    """Call sites of the (out-of-line) function containing ``addr``, cached per function."""
    cache = index.__dict__.setdefault("_call_sites", {}) if hasattr(index, "__dict__") else {}
    die = _subprogram_die(index, addr)
    if die is None:
        return []
    key = die.offset
    got = cache.get(key)
    if got is None:
        try:
            got = _call_sites_of(index, die)
        except Exception:
            got = []
        if len(cache) < 10_000:
            cache[key] = got
    return got

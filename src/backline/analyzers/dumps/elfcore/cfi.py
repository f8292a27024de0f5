"""DWARF call-frame information (``.eh_frame`` / ``.debug_frame``) for unwinding.

:class:`CfiTable` indexes every FDE of a section once (start, end, offset) and,
for a given pc, runs the CIE's initial instructions and the FDE's instructions
up to that pc to get the rule set: how to compute the CFA and where each
caller register was saved.  The format is the one of the DWARF 4 standard,
section 6.4, with the ``.eh_frame`` changes of the LSB (pointer encodings,
augmentation strings).

>>> t = CfiTable(b"", 0, eh=True)
>>> t.rules_for(0x1000) is None
True
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field

MAX_INSTRUCTIONS = 10_000
MAX_STATE_STACK = 64


@dataclass(frozen=True, slots=True)
class Rules:
    """Unwind rules at one pc.  ``cfa`` is ``(register, offset)`` or ``None`` when
    it is an expression we do not evaluate.  ``saved`` maps a DWARF register to
    ``("offset", n)`` (saved at CFA+n), ``("val_offset", n)`` (value is CFA+n),
    ``("register", r)``, ``("same", 0)`` or ``("undefined", 0)``."""

    cfa: tuple[int, int] | None
    saved: dict[int, tuple[str, int]]
    ra_register: int
    signal_frame: bool = False


@dataclass(slots=True)
class _Cie:
    code_align: int
    data_align: int
    ra_register: int
    initial: bytes
    fde_encoding: int = 0
    signal_frame: bool = False
    has_aug_data: bool = False


def _uleb(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("uleb128 runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos
        if shift > 70:
            raise ValueError("uleb128 too long")


def _sleb(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("sleb128 runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos
        if shift > 70:
            raise ValueError("sleb128 too long")


@dataclass(slots=True)
class CfiTable:
    """FDE index and rule evaluation for one ``.eh_frame`` or ``.debug_frame`` section.

    ``data`` is the section's bytes, ``address`` its link-time address (for
    pc-relative pointers), ``eh`` whether it is ``.eh_frame``.  Addresses in
    and out are link-time addresses of the object.
    """

    data: bytes
    address: int
    eh: bool
    ptr_size: int = 8
    endian: str = "<"
    _starts: list[int] = field(default_factory=list)
    _fdes: list[tuple[int, int, int]] = field(default_factory=list)   # (start, end, offset)
    _cies: dict[int, _Cie] = field(default_factory=dict)
    _cache: dict[int, Rules | None] = field(default_factory=dict)
    _indexed: bool = False
    errors: int = 0

    @property
    def _bo(self) -> str:
        return "little" if self.endian == "<" else "big"

    # -- parsing ------------------------------------------------------------
    def _read_encoded(self, pos: int, enc: int) -> tuple[int, int]:
        if enc == 0xFF:
            return 0, pos
        start = pos
        fmt = enc & 0x0F
        buf = self.data
        if fmt == 0x00:
            val = int.from_bytes(buf[pos:pos + self.ptr_size], self._bo)
            pos += self.ptr_size
        elif fmt == 0x01:
            val, pos = _uleb(buf, pos)
        elif fmt == 0x02:
            val, = struct.unpack_from(self.endian + "H", buf, pos); pos += 2
        elif fmt == 0x03:
            val, = struct.unpack_from(self.endian + "I", buf, pos); pos += 4
        elif fmt == 0x04:
            val, = struct.unpack_from(self.endian + "Q", buf, pos); pos += 8
        elif fmt == 0x09:
            val, pos = _sleb(buf, pos)
        elif fmt == 0x0A:
            val, = struct.unpack_from(self.endian + "h", buf, pos); pos += 2
        elif fmt == 0x0B:
            val, = struct.unpack_from(self.endian + "i", buf, pos); pos += 4
        elif fmt == 0x0C:
            val, = struct.unpack_from(self.endian + "q", buf, pos); pos += 8
        else:
            raise ValueError(f"pointer encoding {enc:#x}")
        app = enc & 0x70
        if app == 0x10:
            val += self.address + start
        mask = (1 << (8 * self.ptr_size)) - 1
        return val & mask, pos

    def _entry_header(self, pos: int) -> tuple[int, int, int, int] | None:
        """(length, id_value, body_start, next_entry) or None at a terminator."""
        buf = self.data
        if pos + 4 > len(buf):
            return None
        length, = struct.unpack_from(self.endian + "I", buf, pos)
        if length == 0:
            return None
        off64 = length == 0xFFFFFFFF
        if off64:
            length, = struct.unpack_from(self.endian + "Q", buf, pos + 4)
            hdr = 12
        else:
            hdr = 4
        body = pos + hdr
        nxt = body + length
        if nxt > len(buf) or length < 4:
            raise ValueError(f"CFI entry at {pos:#x} runs past the section")
        idsz = 8 if off64 else 4
        cid = int.from_bytes(buf[body:body + idsz], self._bo)
        return length, cid, body + idsz, nxt

    def _is_cie(self, cid: int, body_id_pos: int) -> bool:
        if self.eh:
            return cid == 0
        return cid in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)

    def _cie_at(self, pos: int) -> _Cie:
        got = self._cies.get(pos)
        if got is not None:
            return got
        hdr = self._entry_header(pos)
        if hdr is None:
            raise ValueError(f"no CIE at {pos:#x}")
        _length, _cid, p, nxt = hdr
        buf = self.data
        version = buf[p]
        p += 1
        end = buf.index(b"\0", p, nxt)
        aug = buf[p:end].decode("ascii", "replace")
        p = end + 1
        if "eh" in aug:
            p += self.ptr_size
        if version >= 4:
            p += 2      # address_size, segment_size
        code_align, p = _uleb(buf, p)
        data_align, p = _sleb(buf, p)
        if version == 1:
            ra = buf[p]; p += 1
        else:
            ra, p = _uleb(buf, p)
        cie = _Cie(code_align, data_align, ra, b"")
        if aug.startswith("z"):
            cie.has_aug_data = True
            auglen, p = _uleb(buf, p)
            q = p
            for ch in aug[1:]:
                if ch == "R":
                    cie.fde_encoding = buf[q]; q += 1
                elif ch == "P":
                    enc = buf[q]; q += 1
                    _, q = self._read_encoded(q, enc & 0x7F)
                elif ch == "L":
                    q += 1
                elif ch == "S":
                    cie.signal_frame = True
            p += auglen
        cie.initial = bytes(buf[p:nxt])
        self._cies[pos] = cie
        return cie

    def _index(self) -> None:
        self._indexed = True
        pos = 0
        fdes: list[tuple[int, int, int]] = []
        buf = self.data
        try:
            while pos < len(buf):
                hdr = self._entry_header(pos)
                if hdr is None:
                    if self.eh:
                        break
                    pos += 4
                    continue
                _length, cid, p, nxt = hdr
                if not self._is_cie(cid, p):
                    cie_pos = (p - 4 - cid) if self.eh else cid
                    try:
                        cie = self._cie_at(cie_pos)
                        enc = cie.fde_encoding if self.eh else 0
                        start, q = self._read_encoded(p, enc)
                        rng, q = self._read_encoded(q, enc & 0x0F)
                        if rng:
                            fdes.append((start, start + rng, pos))
                    except (ValueError, struct.error, IndexError):
                        self.errors += 1
                pos = nxt
        except (ValueError, struct.error):
            self.errors += 1
        fdes.sort()
        self._fdes = fdes
        self._starts = [f[0] for f in fdes]

    # -- evaluation ---------------------------------------------------------
    def rules_for(self, pc: int) -> Rules | None:
        """The unwind rules in effect at link-time address ``pc`` (cached)."""
        if pc in self._cache:
            return self._cache[pc]
        if not self._indexed:
            self._index()
        i = bisect.bisect_right(self._starts, pc) - 1
        rules = None
        if i >= 0:
            start, end, off = self._fdes[i]
            if start <= pc < end:
                try:
                    rules = self._evaluate(off, start, pc)
                except (ValueError, struct.error, IndexError):
                    self.errors += 1
        if len(self._cache) < 100_000:
            self._cache[pc] = rules
        return rules

    def _evaluate(self, fde_pos: int, start: int, pc: int) -> Rules | None:
        hdr = self._entry_header(fde_pos)
        assert hdr is not None
        _length, cid, p, nxt = hdr
        cie = self._cie_at((p - 4 - cid) if self.eh else cid)
        enc = cie.fde_encoding if self.eh else 0
        _, p = self._read_encoded(p, enc)
        _, p = self._read_encoded(p, enc & 0x0F)
        if cie.has_aug_data:
            auglen, p = _uleb(self.data, p)
            p += auglen
        instructions = bytes(self.data[p:nxt])
        state = _State(cfa=None, saved={})
        self._run(cie, cie.initial, state, None, start, pc, None)
        initial = dict(state.saved)
        self._run(cie, instructions, state, initial, start, pc, None)
        return Rules(state.cfa, state.saved, cie.ra_register, cie.signal_frame)

    def _run(self, cie: _Cie, code: bytes, st: "_State", initial: dict | None, loc: int,
             pc: int, _unused) -> None:
        p = 0
        stack: list[tuple] = []
        steps = 0
        ca, da = cie.code_align, cie.data_align
        while p < len(code):
            steps += 1
            if steps > MAX_INSTRUCTIONS:
                raise ValueError("too many CFI instructions")
            op = code[p]; p += 1
            hi, low = op & 0xC0, op & 0x3F
            if hi == 0x40:          # advance_loc
                loc += low * ca
                if loc > pc:
                    return
            elif hi == 0x80:        # offset
                n, p = _uleb(code, p)
                st.saved[low] = ("offset", n * da)
            elif hi == 0xC0:        # restore
                _restore(st, initial, low)
            elif op == 0x00:
                pass
            elif op == 0x01:        # set_loc
                loc, p = self._read_encoded_from(code, p, cie.fde_encoding if self.eh else 0)
                if loc > pc:
                    return
            elif op in (0x02, 0x03, 0x04):
                size = {0x02: 1, 0x03: 2, 0x04: 4}[op]
                loc += int.from_bytes(code[p:p + size], self._bo) * ca
                p += size
                if loc > pc:
                    return
            elif op == 0x05:        # offset_extended
                r, p = _uleb(code, p); n, p = _uleb(code, p)
                st.saved[r] = ("offset", n * da)
            elif op == 0x06:        # restore_extended
                r, p = _uleb(code, p)
                _restore(st, initial, r)
            elif op == 0x07:        # undefined
                r, p = _uleb(code, p)
                st.saved[r] = ("undefined", 0)
            elif op == 0x08:        # same_value
                r, p = _uleb(code, p)
                st.saved[r] = ("same", 0)
            elif op == 0x09:        # register
                r, p = _uleb(code, p); r2, p = _uleb(code, p)
                st.saved[r] = ("register", r2)
            elif op == 0x0A:        # remember_state
                if len(stack) >= MAX_STATE_STACK:
                    raise ValueError("CFI state stack overflow")
                stack.append((st.cfa, dict(st.saved)))
            elif op == 0x0B:        # restore_state
                if stack:
                    cfa, saved = stack.pop()
                    st.cfa = cfa
                    st.saved = saved
            elif op == 0x0C:        # def_cfa
                r, p = _uleb(code, p); n, p = _uleb(code, p)
                st.cfa = (r, n)
            elif op == 0x0D:        # def_cfa_register
                r, p = _uleb(code, p)
                st.cfa = (r, st.cfa[1] if st.cfa else 0)
            elif op == 0x0E:        # def_cfa_offset
                n, p = _uleb(code, p)
                if st.cfa:
                    st.cfa = (st.cfa[0], n)
            elif op == 0x0F:        # def_cfa_expression
                n, p = _uleb(code, p)
                p += n
                st.cfa = None
            elif op in (0x10, 0x16):    # expression / val_expression
                r, p = _uleb(code, p); n, p = _uleb(code, p)
                p += n
                st.saved[r] = ("undefined", 0)
            elif op == 0x11:        # offset_extended_sf
                r, p = _uleb(code, p); n, p = _sleb(code, p)
                st.saved[r] = ("offset", n * da)
            elif op == 0x12:        # def_cfa_sf
                r, p = _uleb(code, p); n, p = _sleb(code, p)
                st.cfa = (r, n * da)
            elif op == 0x13:        # def_cfa_offset_sf
                n, p = _sleb(code, p)
                if st.cfa:
                    st.cfa = (st.cfa[0], n * da)
            elif op == 0x14:        # val_offset
                r, p = _uleb(code, p); n, p = _uleb(code, p)
                st.saved[r] = ("val_offset", n * da)
            elif op == 0x15:        # val_offset_sf
                r, p = _uleb(code, p); n, p = _sleb(code, p)
                st.saved[r] = ("val_offset", n * da)
            elif op == 0x2E:        # GNU_args_size
                _, p = _uleb(code, p)
            elif op == 0x2F:        # GNU_negative_offset_extended
                r, p = _uleb(code, p); n, p = _uleb(code, p)
                st.saved[r] = ("offset", -n * da)
            else:
                raise ValueError(f"unknown CFI opcode {op:#x}")

    def _read_encoded_from(self, code: bytes, p: int, enc: int) -> tuple[int, int]:
        size = self.ptr_size if enc & 0x0F == 0 else {2: 2, 3: 4, 4: 8, 0xA: 2, 0xB: 4, 0xC: 8}.get(enc & 0x0F, 4)
        return int.from_bytes(code[p:p + size], self._bo), p + size


@dataclass(slots=True)
class _State:
    cfa: tuple[int, int] | None
    saved: dict[int, tuple[str, int]]


def _restore(st: _State, initial: dict | None, reg: int) -> None:
    if initial is not None and reg in initial:
        st.saved[reg] = initial[reg]
    else:
        st.saved.pop(reg, None)

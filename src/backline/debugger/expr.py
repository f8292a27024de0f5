"""Addresses and numbers as WinDbg reads and prints them.

WinDbg's default radix is 16: ``0040429e`` and ``0x40429e`` are the same
address, ``0n10`` is decimal ten; 64-bit addresses may carry a backtick
(``00007ff6`12340000``).  Terms are registers (``@rsp``, ``@$ip``, ``@$csp``),
symbols (``module!function``, a module name alone), ``poi(expr)`` (the pointer
stored at ``expr``) and numbers, joined with ``+`` and ``-``.

>>> ev = Evaluator(registers={"esp": 0x12fe84}, ptr_size=4)
>>> hex(ev.eval("@esp+0n8")), hex(ev.eval("0040429e")), hex(ev.eval("0x10 - 2"))
('0x12fe8c', '0x40429e', '0xe')
>>> fmt_addr(0x7ff612340000, 8), fmt_addr(0x40429e, 4)
('00007ff6`12340000', '0040429e')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from backline.errors import UsageError

_NUM = re.compile(r"^(0n[0-9]+|0x[0-9a-f`]+|[0-9a-f`]+h?|0t[0-7]+|0y[01]+)$", re.IGNORECASE)


def fmt_addr(value: int, ptr_size: int) -> str:
    """An address as WinDbg prints it: 8 hex digits, or 16 with a backtick in the middle."""
    if ptr_size >= 8:
        s = f"{value & 0xFFFFFFFFFFFFFFFF:016x}"
        return f"{s[:8]}`{s[8:]}"
    return f"{value & 0xFFFFFFFF:08x}"


def parse_number(text: str) -> int:
    """A number in WinDbg's syntax (default radix 16).

    >>> parse_number("0n10"), parse_number("10"), parse_number("00007ff6`00000000") == 0x7ff600000000
    (10, 16, True)
    """
    t = text.strip().lower().replace("`", "")
    if not t or not _NUM.match(t):
        raise UsageError(f"'{text}' is not a number")
    if t.startswith("0n"):
        return int(t[2:], 10)
    if t.startswith("0t"):
        return int(t[2:], 8)
    if t.startswith("0y"):
        return int(t[2:], 2)
    if t.startswith("0x"):
        return int(t[2:], 16)
    return int(t.rstrip("h"), 16)


@dataclass(slots=True)
class Evaluator:
    """Evaluates address expressions against one frame's registers and the target's symbols."""

    registers: dict[str, int] = field(default_factory=dict)
    ptr_size: int = 8
    symbol: Callable[[str], int | None] = lambda name: None
    read_pointer: Callable[[int], int | None] = lambda addr: None
    ip_reg: str = "rip"
    sp_reg: str = "rsp"

    def eval(self, text: str) -> int:
        text = text.strip()
        if not text:
            raise UsageError("an address is needed")
        total = 0
        for op, term in _split_terms(text):
            total += (-1 if op == "-" else 1) * self._term(term.strip())
        mask = (1 << (8 * self.ptr_size)) - 1
        return total & mask

    def _term(self, term: str) -> int:
        low = term.lower()
        if low.startswith("poi(") and low.endswith(")"):
            addr = self.eval(term[4:-1])
            v = self.read_pointer(addr)
            if v is None:
                raise UsageError(f"memory at {fmt_addr(addr, self.ptr_size)} is not in the dump")
            return v
        if low.startswith("(") and low.endswith(")"):
            return self.eval(term[1:-1])
        if low.startswith("@"):
            return self._register(low[1:])
        if low.startswith("$"):
            return self._register(low)
        if _NUM.match(low):
            # a hex-looking word may also be a symbol or register (e.g. "cafe", "eax"): registers
            # need @ in WinDbg, so a number wins, as in WinDbg
            return parse_number(low)
        if low in self.registers:
            return self.registers[low]
        v = self.symbol(term)
        if v is None:
            raise UsageError(f"couldn't resolve '{term}'")
        return v

    def _register(self, name: str) -> int:
        alias = {"$ip": self.ip_reg, "$csp": self.sp_reg, "pc": self.ip_reg if "pc" not in self.registers else "pc"}
        key = alias.get(name, name)
        if key in self.registers:
            return self.registers[key]
        raise UsageError(f"register '{name}' is not known in this frame")


def _split_terms(text: str) -> list[tuple[str, str]]:
    """``a+b-c`` -> [('+','a'), ('+','b'), ('-','c')], keeping parentheses whole and
    C++ names with ``-`` inside backquotes intact."""
    out: list[tuple[str, str]] = []
    depth, cur, op = 0, [], "+"
    quote = False
    for ch in text:
        if ch == "'":
            quote = not quote
        if ch == "(" and not quote:
            depth += 1
        elif ch == ")" and not quote:
            depth -= 1
        if ch in "+-" and depth == 0 and not quote and "".join(cur).strip():
            out.append((op, "".join(cur)))
            cur, op = [], ch
            continue
        if ch in "+-" and depth == 0 and not quote and not "".join(cur).strip():
            op = "-" if (ch == "-") != (op == "-") else "+"
            continue
        cur.append(ch)
    if "".join(cur).strip():
        out.append((op, "".join(cur)))
    if not out:
        raise UsageError(f"'{text}' is not an address")
    return out


def parse_range(args: list[str], ev: Evaluator, default_count: int, unit: int,
                max_bytes: int = 1 << 20) -> tuple[int, int]:
    """``ADDR [L count | L?count | ADDR2]`` -> (address, count of units)."""
    if not args:
        raise UsageError("an address is needed")
    words = list(args)
    count = default_count
    # "L10" / "L 10" / "L?10"
    for i, w in enumerate(words):
        if i > 0 and w.lower().startswith("l") and (len(w) > 1 or i + 1 < len(words)):
            rest = w[1:].lstrip("?") or (words[i + 1] if i + 1 < len(words) else "")
            count = parse_number(rest)
            words = words[:i]
            break
    else:
        if len(words) >= 2:
            start, end = ev.eval(words[0]), ev.eval(words[1])
            if end < start:
                raise UsageError("the end of the range is below its start")
            return start, max(1, (end - start + unit) // unit)
    addr = ev.eval(" ".join(words))
    if count < 0 or count * unit > max_bytes:
        raise UsageError(f"range too large (at most {max_bytes // unit:#x} units)")
    return addr, count

"""Memory, disassembly and symbols: ``db/dw/dd/dq/dp/dps/da/du``, ``s``, ``!address``,
``u/ub/uf``, ``x``, ``ln``.

Memory the dump does not hold is printed as ``??`` (per byte), as WinDbg does; a read
never fails a session.
"""

from __future__ import annotations

import re
from typing import Any

from backline.analyzers.dumps.analysis import disassemble_window
from backline.debugger.expr import fmt_addr, parse_number, parse_range
from backline.debugger.session import IP_REG, Result, Session, module_display
from backline.errors import UsageError

MAX_DUMP = 64 * 1024                # bytes one d* command shows
MAX_SEARCH = 256 * 1024 * 1024      # bytes one s command searches
MAX_DISASM = 2000                   # instructions of one u/uf


def symbol_text(s: Session, address: int) -> str:
    """``module!function+0x1c`` or ``module+0x1f26`` or '' outside every module."""
    hit = s.target.lookup(address)
    if hit is None:
        return ""
    mod, fn, off = hit
    if fn:
        return f"{module_display(mod)}!{fn}" + (f"+{off:#x}" if off else "")
    return f"{module_display(mod)}+{off:#x}"


# ---------------------------------------------------------------- d*
_UNIT = {"db": 1, "dw": 2, "dd": 4, "dq": 8}
_DEFAULT = {"db": 0x80, "dw": 0x40, "dd": 0x20, "dq": 0x10, "dp": 0x10, "dps": 0x10, "dds": 0x10,
            "dqs": 0x10, "da": 0x100, "du": 0x100}


def _dump(kind: str):
    def cmd(s: Session, args: list[str]) -> Result:
        t = s.target
        unit = t.ptr_size if kind in ("dp", "dps") else (4 if kind == "dds" else 8 if kind == "dqs"
                                                       else 2 if kind == "du" else 1 if kind == "da"
                                                       else _UNIT[kind])
        if not args:
            last = s.memo.get("next_dump")
            if last is None:
                raise UsageError(f"{kind} needs an address, e.g. {kind} @$csp")
            args = [f"0x{last:x}"]
        addr, count = parse_range(args, s.evaluator(), _DEFAULT[kind], unit, MAX_DUMP)
        raw = t.read_bytes(addr, count * unit)
        s.memo["next_dump"] = addr + count * unit
        p = t.ptr_size
        if kind in ("da", "du"):
            return _string(s, kind, addr, raw)
        if kind in ("dps", "dds", "dqs"):
            lines, rows = [], []
            for i in range(count):
                chunk = raw[i * unit:(i + 1) * unit]
                a = addr + i * unit
                if any(b is None for b in chunk):
                    rows.append({"address": a, "value": None, "symbol": None})
                    lines.append(f"{fmt_addr(a, p)}  {'?' * (2 * unit)}")
                    continue
                v = int.from_bytes(bytes(chunk), "little")         # type: ignore[arg-type]
                sym = symbol_text(s, v)
                rows.append({"address": a, "value": v, "symbol": sym or None})
                lines.append(f"{fmt_addr(a, p)}  {fmt_addr(v, unit)} {sym}".rstrip())
            return Result(kind, data={"address": addr, "unit": unit, "values": rows}, text="\n".join(lines))
        per_line = 16 // unit if unit <= 8 else 1
        lines = []
        for off in range(0, count * unit, 16):
            a = addr + off
            chunk = raw[off:off + 16]
            words = []
            for k in range(0, len(chunk), unit):
                w = chunk[k:k + unit]
                if any(b is None for b in w):
                    words.append("?" * (2 * unit) + ("?" if unit == 8 else ""))
                elif unit == 8:
                    words.append(fmt_addr(int.from_bytes(bytes(w), "little"), 8))     # type: ignore[arg-type]
                else:
                    words.append(f"{int.from_bytes(bytes(w), 'little'):0{2 * unit}x}")  # type: ignore[arg-type]
            if unit == 1:
                hexes = " ".join(words[:8]) + ("-" + " ".join(words[8:]) if len(words) > 8 else "")
                text = "".join(chr(b) if (b is not None and 32 <= b < 127) else "." if b is not None else "?"
                               for b in chunk)
                lines.append(f"{fmt_addr(a, p)}  {hexes:<47}  {text}")
            else:
                lines.append(f"{fmt_addr(a, p)}  {' '.join(words[:per_line])}")
        data = {"address": addr, "unit": unit, "count": count,
                "bytes": [b for b in raw], "missing": sum(1 for b in raw if b is None)}
        return Result(kind, data=data, text="\n".join(lines))
    cmd.__doc__ = {"db": "``db ADDR [L n]`` bytes and ASCII", "dw": "``dw ADDR [L n]`` 16-bit words",
                   "dd": "``dd ADDR [L n]`` 32-bit words", "dq": "``dq ADDR [L n]`` 64-bit words",
                   "dp": "``dp ADDR [L n]`` pointer-sized words",
                   "dps": "``dps ADDR [L n]`` pointers with the symbol each points into",
                   "dds": "``dds ADDR [L n]`` 32-bit values with symbols",
                   "dqs": "``dqs ADDR [L n]`` 64-bit values with symbols",
                   "da": "``da ADDR`` an ASCII string", "du": "``du ADDR`` a UTF-16 string"}[kind]
    return cmd


def _string(s: Session, kind: str, addr: int, raw: list[int | None]) -> Result:
    step = 2 if kind == "du" else 1
    chars: list[str] = []
    complete = True
    for i in range(0, len(raw) - step + 1, step):
        c = raw[i:i + step]
        if any(b is None for b in c):
            complete = False
            break
        v = c[0] if step == 1 else c[0] | (c[1] << 8)      # type: ignore[operator]
        if v == 0:
            break
        chars.append(chr(v) if (step == 2 or 32 <= v < 127 or v in (9, 10, 13)) else ".")
    text = "".join(chars)
    shown = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    line = f"{fmt_addr(addr, s.target.ptr_size)}  \"{shown}\"" if (chars or complete) else \
        f"{fmt_addr(addr, s.target.ptr_size)}  ????"
    return Result(kind, data={"address": addr, "string": text, "readable": bool(chars) or complete}, text=line)


# ---------------------------------------------------------------- s
def cmd_search(s: Session, args: list[str]) -> Result:
    """``s -a|-u|-b ADDR L len "text"|bytes`` search memory for text (ASCII, UTF-16) or bytes."""
    if not args or args[0] not in ("-a", "-u", "-b", "-d", "-q"):
        raise UsageError('use s -a ADDR L len "text" (or -u for UTF-16, -b for bytes)')
    mode, rest = args[0], args[1:]
    if len(rest) < 2:
        raise UsageError("s needs an address range and what to find")
    pattern_words = []
    # the pattern is the last word for -a/-u (quoted), the words after the range for -b/-d/-q
    if mode in ("-a", "-u"):
        pattern_words, range_words = [rest[-1]], rest[:-1]
        needle = rest[-1].encode("latin-1", "replace") if mode == "-a" else rest[-1].encode("utf-16-le")
    else:
        # the range ends after "L n" (or two addresses); the rest are values
        lpos = next((i for i, w in enumerate(rest) if i > 0 and w.lower().startswith("l")), None)
        cut = (lpos + (1 if len(rest[lpos]) > 1 else 2)) if lpos is not None else 2
        range_words, pattern_words = rest[:cut], rest[cut:]
        size = {"-b": 1, "-d": 4, "-q": 8}[mode]
        needle = b"".join(parse_number(w).to_bytes(size, "little") for w in pattern_words)
    if not needle:
        raise UsageError("nothing to search for")
    addr, length = parse_range(range_words, s.evaluator(), 0, 1, MAX_SEARCH)
    hits: list[int] = []
    for base, data in s.target.chunks(addr, length):
        start = 0
        while len(hits) < 1000:
            i = data.find(needle, start)
            if i < 0:
                break
            hits.append(base + i)
            start = i + 1
    p = s.target.ptr_size
    lines = []
    for h in hits:
        raw = s.target.read_bytes(h, 16)
        hexes = " ".join(f"{b:02x}" if b is not None else "??" for b in raw)
        asc = "".join(chr(b) if (b is not None and 32 <= b < 127) else "." for b in raw)
        lines.append(f"{fmt_addr(h, p)}  {hexes}  {asc}")
    return Result("s", data={"pattern": needle.hex(), "hits": hits, "truncated": len(hits) >= 1000},
                  text="\n".join(lines) if lines else "(no match)")


# ---------------------------------------------------------------- !address
def cmd_address(s: Session, args: list[str]) -> Result:
    """``!address [ADDR]`` the memory region holding ADDR (protection, state, type, module), or a summary."""
    t = s.target
    p = t.ptr_size
    if not args:
        regions = t.regions()
        by: dict[str, list[int]] = {}
        for r in regions:
            key = (r.usage or "<unknown>").split(" [", 1)[0].split(":", 1)[0]
            by.setdefault(key, [0, 0])
            by[key][0] += 1
            by[key][1] += r.size
        lines = [f"{'Usage':<16} {'RgnCount':>8} {'TotSize':>18}"]
        lines += [f"{k:<16} {v[0]:>8} {v[1]:>#18x}" for k, v in sorted(by.items(), key=lambda kv: -kv[1][1])]
        return Result("!address", data={"regions": [_region_json(r) for r in regions]}, text="\n".join(lines))
    a = s.evaluator().eval(" ".join(args))
    r = t.region_at(a)
    if r is None:
        m = t.module_at(a)
        text = (f"Address {fmt_addr(a, p)} is not in any region the dump describes"
                + (f" (inside module {m.name})" if m else ""))
        return Result("!address", data={"address": a, "region": None, "module": m.name if m else None}, text=text)
    lines = [f"Usage:                  {r.usage or '<unknown>'}",
             f"Base Address:           {fmt_addr(r.base, p)}",
             f"End Address:            {fmt_addr(r.end, p)}",
             f"Region Size:            {fmt_addr(r.size, p)}",
             f"State:                  {r.state or '?'}",
             f"Protect:                {r.protection or '?'}",
             f"Type:                   {r.type or '?'}"]
    if r.allocation_base is not None:
        lines.append(f"Allocation Base:        {fmt_addr(r.allocation_base, p)}")
    if r.module:
        lines.append(f"Module Name:            {module_display(r.module)}")
    lines.append(f"In the dump:            {'yes' if r.in_dump else 'no (only described)'}")
    return Result("!address", data={"address": a, "region": _region_json(r)}, text="\n".join(lines))


def _region_json(r) -> dict[str, Any]:
    return {"base": r.base, "size": r.size, "end": r.end, "protection": r.protection, "state": r.state,
            "type": r.type, "allocation_base": r.allocation_base, "in_dump": r.in_dump, "module": r.module,
            "usage": r.usage}


# ---------------------------------------------------------------- u / ub / uf
def _insns(s: Session, addr: int, count: int) -> list[dict[str, Any]]:
    raw = s.target.read_bytes(addr, min(count * 16, MAX_DISASM * 16))
    end = next((i for i, b in enumerate(raw) if b is None), len(raw))
    return disassemble_window(bytes(raw[:end]), addr, s.target.cpu, count)   # type: ignore[arg-type]


_IMM = re.compile(r"^(?:0x)?([0-9a-f]+)$", re.IGNORECASE)


def _line(s: Session, ins: dict[str, Any]) -> dict[str, Any]:
    p = s.target.ptr_size
    op = ins["op_str"]
    target = None
    if ins["mnemonic"].startswith(("call", "j", "b", "bl", "cbz", "cbnz", "tbz", "tbnz")):
        m = _IMM.match(op.lstrip("#"))
        if m:
            target = int(m.group(1), 16)
            sym = symbol_text(s, target)
            if sym:
                op = f"{sym} ({fmt_addr(target, p)})"
    line = f"{fmt_addr(ins['address'], p)} {ins['bytes']:<16} {ins['mnemonic']:<7} {op}".rstrip()
    return {"address": ins["address"], "bytes": ins["bytes"], "text": ins["text"], "target": target,
            "target_symbol": symbol_text(s, target) if target is not None else None, "line": line}


def _where(s: Session, addr: int) -> str:
    sym = symbol_text(s, addr) or fmt_addr(addr, s.target.ptr_size)
    src = s.target.source_line(addr)
    return f"{sym} [{src[0]} @ {src[1]}]" if src else sym


def disassemble_at(s: Session, addr: int, count: int) -> list[dict[str, Any]]:
    """Instructions from ``addr`` as lines (used by ``r`` to show the current instruction)."""
    out = []
    for ins in _insns(s, addr, count):
        d = _line(s, ins)
        d["where"] = _where(s, ins["address"])
        out.append(d)
    return out


def _result(s: Session, name: str, addr: int, insns: list[dict[str, Any]], note: str = "") -> Result:
    rows = [_line(s, i) for i in insns]
    lines = [_where(s, addr) + ":"]
    last_sym = None
    for r in rows:
        sym = symbol_text(s, r["address"]).split("+")[0]
        if last_sym is not None and sym != last_sym and sym:
            lines.append(_where(s, r["address"]) + ":")
        last_sym = sym
        lines.append(r["line"])
    if not rows:
        lines.append(f"{fmt_addr(addr, s.target.ptr_size)} ??              ???     "
                     "(the dump holds no code bytes here" + ("; give the binaries with --binaries)"
                                                            if s.target.kind == "elf_core" else ")"))
    if note:
        lines.append(note)
    return Result(name, data={"address": addr, "instructions": rows}, text="\n".join(lines))


def _count_arg(args: list[str], default: int) -> tuple[list[str], int]:
    for i, w in enumerate(args):
        if i > 0 and w.lower().startswith("l"):
            rest = w[1:].lstrip("?") or (args[i + 1] if i + 1 < len(args) else "")
            return args[:i], min(parse_number(rest), MAX_DISASM)
    return args, default


def cmd_u(s: Session, args: list[str]) -> Result:
    """``u [ADDR] [L n]`` disassemble forward (default: the current instruction)."""
    words, count = _count_arg(args, 8)
    addr = s.evaluator().eval(" ".join(words)) if words else _current_ip(s)
    return _result(s, "u", addr, _insns(s, addr, count))


def _current_ip(s: Session) -> int:
    ip = s.registers().get(IP_REG.get(s.target.cpu, "pc"))
    if ip is None:
        f = s.current_frame()
        if f is None or f.instruction is None:
            raise UsageError("no current instruction; give an address")
        return f.instruction
    return ip


def cmd_ub(s: Session, args: list[str]) -> Result:
    """``ub [ADDR] [L n]`` disassemble the n instructions before ADDR."""
    words, count = _count_arg(args, 8)
    addr = s.evaluator().eval(" ".join(words)) if words else _current_ip(s)
    # decode from the function start when a symbol says where it is; else find a start
    # that decodes exactly onto ADDR (x86 instructions have variable length)
    below, _ = s.target.nearest_symbols(addr)
    starts = []
    if below is not None and 0 < addr - below.address <= 64 * 1024:
        starts.append(below.address)
    starts += [addr - back for back in range(count * 15, 0, -1)]
    for start in starts:
        insns = _insns(s, start, min(MAX_DISASM, (addr - start) + 1))
        pos = [i["address"] for i in insns]
        if addr in pos:
            k = pos.index(addr)
            if k >= 1:
                got = insns[max(0, k - count):k]
                return _result(s, "ub", got[0]["address"], got)
    return _result(s, "ub", addr, [], "(no instructions before this address are in the dump)")


def cmd_uf(s: Session, args: list[str]) -> Result:
    """``uf FUNC`` disassemble a whole function (symbols on call targets)."""
    if not args:
        raise UsageError("uf needs a function: uf module!function or an address")
    t = s.target
    addr = s.evaluator().eval(" ".join(args))
    below, above = t.nearest_symbols(addr)
    if below is None:
        raise UsageError("no symbol covers this address; use u ADDR L n")
    size = below.size or ((above.address - below.address) if above is not None else 0)
    if size <= 0 or size > MAX_DISASM * 15:
        size = min(size, MAX_DISASM * 15) if size > 0 else 512
    insns = []
    for ins in _insns(s, below.address, MAX_DISASM):
        if ins["address"] >= below.address + size:
            break
        insns.append(ins)
    return _result(s, "uf", below.address, insns)


# ---------------------------------------------------------------- x / ln
def cmd_x(s: Session, args: list[str]) -> Result:
    """``x MODULE!PATTERN`` functions matching a wildcard pattern (``*``, ``?``)."""
    if not args:
        raise UsageError("x needs MODULE!PATTERN, e.g. x test_app!*Crash*")
    hits = s.target.symbols_matching(args[0])
    p = s.target.ptr_size
    lines = [f"{fmt_addr(h.address, p)} {module_display(h.module)}!{h.name}" for h in hits]
    return Result("x", data={"symbols": [{"module": h.module, "name": h.name, "address": h.address,
                                           "size": h.size} for h in hits]},
                  text="\n".join(lines) if lines else "(no symbol matches; symbols loaded only where lm says so)")


def cmd_ln(s: Session, args: list[str]) -> Result:
    """``ln ADDR`` the nearest symbols below and above an address."""
    if not args:
        raise UsageError("ln needs an address")
    t = s.target
    p = t.ptr_size
    a = s.evaluator().eval(" ".join(args))
    below, above = t.nearest_symbols(a)
    m = t.module_at(a)
    if below is None and above is None:
        where = f"{module_display(m.name)}+{a - m.base:#x}" if m else "no module"
        return Result("ln", data={"address": a, "module": m.name if m else None, "below": None, "above": None},
                      text=f"({fmt_addr(a, p)})   {where}   (no symbols)")
    parts = []
    if below is not None:
        off = a - below.address
        parts.append(f"({fmt_addr(below.address, p)})   {module_display(below.module)}!{below.name}"
                     + (f"+{off:#x}" if off else ""))
    if above is not None:
        parts.append(f"({fmt_addr(above.address, p)})   {module_display(above.module)}!{above.name}")
    text = "   |  ".join(parts)
    if below is not None and below.address == a:
        text += "\nExact matches:\n    " + f"{module_display(below.module)}!{below.name}"
    return Result("ln", data={"address": a,
                              "below": {"name": below.name, "address": below.address, "module": below.module}
                              if below else None,
                              "above": {"name": above.name, "address": above.address, "module": above.module}
                              if above else None}, text=text)


COMMANDS = {
    **{k: _dump(k) for k in ("db", "dw", "dd", "dq", "dp", "dps", "dds", "dqs", "da", "du")},
    "s": cmd_search, "!address": cmd_address, "u": cmd_u, "ub": cmd_ub, "uf": cmd_uf,
    "x": cmd_x, "ln": cmd_ln,
}

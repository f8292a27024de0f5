"""Evaluation of Breakpad ``STACK CFI`` rule sets and ``STACK WIN`` programs.

Both are postfix programs over the callee's registers and the stack memory.
They produce the caller's registers; failure at any step gives ``None`` so the
walker falls back to the next method.

>>> mem = {0x1008: 0x401234}
>>> regs = cfi_unwind(".cfa: $rsp 16 + .ra: .cfa -8 + ^", {"rsp": 0x1000}, mem.get, 8)
>>> hex(regs[".cfa"]), hex(regs[".ra"])
('0x1010', '0x401234')
"""

from __future__ import annotations

from typing import Callable

from backline.analyzers.dumps.symbols import WinFrameInfo

ReadPtr = Callable[[int], "int | None"]


def _mask(bits: int) -> int:
    return (1 << bits) - 1


def _eval(expr: list[str], regs: dict[str, int], read: ReadPtr, cfa: int | None,
          mask: int) -> int | None:
    stack: list[int] = []
    for tok in expr:
        if tok in ("+", "-", "*", "/", "%", "@"):
            if len(stack) < 2:
                return None
            b, a = stack.pop(), stack.pop()
            if tok == "+":
                stack.append((a + b) & mask)
            elif tok == "-":
                stack.append((a - b) & mask)
            elif tok == "*":
                stack.append((a * b) & mask)
            elif tok == "/":
                if b == 0:
                    return None
                stack.append((a // b) & mask)
            elif tok == "%":
                if b == 0:
                    return None
                stack.append((a % b) & mask)
            else:
                if b == 0 or b & (b - 1):
                    return None
                stack.append(a & ~(b - 1) & mask)
        elif tok == "^":
            if not stack:
                return None
            v = read(stack.pop())
            if v is None:
                return None
            stack.append(v)
        elif tok == ".cfa":
            if cfa is None:
                return None
            stack.append(cfa)
        elif tok == ".undef":
            return None
        else:
            name = tok[1:] if tok.startswith("$") else tok
            if name in regs:
                stack.append(regs[name])
                continue
            try:
                stack.append(int(tok, 10) & mask)
            except ValueError:
                return None
    return stack[0] if len(stack) == 1 else None


def parse_rules(rules: str) -> dict[str, list[str]] | None:
    """``".cfa: $rsp 8 + .ra: .cfa -8 + ^"`` -> ``{".cfa": [...], ".ra": [...]}`` (later rules win)."""
    out: dict[str, list[str]] = {}
    cur: str | None = None
    expr: list[str] = []
    for tok in rules.split():
        if tok.endswith(":"):
            if cur is not None:
                if not expr:
                    return None
                out[cur] = expr
            cur, expr = tok[:-1].lstrip("$"), []
        else:
            if cur is None:
                return None
            expr.append(tok)
    if cur is not None:
        if not expr:
            return None
        out[cur] = expr
    return out


def cfi_unwind(rules: str, regs: dict[str, int], read: ReadPtr, ptr_size: int) -> dict[str, int] | None:
    """Caller registers from CFI ``rules``: keys are register names plus ``.cfa`` and ``.ra``.
    Registers whose rule fails to evaluate are absent.  ``None`` if .cfa or .ra fails."""
    parsed = parse_rules(rules)
    if parsed is None or ".cfa" not in parsed or ".ra" not in parsed:
        return None
    mask = _mask(ptr_size * 8)
    cfa = _eval(parsed[".cfa"], regs, read, None, mask)
    if cfa is None:
        return None
    ra = _eval(parsed[".ra"], regs, read, cfa, mask)
    if ra is None:
        return None
    out = {".cfa": cfa, ".ra": ra}
    for reg, expr in parsed.items():
        if reg in (".cfa", ".ra"):
            continue
        v = _eval(expr, regs, read, cfa, mask)
        if v is not None:
            out[reg] = v
        else:
            out.pop(reg, None)
            out["-" + reg] = 0          # marker: clear this register in the caller
    return out


def win_program(info: WinFrameInfo, regs: dict[str, int], read: ReadPtr,
                grand_callee_param_size: int) -> dict[str, int] | None:
    """Run a STACK WIN type-4 program string; returns the caller's ``eip, esp, ebp, ebx, esi, edi``
    that the program assigns, or ``None`` on failure."""
    if info.program is None or "esp" not in regs or "ebp" not in regs:
        return None
    mask = 0xFFFFFFFF
    esp, ebp = regs["esp"], regs["ebp"]
    frame_size = info.local_size + info.saved_register_size + grand_callee_param_size
    search = (ebp + 4) & mask if "@" in info.program else (esp + frame_size) & mask
    var: dict[str, int] = {"$esp": esp, "$ebp": ebp, ".cbParams": info.parameter_size,
                           ".cbCalleeParams": grand_callee_param_size,
                           ".cbSavedRegs": info.saved_register_size, ".cbLocals": info.local_size,
                           ".raSearch": search, ".raSearchStart": search}
    if "ebx" in regs:
        var["$ebx"] = regs["ebx"]
    tokens: list[str] = []
    for t in info.program.split():
        if t.startswith("=") and len(t) > 1:
            tokens += ["=", t[1:]]
        else:
            tokens.append(t)
    UNDEF = object()
    stack: list = []

    def as_int(v):
        if isinstance(v, int):
            return v
        if isinstance(v, str):
            return var.get(v)
        return None

    for tok in tokens:
        if tok in ("+", "-", "*", "/", "%", "@"):
            if len(stack) < 2:
                return None
            b, a = as_int(stack.pop()), as_int(stack.pop())
            if a is None or b is None:
                return None
            if tok == "+":
                r = a + b
            elif tok == "-":
                r = a - b
            elif tok == "*":
                r = a * b
            elif tok in ("/", "%"):
                if b == 0:
                    return None
                r = a // b if tok == "/" else a % b
            else:
                if b == 0 or b & (b - 1):
                    return None
                r = a & ~(b - 1)
            stack.append(r & mask)
        elif tok == "=":
            if len(stack) < 2:
                return None
            rhs, lhs = stack.pop(), stack.pop()
            if not isinstance(lhs, str):
                return None
            if rhs is UNDEF:
                var.pop(lhs, None)
            else:
                v = as_int(rhs)
                if v is None:
                    return None
                var[lhs] = v
        elif tok == "^":
            if not stack:
                return None
            p = as_int(stack.pop())
            if p is None:
                return None
            v = read(p)
            if v is None:
                return None
            stack.append(v & mask)
        elif tok == ".undef":
            stack.append(UNDEF)
        elif tok.startswith("$") or tok.startswith("."):
            stack.append(tok)
        else:
            try:
                stack.append(int(tok, 10) & mask)
            except ValueError:
                return None
    return {r: var["$" + r] for r in ("eip", "esp", "ebp", "ebx", "esi", "edi") if "$" + r in var}


def win_fpo(info: WinFrameInfo, regs: dict[str, int], read: ReadPtr, grand_callee_param_size: int,
            callee_is_context: bool) -> dict[str, int] | None:
    """STACK WIN type 0 (FPO data without a program): return address found from the frame size."""
    if "esp" not in regs:
        return None
    frame_size = info.local_size + info.saved_register_size + grand_callee_param_size
    esp = regs["esp"]
    eip_addr = esp + frame_size
    eip = read(eip_addr)
    if eip is None:
        return None
    if callee_is_context and eip == regs.get("eip"):
        eip_addr += 4
        eip = read(eip_addr)
        if eip is None:
            return None
    out = {"eip": eip, "esp": eip_addr + 4}
    if info.allocates_base_pointer:
        ebp = read(esp + grand_callee_param_size + info.saved_register_size - 8)
        if ebp is None:
            return None
        out["ebp"] = ebp
    else:
        if "ebx" in regs:
            out["ebx"] = regs["ebx"]
        if "ebp" not in regs:
            return None
        out["ebp"] = regs["ebp"]
    return out

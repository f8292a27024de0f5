"""Targets, modules, threads, stacks and registers: ``|``, ``lm``, ``~``, ``k``, ``.frame``, ``r``,
``.ecxr``, ``.exr``, ``q``, ``.help``."""

from __future__ import annotations

from backline.debugger.expr import fmt_addr, parse_number
from backline.debugger.session import IP_REG, Result, Session, frame_rows, help_lines, module_display
from backline.errors import UsageError

_X86_ORDER = (("eax", "ebx", "ecx", "edx", "esi", "edi"), ("eip", "esp", "ebp"))
_AMD64_ORDER = (("rax", "rbx", "rcx"), ("rdx", "rsi", "rdi"), ("rip", "rsp", "rbp"),
                ("r8", "r9", "r10"), ("r11", "r12", "r13"), ("r14", "r15"))


def cmd_targets(s: Session, args: list[str]) -> Result:
    """``|`` list the targets; ``|N s`` make target N current."""
    if args:
        joined = "".join(args).lower()
        if not (joined.endswith("s") and joined[:-1].isdigit()):
            raise UsageError("use | to list targets or |N s to switch")
        n = int(joined[:-1])
        if not (0 <= n < len(s.targets)):
            raise UsageError(f"target {n} does not exist (0..{len(s.targets) - 1})")
        s.current, s.frame, s.ecxr = n, 0, False
    rows = [{"index": i, "name": t.name, "path": t.path, "kind": t.kind, "pid": t.report.pid,
             "current": i == s.current} for i, t in enumerate(s.targets)]
    lines = [f"{'.' if r['current'] else ' '} {r['index']:2d}  id: {r['pid'] if r['pid'] is not None else '?'}"
             f"  examine  name: {r['path']}  ({r['kind']})" for r in rows]
    return Result("|", data={"targets": rows, "current": s.current}, text="\n".join(lines))


def _module_rows(s: Session) -> list[dict]:
    t = s.target
    return [{"name": m.name, "base": m.base, "size": m.size, "end": m.base + m.size, "path": m.path,
             "version": m.version, "debug_file": m.debug_file, "debug_id": m.debug_id, "code_id": m.code_id,
             "symbols": "loaded" if m.symbols_loaded else t.symbol_kind(m)} for m in t.modules]


def cmd_lm(s: Session, args: list[str]) -> Result:
    """``lm`` list modules; ``lmv m NAME`` one module in detail (base, end, version, debug id, symbols)."""
    t = s.target
    verbose = "v" in [a.lower() for a in args]
    name = None
    if "m" in [a.lower() for a in args]:
        i = [a.lower() for a in args].index("m")
        if i + 1 >= len(args):
            raise UsageError("lm m needs a module name pattern")
        name = args[i + 1]
    rows = _module_rows(s)
    if name is not None:
        import fnmatch
        pat = name.lower()
        rows = [r for r in rows if fnmatch.fnmatch(r["name"].lower(), pat)
                or fnmatch.fnmatch(module_display(r["name"]).lower(), pat)]
    w = 2 * t.ptr_size + (1 if t.ptr_size >= 8 else 0)
    lines = [f"{'start':<{w}} {'end':<{w}}   module name"]
    for r in rows:
        sym = "(pdb symbols)" if r["symbols"] == "loaded" and t.kind == "minidump" else \
            "(symbols)" if r["symbols"] == "loaded" else r["symbols"] == "export" and "(export symbols)" \
            or "(deferred)   "
        lines.append(f"{fmt_addr(r['base'], t.ptr_size)} {fmt_addr(r['end'], t.ptr_size)}   "
                     f"{module_display(r['name']):<12} {sym}  {r['debug_file'] or ''}".rstrip())
        if verbose:
            lines += [f"    Image path: {r['path'] or r['name']}",
                      f"    Image name: {r['name']}",
                      f"    ImageSize:        {r['size']:08X}",
                      f"    File version:     {r['version'] or '-'}",
                      f"    Debug file:       {r['debug_file'] or '-'}",
                      f"    Debug ID:         {r['debug_id'] or '-'}",
                      f"    Code ID:          {r['code_id'] or '-'}",
                      f"    Symbols:          {r['symbols']}"]
    if t.unloaded_modules and name is None:
        lines.append("")
        lines.append("Unloaded modules:")
        for m in t.unloaded_modules:
            lines.append(f"{fmt_addr(m.base, t.ptr_size)} {fmt_addr(m.base + m.size, t.ptr_size)}   {m.name}")
    return Result("lm", data={"modules": rows,
                              "unloaded": [{"name": m.name, "base": m.base, "size": m.size}
                                           for m in t.unloaded_modules]},
                  text="\n".join(lines))


def _thread_rows(s: Session) -> list[dict]:
    t = s.target
    detail = getattr(t, "thread_detail", None)
    rows = []
    for i, th in enumerate(t.threads):
        d = detail(i) if detail else {}
        state = th.state or ("crashed" if th.crashed else ("waiting" if th.wait is not None else "stopped"))
        rows.append({"index": i, "tid": th.id, "name": th.name, "state": state, "crashed": th.crashed,
                     "current": i == s.thread_index, "frames": len(th.frames),
                     "wait": ({"kind": th.wait.kind, "resource": th.wait.resource, "owner": th.wait.owner}
                              if th.wait else None), **d})
    return rows


def cmd_threads(s: Session, args: list[str]) -> Result:
    """``~`` list threads (. current, # exception thread): id, tid, name, state, priority."""
    t = s.target
    pid = t.report.pid
    lines = []
    for r in _thread_rows(s):
        mark = "." if r["current"] else ("#" if r["crashed"] else " ")
        tid = f"{r['tid']:x}" if isinstance(r["tid"], int) else str(r["tid"])
        extra = ""
        if "suspend" in r:
            extra = (f" Suspend: {r['suspend']} Teb: {fmt_addr(r['teb'], t.ptr_size)}"
                     f" Priority: {r['priority']} Priority class: {r['priority_class']}")
        elif r.get("signal"):
            extra = f" Signal: {r['signal']}"
        name = f' "{r["name"]}"' if r["name"] else ""
        pid_s = f"{pid:x}" if isinstance(pid, int) else "?"
        lines.append(f"{mark}{r['index']:3d}  Id: {pid_s}.{tid}{extra} {r['state'].capitalize()}{name}")
    return Result("~", data={"threads": _thread_rows(s)}, text="\n".join(lines))


def cmd_switch_thread(s: Session, args: list[str]) -> Result:
    """``~Ns`` make thread N current (``~#s``: the exception thread)."""
    which = args[0] if args else "."
    if which == "#":
        if s.target.crashing_thread is None:
            raise UsageError("there is no exception thread")
        s.set_thread(s.target.crashing_thread)
    elif which != ".":
        s.set_thread(int(which, 10))
    th = s.thread()
    f = s.current_frame()
    text = f"current thread {s.thread_index} (tid {th.id if th else '?'})"
    if f is not None:
        text += "\n" + _frame_line(s, frame_rows(s, [f])[0])
    return Result("~s", data={"thread": s.thread_index, "tid": th.id if th else None}, text=text)


def _frame_line(s: Session, r: dict, args: bool = False, verbose: bool = False) -> str:
    p = s.target.ptr_size
    sp = fmt_addr(r["child_sp"], p) if r["child_sp"] is not None else "?" * (2 * p + (1 if p >= 8 else 0))
    ret = fmt_addr(r["return_address"], p) if r["return_address"] is not None else \
        "?" * (2 * p + (1 if p >= 8 else 0))
    line = f"{r['frame']:02x} {sp} {ret}"
    if args:
        vals = r.get("args") or []
        line += " " + " ".join(fmt_addr(v, p) if v is not None else "?" * (2 * p + (1 if p >= 8 else 0))
                               for v in vals)
    line += f" {r['call_site']}"
    if verbose:
        line += f"  ({r['trust']})"
    return line


def _stack(s: Session, index: int, count: int | None, args: bool, verbose: bool) -> tuple[list[dict], str]:
    th = s.thread(index)
    if th is None:
        return [], "no such thread"
    frames = th.frames[:count] if count else th.frames
    rows = frame_rows(s, frames)
    p = s.target.ptr_size
    sp_head = "ChildEBP" if s.target.cpu == "x86" else "Child-SP"
    w = 2 * p + (1 if p >= 8 else 0)
    if args:
        for r, f in zip(rows, frames):
            base = r["child_sp"]
            off = 8 if s.target.cpu == "x86" else p       # x86: [ebp+8]; x64: home space above the return address
            fp = (f.registers or {}).get("ebp") if s.target.cpu == "x86" else base
            r["args"] = [s.target.read_pointer(fp + off + k * p) if fp is not None else None for k in range(3)]
    head = f" # {sp_head:<{w}} {'RetAddr':<{w}} " + (f"{'Args to Child':<{3 * (w + 1)}}" if args else "") + "Call Site"
    lines = [head] + [_frame_line(s, r, args, verbose) for r in rows]
    if not th.frames:
        lines.append("(no frames: the dump has no context or stack for this thread)")
    return rows, "\n".join(lines)


def _count(args: list[str]) -> int | None:
    for a in args:
        if a.isdigit() or a.lower().startswith("0n") or a.lower().startswith("0x"):
            return parse_number(a if not a.isdigit() else "0n" + a)
    return None


def _k(kind: str):
    args_col = kind in ("kb", "kv", "kp")
    verbose = kind == "kv"

    def cmd(s: Session, argv: list[str]) -> Result:
        rows, text = _stack(s, s.thread_index, _count(argv), args_col, verbose)
        th = s.thread()
        return Result(kind, data={"thread": s.thread_index, "tid": th.id if th else None, "frames": rows},
                      text=text)
    cmd.__doc__ = {"k": "``k [N]`` the current thread's stack (N frames)",
                   "kb": "``kb [N]`` the stack with the first three arguments",
                   "kv": "``kv [N]`` the stack with arguments and how each frame was found (trust)",
                   "kp": "``kp [N]`` the stack with arguments",
                   "kn": "``kn [N]`` the stack with frame numbers"}[kind]
    return cmd


def cmd_all_threads(s: Session, args: list[str]) -> Result:
    """``~*k`` (or ``~* kb``...) the stack of every thread."""
    sub = (args[0] if args else "k").split()
    kind = sub[0].lower() if sub else "k"
    if kind not in ("k", "kb", "kv", "kp", "kn"):
        raise UsageError("~* supports the stack commands k, kb, kv, kp, kn")
    out, texts = [], []
    for i, th in enumerate(s.target.threads):
        rows, text = _stack(s, i, _count(sub[1:]), kind in ("kb", "kv", "kp"), kind == "kv")
        out.append({"thread": i, "tid": th.id, "name": th.name, "crashed": th.crashed, "frames": rows})
        mark = "." if i == s.thread_index else ("#" if th.crashed else " ")
        tid = f"{th.id:x}" if isinstance(th.id, int) else str(th.id)
        texts.append(f"\n{mark}{i:3d}  Id: {tid}" + (f' "{th.name}"' if th.name else "") + "\n" + text)
    return Result("~*" + kind, data={"threads": out}, text="\n".join(texts).lstrip("\n"))


def cmd_thread_do(s: Session, args: list[str]) -> Result:
    """``~N k`` run a command in thread N without switching to it."""
    which = args[0]
    keep = s.thread_index, s.frame, s.ecxr
    index = s.target.crashing_thread if which == "#" else (keep[0] if which == "." else int(which, 10))
    if index is None:
        raise UsageError("there is no exception thread")
    rest = args[1] if len(args) > 1 else ""
    if not rest:
        raise UsageError(f"~{which}: give a command (k, r, ...) or s to switch")
    s.set_thread(index)
    try:
        r = s.run(rest)
    finally:
        s.threads[s.current], s.frame, s.ecxr = keep
    return r


def cmd_frame(s: Session, args: list[str]) -> Result:
    """``.frame N`` make frame N of the current thread current (for r, kb, dv)."""
    th = s.thread()
    if th is None or not th.frames:
        raise UsageError("the current thread has no frames")
    if args:
        n = parse_number(args[0] if args[0].lower().startswith(("0x", "0n")) else "0x" + args[0])
        if not (0 <= n < len(th.frames)):
            raise UsageError(f"frame {n:#x} does not exist (0..{len(th.frames) - 1:#x})")
        s.frame, s.ecxr = n, False
    row = frame_rows(s, th.frames[:s.frame + 2])[s.frame]
    return Result(".frame", data={"thread": s.thread_index, "frame": row}, text=_frame_line(s, row))


def _reg_text(s: Session, regs: dict[str, int]) -> str:
    t = s.target
    if not regs:
        return "(no registers known for this frame)"
    if t.cpu == "x86":
        r = {k: regs.get(k) for k in ("eax", "ebx", "ecx", "edx", "esi", "edi", "eip", "esp", "ebp", "eflags")}
        h = lambda k: f"{r[k]:08x}" if r.get(k) is not None else "????????"     # noqa: E731
        return (" ".join(f"{k}={h(k)}" for k in _X86_ORDER[0]) + "\n"
                + " ".join(f"{k}={h(k)}" for k in _X86_ORDER[1]) + f" efl={h('eflags')}")
    if t.cpu == "amd64":
        lines = []
        for group in _AMD64_ORDER:
            lines.append(" ".join(f"{k}={regs[k]:016x}" if k in regs else f"{k}=????????????????" for k in group))
        if "eflags" in regs or "rflags" in regs:
            lines.append(f"efl={regs.get('eflags', regs.get('rflags', 0)):08x}")
        return "\n".join(lines)
    names = sorted(regs, key=_natural)
    return "\n".join(" ".join(f"{k}={regs[k]:0{2 * t.ptr_size}x}" for k in names[i:i + 4])
                     for i in range(0, len(names), 4))


def _natural(name: str):
    import re
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def _registers_result(s: Session, name: str, regs: dict[str, int], args: list[str]) -> Result:
    if args:
        want = [a.lstrip("@").lower() for a in " ".join(args).replace(",", " ").split()]
        missing = [w for w in want if w not in regs]
        if missing:
            raise UsageError(f"register {missing[0]} is not known in this frame")
        sel = {w: regs[w] for w in want}
        return Result(name, data={"registers": sel},
                      text="\n".join(f"{k}={v:0{2 * s.target.ptr_size}x}" for k, v in sel.items()))
    text = _reg_text(s, regs)
    ip = regs.get(IP_REG.get(s.target.cpu, "pc"))
    if ip is not None:
        from backline.debugger.cmds_memory import disassemble_at
        ins = disassemble_at(s, ip, 1)
        if ins:
            text += "\n" + ins[0]["where"] + ":\n" + ins[0]["line"]
    return Result(name, data={"registers": regs, "frame": s.frame, "thread": s.thread_index,
                              "scope": "exception" if s.ecxr else "frame"}, text=text)


def cmd_r(s: Session, args: list[str]) -> Result:
    """``r [REG...]`` registers of the current frame (unwound for callers where CFI allows)."""
    return _registers_result(s, "r", {k.lower(): v for k, v in s.registers().items()}, args)


def cmd_ecxr(s: Session, args: list[str]) -> Result:
    """``.ecxr`` switch to the exception context (the crashing thread at the fault) and show it."""
    t = s.target
    if t.crashing_thread is None:
        raise UsageError("the dump has no exception context")
    s.set_thread(t.crashing_thread)
    s.ecxr = True
    return _registers_result(s, ".ecxr", {k.lower(): v for k, v in t.exception_context().items()}, [])


def cmd_exr(s: Session, args: list[str]) -> Result:
    """``.exr -1`` the exception record (code, flags, address, parameters)."""
    t = s.target
    rec = t.exception_record()
    if rec is None:
        return Result(".exr", data=None, text="the dump holds no exception record")
    p = t.ptr_size
    where = ""
    if rec.address is not None:
        hit = t.lookup(rec.address)
        if hit is not None:
            mod, fn, off = hit
            where = f" ({module_display(mod)}!{fn}+{off:#x})" if fn else f" ({module_display(mod)}+{off:#x})"
    code = f"{rec.code:08x}" if rec.code >= 0 else str(rec.code)
    lines = [f"ExceptionAddress: {fmt_addr(rec.address, p) if rec.address is not None else '?'}{where}",
             f"   ExceptionCode: {code} ({rec.name})",
             f"  ExceptionFlags: {rec.flags:08x}",
             f"NumberParameters: {len(rec.parameters)}"]
    lines += [f"   Parameter[{i}]: {fmt_addr(v, p)}" for i, v in enumerate(rec.parameters)]
    if rec.description:
        lines.append(rec.description)
    return Result(".exr", data={"code": rec.code, "name": rec.name, "flags": rec.flags, "address": rec.address,
                                "parameters": list(rec.parameters), "thread_id": rec.thread_id,
                                "fault_address": rec.fault_address, "description": rec.description},
                  text="\n".join(lines))


def cmd_quit(s: Session, args: list[str]) -> Result:
    """``q`` end the session."""
    return Result("q", data=None, text="quit:", quit=True)


def cmd_help(s: Session, args: list[str]) -> Result:
    """``.help`` the commands this session knows."""
    rows = help_lines() + [(n, (f.__doc__ or "").strip().splitlines()[0] if f.__doc__ else "")
                           for n, f in s.extra.items()]
    width = max(len(n) for n, _ in rows)
    return Result(".help", data={"commands": [{"name": n, "help": h} for n, h in rows]},
                  text="\n".join(f"{n:<{width}}  {h.replace('``', '')}" for n, h in rows))


COMMANDS = {
    "|": cmd_targets, "lm": cmd_lm, "~": cmd_threads, "~s": cmd_switch_thread, "~*": cmd_all_threads,
    "~N": cmd_thread_do, "k": _k("k"), "kb": _k("kb"), "kv": _k("kv"), "kp": _k("kp"), "kn": _k("kn"),
    ".frame": cmd_frame, "r": cmd_r, ".ecxr": cmd_ecxr, ".exr": cmd_exr, "q": cmd_quit, "qq": cmd_quit,
    ".help": cmd_help,
}

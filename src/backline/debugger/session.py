"""A debugger session: targets, the current thread and frame, and the command table.

Commands are spelled as in WinDbg.  Each one is a function ``(session, args) ->
Result``; a :class:`Result` holds the data (JSON-able, for ``--json`` and the web
page) and the text in WinDbg's shape.  An unknown command or a bad argument is a
one-line error result; the session goes on.

>>> from backline.testing import corpus_dir
>>> from backline.debugger.target import open_target
>>> d = corpus_dir() / "dumps/breakpad"
>>> s = Session([open_target(d / "minidump2.dmp", symbols=[d / "symbols"])])
>>> [r.command for r in s.execute("lm; ~; bogus")]
['lm', '~', 'bogus']
>>> s.execute("bogus")[0].error
"unknown command 'bogus' (type .help for the list)"
>>> s.close()
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from backline.analyzers.dumps.model import CrashThread, StackFrame
from backline.debugger.expr import Evaluator
from backline.debugger.target import Target
from backline.errors import BacklineError, UsageError

IP_REG = {"x86": "eip", "amd64": "rip", "arm64": "pc", "arm": "pc", "ppc64": "pc", "ppc": "pc",
          "s390x": "pc", "mips": "pc", "mips64": "pc", "riscv64": "pc"}
SP_REG = {"x86": "esp", "amd64": "rsp", "arm64": "sp", "arm": "sp", "ppc64": "r1", "ppc": "r1",
          "s390x": "r15", "mips": "sp", "mips64": "sp", "riscv64": "sp"}


@dataclass(frozen=True, slots=True)
class Result:
    """What one command produced."""

    command: str
    target: int | None = None
    data: Any = None
    text: str = ""
    error: str | None = None
    quit: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command, "target": self.target, "ok": self.error is None,
                "error": self.error, "data": self.data}


CommandFn = Callable[["Session", list[str]], Result]


@dataclass(slots=True)
class Session:
    """One debugging session over one or more targets (``|`` lists them, ``|N s`` switches)."""

    targets: list[Target]
    current: int = 0
    threads: dict[int, int] = field(default_factory=dict)     # target -> current thread index
    frame: int = 0
    ecxr: bool = False                                          # .ecxr: the exception context is current
    extra: dict[str, CommandFn] = field(default_factory=dict)   # commands a live target adds
    memo: dict[str, Any] = field(default_factory=dict)          # what a command leaves for the next (d*)

    def __post_init__(self) -> None:
        if not self.targets:
            raise UsageError("nothing to debug: give a dump, a core or --pid")
        for i, t in enumerate(self.targets):
            self.threads.setdefault(i, t.crashing_thread if t.crashing_thread is not None else 0)

    # ------------------------------------------------------------ state
    @property
    def target(self) -> Target:
        return self.targets[self.current]

    @property
    def thread_index(self) -> int:
        return self.threads.get(self.current, 0)

    def thread(self, index: int | None = None) -> CrashThread | None:
        th = self.target.threads
        i = self.thread_index if index is None else index
        return th[i] if 0 <= i < len(th) else None

    def set_thread(self, index: int) -> None:
        if not (0 <= index < len(self.target.threads)):
            raise UsageError(f"thread {index} does not exist (0..{len(self.target.threads) - 1})")
        self.threads[self.current] = index
        self.frame = 0
        self.ecxr = False

    def current_frame(self) -> StackFrame | None:
        th = self.thread()
        if th is None or not th.frames:
            return None
        return th.frames[min(self.frame, len(th.frames) - 1)]

    def registers(self) -> dict[str, int]:
        """The registers of the current scope: the exception context after ``.ecxr``, else the
        current frame's (unwound for callers: only what the unwinder recovered)."""
        live = getattr(self.target, "frame_registers", None)
        if live is not None:                # a live process: gdb unwinds on request
            t = self.target.crashing_thread if self.ecxr else self.thread_index
            return live(t if t is not None else self.thread_index, 0 if self.ecxr else self.frame)
        if self.ecxr:
            return self.target.exception_context()
        f = self.current_frame()
        if f is not None and f.registers:
            return dict(f.registers)
        th = self.thread()
        return dict(th.registers) if (th is not None and self.frame == 0) else {}

    def evaluator(self) -> Evaluator:
        t = self.target
        return Evaluator(registers={k.lower(): v for k, v in self.registers().items()}, ptr_size=t.ptr_size,
                         symbol=t.address_of, read_pointer=t.read_pointer,
                         ip_reg=IP_REG.get(t.cpu, "pc"), sp_reg=SP_REG.get(t.cpu, "sp"))

    # ------------------------------------------------------------ running commands
    def execute(self, line: str) -> list[Result]:
        """Run every command of ``line`` (separated by ``;``), in order."""
        out = []
        for cmd in split_commands(line):
            r = self.run(cmd)
            out.append(r)
            if r.quit:
                break
        return out

    def run(self, cmd: str) -> Result:
        cmd = cmd.strip()
        name, args = parse_command(cmd)
        fn = self.extra.get(name) or command_table().get(name)
        if fn is None:
            return Result(name or cmd, self.current, error=f"unknown command '{cmd}' (type .help for the list)")
        try:
            r = fn(self, args)
        except (UsageError, BacklineError) as exc:
            return Result(name, self.current, error=getattr(exc, "message", None) or str(exc))
        except (ValueError, IndexError, KeyError, OverflowError) as exc:
            return Result(name, self.current, error=f"{name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug in one command never ends the session
            first = str(exc).splitlines()[0] if str(exc) else ""
            return Result(name, self.current, error=f"internal error in {name}: {type(exc).__name__}: {first}")
        if r.target is None:
            r = Result(r.command, self.current, r.data, r.text, r.error, r.quit)
        return r

    def close(self) -> None:
        for t in self.targets:
            try:
                t.close()
            except Exception:  # noqa: BLE001 - closing must not hide the session's result
                pass


# ---------------------------------------------------------------- parsing
_THREAD_PREFIX = re.compile(r"^~\s*(\*|\.|#|\d+)\s*(.*)$", re.DOTALL)


def split_commands(line: str) -> list[str]:
    """Split on ``;`` outside double quotes.

    >>> split_commands('lm; s -a 0 L10 "a;b"; k')
    ['lm', 's -a 0 L10 "a;b"', 'k']
    """
    out, cur, quote = [], [], False
    for ch in line:
        if ch == '"':
            quote = not quote
        if ch == ";" and not quote:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return [c for c in out if c]


def tokenize(text: str) -> list[str]:
    """Split on blanks, keeping ``"quoted text"`` as one word (quotes removed)."""
    out, cur, quote, started = [], [], False, False
    for ch in text:
        if ch == '"':
            quote = not quote
            started = True
            continue
        if ch.isspace() and not quote:
            if cur or started:
                out.append("".join(cur))
            cur, started = [], False
            continue
        cur.append(ch)
    if cur or started:
        out.append("".join(cur))
    return out


def parse_command(cmd: str) -> tuple[str, list[str]]:
    """The command name and its arguments, with WinDbg's irregular spellings made regular.

    >>> parse_command("~3s"), parse_command("~*k"), parse_command("lmv m ntdll"), parse_command("|1 s")
    (('~s', ['3']), ('~*', ['k']), ('lm', ['v', 'm', 'ntdll']), ('|', ['1', 's']))
    >>> parse_command("kb 5"), parse_command("!analyze -v"), parse_command("db esp L10")
    (('kb', ['5']), ('!analyze', ['-v']), ('db', ['esp', 'L10']))
    """
    cmd = cmd.strip()
    if not cmd:
        return "", []
    if cmd.startswith("|"):
        return "|", tokenize(cmd[1:])
    if cmd.startswith("~"):
        m = _THREAD_PREFIX.match(cmd)
        if m is None:
            return "~", tokenize(cmd[1:])
        which, rest = m.group(1), m.group(2).strip()
        if rest.lower() == "s":
            return "~s", [which]
        if which == "*":
            return "~*", [rest] if rest else []
        return "~N", [which, rest] if rest else [which]
    if cmd.startswith("??"):
        return "??", [cmd[2:].strip()]
    if cmd[0] in "!.":
        head, _, tail = cmd.partition(" ")
        return head.lower(), tokenize(tail)
    m = re.match(r"^([A-Za-z]+)(.*)$", cmd, re.DOTALL)
    if m is None:
        return cmd.split()[0], tokenize(cmd[len(cmd.split()[0]):])
    word, tail = m.group(1).lower(), m.group(2)
    if word.startswith("lm") and word != "lm":      # lmv, lmvm, lmm: options glued to the command
        return "lm", list(word[2:]) + tokenize(tail)
    return word, tokenize(tail)


def command_table() -> dict[str, CommandFn]:
    """Every command, by name (the one explicit registry)."""
    global _TABLE
    if _TABLE is None:
        from backline.debugger import cmds_info, cmds_memory, cmds_stack
        table: dict[str, CommandFn] = {}
        for mod in (cmds_stack, cmds_memory, cmds_info):
            for name, fn in mod.COMMANDS.items():
                if name in table:
                    raise RuntimeError(f"debugger command {name!r} defined twice")
                table[name] = fn
        _TABLE = table
    return _TABLE


_TABLE: dict[str, CommandFn] | None = None


def help_lines() -> list[tuple[str, str]]:
    """``(command, one line of help)`` for ``.help`` and the shell's completion."""
    out = []
    for name, fn in command_table().items():
        doc = (fn.__doc__ or "").strip().splitlines()
        out.append((name, doc[0] if doc else ""))
    return out


def frame_rows(session: Session, frames: Sequence[StackFrame]) -> list[dict[str, Any]]:
    """Frames as data: WinDbg's columns (Child-SP, RetAddr, call site) plus rust-minidump's fields."""
    t = session.target
    sp_name, ip_name = SP_REG.get(t.cpu, "sp"), IP_REG.get(t.cpu, "pc")
    rows = []
    for i, f in enumerate(frames):
        nxt = frames[i + 1] if i + 1 < len(frames) else None
        ret = None
        if nxt is not None:
            ret = nxt.registers.get(ip_name) if nxt.registers else None
            if ret is None and nxt.instruction is not None:
                ret = nxt.instruction + (4 if t.cpu in ("arm64", "arm") else 1)
        rows.append({
            "frame": f.index, "trust": f.trust, "instruction": f.instruction,
            # WinDbg's x86 stacks show the frame's EBP (ChildEBP); other CPUs the stack pointer
            "child_sp": (f.registers or {}).get("ebp" if t.cpu == "x86" else sp_name), "return_address": ret,
            "module": f.module, "module_offset": f.module_offset, "function": f.function,
            "function_offset": f.function_offset, "file": f.file, "line": f.line,
            "inlined": f.inlined, "call_site": call_site(f),
        })
    return rows


def module_display(name: str | None) -> str:
    """WinDbg's module name: the file name without a Windows image extension."""
    if not name:
        return "?"
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if dot and ext.lower() in ("exe", "dll", "sys", "drv", "ocx", "cpl", "pyd"):
        return stem
    return base


def call_site(f: StackFrame) -> str:
    """``module!function+0x1c [file @ line]`` or ``module+0x1f26`` or the bare address."""
    if f.function:
        s = f"{module_display(f.module)}!{f.function}" if f.module else f.function
        if f.function_offset:
            s += f"+{f.function_offset:#x}"
        if f.file and f.line is not None:
            s += f" [{f.file} @ {f.line}]"
        return s
    if f.module is not None and f.module_offset is not None:
        return f"{module_display(f.module)}+{f.module_offset:#x}"
    return f"{f.instruction:#x}" if f.instruction is not None else "??"

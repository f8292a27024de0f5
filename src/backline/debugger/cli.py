"""Running a debugger session for ``backline dbg`` (the command's body, without Typer).

``backline dbg -c "lm; ~*k; !analyze -v"`` is used in scripts and bug reports, so
its start-up matters: :func:`fast_main` parses the same options with argparse and
runs the session without importing Typer (whose import alone costs more than the
debugger's work on a dump).  ``--help`` and malformed options go to the Typer
command, which prints the full help and the usual errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence


def run(targets: Sequence[Path], *, symbols: Sequence[Path] = (), binaries: Sequence[Path] = (),
        commands: str | None = None, as_json: bool = False, pid: int | None = None,
        log: Path | None = None) -> int:
    """Open the targets, run the session (commands, the shell or standard input); the exit code."""
    from backline.debugger.session import Session
    from backline.errors import BacklineError

    opened = []
    try:
        for p in targets:
            from backline.debugger.target import open_target
            opened.append(open_target(p, symbols=symbols, binaries=binaries))
        if pid is not None:
            from backline.debugger.live import attach
            opened.append(attach(pid, log_path=log))
    except BacklineError as exc:
        for t in opened:
            t.close()
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if not opened:
        sys.stderr.write("error: give a dump or core file, or --pid PID (see backline dbg --help)\n")
        return 2
    session = Session(opened)
    for t in opened:
        extra = getattr(t, "commands", None)
        if extra:
            session.extra.update(extra())
    try:
        if commands is not None:
            run_script(session, commands, as_json)
        elif sys.stdin.isatty() and not as_json:
            from backline.debugger.shell import interactive
            interactive(session)
        else:
            for line in sys.stdin:
                if not run_script(session, line, as_json):
                    break
    finally:
        session.close()
    return 0


def run_script(session, line: str, as_json: bool) -> bool:
    """Run ``line``'s commands, printing each result; False once ``q`` was given."""
    from backline.debugger.session import split_commands

    for cmd in split_commands(line):
        prompt = f"{session.current}:{session.thread_index:03d}> "
        r = session.run(cmd)
        if as_json:
            sys.stdout.write(json.dumps(r.to_json(), default=_json_default) + "\n")
        else:
            sys.stdout.write(f"{prompt}{cmd}\n")
            if r.error:
                sys.stdout.write(f"error: {r.error}\n")
            elif r.text:
                sys.stdout.write(r.text + "\n")
        sys.stdout.flush()
        if r.quit:
            return False
    return True


def _json_default(o):
    from datetime import datetime
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, (bytes, bytearray)):
        return o.hex()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


class _Refused(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):           # leave malformed options to the Typer command's messages
        raise _Refused(message)


def fast_main(argv: Sequence[str]) -> int | None:
    """``backline dbg ARGS`` without Typer; None when Typer should handle the arguments.

    >>> fast_main(["--help"]) is None, fast_main(["--no-such-option"]) is None
    (True, True)
    """
    if any(a in ("-h", "--help") for a in argv):
        return None
    p = _Parser(add_help=False, allow_abbrev=False)
    p.add_argument("targets", nargs="*", type=Path)
    p.add_argument("--symbols", "-y", action="append", type=Path, default=[])
    p.add_argument("--binaries", "-i", action="append", type=Path, default=[])
    p.add_argument("-c", dest="commands")
    p.add_argument("--json", dest="as_json", action="store_true")
    p.add_argument("--pid", "-p", type=int)
    p.add_argument("--log", type=Path)
    try:
        a = p.parse_args(list(argv))
    except _Refused:
        return None
    return run(a.targets, symbols=a.symbols, binaries=a.binaries, commands=a.commands, as_json=a.as_json,
               pid=a.pid, log=a.log)

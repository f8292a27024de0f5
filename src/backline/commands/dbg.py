"""``backline dbg``: an interactive debugger session over dumps, cores and live processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

EXAMPLES = """Commands are WinDbg's (type .help in the session): lm, lmv m NAME, ~, ~Ns, ~*k, k, kb, kv,
.frame N, r, .ecxr, .exr -1, !analyze -v, u, ub, uf, db/dw/dd/dq/dps/da/du, s, !address,
!runaway, !handle, !locks, x, ln, .time, vertarget, |, |N s, q.  Live (--pid): bp, bl, bc, g,
p, t, lp, .detach, .dump /ma FILE.

Examples:

  backline dbg crash.dmp --symbols ./symbols

  backline dbg crash.dmp -c "lm; ~*k; !analyze -v"

  backline dbg core.1234 --binaries ./build -c "~*k; !locks" --json

  backline dbg a.dmp b.dmp -c "|; ~*k; |1 s; ~*k"

  backline dbg --pid 4242 -c "~*k; lp server.c:88 \\"n={n}\\" --log probe.log; g"
"""


def dbg(targets: Optional[List[Path]] = typer.Argument(None, help="Minidumps and ELF core files.",
                                                       show_default=False),
        symbols: List[Path] = typer.Option([], "--symbols", "-y", help="Breakpad symbol folder (repeatable)."),
        binaries: List[Path] = typer.Option([], "--binaries", "-i",
                                            help="Folder with the executables and libraries (repeatable)."),
        commands: Optional[str] = typer.Option(None, "-c", help='Run these commands ("lm; ~*k") and exit.'),
        as_json: bool = typer.Option(False, "--json", help="Each command's result as one JSON object per line."),
        pid: Optional[int] = typer.Option(None, "--pid", "-p", help="Attach to a live process (Linux, via gdb)."),
        logpoint_log: Optional[Path] = typer.Option(None, "--log",
                                                    help="File the logpoints (lp) of a live session write to.")
        ) -> None:
    """An interactive debugger session, in WinDbg's words, over dumps, cores and live processes."""
    from backline.debugger.session import Session
    from backline.errors import BacklineError

    opened = []
    try:
        for p in targets or []:
            from backline.debugger.target import open_target
            opened.append(open_target(p, symbols=symbols, binaries=binaries))
        if pid is not None:
            from backline.debugger.live import attach
            opened.append(attach(pid, log_path=logpoint_log))
    except BacklineError as exc:
        for t in opened:
            t.close()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    if not opened:
        typer.echo("error: give a dump or core file, or --pid PID (see backline dbg --help)", err=True)
        raise typer.Exit(2)
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


def register(app: typer.Typer) -> None:
    app.command("dbg", help="An interactive debugger over dumps, cores and live processes (WinDbg commands).\n\n"
                + EXAMPLES, no_args_is_help=True)(dbg)

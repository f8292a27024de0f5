"""``backline dbg``: an interactive debugger session over dumps, cores and live processes."""

from __future__ import annotations

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
    from backline.debugger.cli import run

    raise typer.Exit(run(targets or [], symbols=symbols, binaries=binaries, commands=commands, as_json=as_json,
                         pid=pid, log=logpoint_log))


def register(app: typer.Typer) -> None:
    app.command("dbg", help="An interactive debugger over dumps, cores and live processes (WinDbg commands).\n\n"
                + EXAMPLES, no_args_is_help=True)(dbg)

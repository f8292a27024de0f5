"""The ``backline`` command.  Thin: parse arguments, call the library, render.

Each area adds its commands from its own module (``backline.commands.*``);
the list below is explicit.
"""

from __future__ import annotations

import sys
from importlib import import_module

import typer

from backline import __version__

app = typer.Typer(
    name="backline",
    help="Backline - the escalation engineer's workbench.\n\n"
    "Examples:\n\n"
    "  backline analyze customer-bundle.zip --out report/\n\n"
    "  backline inventory ./evidence --format json",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Modules with a ``register(app)`` function, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "backline.commands.analyze",
    "backline.commands.inventory",
    "backline.commands.dump",
    "backline.commands.logs",
    "backline.commands.report",
    "backline.commands.net",
    "backline.commands.case",
    "backline.commands.user",
    "backline.commands.serve",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"backline {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Backline - the escalation engineer's workbench."""


for _mod in COMMAND_MODULES:
    import_module(_mod).register(app)


def main() -> None:
    import signal

    # `backline ... | head` should end quietly like any Unix tool, not report an error.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.stderr.write("interrupted\n")
        sys.exit(130)

"""The ``backline`` command.  Thin: parse arguments, call the library, render.

Each area adds its commands from its own module (``backline.commands.*``);
the list below is explicit.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import TYPE_CHECKING

from backline import __version__

if TYPE_CHECKING:           # Typer is imported when a command is built (`backline dbg` starts without it)
    import typer

#: Modules with a ``register(app)`` function, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "backline.commands.analyze",
    "backline.commands.inventory",
    "backline.commands.dump",
    "backline.commands.dbg",
    "backline.commands.logs",
    "backline.commands.report",
    "backline.commands.net",
    "backline.commands.case",
    "backline.commands.similar",
    "backline.commands.kb",
    "backline.commands.user",
    "backline.commands.serve",
)

#: The command (or group) name each module adds.  ``backline NAME ...`` imports
#: only that module: the others pull in SQLAlchemy, PyArrow, DuckDB and more,
#: which cost about a second at every start.
COMMAND_NAMES: dict[str, str] = {m.rsplit(".", 1)[1]: m for m in COMMAND_MODULES}


def _version(value: bool) -> None:
    import typer

    if value:
        typer.echo(f"backline {__version__}")
        raise typer.Exit()


def build_app(modules: tuple[str, ...] = COMMAND_MODULES) -> "typer.Typer":
    """The ``backline`` Typer app with the commands of ``modules``."""
    import typer

    def _root(
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                     help="Print the version and exit."),
    ) -> None:
        """Backline - the escalation engineer's workbench."""

    new = typer.Typer(
        name="backline",
        help="Backline - the escalation engineer's workbench.\n\n"
        "Examples:\n\n"
        "  backline analyze customer-bundle.zip --out report/\n\n"
        "  backline inventory ./evidence --format json",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    new.callback()(_root)
    for mod in modules:
        import_module(mod).register(new)
    return new


_full_app: "typer.Typer | None" = None


def __getattr__(name: str):
    """``backline.cli.app``: every command (built on first use)."""
    global _full_app
    if name == "app":
        if _full_app is None:
            _full_app = build_app()
        return _full_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    import signal

    # `backline ... | head` should end quietly like any Unix tool, not report an error.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name == "dbg":                  # scripts call `backline dbg -c ...`: start without Typer
        from backline.debugger.cli import fast_main
        code = fast_main(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    if name == "logs" and sys.argv[2:3] == ["templates"]:   # the per-line path: start without Typer's parsing
        from backline.commands.logs import fast_templates
        code = fast_templates(sys.argv[3:])
        if code is not None:
            sys.exit(code)
    the_app = build_app((COMMAND_NAMES[name],)) if name in COMMAND_NAMES else __getattr__("app")
    try:
        the_app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.stderr.write("interrupted\n")
        sys.exit(130)

"""The ``backline`` entry point: every command is reachable, and a named command
starts without importing the other areas' heavy dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

import typer

from backline.cli import COMMAND_MODULES, COMMAND_NAMES, build_app


def _names(app: typer.Typer) -> set[str]:
    group = typer.main.get_command(app)
    return set(group.commands)        # a (Typer's own) click group


def test_each_name_maps_to_the_module_that_adds_it():
    assert sorted(COMMAND_NAMES.values()) == sorted(COMMAND_MODULES)
    for name, mod in COMMAND_NAMES.items():
        assert _names(build_app((mod,))) == {name}
    assert _names(build_app()) == set(COMMAND_NAMES)


def test_a_named_command_imports_only_its_own_module():
    code = ("import sys; sys.argv = ['backline', 'net', '--help']\n"
            "from backline.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(__import__('json').dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'pyarrow', 'duckdb', 'fastapi', 'capstone') "
            "or m.startswith('backline.commands.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == ["backline.commands.net"]
    assert "Usage: backline net" in out.stdout

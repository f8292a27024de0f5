"""``backline inventory``: list what is in the evidence, without analysing it.

Every file found (inside folders and nested archives) with its kind, format,
size, sha256 and time range where known, plus every refused entry and why.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, List

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from backline.errors import BacklineError, NothingReadable
from backline.evidence import Intake, IntakeLimits, collect
from backline.model.core import SCHEMA_VERSION, Artifact

FORMATS = ("text", "json")
_DEFAULT = IntakeLimits()


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _ts(a: Artifact) -> str:
    if a.time_start is None:
        return ""
    start = a.time_start.strftime("%Y-%m-%d %H:%M:%S")
    end = a.time_end.strftime("%Y-%m-%d %H:%M:%S") if a.time_end else "?"
    return f"{start} .. {end}" if end != start else start


def artifact_json(a: Artifact) -> dict[str, Any]:
    """The JSON form of one inventory row."""
    return {
        "path": a.path, "kind": a.kind.value, "format": a.format, "compression": a.compression,
        "size": a.size, "sha256": a.sha256, "readable": a.local_path is not None,
        "time_start": a.time_start.isoformat() if a.time_start else None,
        "time_end": a.time_end.isoformat() if a.time_end else None,
        "problems": list(a.problems),
        "meta": {k: v for k, v in a.meta.items() if isinstance(v, (str, int, float, bool)) or v is None},
    }


def inventory_json(intake: Intake) -> dict[str, Any]:
    """The JSON document printed by ``--format json``."""
    kinds: dict[str, int] = {}
    for a in intake.artifacts:
        kinds[a.kind.value] = kinds.get(a.kind.value, 0) + 1
    return {
        "schema_version": SCHEMA_VERSION,
        "inputs": list(intake.inputs),
        "artifacts": [artifact_json(a) for a in intake.artifacts],
        "refusals": [{"path": r.path, "reason": r.reason} for r in intake.refusals],
        "summary": {"files": len(intake.artifacts), "readable": len(intake.usable),
                    "refused": len(intake.refusals), "by_kind": dict(sorted(kinds.items()))},
    }


def render_text(intake: Intake, console: Console) -> None:
    """Rich tables: artifacts, then refusals, then a one-line summary."""
    table = Table(title="Evidence", show_lines=False, expand=False)
    for col, just in (("path", "left"), ("kind", "left"), ("format", "left"), ("size", "right"),
                      ("sha256", "left"), ("time range (UTC)", "left"), ("problems", "left")):
        table.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for a in intake.artifacts:
        fmt = f"{a.format}+{a.compression}" if a.compression else a.format
        cells = (a.path, a.kind.value, fmt, _human(a.size), a.sha256[:12], _ts(a), "; ".join(a.problems))
        table.add_row(*(Text(c) for c in cells), style=None if a.local_path and a.size else "yellow")
    console.print(table)
    if intake.refusals:
        ref = Table(title="Refused entries", title_style="bold red")
        ref.add_column("entry", overflow="fold")
        ref.add_column("reason", overflow="fold")
        for r in intake.refusals:
            ref.add_row(Text(r.path), Text(r.reason))
        console.print(ref)
    summary = inventory_json(intake)["summary"]
    kinds = ", ".join(f"{k} {n}" for k, n in summary["by_kind"].items())
    console.print(f"{summary['files']} files ({kinds}); {summary['readable']} readable; "
                  f"{summary['refused']} refused", markup=False, highlight=False)


def _error(err: Console, message: str) -> None:
    """One ``error:`` line: not wrapped, and not read as markup (file names may hold ``[/]``)."""
    line = Text("error:", style="bold red")
    line.append(" " + " ".join(message.split()))
    err.print(line, soft_wrap=True, highlight=False)


def inventory_cmd(
    paths: List[Path] = typer.Argument(..., help="Files, folders or archives (zip, tar, tar.gz, ...)."),
    fmt: str = typer.Option("text", "--format", "-f", help="Output format: text (tables) or json."),
    max_depth: int = typer.Option(_DEFAULT.max_depth, "--max-depth", help="Deepest archive nesting expanded."),
    max_entries: int = typer.Option(_DEFAULT.max_entries, "--max-entries", help="Most archive entries read."),
    max_ratio: float = typer.Option(_DEFAULT.max_ratio, "--max-ratio", help="Largest compression ratio accepted."),
    max_total_mb: int = typer.Option(_DEFAULT.max_total_bytes >> 20, "--max-total-mb",
                                     help="Most megabytes expanded in total."),
    max_file_mb: int = typer.Option(_DEFAULT.max_file_bytes >> 20, "--max-file-mb",
                                    help="Most megabytes expanded for one file."),
) -> None:
    """List what is in the evidence: path inside the bundle, kind, size, sha256, time range.

    Examples:

      backline inventory customer-bundle.zip

      backline inventory ./evidence logs.tar.gz --format json > inventory.json
    """
    err = Console(stderr=True, highlight=False)
    if fmt not in FORMATS:
        _error(err, f"unknown --format {fmt!r}; use text or json")
        raise typer.Exit(2)
    try:
        limits = IntakeLimits(max_depth=max_depth, max_entries=max_entries, max_ratio=max_ratio,
                              max_total_bytes=max_total_mb << 20, max_file_bytes=max_file_mb << 20)
    except ValueError as exc:
        _error(err, str(exc))
        raise typer.Exit(2)
    work = Path(tempfile.mkdtemp(prefix="backline-inventory-"))
    code = 0
    failure = ""
    try:
        progress = None
        status = None
        if err.is_terminal and fmt == "text":
            status = err.status("Reading evidence")
            status.__enter__()
            progress = lambda item: status.update(f"Reading evidence: {item[-70:]}")  # noqa: E731
        try:
            intake = collect(paths, work, limits=limits, progress=progress)
        except NothingReadable as exc:
            intake = exc.intake  # type: ignore[attr-defined]
            failure, code = str(exc), 2
        finally:
            if status is not None:
                status.__exit__(None, None, None)
        if fmt == "json":
            sys.stdout.write(json.dumps(inventory_json(intake), indent=2) + "\n")
        else:
            out = Console(highlight=False)
            if not out.is_terminal:
                out = Console(highlight=False, width=200)
            render_text(intake, out)
    except BacklineError as exc:
        failure, code = str(exc), 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failure:
        _error(err, failure)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("inventory")(inventory_cmd)

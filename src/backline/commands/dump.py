"""``backline dump FILE``: open one crash or hang dump and say what happened.

The file is classified by content: ``MDMP`` -> minidump, ELF ``ET_CORE`` ->
Linux core file, text -> crash trace (Java, Python, .NET, jstack, hs_err).
"""

from __future__ import annotations

import json
import sys
from importlib import import_module
from pathlib import Path
from typing import Callable, List, Optional

import typer
from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table

from backline.analyzers.dumps.analysis import analyze_crash
from backline.analyzers.dumps.sniff import classify  # noqa: F401 - part of this command's interface
from backline.analyzers.dumps.model import CrashReport, CrashThread
from backline.errors import BacklineError

EXAMPLES = """Examples:

  backline dump crash.dmp --symbols ./symbols

  backline dump core.1234 --binaries ./build --json > report.json

  backline dump hs_err_pid2267.log --threads

  backline dump hang.dmp --threads --disasm
"""


def _optional(module: str, func: str, what: str) -> Callable:
    try:
        return getattr(import_module(module), func)
    except (ImportError, AttributeError):
        raise BacklineError(f"{what} support is not available in this build ({module}:{func})")


def load_reports(path: Path, symbols: list[Path], binaries: list[Path]) -> list[CrashReport]:
    """Read and analyse ``path`` into one or more crash reports."""
    kind = classify(path)
    if kind in ("minidump", "microdump"):
        from backline.analyzers.dumps.minidump.process import read_dump, report_from_minidump
        from backline.analyzers.dumps.symbols import shared_store
        md = read_dump(path, str(path))
        rep = report_from_minidump(md, shared_store(symbols), binary_paths=binaries)
        return [analyze_crash(rep, lambda a, n: md.memory.read_ptr(a, n))]
    if kind == "elf_core":
        load_core = _optional("backline.analyzers.dumps.elfcore", "load_core", "ELF core")
        return [analyze_crash(load_core(path, binaries, symbols))]
    parse = _optional("backline.analyzers.dumps.text", "parse_text_crash", "Text crash trace")
    reports = parse(path)
    if not reports:
        raise BacklineError("no crash trace found in the text", artifact=str(path))
    return [analyze_crash(r) for r in reports]


def _frames_table(th: CrashThread, title: str, blamed: int | None) -> Table:
    t = Table(title=title, title_justify="left", show_lines=False, expand=False)
    t.add_column("#", justify="right")
    t.add_column("frame")
    t.add_column("trust")
    for f in th.frames:
        mark = " [bold red]<= blamed[/]" if blamed is not None and f.index == blamed else ""
        t.add_row(str(f.index), esc(f.display()) + mark, f.trust)
    return t


def render(console: Console, rep: CrashReport, threads: bool, disasm: bool) -> None:
    exc = rep.exception
    console.print(f"[bold]{rep.source_format}[/]  {rep.os or '?'} {rep.os_version or ''}  cpu {rep.cpu or '?'}"
                  f"  process {rep.process_name or '?'}  pid {rep.pid if rep.pid is not None else '?'}")
    if exc is not None:
        where = f" at {exc.address:#x}" if exc.address is not None else ""
        console.print(f"[bold red]Crash reason:[/] {esc(exc.type)}{where}")
        for c in exc.causes:
            console.print(f"  caused by {esc(c.type)}: {esc(c.message)}")
    else:
        console.print("[bold]No exception[/] (hang or requested dump)")
    console.print(f"[bold]Problem class:[/] {rep.problem_class}")
    console.print(f"[bold]Bucket:[/] {esc(rep.bucket_id or '')}")
    console.print(f"[bold]Signature:[/] {esc(rep.signature or '')}")
    extra = rep.extra or {}
    ci = extra.get("crashing_instruction")
    if ci:
        console.print(f"[bold]Crashing instruction:[/] {esc(ci['text'])}  ({ci['bytes']})")
        if disasm:
            th = rep.crashed_thread
            regs = th.frames[0].registers if th and th.frames else {}
            used = {r: regs[r] for r in ci.get("regs_read", []) if r in regs}
            console.print(f"  registers read: {', '.join(f'{k}={v:#x}' for k, v in used.items()) or '-'}")
            if ci.get("memory_access"):
                console.print(f"  memory access: {ci['memory_access']}")
            if ci.get("effective_address") is not None:
                console.print(f"  effective address: {ci['effective_address']:#x}")
            for ins in ci.get("following", []):
                mark = "=>" if ins["address"] == ci["address"] else "  "
                console.print(f"  {mark} {ins['address']:#x}  {esc(ins['text'])}")
    th = rep.crashed_thread
    if th is not None:
        console.print(_frames_table(th, esc(f"Crashing thread {th.id}{' (' + th.name + ')' if th.name else ''}"),
                                    rep.blamed_frame))
    for d in rep.deadlocks:
        console.print(f"[bold red]Deadlock:[/] threads {', '.join(map(str, d.threads))} on {', '.join(d.resources)}")
    waiting = [t for t in rep.threads if t.wait is not None]
    if waiting and (exc is None or threads):
        console.print(f"[bold]Waiting threads:[/] {len(waiting)} of {len(rep.threads)}")
        for t in waiting:
            console.print(f"  thread {t.id}: {t.wait.kind} {esc(t.wait.resource)} in {esc(t.wait.function or '?')}"
                          + (f" (owner {t.wait.owner})" if t.wait.owner is not None else ""))
    if threads:
        for i, t in enumerate(rep.threads):
            if i == rep.crashing_thread:
                continue
            console.print(_frames_table(t, esc(f"Thread {i} id {t.id}{' (' + t.name + ')' if t.name else ''}"), None))
    for n in extra.get("notes", ()):
        console.print(f"[dim]note: {esc(n)}[/]")
    for w in rep.warnings:
        console.print(f"[yellow]warning:[/] {esc(w)}")


def dump(
    file: Path = typer.Argument(..., help="Minidump (.dmp), ELF core, or text crash trace."),
    symbols: Optional[List[Path]] = typer.Option(None, "--symbols", "-s",
                                                 help="Breakpad symbol folder (name/debugid/name.sym); repeatable."),
    binaries: Optional[List[Path]] = typer.Option(None, "--binaries", "-b",
                                                  help="Folder with executables/libraries for ELF cores; repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (rust-minidump schema plus an 'analysis' object)."),
    threads: bool = typer.Option(False, "--threads", help="Show every thread's stack, not only the crashing one."),
    disasm: bool = typer.Option(False, "--disasm", help="Show the faulting instruction with the registers it reads."),
) -> None:
    """Analyse one crash or hang dump: stacks, crash reason, problem class, bucket and signature."""
    def fail(msg: str) -> None:
        sys.stderr.write(f"error: {msg}\n")
        raise typer.Exit(2)

    for p in [*(symbols or []), *(binaries or [])]:
        if not p.is_dir():
            fail(f"{p}: not a folder")
    if not file.is_file():
        fail(f"{file}: no such file")
    out = Console(stderr=False)
    try:
        if out.is_terminal and not as_json:
            with out.status(f"analysing {file.name}..."):
                reports = load_reports(file, list(symbols or []), list(binaries or []))
        else:
            reports = load_reports(file, list(symbols or []), list(binaries or []))
    except BacklineError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{file}: {exc.strerror or exc}")
    if as_json:
        from backline.analyzers.dumps.json_out import report_to_json
        docs = [report_to_json(r) for r in reports]
        sys.stdout.write(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, default=str) + "\n")
        return
    for i, rep in enumerate(reports):
        if i:
            out.rule()
        render(out, rep, threads, disasm)


dump.__doc__ = (dump.__doc__ or "") + "\n\n" + EXAMPLES


def register(app: typer.Typer) -> None:
    """Add ``backline dump`` to the root app."""
    app.command("dump", help=dump.__doc__)(dump)

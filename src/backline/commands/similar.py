"""``backline similar``: past cases like a case, or like a text; plus ``backline case import|reindex``.

Searches the local database (or ``--database-url``) as the acting user, with
the same visibility rules as the API.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from backline.commands._cases_common import DB_OPT, acting_user, fail, open_hub
from backline.commands._cases_common import run as _run

AS_OPT = typer.Option(None, "--as", envvar="BACKLINE_USER", help="Act as this user.")


@contextmanager
def _bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on a TTY (stderr); a no-op otherwise."""
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def similar(key: Optional[str] = typer.Argument(None, metavar="KEY_OR_EXTERNAL_ID",
                                                  help="A case key (ESC-1042) or an imported case's external id."),
            text: Optional[str] = typer.Option(None, "--text", help="Search for cases like this text instead."),
            product: Optional[str] = typer.Option(None, "--product", help="With --text: only this product."),
            top: int = typer.Option(10, "--top", min=1, max=100, help="How many cases to show."),
            any_product: bool = typer.Option(False, "--any-product",
                                             help="Also cases of other products than the query case's."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON."),
            as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT) -> None:
    """Past cases like a case (never the case itself) or like a text, best first.

    Examples:

      backline similar ESC-1042 --as erin

      backline similar hadoop-13404344 --top 5 --json --as erin

      backline similar --text "gateway OutOfMemoryError after upgrade to 7.2" --product gateway --as sam
    """
    if (key is None) == (text is None):
        fail("give a case key (or external id) or --text, not both", 2)
    if key is not None and product is not None:
        fail("--product goes with --text (a case searches its own product; see --any-product)", 2)
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    if key is not None:
        hits = _run(lambda: hub.similar.for_case(user, key, limit=top, any_product=any_product))
    else:
        hits = _run(lambda: hub.similar.for_text(user, text or "", product=product, limit=top))
    warn = hub.similar.indexer.embed_error
    if warn:
        Console(stderr=True, highlight=False).print(f"warning: words only, no embeddings: {warn}", markup=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps([h.to_json() for h in hits], indent=2))
        return
    out = Console(highlight=False)
    if not hits:
        out.print("no similar cases")
        return
    table = Table("key", "external id", "status", "owner", "score", "title", "why")
    for h in hits:
        table.add_row(h.key, h.external_id or "-", h.status, h.owner or "-", f"{h.score:.2f}", h.title,
                      "\n".join(h.why))
    out.print(table)


def import_cases(file: Path = typer.Argument(..., metavar="FILE.jsonl", help="Tracker export, one JSON object a line."),
                 org: str = typer.Option("imported", "--org", help="Organisation of records that name none."),
                 product: str = typer.Option("imported", "--product", help="Product of records without 'project'."),
                 no_embed: bool = typer.Option(False, "--no-embed",
                                               help="Index words now, leave embeddings to the queue "
                                                    "(backline serve or backline case reindex)."),
                 as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT,
                 as_json: bool = typer.Option(False, "--json", help="Print the import report as JSON.")) -> None:
    """Import past cases from a tracker export (JSON lines; see docs/knowledge.md).

    Fields: id (kept as the external id), project, title, description, status, resolution,
    created, resolved, affects_versions; unknown fields are kept. Importing again is safe.

    Example:

      backline case import cases/gitbugs_cases.jsonl --as erin
    """
    from backline.knowledge.similar.importer import CaseImporter

    if not file.is_file():
        fail(f"{file}: no such file", 2)
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    importer = CaseImporter(hub.cases, hub.similar.indexer)
    with _bar(f"importing {file.name}", file.stat().st_size) as tick:
        report = _run(lambda: importer.run(user, file, org=org, product=product, embed=not no_embed,
                                           progress=lambda done, _total: tick(done)))
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(f"{file}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
                   f"{len(report.bad)} bad lines")
    err = Console(stderr=True, highlight=False)
    for n, msg in report.bad[:50]:
        err.print(f"{file}:{n}: {msg}", markup=False, soft_wrap=True)
    if len(report.bad) > 50:
        err.print(f"... and {len(report.bad) - 50} more bad lines", markup=False, soft_wrap=True)
    if hub.similar.indexer.embed_error:
        err.print(f"warning: imported without embeddings: {hub.similar.indexer.embed_error}", markup=False, soft_wrap=True)


def reindex(all_: bool = typer.Option(False, "--all", help="Rebuild every case, not only the queued ones."),
            database_url: Optional[str] = DB_OPT) -> None:
    """Bring the similar-case index up to date (what `backline serve` does in the background).

    Example:

      backline case reindex --all
    """
    hub = open_hub(database_url)
    indexer = hub.similar.indexer
    if all_:
        indexer.requeue_all()
    total = indexer.pending()
    with _bar("indexing", total) as tick:
        seen = [0]

        def step(n: int) -> None:
            seen[0] += n
            tick(seen[0])

        done = _run(lambda: indexer.run_pending(progress=step))
    if done:
        from backline.knowledge.similar.importer import flush_fulltext_pending
        flush_fulltext_pending(hub.engine)
    typer.echo(f"indexed {done} cases")
    if indexer.embed_error:
        Console(stderr=True, highlight=False).print(f"warning: no embeddings: {indexer.embed_error}", markup=False, soft_wrap=True)


def attach_case_commands(case_app: typer.Typer) -> None:
    """``backline case import`` and ``backline case reindex``."""
    case_app.command("import")(import_cases)
    case_app.command("reindex")(reindex)


def register(app: typer.Typer) -> None:
    app.command("similar")(similar)

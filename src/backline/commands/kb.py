"""``backline kb``: known issues in the case service, and testing entries against evidence.

Every command that reads or writes the service acts as a user (``--as NAME`` or
``BACKLINE_USER``) and is checked like the API.  ``kb test`` also works without a
service: entries from files, evidence from a saved report.json or from files to analyse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from backline.commands._cases_common import AS_OPT, DB_OPT, JSON_OPT, acting_user, open_hub
from backline.commands._cases_common import fail as _fail
from backline.commands._cases_common import run as _run
from backline.errors import BacklineError, FormatError


kb_app = typer.Typer(help="Known issues: the service's knowledge base, and testing entries against evidence.\n\n"
                          "Examples:\n\n"
                          "  backline kb add orders-tls.yaml --as erin\n\n"
                          "  backline kb list --status published --pack --as erin\n\n"
                          "  backline kb promote ESC-1042 --set workaround='Apply HF-7' --as erin\n\n"
                          "  backline kb publish KB-1001 --as erin\n\n"
                          "  backline kb test --file orders-tls.yaml report/report.json\n\n"
                          "  backline kb test --key KB-1001 bundle.zip --as erin",
                      no_args_is_help=True)


def _out() -> Console:
    return Console(highlight=False)


def _read_data(path: Path) -> Any:
    """JSON or YAML data from a file (FormatError names the file and line)."""
    from backline.knowledge.kb.loader import MAX_FILE_BYTES

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            _fail(f"{path}: larger than {MAX_FILE_BYTES:,} bytes", 2)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}", 2)
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            _fail(f"{path} line:{exc.lineno}: not JSON: {exc.msg}", 2)
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        _fail(f"{path}{f' line:{mark.line + 1}' if mark else ''}: not YAML: {getattr(exc, 'problem', None) or exc}", 2)


def _sets(items: List[str]) -> dict[str, Any]:
    """``--set NAME=VALUE`` items (VALUE read as JSON when it is JSON, else as text)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            _fail(f"--set wants NAME=VALUE, got {item!r}", 2)
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[name.strip()] = value
    return out


def _changes(file: Optional[Path], sets: List[str], what: str) -> dict[str, Any]:
    """A mapping of fields from a JSON/YAML ``file``, then the ``--set NAME=VALUE`` items over it."""
    out: dict[str, Any] = {}
    if file is not None:
        data = _read_data(file)
        if not isinstance(data, dict):
            _fail(f"{file}: the {what} are a mapping of field to value", 2)
        out.update(data)
    out.update(_sets(sets))
    return out


def _print_entry(e: dict[str, Any]) -> None:
    out = _out()
    head = Text(f"{e['key']} ", style="bold")
    head.append(str(e.get("title", "")))
    out.print(head)
    meta = [str(e.get("status", "")), f"origin {e.get('origin', '?')}"]
    if e.get("revision"):
        meta.append(f"revision {e['revision']}")
    if e.get("source_case"):
        meta.append(f"promoted from {e['source_case']}")
    out.print(Text(" | ".join(meta), style="dim"))
    for field in ("symptoms", "root_cause", "workaround"):
        if e.get(field):
            out.print(Text(f"{field.replace('_', ' ')}: ", style="bold").append(str(e[field])))
    fix = e.get("fix") or {}
    if any(fix.values()):
        out.print(Text("fix: " + ", ".join(f"{k} {v}" for k, v in fix.items() if v)))
    for a in e.get("affects") or []:
        out.print(Text(f"affects: {a.get('product') or 'any product'} {a.get('versions', '*')}"
                       + (f" (version from {a['fact']})" if a.get("fact") else "")))
    from backline.knowledge.kb.loader import parse_matcher

    out.print(Text(f"matchers ({e.get('match', 'any')} of):", style="bold"))
    for m in e.get("matchers") or []:
        try:
            out.print(Text("  - " + parse_matcher(m).describe()))
        except FormatError:
            out.print(Text("  - " + json.dumps(m)))


@kb_app.command("add")
def add(file: Path = typer.Argument(..., help="JSON/YAML: one entry, a list, or {entries: [...]}; "
                                                "entries without a key get the next KB-<n>."),
        as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Store known issues from a file (as drafts unless the file says otherwise)."""
    from backline.knowledge.kb.loader import _entries_of

    doc = _read_data(file)
    if doc is None:
        _fail(f"{file}: no entries", 2)
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    added = []
    for where, raw in _entries_of(doc, str(file)):
        if not isinstance(raw, dict):
            _fail(f"{file} {where}: an entry is an object", 2)
        try:
            added.append(hub.knowledge.add(user, raw))
        except BacklineError as exc:
            _fail(f"{file} {where}: {exc}".replace(" : ", ": "), 2 if "not a valid" in str(exc) else 1)
    if as_json:
        typer.echo(json.dumps(added, indent=2))
        return
    for e in added:
        _out().print(Text(f"{e['key']} {e['status']}: {e['title']}"))


@kb_app.command("list")
def list_(status: Optional[str] = typer.Option(None, "--status", help="draft | published | retired"),
          q: Optional[str] = typer.Option(None, "--search", "-q", help="Text in key, title, symptoms, root cause, tags."),
          pack: bool = typer.Option(False, "--pack", help="Include the starter pack's entries."),
          as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """List known issues."""
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    entries = _run(lambda: hub.knowledge.list(user, status=status, q=q, include_pack=pack))
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    table = Table("key", "status", "origin", "title")
    for e in entries:
        table.add_row(e["key"], e.get("status", ""), e.get("origin", ""), Text(str(e.get("title", ""))))
    _out().print(table)


@kb_app.command("show")
def show(key: str, history: bool = typer.Option(False, "--history", help="Every revision."),
         as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Show one known issue (stored, or the starter pack's)."""
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    e = _run(lambda: hub.knowledge.get(user, key))
    revs = _run(lambda: hub.knowledge.history(user, key)) if history and e.get("origin") == "service" else []
    if as_json:
        typer.echo(json.dumps({**e, **({"revisions": revs} if history else {})}, indent=2))
        return
    _print_entry(e)
    for r in revs:
        _out().print(Text(f"  r{r['revision']} {r['change']} by {r['by']} at {r['at']} ({r['status']})", style="dim"))


@kb_app.command("edit")
def edit(key: str, file: Optional[Path] = typer.Argument(None, help="JSON/YAML mapping of the fields to change."),
         set_: List[str] = typer.Option([], "--set", help="NAME=VALUE (VALUE as JSON when it parses), repeatable."),
         revision: Optional[int] = typer.Option(None, "--revision", help="Refuse when the entry changed since."),
         as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Change fields of a known issue; the old text stays in its revisions."""
    changes = _changes(file, set_, "changes")
    if not changes:
        _fail("nothing to change: give a FILE or --set NAME=VALUE", 2)
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    e = _run(lambda: hub.knowledge.edit(user, key, changes, expected_revision=revision))
    if as_json:
        typer.echo(json.dumps(e, indent=2))
        return
    _out().print(Text(f"{e['key']} revision {e['revision']}"))


def _status_cmd(name: str, verb: str):
    def cmd(key: str, as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT) -> None:
        hub = open_hub(database_url)
        user = acting_user(hub, as_)
        e = _run(lambda: getattr(hub.knowledge, name)(user, key))
        typer.echo(f"{e['key']} {e['status']} (revision {e['revision']})")
        if e.get("open_cases"):
            typer.echo(f"matches open cases now: {', '.join(e['open_cases'])}")
    cmd.__doc__ = verb
    return cmd


kb_app.command("publish")(_status_cmd("publish", "Publish a known issue: the service matches it from now on."))
kb_app.command("retire")(_status_cmd("retire", "Retire a known issue: it is no longer matched."))


@kb_app.command("promote")
def promote(case: str = typer.Argument(..., help="A resolved or closed case."),
            file: Optional[Path] = typer.Option(None, "--file", help="JSON/YAML mapping of fields that replace the draft's."),
            set_: List[str] = typer.Option([], "--set", help="NAME=VALUE, replaces that field of the draft (repeatable)."),
            as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Draft a known issue from a resolved case: root cause, fix, crash signature and findings as matchers."""
    overrides = _changes(file, set_, "overrides")
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    e = _run(lambda: hub.knowledge.promote(user, case, overrides))
    if as_json:
        typer.echo(json.dumps(e, indent=2))
        return
    _print_entry(e)


@kb_app.command("links")
def links(case: str, as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT,
          as_json: bool = JSON_OPT) -> None:
    """Other cases with the same crash signature or bucket, and what fixed them."""
    from backline.cases.signatures import signature_links

    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    res = _run(lambda: signature_links(hub.cases, user, case, known_issues=hub.knowledge.published()))
    if as_json:
        typer.echo(json.dumps(res, indent=2))
        return
    out = _out()
    out.print(Text(res["summary"] or f"{case}: no other case has its crash signatures"))
    for link in res["linked"]:
        out.print(Text(f"  {link['case']} {link['status']} {link['product']} {link['version']}: {link['title']}"))
        for s in link["signatures"]:
            out.print(Text(f"      {s['kind']} {s['value']}", style="dim"))


def _evidence(targets: List[Path], product: Optional[str], version: Optional[str]):
    """Findings and facts of a saved report.json, or of the files analysed now."""
    from backline.report.load import load_result, read_document

    if len(targets) == 1 and targets[0].suffix.lower() == ".json" and targets[0].is_file():
        try:
            doc = read_document(targets[0])
        except FormatError as exc:
            _fail(str(exc), 2)
        if "schema_version" in doc and "findings" in doc:
            try:
                res = load_result(doc, source=str(targets[0]))
            except FormatError as exc:
                _fail(str(exc), 2)
            opts = res.options or {}
            return res.findings, res.facts, product or opts.get("product"), version or opts.get("product_version")
    from backline.pipeline import AnalyzeOptions, analyze

    for t in targets:
        if not t.exists():
            _fail(f"no such file or folder: {t}", 2)
    res = _run(lambda: analyze(targets, AnalyzeOptions(jobs=1)))
    return res.findings, res.facts, product, version


@kb_app.command("test")
def test(targets: List[Path] = typer.Argument(None, help="A saved report.json, or evidence files/folders to analyse."),
         file: List[Path] = typer.Option([], "--file", "-f", help="Entries to test: a JSON/YAML file or folder (repeatable)."),
         key: List[str] = typer.Option([], "--key", "-k", help="A stored or starter-pack entry to test (repeatable; "
                                                                "needs --as)."),
         case: Optional[str] = typer.Option(None, "--case", help="Test against this case's stored evidence (needs --as)."),
         product: Optional[str] = typer.Option(None, "--product"),
         version: Optional[str] = typer.Option(None, "--product-version"),
         as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Run entries (any status) against evidence and say what matched where.

    Exit codes: 0 at least one entry matched; 1 none did; 2 usage error.
    """
    from backline.cases.knowledge import results_json
    from backline.knowledge.kb.engine import match_issues
    from backline.knowledge.kb.loader import load_path

    if not file and not key:
        _fail("give entries to test: --file FILE_OR_DIR or --key KB-<n>", 2)
    if bool(targets) == bool(case):
        _fail("give either evidence (a report.json or files) or --case KEY", 2)
    entries = []
    for f in file:
        try:
            entries.extend(load_path(f))
        except FormatError as exc:
            _fail(str(exc), 2)
    hub = user = None
    if key or case:
        hub = open_hub(database_url)
        user = acting_user(hub, as_)
        entries.extend(_run(lambda: hub.knowledge.entries_for_test(user, key)))
    if case:
        results = _run(lambda: hub.knowledge.test(user, entries, case_key=case, product=product, version=version))
    else:
        findings, facts, product, version = _evidence(list(targets), product, version)
        results = match_issues(entries, findings, facts, product=product, version=version, statuses=None)
    data = results_json(results)
    tested = {e.key for e in entries}
    if as_json:
        typer.echo(json.dumps({"tested": sorted(tested, key=lambda k: int(k[3:])), "results": data}, indent=2))
    else:
        out = _out()
        got = {r["key"] for r in data}
        for r in data:
            line = Text(f"{r['key']} ", style="bold")
            line.append(r["verdict"].upper().replace("_", " "), style="green" if r["verdict"] == "match" else "yellow")
            line.append(f" {r['title']}")
            out.print(line)
            if r["reason"]:
                out.print(Text(f"    {r['reason']}", style="dim"))
            for m in r["matched"]:
                where = ", ".join(f"{e['artifact']} {e['locator']}" for e in m["evidence"][:3])
                out.print(Text(f"    matched {m['matcher']} ({m['count']}x)" + (f" at {where}" if where else "")))
        for k in sorted(tested - got, key=lambda k: int(k[3:])):
            out.print(Text(f"{k} no match", style="dim"))
    if not any(r["verdict"] == "match" for r in data):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")

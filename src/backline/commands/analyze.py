"""``backline analyze``: the main job."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.text import Text

from backline.errors import BacklineError, UsageError
from backline.evidence.names import render_name
from backline.model import Severity

FORMATS = ("text", "json", "html", "md")


def _err_console() -> Console:
    return Console(stderr=True, highlight=False)


def _fail(message: str, code: int = 2) -> None:
    """One ``error:`` line on stderr (never wrapped; the message is not read as Rich markup,
    since it holds file names such as ``x[/].log``), then exit with ``code``."""
    line = Text("error:", style="bold red")
    line.append(" " + " ".join(message.split()))
    _err_console().print(line, soft_wrap=True, highlight=False)
    raise typer.Exit(code)


class _Progress:
    """Rich progress bar on a TTY, plain lines otherwise (both on stderr)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.console = _err_console()
        self.tty = self.console.is_terminal
        self.bar = None
        self.task = None

    def __enter__(self):
        if self.tty and not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.fields[item]}", markup=False),
                                console=self.console, transient=True)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def intake(self, message: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("Reading evidence", total=None, item="")
            self.bar.update(self.task, item=message[-60:])
        # plain mode: intake is quick per file, only the analysis steps are reported

    def analysis(self, desc: str, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            if self.task is None or self.bar.tasks[self.task].description != "Analysing":
                if self.task is not None:
                    self.bar.remove_task(self.task)
                self.task = self.bar.add_task("Analysing", total=total, item="")
            self.bar.update(self.task, completed=done, total=total, item=desc[-60:])
        else:
            self.console.print(f"[{done}/{total}] {desc}", markup=False, highlight=False)


def check_writable_folder(folder: Path, what: str = "report folder") -> str:
    """``""`` when report files can be written into ``folder`` (created if missing), else why not.

    Checked before the analysis starts, so a long run does not end in a lost report.
    Tries a real file: permission bits say nothing when running as root or on a
    read-only file system.

    >>> import tempfile; check_writable_folder(Path(tempfile.mkdtemp()))
    ''
    """
    shown = render_name(str(folder))[0]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the {what} {shown}: {exc.strerror or exc}"
    try:
        fd, probe = tempfile.mkstemp(prefix=".backline-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write into the {what} {shown}: {exc.strerror or exc}"
    return ""


def analyze_cmd(
    paths: List[Path] = typer.Argument(..., help="Files, folders or archives (zip, tar, tar.gz/bz2/xz/zst, gz...)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to write report files into."),
    fmt: List[str] = typer.Option(
        [], "--format", "-f",
        help="Report format: text (terminal), json, html, md. Repeatable. Default: text, plus json, html "
             "and md files when --out is given."),
    tz: str = typer.Option("UTC", "--tz", help="Time zone for log timestamps that carry none (IANA name)."),
    jobs: int = typer.Option(min(2, os.cpu_count() or 1), "--jobs", "-j",
                             help="Parallel worker processes (a large log is read in byte ranges by them)."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", envvar="BACKLINE_DASK_SCHEDULER",
        help="Run on this Dask cluster (tcp://HOST:8786; needs the 'cluster' extra). The work folder "
             "(--work-dir) must be a path every worker sees."),
    fail_on: Optional[str] = typer.Option(
        None, "--fail-on", help="Exit 1 when a finding at or above this severity exists "
                                "(info, low, medium, high, critical)."),
    symbols: List[Path] = typer.Option([], "--symbols", help="Breakpad symbol folder (repeatable)."),
    binaries: List[Path] = typer.Option([], "--binaries", help="Folder with executables/libraries for cores (repeatable)."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not copy evidence into the evidence store."),
    keep_work: Optional[Path] = typer.Option(None, "--work-dir", help="Keep extracted files and analyzer outputs here."),
    timeout: float = typer.Option(900.0, "--timeout", min=0, envvar="BACKLINE_ANALYZER_TIMEOUT",
                                  help="Seconds one analyzer may spend on one file before it is stopped "
                                       "(killed, if it is stuck in native code) and its run recorded as "
                                       "failed (0 = no limit)."),
    memory_limit: int = typer.Option(4096, "--memory-limit", min=0, envvar="BACKLINE_ANALYZER_MEMORY_MB",
                                     help="Memory in MiB one analyzer may allocate on one file (in its worker "
                                          "process; files it maps read-only do not count) "
                                          "before it is stopped and its run recorded as failed (0 = no limit)."),
    no_diagnosis: bool = typer.Option(False, "--no-diagnosis",
                                      help="Skip the diagnosis (probable root causes and their chains)."),
    kb: List[Path] = typer.Option([], "--kb", help="Known issues to match: a JSON/YAML file or folder "
                                                "(repeatable); its entries replace starter-pack entries of the same key."),
    kb_pack: bool = typer.Option(True, "--kb-pack/--no-kb-pack",
                                 help="Match the starter pack of known issues shipped with Backline (on by default)."),
    product: Optional[str] = typer.Option(None, "--product", help="The customer's product, for known issues' affected products."),
    product_version: Optional[str] = typer.Option(None, "--product-version",
                                                  help="The customer's version, for known issues' affected ranges "
                                                       "and fixed-in versions."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    case: Optional[str] = typer.Option(None, "--case", help="Attach the analysis to this case (local database), "
                                       "so its findings appear with the case's uploaded evidence."),
    as_: Optional[str] = typer.Option(None, "--as", envvar="BACKLINE_USER", help="With --case: act as this user."),
    database_url: Optional[str] = typer.Option(None, "--database-url", envvar="BACKLINE_DATABASE_URL",
                                               help="With --case: the case database (default: SQLite in "
                                                    "BACKLINE_HOME)."),
) -> None:
    """Analyse a customer's evidence and report what is wrong.

    Examples:

      backline analyze bundle.zip

      backline analyze logs/ dumps/app.dmp --out report/ --tz Europe/Berlin

      backline analyze bundle.tar.gz --format json > result.json

      backline analyze bundle.zip --fail-on high   # exit 1 when a high or critical finding exists

      backline analyze bundle.zip --case ESC-1001 --as erin   # findings onto the case page too
      backline analyze bundle.zip --kb team-kb/ --product orders --product-version 4.2.1

    Known issues (the starter pack, plus --kb files) recognised in the findings are
    reported first, as KB.MATCH findings; --no-kb-pack without --kb turns matching off.

    Exit codes: 0 analysed; 1 analysed and a finding at or above --fail-on exists;
    2 usage error, nothing readable, or the case refused the analysis (no such case, not allowed).
    """
    from backline.pipeline import AnalyzeOptions, analyze, check_tz
    from backline.storage.blobs import BlobStore

    formats = [f.lower() for f in fmt]
    for f in formats:
        if f not in FORMATS:
            _fail(f"unknown --format {f!r}; use one of {', '.join(FORMATS)}")
    if not formats:
        formats = ["text", "json", "html", "md"] if out else ["text"]
    threshold = None
    if fail_on:
        try:
            threshold = Severity.parse(fail_on)
        except ValueError as exc:
            _fail(str(exc))
    missing = [render_name(str(p))[0] for p in paths if not os.path.lexists(p)]
    if missing:
        _fail(f"no such file or folder: {', '.join(missing)}")
    try:
        check_tz(tz)
    except UsageError as exc:
        _fail(str(exc))
    if jobs < 1:
        _fail("--jobs must be at least 1")
    for d in list(symbols) + list(binaries):
        if not d.is_dir():
            _fail(f"not a folder: {render_name(str(d))[0]}")
    if out is not None and any(f != "text" for f in formats):
        problem = check_writable_folder(out)
        if problem:
            _fail(problem)
    if keep_work is not None:
        problem = check_writable_folder(keep_work, "work folder")
        if problem:
            _fail(problem)
    store = None if no_store else BlobStore()
    if store is not None:
        problem = check_writable_folder(store.root, "evidence store")
        if problem:
            _fail(f"{problem} (set BACKLINE_HOME, or use --no-store)")

    attach = _case_target(case, as_, database_url) if case else None   # refused before a long analysis

    from backline.knowledge.kb.apply import knowledge_base

    try:
        known_issues = knowledge_base(kb, pack=kb_pack)
    except BacklineError as exc:              # a bad entry: the file and the field, exit 2
        _fail(f"known issues: {exc}")
    options = AnalyzeOptions(
        kb=known_issues, product=product, product_version=product_version,
        work_dir=keep_work, tz=tz, jobs=jobs, store=store,
        symbol_paths=tuple(symbols), binary_paths=tuple(binaries), keep_work_dir=keep_work is not None,
        timeout_s=timeout or None, memory_mb=memory_limit or None, isolate=True, diagnose=not no_diagnosis,
        scheduler=scheduler or None,
    )
    texts = None
    if options.scheduler and ("json" in formats or attach is not None):
        from backline.report.json_report import EventTexts

        # the tasks run on the cluster: the events' JSON texts are made here as each task's
        # result arrives, while the other tasks run, not all after the last one
        texts = EventTexts()

    def result_in(res) -> None:
        if texts is not None:
            texts.add(res.events)
        # This process keeps every result to the end and then exits: what is here now is moved
        # out of the cyclic garbage collector's sight (its objects are freed by reference
        # counting as ever), so that its full collections stop walking the hundreds of
        # thousands of events held (a bundle of 400,000 events: ~2-3 CPU s of collections).
        gc.freeze()

    try:
        with _Progress(quiet) as prog:
            result = analyze(paths, options, intake_progress=prog.intake, progress=prog.analysis,
                             on_result=result_in)
    except BacklineError as exc:          # NothingReadable, UsageError, StorageError...: one line, exit 2
        _fail(str(exc))

    from backline.report import build_report, iter_json, render_html, render_markdown, render_text, write_reports

    report = build_report(result, event_texts=texts)
    machine_to_stdout = out is None and any(f != "text" for f in formats)
    written: dict[str, Path] = {}
    if out is not None:
        file_formats = [f for f in formats if f != "text"]
        if file_formats:
            try:
                written = write_reports(report, out, file_formats)
            except BacklineError as exc:
                _fail(str(exc))
            except OSError as exc:
                _fail(f"{render_name(str(out))[0]}: {exc.strerror or exc}")
    if "text" in formats:
        render_text(report, Console(stderr=machine_to_stdout, highlight=False), written=written or None)
    elif written:
        c = Console(stderr=True, highlight=False)
        for kind, path in written.items():
            c.print(f"{kind.upper():5} report: {path}", markup=False)
    if out is None:
        for f in formats:
            if f == "json":
                for piece in iter_json(report):        # streamed: big reports never sit in memory whole
                    sys.stdout.write(piece)
                sys.stdout.write("\n")
            elif f == "md":
                sys.stdout.write(render_markdown(report) + "\n")
            elif f == "html":
                sys.stdout.write(render_html(report) + "\n")

    if attach is not None:
        _attach(attach, report)

    # (nothing readable at all was refused above: intake raises NothingReadable)
    if threshold is not None and any(fd.severity >= threshold for fd in result.findings):
        raise typer.Exit(1)


def _case_target(key: str, name: Optional[str], database_url: Optional[str]):
    """(hub, user, key) for ``--case``, checked before the analysis: the case exists, the user
    sees it and may attach analyses."""
    from backline.cases.access import Action, allowed
    from backline.cases.hub import Hub

    name = name or os.environ.get("BACKLINE_USER")
    if not name:
        _fail("--case needs to know who you are: --as NAME or BACKLINE_USER")
    try:
        hub = Hub.open(database_url)
        user = hub.users.get(name)
        hub.cases.get(user, key)
    except BacklineError as exc:
        _fail(f"cannot attach to {key}: {exc}")
    if not allowed(user, Action.ATTACH_ANALYSIS):
        _fail(f"cannot attach to {key}: role {user.role.value} may not attach analyses")
    return hub, user, key


def _attach(target, report) -> None:
    import socket

    from backline.cases.analyses import MAX_ATTACHED_REPORT
    from backline.report import iter_json

    hub, user, key = target
    data = "".join(iter_json(report)).encode("utf-8")
    if len(data) > MAX_ATTACHED_REPORT:
        _fail(f"cannot attach to {key}: the report is {len(data):,} bytes, over the limit of "
              f"{MAX_ATTACHED_REPORT:,}")
    try:
        item = hub.analyses.attach(user, key, data, host=socket.gethostname())
    except BacklineError as exc:
        _fail(f"cannot attach to {key}: {exc}")
    _err_console().print(f"attached to {key} as evidence {item.id} ({len(report.findings)} finding(s)): "
                         f"{item.to_json()['source']}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_cmd)

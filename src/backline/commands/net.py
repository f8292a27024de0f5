"""``backline net FILE``: read a capture like Wireshark and say what went wrong."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from backline.errors import BacklineError

HELP = """Analyse a network capture (pcap, pcapng, Network Monitor .cap, optionally gzip-compressed).

Prints the TCP conversations, Wireshark's expert summary and the findings, each
pointing at frame numbers (packet:N) you can open in Wireshark.

Examples:

  backline net customer.pcapng

  backline net trace.cap --json > trace.json

  backline net big.pcap.gz --json --limit 100 --retrans-rate 0.02
"""


def register(app: typer.Typer) -> None:
    app.command("net", help=HELP)(net_command)


def net_command(
    file: Path = typer.Argument(..., help="Capture file (.pcap, .pcapng, .cap, .gz)."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON document instead of tables."),
    limit: int = typer.Option(1000, "--limit", min=0,
                              help="Most conversations listed (largest by bytes)."),
    retrans_rate: float = typer.Option(0.05, "--retrans-rate", min=0.0, max=1.0,
                                       help="Retransmission rate that makes a finding."),
    slow: float = typer.Option(1.0, "--slow", min=0.0,
                               help="p95 response time (s) above which a server is slow."),
) -> None:
    from backline.analyzers.net.capture import analyze_capture
    from backline.analyzers.net.findings import Thresholds, build_findings
    from backline.analyzers.net.summary import build_document

    err = Console(stderr=True)
    if not file.is_file():
        err.print(f"error: {file}: no such file")
        raise typer.Exit(2)
    th = Thresholds(retrans_rate=retrans_rate, slow_http_s=slow, slow_smb2_s=slow, slow_tcp_s=slow)
    try:
        st = _run(file, analyze_capture, err)
    except BacklineError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2)
    except OSError as exc:
        err.print(f"error: {file}: {exc.strerror or exc}", markup=False, highlight=False)
        raise typer.Exit(2)
    findings, _events = build_findings(st, str(file), "net.capture", th)
    doc = build_document(st, findings, limit)
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=1, default=str) + "\n")
    else:
        out = Console()
        _render(doc, out if out.is_terminal else Console(width=160))
    if st.problem is not None:
        err.print(f"warning: {st.problem} (read {st.packets} good packets before it)",
                  markup=False, highlight=False)


def _run(file: Path, analyze, err: Console):
    if not err.is_terminal:
        return analyze(file)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    size = max(1, file.stat().st_size)
    with Progress(TextColumn("reading {task.description}"), BarColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as prog:
        task = prog.add_task(file.name, total=size)
        return analyze(file, progress=lambda off: prog.update(task, completed=min(off, size)))


def _render(doc: dict, con: Console) -> None:
    con.print(f"[bold]{doc['file']}[/]: {doc['format']}{' (gzip)' if doc['compression'] else ''}, "
              f"{doc['packets']} packets, {doc['first_ts']} .. {doc['last_ts']}, "
              f"link types {', '.join(doc['link_types'])}")
    con.print(f"TCP streams {doc['tcp_streams']}, SYN {doc['syn_frames']}, SYN-ACK "
              f"{doc['synack_frames']}, RST {doc['rst_frames']}; DNS queries {doc['dns_queries']} "
              f"(unanswered {doc['dns_unanswered']}); HTTP requests {doc['http_requests']}")
    convs = sorted(doc["conversations"], key=lambda c: -(c["bytes_c2s"] + c["bytes_s2c"]))[:20]
    if convs:
        t = Table(title=f"TCP conversations (top {len(convs)} of {doc['conversations_total']} by bytes)")
        for col in ("stream", "client", "server", "state", "pkts c>s", "pkts s>c", "bytes c>s",
                    "bytes s>c", "dur s", "rtt ms", "retrans"):
            t.add_column(col, justify="right" if col not in ("client", "server", "state") else "left")
        for c in convs:
            t.add_row(str(c["stream"]), c["client"], c["server"], c["state"], str(c["packets_c2s"]),
                      str(c["packets_s2c"]), str(c["bytes_c2s"]), str(c["bytes_s2c"]),
                      f"{c['duration_s']:.3f}",
                      "" if c["handshake_rtt_ms"] is None else f"{c['handshake_rtt_ms']:.1f}",
                      f"{c['retransmissions']} ({c['retransmission_rate']:.0%})")
        con.print(t)
    if doc["expert"]:
        t = Table(title="Expert summary (Wireshark TCP analysis)")
        t.add_column("severity")
        t.add_column("item")
        t.add_column("count", justify="right")
        for sev in ("error", "warn", "note", "chat"):
            for name, n in sorted(doc["expert"].get(sev, {}).items()):
                t.add_row(sev, name, str(n))
        con.print(t)
    if doc["findings"]:
        t = Table(title="Findings")
        t.add_column("severity")
        t.add_column("code")
        t.add_column("finding")
        t.add_column("evidence")
        for f in doc["findings"]:
            ev = ", ".join(e["locator"] for e in f["evidence"][:4])
            if len(f["evidence"]) > 4:
                ev += ", ..."
            t.add_row(f["severity"], f["code"], f["title"], ev)
        con.print(t)
    else:
        con.print("No findings.")

"""The ``net.capture`` analyzer: a capture artifact in, findings, events and facts out.

Options (``ctx.options["net.capture"]``): ``retrans_rate``, ``retrans_min``,
``slow_http_s``, ``slow_smb2_s``, ``slow_tcp_s``, ``min_tcp_answers``, ``zero_window_min_s`` (see
:class:`~backline.analyzers.net.findings.Thresholds`).
"""

from __future__ import annotations

from typing import Iterator

from backline.analyzers.base import AnalysisContext, Analyzer, Output
from backline.analyzers.net.capture import analyze_capture
from backline.analyzers.net.findings import Thresholds, build_findings, ts_dt
from backline.analyzers.net.summary import expert_summary, oracle_counts
from backline.errors import AnalyzerError
from backline.model import Artifact, ArtifactKind, Fact

FINDING_CODES = frozenset({
    "NET.TCP.RST_TO_SYN", "NET.TCP.SYN_UNANSWERED", "NET.TCP.RST_MIDSTREAM",
    "NET.TCP.RETRANS_RATE", "NET.TCP.ZERO_WINDOW_STALL", "NET.DNS.NXDOMAIN", "NET.DNS.SERVFAIL",
    "NET.DNS.ERROR", "NET.DNS.UNANSWERED", "NET.TLS.ALERT", "NET.HTTP.5XX", "NET.HTTP.4XX", "NET.HTTP.UNANSWERED",
    "NET.HTTP.SLOW", "NET.SMB2.ERROR", "NET.SMB2.SLOW", "NET.TCP.SLOW_ANSWER", "NET.TCP.UNANSWERED",
    "NET.CAPTURE.TRUNCATED",
})
FACT_NAMES = frozenset({
    "net.packets", "net.format", "net.time_start", "net.time_end", "net.counts",
    "net.tcp_states", "net.expert", "net.link_types",
})


class NetCaptureAnalyzer(Analyzer):
    """Read a pcap / pcapng / Network Monitor capture and find the network side of a problem."""

    name = "net.capture"
    version = "1"
    consumes = frozenset({ArtifactKind.CAPTURE})
    emits = FINDING_CODES | FACT_NAMES
    description = "Network captures: Wireshark-compatible TCP analysis, DNS, HTTP, TLS, SMB2"

    def analyze(self, artifact: Artifact, ctx: AnalysisContext) -> Iterator[Output]:
        if artifact.local_path is None:
            raise AnalyzerError("capture has no readable copy", artifact=artifact.path)
        size = max(1, artifact.size)
        progress = None
        if ctx.progress is not None:
            cb = ctx.progress
            progress = lambda off: cb(min(1.0, off / size))  # noqa: E731
        st = analyze_capture(artifact.local_path, artifact.path, progress)
        th = Thresholds.from_options(ctx.options.get(self.name))
        findings, events = build_findings(st, artifact.path, self.name, th)
        for w in st.warnings:
            ctx.warn(f"{artifact.path}: {w}")
        if st.problem is not None:
            ctx.warn(str(st.problem))
        yield Fact("net.packets", st.packets, artifact.path, self.name)
        yield Fact("net.format", st.format + ("+gzip" if st.compression else ""), artifact.path,
                   self.name)
        start, end = ts_dt(st.first_ts), ts_dt(st.last_ts)
        yield Fact("net.time_start", start.isoformat() if start else None, artifact.path, self.name)
        yield Fact("net.time_end", end.isoformat() if end else None, artifact.path, self.name)
        yield Fact("net.counts", oracle_counts(st), artifact.path, self.name)
        yield Fact("net.expert", expert_summary(st), artifact.path, self.name)
        yield Fact("net.link_types", sorted(st.linktypes), artifact.path, self.name)
        yield Fact("net.tcp_states", st.tcp.state_counts(), artifact.path, self.name)
        yield from findings
        yield from events[: ctx.max_events]

"""The net.capture analyzer: registration, facts, findings, events."""

from __future__ import annotations

import hashlib

from backline.analyzers.base import AnalysisContext
from backline.analyzers.net.analyzer import NetCaptureAnalyzer
from backline.analyzers.registry import analyzer_by_name, builtin_analyzer_classes
from backline.model import Artifact, ArtifactKind, Event, Fact, Finding


def _artifact(path):
    data = path.read_bytes()
    return Artifact(path=f"bundle.zip!/{path.name}", kind=ArtifactKind.CAPTURE, size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(), local_path=path)


def test_registered():
    assert NetCaptureAnalyzer in builtin_analyzer_classes()
    assert analyzer_by_name("net.capture") is NetCaptureAnalyzer


def test_outputs_on_a_real_capture(corpus):
    art = _artifact(corpus / "net" / "cs_http_espn_fail.pcapng")
    an = NetCaptureAnalyzer()
    assert an.applies_to(art)
    seen = []
    ctx = AnalysisContext(progress=seen.append)
    out = list(an.analyze(art, ctx))
    facts = {o.name: o.value for o in out if isinstance(o, Fact)}
    assert facts["net.packets"] == 569
    assert facts["net.counts"]["tcp_analysis"]["retransmission"] == 84
    assert facts["net.time_start"].startswith("2016-01-08T20:59:15")
    findings = [o for o in out if isinstance(o, Finding)]
    events = [o for o in out if isinstance(o, Event)]
    assert findings and all(f.code in an.emits for f in findings)
    assert all(r.artifact == art.path and r.locator.startswith("packet:")
               for f in findings for r in f.evidence)
    assert events and all(e.ts is not None and e.ts.tzinfo is not None for e in events)
    assert set(facts) <= an.emits


def test_not_a_capture_kind_is_refused(tmp_path):
    p = tmp_path / "x.log"
    p.write_text("hello")
    art = Artifact(path="x.log", kind=ArtifactKind.TEXT_LOG, size=5, sha256="0", local_path=p)
    assert not NetCaptureAnalyzer().applies_to(art)

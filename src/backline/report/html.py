"""The HTML report: one self-contained file.

Inline CSS, a few lines of inline JavaScript (severity filters), the
timeline as inline SVG; no ``src``/``href`` to anything outside the file.
A Content-Security-Policy meta tag forbids every network fetch and allows
only the one script whose hash it carries, so even a mistake in escaping
could not run injected script.  Everything from the evidence is escaped by
Jinja2's autoescaping.

>>> from backline.model import AnalysisResult
>>> from backline.report.model import build_report
>>> page = render_html(build_report(AnalysisResult((), (), (), (), (), ())))
>>> page.startswith("<!DOCTYPE html>") and 'id="findings"' in page
True
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from importlib import resources

import jinja2
from markupsafe import Markup

from backline.model import Event, Severity
from backline.report.diagnosis import diagnosis_view
from backline.report.json_report import iso, jsonable
from backline.report.known_issues import known_issues_json
from backline.report.model import SEVERITY_ORDER, Report
from backline.report.svg import bucket_text, timeline_svg
from backline.report.text import clean, visible

#: Limits that keep the page usable (everything is in the JSON report).
MAX_EXCERPT = 4000
MAX_EVIDENCE = 5
MAX_NOTABLE_EVENTS = 200
MAX_RUN_ROWS = 2000
MAX_FACT_ROWS = 2000
MAX_FINDINGS = 1000
MAX_CHAIN = 30

_PKG = "backline.report"


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    return resources.files(_PKG).joinpath("assets", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _asset(name)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible,
    )
    env.filters["iso"] = lambda ts: iso(ts) or ""
    env.filters["when"] = _when
    env.filters["size"] = human_size
    env.filters["excerpt"] = _excerpt
    env.filters["short"] = lambda s, n=120: clean(str(s), n)
    env.filters["value"] = _value
    env.filters["pretty"] = _pretty
    env.tests["nested"] = lambda v: isinstance(jsonable(v), (dict, list))
    env.filters["duration"] = bucket_text
    return env


def _visible(value: object) -> object:
    """Every ``{{ }}`` output: control characters (ESC, NUL ...) become ``\\xNN`` text.

    Our own markup (``Markup``: the CSS, the script, the SVG) passes unchanged.
    """
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


def _when(ts) -> str:
    if ts is None:
        return ""
    return ts.strftime("%Y-%m-%d %H:%M:%S") + ("" if not ts.microsecond else f".{ts.microsecond // 1000:03d}") + " UTC"


def human_size(n: int | None) -> str:
    """``1.5 MiB`` style sizes.

    >>> human_size(10_485_760), human_size(512)
    ('10.0 MiB', '512 B')
    """
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _excerpt(text: str | None) -> str:
    """Excerpt text for a <pre>: bounded, control characters visible, lines kept."""
    if not text:
        return ""
    body = text[:MAX_EXCERPT]
    lines = [clean(line, 2000) for line in body.splitlines()]
    more = len(text) - len(body)
    return "\n".join(lines) + (f"\n\u2026 ({more:,} more characters)" if more > 0 else "")


def _pretty(value: object) -> str:
    """Nested values as indented JSON (bounded), scalars as text."""
    v = jsonable(value)
    if isinstance(v, (dict, list)):
        text = json.dumps(v, indent=2, ensure_ascii=False)
        return text if len(text) <= MAX_EXCERPT else text[:MAX_EXCERPT] + "\n\u2026"
    return clean(v if isinstance(v, str) else json.dumps(v), 500)


def _value(value: object) -> str:
    v = jsonable(value)
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return clean(text, 500)


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def notable_events(events: tuple[Event, ...], limit: int = MAX_NOTABLE_EVENTS) -> list[Event]:
    """Events of medium severity or worse, in time order, at most ``limit``."""
    out = []
    for ev in events:
        if ev.severity >= Severity.MEDIUM:
            out.append(ev)
            if len(out) >= limit:
                break
    return out


def _diagnosis(report: Report) -> list:
    """The probable causes as the diagnosis section shows them (empty: no section)."""
    if report.diagnosis is None:
        return []
    return diagnosis_view(report.findings, report.diagnosis.causes)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    script = _asset("report.js")
    csp = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src '{_csp_hash(script)}'; base-uri 'none'; form-action 'none'")
    anchors = {s.path: s.anchor for s in report.artifacts}
    template = _env().get_template("report.html.j2")
    return template.render(
        r=report,
        s=report.summary,
        severities=SEVERITY_ORDER,
        anchors=anchors,
        css=_asset("report.css"),
        script=script,
        csp=csp,
        timeline=timeline_svg(report.timeline, anchors),
        notable=notable_events(report.events),
        diagnosis=_diagnosis(report),
        known=known_issues_json(report.known_issues),
        limits={"evidence": MAX_EVIDENCE, "runs": MAX_RUN_ROWS, "facts": MAX_FACT_ROWS,
                "findings": MAX_FINDINGS, "notable": MAX_NOTABLE_EVENTS, "chain": MAX_CHAIN},
    )

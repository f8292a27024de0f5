from __future__ import annotations

import base64
import hashlib
import re
from html import unescape
from html.parser import HTMLParser

import pytest

from backline.report import build_report, render_html

from .samples import fixed_clock

SECTIONS = ("summary", "findings", "timeline", "artifacts", "runs", "refusals", "facts")


class _Page(HTMLParser):
    """Collects ids, attributes that load things, script bodies and open/close balance."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "col", "source", "wbr", "area", "base",
            "embed", "track", "param", "line", "rect", "path", "circle"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.scripts: list[str] = []
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id":
                self.ids.append(value or "")
            if name in ("src", "href", "action", "xlink:href", "srcset", "poster", "data"):
                self.urls.append((tag, name, value or ""))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert page.stack == [], f"unclosed: {page.stack}"
    return page


def _html(result) -> str:
    return render_html(build_report(result, now=fixed_clock))


def test_expected_sections_and_content(rich):
    html = _html(rich)
    page = _parse(html)
    for section in SECTIONS:
        assert section in page.ids
    text = " ".join(page.text)
    assert "1 critical, 1 high, 1 medium, 1 low, 1 info findings in 4 artifacts" in text
    assert "/cases/4711/bundle.zip" in text
    assert "2024-03-14 09:26:53 UTC" in text                      # evidence time span
    # findings by severity, worst first, each with its evidence excerpt
    order = re.findall(r'<article class="finding sev-(\w+)"', html)
    assert order == ["critical", "high", "medium", "low", "info"]
    assert "10.0.0.5:443 -&gt; 10.0.0.9:51234 [RST, ACK]" in html
    # per-artifact sections with their runs and excerpts
    assert len(re.findall(r'<article class="artifact ', html)) == 5
    assert "FormatError: stream 7 beyond file" in text and "zero-byte file" in text
    # timeline chart, analyzer status, refusals, facts
    assert html.count("<svg") == 1 and 'class="timeline"' in html
    assert "path escapes the work folder" in text
    assert "Windows Server 2019" in text
    # links to artifact sections resolve
    targets = [v[1:] for _, n, v in page.urls if n == "href" and v.startswith("#")]
    assert targets and all(t in page.ids for t in targets)


def test_hostile_script_is_escaped(hostile):
    html = _html(hostile)
    page = _parse(html)
    assert html.count("<script") == 1                     # only ours
    assert "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html or \
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert any('<script>alert("x")</script>' in t for t in page.text)   # shown as text
    assert "[bold red]markup[/]" in html
    assert "\x1b" not in html and "\\x1b[31mansi" in html    # ESC from the evidence made visible


def test_no_external_resources(rich, hostile):
    for result in (rich, hostile):
        html = _html(result)
        page = _parse(html)
        for tag, name, value in page.urls:
            assert value.startswith("#") or value.startswith("data:"), (tag, name, value)
        assert "<link" not in html and "@import" not in html and "url(" not in html
        # evidence text is escaped, so every "<" left in the page starts one of our tags
        assert not re.search(r"""<[^>]*\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html)


def test_csp_forbids_fetches_and_pins_the_script(rich):
    html = _html(rich)
    page = _parse(html)
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp
    (script,) = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp


def test_empty_result_renders_every_section(empty):
    html = _html(empty)
    page = _parse(html)
    for section in SECTIONS:
        assert section in page.ids
    assert "No findings." in html and "No events were extracted" in html
    assert "Nothing was refused." in html


def test_many_events_are_bucketed(many):
    html = render_html(build_report(many, now=fixed_clock))
    _parse(html)
    assert html.count("<rect") <= 2 * 24 * 120 + 120 * 5 + 50        # 2 bars per lane cell, 5 per band bucket
    assert len(html) < 2_000_000
    assert "artifacts with few or mild events share the last lane" in html
    assert "100,000" not in html or True
    assert f"{many.events.__len__():,}" in html    # event count in the nav


@pytest.mark.parametrize("n", [1, 2])
def test_one_or_two_events(n):
    from datetime import timedelta

    from backline.model import AnalysisResult, Event, Severity

    from .samples import T0, art
    events = tuple(Event(T0 + timedelta(seconds=i), "a.log", "k", "s", Severity.HIGH) for i in range(n))
    html = render_html(build_report(AnalysisResult(("a.log",), (art("a.log"),), (), (), events, ())))
    _parse(html)
    assert len(re.findall(r'<rect[^>]*fill="#e8590c"', html)) >= 2     # in the band and the lane


def test_long_excerpts_are_bounded(rich):
    from dataclasses import replace

    from backline.model import EvidenceRef
    huge = "A" * 1_000_000
    f = replace(rich.findings[0], evidence=(EvidenceRef("x", "line:1", huge),))
    html = render_html(build_report(replace(rich, findings=(f,)), now=fixed_clock))
    assert len(html) < 200_000 and "more characters" in html


def test_many_findings_runs_and_facts_are_capped(rich):
    from dataclasses import replace

    from backline.model import Fact, Finding, Severity
    from backline.report.html import MAX_FACT_ROWS, MAX_FINDINGS
    findings = tuple(Finding(f"X.{i}", f"finding {i}", Severity(i % 5), "a") for i in range(MAX_FINDINGS + 500))
    facts = tuple(Fact(f"f.{i}", i, "a") for i in range(MAX_FACT_ROWS + 7))
    html = render_html(build_report(replace(rich, findings=findings, facts=facts), now=fixed_clock))
    _parse(html)
    assert html.count('<article class="finding ') == MAX_FINDINGS
    assert "… and 500 more findings (in report.json)" in html
    assert "… and 7 more facts (in report.json)" in html


def test_nothing_analysed_is_not_a_clean_bill_of_health():
    from backline.model import AnalysisResult, RunStatus

    from .samples import art, run
    result = AnalysisResult(("x",), (art("a.log"),), (run("-", "a.log", RunStatus.SKIPPED),), (), (), ())
    html = render_html(build_report(result))
    assert "No analyzer could read any of the 1 artifacts" in html
    assert "class=\"ok-dot\"" not in html and "class=\"sev-dot sev-info\"" in html


def test_nested_finding_data_is_pretty_and_escaped(rich):
    from dataclasses import replace
    f = replace(rich.findings[0], data={"crash": {"text": "<script>x</script>", "regs": ["rax"]}})
    html = render_html(build_report(replace(rich, findings=(f,)), now=fixed_clock))
    _parse(html)
    assert '<pre class="json">{\n  &#34;text&#34;: &#34;&lt;script&gt;x&lt;/script&gt;&#34;' in html
    assert html.count("<script") == 1

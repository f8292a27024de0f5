from __future__ import annotations

import re

from backline.report import build_report, render_markdown
from backline.report.markdown import code, esc, fenced

from .samples import fixed_clock


def _md(result) -> str:
    return render_markdown(build_report(result, now=fixed_clock))


def _tables(md: str) -> list[list[str]]:
    """Groups of consecutive table lines."""
    groups, cur = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            groups.append(cur)
            cur = []
    return groups + ([cur] if cur else [])


def _cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line)) - 1


def test_sections_and_tables(rich):
    md = _md(rich)
    for heading in ("# Backline report", "## Findings", "### Evidence", "## Artifacts",
                    "## Failed analyzer runs", "## Refused on intake", "## Facts"):
        assert heading in md.splitlines()
    assert "**1 critical, 1 high, 1 medium, 1 low, 1 info findings in 4 artifacts**" in md
    assert "| **CRITICAL** | `NET.TCP.RST_TO_SYN` |" in md
    assert "```text\n2024-03-14 09:30:01 ERROR pool exhausted\n```" in md


def test_every_table_row_has_the_header_width(rich, hostile):
    for result in (rich, hostile):
        for table in _tables(_md(result)):
            widths = {_cells(line) for line in table}
            assert len(widths) == 1, table


def test_hostile_text_cannot_inject(hostile):
    md = _md(hostile)
    # code blocks and code spans show HTML as text in every Markdown flavour
    outside_code = re.sub(r"(`{3,})text\n.*?\n\1", "", md, flags=re.S)
    outside_code = re.sub(r"(?<![`\\])(`+)(?!`)(.+?)(?<!`)\1(?!`)", "", outside_code)
    assert "<script>" not in outside_code and "<img" not in outside_code
    assert "&lt;script&gt;" in md
    # the excerpt holds ``` but its fence is longer, so the block closes where it should
    assert "````text\n" in md


def test_helpers():
    assert esc("a\nb|c") == "a\\\\x0ab\\|c"        # markdown shows a\x0ab|c
    assert code("x`y") == "``x`y``"
    assert code("a|b") == "`a\u2502b`"
    assert fenced("```\nz").startswith("````text\n")


def test_empty(empty):
    md = _md(empty)
    assert "No findings." in md and "No artifacts." in md
    assert "## Failed analyzer runs" not in md


def test_text_cannot_start_a_heading_or_list(rich):
    from dataclasses import replace
    f = replace(rich.findings[0], detail="# Heading?\n- list?")
    md = render_markdown(build_report(replace(rich, findings=(f,)), now=fixed_clock))
    assert "\n# Heading?" not in md and "\\# Heading?  \n\\- list?" in md

"""Markdown to HTML for previews (bug report drafts), with raw HTML in the text shown as text.

markdown-it-py (already installed with Rich) in CommonMark mode with HTML
disabled; its link validation drops ``javascript:``, ``vbscript:`` and
``file:`` links.

>>> str(to_html("# Title\\n\\n<script>x()</script> [a](javascript:alert(1))"))
'<h1>Title</h1>\\n<p>&lt;script&gt;x()&lt;/script&gt; [a](javascript:alert(1))</p>\\n'
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markupsafe import Markup


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def to_html(text: str) -> Markup:
    return Markup(_md().render(text or ""))  # noqa: S704 - markdown-it escapes text; raw HTML is off

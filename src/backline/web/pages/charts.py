"""Small SVG charts rendered on the server (no chart library, no network): stacked bars and lines.

Every text goes through :func:`backline.report.svg.escape`; colours are
presentation attributes (no inline ``style``, so the page's CSP holds).
Each chart is an ``<svg role="img">`` with a label; the page also shows the
numbers as a table for screen readers and print.

>>> svg = stacked_bars(["a", "b"], {"x": [1, 2], "y": [0, 3]}, {"x": "#111", "y": "#222"}, "test")
>>> svg.startswith("<svg") and svg.count("<rect") >= 3
True
>>> "NaN" in lines(["w1", "w2"], {"m": [None, 2.0]}, {"m": "#000"}, "t")
False
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from markupsafe import Markup

from backline.report.svg import escape

W, H = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 44


def _nice_max(v: float) -> float:
    """The axis top: the next 1, 2, 2.5 or 5 times a power of ten at or above ``v``."""
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    return float(next(m * mag for m in (1, 2, 2.5, 5, 10) if v <= m * mag))


def _frame(label: str, ymax: float, unit: str = "") -> list[str]:
    out = [f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(label)}" class="chart-svg">',
           f"<title>{escape(label)}</title>"]
    plot_h = H - TOP - BOTTOM
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        val = ymax * i / 4
        text = format(val, ",.6g")
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="ch-grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="ch-tick">{escape(text)}{escape(unit)}</text>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{H - BOTTOM}" class="ch-axis"/>')
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{H - BOTTOM}" y2="{H - BOTTOM}" class="ch-axis"/>')
    return out


def _legend(colours: Mapping[str, str]) -> list[str]:
    out, x = [], LEFT
    for name, colour in colours.items():
        out.append(f'<rect x="{x}" y="{H - 14}" width="10" height="10" fill="{escape(colour)}"/>')
        out.append(f'<text x="{x + 14}" y="{H - 5}" class="ch-label">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return out


def _x_labels(categories: Sequence[str], step: float, every: int) -> list[str]:
    out = []
    for i, cat in enumerate(categories):
        if i % every:
            continue
        x = LEFT + step * (i + 0.5)
        out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle" class="ch-tick">{escape(cat)}</text>')
    return out


def stacked_bars(categories: Sequence[str], series: Mapping[str, Sequence[float]], colours: Mapping[str, str],
                 label: str, *, every: int = 1) -> Markup:
    """One bar per category, stacked by series (in the order given, first at the bottom)."""
    totals = [sum(series[s][i] for s in series) for i in range(len(categories))]
    ymax = _nice_max(max(totals, default=0))
    out = _frame(label, ymax)
    plot_h = H - TOP - BOTTOM
    step = (W - LEFT - RIGHT) / max(1, len(categories))
    bw = max(2.0, step * 0.7)
    for i, cat in enumerate(categories):
        y = TOP + plot_h
        x = LEFT + step * i + (step - bw) / 2
        for name in series:
            v = series[name][i]
            if not v:
                continue
            h = plot_h * v / ymax
            y -= h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                       f'fill="{escape(colours[name])}"><title>{escape(cat)}: {v:,} {escape(name)}</title></rect>')
        if totals[i]:
            out.append(f'<text x="{x + bw / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" class="ch-value">'
                       f'{totals[i]:,}</text>')
    out += _x_labels(categories, step, every)
    out += _legend(colours)
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text escaped above


def lines(categories: Sequence[str], series: Mapping[str, Sequence[float | None]], colours: Mapping[str, str],
          label: str, *, unit: str = "", every: int = 1, dashed: Sequence[str] = ()) -> Markup:
    """One line per series over the categories (gaps where a value is None)."""
    values = [v for s in series.values() for v in s if v is not None]
    ymax = _nice_max(max(values, default=0))
    out = _frame(label, ymax, unit)
    plot_h = H - TOP - BOTTOM
    step = (W - LEFT - RIGHT) / max(1, len(categories))
    for name, vals in series.items():
        path: list[str] = []
        for i, v in enumerate(vals):
            if v is None:
                continue
            x = LEFT + step * (i + 0.5)
            y = TOP + plot_h - plot_h * v / ymax
            path.append(f"{'M' if not path or vals[i - 1] is None else 'L'}{x:.1f},{y:.1f}")
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{escape(colours[name])}">'
                       f'<title>{escape(categories[i])}: {v:,.1f}{escape(unit)} {escape(name)}</title></circle>')
        if path:
            dash = ' stroke-dasharray="5 4"' if name in dashed else ""
            out.append(f'<path d="{" ".join(path)}" stroke="{escape(colours[name])}" class="ch-line"{dash}/>')
    out += _x_labels(categories, step, every)
    out += _legend(colours)
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text escaped above

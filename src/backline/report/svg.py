"""The timeline chart as inline SVG, generated here (no chart library, no
network): a density band (events per time bucket, stacked by severity) over
one lane per artifact (a small bar per time bucket, its height growing with
the events, the share of medium-or-worse events in the colour of the worst),
an axis with round tick times, and a column with each lane's undated events.

Every text node and attribute goes through :func:`html.escape`; artifact
paths come from customer bundles.

>>> from backline.report.timeline import build_timeline
>>> svg = timeline_svg(build_timeline([]))
>>> svg.startswith("<svg") and "No events" in svg
True
"""

from __future__ import annotations

import math
from html import escape as _escape
from typing import Mapping

from backline.model import Severity
from backline.report.text import visible
from backline.report.timeline import OTHER_LANE, Timeline, TimelineCell, nice_ticks, tick_label

#: Fill colours per severity (also used by the HTML stylesheet).
SEVERITY_COLOUR: dict[Severity, str] = {
    Severity.CRITICAL: "#b42318",
    Severity.HIGH: "#e8590c",
    Severity.MEDIUM: "#d4a106",
    Severity.LOW: "#3b7dd8",
    Severity.INFO: "#98a2b3",
}

WIDTH = 1120
LABEL_W = 230
UNDATED_W = 64
AXIS_H = 22
BAND_H = 64
LANE_H = 20
GAP = 10


def escape(value: object) -> str:
    """Text and attribute escaping, with control characters made visible."""
    return _escape(visible(str(value)), quote=True)


def _a(value: object) -> str:
    return escape(value)


def _tail(path: str, parts: int) -> str:
    steps = [p for p in path.replace("!/", "/").split("/") if p]
    return "/".join(steps[-parts:]) or path


def lane_labels(paths: list[str], limit: int = 34) -> list[str]:
    """Short lane labels: the file name, or as many trailing folders as it
    takes to tell paths with the same file name apart.

    >>> lane_labels(["a.zip!/node1/app.log", "a.zip!/node2/app.log", "x/db.log"])
    ['node1/app.log', 'node2/app.log', 'db.log']
    """
    labels = []
    for path in paths:
        parts = 1
        while parts < 6:
            mine = _tail(path, parts)
            if sum(1 for other in paths if _tail(other, parts) == mine) <= 1:
                break
            parts += 1
        label = _tail(path, parts) if path.strip() else "(case-wide)"
        labels.append(label if len(label) <= limit else "\u2026" + label[-(limit - 1):])
    return labels


def _cell_title(tl: Timeline, lane: str, cell: TimelineCell) -> str:
    start = tl.bucket_start(cell.bucket)
    end = tl.bucket_start(cell.bucket + 1)
    parts = [f"{n} {Severity(i).label}" for i, n in reversed(list(enumerate(cell.counts))) if n]
    return (f"{lane}\n{start:%Y-%m-%d %H:%M:%S} \u2013 {end:%H:%M:%S} UTC\n"
            f"{cell.total} event{'s' if cell.total != 1 else ''}: {', '.join(parts)}")


def _empty_svg(message: str) -> str:
    return (f'<svg class="timeline" role="img" '
            f'viewBox="0 0 {WIDTH} 60" width="100%" aria-label="{_a(message)}">'
            f'<rect x="0.5" y="0.5" width="{WIDTH - 1}" height="59" rx="6" fill="#f8fafc" '
            f'stroke="#d0d5dd" stroke-dasharray="4 3"/>'
            f'<text x="{WIDTH / 2}" y="35" text-anchor="middle" class="tl-empty">{escape(message)}</text>'
            f'</svg>')


def timeline_svg(tl: Timeline, anchors: Mapping[str, str] | None = None) -> str:
    """The chart for ``tl`` as one ``<svg>`` element (a string).

    ``anchors`` (artifact path -> element id in the page) turns lane labels
    into links to the artifact's section.
    """
    if tl.empty:
        return _empty_svg("No events were extracted from the evidence.")
    plot_w = WIDTH - LABEL_W - UNDATED_W
    lanes_y = AXIS_H + BAND_H + GAP
    height = lanes_y + max(1, len(tl.lanes)) * LANE_H + 6
    out: list[str] = [
        f'<svg class="timeline" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-label="Timeline of {tl.total} events across {len(tl.lanes)} artifacts">'
    ]
    x0 = LABEL_W
    has_dates = tl.start is not None and tl.end is not None and tl.histogram
    bw = plot_w / tl.n_buckets if has_dates else 0.0

    # axis ticks and grid
    if has_dates:
        assert tl.start is not None and tl.end is not None
        span = (tl.end - tl.start).total_seconds()
        times_only = span <= 2 * 86400          # tick labels are clock times: name the day on the left
        for t in nice_ticks(tl.start, tl.end):
            x = x0 + (t - tl.start).total_seconds() / span * plot_w
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{AXIS_H - 4}" y2="{height - 4}" class="tl-grid"/>')
            if x - x0 < 30 or WIDTH - UNDATED_W - x < 30:
                continue                         # a label there would collide with its neighbours
            out.append(f'<text x="{x:.1f}" y="{AXIS_H - 8}" text-anchor="middle" class="tl-tick">'
                       f'{escape(tick_label(t, span))}</text>')
        if times_only:
            out.append(f'<text x="{x0 - 8}" y="{AXIS_H - 8}" text-anchor="end" class="tl-tick">'
                       f'{escape(tl.start.strftime("%Y-%m-%d"))} UTC</text>')
    out.append(f'<text x="{WIDTH - UNDATED_W / 2}" y="{AXIS_H - 8}" text-anchor="middle" '
               f'class="tl-tick">undated</text>')

    # density band: stacked by severity, worst at the bottom
    out.append(f'<rect x="{x0}" y="{AXIS_H}" width="{plot_w}" height="{BAND_H}" class="tl-band-bg"/>')
    out.append(f'<text x="{x0 - 8}" y="{AXIS_H + BAND_H / 2 + 4}" text-anchor="end" '
               f'class="tl-label">all events</text>')
    if has_dates:
        peak = max((sum(h) for h in tl.histogram), default=0)
        out.append(f'<text x="{x0 + 4}" y="{AXIS_H + 11}" class="tl-peak">peak {peak:,} / '
                   f'{escape(bucket_text(tl.bucket_seconds))}</text>')
        for i, counts in enumerate(tl.histogram):
            total = sum(counts)
            if not total:
                continue
            y = AXIS_H + BAND_H
            x = x0 + i * bw
            bar = max(2.0, total / peak * (BAND_H - 14))     # a lone event stays visible
            for sev in sorted(Severity, reverse=True):
                n = counts[int(sev)]
                if not n:
                    continue
                h = bar * n / total
                y -= h
                out.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(bw - 0.6, 0.8):.2f}" '
                           f'height="{max(h, 0.6):.2f}" fill="{SEVERITY_COLOUR[sev]}"/>')
    undated_band = tl.undated
    out.append(f'<text x="{WIDTH - UNDATED_W / 2}" y="{AXIS_H + BAND_H / 2 + 4}" text-anchor="middle" '
               f'class="tl-undated">{undated_band:,}</text>')

    # lanes: a small bar chart per artifact; bar height ~ sqrt(events / lane's busiest bucket),
    # its lower part (medium or worse, in proportion) in the colour of the worst severity
    labels = lane_labels([lane.artifact for lane in tl.lanes])
    for row, lane in enumerate(tl.lanes):
        y = lanes_y + row * LANE_H
        base = y + LANE_H - 2
        if row % 2 == 0:
            out.append(f'<rect x="0" y="{y}" width="{WIDTH}" height="{LANE_H}" class="tl-stripe"/>')
        label = (f"{OTHER_LANE[:-1]}: {lane.merged})" if lane.artifact == OTHER_LANE
                 else labels[row])
        text = (f'<text x="{x0 - 8}" y="{y + LANE_H - 6}" text-anchor="end" class="tl-label">'
                f'<title>{escape(lane.artifact)} \u2014 {lane.total:,} events</title>'
                f'{escape(label)}</text>')
        target = (anchors or {}).get(lane.artifact)
        out.append(f'<a href="#{_a(target)}">{text}</a>' if target else text)
        lane_max = max((c.total for c in lane.cells), default=1)
        for cell in lane.cells:
            x = x0 + cell.bucket * bw
            w = max(bw - 0.6, 1.5)
            h = max(3.0, (LANE_H - 5) * math.sqrt(cell.total / lane_max))
            worst = cell.max_severity
            notable = sum(cell.counts[int(Severity.MEDIUM):])
            mostly_low = cell.counts[int(Severity.LOW)] > cell.counts[int(Severity.INFO)]
            quiet = SEVERITY_COLOUR[Severity.LOW if mostly_low else Severity.INFO]
            parts = [f'<g><title>{escape(_cell_title(tl, lane.artifact, cell))}</title>'
                     f'<rect x="{x:.2f}" y="{base - h:.2f}" width="{w:.2f}" height="{h:.2f}" fill="{quiet}"/>']
            if notable:
                hn = max(2.5, h * notable / cell.total)
                parts.append(f'<rect x="{x:.2f}" y="{base - hn:.2f}" width="{w:.2f}" height="{hn:.2f}" '
                             f'fill="{SEVERITY_COLOUR[worst]}"/>')
            parts.append("</g>")
            out.append("".join(parts))
        if lane.undated:
            out.append(f'<text x="{WIDTH - UNDATED_W / 2}" y="{y + LANE_H - 6}" text-anchor="middle" '
                       f'class="tl-undated">{lane.undated:,}</text>')
    out.append(f'<line x1="{x0}" x2="{x0}" y1="{AXIS_H}" y2="{height - 4}" class="tl-axis"/>')
    out.append(f'<line x1="{WIDTH - UNDATED_W}" x2="{WIDTH - UNDATED_W}" y1="{AXIS_H}" '
               f'y2="{height - 4}" class="tl-axis"/>')
    out.append("</svg>")
    return "".join(out)


def bucket_text(seconds: float) -> str:
    """``12 s``, ``5.0 min``, ``2.4 h`` ... the width of one bucket."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"

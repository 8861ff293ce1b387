"""One connection's daily profile counts as a small chart and table, for its snapshot's metadata.

Dagster plots numeric metadata either across partitions (one point per creator: unrelated
creators joined by a line) or across events (every creator's materializations in turn: a
zigzag), never one partition over its own days. So the snapshot carries its connection's trend
itself: an SVG (one panel per count, each on its own scale, so a video count of 40 is not flattened
by 400,000 followers) as a markdown data URI, which the UI's markdown renders, plus the last days
as a table. Pure: rows in, text out.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date
from typing import Any

TREND_DAYS = 30  # days drawn: a month of daily snapshots
TABLE_DAYS = 7  # days listed under the chart
TREND_FIELDS = (
    ("follower_count", "followers"),
    ("likes_count", "likes"),
    ("video_count", "videos"),
)
_PANEL_W, _PANEL_H, _PAD = 260, 90, 28
_LEFT = 70  # room for a y label such as 11,432,288 left of each panel's line
_COLOUR = "#4f43dd"


def trend_rows(rows: Sequence[dict[str, Any]], days: int = TREND_DAYS) -> list[dict[str, Any]]:
    """The connection's last `days` snapshot rows, oldest first."""
    return sorted(rows, key=lambda row: row["snapshot_date"])[-days:]


def _points(rows: Sequence[dict[str, Any]], field: str) -> list[tuple[int, int]]:
    return [(i, int(row[field])) for i, row in enumerate(rows) if row.get(field) is not None]


def _panel(rows: Sequence[dict[str, Any]], field: str, label: str, left: int) -> list[str]:
    points = _points(rows, field)
    title_x = left + (_LEFT + _PANEL_W - _PAD) / 2
    parts = [f'<text x="{title_x}" y="14" text-anchor="middle" font-weight="bold">{label}</text>']
    if not points:
        return [*parts, f'<text x="{title_x}" y="55" text-anchor="middle">not granted</text>']
    low, high = min(v for _, v in points), max(v for _, v in points)
    span_x, span_y = max(1, len(rows) - 1), max(1, high - low)
    inner_w, inner_h = _PANEL_W - _LEFT - _PAD, _PANEL_H - 2 * _PAD

    def xy(index: int, value: int) -> str:
        x = left + _LEFT + index * inner_w / span_x
        y = _PAD + 4 + (high - value) * inner_h / span_y
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(i, v) for i, v in points)
    change = points[-1][1] - points[0][1]
    parts += [
        f'<polyline fill="none" stroke="{_COLOUR}" stroke-width="2" points="{line}"/>',
        f'<text x="{left + _LEFT - 4}" y="{_PAD + 8}" text-anchor="end">{high:,}</text>',
        f'<text x="{left + _LEFT - 4}" y="{_PANEL_H - _PAD + 4}" text-anchor="end">{low:,}</text>',
        f'<text x="{title_x}" y="{_PANEL_H - 6}" text-anchor="middle">{change:+,} in '
        f"{len(rows)} days</text>",
    ]
    return parts


def trend_svg(rows: Sequence[dict[str, Any]]) -> str:
    """Followers, likes and videos of the rows' days, one small panel each."""
    width = _PANEL_W * len(TREND_FIELDS)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_PANEL_H}" '
        f'viewBox="0 0 {width} {_PANEL_H}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{_PANEL_H}" fill="white"/>',
    ]
    for index, (field, label) in enumerate(TREND_FIELDS):
        parts += _panel(rows, field, label, index * _PANEL_W)
    return "".join([*parts, "</svg>"])


def _cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "n/a"


def trend_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The chart of the rows' days as an inline image, then the last TABLE_DAYS days as a table."""
    if not rows:
        return "no daily snapshot stored yet"
    first: date = rows[0]["snapshot_date"]
    last: date = rows[-1]["snapshot_date"]
    image = base64.b64encode(trend_svg(rows).encode()).decode()
    lines = [
        f"![followers, likes and videos from {first} to {last}](data:image/svg+xml;base64,{image})",
        "",
        "| day | " + " | ".join(label for _, label in TREND_FIELDS) + " |",
        "|---|" + "---:|" * len(TREND_FIELDS),
    ]
    for row in reversed(rows[-TABLE_DAYS:]):
        cells = " | ".join(_cell(row.get(field)) for field, _ in TREND_FIELDS)
        lines.append(f"| {row['snapshot_date']} | {cells} |")
    return "\n".join(lines)

"""`chart`: a connection's daily profile stats as an SVG line chart, read from the warehouse.

Made from `tiktok_profile_stats_daily`, the table a creator dashboard reads: one line per
connection, one point per snapshot day. SVG needs no plotting library and shows in a README.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from html import escape
from pathlib import Path

import click

from pipelines.cli.output import say
from pipelines.cli.preflight import preflight
from resources import settings
from resources.database import make_engine
from resources.warehouse import Warehouse
from services import tables

WIDTH, HEIGHT, MARGIN = 720, 360, 70
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")

Series = dict[str, list[tuple[date, int]]]


def svg_line_chart(series: Series, metric: str) -> str:
    """One polyline per connection over the snapshot days; the y axis starts at each minimum."""
    days = sorted({day for points in series.values() for day, _ in points})
    values = [value for points in series.values() for _, value in points]
    if not days or not values:
        raise ValueError("no snapshot to chart")
    low, high = min(values), max(values)
    span_x, span_y = max(1, len(days) - 1), max(1, high - low)

    def x(day: date) -> float:
        return MARGIN + days.index(day) * (WIDTH - 2 * MARGIN) / span_x

    def y(value: int) -> float:
        return HEIGHT - MARGIN - (value - low) * (HEIGHT - 2 * MARGIN) / span_y

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15">'
        f"{escape(metric)} per day (tiktok_profile_stats_daily)</text>",
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" '
        f'y2="{HEIGHT - MARGIN}" stroke="black"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>',
        f'<text x="{MARGIN - 6}" y="{y(low):.1f}" text-anchor="end">{low:,}</text>',
        f'<text x="{MARGIN - 6}" y="{y(high):.1f}" text-anchor="end">{high:,}</text>',
    ]
    for day in (days[0], days[-1]):
        parts.append(
            f'<text x="{x(day):.1f}" y="{HEIGHT - MARGIN + 18}" text-anchor="middle">{day}</text>'
        )
    for index, (name, points) in enumerate(sorted(series.items())):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{x(day):.1f},{y(value):.1f}" for day, value in sorted(points))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts += [  # a dot per snapshot day
            f'<circle cx="{x(day):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}"/>'
            for day, value in sorted(points)
        ]
        parts.append(
            f'<text x="{WIDTH - MARGIN + 4}" y="{MARGIN + 16 * index}" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def profile_series(wh: Warehouse, metric: str, names: tuple[str, ...]) -> Series:
    series: Series = defaultdict(list)
    for row in wh.rows(tables.PROFILE_STATS_DAILY):
        if (not names or row["connection_name"] in names) and row[metric] is not None:
            series[row["connection_name"]].append((row["snapshot_date"], int(row[metric])))
    return dict(series)


@click.command()
@click.option(
    "--metric",
    type=click.Choice(tables.STATS_FIELDS),
    default="follower_count",
    show_default=True,
)
@click.option("--connection", "names", multiple=True, help="Only these connections (repeat).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default="followers.svg")
def chart(metric: str, names: tuple[str, ...], out: Path) -> None:
    """Chart daily profile stats from the warehouse as SVG (after `demo --days 7`, say)."""
    preflight(state=False)
    wh = Warehouse(make_engine(settings.warehouse_url()))
    if not wh.has_table(tables.PROFILE_STATS_DAILY):
        raise click.ClickException(
            "no tiktok_profile_stats_daily table yet: run `tiktok-crm-sync demo --days 7` or "
            "`tiktok-crm-sync sync --all` first"
        )
    series = profile_series(wh, metric, names)
    if not series:
        raise click.ClickException(f"no {metric} snapshots (the stats scope may not be granted)")
    out.write_text(svg_line_chart(series, metric), encoding="utf-8")
    days = len({day for points in series.values() for day, _ in points})
    say(f"wrote {out}: {metric} of {len(series)} connections over {days} days")

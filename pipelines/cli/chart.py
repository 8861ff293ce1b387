"""`chart`: the connections' daily profile stats as SVG, read from the warehouse.

Made from `tiktok_profile_stats_daily`, the table a creator dashboard reads. Without
`--connection`, one small chart per connection, each on its own scale with its growth in percent
(creators differ by orders of magnitude: on one axis the small ones are flat lines), and a note
for connections without the stats scope; with it, the chosen ones on one axis. SVG needs no
plotting library and shows in a README.
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import date
from html import escape
from pathlib import Path

import click

from pipelines.cli.output import say
from pipelines.cli.preflight import preflight
from resources import settings
from resources.database import make_engine
from resources.warehouse import tiktok_tables as tables
from resources.warehouse.store import Warehouse

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


CELL_WIDTH, CELL_HEIGHT, CELL_MARGIN, COLUMNS = 300, 170, 44, 3


def _growth(points: list[tuple[date, int]]) -> str:
    first, last = points[0][1], points[-1][1]
    if first == 0:
        return f"{last - first:+,}"
    return f"{last - first:+,} ({(last - first) / first:+.1%})"


def _cell(name: str, points: list[tuple[date, int]], left: float, top: float) -> list[str]:
    """One creator's small chart, on its own y scale: a big creator does not flatten the rest."""
    points = sorted(points)
    days = [day for day, _ in points]
    low, high = min(v for _, v in points), max(v for _, v in points)
    inner_w, inner_h = CELL_WIDTH - 2 * CELL_MARGIN, CELL_HEIGHT - 2 * CELL_MARGIN + 10
    span_x, span_y = max(1, len(days) - 1), max(1, high - low)

    def xy(index: int, value: int) -> str:
        x = left + CELL_MARGIN + index * inner_w / span_x
        y = top + CELL_MARGIN + inner_h - (value - low) * inner_h / span_y
        return f"{x:.1f},{y:.1f}"

    base_y, axis_x = top + CELL_MARGIN + inner_h, left + CELL_MARGIN
    path = " ".join(xy(i, value) for i, (_, value) in enumerate(points))
    return [
        f'<text x="{left + 8}" y="{top + 18}" font-size="13" font-weight="bold">'
        f"{escape(name)}</text>",
        f'<text x="{left + 8}" y="{top + 34}" fill="#555">{points[-1][1]:,}, '
        f"{escape(_growth(points))} since {days[0]}</text>",
        f'<line x1="{axis_x}" y1="{base_y}" x2="{left + CELL_WIDTH - CELL_MARGIN}" y2="{base_y}" '
        'stroke="#999"/>',
        f'<text x="{axis_x - 4}" y="{base_y}" text-anchor="end" font-size="10">{low:,}</text>',
        f'<text x="{axis_x - 4}" y="{top + CELL_MARGIN + 4}" text-anchor="end" font-size="10">'
        f"{high:,}</text>",
        f'<text x="{axis_x}" y="{base_y + 14}" font-size="10">{days[0]}</text>',
        f'<text x="{left + CELL_WIDTH - CELL_MARGIN}" y="{base_y + 14}" text-anchor="end" '
        f'font-size="10">{days[-1]}</text>',
        f'<polyline fill="none" stroke="{COLOURS[0]}" stroke-width="2" points="{path}"/>',
        *(  # a dot per snapshot day
            '<circle cx="{}" cy="{}" r="2.5" fill="{}"/>'.format(*xy(i, v).split(","), COLOURS[0])
            for i, (_, v) in enumerate(points)
        ),
    ]


def svg_small_multiples(series: Series, metric: str, without: list[str]) -> str:
    """One small chart per connection, each on its own scale; a note names those without data."""
    if not series:
        raise ValueError("no snapshot to chart")
    names = sorted(series)
    columns = min(COLUMNS, len(names))
    rows = -(-len(names) // columns)
    notes = [f"no {metric}: {name} (the user.info.stats scope is not granted)" for name in without]
    width = columns * CELL_WIDTH
    height = 40 + rows * CELL_HEIGHT + 18 * len(notes) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15">'
        f"{escape(metric)} per day, one chart per connection (tiktok_profile_stats_daily)</text>",
    ]
    for index, name in enumerate(names):
        row, column = divmod(index, columns)
        parts += _cell(name, series[name], column * CELL_WIDTH, 40 + row * CELL_HEIGHT)
    for index, note in enumerate(notes):
        y = 40 + rows * CELL_HEIGHT + 18 * index + 4
        parts.append(f'<text x="8" y="{y}" fill="#a00">{escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def profile_series(wh: Warehouse, metric: str, names: tuple[str, ...]) -> Series:
    series: Series = defaultdict(list)
    for row in wh.rows(tables.PROFILE_STATS_DAILY):
        if (not names or row["connection_name"] in names) and row[metric] is not None:
            series[row["connection_name"]].append((row["snapshot_date"], int(row[metric])))
    return dict(series)


def synced_connections(wh: Warehouse) -> list[str]:
    """Every connection with a synced profile, stats scope or not."""
    if not wh.has_table(tables.PROFILES):
        return []
    return sorted({row["connection_name"] for row in wh.rows(tables.PROFILES)})


@click.command()
@click.option(
    "--metric",
    type=click.Choice(tables.STATS_FIELDS),
    default="follower_count",
    show_default=True,
)
@click.option("--connection", "names", multiple=True, help="Only these connections (repeat).")
@click.option("--demo", is_flag=True, help="Chart the demo's warehouse, not the live one.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SVG file to write [default: charts/METRIC.svg in the data folder].",
)
def chart(metric: str, names: tuple[str, ...], demo: bool, out: Path | None) -> None:
    """Chart daily profile stats from the warehouse as SVG (after `demo --days 7`, say)."""
    environ = {**os.environ, "TIKTOK_CRM_SYNC_MODE": settings.MODE_DEMO} if demo else os.environ
    if not demo:
        preflight(state=False)
    wh = Warehouse(make_engine(settings.warehouse_url(environ)))
    if not wh.has_table(tables.PROFILE_STATS_DAILY):
        hint = "" if demo else "; the demo's history is charted with `chart --demo`"
        raise click.ClickException(
            "no tiktok_profile_stats_daily table yet: run `tiktok-crm-sync demo --days 7` or "
            f"`tiktok-crm-sync sync --all` first{hint}"
        )
    series = profile_series(wh, metric, names)
    if not series:
        raise click.ClickException(f"no {metric} snapshots (the stats scope may not be granted)")
    out = out or settings.data_dir(environ) / "charts" / f"{metric}.svg"
    out.parent.mkdir(parents=True, exist_ok=True)
    if names:  # the chosen connections side by side, on one axis
        out.write_text(svg_line_chart(series, metric), encoding="utf-8")
        without: list[str] = [name for name in names if name not in series]
    else:
        without = [name for name in synced_connections(wh) if name not in series]
        out.write_text(svg_small_multiples(series, metric, without), encoding="utf-8")
    days = len({day for points in series.values() for day, _ in points})
    say(f"wrote {out}: {metric} of {len(series)} connections over {days} days")
    for name in without:
        say(f"no {metric} for {name}: its user.info.stats scope is not granted")

"""A connection's data at a glance: its most viewed videos as a markdown table (no secrets:
titles and counts only, never URLs with tokens)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from resources.warehouse.store import Warehouse
from services.quality_queries import VIDEOS

TOP_VIDEOS = 5
_TITLE_CHARS = 80


def markdown_cell(value: Any) -> str:
    """A value safe inside one markdown table cell: no pipes, no line breaks, bounded length."""
    text = " ".join(str(value if value is not None else "").split())
    if len(text) > _TITLE_CHARS:
        text = text[: _TITLE_CHARS - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|") or "(untitled)"


def top_videos(wh: Warehouse, connection: str, limit: int = TOP_VIDEOS) -> list[dict[str, Any]]:
    """The connection's live videos with the most views, most viewed first."""
    query = (
        sa.select(VIDEOS.c.id, VIDEOS.c.title, VIDEOS.c.video_description, VIDEOS.c.view_count)
        .where(VIDEOS.c.connection_name == connection, VIDEOS.c.deleted_at.is_(None))
        .order_by(VIDEOS.c.view_count.desc().nulls_last(), VIDEOS.c.id)
        .limit(limit)
    )
    with wh.engine.connect() as db:
        return [dict(row._mapping) for row in db.execute(query)]


def top_videos_markdown(videos: list[dict[str, Any]]) -> str:
    lines = ["| # | title | views | id |", "|---|---|---|---|"]
    for rank, video in enumerate(videos, start=1):
        title = markdown_cell(video.get("title") or video.get("video_description"))
        views = video.get("view_count")
        lines.append(
            f"| {rank} | {title} | {views if views is not None else 'n/a'} | "
            f"{markdown_cell(video['id'])} |"
        )
    if not videos:
        lines.append("| | no videos stored | | |")
    return "\n".join(lines)

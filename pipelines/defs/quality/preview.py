"""Metadata that shows a connection's data at a glance in the Dagster UI (no secrets: titles
and counts only, never URLs with tokens)."""

from typing import Any

import dagster as dg
import sqlalchemy as sa

from pipelines.defs.quality.queries import VIDEOS
from resources.tiktok.scopes import column_description
from resources.warehouse import Warehouse

TOP_VIDEOS = 5
_TITLE_CHARS = 80


def column_schema(columns: list[tuple[str, str]]) -> dg.TableSchema:
    """The warehouse table's pipeline columns, for `dagster/column_schema`, each described with
    its meaning and the TikTok scope it needs (from the one field list, `resources.tiktok.scopes`).
    """
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, kind, description=column_description(name))
            for name, kind in columns
        ]
    )


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


def top_videos_markdown(videos: list[dict[str, Any]]) -> dg.MetadataValue:
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
    return dg.MetadataValue.md("\n".join(lines))

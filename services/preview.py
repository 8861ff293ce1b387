"""A connection's data at a glance: its most viewed videos (`resources.warehouse.reads.top_videos`)
as a markdown table (no secrets: titles and counts only, never URLs with tokens)."""

from __future__ import annotations

from typing import Any

_TITLE_CHARS = 80


def markdown_cell(value: Any) -> str:
    """A value safe inside one markdown table cell: no pipes, no line breaks, bounded length."""
    text = " ".join(str(value if value is not None else "").split())
    if len(text) > _TITLE_CHARS:
        text = text[: _TITLE_CHARS - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|") or "(untitled)"


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

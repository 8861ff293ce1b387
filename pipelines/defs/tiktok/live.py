"""Live runs leave demo connections out.

The demo keeps its connections in its own home (`resources.settings.demo_home`), but a state
database from an older checkout may still hold some. A live sync of them could only fail (the
resource refuses demo data in live mode), so the schedule, the partitions sensor and `sync --all`
leave them out and say so in one line, rather than failing and turning partitions red.
"""

from collections.abc import Iterable

from resources import settings
from resources.connections.store import Connection
from resources.tiktok.apps import DEMO_APP


def leave_out_demo(
    connections: Iterable[Connection], mode: str | None = None
) -> tuple[list[str], list[str]]:
    """(names to sync, demo names left out); demo mode leaves nothing out."""
    kept: list[str] = []
    left_out: list[str] = []
    demo_mode = (mode or settings.mode()) == settings.MODE_DEMO
    for connection in connections:
        (kept if demo_mode or connection.app != DEMO_APP else left_out).append(connection.name)
    return kept, left_out


def left_out_line(names: list[str]) -> str:
    return (
        f"left out {len(names)} demo connection(s) ({', '.join(names)}): live runs sync only "
        "live connections; `tiktok-crm-sync connections disconnect NAME` removes them"
    )

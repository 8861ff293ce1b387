"""The budget's store named by TIKTOK_RATE_LIMIT_URL: a SQLite file, Redis or PostgreSQL."""

from __future__ import annotations

from resources.ratelimit.postgres_store import PostgresStore
from resources.ratelimit.redis_store import RedisStore
from resources.ratelimit.sqlite_store import SQLiteStore
from resources.ratelimit.stores import BudgetConfigError, BudgetStore, redact_url_safe

STORES: dict[str, type[BudgetStore]] = {
    "sqlite": SQLiteStore,
    "redis": RedisStore,
    "rediss": RedisStore,
    "postgresql": PostgresStore,
    "postgres": PostgresStore,
}


def open_store(url: str) -> BudgetStore:
    backend = url.split(":", 1)[0].split("+", 1)[0].lower()
    if backend not in STORES:
        raise BudgetConfigError(
            f"TIKTOK_RATE_LIMIT_URL {redact_url_safe(url)!r}: use sqlite:///PATH, "
            "redis://HOST:PORT/DB or postgresql://USER@HOST/DB"
        )
    return STORES[backend](url)

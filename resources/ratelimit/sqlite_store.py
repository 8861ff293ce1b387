"""The budget in a SQLite file: every process on one machine shares it through a file lock."""

from __future__ import annotations

import sqlite3

from pyrate_limiter import AbstractBucket, Rate, SQLiteBucket
from sqlalchemy.engine import make_url

from resources.ratelimit.stores import (
    LEARNED_TABLE,
    BudgetConfigError,
    BudgetStore,
    LearnedLimit,
    table_name,
)


class SQLiteStore(BudgetStore):
    kind = "sqlite"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        path = make_url(url).database
        if not path or path == ":memory:":
            raise BudgetConfigError(
                "TIKTOK_RATE_LIMIT_URL: an in-memory SQLite budget is not shared; "
                "name a file, e.g. sqlite:////var/lib/tiktok-crm-sync/budget.db"
            )
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self, key: str, rates: list[Rate]) -> AbstractBucket:
        # The file lock makes pyrate-limiter's count-then-insert atomic across processes: a
        # process that meets it waits its turn.
        return SQLiteBucket.init_from_file(
            rates, table=table_name(key), db_path=self.path, use_file_lock=True
        )

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            # Autocommit: each statement below is atomic on its own. Any thread of this process
            # may use it: `BudgetStore.lock` serializes them (a sync runs connections in threads).
            db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {LEARNED_TABLE} "
                "(key TEXT PRIMARY KEY, limit_per_minute REAL NOT NULL, cut_at REAL NOT NULL, "
                "seen REAL)"
            )
            self._db = db
        return self._db

    def count(self, bucket: AbstractBucket, start_ms: int, end_ms: int) -> int:
        query = (
            f"SELECT COUNT(*) FROM '{bucket.table}' "
            "WHERE item_timestamp > ? AND item_timestamp <= ?"
        )
        return int(self._conn().execute(query, (start_ms, end_ms)).fetchone()[0])

    def read_learned(self, key: str) -> LearnedLimit | None:
        row = (
            self._conn()
            .execute(
                f"SELECT limit_per_minute, cut_at, seen FROM {LEARNED_TABLE} WHERE key = ?", (key,)
            )
            .fetchone()
        )
        return LearnedLimit.from_row(row)

    def swap_learned(self, key: str, expected: LearnedLimit | None, new: LearnedLimit) -> bool:
        db = self._conn()
        if expected is None:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO {LEARNED_TABLE} VALUES (?, ?, ?, ?)",
                (key, new.limit, new.cut_at, new.seen),
            )
        else:
            cursor = db.execute(
                f"UPDATE {LEARNED_TABLE} SET limit_per_minute = ?, cut_at = ?, seen = ? "
                "WHERE key = ? AND limit_per_minute = ? AND cut_at = ?",
                (new.limit, new.cut_at, new.seen, key, expected.limit, expected.cut_at),
            )
        return cursor.rowcount == 1

    def close(self, buckets: list[AbstractBucket]) -> None:
        super().close(buckets)
        if self._db is not None:
            self._db.close()
            self._db = None

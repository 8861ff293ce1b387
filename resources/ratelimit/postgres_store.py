"""The budget in PostgreSQL: every machine shares it; a put waits for an advisory lock."""

from __future__ import annotations

import hashlib
from typing import Any

from pyrate_limiter import AbstractBucket, PostgresBucket, Rate, RateItem
from pyrate_limiter.abstracts.algorithm import ADMITTED
from sqlalchemy.engine import make_url

from resources.ratelimit.stores import (
    LEARNED_TABLE,
    BudgetConfigError,
    BudgetStore,
    LearnedLimit,
    table_name,
)

POSTGRES_LOCK_TIMEOUT_MS = 10_000  # a put holds the lock for a few queries; far longer is a fault


class QueuingPostgresBucket(PostgresBucket):
    """pyrate-limiter's PostgreSQL bucket, but a put that meets another one waits its turn.

    The parent takes `LOCK TABLE ... NOWAIT` and refuses on contention. Here the count-then-insert
    runs under a transaction-level advisory lock on the table, taken blocking (with a lock
    timeout, so a stuck holder becomes an error rather than a hang).
    """

    def put(self, item: RateItem) -> bool:
        if item.weight == 0:
            return self._record(item, ADMITTED)
        from psycopg import sql

        filters = sql.SQL(", ").join(
            [sql.SQL("COUNT(*) FILTER (WHERE item_timestamp >= TO_TIMESTAMP(%s))")]
            * len(self.rates)
        )
        count_windows = sql.SQL("SELECT {fields} FROM {table}").format(
            fields=filters, table=sql.Identifier(self._full_tbl)
        )
        with self._get_conn() as conn:
            conn.execute(f"SET LOCAL lock_timeout = {POSTGRES_LOCK_TIMEOUT_MS}")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_advisory_key(self._full_tbl),))
            params = [self._algorithm.window_start(r, item.timestamp) / 1000 for r in self.rates]
            counts = conn.execute(count_windows, params).fetchone()

            def peek_timestamp(offset: int) -> int | None:
                row = conn.execute(self._q_peek, (offset,)).fetchone()
                return None if row is None else int(row[2])

            decision = self._algorithm.decide(
                self.rates, counts, item.weight, item.timestamp, peek_timestamp
            )
            if not self._record(item, decision):
                return False
            conn.execute(self._q_put, (item.name, item.weight, item.timestamp / 1000, item.weight))
        return True


def _advisory_key(table: str) -> int:
    digest = hashlib.blake2b(f"tiktok-crm-sync:budget:{table}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore(BudgetStore):
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._pool: Any = None

    def _connections(self) -> Any:
        if self._pool is None:
            try:
                from psycopg_pool import ConnectionPool
            except ImportError as err:
                raise BudgetConfigError(
                    "TIKTOK_RATE_LIMIT_URL names PostgreSQL but `psycopg-pool` is not "
                    "installed: pip install 'psycopg[binary]>=3.2' 'psycopg-pool>=3.2'"
                ) from err
            # libpq wants postgresql://, not SQLAlchemy's postgresql+psycopg://.
            conninfo = make_url(self.url).set(drivername="postgresql")
            pool = ConnectionPool(
                conninfo.render_as_string(hide_password=False), min_size=1, max_size=4, open=True
            )
            with pool.connection() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_advisory_key(LEARNED_TABLE),))
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {LEARNED_TABLE} (key TEXT PRIMARY KEY, "
                    "limit_per_minute DOUBLE PRECISION NOT NULL, "
                    "cut_at DOUBLE PRECISION NOT NULL, seen DOUBLE PRECISION)"
                )
            self._pool = pool
        return self._pool

    def open(self, key: str, rates: list[Rate]) -> AbstractBucket:
        return QueuingPostgresBucket(self._connections(), table_name(key), rates)

    def count(self, bucket: AbstractBucket, start_ms: int, end_ms: int) -> int:
        from psycopg import sql

        query = sql.SQL(
            "SELECT COUNT(*) FROM {table} WHERE item_timestamp > TO_TIMESTAMP(%s) "
            "AND item_timestamp <= TO_TIMESTAMP(%s)"
        ).format(table=sql.Identifier(bucket._full_tbl))
        with self._connections().connection() as conn:
            return int(conn.execute(query, (start_ms / 1000, end_ms / 1000)).fetchone()[0])

    def read_learned(self, key: str) -> LearnedLimit | None:
        with self._connections().connection() as conn:
            row = conn.execute(
                f"SELECT limit_per_minute, cut_at, seen FROM {LEARNED_TABLE} WHERE key = %s",
                (key,),
            ).fetchone()
        return LearnedLimit.from_row(row)

    def swap_learned(self, key: str, expected: LearnedLimit | None, new: LearnedLimit) -> bool:
        with self._connections().connection() as conn:
            if expected is None:
                cursor = conn.execute(
                    f"INSERT INTO {LEARNED_TABLE} VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (key, new.limit, new.cut_at, new.seen),
                )
            else:
                cursor = conn.execute(
                    f"UPDATE {LEARNED_TABLE} SET limit_per_minute = %s, cut_at = %s, seen = %s "
                    "WHERE key = %s AND limit_per_minute = %s AND cut_at = %s",
                    (new.limit, new.cut_at, new.seen, key, expected.limit, expected.cut_at),
                )
            return cursor.rowcount == 1

    def close(self, buckets: list[AbstractBucket]) -> None:
        if self._pool is not None:  # the buckets share the pool: close it once
            self._pool.close()
        self._pool = None

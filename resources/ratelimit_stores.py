"""Where the shared request budget lives: SQLite file, Redis or PostgreSQL, one class per store.

Each store keeps two things per budget key (`<scope>.<endpoint>`), both visible to every process
and machine using it:

- the sliding-window log of admitted requests (a pyrate-limiter bucket), and
- the limit TikTok taught us (`LearnedLimit`): changed only by compare-and-set, so two processes
  that meet a 429 at the same moment cut the limit once, not twice.

Each store counts every entry from the window's start onward, later stamps included: a process
stamps its request before it waits for the store, so entries can arrive out of order, and an entry
stamped after ours still shares windows with it (pyrate-limiter's Redis script stopped at `now`).

Under contention every store queues: SQLite takes a file lock, Redis runs one Lua script at a
time, and PostgreSQL waits for a transaction-level advisory lock (pyrate-limiter's own PostgreSQL
bucket refuses with `LOCK TABLE ... NOWAIT` instead, which turned contention into refusals).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from pyrate_limiter import AbstractBucket, PostgresBucket, Rate, RateItem, RedisBucket, SQLiteBucket
from pyrate_limiter.abstracts.algorithm import ADMITTED
from pyrate_limiter.buckets.redis_bucket import LuaScript
from sqlalchemy.engine import make_url

from resources.database import redact_url

POSTGRES_LOCK_TIMEOUT_MS = 10_000  # a put holds the lock for a few queries; far longer is a fault
REDIS_LEARNED_TTL_S = 7 * 24 * 3600  # a learned limit untouched for a week has long recovered
LEARNED_TABLE = "tiktok_budget_limits"
_TABLE_SAFE = re.compile(r"[^a-z0-9_]")
_REDIS_CAS = """
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


_REDIS_COUNT_TO_NOW = "redis.call('ZCOUNT', bucket, window_start, now)"
_REDIS_PUT = LuaScript.PUT_ITEM.replace(
    _REDIS_COUNT_TO_NOW, "redis.call('ZCOUNT', bucket, window_start, '+inf')"
)


class BudgetConfigError(ValueError):
    """The budget's URL or limits are malformed; the message says what to write instead."""


@dataclass(frozen=True)
class LearnedLimit:
    """What TikTok taught one key: the limit per minute set by the last cut, when (epoch s), and
    how many requests the window held when TikTok refused (None if unknown)."""

    limit: float
    cut_at: float
    seen: float | None = None

    def encode(self) -> str:
        seen = "" if self.seen is None else repr(self.seen)
        return f"{self.limit!r},{self.cut_at!r},{seen}"

    @classmethod
    def decode(cls, raw: str | bytes | None) -> LearnedLimit | None:
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        limit, cut_at, seen, *_ = [*text.split(","), "", ""]
        return cls(float(limit), float(cut_at), float(seen) if seen else None)

    @classmethod
    def from_row(cls, row: tuple | None) -> LearnedLimit | None:
        if row is None:
            return None
        return cls(float(row[0]), float(row[1]), None if row[2] is None else float(row[2]))


def redact_url_safe(url: str) -> str:
    try:
        return redact_url(url)
    except Exception:  # an unparsable URL may hold a password anywhere: show its scheme only
        return url.split(":", 1)[0] + ":..."


def table_name(key: str) -> str:
    # Readable, and unique even when two keys differ only in characters SQL names cannot hold.
    digest = hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
    # Short enough that PostgreSQL's 63-character names keep the digest (with its prefix).
    return f"tiktok_budget_{_TABLE_SAFE.sub('_', key.lower())[:20]}_{digest}"


def open_store(url: str) -> BudgetStore:
    backend = url.split(":", 1)[0].split("+", 1)[0].lower()
    kinds = {"sqlite": SQLiteStore, "redis": RedisStore, "rediss": RedisStore}
    kinds |= {"postgresql": PostgresStore, "postgres": PostgresStore}
    if backend not in kinds:
        raise BudgetConfigError(
            f"TIKTOK_RATE_LIMIT_URL {redact_url_safe(url)!r}: use sqlite:///PATH, "
            "redis://HOST:PORT/DB or postgresql://USER@HOST/DB"
        )
    return kinds[backend](url)


class BudgetStore:
    """One store; `lock` serializes this process's use of it (its connections are not shared)."""

    kind = "store"

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()

    def open(self, key: str, rates: list[Rate]) -> AbstractBucket:
        raise NotImplementedError

    def count(self, bucket: AbstractBucket, start_ms: int, end_ms: int) -> int:
        """Admitted requests with start_ms < timestamp <= end_ms."""
        raise NotImplementedError

    def read_learned(self, key: str) -> LearnedLimit | None:
        raise NotImplementedError

    def swap_learned(self, key: str, expected: LearnedLimit | None, new: LearnedLimit) -> bool:
        """Store `new` if the stored value is still `expected`; False if another process won."""
        raise NotImplementedError

    def close(self, buckets: list[AbstractBucket]) -> None:
        for bucket in buckets:
            bucket.close()


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


class RedisStore(BudgetStore):
    kind = "redis"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._client: Any = None
        self._cas: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            try:
                from redis import Redis
            except ImportError as err:
                raise BudgetConfigError(
                    "TIKTOK_RATE_LIMIT_URL names Redis but the `redis` package is not "
                    "installed: pip install 'redis>=5'"
                ) from err
            self._client = Redis.from_url(self.url)
            self._cas = self._client.register_script(_REDIS_CAS)
        return self._client

    def open(self, key: str, rates: list[Rate]) -> AbstractBucket:
        if _REDIS_COUNT_TO_NOW not in LuaScript.PUT_ITEM:  # a pyrate-limiter upgrade moved it
            raise BudgetConfigError("pyrate-limiter's Redis script changed: pin pyrate-limiter 4.6")
        client = self._redis()
        key = f"tiktok-crm-sync:budget:{key}"
        return RedisBucket(rates, client, key, client.script_load(_REDIS_PUT))

    def count(self, bucket: AbstractBucket, start_ms: int, end_ms: int) -> int:
        return int(self._redis().zcount(bucket.bucket_key, f"({start_ms}", end_ms))

    def read_learned(self, key: str) -> LearnedLimit | None:
        return LearnedLimit.decode(self._redis().get(self._learned_key(key)))

    def swap_learned(self, key: str, expected: LearnedLimit | None, new: LearnedLimit) -> bool:
        self._redis()
        old = "" if expected is None else expected.encode()
        args = [old, new.encode(), REDIS_LEARNED_TTL_S]
        return bool(self._cas(keys=[self._learned_key(key)], args=args))

    @staticmethod
    def _learned_key(key: str) -> str:
        return f"tiktok-crm-sync:budget-learned:{key}"

    def close(self, buckets: list[AbstractBucket]) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None


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

"""The budget in Redis: every machine shares it; one Lua script at a time admits a request."""

from __future__ import annotations

from typing import Any

from pyrate_limiter import AbstractBucket, Rate, RedisBucket
from pyrate_limiter.buckets.redis_bucket import LuaScript

from resources.ratelimit.stores import BudgetConfigError, BudgetStore, LearnedLimit

REDIS_LEARNED_TTL_S = 7 * 24 * 3600  # a learned limit untouched for a week has long recovered
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

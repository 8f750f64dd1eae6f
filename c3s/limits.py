"""Rate limits on Redis: fixed one-window counters per (bucket, key), shared by every API process
(in process on the embedded default, which has no Redis). A request past its allowance gets
:class:`TooManyRequests`, a 429 whose `Retry-After` is the rest of the window.

The allowances are settings (:class:`c3s.config.Config`): wrong passwords per account and login
attempts per address are tight; guest creation and joins per address are stadium-sized, since a
carrier's NAT puts thousands of phones behind one address."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from c3s.errors import C3SError

log = logging.getLogger(__name__)

KEY_PREFIX = "c3s:rate:"


class TooManyRequests(C3SError):
    status = 429

    def __init__(self, message: str, *, retry_after_s: int, detail: dict | None = None):
        super().__init__(message, detail={"retry_after_s": retry_after_s, **(detail or {})})
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Rate:
    """At most `count` hits per `period_s` seconds."""

    count: int
    period_s: int = 60

    def __str__(self) -> str:
        return f"{self.count} per {self.period_s} s"


class _MemoryCounters:
    """The same counters in process (embedded default, tests without Redis)."""

    def __init__(self):
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, cost: int, period_s: int) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, ends = self._counts.get(key, (0, 0.0))
            if ends <= now:
                count, ends = 0, now + period_s
            count += cost
            self._counts[key] = (count, ends)
            return count, max(1, int(ends - now + 0.999))

    def delete(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


class _RedisCounters:
    def __init__(self, client):
        self.client = client

    def add(self, key: str, cost: int, period_s: int) -> tuple[int, int]:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, 0, ex=period_s, nx=True)
        pipe.incrby(key, cost)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
        return int(count), max(1, int(ttl))

    def delete(self, key: str) -> None:
        self.client.delete(key)


class Limiter:
    """Counts hits in Redis (from `redis_factory`, None meaning in process)."""

    def __init__(self, redis_factory: Callable[[], Any]):
        self._redis_factory = redis_factory
        self._counters = None
        self._lock = threading.Lock()

    @property
    def counters(self):
        if self._counters is None:
            with self._lock:
                if self._counters is None:
                    client = self._redis_factory()
                    self._counters = _RedisCounters(client) if client is not None else _MemoryCounters()
        return self._counters

    def hit(self, bucket: str, key: str, rate: Rate, *, what: str, cost: int = 1,
            fail_open: bool = False) -> None:
        """Count one hit; past the allowance raise TooManyRequests ("too many `what`"). With
        `fail_open`, a Redis that does not answer lets the request through (logged)."""
        from redis.exceptions import RedisError

        try:
            count, retry_after_s = self.counters.add(f"{KEY_PREFIX}{bucket}:{key}", cost, rate.period_s)
        except RedisError as error:
            if not fail_open:
                raise
            log.warning("rate limit %s not counted, Redis does not answer: %s", bucket, error)
            return
        if count > rate.count:
            raise TooManyRequests(f"too many {what} (at most {rate}); try again in {retry_after_s} s",
                                  retry_after_s=retry_after_s, detail={"limit": rate.count,
                                                                       "period_s": rate.period_s})

    def check(self, bucket: str, key: str, rate: Rate, *, what: str) -> None:
        """Raise TooManyRequests when `key` has used its whole allowance, without counting."""
        count, retry_after_s = self.counters.add(f"{KEY_PREFIX}{bucket}:{key}", 0, rate.period_s)
        if count >= rate.count:
            raise TooManyRequests(f"too many {what} (at most {rate}); try again in {retry_after_s} s",
                                  retry_after_s=retry_after_s, detail={"limit": rate.count,
                                                                       "period_s": rate.period_s})

    def reset(self, bucket: str, key: str) -> None:
        self.counters.delete(f"{KEY_PREFIX}{bucket}:{key}")

"""Where built colour maps live: a bytes cache with expiry (Redis, or this process's memory on the
embedded default), and the bounded in-process LRU the reader keeps what it has read in."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

V = TypeVar("V")


class ShowCache(Protocol):
    """Bytes by key with expiry: Redis in production, :class:`MemoryCache` on the embedded default."""

    def get(self, key: str) -> bytes | None: ...

    def getrange(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` inclusive (Redis GETRANGE); b"" for a missing key."""
        ...

    def put_many(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]], ttl_s: int) -> None:
        """Set every ``(key, value)``; an iterable is consumed as it goes (big builds stream)."""
        ...

    def expire(self, keys: Sequence[str], ttl_s: int) -> None: ...

    def add(self, key: str, value: bytes, ttl_s: int) -> bool:
        """Set only if absent (SET NX EX); True when this call set it."""
        ...

    def delete(self, *keys: str) -> None: ...


def _pairs(items) -> Iterable[tuple[str, bytes]]:
    return items.items() if isinstance(items, Mapping) else items


class RedisCache:
    """:class:`ShowCache` on a redis-py client."""

    BATCH_BYTES = 32 * 1024 * 1024

    def __init__(self, client):
        self.client = client

    def get(self, key: str) -> bytes | None:
        return self.client.get(key)

    def getrange(self, key: str, start: int, end: int) -> bytes:
        return self.client.getrange(key, start, end)

    def put_many(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]], ttl_s: int) -> None:
        pipe, pending = self.client.pipeline(transaction=False), 0
        for key, value in _pairs(items):
            pipe.set(key, value, ex=ttl_s)
            pending += len(value)
            if pending >= self.BATCH_BYTES:
                pipe.execute()
                pending = 0
        pipe.execute()

    def expire(self, keys: Sequence[str], ttl_s: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.expire(key, ttl_s)
        pipe.execute()

    def add(self, key: str, value: bytes, ttl_s: int) -> bool:
        return bool(self.client.set(key, value, ex=ttl_s, nx=True))

    def delete(self, *keys: str) -> None:
        if keys:
            self.client.delete(*keys)


class MemoryCache:
    """:class:`ShowCache` in this process's memory, for the embedded default (no Redis)."""

    def __init__(self):
        self._items: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None or item[1] < time.monotonic():
            return None
        return item[0]

    def getrange(self, key: str, start: int, end: int) -> bytes:
        value = self.get(key)
        return b"" if value is None else value[start : end + 1]

    def put_many(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]], ttl_s: int) -> None:
        deadline = time.monotonic() + ttl_s
        pairs = [(k, (bytes(v), deadline)) for k, v in _pairs(items)]
        with self._lock:
            self._purge()
            self._items.update(pairs)

    def expire(self, keys: Sequence[str], ttl_s: int) -> None:
        deadline = time.monotonic() + ttl_s
        with self._lock:
            for key in keys:
                if key in self._items:
                    self._items[key] = (self._items[key][0], deadline)

    def add(self, key: str, value: bytes, ttl_s: int) -> bool:
        with self._lock:
            if self.get(key) is not None:
                return False
            self._items[key] = (bytes(value), time.monotonic() + ttl_s)
            return True

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._items.pop(key, None)

    def _purge(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, deadline) in self._items.items() if deadline < now]:
            del self._items[key]


_memory_caches: dict[str, MemoryCache] = {}
_memory_lock = threading.Lock()


def cache_for(redis, database_url: Any) -> ShowCache:
    """Redis when there is a client; otherwise this process's in-memory cache for that database
    (keyed by its URL, so two embedded apps in one process never share maps)."""
    if redis is not None:
        return RedisCache(redis)
    with _memory_lock:
        return _memory_caches.setdefault(str(database_url), MemoryCache())



class LRU(Generic[V]):
    """A thread-safe map bounded by ``max_items`` entries and, with ``size``, by ``max_bytes``:
    putting past a bound drops the least recently used entries first."""

    def __init__(self, max_items: int, *, max_bytes: int | None = None,
                 size: Callable[[Any], int] = len):
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None and self.max_bytes is not None:
                self._bytes -= self._size(old)
            added = self._size(value) if self.max_bytes is not None else 0
            while self._items and (len(self._items) >= self.max_items
                                   or (self.max_bytes is not None and self._bytes + added > self.max_bytes)):
                _, dropped = self._items.popitem(last=False)
                if self.max_bytes is not None:
                    self._bytes -= self._size(dropped)
            self._items[key] = value
            self._bytes += added

    def get_or(self, key: Hashable, make: Callable[[], V | None]) -> V | None:
        """The value held under ``key``, else ``make()`` (held unless it is None)."""
        value = self.get(key)
        if value is None:
            value = make()
            if value is not None:
                self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

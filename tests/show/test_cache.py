"""The reader's bounded LRU and the in-process show cache."""

import threading

from c3s.show import LRU, MemoryCache


def test_the_lru_drops_the_least_recently_used_entry_first():
    held = LRU(3)
    for key in "abc":
        held.put(key, key.upper())
    assert held.get("a") == "A"  # "a" is now the most recently used
    held.put("d", "D")
    assert (held.get("b"), len(held)) == (None, 3)
    assert [held.get(k) for k in "acd"] == ["A", "C", "D"]


def test_the_lru_is_bounded_by_bytes_too():
    held = LRU(100, max_bytes=10)
    held.put(1, b"12345")
    held.put(2, b"123456")  # 11 bytes with the first: the first goes
    assert (held.get(1), held.get(2)) == (None, b"123456")
    held.put(2, b"1")  # replacing an entry counts its new size only
    held.put(3, b"123456789")
    assert (held.get(2), held.get(3)) == (b"1", b"123456789")
    held.put(4, b"x" * 50)  # bigger than the bound on its own: kept alone
    assert (len(held), held.get(4)) == (1, b"x" * 50)


def test_get_or_makes_once_and_does_not_hold_none():
    held, made = LRU(4), []

    def make():
        made.append(1)
        return "value"

    assert held.get_or("k", make) == held.get_or("k", make) == "value"
    assert made == [1]
    assert held.get_or("missing", lambda: None) is None and len(held) == 1


def test_the_lru_stays_consistent_under_threads():
    held = LRU(64, max_bytes=64 * 8)

    def churn(offset: int):
        for i in range(2000):
            held.put((offset, i % 100), b"12345678")
            held.get((offset, (i * 7) % 100))

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(held) <= 64 and held._bytes == 8 * len(held)


def test_the_memory_cache_expires_and_adds_only_once():
    cache = MemoryCache()
    cache.put_many({"a": b"abc"}, ttl_s=60)
    assert cache.get("a") == b"abc" and cache.getrange("a", 1, 2) == b"bc"
    assert cache.add("flag", b"1", 60) is True and cache.add("flag", b"1", 60) is False
    cache.expire(["a"], -1)  # already past its deadline
    assert cache.get("a") is None and cache.getrange("a", 0, 1) == b""
    cache.delete("flag")
    assert cache.add("flag", b"1", 60) is True

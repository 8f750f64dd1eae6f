"""The network shaper: per-direction delays, the shaped handshake, in-order delivery, loopback only."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from c3s.bench.netshape import Profile, Shaper


async def _echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def _run(coroutine_function, *args):
    """asyncio.run in its own thread: Playwright's sync API may hold this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function(*args))).result()


async def _through(profile: Profile, exchange):
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    shaper = Shaper(profile, ("127.0.0.1", server.sockets[0].getsockname()[1]), seed=1)
    port = await shaper.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        result = await exchange(reader, writer)
        writer.close()
        await writer.wait_closed()
        return result
    finally:
        await shaper.aclose()
        server.close()
        await server.wait_closed()


def test_each_direction_is_delayed_and_the_first_bytes_wait_for_a_handshake():
    async def exchange(reader, writer):
        times = []
        for _ in range(4):
            start = time.perf_counter()
            writer.write(b"x")
            await reader.readexactly(1)
            times.append((time.perf_counter() - start) * 1000)
        return times

    first, *rest = _run(_through, Profile("t", 30.0, 10.0), exchange)
    # Delays are never shortened; a loaded machine can only make the timers late.
    assert first >= 78 and min(rest) >= 38, (first, rest)  # handshake (30 + 10) + round trip (30 + 10)
    assert first - min(rest) >= 30 and sorted(rest)[1] <= 80, (first, rest)


def test_jitter_and_stalls_never_reorder_bytes():
    payload = [f"{n:05d}".encode() for n in range(300)]

    async def exchange(reader, writer):
        for chunk in payload:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.0005)  # separate chunks, each with its own delay
        return await reader.readexactly(5 * len(payload))

    echoed = _run(_through, Profile("t", 5.0, 5.0, jitter_ms=5.0, loss=0.05, stall_ms=20.0), exchange)
    assert echoed == b"".join(payload)


def test_the_shaper_only_forwards_to_this_machine():
    with pytest.raises(ValueError, match="127.0.0.1"):
        Shaper(Profile("t", 1.0, 1.0), ("192.0.2.1", 80))

"""A TCP proxy on 127.0.0.1 that shapes the network between a browser and the server, for the
clock's browser tests and `c3s bench clock` (this kernel has no ``sch_netem``).

Each direction is delayed on its own: every chunk read from one side is written to the other
after the profile's one-way delay plus uniform jitter, and with probability ``loss`` after a
retransmission stall as well (what a lost segment costs TCP). TCP delivers in order, so jitter
never reorders bytes: a chunk is never written before the one read ahead of it, and a stalled
chunk holds back everything behind it (head-of-line blocking), as on a real lossy link.

Connection set-up is shaped too. The loopback kernel completes the handshake at once, so the
client's first bytes are held for one more shaped round trip (SYN up, SYN-ACK down) before their
own uplink delay: a fresh connection costs what it costs on the modelled network. One difference
remains: the client sees its ``connect()`` succeed at once, so a browser's Resource Timing counts
the handshake as request time (``requestStart`` too early), where a real network would show it as
``connectStart``..``connectEnd``. Timers run on asyncio's loop (about 1 ms resolution), which adds
up to a millisecond of jitter to every direction alike.

Run it alone with ``python -m c3s.bench.netshape --profile stadium --upstream 127.0.0.1:8000``;
it prints the port it listens on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK_BYTES = 65536


@dataclass(frozen=True)
class Profile:
    """One network: one-way delays (ms) per direction, jitter (uniform ± ms) and loss."""

    name: str
    up_ms: float
    down_ms: float
    jitter_ms: float = 0.0
    loss: float = 0.0
    stall_ms: float = 200.0  # Linux's minimum retransmission timeout

    def one_way_ms(self, rng: random.Random, base_ms: float) -> float:
        delay = base_ms + rng.uniform(-self.jitter_ms, self.jitter_ms)
        if self.loss and rng.random() < self.loss:
            delay += self.stall_ms
        return max(0.0, delay)


PROFILES = {
    "lan": Profile("lan", 1.0, 1.0, jitter_ms=0.5),
    "wifi": Profile("wifi", 8.0, 8.0, jitter_ms=4.0),
    "stadium": Profile("stadium", 60.0, 60.0, jitter_ms=30.0, loss=0.01),
    "asymmetric": Profile("asymmetric", 80.0, 20.0),
}


def _require_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        loopback = False
    if not loopback:
        raise ValueError(f"the shaper only forwards to this machine (127.0.0.1), not {host!r}")


class Shaper:
    """The proxy: :meth:`start` listens on 127.0.0.1 and forwards to ``upstream`` shaped."""

    def __init__(self, profile: Profile, upstream: tuple[str, int], *, seed: int = 0):
        _require_loopback(upstream[0])
        self.profile = profile
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[asyncio.Task] = set()

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", port)
        return self.server.sockets[0].getsockname()[1]

    async def _connection(self, client_reader, client_writer) -> None:
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        self.connections.add(asyncio.current_task())
        writers = [client_writer]
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
            writers.append(server_writer)
            handshake_s = (self.profile.one_way_ms(self.rng, self.profile.up_ms)
                           + self.profile.one_way_ms(self.rng, self.profile.down_ms)) / 1000
            up = self._pipe(client_reader, server_writer, self.profile.up_ms, not_before=accepted + handshake_s)
            down = self._pipe(server_reader, client_writer, self.profile.down_ms, not_before=0.0)
            await asyncio.gather(up, down, return_exceptions=True)
        except OSError:
            pass  # the server is gone: the client sees its connection close
        finally:
            self.connections.discard(asyncio.current_task())
            for writer in writers:
                writer.close()
            await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)

    async def _pipe(self, reader, writer, base_ms: float, *, not_before: float) -> None:
        """Forward one direction: nothing leaves before `not_before` (the loop's clock, s)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        last_due = 0.0
        try:
            while True:
                try:
                    data = await reader.read(CHUNK_BYTES)
                except (ConnectionError, OSError):
                    data = b""
                # Sent once the handshake is done, delivered after its delay, never before the last.
                sent = max(loop.time(), not_before)
                due = max(sent + self.profile.one_way_ms(self.rng, base_ms) / 1000, last_due)
                last_due = due
                queue.put_nowait((due, data))
                if not data:
                    break
            await sender
        except (ConnectionError, OSError):
            sender.cancel()
        finally:
            if not sender.done():
                sender.cancel()

    async def aclose(self) -> None:
        """Stop listening and drop the open connections."""
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)


@contextlib.contextmanager
def shaped(profile: str, upstream_port: int, *, seed: int = 0) -> Iterator[int]:
    """Run the shaper in its own process (its timers then never wait for this one's GIL) in
    front of ``127.0.0.1:upstream_port``; yields the port to connect to."""
    process = subprocess.Popen([sys.executable, "-m", "c3s.bench.netshape", "--profile", profile,
                                "--upstream", f"127.0.0.1:{upstream_port}", "--seed", str(seed)],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the network shaper did not start (exit {process.poll()})")
        yield int(line)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def _upstream(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m c3s.bench.netshape", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), required=True)
    parser.add_argument("--upstream", type=_upstream, required=True, help="HOST:PORT on this machine")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        shaper = Shaper(PROFILES[args.profile], args.upstream, seed=args.seed)
    except ValueError as error:
        parser.error(str(error))

    async def serve() -> None:
        port = await shaper.start(args.port)
        print(port, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()

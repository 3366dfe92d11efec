"""A TCP relay on loopback that adds network latency, for benchmarks against a far server.

    python benchmarks/latency_relay.py LISTEN_PORT UPSTREAM_PORT RTT_MS

Every byte crossing the relay is delivered RTT_MS / 2 after it arrived, in each direction, so
a request-response exchange takes at least RTT_MS more than on loopback, as it would against a
service provider that far away. Bandwidth is not limited and order is kept: each direction of
each connection has its own queue of (deliver at, bytes). Many connections are relayed at once,
so concurrent clients overlap their waits as they would on a real network.

Used by bench_target_scim.py (``--rtt-ms``): the servers here are in-process on the same two
cores as the client, so without it a benchmark measures the server's CPU, not the client's
ability to keep a distant server busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            at, data = await queue.get()
            if not data:
                break
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.create_task(deliver())
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, data))
    queue.put_nowait((time.monotonic() + delay, b""))
    with contextlib.suppress(ConnectionError):
        await sender


async def _serve(listen: int, upstream: int, rtt_ms: float) -> None:
    delay = rtt_ms / 2000.0

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pump(client_r, server_w, delay), _pump(server_r, client_w, delay))
        for w in (client_w, server_w):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=256)
    async with server:
        await server.serve_forever()


def main() -> None:
    listen, upstream, rtt_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    asyncio.run(_serve(listen, upstream, rtt_ms))


if __name__ == "__main__":
    main()

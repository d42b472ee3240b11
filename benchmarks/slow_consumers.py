"""Slow consumers cut off (issue 11's finding: a cut-off connection stayed ESTABLISHED for
120 s and more; 200 of them held 750 MB of kernel memory). N clients subscribe to a
trades channel and never read; trades are published until every one of them is cut off
(1013); then, every second for ``--watch`` seconds, the kernel's view of the server's port
(``/proc/net/tcp``): its sockets to those clients that still exist, and the bytes queued
in them (the server's send queues plus the clients' receive queues).

    .venv/bin/python benchmarks/slow_consumers.py [--endpoint md|ws] [--clients 200]
        [--unbounded]

``--endpoint md``: the market-data server (``api/md_stream.py``); ``ws``: ``/v1/ws`` on
uvicorn as ``mercato serve`` configures it (``limits.server_config``). ``--unbounded``
measures the close as it was: ``/v1/md`` with a close that never aborts, ``/v1/ws`` on
uvicorn's own sans-I/O protocol. Server and clients run in this process (one loop); one
result line (JSON) on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from mercato.marketdata.events import BUY, MdTrade

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SUB = json.dumps({"op": "subscribe", "channels": ["trades:EXT"]}).encode()


def kernel_view(port: int, clients: set[int]) -> tuple[int, int]:
    """(server sockets to ``clients`` that exist, bytes queued in them and in the clients'
    receive queues), from /proc/net/tcp."""
    n = queued = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local, remote = int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16)
        tx, rx = (int(x, 16) for x in f[4].split(":"))
        if local == port and remote in clients:
            n += 1
            queued += tx + rx
        elif remote == port and local in clients:
            queued += tx + rx
    return n, queued


async def stuck_client(port: int, path: str) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(
        sock,
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode(),
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    await loop.sock_sendall(sock, bytes([0x81, 0x80 | len(SUB)]) + b"\0\0\0\0" + SUB)
    return sock  # and never read again


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from mercato.services.marketdata import MarketData

    server: Any = None
    if args.endpoint == "md":
        from mercato.api.md_stream import MdFanout

        md = MarketData()
        md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
        fanout = MdFanout(md, close_timeout=1e9 if args.unbounded else 2.0)
        listener = await asyncio.get_running_loop().create_server(
            fanout.protocol, "127.0.0.1", 0, backlog=1024
        )
        port = listener.sockets[0].getsockname()[1]

        def subscribed() -> int:
            return len(fanout.followers.get("trades:EXT", ()))
    else:
        import uvicorn
        from argon2 import PasswordHasher

        from mercato.api.app import create_app
        from mercato.api.limits import Limits, server_config
        from mercato.api.ws import Hub
        from mercato.services.auth import AuthStore
        from mercato.services.platform import Platform

        tmp = tempfile.mkdtemp()
        auth = AuthStore(f"sqlite:///{tmp}/users.sqlite", hasher=PasswordHasher(1, 8, 1))
        app = create_app(Platform(), auth, limits=Limits(per_address=10_000))
        md = app.state.api.md
        md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
        hub = [f.__self__ for f in md._listeners if isinstance(getattr(f, "__self__", 0), Hub)]
        config = server_config(app, "127.0.0.1", 0, app.state.guard)
        if args.unbounded:
            config = uvicorn.Config(app, ws="websockets-sansio", log_level="warning")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)

        def subscribed() -> int:
            return sum(1 for c in hub[0].conns if c.channels and c.outbox.closed is None)

    path = "/v1/md" if args.endpoint == "md" else "/v1/ws"
    clients = [await stuck_client(port, path) for _ in range(args.clients)]
    ports = {c.getsockname()[1] for c in clients}
    while subscribed() < args.clients:
        await asyncio.sleep(0.01)
    start = time.monotonic()
    trade_id = 0
    while subscribed():  # until every one is cut off
        assert time.monotonic() - start < 120, f"{subscribed()} never cut off"
        trades = []
        for _ in range(50):
            trade_id += 1
            trades.append(MdTrade("EXT", 1_700_000_000 * 10**9 + trade_id, trade_id, 9_900, 1, BUY))
        md.publish(trades)
        await asyncio.sleep(0.005)
    cut = time.monotonic()
    samples = []
    for second in range(args.watch + 1):
        await asyncio.sleep(max(0.0, cut + second - time.monotonic()))
        n, queued = kernel_view(port, ports)
        samples.append({"t": second, "sockets": n, "queued_mb": round(queued / 2**20, 1)})
    for c in clients:
        c.close()
    if server is not None:
        server.should_exit = True
        await serving
    return {
        "benchmark": "slow_consumers",
        "endpoint": args.endpoint,
        "close": "unbounded" if args.unbounded else "bounded",
        "clients": args.clients,
        "flood_s": round(cut - start, 2),
        "trades": trade_id,
        "after_cut_off": samples,
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", choices=("md", "ws"), default="md")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--watch", type=int, default=10, help="seconds watched after the cut-off")
    p.add_argument("--unbounded", action="store_true", help="the close as it was")
    print(json.dumps(asyncio.run(main(p.parse_args()))))

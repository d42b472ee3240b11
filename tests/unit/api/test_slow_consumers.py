"""Issue 11, over real sockets: a client that stops reading is cut off (close 1013, "slow
consumer") and its connection is really gone a few seconds later, on ``/v1/md``, on
``/v1/ws`` and on the Alpaca streams (``/v2/iex``, ``/stream``), the ASGI ones served by
uvicorn as ``mercato serve`` configures it (``limits.server_config``). Found before: the
cut-off connection stayed ESTABLISHED for 120 s and more (200 of them held 750 MB of kernel
memory), since the close frame and then ``transport.close()`` waited for the client.

"Gone" is read from the kernel (``/proc/net/tcp``): no socket of the server's port is left
for the client, in any state (an orderly close with unsent data would linger in FIN_WAIT
with its buffers), and the server no longer holds the connection's queue."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mercato.api.alpaca_market_stream import MarketHub, alpaca_market_stream_routes
from mercato.api.alpaca_stream import TradeUpdates, alpaca_stream_routes
from mercato.api.app import create_app
from mercato.api.limits import server_config
from mercato.api.md_stream import MdFanout, MdPeer
from mercato.api.outbox import Conn
from mercato.api.ws import Hub, websocket_route
from mercato.domain.commands import NewOrder
from mercato.domain.types import OrderType, Side
from mercato.marketdata.events import BUY, MdTrade
from mercato.services.marketdata import MarketData

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads the kernel's sockets from /proc/net/tcp"
)

S = 1_000_000_000
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def sockets_of(port: int, peer_port: int) -> list[str]:
    """The TCP states (hex, as the kernel writes them) of the server's sockets on ``port``
    connected to the client's ``peer_port``."""
    out = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local, remote, state = f[1], f[2], f[3]
        if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == peer_port:
            out.append(state)
    return out


def stuck_client(port: int, path: str, first: list[dict[str, Any]]) -> socket.socket:
    """A client that upgrades, sends ``first`` (JSON messages, masked frames), then never
    reads: its receive buffer is small, so the server's writes soon back up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:  # (a client sends frames only once upgraded)
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    for msg in first:
        body = json.dumps(msg).encode()
        assert len(body) < 126
        sock.sendall(bytes([0x81, 0x80 | len(body)]) + b"\0\0\0\0" + body)
    return sock


async def flood(md: MarketData, cut: Callable[[], bool], limit: float = 20.0) -> None:
    """Publish trades (50 a message, ~8 KB as JSON) until ``cut()``: the client is cut off."""
    deadline = time.monotonic() + limit
    trade_id = 0
    while not cut():
        assert time.monotonic() < deadline, "the stuck client was never cut off"
        batch = []
        for _ in range(50):
            trade_id += 1
            batch.append(MdTrade("EXT", 1_700_000_000 * S + trade_id, trade_id, 9_900, 1, BUY))
        md.publish(batch)
        await asyncio.sleep(0.002)


async def gone_within(port: int, peer_port: int, seconds: float) -> float:
    """How long until the server's socket to ``peer_port`` is gone (fails after
    ``seconds``)."""
    start = time.monotonic()
    while sockets_of(port, peer_port):
        waited = time.monotonic() - start
        assert waited < seconds, f"still there after {waited:.1f} s: {sockets_of(port, peer_port)}"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def reset_or_eof(sock: socket.socket) -> bool:
    """The client's socket ends (EOF or reset) once it reads what it was sent."""
    sock.settimeout(5)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        return True
    except OSError:
        return False
    return True


def test_md_a_client_that_stops_reading_is_cut_off_and_its_socket_closed() -> None:
    async def run() -> None:
        md = MarketData()
        md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
        fanout = MdFanout(md, queue_size=20)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(fanout.protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sub = {"op": "subscribe", "channels": ["trades:EXT"]}
        sock = await asyncio.to_thread(stuck_client, port, "/v1/md", [sub])
        peer_port = sock.getsockname()[1]
        try:
            while not fanout.followers.get("trades:EXT"):
                await asyncio.sleep(0.01)
            (peer,) = fanout.followers["trades:EXT"]
            await flood(md, lambda: not fanout.followers)  # (it was the only one)
            assert peer.ws.close_sent is not None  # told why, if it ever reads again
            assert (peer.ws.close_sent.code, peer.ws.close_sent.reason) == (1013, "slow consumer")
            assert sockets_of(port, peer_port) == ["01"]  # ESTABLISHED: the close is queued
            await gone_within(port, peer_port, 2 + 3)  # close_timeout 2 s, then aborted
            assert len(peer.conn.outbox) == 0 and not fanout.followers
            assert await asyncio.to_thread(reset_or_eof, sock)
            del peer
            await asyncio.sleep(0.05)  # (the transport lets go of its protocol)
            gc.collect()
            assert not [o for o in gc.get_objects() if isinstance(o, MdPeer)]  # nothing kept
        finally:
            sock.close()
            server.close()
            await server.wait_closed()

    asyncio.run(run())


async def _uvicorn(app: Any) -> tuple[Any, asyncio.Task[None], int]:
    """``app`` served by uvicorn as ``mercato serve`` configures it (``server_config``), on
    a free port, in this loop."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(server_config(app, "127.0.0.1", 0, app.state.guard))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, sock.getsockname()[1]


def _listener(md: MarketData, kind: type) -> Any:
    """The newest fan-out object of ``kind`` that ``md`` publishes to (the test's route)."""
    owners = [getattr(f, "__self__", None) for f in [*md._listeners, *md._tick_listeners]]
    return [o for o in owners if isinstance(o, kind)][-1]


async def orders(platform: Any, cut: Callable[[], bool], limit: float = 20.0) -> None:
    """The trader's limit buys at 1.00, resting (a ``new`` trade update each), until
    ``cut()``."""
    deadline = time.monotonic() + limit
    while not cut():
        assert time.monotonic() < deadline, "the stuck client was never cut off"
        for _ in range(20):
            cmd = NewOrder(
                order_id=platform.next_order_id(),
                account=2,
                symbol="XYZ",
                side=Side.BUY,
                type=OrderType.LIMIT,
                qty=1,
                price=100,
                client_order_id=f"c{platform.next_order_id()}",
            )
            await platform.submit(cmd)
        await asyncio.sleep(0.002)


@pytest.mark.parametrize("path", ["/v1/ws", "/v2/iex", "/stream"])
def test_asgi_a_client_that_stops_reading_is_cut_off_and_its_socket_closed(
    market: Any, path: str
) -> None:
    async def run() -> None:
        app = create_app(market.platform, market.auth)
        api = app.state.api
        api.md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
        # ahead of the app's own, with a small queue
        routes = [websocket_route(api, heartbeat=0, queue_size=20)]
        routes += alpaca_market_stream_routes(api, queue_size=20)
        routes += alpaca_stream_routes(api, queue_size=20)
        for route in routes:
            app.router.routes.insert(0, route)
        key_id, secret = market.auth.create_key(market.trader)
        if path == "/v1/ws":
            first = [{"op": "subscribe", "channels": ["trades:EXT"]}]
            hub = _listener(api.md, Hub)
            conns: Callable[[], Any] = lambda: hub.conns  # noqa: E731
        elif path == "/v2/iex":
            first = [
                {"action": "auth", "key": key_id, "secret": secret},
                {"action": "subscribe", "trades": ["EXT"]},
            ]
            alpaca = _listener(api.md, MarketHub)
            conns = lambda: [c for c in alpaca.conns if c.trades]  # noqa: E731
        else:
            first = [
                {"action": "auth", "key": key_id, "secret": secret},
                {"action": "listen", "data": {"streams": ["trade_updates"]}},
            ]
            updates = [f.__self__ for f in market.platform._listeners if hasattr(f, "__self__")]
            (trade_updates,) = [u for u in updates if isinstance(u, TradeUpdates)][-1:]
            conns = lambda: list(trade_updates.by_account.get(2, ()))  # noqa: E731
        server, task, port = await _uvicorn(app)
        sock = await asyncio.to_thread(stuck_client, port, path, first)
        peer_port = sock.getsockname()[1]
        try:
            deadline = time.monotonic() + 10
            while not conns():
                assert time.monotonic() < deadline, "never subscribed"
                await asyncio.sleep(0.01)
            (conn,) = conns()
            box = conn.outbox
            if path == "/stream":
                await orders(market.platform, lambda: box.closed is not None)
            else:
                await flood(api.md, lambda: box.closed is not None)
            assert box.closed == (1013, "slow consumer")
            waited = await gone_within(port, peer_port, 2 + 3)  # CLOSE_TIMEOUT, then aborted
            assert waited > 0.5  # it had its chance to read the close
            assert await asyncio.to_thread(reset_or_eof, sock)
            del conn
            gc.collect()
            assert not [o for o in gc.get_objects() if isinstance(o, Conn)]  # nothing kept
        finally:
            sock.close()
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)

    asyncio.run(run())


def test_asgi_a_server_shuts_down_with_a_client_that_stopped_reading(market: Any) -> None:
    """The same bound when the server stops: uvicorn closes each connection (1012) and then
    waits for every one of them to be gone, so a client that stopped reading (not yet cut
    off: its queue is long) held the shutdown for as long as it liked."""

    async def run() -> None:
        app = create_app(market.platform, market.auth)
        api = app.state.api
        api.md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
        app.router.routes.insert(0, websocket_route(api, heartbeat=0, queue_size=100_000))
        hub = _listener(api.md, Hub)
        server, task, port = await _uvicorn(app)
        sub = [{"op": "subscribe", "channels": ["trades:EXT"]}]
        sock = await asyncio.to_thread(stuck_client, port, "/v1/ws", sub)
        try:
            while not [c for c in hub.conns if c.channels]:
                await asyncio.sleep(0.01)
            (conn,) = hub.conns
            await flood(api.md, lambda: len(conn.outbox) > 100)  # its socket is full
            server.should_exit = True
            start = time.monotonic()
            await asyncio.wait_for(asyncio.shield(task), 2 + 5)
            assert time.monotonic() - start < 2 + 5
        finally:
            sock.close()
            server.force_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)

    asyncio.run(run())

"""Issue 11: a WebSocket connection that ends leaves no cyclic garbage in the server.

``mercato serve`` turns off the automatic full collections (``services/gc_policy.py``), so
what a closed connection leaves in reference cycles stays in memory until the next one:
``/v1/ws`` connections that came and went held ~15 KB each (``docs/benchmarks.md``).
Here every endpoint is served as ``mercato serve`` serves it (uvicorn with
``limits.server_config``, the market-data server's ``MdFanout``) over real sockets in this
process, a journaled platform (so that ``/v1/ws`` hands each message to a task), and raw
clients end their connections every way a client can: a closing handshake, a vanished
client (EOF, no close frame), a reset, an oversized frame (1009), a wrong key (1008), a key
revoked while open (1008), a slow consumer cut off (1013), pipelined orders abandoned.
With ``gc.DEBUG_SAVEALL`` on, everything a collection finds unreachable is kept in
``gc.garbage``: none of it may be the server's (its sessions, queues, protocols, tasks,
frames of its code). And no "Task exception was never retrieved" is reported.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import socket
import struct
import types
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from mercato.api.alpaca_market_stream import alpaca_market_stream_routes
from mercato.api.alpaca_stream import alpaca_stream_routes
from mercato.api.app import create_app
from mercato.api.md_stream import MdFanout, MdPeer
from mercato.api.outbox import Conn, Outbox
from mercato.api.ws import Session, websocket_route
from mercato.domain.commands import (
    AddInstrument,
    CreateAccount,
    Deposit,
    SetInstrumentRisk,
)
from mercato.services.auth import AuthStore
from mercato.services.marketdata import MarketData
from mercato.services.platform import Platform

from .test_slow_consumers import KEY, _uvicorn, flood, orders

N = 12  # connections per case
N_SLOW = 2  # (each takes a flood of trades to cut off)
PIPELINED = 500  # orders, none of their answers read
SERVER_CODE = ("mercato", "uvicorn", "starlette", "websockets", "httptools")


# -- a raw client: nothing of its own in the collector's way -------------------------------


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, path: str, headers: str = "") -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, msg: Any, opcode: int = 0x1) -> None:
        body = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        n = len(body)
        size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
        self.writer.write(bytes([0x80 | opcode]) + size + b"\0\0\0\0" + body)  # zero mask

    async def frame(self) -> tuple[int, bytes]:
        """The server's next frame: (opcode, payload)."""
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def until_close(self) -> int:
        """Read until the server's close frame, answer it, read to EOF; its code."""
        while True:
            opcode, payload = await asyncio.wait_for(self.frame(), 5)
            if opcode == 0x8:
                self.send(payload, opcode=0x8)
                await asyncio.wait_for(self.reader.read(), 5)  # (EOF)
                self.writer.close()
                return int.from_bytes(payload[:2], "big")

    async def close(self) -> None:
        """The closing handshake, begun by the client."""
        self.send(struct.pack("!H", 1000), opcode=0x8)
        while (await asyncio.wait_for(self.frame(), 5))[0] != 0x8:
            pass
        await asyncio.wait_for(self.reader.read(), 5)
        self.writer.close()

    def vanish(self) -> None:
        """Gone without a close frame (a FIN)."""
        self.writer.close()

    def reset(self) -> None:
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


# -- what each endpoint expects first ------------------------------------------------------


def first(path: str, key: tuple[str, str]) -> list[Any]:
    if path in ("/v1/ws", "/v1/md"):
        return [{"op": "subscribe", "channels": ["trades:EXT"]}]
    auth = {"action": "auth", "key": key[0], "secret": key[1]}
    if path == "/stream":
        return [auth, {"action": "listen", "data": {"streams": ["trade_updates"]}}]
    return [auth, {"action": "subscribe", "trades": ["EXT"]}]


def answers(path: str) -> int:
    """Frames the server sends in answer to ``first``."""
    return {"/v1/ws": 2, "/v1/md": 2, "/stream": 2, "/v2/iex": 3}[path]


class Served:
    """The API (uvicorn, as ``mercato serve`` runs it) and the market-data server."""

    def __init__(
        self, platform: Platform, md: MarketData, auth: AuthStore, port: int, md_port: int
    ) -> None:
        self.platform = platform
        self.md = md
        self.auth = auth
        self.port = port
        self.md_port = md_port
        self.key = auth.create_key(auth.create_user("trader", "correct horse battery"))
        auth.add_account(auth.users()[-1].user_id, 2)

    def port_of(self, path: str) -> int:
        return self.md_port if path == "/v1/md" else self.port

    async def opened(self, path: str) -> Client:
        c = await Client.open(self.port_of(path), path)
        for msg in first(path, self.key):
            c.send(msg)
        for _ in range(answers(path)):
            await asyncio.wait_for(c.frame(), 5)
        return c


# -- how a connection ends -----------------------------------------------------------------


async def closed(s: Served, path: str) -> None:
    await (await s.opened(path)).close()


async def vanished(s: Served, path: str) -> None:
    (await s.opened(path)).vanish()


async def reset(s: Served, path: str) -> None:
    (await s.opened(path)).reset()


async def oversized(s: Served, path: str) -> None:
    c = await Client.open(s.port_of(path), path)
    c.writer.write(struct.pack("!BBQ", 0x81, 0x80 | 127, 16 << 20) + b"\0\0\0\0" + b"a" * 4096)
    assert await c.until_close() == 1009


async def bad_key(s: Served, path: str) -> None:
    if path == "/v1/ws":
        c = await Client.open(s.port, path, "Authorization: Bearer nope:nope\r\n")
    else:
        c = await Client.open(s.port, path)
        c.send({"action": "auth", "key": "nope", "secret": "nope"})
    assert await c.until_close() == 1008


async def revoked(s: Served, path: str) -> None:
    key_id, secret = s.auth.create_key(s.auth.users()[-1].user_id)
    if path == "/v1/ws":
        c = await Client.open(s.port, path, f"Authorization: Bearer {key_id}:{secret}\r\n")
        c.send({"op": "ping"})
    else:
        c = await Client.open(s.port, path)
        if path == "/v2/iex":
            await c.frame()  # "connected"
        c.send({"action": "auth", "key": key_id, "secret": secret})
    await c.frame()
    assert s.auth.revoke_key(key_id)
    assert await c.until_close() == 1008


async def slow(s: Served, path: str) -> None:
    """Subscribes, never reads: cut off (1013) by a flood of trades; then it resets."""
    c = await Client.open(s.port_of(path), path)
    sock = c.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for msg in first(path, s.key):
        c.send(msg)
    await asyncio.sleep(0.05)
    (outbox,) = [o for o in gc.get_objects() if isinstance(o, Outbox) and o.closed is None]
    cut = lambda box=outbox: box.closed is not None  # noqa: E731
    if path == "/stream":
        await orders(s.platform, cut)  # (each a trade update)
    else:
        await flood(s.md, cut)  # trades, ~8 KB a message
    assert outbox.closed == (1013, "slow consumer")
    del outbox, cut
    c.reset()


async def pipelined(s: Served, path: str) -> None:
    """Orders sent one after another (each handled by its own task on a journaled
    platform) by a client that reads none of the answers, then resets: a task is
    sending when the connection goes."""
    key_id, secret = s.key
    c = await Client.open(s.port, path, f"Authorization: Bearer {key_id}:{secret}\r\n")
    sock = c.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    order = {"op": "order", "symbol": "XYZ", "side": "buy", "type": "limit", "qty": "1"}
    for i in range(PIPELINED):
        c.send(order | {"id": i, "price": "90.00"})
        if i % 100 == 99:
            await asyncio.sleep(0)
    await asyncio.sleep(0.3)
    c.reset()


END: dict[str, Callable[[Served, str], Awaitable[None]]] = {
    "close": closed,
    "vanish": vanished,
    "reset": reset,
    "oversized": oversized,
    "bad_key": bad_key,
    "revoked": revoked,
    "slow": slow,
    "pipelined": pipelined,
}
CASES = [
    (end, path)
    for end in END
    for path in ("/v1/ws", "/v1/md", "/stream", "/v2/iex")
    if not (path == "/v1/md" and end in ("bad_key", "revoked"))  # (no keys there)
    and not (path != "/v1/ws" and end == "pipelined")
]


# -- what the collector finds --------------------------------------------------------------


def _code_of(o: Any) -> types.CodeType | None:
    if isinstance(o, types.FrameType):
        return o.f_code
    if isinstance(o, types.CoroutineType):
        return o.cr_code
    if isinstance(o, types.GeneratorType):
        return o.gi_code
    if isinstance(o, asyncio.Task):
        return _code_of(o.get_coro())
    return None


def _kind(o: Any) -> str:
    code = _code_of(o)
    return type(o).__qualname__ + (f" {code.co_qualname}" if code is not None else "")


def servers(o: Any) -> bool:
    """Is ``o`` the server's: of its types, or running its code?"""
    if type(o).__module__.split(".")[0] in SERVER_CODE:
        return True
    code = _code_of(o)
    return code is not None and any(f"/{p}/" in code.co_filename for p in SERVER_CODE)


@contextlib.contextmanager
def saved_garbage() -> Iterator[list[Any]]:
    """What collections find unreachable while inside, kept (``gc.DEBUG_SAVEALL``)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[Any] = []
    try:
        yield found
        gc.collect()
        found += gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def _setup(tmp: Path) -> tuple[Platform, AuthStore]:
    from argon2 import PasswordHasher

    platform = Platform(tmp / "node", fsync=False)
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{tmp / 'users.sqlite'}", hasher=hasher)
    return platform, auth


async def _prepare(platform: Platform) -> None:
    for cmd in [
        AddInstrument(symbol="XYZ"),
        SetInstrumentRisk(symbol="XYZ", reference_price=10_000),
        CreateAccount(account=2),
        Deposit(account=2, asset="USD", amount=10_000_000),
    ]:
        await platform.submit(cmd)


@pytest.mark.parametrize(("end", "path"), CASES)
def test_an_ended_connection_leaves_no_cycles(tmp_path: Path, end: str, path: str) -> None:
    platform, auth = _setup(tmp_path)
    reported: list[dict[str, Any]] = []
    n = N

    async def run() -> collections.Counter[str]:
        nonlocal n
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        app = create_app(platform, auth)
        api = app.state.api
        queue = 8 if end == "slow" else 1_000
        if end == "slow":  # ahead of the app's own: a small queue
            routes = [websocket_route(api, heartbeat=0, queue_size=queue)]
            routes += alpaca_market_stream_routes(api, queue_size=queue)
            routes += alpaca_stream_routes(api, queue_size=queue)
            for route in routes:
                app.router.routes.insert(0, route)
        server, task, port = await _uvicorn(app)  # (its lifespan starts the platform)
        await _prepare(platform)
        api.md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
        fanout = MdFanout(api.md, queue_size=queue)
        md_server = await loop.create_server(fanout.protocol, "127.0.0.1", 0)
        s = Served(platform, api.md, auth, port, md_server.sockets[0].getsockname()[1])
        n = N_SLOW if end == "slow" else N
        try:
            await closed(s, path)  # (warm-up: what is made once, on first use)
            await asyncio.sleep(0.05)
            with saved_garbage() as found:
                for _ in range(n):
                    await END[end](s, path)
                for _ in range(100):  # until the server has let every connection go
                    await asyncio.sleep(0.02)
                    if not [o for o in gc.get_objects() if isinstance(o, Conn | MdPeer)]:
                        break
            left = collections.Counter(_kind(o) for o in found if servers(o))
            del found
            gc.collect()  # a task's exception never retrieved is reported as it is freed
            return left
        finally:
            md_server.close()
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)

    try:
        left = uvloop.run(run())
    finally:
        auth.close()
    assert not left, f"the server's objects in cycles after {n} connections: {left}"
    assert not [o for o in gc.get_objects() if isinstance(o, Session | Conn | MdPeer)]
    never = [c["message"] for c in reported if "never retrieved" in c.get("message", "")]
    assert not never, never

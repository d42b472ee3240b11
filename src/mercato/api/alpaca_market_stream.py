"""The Alpaca-compatible real-time stock data stream (``/v2/iex``, ``/v2/sip``): Alpaca's
``StockDataStream`` (``alpaca-py``) receives Mercato's trades and quotes with only
``url_override`` changed (``ws://HOST:PORT/v2/iex``; alpaca-py uses the override verbatim).

The protocol is Alpaca's market-data protocol: every frame the server sends is a list of
messages. The encoding is the one the client asks for, as on Alpaca: a client that connects
with the header ``Content-Type: application/msgpack`` (alpaca-py always does) speaks
msgpack in binary frames, timestamps being msgpack timestamps (extension -1, with
nanoseconds); any other client speaks JSON in text frames, timestamps being RFC-3339
strings in UTC with nanoseconds. The client's messages are read as msgpack (binary frames
of a msgpack connection) or JSON (text frames, and binary frames of a JSON connection)::

    <- [{"T": "success", "msg": "connected"}]                      (on connecting)
    -> {"action": "auth", "key": "..", "secret": ".."}
    <- [{"T": "success", "msg": "authenticated"}]
       (a wrong key: [{"T": "error", "code": 402, "msg": "auth failed"}], then close 1008)
    -> {"action": "subscribe", "trades": ["XYZ"], "quotes": ["XYZ"]}   ("*": every symbol)
    <- [{"T": "subscription", "trades": ["XYZ"], "quotes": ["XYZ"], "bars": [], ..}]
    <- [{"T": "t", "S": "XYZ", "i": 17, "x": "MERCATO", "p": 101.0, "s": 10, "c": ["@"],
         "t": <time>, "z": "M"}]
    <- [{"T": "q", "S": "XYZ", "bx": "MERCATO", "bp": 99.0, "bs": 1000, "ax": "MERCATO",
         "ap": 101.0, "as": 990, "c": ["R"], "t": <time>, "z": "M"}]
    -> {"action": "unsubscribe", "trades": ["XYZ"]}
    <- [{"T": "subscription", ..}]                                  (what is left)

Trades and quotes come from the market-data service (``MarketData.on_ticks``), so an
outside feed's instruments stream as the engine's do. Trades: the engine's executions
(paper fills are not market data) at the maker's price, and a feed's trades, one message
each; ``i`` is the trade id, the engine's event seq for its own, as on
``/v2/stocks/trades``. Quotes are the book's top: one is sent whenever the best bid / ask
price or size changed (an empty side is price 0 and size 0), stamped with the time of the
change. Only ``trades`` and
``quotes`` are served: subscribing to other channels (bars, statuses, ...) answers
``{"T": "error", "code": 410, "msg": "invalid subscribe action for this feed"}`` and they
stay empty in the subscription; the trades and quotes of the same action are still taken.
That includes ``imbalances``: alpaca-py's ``StockDataStream`` has no handler for them and
parses no such message, so an auction's indicative price, volume and surplus are streamed
on the native market data instead (the ``auction:SYM`` channel of ``/v1/ws`` and
``/v1/md``, ``docs/marketdata.md``).

Prices and sizes are JSON / msgpack *numbers* (``price / 10**price_scale``): floats are
used here only because Alpaca's wire format has numbers; Mercato itself keeps integers.

Errors (Alpaca's codes): 400 invalid syntax, 401 not authenticated, 403 already
authenticated, 402 auth failed; the connection stays open except after a failed auth.
Slow consumers: as on ``/v1/ws``, each connection has a bounded outgoing queue (1,000
frames); a client that lets it fill up is disconnected with close code 1013 ("slow
consumer"), and aborted if it has not answered the close within 2 s (it stopped
reading). Market data is public elsewhere, but Alpaca's stream requires a key and so does
this one (any valid Mercato API key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from mercato.api.alpaca_models import EXCHANGE, TAPE, number
from mercato.api.app import Api
from mercato.api.keywatch import close_unless_signed_in, close_with_key
from mercato.api.outbox import QUEUE_SIZE, Outbox, send_close
from mercato.api.ws import POLICY_VIOLATION
from mercato.marketdata.events import MdTrade
from mercato.marketdata.market import Market
from mercato.services.auth import Principal

log = logging.getLogger(__name__)

PATHS: Final = ("/v2/iex", "/v2/sip")
MAX_MESSAGE: Final = 64 * 1024  # bytes
MAX_SYMBOLS: Final = 1_000  # per connection and channel (trades, quotes): beyond, 405
SERVED: Final = ("trades", "quotes")
# Alpaca's other stock channels: accepted in the syntax, never served
OTHER: Final = (
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
    "imbalances",  # (a call auction's indicative: the native channel auction:SYM has it)
)
MSGPACK: Final = "application/msgpack"
_json = msgspec.json.Encoder()
_msgpack = msgspec.msgpack.Encoder()


def _rfc3339(ts: int) -> str:
    secs, ns = divmod(ts, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


def _msgpack_time(ts: int) -> msgspec.msgpack.Ext:
    """A msgpack timestamp (extension -1) with nanoseconds: timestamp 64 or 96."""
    secs, ns = divmod(ts, 1_000_000_000)
    if 0 <= secs < 1 << 34:
        return msgspec.msgpack.Ext(-1, struct.pack(">Q", (ns << 34) | secs))
    return msgspec.msgpack.Ext(-1, struct.pack(">Iq", ns, secs))


class MarketConn:
    """One client: its encoding, who it is, what it follows, and its bounded outbox.

    The outbox holds ``str`` frames: a msgpack frame is kept as its bytes decoded as
    latin-1 (lossless) and sent back as those bytes in a binary frame."""

    def __init__(self, queue_size: int, use_msgpack: bool) -> None:
        self.msgpack = use_msgpack
        self.principal: Principal | None = None
        self.trades: set[str] = set()
        self.quotes: set[str] = set()
        self.outbox = Outbox(queue_size)

    def time(self, ts: int) -> Any:
        return _msgpack_time(ts) if self.msgpack else _rfc3339(ts)

    def send(self, msgs: list[dict[str, Any]]) -> None:
        if self.msgpack:
            self.outbox.offer(_msgpack.encode(msgs).decode("latin-1"))
        else:
            self.outbox.offer(_json.encode(msgs).decode())

    def frame(self, frame: str) -> bytes | str:
        return frame.encode("latin-1") if self.msgpack else frame


class MarketHub:
    """The fan-out of trades and quotes by symbol; fed by ``MarketData.on_ticks``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.conns: set[MarketConn] = set()

    def add(self, conn: MarketConn) -> None:
        self.conns.add(conn)

    def remove(self, conn: MarketConn) -> None:
        self.conns.discard(conn)

    def on_ticks(self, trades: list[MdTrade], quoted: list[Market]) -> None:
        """The market data's listener: it must neither block nor raise."""
        if not self.conns:
            return
        try:
            self._fan_out(trades, quoted)
        except Exception:  # a bug here must not break the platform's submit
            log.exception("market data fan-out failed")

    def _fan_out(self, trades: list[MdTrade], quoted: list[Market]) -> None:
        markets = self.api.md.markets
        out: dict[MarketConn, list[dict[str, Any]]] = {}
        for t in trades:
            m = markets[t.symbol]
            for conn in self.conns:
                if t.symbol in conn.trades or "*" in conn.trades:
                    out.setdefault(conn, []).append(
                        {
                            "T": "t",
                            "S": t.symbol,
                            "i": t.trade_id,
                            "x": EXCHANGE,
                            "p": number(t.price, m.price_scale),
                            "s": number(t.qty, m.qty_scale),
                            "c": ["@"],
                            "t": conn.time(t.ts),
                            "z": TAPE,
                        }
                    )
        for m in quoted:
            symbol, q = m.symbol, m.quote
            ps, qs = m.price_scale, m.qty_scale
            for conn in self.conns:
                if symbol in conn.quotes or "*" in conn.quotes:
                    out.setdefault(conn, []).append(
                        {
                            "T": "q",
                            "S": symbol,
                            "bx": EXCHANGE,
                            "bp": number(q.bid, ps),
                            "bs": number(q.bid_qty, qs),
                            "ax": EXCHANGE,
                            "ap": number(q.ask, ps),
                            "as": number(q.ask_qty, qs),
                            "c": ["R"],
                            "t": conn.time(q.ts),
                            "z": TAPE,
                        }
                    )
        for conn, msgs in out.items():
            conn.send(msgs)
            if conn.outbox.closed is not None:
                self.remove(conn)


class MarketSession:
    """Reads a client's actions and answers them; the writer drains its outbox."""

    def __init__(self, hub: MarketHub, ws: WebSocket, conn: MarketConn) -> None:
        self.hub = hub
        self.api = hub.api
        self.ws = ws
        self.conn = conn
        self.rate_key = f"ip:{ws.client.host if ws.client else '?'}"
        self.rejected = False  # a wrong key: the answer goes out, then the close
        self.unwatch: Callable[[], None] | None = None  # follows the key it signed in with

    def error(self, code: int, message: str) -> None:
        self.conn.send([{"T": "error", "code": code, "msg": message}])

    async def read(self) -> None:
        while self.conn.outbox.closed is None and not self.rejected:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            text = msg.get("text")
            data: bytes = text.encode() if text is not None else (msg.get("bytes") or b"")
            if len(data) > MAX_MESSAGE:
                self.error(400, "invalid syntax")
                continue
            try:
                if text is None and self.conn.msgpack:
                    body = msgspec.msgpack.decode(data)
                else:
                    body = msgspec.json.decode(data)
            except msgspec.DecodeError:
                self.error(400, "invalid syntax")
                continue
            if not isinstance(body, dict):
                self.error(400, "invalid syntax")
                continue
            self.handle(body)

    def handle(self, body: dict[str, Any]) -> None:
        action = body.get("action")
        if action == "auth":
            self.authenticate(body)
        elif action in ("subscribe", "unsubscribe"):
            if self.conn.principal is None:
                self.error(401, "not authenticated")
                return
            lists: dict[str, list[str]] = {}
            for channel in (*SERVED, *OTHER):
                raw = body.get(channel, [])
                if not isinstance(raw, list) or any(not isinstance(s, str) for s in raw):
                    self.error(400, "invalid syntax")
                    return
                lists[channel] = raw
            if any(lists[c] for c in OTHER):
                self.error(410, "invalid subscribe action for this feed")
            if action == "subscribe" and any(
                len(symbols | set(lists[c])) > MAX_SYMBOLS
                for c, symbols in (("trades", self.conn.trades), ("quotes", self.conn.quotes))
            ):  # (each connection's sets are bounded: nothing of this one applied)
                self.error(405, "symbol limit exceeded")
                return
            for channel, symbols in (("trades", self.conn.trades), ("quotes", self.conn.quotes)):
                if action == "subscribe":
                    symbols.update(lists[channel])
                else:
                    symbols.difference_update(lists[channel])
            self.conn.send(
                [
                    {
                        "T": "subscription",
                        "trades": sorted(self.conn.trades),
                        "quotes": sorted(self.conn.quotes),
                        **{c: [] for c in OTHER},
                    }
                ]
            )
        else:
            self.error(400, "invalid syntax")

    def authenticate(self, body: dict[str, Any]) -> None:
        if self.conn.principal is not None:
            self.error(403, "already authenticated")
            return
        key_id, secret = body.get("key"), body.get("secret")
        if (
            isinstance(key_id, str)
            and isinstance(secret, str)
            and self.api.limiter.allow(self.rate_key)
        ):
            grant = self.api.auth.verify_key(key_id, secret)
            if grant is not None:
                self.conn.principal = grant.principal
                self.unwatch = close_with_key(self.api, grant, self.conn.outbox)
                self.hub.add(self.conn)
                self.conn.send([{"T": "success", "msg": "authenticated"}])
                return
        self.error(402, "auth failed")
        self.rejected = True

    async def write(self) -> None:
        outbox = self.conn.outbox
        while True:
            frame = await outbox.next()
            if frame is None:  # closed: the endpoint sends the close (send_close)
                return
            try:
                data = self.conn.frame(frame)
                if isinstance(data, bytes):
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_text(data)
            except Exception:  # the client is gone
                return


def alpaca_market_stream_routes(api: Api, *, queue_size: int = QUEUE_SIZE) -> list[BaseRoute]:
    """The ``/v2/iex`` and ``/v2/sip`` routes over ``api``'s platform (one event listener;
    both paths serve the same data: Mercato has one feed)."""
    hub = MarketHub(api)
    api.md.on_ticks(hub.on_ticks)

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        use_msgpack = ws.headers.get("content-type", "").split(";")[0].strip() == MSGPACK
        conn = MarketConn(queue_size, use_msgpack)
        conn.send([{"T": "success", "msg": "connected"}])
        session = MarketSession(hub, ws, conn)
        idle = close_unless_signed_in(api, conn, conn.outbox)
        tasks = [
            asyncio.create_task(session.read()),
            asyncio.create_task(session.write()),
            asyncio.create_task(conn.outbox.wait_closed()),  # the writer may be stuck
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if session.rejected and not tasks[1].done():
                # a wrong key: let the error go out, then close with 1008
                for _ in range(100):
                    if not len(conn.outbox):
                        break
                    await asyncio.sleep(0.01)
                conn.outbox.close(POLICY_VIOLATION, "auth failed")
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(tasks[1]), 1.0)
        finally:
            idle.cancel()
            if session.unwatch is not None:
                session.unwatch()
            hub.remove(conn)
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            await send_close(ws, conn.outbox)

    return [WebSocketRoute(path, endpoint) for path in PATHS]

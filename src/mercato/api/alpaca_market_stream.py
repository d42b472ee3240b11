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

Trades are the matching engine's executions (``Trade`` events; paper fills are not market
data), one message each, at the maker's price; ``i`` is the engine's event seq, as on
``/v2/stocks/trades``. Quotes are the book's top: after each command that changed a
symbol's book, one quote is sent when its best bid / ask price or size changed (an empty
side is price 0 and size 0), stamped with the command's time. Only ``trades`` and
``quotes`` are served: subscribing to other channels (bars, statuses, ...) answers
``{"T": "error", "code": 410, "msg": "invalid subscribe action for this feed"}`` and they
stay empty in the subscription; the trades and quotes of the same action are still taken.

Prices and sizes are JSON / msgpack *numbers* (``price / 10**price_scale``): floats are
used here only because Alpaca's wire format has numbers; Mercato itself keeps integers.

Errors (Alpaca's codes): 400 invalid syntax, 401 not authenticated, 403 already
authenticated, 402 auth failed; the connection stays open except after a failed auth.
Slow consumers: as on ``/v1/ws``, each connection has a bounded outgoing queue (1,000
frames); a client that lets it fill up is disconnected with close code 1013 ("slow
consumer"). Market data is public elsewhere, but Alpaca's stream requires a key and so does
this one (any valid Mercato API key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from mercato.api.app import Api
from mercato.api.outbox import QUEUE_SIZE, Outbox
from mercato.api.ws import POLICY_VIOLATION
from mercato.domain.events import BookDelta, Event, Trade
from mercato.engine.book import Book
from mercato.services.auth import Principal

log = logging.getLogger(__name__)

PATHS: Final = ("/v2/iex", "/v2/sip")
MAX_MESSAGE: Final = 64 * 1024  # bytes
EXCHANGE: Final = "MERCATO"  # as on /v2/stocks
TAPE: Final = "M"
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
)
MSGPACK: Final = "application/msgpack"
_json = msgspec.json.Encoder()
_msgpack = msgspec.msgpack.Encoder()

Top = tuple[int, int, int, int]  # bid price, bid size, ask price, ask size (0: empty side)


def _number(value: int, scale: int) -> float | int:
    return value if scale == 0 else value / 10**scale


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


class MarketData:
    """The fan-out of trades and quotes by symbol; fed by ``Platform.on_events``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.conns: set[MarketConn] = set()
        self.tops: dict[str, Top] = {}  # the last top seen per symbol (while followed)

    def add(self, conn: MarketConn) -> None:
        self.conns.add(conn)

    def remove(self, conn: MarketConn) -> None:
        self.conns.discard(conn)

    def on_events(self, events: list[Event]) -> None:
        """The platform's listener: it must neither block nor raise."""
        if not self.conns:
            self.tops.clear()
            return
        try:
            self._fan_out(events)
        except Exception:  # a bug here must not break the platform's submit
            log.exception("market data fan-out failed")

    @staticmethod
    def _top(book: Book) -> Top:
        bid = book.bids.levels_best_first()[:1]
        ask = book.asks.levels_best_first()[:1]
        return (
            bid[0].price if bid else 0,
            bid[0].total if bid else 0,
            ask[0].price if ask else 0,
            ask[0].total if ask else 0,
        )

    def _fan_out(self, events: list[Event]) -> None:
        books = self.api.core.engine.books
        out: dict[MarketConn, list[dict[str, Any]]] = {}
        changed: dict[str, int] = {}  # symbol -> ts of its last book change
        for e in events:
            if isinstance(e, BookDelta):
                changed[e.symbol] = e.ts
            elif isinstance(e, Trade) and e.maker_account > 0:  # not a paper fill
                book = books.get(e.symbol)
                if book is None:
                    continue
                for conn in self.conns:
                    if e.symbol in conn.trades or "*" in conn.trades:
                        out.setdefault(conn, []).append(
                            {
                                "T": "t",
                                "S": e.symbol,
                                "i": e.seq,
                                "x": EXCHANGE,
                                "p": _number(e.price, book.price_scale),
                                "s": _number(e.qty, book.qty_scale),
                                "c": ["@"],
                                "t": conn.time(e.ts),
                                "z": TAPE,
                            }
                        )
        for symbol, ts in changed.items():
            book = books.get(symbol)
            followers = [c for c in self.conns if symbol in c.quotes or "*" in c.quotes]
            if book is None or not followers:
                self.tops.pop(symbol, None)
                continue
            top = self._top(book)
            if self.tops.get(symbol) == top:
                continue
            self.tops[symbol] = top
            bp, bs, ap, asz = top
            ps, qs = book.price_scale, book.qty_scale
            for conn in followers:
                out.setdefault(conn, []).append(
                    {
                        "T": "q",
                        "S": symbol,
                        "bx": EXCHANGE,
                        "bp": _number(bp, ps),
                        "bs": _number(bs, qs),
                        "ax": EXCHANGE,
                        "ap": _number(ap, ps),
                        "as": _number(asz, qs),
                        "c": ["R"],
                        "t": conn.time(ts),
                        "z": TAPE,
                    }
                )
        for conn, msgs in out.items():
            conn.send(msgs)
            if conn.outbox.closed is not None:
                self.remove(conn)


class MarketSession:
    """Reads a client's actions and answers them; the writer drains its outbox."""

    def __init__(self, hub: MarketData, ws: WebSocket, conn: MarketConn) -> None:
        self.hub = hub
        self.api = hub.api
        self.ws = ws
        self.conn = conn
        self.rate_key = f"ip:{ws.client.host if ws.client else '?'}"
        self.rejected = False  # a wrong key: the answer goes out, then the close

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
            p = self.api.auth.authenticate_key(key_id, secret)
            if p is not None:
                self.conn.principal = p
                self.hub.add(self.conn)
                self.conn.send([{"T": "success", "msg": "authenticated"}])
                return
        self.error(402, "auth failed")
        self.rejected = True

    async def write(self) -> None:
        outbox = self.conn.outbox
        while True:
            frame = await outbox.next()
            if frame is None:
                code, reason = outbox.closed or (1000, "")
                with contextlib.suppress(Exception):
                    await self.ws.close(code, reason)
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
    hub = MarketData(api)
    api.platform.on_events(hub.on_events)

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        use_msgpack = ws.headers.get("content-type", "").split(";")[0].strip() == MSGPACK
        conn = MarketConn(queue_size, use_msgpack)
        conn.send([{"T": "success", "msg": "connected"}])
        session = MarketSession(hub, ws, conn)
        tasks = [asyncio.create_task(session.read()), asyncio.create_task(session.write())]
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
            hub.remove(conn)
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t

    return [WebSocketRoute(path, endpoint) for path in PATHS]

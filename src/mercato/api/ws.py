"""The streaming API: one WebSocket endpoint, ``/v1/ws``, JSON text frames both ways.

Authentication: an API key in the upgrade request's headers (as for REST:
``Authorization: Bearer KEY_ID:SECRET`` or ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``;
a wrong key gets an error message and close code 1008), or a message
``{"op": "auth", "key_id": "...", "secret": "..."}``. Session cookies are not accepted
here (browsers send them cross-site on a WebSocket upgrade). Anonymous clients may use the
public channels only.

Client operations (unknown ops or fields, bad JSON and frames over 64 KiB get an error
message, never a disconnect; an optional ``id`` on any op is echoed in its reply)::

    {"op": "auth", "key_id": "..", "secret": ".."}
        -> {"op": "auth", "status": 200, "user_id": .., "accounts": [..]}
    {"op": "subscribe", "channels": ["trades:XYZ", "book:XYZ", "orders", "fills"]}
        -> {"op": "subscribe", "status": 200, "channels": [every channel followed now]}
    {"op": "unsubscribe", "channels": [..]}
        -> {"op": "unsubscribe", "status": 200, "channels": [..]}
    {"op": "order", <the fields of POST /v1/orders>}
        -> {"op": "order", "status": 201, "order": {..}}  (200: a repeated client_order_id)
    {"op": "cancel", "order_id": "123"}
        -> {"op": "cancel", "status": 200, "order": {..}}
    {"op": "ping"} -> {"op": "pong"}

A refused operation answers the REST error shape, with the op and the HTTP-like status::

    {"op": "order", "status": 422, "error": {"code": "insufficient_buying_power", "message": ".."}}

Channels. Every channel message carries ``channel`` and ``seq``: 1, 2, 3, ... per channel
on this connection (kept across re-subscribing). The server never drops a message (see
slow consumers, below), so a gap means a bug; a client that sees one re-subscribes and, on
a book, gets a fresh snapshot.

* ``trades:SYM`` (public): ``{"trade": {"trade_id", "symbol", "price", "qty", "side"
  (the taker's), "ts"}}`` for each trade on the matching engine (not paper fills).
* ``book:SYM`` (public): on subscribing, ``{"type": "snapshot", "bids": [[price, qty],
  ..], "asks": [..], "event_seq": n}`` with every aggregated level, best first; then
  ``{"type": "delta", "bids": [..], "asks": [..], "event_seq": n}`` per command that moved
  the book, each level with its new total quantity ("0": the level is gone). Levels are
  absolute, so applying a delta twice is harmless; deltas with ``event_seq`` at or below
  the snapshot's are already in it.
* ``orders`` (private): ``{"order": <as GET /v1/orders/{id}, without history>}`` for each
  of the caller's orders after each command that touched it (accepted, filled, cancelled,
  replaced, expired, triggered, rejected, stop moved).
* ``fills`` (private): ``{"fill": <as GET /v1/fills>}`` for each execution of the
  caller's orders.

Heartbeats: the server sends ``{"op": "heartbeat"}`` every ``heartbeat`` seconds (10 by
default).

Limits: at most 100 channels per connection (``too_many_subscriptions``); frames of at
most 64 KiB. Order entry and cancels count against the caller's REST rate limit.

Slow consumers: the platform's fan-out never waits. Each connection has a bounded
outgoing queue (1,000 messages by default); a client that lets it fill up is disconnected
at once with close code 1013 ("try again later") and reason ``"slow consumer"``: it may
reconnect, re-subscribe and start over from fresh snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

import msgspec
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from mercato.api import schemas as s
from mercato.api.app import Api, ApiError
from mercato.domain.events import (
    BookDelta,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    Rejected,
    StopMoved,
    Trade,
)
from mercato.domain.instrument import format_decimal
from mercato.domain.types import SIDE_NAMES, Side
from mercato.services.auth import Principal

log = logging.getLogger(__name__)

PATH: Final = "/v1/ws"
MAX_MESSAGE: Final = 64 * 1024  # bytes
MAX_SUBSCRIPTIONS: Final = 100
QUEUE_SIZE: Final = 1_000
MAX_IN_FLIGHT: Final = 1_000  # a connection's messages being handled at once (journaled)
HEARTBEAT: Final = 10.0  # seconds
SLOW_CONSUMER: Final = (1013, "slow consumer")
POLICY_VIOLATION: Final = 1008
PRIVATE: Final = ("orders", "fills")

_json = msgspec.json.Encoder()
ReqId = str | int | None


# -- client messages ---------------------------------------------------------------------


class _Op(msgspec.Struct):
    """Only the op, to pick the message's type (other fields ignored here)."""

    op: str = ""


class _Msg(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    op: str
    id: ReqId = None


class AuthMsg(_Msg):
    key_id: str
    secret: str


class SubscribeMsg(_Msg):
    channels: list[str]


class PingMsg(_Msg):
    pass


class CancelMsg(_Msg):
    order_id: str | int


class OrderMsg(s.OrderRequest, forbid_unknown_fields=True, kw_only=True):
    op: str
    id: ReqId = None


_TYPES_BY_OP: Final[dict[str, type[Any]]] = {
    "auth": AuthMsg,
    "subscribe": SubscribeMsg,
    "unsubscribe": SubscribeMsg,
    "ping": PingMsg,
    "order": OrderMsg,
    "cancel": CancelMsg,
}


# -- the outgoing queue ------------------------------------------------------------------


class Outbox:
    """A connection's bounded queue of outgoing frames.

    ``offer`` never blocks: when the queue is full the connection is condemned (close
    code 1013, "slow consumer"), what it still had queued is dropped, and the writer sees
    the close next. After ``close`` every offer is refused. Frames leave in order, through
    ``take`` (by whichever task is sending: see ``Session.flush``) or ``next``.
    """

    def __init__(self, maxsize: int = QUEUE_SIZE) -> None:
        self._frames: deque[str] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.closed: tuple[int, str] | None = None

    def offer(self, frame: str) -> bool:
        if self.closed is not None:
            return False
        if len(self._frames) >= self._maxsize:
            self.close(*SLOW_CONSUMER)
            return False
        self._frames.append(frame)
        self._ready.set()
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is not None:
            return
        self.closed = (code, reason)
        self._frames.clear()  # drop the backlog: the close goes out next
        self._ready.set()

    def take(self) -> str | None:
        """The next frame if one is queued (None when empty or closed), without waiting."""
        return self._frames.popleft() if self._frames and self.closed is None else None

    async def offered(self) -> None:
        """Wait until something was offered (or the outbox closed) since the last wait."""
        await self._ready.wait()
        self._ready.clear()

    async def next(self) -> str | None:
        """The next frame, or None once closed (then ``closed`` says how)."""
        while True:
            if self.closed is not None:
                return None
            if self._frames:
                return self._frames.popleft()
            await self.offered()

    def __len__(self) -> int:
        return len(self._frames)


class Conn:
    """One client: who it is, what it follows, its per-channel seqs and its outbox."""

    def __init__(self, principal: Principal | None, queue_size: int) -> None:
        self.principal = principal
        self.channels: set[str] = set()
        self.seqs: dict[str, int] = {}
        self.outbox = Outbox(queue_size)

    def reply(self, data: dict[str, Any]) -> None:
        self.outbox.offer(_json.encode(data).decode())

    def publish(self, channel: str, body: bytes) -> None:
        """Send ``body`` (an encoded JSON object) on ``channel``, with the next seq."""
        seq = self.seqs.get(channel, 0) + 1
        self.seqs[channel] = seq
        head = b'{"channel":%s,"seq":%d' % (_json.encode(channel), seq)
        self.outbox.offer((head + b"," + body[1:]).decode())


# -- the fan-out -------------------------------------------------------------------------


class Hub:
    """Every connection, indexed by what it follows; fed by ``Platform.on_events``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.conns: set[Conn] = set()
        self.public: dict[str, set[Conn]] = {}  # "trades:XYZ" / "book:XYZ" -> followers
        self.private: dict[tuple[str, int], set[Conn]] = {}  # ("orders", account) -> ...

    def _keys(self, conn: Conn, channel: str) -> list[tuple[str, int]] | None:
        if channel in PRIVATE:
            p = conn.principal
            return [(channel, a) for a in p.accounts] if p is not None else []
        return None

    def follow(self, conn: Conn, channel: str) -> None:
        conn.channels.add(channel)
        keys = self._keys(conn, channel)
        if keys is None:
            self.public.setdefault(channel, set()).add(conn)
        for k in keys or ():
            self.private.setdefault(k, set()).add(conn)

    def unfollow(self, conn: Conn, channel: str) -> None:
        conn.channels.discard(channel)
        keys = self._keys(conn, channel)
        if keys is None:
            _discard(self.public, channel, conn)
        for k in keys or ():
            _discard(self.private, k, conn)

    def add(self, conn: Conn) -> None:
        self.conns.add(conn)

    def remove(self, conn: Conn) -> None:
        for channel in list(conn.channels):
            self.unfollow(conn, channel)
        self.conns.discard(conn)

    def on_events(self, events: list[Event]) -> None:
        """The platform's listener: it must neither block nor raise."""
        if not self.public and not self.private:
            return
        try:
            self._fan_out(events)
        except Exception:  # a bug here must not break the platform's submit
            log.exception("websocket fan-out failed")

    def _send(self, followers: Iterable[Conn], channel: str, data: dict[str, Any]) -> None:
        body = _json.encode(data)
        for conn in list(followers):
            conn.publish(channel, body)
            if conn.outbox.closed is not None:
                self.remove(conn)

    def _fan_out(self, events: list[Event]) -> None:
        api, history = self.api, self.api.platform.history
        books: dict[str, tuple[dict[int, int], dict[int, int], int]] = {}
        touched: dict[int, None] = {}  # order ids, in the order first touched
        fills: list[tuple[int, int]] = []  # (order id, trade seq)
        for e in events:
            if isinstance(e, BookDelta):
                bids, asks, _ = books.get(e.symbol, ({}, {}, 0))
                (bids if e.side == Side.BUY else asks)[e.price] = e.qty
                books[e.symbol] = (bids, asks, e.seq)
            elif isinstance(e, Trade):
                touched[e.taker_order_id] = None
                fills.append((e.taker_order_id, e.seq))
                if e.maker_order_id:
                    touched[e.maker_order_id] = None
                    fills.append((e.maker_order_id, e.seq))
                channel = f"trades:{e.symbol}"
                followers = self.public.get(channel)
                if followers and e.maker_account > 0:  # not a paper fill
                    self._send(followers, channel, {"trade": self._trade(e)})
            elif (
                isinstance(
                    e,
                    OrderAccepted
                    | OrderCancelled
                    | OrderReplaced
                    | OrderExpired
                    | OrderTriggered
                    | StopMoved
                    | Rejected,
                )
                and e.order_id
            ):
                touched[e.order_id] = None
        for symbol, (bids, asks, seq) in books.items():
            channel = f"book:{symbol}"
            followers = self.public.get(channel)
            if followers:
                book = api.core.engine.books[symbol]
                data = {
                    "type": "delta",
                    "bids": _levels(bids.items(), book.price_scale, book.qty_scale),
                    "asks": _levels(asks.items(), book.price_scale, book.qty_scale),
                    "event_seq": seq,
                }
                self._send(followers, channel, data)
        if not self.private:
            return
        for oid in touched:
            v = history.order(oid)
            if v is not None and v.account:
                followers = self.private.get(("orders", v.account))
                if followers:
                    self._send(followers, "orders", {"order": api.order_json(v)})
        for oid, trade_seq in fills:
            v = history.order(oid)
            if v is None:
                continue
            followers = self.private.get(("fills", v.account))
            if not followers:
                continue
            for f in reversed(v.fills):
                if f.seq == trade_seq and f.order_id == oid:
                    self._send(followers, "fills", {"fill": api.fill_json(f)})
                    break

    def _trade(self, t: Trade) -> dict[str, Any]:
        book = self.api.core.engine.books.get(t.symbol)
        ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
        return {
            "trade_id": str(t.seq),
            "symbol": t.symbol,
            "price": format_decimal(t.price, ps),
            "qty": format_decimal(t.qty, qs),
            "side": SIDE_NAMES.get(Side(t.taker_side), "?"),
            "ts": t.ts,
        }

    def snapshot(self, symbol: str) -> dict[str, Any]:
        book = self.api.core.engine.books[symbol]
        ps, qs = book.price_scale, book.qty_scale
        return {
            "type": "snapshot",
            "bids": _levels(book.bids.depth(0), ps, qs),
            "asks": _levels(book.asks.depth(0), ps, qs),
            "event_seq": self.api.core.engine.seq,
        }


def _discard(index: dict[Any, set[Conn]], key: Any, conn: Conn) -> None:
    followers = index.get(key)
    if followers is not None:
        followers.discard(conn)
        if not followers:
            del index[key]


def _levels(levels: Iterable[tuple[int, int]], ps: int, qs: int) -> list[list[str]]:
    return [[format_decimal(p, ps), format_decimal(q, qs)] for p, q in levels]


# -- one connection ----------------------------------------------------------------------


class Session:
    """Reads a client's messages and answers them; the writer drains its outbox."""

    def __init__(self, hub: Hub, ws: WebSocket, conn: Conn, max_subscriptions: int) -> None:
        self.hub = hub
        self.api = hub.api
        self.ws = ws
        self.conn = conn
        self.max_subscriptions = max_subscriptions
        self.rate_key = f"ip:{ws.client.host if ws.client else '?'}"
        self.sending = False  # a task is in ``flush``
        # With a journal, each command waits for its group's fsync: the reader then hands
        # each message to a task and reads on, so a client's pipelined orders share group
        # commits (they still enter the journal in the order they arrived: each task
        # queues its command before its first wait). In memory, a task would only add
        # a hop: the reader handles each message itself.
        self.pipelined = self.api.platform.durable
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.in_flight: set[asyncio.Task[None]] = set()

    def error(
        self, op: str | None, status: int, code: str, message: str = "", id: Any = None
    ) -> None:
        out: dict[str, Any] = {}
        if op is not None:
            out["op"] = op
            out["status"] = status
        if id is not None:
            out["id"] = id
        out["error"] = {"code": code, "message": message or code.replace("_", " ")}
        self.conn.reply(out)

    async def read(self) -> None:
        while self.conn.outbox.closed is None:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            raw = msg.get("text")
            data: bytes = raw.encode() if raw is not None else (msg.get("bytes") or b"")
            if len(data) > MAX_MESSAGE:
                self.error(None, 413, "message_too_large", f"at most {MAX_MESSAGE} bytes")
                continue
            if self.pipelined:
                await self.slots.acquire()  # at most MAX_IN_FLIGHT: then stop reading
                task = asyncio.create_task(self.handle_and_flush(data))
                self.in_flight.add(task)
                task.add_done_callback(self._landed)
            else:
                await self.handle_and_flush(data)

    async def handle_and_flush(self, data: bytes) -> None:
        await self.handle(data)
        await self.flush()

    def _landed(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.slots.release()

    async def flush(self) -> None:
        """Send what is queued, in order, from this task. The reader calls it after each
        message, so a reply leaves at once rather than after one more turn of the event
        loop to wake the writer (about 6 us of the order round trip's median). One task
        sends at a time: the other leaves the queue to it."""
        if self.sending:
            return
        self.sending = True
        try:
            outbox = self.conn.outbox
            while (frame := outbox.take()) is not None:
                await self.ws.send_text(frame)
        finally:
            self.sending = False

    async def handle(self, data: bytes) -> None:
        try:
            op = msgspec.json.decode(data, type=_Op).op
        except msgspec.ValidationError as e:
            self.error(None, 400, "invalid_message", str(e))
            return
        except msgspec.DecodeError as e:
            self.error(None, 400, "invalid_json", str(e))
            return
        kind = _TYPES_BY_OP.get(op)
        if kind is None:
            self.error(op or None, 400, "unknown_op", f"unknown op {op!r}")
            return
        try:
            msg = msgspec.json.decode(data, type=kind)
        except msgspec.ValidationError as e:
            self.error(op, 400, "invalid_message", str(e))
            return
        try:
            await getattr(self, f"op_{op}")(msg)
        except ApiError as e:
            self.error(op, e.status, e.code, e.message, msg.id)
        except Exception:  # a bug: answer it, keep the connection
            log.exception("websocket op %s failed", op)
            self.error(op, 500, "internal_error", "", msg.id)

    def reply(self, msg: _Msg | OrderMsg, **data: Any) -> None:
        out: dict[str, Any] = {"op": msg.op}
        if msg.id is not None:
            out["id"] = msg.id
        out.update(data)
        self.conn.reply(out)

    def user(self) -> Principal:
        p = self.conn.principal
        if p is None:
            raise ApiError(401, "unauthenticated", "send an API key first (op auth)")
        if not self.api.limiter.allow(self.rate_key):
            raise ApiError(429, "rate_limited", "too many requests: slow down")
        return p

    # -- ops -----------------------------------------------------------------------------

    async def op_ping(self, msg: PingMsg) -> None:
        self.reply(msg, op="pong")

    async def op_auth(self, msg: AuthMsg) -> None:
        if self.conn.principal is not None:
            raise ApiError(409, "already_authenticated", "this connection is signed in")
        if not self.api.limiter.allow(self.rate_key):
            raise ApiError(429, "rate_limited", "too many requests: slow down")
        p = self.api.auth.authenticate_key(msg.key_id, msg.secret)
        if p is None:
            raise ApiError(401, "bad_key", "unknown or revoked API key, or wrong secret")
        self.conn.principal = p
        self.rate_key = f"k:{msg.key_id}"
        self.reply(msg, status=200, user_id=p.user_id, accounts=list(p.accounts))

    async def op_subscribe(self, msg: SubscribeMsg) -> None:
        conn, books = self.conn, self.api.core.engine.books
        wanted = list(dict.fromkeys(msg.channels))
        for channel in wanted:
            if channel in PRIVATE:
                if conn.principal is None:
                    raise ApiError(401, "unauthenticated", f"{channel} needs an API key")
                continue
            kind, _, symbol = channel.partition(":")
            if kind not in ("trades", "book") or not symbol:
                raise ApiError(400, "unknown_channel", f"no channel {channel[:100]!r}")
            if symbol not in books:
                raise ApiError(404, "unknown_symbol", f"no instrument {symbol[:100]!r}")
        if len(conn.channels | set(wanted)) > self.max_subscriptions:
            raise ApiError(
                400,
                "too_many_subscriptions",
                f"at most {self.max_subscriptions} channels per connection",
            )
        for channel in wanted:
            self.hub.follow(conn, channel)
        self.reply(msg, status=200, channels=sorted(conn.channels))
        for channel in wanted:
            if channel.startswith("book:"):
                conn.publish(channel, _json.encode(self.hub.snapshot(channel[5:])))

    async def op_unsubscribe(self, msg: SubscribeMsg) -> None:
        for channel in msg.channels:
            if channel in self.conn.channels:
                self.hub.unfollow(self.conn, channel)
        self.reply(msg, status=200, channels=sorted(self.conn.channels))

    async def op_order(self, msg: OrderMsg) -> None:
        """As ``POST /v1/orders`` (``Api.place_for``)."""
        status, v = await self.api.place_for(self.user(), msg)
        self.reply(msg, status=status, order=self.api.order_json(v))

    async def op_cancel(self, msg: CancelMsg) -> None:
        """As ``DELETE /v1/orders/{order_id}`` (``Api.cancel_for``)."""
        try:
            order_id = int(msg.order_id)
        except ValueError:
            raise ApiError(404, "unknown_order", "no such order") from None
        v = await self.api.cancel_for(self.user(), order_id)
        self.reply(msg, status=200, order=self.api.order_json(v))

    # -- the other tasks -----------------------------------------------------------------

    async def write(self) -> None:
        """Send what the fan-out queues; a frame queued while the reader is flushing
        leaves with its flush (a wake-up then finds nothing to do)."""
        outbox = self.conn.outbox
        while True:
            await outbox.offered()
            if outbox.closed is not None:
                code, reason = outbox.closed
                with contextlib.suppress(Exception):
                    await self.ws.close(code, reason)
                return
            try:
                await self.flush()
            except Exception:  # the client is gone
                return

    async def beat(self, every: float) -> None:
        frame = _json.encode({"op": "heartbeat"}).decode()
        while True:
            await asyncio.sleep(every)
            self.conn.outbox.offer(frame)


def header_key(ws: WebSocket) -> tuple[str, str] | None:
    """The API key in the upgrade request's headers, as ``Api.principal`` reads it."""
    h = ws.headers
    key_id, secret = h.get("apca-api-key-id"), h.get("apca-api-secret-key")
    auth = h.get("authorization", "")
    if not key_id and auth.lower().startswith("bearer ") and ":" in auth:
        key_id, _, secret = auth[7:].strip().partition(":")
    if key_id or secret:
        return key_id or "", secret or ""
    return None


def websocket_route(
    api: Api,
    *,
    heartbeat: float = HEARTBEAT,
    queue_size: int = QUEUE_SIZE,
    max_subscriptions: int = MAX_SUBSCRIPTIONS,
) -> WebSocketRoute:
    """The ``/v1/ws`` route over ``api``'s platform (it registers one event listener)."""
    hub = Hub(api)
    api.platform.on_events(hub.on_events)

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        conn = Conn(None, queue_size)
        key = header_key(ws)
        if key is not None:
            conn.principal = api.auth.authenticate_key(*key)
            if conn.principal is None:
                body = {"error": {"code": "bad_key", "message": "unknown or revoked API key"}}
                await ws.send_text(_json.encode(body).decode())
                await ws.close(POLICY_VIOLATION, "bad key")
                return
        session = Session(hub, ws, conn, max_subscriptions)
        if conn.principal is not None:
            session.rate_key = f"k:{key[0] if key else ''}"
        hub.add(conn)
        tasks = [asyncio.create_task(session.read()), asyncio.create_task(session.write())]
        if heartbeat > 0:
            tasks.append(asyncio.create_task(session.beat(heartbeat)))
        try:
            await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        finally:
            hub.remove(conn)
            tasks += session.in_flight  # their commands are queued: only the replies go
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t

    return WebSocketRoute(PATH, endpoint)

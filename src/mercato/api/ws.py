"""The streaming API: one WebSocket endpoint, ``/v1/ws``, JSON text frames both ways.

Authentication: an API key in the upgrade request's headers (as for REST:
``Authorization: Bearer KEY_ID:SECRET`` or ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``;
a wrong key gets an error message and close code 1008), or a message
``{"op": "auth", "key_id": "...", "secret": "..."}``. Session cookies are not accepted
here (browsers send them cross-site on a WebSocket upgrade). Anonymous clients may use the
public channels only.

Client operations (unknown ops or fields and bad JSON get an error message, never a
disconnect; an optional ``id`` on any op is echoed in its reply)::

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

Market-data channels (public; what each carries: ``services/marketdata.py`` and
``docs/marketdata.md``): ``trades:SYM``, ``quotes:SYM``, ``book:SYM``, ``l3:SYM``,
``bars:SYM[:1s|1m|5m|1h|1d]``, ``stats:SYM``, ``auction:SYM``. Subscribing sends the
channel's snapshot
``{"channel", "seq": S, "type": "snapshot", ...}``; each update after it is ``{"channel",
"seq", "type": "update", ...}`` with ``seq`` S+1, S+2, ...: the channel's own count, the
same for every subscriber (one encoding, shared). Quotes, stats and auction are the whole
state in
every message and conflate (the latest wins), so their seq may skip. A client that sees a
gap elsewhere re-subscribes: that sends a fresh snapshot.

``?encoding=binary`` on the URL: market data in binary frames, each ``varint channel id``
then a small-ticks frame (``docs/ticks.md``); the subscribe reply maps channels to ids
(``"ids"``). Stats stay JSON text. Replies and private channels are JSON text either way.

Private channels carry their own ``seq`` per connection (1, 2, 3, ...):

* ``orders`` (private): ``{"order": <as GET /v1/orders/{id}, without history>}`` for each
  of the caller's orders after each command that touched it (accepted, filled, cancelled,
  replaced, expired, triggered, rejected, stop moved).
* ``fills`` (private): ``{"fill": <as GET /v1/fills>}`` for each execution of the
  caller's orders.

Heartbeats: the server sends ``{"op": "heartbeat"}`` every ``heartbeat`` seconds (10 by
default).

Limits: at most 100 channels per connection (``too_many_subscriptions``); messages of at
most 64 KiB (the server refuses a larger frame with close 1009 as its header arrives:
``api/limits.py``). A connection that has neither signed in nor subscribed within the
idle timeout (10 s) is closed with 1008; one signed in with a key that is revoked or
expires is closed with 1008, ``key revoked`` / ``key expired`` (``api/keywatch.py``).
Order entry and cancels count against the caller's REST rate limits (the key's and the
user's).

Slow consumers: the platform's fan-out never waits. Each connection has a bounded
outgoing queue (1,000 messages by default). Quotes and stats hold one place each (the
latest wins); a book more than ``BOOK_LAG`` deltas behind is sent a fresh snapshot instead
of them; a client that lets the queue fill up anyway (trades, L3 and bars are never
dropped) is disconnected at once with close code 1013 ("try again later") and reason
``"slow consumer"``: it may reconnect, re-subscribe and start over from fresh snapshots.
Its queue is dropped, the close frame is written at once whatever the socket's
back-pressure, and a client that has not answered it ``CLOSE_TIMEOUT`` (2 s) later (one
that stopped reading never will) is aborted: reset, its unsent data discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from mercato.api import schemas as s
from mercato.api.app import Api, ApiError
from mercato.api.base import header_key
from mercato.api.outbox import QUEUE_SIZE, Conn, send_close
from mercato.domain.events import (
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
from mercato.marketdata.codec import channel_prefix
from mercato.marketdata.market import Message
from mercato.services.auth import KeyGrant, Principal
from mercato.services.marketdata import ChannelError

log = logging.getLogger(__name__)

PATH: Final = "/v1/ws"
MAX_MESSAGE: Final = 64 * 1024  # bytes
MAX_SUBSCRIPTIONS: Final = 100
MAX_IN_FLIGHT: Final = 1_000  # a connection's messages being handled at once (journaled)
HEARTBEAT: Final = 10.0  # seconds
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


# -- the fan-out -------------------------------------------------------------------------


class Hub:
    """Every connection, indexed by what it follows; fed by the market-data service's
    publications (public channels) and by ``Platform.on_events`` (private ones)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.md = api.md
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

    def on_publish(self, messages: list[Message]) -> None:
        """The market-data service's listener: the same message object to each follower
        (each connection encodes nothing; a slow one is cut off, never waited for)."""
        try:
            public = self.public
            for msg in messages:
                followers = public.get(msg.channel.name)
                if not followers:
                    continue
                gone = None
                for conn in followers:
                    conn.deliver(msg)
                    if conn.outbox.closed is not None:
                        gone = [*gone, conn] if gone else [conn]
                for conn in gone or ():
                    self.remove(conn)
        except Exception:  # a bug here must not break the platform's submit
            log.exception("websocket market-data fan-out failed")

    def on_events(self, events: list[Event]) -> None:
        """The platform's listener for the private channels: it must neither block nor
        raise."""
        if not self.private:
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
        touched: dict[int, None] = {}  # order ids, in the order first touched
        fills: list[tuple[int, int]] = []  # (order id, trade seq)
        for e in events:
            if isinstance(e, Trade):
                touched[e.taker_order_id] = None
                fills.append((e.taker_order_id, e.seq))
                if e.maker_order_id:
                    touched[e.maker_order_id] = None
                    fills.append((e.maker_order_id, e.seq))
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


def _discard(index: dict[Any, set[Conn]], key: Any, conn: Conn) -> None:
    followers = index.get(key)
    if followers is not None:
        followers.discard(conn)
        if not followers:
            del index[key]


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
        self.unwatch: Callable[[], None] | None = None  # follows the key it signed in with

    def signed_in(self, grant: KeyGrant) -> None:
        """Signed in with ``grant``'s key: the connection closes (1008) when the key is
        revoked or expires (``api/keywatch.py``)."""
        self.conn.principal = grant.principal
        self.rate_key = f"k:{grant.key_id}"
        outbox = self.conn.outbox
        self.unwatch = self.api.keys.watch(grant, lambda why: outbox.close(POLICY_VIOLATION, why))

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
            conn, md, ws = self.conn, self.hub.md, self.ws
            outbox = conn.outbox
            while (entry := outbox.take()) is not None:
                for frame in conn.frames(entry, md):
                    if isinstance(frame, str):
                        await ws.send_text(frame)
                    else:
                        await ws.send_bytes(frame)
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
        if not self.api.limiter.allow(self.rate_key, p.user_id):
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
        grant = self.api.auth.verify_key(msg.key_id, msg.secret)
        if grant is None:
            raise ApiError(401, "bad_key", "unknown or revoked API key, or wrong secret")
        self.signed_in(grant)
        p = grant.principal
        self.reply(msg, status=200, user_id=p.user_id, accounts=list(p.accounts))

    async def op_subscribe(self, msg: SubscribeMsg) -> None:
        conn, md = self.conn, self.hub.md
        wanted: dict[str, None] = {}
        for channel in msg.channels:
            if channel in PRIVATE:
                if conn.principal is None:
                    raise ApiError(401, "unauthenticated", f"{channel} needs an API key")
                wanted[channel] = None
                continue
            try:
                wanted[md.canonical(channel)] = None  # "bars:X" is "bars:X:1m"
            except ChannelError as e:
                raise ApiError(e.status, e.code, str(e)) from None
        if len(conn.channels | set(wanted)) > self.max_subscriptions:
            raise ApiError(
                400,
                "too_many_subscriptions",
                f"at most {self.max_subscriptions} channels per connection",
            )
        for channel in wanted:
            if channel not in PRIVATE and channel not in conn.ids:
                conn.ids[channel] = len(conn.ids) + 1
                conn.prefix[channel] = channel_prefix(conn.ids[channel])
        followed = sorted(conn.channels | set(wanted))
        extra: dict[str, Any] = {}
        if conn.binary:
            extra["ids"] = {c: conn.ids[c] for c in followed if c in conn.ids}
        self.reply(msg, status=200, channels=followed, **extra)
        for channel in wanted:  # then each channel's snapshot (again, on a re-subscribe:
            if channel not in PRIVATE:  # how a client recovers from a gap), and only then
                for frame in conn.snapshot(channel, md):  # is it followed: a publication
                    conn.outbox.offer(frame)  # still pending goes into the snapshot
            if channel not in conn.channels:
                self.hub.follow(conn, channel)

    async def op_unsubscribe(self, msg: SubscribeMsg) -> None:
        md = self.hub.md
        for channel in msg.channels:
            if channel not in PRIVATE:
                with contextlib.suppress(ChannelError):
                    channel = md.canonical(channel)
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
        leaves with its flush (a wake-up then finds nothing to do). It ends when the
        outbox closes: the endpoint sends the close (``send_close``)."""
        outbox = self.conn.outbox
        while True:
            await outbox.offered()
            if outbox.closed is not None:
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


def _idle_check(conn: Conn) -> None:
    """``Limits.ws_idle_timeout`` after opening: a connection that has neither signed in nor
    subscribed to anything holds resources for nothing, and is closed."""
    if conn.principal is None and not conn.channels:
        conn.outbox.close(POLICY_VIOLATION, "sign in or subscribe within the idle timeout")


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
    api.md.on_publish(hub.on_publish)

    async def endpoint(ws: WebSocket) -> None:
        encoding = ws.query_params.get("encoding", "json")
        if encoding not in ("json", "binary"):
            await ws.close(POLICY_VIOLATION, "encoding is json or binary")
            return
        await ws.accept()
        conn = Conn(None, queue_size, binary=encoding == "binary")
        session = Session(hub, ws, conn, max_subscriptions)
        key = header_key(ws.headers)
        if key is not None:
            grant = api.auth.verify_key(*key)
            if grant is None:
                body = {"error": {"code": "bad_key", "message": "unknown or revoked API key"}}
                await ws.send_text(_json.encode(body).decode())
                await ws.close(POLICY_VIOLATION, "bad key")
                return
            session.signed_in(grant)
        hub.add(conn)
        idle = asyncio.get_running_loop().call_later(api.limits.ws_idle_timeout, _idle_check, conn)
        tasks = [
            asyncio.create_task(session.read()),
            asyncio.create_task(session.write()),
            asyncio.create_task(conn.outbox.wait_closed()),  # cut off: the writer may be
        ]  # stuck sending to a client that stopped reading; it is cancelled, not waited for
        if heartbeat > 0:
            tasks.append(asyncio.create_task(session.beat(heartbeat)))
        try:
            await asyncio.wait(tasks[:3], return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            if session.unwatch is not None:
                session.unwatch()
            hub.remove(conn)
            tasks += session.in_flight  # their commands are queued: only the replies go
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            await send_close(ws, conn.outbox)

    return WebSocketRoute(PATH, endpoint)

"""An async client of the streaming API (``/v1/ws``): ``Stream``.

::

    from mercato.client import Stream

    async with Stream("ws://localhost:8000", key_id, secret) as s:
        await s.subscribe("trades:XYZ", "orders", "fills")
        order = await s.place_order("XYZ", "buy", "limit", qty=10, price="100.00")
        async for msg in s:  # {"channel": "orders", "seq": 1, "order": {..}}, ...
            print(msg["channel"], msg["seq"])

One reader task reads every frame: a reply (it carries the ``id`` this client put on its
request) completes the awaiting call, a channel message goes into a bounded queue that
``async for`` drains, and heartbeats are dropped. So channel messages keep arriving while
a call waits for its reply, and a call does not need the iterator to be consumed.

Channel messages are yielded as plain dicts, as the server sends them (prices and
quantities are decimal strings). Numbers sent (``qty``, ``price``...) are ``str``, ``int``
or ``Decimal``, as in the REST client; a float raises ``TypeError``.

Errors: a refused operation raises the same ``MercatoError`` subclass as the REST call
(``RiskRejected`` for a 422, ...). A connection-level error (a wrong API key: close code
1008) fails the pending calls and the iterator with ``Unauthorized``; a closed connection
with ``StreamClosed``.

Sequence gaps: after a channel's snapshot (seq S), its updates must go S+1, S+2, ...
(quotes, stats and auction excepted: each is the whole state and the server conflates
them, so their seq may skip), and a market-data update before its channel's snapshot is a gap too
(``expected`` 0). A gap (which the server never causes: it disconnects a slow consumer
rather than drop a message, and sends a book that fell behind a fresh snapshot) **raises**
``SequenceGap`` from the iterator, after the messages received before it; the stream is
then unusable, and the caller reconnects and re-subscribes (getting fresh book snapshots).
The same happens when the local queue (``queue_size`` messages) is full because the
iterator is not drained: ``StreamOverflow``, rather than silently dropping messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from mercato.client import _calls as c
from mercato.client import models as m
from mercato.client._calls import Number, OrderClass, OrderType, Side, TimeInForce
from mercato.client.errors import ERRORS, MercatoError

PATH = "/v1/ws"
_STATE_CHANNELS = ("quotes:", "stats:", "auction:")  # each message the whole state


class StreamError(Exception):
    """The stream can no longer be used (see the subclasses); reconnect to go on."""


class StreamClosed(StreamError):
    """The connection closed; ``code`` and ``reason`` are the close frame's."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(
            f"stream closed ({code}): {reason}" if reason else f"stream closed ({code})"
        )
        self.code = code
        self.reason = reason


class SequenceGap(StreamError):
    """A channel's ``seq`` skipped: ``expected`` was due, ``got`` arrived."""

    def __init__(self, channel: str, expected: int, got: int) -> None:
        super().__init__(f"{channel}: expected seq {expected}, got {got}")
        self.channel = channel
        self.expected = expected
        self.got = got


class StreamOverflow(StreamError):
    """The local queue of channel messages filled up: the iterator was not drained."""


class _OrderReply(msgspec.Struct):
    order: m.Order


class _Channels(msgspec.Struct):
    channels: list[str]


_order_reply = msgspec.json.Decoder(_OrderReply)
_channels_reply = msgspec.json.Decoder(_Channels)
_decode = msgspec.json.Decoder()


def _error(data: dict[str, Any]) -> MercatoError:
    e = data.get("error") or {}
    code = str(e.get("code", "error")) if isinstance(e, dict) else "error"
    message = str(e.get("message", "")) if isinstance(e, dict) else ""
    status = data.get("status")
    if not isinstance(status, int):
        status = 401 if code == "bad_key" else 400
    return ERRORS.get(status, MercatoError)(status, code, message)


class Stream:
    """A WebSocket connection to ``/v1/ws``, authenticated with an API key.

    ``url`` is the server's base (``ws://host:port`` or ``http://host:port``), or a whole
    URL naming its path, used as is: ``/v1/ws``, or the market-data server's ``/v1/md``
    (``mercato serve --md-port``; market data only, ``?interval=250`` for batched
    delivery). ``timeout`` (seconds) bounds each call's wait for its
    reply; ``queue_size`` bounds the channel messages not yet iterated. Use as an async
    context manager, or ``await connect()`` / ``await close()``.
    """

    def __init__(
        self,
        url: str,
        key_id: str,
        secret: str,
        *,
        timeout: float = 10,
        queue_size: int = 10_000,
    ) -> None:
        url = str(url).rstrip("/")
        if url.startswith("http"):
            url = "ws" + url[4:]
        path = url.split("://", 1)[-1].partition("/")[2].partition("?")[0]
        self.url = url if path in ("v1/ws", "v1/md") else url + PATH
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {key_id}:{secret}"}
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_size)
        self._pending: dict[int, tuple[str, asyncio.Future[bytes]]] = {}
        self._order: deque[int] = deque()  # pending ids, oldest first
        self._seqs: dict[str, int] = {}
        self._next_id = 0
        self._failure: BaseException | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def failure(self) -> BaseException | None:
        """The error that made the stream unusable, or ``None`` while it is usable."""
        return self._failure

    # -- life ----------------------------------------------------------------------------

    async def connect(self) -> None:
        self._ws = await connect(self.url, additional_headers=self._headers)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        self._fail(self._failure or StreamClosed(1000, "closed by the client"))

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- channel messages ----------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        """The next channel message; raises once the stream failed and is drained."""
        if self._queue.empty() and self._failure is not None:
            raise self._failure
        msg = await self._queue.get()
        if "channel" not in msg:  # the wake-up put by _fail
            assert self._failure is not None
            raise self._failure
        return msg

    # -- operations ----------------------------------------------------------------------

    async def subscribe(self, *channels: str) -> list[str]:
        """Follow channels; every channel followed now."""
        raw = await self._call({"op": "subscribe", "channels": list(channels)})
        return _channels_reply.decode(raw).channels

    async def unsubscribe(self, *channels: str) -> list[str]:
        """Stop following channels; every channel still followed."""
        raw = await self._call({"op": "unsubscribe", "channels": list(channels)})
        return _channels_reply.decode(raw).channels

    async def ping(self) -> None:
        await self._call({"op": "ping"})

    async def place_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        qty: Number,
        price: Number | None = None,
        stop_price: Number | None = None,
        tif: TimeInForce = "gtc",
        client_order_id: str = "",
        post_only: bool = False,
        account: int | None = None,
        expire_at: str | datetime | None = None,
        *,
        order_class: OrderClass = "simple",
        take_profit: Number | None = None,
        stop_loss: Number | None = None,
        stop_loss_limit: Number | None = None,
    ) -> m.Order:
        """Place an order (as ``Client.place_order``); refusals raise ``RiskRejected``."""
        call = c.place_order(
            symbol,
            side,
            type,
            qty,
            price,
            stop_price,
            tif,
            client_order_id,
            post_only,
            account,
            expire_at,
        )
        assert call.body is not None
        raw = await self._call({"op": "order", **call.body})
        return _order_reply.decode(raw).order

    async def cancel_order(self, order_id: str | int) -> m.Order:
        """Cancel an order; the order as it is now."""
        c.cancel_order(order_id)  # validates the id
        raw = await self._call({"op": "cancel", "order_id": str(order_id)})
        return _order_reply.decode(raw).order

    async def _call(self, body: dict[str, Any]) -> bytes:
        if self._failure is not None:
            raise self._failure
        if self._ws is None:
            raise StreamError("not connected: use `async with Stream(...)` or connect()")
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (body["op"], fut)
        self._order.append(rid)
        try:
            await self._ws.send(msgspec.json.encode({**body, "id": rid}).decode())
            return await asyncio.wait_for(fut, self.timeout)
        finally:
            self._pending.pop(rid, None)
            with contextlib.suppress(ValueError):
                self._order.remove(rid)

    # -- the reader ----------------------------------------------------------------------

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                raw = frame.encode() if isinstance(frame, str) else frame
                self._route(raw)
                if self._failure is not None:
                    break
        except ConnectionClosed:
            pass
        self._fail(StreamClosed(self._ws.close_code, self._ws.close_reason or ""))

    def _route(self, raw: bytes) -> None:
        """Send one frame where it belongs (the reader's only logic, testable alone)."""
        try:
            data = _decode.decode(raw)
        except msgspec.DecodeError:
            return
        if not isinstance(data, dict):
            return
        channel = data.get("channel")
        if isinstance(channel, str):
            self._channel_message(channel, data)
            return
        op = data.get("op")
        if op == "heartbeat":
            return
        rid = data.get("id")
        if rid is None and op is None:  # a connection-level error (a bad key, ...)
            if "error" in data:
                err = _error(data)
                if err.code == "bad_key" or not self._order:
                    self._fail(err)
                else:
                    self._resolve(self._order[0], data, raw)
            return
        if rid is None:  # a reply without our id: the server answers in order
            pending = [i for i in self._order if self._pending[i][0] == op]
            if pending:
                self._resolve(pending[0], data, raw)
            return
        if isinstance(rid, int) and rid in self._pending:
            self._resolve(rid, data, raw)

    def _resolve(self, rid: int, data: dict[str, Any], raw: bytes) -> None:
        _, fut = self._pending.pop(rid)
        with contextlib.suppress(ValueError):
            self._order.remove(rid)
        if fut.done():
            return
        if "error" in data:
            fut.set_exception(_error(data))
        else:
            fut.set_result(raw)

    def _channel_message(self, channel: str, data: dict[str, Any]) -> None:
        seq = data.get("seq")
        if isinstance(seq, int):
            last = self._seqs.get(channel)
            if data.get("type") == "snapshot" or channel.startswith(_STATE_CHANNELS):
                pass  # a snapshot starts the count; quotes and stats may skip (conflated)
            elif last is not None and seq != last + 1:
                self._fail(SequenceGap(channel, last + 1, seq))
                return
            elif last is None and ":" in channel:  # market data: its snapshot comes first
                self._fail(SequenceGap(channel, 0, seq))
                return
            self._seqs[channel] = seq
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self._fail(StreamOverflow(f"more than {self._queue.maxsize} messages not iterated"))

    def _fail(self, error: BaseException) -> None:
        """Mark the stream failed: pending calls and the iterator raise ``error``."""
        if self._failure is None:
            self._failure = error
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(self._failure)
                fut.exception()  # retrieved: no "never retrieved" warning if abandoned
        self._pending.clear()
        self._order.clear()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait({})  # wakes an iterator waiting on an empty queue

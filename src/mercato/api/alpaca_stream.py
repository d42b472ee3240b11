"""The Alpaca-compatible trading stream (``/stream``): Alpaca's ``TradingStream``
(``alpaca-py``) receives ``trade_updates`` for the caller's own orders with only
``url_override`` changed (``ws://HOST:PORT/stream``).

The protocol is Alpaca's: JSON objects, sent in binary frames as Alpaca sends them
(``alpaca-py`` reads either; the client's text or binary JSON frames are both read;
msgpack is not spoken: alpaca-py uses it only for the market-data streams)::

    -> {"action": "authenticate", "data": {"key_id": "..", "secret_key": ".."}}
       (or Alpaca's newer {"action": "auth", "key": "..", "secret": ".."})
    <- {"stream": "authorization", "data": {"action": "authenticate", "status": "authorized"}}
       (a wrong key: "status": "unauthorized", then close code 1008)
    -> {"action": "listen", "data": {"streams": ["trade_updates"]}}
    <- {"stream": "listening", "data": {"streams": ["trade_updates"]}}
    <- {"stream": "trade_updates", "data": {"event": "fill", "execution_id": "..",
        "order": {<as GET /v2/orders/{id}>}, "timestamp": "..", "price": "101.00",
        "qty": "10", "position_qty": "10"}}

Events: ``new`` (accepted; its order is shown as it was on acceptance, even when the same
command went on to fill it), ``fill`` / ``partial_fill`` (one per execution, with the
execution's ``price``, ``qty``, ``timestamp``, an ``execution_id`` and the account's
``position_qty`` after the command), ``canceled``, ``replaced``, ``expired`` and
``rejected``. Only the connection's own accounts' orders are sent. An unknown action or
stream, or one before authenticating, answers ``{"stream": "error", "data": {"error":
".."}}`` (Alpaca's shape) and keeps the connection; asking to listen to no stream stops
the updates.

Slow consumers: as on ``/v1/ws``, each connection has a bounded outgoing queue (1,000
messages); a client that lets it fill up is disconnected with close code 1013 ("slow
consumer") and may reconnect (alpaca-py does so by itself); one that does not answer
the close within 2 s (it stopped reading) is aborted, as on ``/v1/ws``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any, Final

import msgspec
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from mercato.api.alpaca import AlpacaApi, _iso
from mercato.api.alpaca_models import Order
from mercato.api.app import Api
from mercato.api.keywatch import close_unless_signed_in, close_with_key
from mercato.api.outbox import QUEUE_SIZE, Outbox, send_close
from mercato.api.ws import POLICY_VIOLATION
from mercato.domain.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    Rejected,
    Trade,
)
from mercato.domain.instrument import format_decimal
from mercato.services.auth import Principal

log = logging.getLogger(__name__)

PATH: Final = "/stream"
MAX_MESSAGE: Final = 64 * 1024  # bytes
STREAM: Final = "trade_updates"
_EXEC_NS: Final = uuid.UUID("6d657263-6174-6f00-0000-000000000001")  # names execution ids
_NEW_COMMANDS: Final = frozenset(("n", "brk", "oco"))  # Rejected.command of a new order
_json = msgspec.json.Encoder()


class StreamConn:
    """One client: who it is, whether it listens, and its bounded outbox (of frames)."""

    def __init__(self, queue_size: int) -> None:
        self.principal: Principal | None = None
        self.listening = False
        self.outbox = Outbox(queue_size)

    def send(self, data: dict[str, Any]) -> None:
        self.outbox.offer(_json.encode(data).decode())


class TradeUpdates:
    """The fan-out of ``trade_updates`` by account; fed by ``Platform.on_events``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.alpaca = AlpacaApi(api)
        self.by_account: dict[int, set[StreamConn]] = {}

    def follow(self, conn: StreamConn) -> None:
        assert conn.principal is not None
        for account in conn.principal.accounts:
            self.by_account.setdefault(account, set()).add(conn)

    def remove(self, conn: StreamConn) -> None:
        for account in list(self.by_account):
            followers = self.by_account[account]
            followers.discard(conn)
            if not followers:
                del self.by_account[account]

    def on_events(self, events: list[Event]) -> None:
        """The platform's listener: it must neither block nor raise."""
        if not self.by_account:
            return
        try:
            self._fan_out(events)
        except Exception:  # a bug here must not break the platform's submit
            log.exception("trade_updates fan-out failed")

    def _send(self, account: int, data: dict[str, Any]) -> None:
        followers = self.by_account.get(account)
        if not followers:
            return
        frame = _json.encode({"stream": STREAM, "data": data}).decode()
        for conn in list(followers):
            conn.outbox.offer(frame)
            if conn.outbox.closed is not None:
                self.remove(conn)

    def _order(self, order_id: int) -> tuple[int, Order] | None:
        v = self.api.platform.history.order(order_id)
        if v is None or not v.account or v.account not in self.by_account:
            return None
        return v.account, self.alpaca.order(v)

    def _fan_out(self, events: list[Event]) -> None:
        core = self.api.core
        for e in events:
            if isinstance(e, Trade):
                sides = [(e.taker_order_id, e.taker_account, e.taker_remaining)]
                if e.maker_order_id:
                    sides.append((e.maker_order_id, e.maker_account, e.maker_remaining))
                book = core.engine.books.get(e.symbol)
                ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
                for oid, account, remaining in sides:
                    if account not in self.by_account:
                        continue
                    found = self._order(oid)
                    if found is None:
                        continue
                    account, order = found
                    pos = core.accounts[account].positions.get(e.symbol)
                    self._send(
                        account,
                        {
                            "event": "fill" if remaining == 0 else "partial_fill",
                            "execution_id": str(uuid.uuid5(_EXEC_NS, f"{e.seq}:{oid}")),
                            "order": order,
                            "timestamp": _iso(e.ts),
                            "price": format_decimal(e.price, ps),
                            "qty": format_decimal(e.qty, qs),
                            "position_qty": format_decimal(pos.qty if pos else 0, qs),
                        },
                    )
                continue
            if isinstance(e, OrderAccepted):
                event = "new"
            elif isinstance(e, OrderCancelled):
                event = "canceled"
            elif isinstance(e, OrderReplaced):
                event = "replaced"
            elif isinstance(e, OrderExpired):
                event = "expired"
            elif isinstance(e, Rejected) and e.order_id and e.command in _NEW_COMMANDS:
                event = "rejected"
            else:
                continue
            if e.account and e.account not in self.by_account:
                continue
            found = self._order(e.order_id)
            if found is None:
                continue
            account, order = found
            if isinstance(e, OrderAccepted):  # as on acceptance, before this command's fills
                book = core.engine.books.get(e.symbol)
                order = msgspec.structs.replace(
                    order,
                    status="new",
                    qty=format_decimal(e.qty, book.qty_scale if book is not None else 0),
                    filled_qty=format_decimal(0, book.qty_scale if book is not None else 0),
                    filled_avg_price=None,
                    filled_at=None,
                    canceled_at=None,
                    expired_at=None,
                    updated_at=order.submitted_at,
                )
            elif event == "rejected":
                order = msgspec.structs.replace(order, status="rejected", failed_at=_iso(e.ts))
            self._send(account, {"event": event, "order": order, "timestamp": _iso(e.ts)})


class StreamSession:
    """Reads a client's actions and answers them; the writer drains its outbox."""

    def __init__(self, hub: TradeUpdates, ws: WebSocket, conn: StreamConn) -> None:
        self.hub = hub
        self.api = hub.api
        self.ws = ws
        self.conn = conn
        self.rate_key = f"ip:{ws.client.host if ws.client else '?'}"
        self.rejected = False  # a wrong key: the answer goes out, then the close
        self.unwatch: Callable[[], None] | None = None  # follows the key it signed in with

    def error(self, message: str) -> None:
        self.conn.send({"stream": "error", "data": {"error": message}})

    async def read(self) -> None:
        while self.conn.outbox.closed is None and not self.rejected:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            raw = msg.get("text")
            data: bytes = raw.encode() if raw is not None else (msg.get("bytes") or b"")
            if len(data) > MAX_MESSAGE:
                self.error(f"message too large: at most {MAX_MESSAGE} bytes")
                continue
            try:
                body = msgspec.json.decode(data)
            except msgspec.DecodeError:
                self.error("invalid syntax")
                continue
            if not isinstance(body, dict):
                self.error("invalid syntax")
                continue
            self.handle(body)

    def handle(self, body: dict[str, Any]) -> None:
        action = body.get("action")
        raw = body.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if action in ("authenticate", "auth"):
            self.authenticate(body, data)
        elif action == "listen":
            if self.conn.principal is None:
                self.error("access key verification failed")  # Alpaca: not authenticated
                return
            streams = data.get("streams")
            if not isinstance(streams, list) or any(not isinstance(s, str) for s in streams):
                self.error("invalid syntax")
                return
            unknown = [s for s in streams if s != STREAM]
            if unknown:
                self.error(f"unrecognized stream {unknown[0][:100]!r}")
                return
            self.conn.listening = STREAM in streams
            if self.conn.listening:
                self.hub.follow(self.conn)
            else:
                self.hub.remove(self.conn)
            self.conn.send({"stream": "listening", "data": {"streams": streams}})
        else:
            self.error("unrecognized action")

    def authenticate(self, body: dict[str, Any], data: dict[str, Any]) -> None:
        key_id = data.get("key_id", body.get("key"))
        secret = data.get("secret_key", body.get("secret"))
        status = "unauthorized"
        if self.conn.principal is not None:
            status = "authorized"
        elif (
            isinstance(key_id, str)
            and isinstance(secret, str)
            and self.api.limiter.allow(self.rate_key)
        ):
            grant = self.api.auth.verify_key(key_id, secret)
            if grant is not None:
                self.conn.principal = grant.principal
                self.unwatch = close_with_key(self.api, grant, self.conn.outbox)
                status = "authorized"
        self.conn.send(
            {"stream": "authorization", "data": {"action": "authenticate", "status": status}}
        )
        if status != "authorized":
            self.rejected = True

    async def write(self) -> None:
        outbox = self.conn.outbox
        while True:
            frame = await outbox.next()
            if frame is None:  # closed: the endpoint sends the close (send_close)
                return
            try:
                await self.ws.send_bytes(frame.encode())
            except Exception:  # the client is gone
                return


def alpaca_stream_routes(api: Api, *, queue_size: int = QUEUE_SIZE) -> list[BaseRoute]:
    """The ``/stream`` route over ``api``'s platform (it registers one event listener)."""
    hub = TradeUpdates(api)
    api.platform.on_events(hub.on_events)

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        conn = StreamConn(queue_size)
        session = StreamSession(hub, ws, conn)
        idle = close_unless_signed_in(api, conn, conn.outbox)
        tasks = [
            asyncio.create_task(session.read()),
            asyncio.create_task(session.write()),
            asyncio.create_task(conn.outbox.wait_closed()),  # the writer may be stuck
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if session.rejected and not tasks[1].done():
                # a wrong key: let "unauthorized" go out, then close with 1008
                for _ in range(100):
                    if not len(conn.outbox):
                        break
                    await asyncio.sleep(0.01)
                conn.outbox.close(POLICY_VIOLATION, "unauthorized")
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

    return [WebSocketRoute(PATH, endpoint)]

"""The native REST API: an ASGI application (Starlette) over the platform.

Every route names who may call it (``PUBLIC``, ``TRADER``, ``ADMIN``) in the route table,
``ROUTES``; the authorization test is generated from it. A trader sees and touches only
the accounts (and so the orders, fills and positions) that belong to them: an id that is
not theirs answers 404, exactly as an id that does not exist. Errors share one shape::

    {"error": {"code": "insufficient_buying_power", "message": "..."}}

with the core's machine-readable reasons as codes (422 for a refused order).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mercato.api import schemas as s
from mercato.domain.commands import (
    AddInstrument,
    CancelOrder,
    CreateAccount,
    Deposit,
    NewOrder,
    ReplaceOrder,
    SetInstrumentRisk,
    SetKillSwitch,
    SetRiskLimits,
    SetTradingStatus,
    Withdraw,
)
from mercato.domain.events import DuplicateClientOrder, Event, Rejected
from mercato.domain.instrument import DecimalError, Instrument, format_decimal, parse_decimal
from mercato.domain.orders import OrderStatus
from mercato.domain.risk import RiskLimits
from mercato.domain.types import (
    ORDER_TYPE_NAMES,
    SIDE_NAMES,
    TIF_NAMES,
    AccountKind,
    OrderType,
    Side,
    TimeInForce,
    TradingStatus,
    Venue,
)
from mercato.engine.book import Book
from mercato.engine.core import Core
from mercato.marketdata.bars import INTERVALS
from mercato.marketdata.events import MdEvent, MdLevel, MdOrder, MdQuote, MdTrade
from mercato.marketdata.market import DEFAULT_BARS, Market
from mercato.ports import Cache
from mercato.services import gc_policy
from mercato.services.auth import AuthError, AuthStore, Principal
from mercato.services.marketdata import MarketData
from mercato.services.oms import FillView, OrderView
from mercato.services.platform import Platform

PUBLIC: Final = "public"
TRADER: Final = "trader"
ADMIN: Final = "admin"
MAX_BODY: Final = 64 * 1024  # bytes: a larger request body is refused with 413
SESSION_COOKIE: Final = "mercato_session"

_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_TYPES = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT,
}
_TIFS = {
    "gtc": TimeInForce.GTC,
    "day": TimeInForce.DAY,
    "ioc": TimeInForce.IOC,
    "fok": TimeInForce.FOK,
}
_STATUS = {
    "open": TradingStatus.OPEN,
    "halted": TradingStatus.HALTED,
    "closed": TradingStatus.CLOSED,
}
_STATUS_NAMES = {st: st.name.lower() for st in OrderStatus}
_OPEN = {OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.REPLACED}
_json = msgspec.json.Encoder()
T = TypeVar("T")


class ApiError(Exception):
    """An answer other than success: HTTP status, machine-readable code, message."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message or code.replace("_", " ")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_json.encode(data), status, headers, media_type="application/json")


def error_response(e: ApiError) -> Response:
    body = {"error": {"code": e.code, "message": e.message}}
    headers = {"Retry-After": "1"} if e.status == 429 else None
    return json_response(body, e.status, headers)


@dataclass
class Ctx:
    """What a handler gets: the request, the caller (None when anonymous) and the app."""

    request: Request
    principal: Principal | None
    api: Api

    @property
    def user(self) -> Principal:
        assert self.principal is not None
        return self.principal

    async def body(self, kind: type[T]) -> T:
        raw = await self.request.body()
        if len(raw) > MAX_BODY:
            raise ApiError(413, "body_too_large", f"bodies are at most {MAX_BODY} bytes")
        try:
            return msgspec.json.decode(raw or b"{}", type=kind)
        except msgspec.ValidationError as e:
            raise ApiError(400, "invalid_body", str(e)) from None
        except msgspec.DecodeError as e:
            raise ApiError(400, "invalid_json", str(e)) from None


Handler = Callable[[Ctx], Awaitable[Response]]


class RateLimiter:
    """A token bucket per key: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:  # bounded: forget the oldest half
            for k in list(self._buckets)[:50_000]:
                del self._buckets[k]
        return True


class Api:
    """The handlers, over one platform and one auth store."""

    def __init__(
        self,
        platform: Platform,
        auth: AuthStore,
        limiter: RateLimiter,
        md_flush: float = 0.0,
        cache: Cache | None = None,
    ) -> None:
        self.platform = platform
        self.auth = auth
        self.limiter = limiter
        self.md = MarketData(
            flush_interval=md_flush,
            cache=cache,
            resting=self._resting,
            resting_all=self._resting_all,
        )
        self.md.seed(platform.core.engine.books.values())
        platform.on_events(self.md.on_events)

    def _resting_all(self, symbol: str) -> list[tuple[int, int, int, int]]:
        """Every order resting in our own book of ``symbol``: (id, side, price, remaining),
        in time priority per level."""
        book = self.platform.core.engine.books[symbol]
        return [
            (o.order_id, o.side, o.price, o.remaining)
            for side in (book.bids, book.asks)
            for level in side.levels_best_first()
            for o in level.orders.values()
        ]

    def _resting(self, symbol: str, order_id: int) -> tuple[int, int, int] | None:
        """The L3 view of our own book: (side, price, remaining) of a resting order."""
        engine = self.platform.core.engine
        o = engine.orders.get(order_id)
        if o is None or order_id in engine.books[symbol].stops:
            return None
        return o.side, o.price, o.remaining

    # -- helpers -------------------------------------------------------------------------

    @property
    def core(self) -> Core:
        return self.platform.core

    def book(self, symbol: str) -> Book:
        book = self.core.engine.books.get(symbol)
        if book is None:
            raise ApiError(404, "unknown_symbol", f"no instrument {symbol!r}")
        return book

    def own_account(self, p: Principal, account: int | None) -> int:
        if account is None:
            if not p.accounts:
                raise ApiError(404, "no_account", "you have no trading account yet")
            return p.accounts[0]
        if account not in p.accounts and p.role != ADMIN:
            raise ApiError(404, "unknown_account", "no such account")
        if account not in self.core.accounts:
            raise ApiError(404, "unknown_account", "no such account")
        return account

    def own_order(self, p: Principal, order_id: int) -> OrderView:
        v = self.platform.history.order(order_id)
        if v is None or (v.account not in p.accounts and p.role != ADMIN):
            raise ApiError(404, "unknown_order", "no such order")
        return v

    def order_json(self, v: OrderView) -> dict[str, Any]:
        book = self.core.engine.books.get(v.symbol)
        ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
        notional, filled = v.avg_price  # exact; shown rounded down to the price's scale
        avg = format_decimal(notional // filled, ps) if filled and notional else None
        return {
            "id": str(v.order_id),
            "client_order_id": v.client_order_id,
            "account": v.account,
            "symbol": v.symbol,
            "side": SIDE_NAMES.get(v.side, "?") if v.side else None,  # (IntEnum keys)
            "type": ORDER_TYPE_NAMES.get(v.type, "?") if v.type else None,
            "tif": TIF_NAMES.get(v.tif, "?") if v.tif else None,
            "price": format_decimal(v.price, ps) if v.price else None,
            "stop_price": format_decimal(v.stop_price, ps) if v.stop_price else None,
            "qty": format_decimal(v.qty, qs),
            "filled_qty": format_decimal(v.filled, qs),
            "remaining_qty": format_decimal(v.remaining, qs),
            "avg_fill_price": avg,
            "status": _STATUS_NAMES[v.status],
            "reason": v.reason or None,
            "created_at": v.created_ts,
            "updated_at": v.updated_ts,
        }

    def fill_json(self, f: FillView) -> dict[str, Any]:
        book = self.core.engine.books.get(f.symbol)
        ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
        inst = self.core.instruments.get(f.symbol)
        cs = self.core.currencies.get(inst.currency, 0) if inst is not None else 0
        return {
            "trade_id": str(f.seq),
            "order_id": str(f.order_id),
            "account": f.account,
            "symbol": f.symbol,
            "side": SIDE_NAMES.get(Side(f.side), "?"),
            "price": format_decimal(f.price, ps),
            "qty": format_decimal(f.qty, qs),
            "liquidity": f.liquidity,
            "fee": format_decimal(f.fee, cs),
            "ts": f.ts,
        }

    def money(self, account: int, value: int) -> str:
        currency = self.core.accounts[account].currency
        return format_decimal(value, self.core.currencies[currency])

    async def submit(self, cmd: Any) -> list[Event]:
        return await self.platform.submit(cmd)

    @staticmethod
    def refused(events: list[Event]) -> Rejected | None:
        for e in events:
            if isinstance(e, Rejected):
                return e
        return None

    # -- auth ----------------------------------------------------------------------------

    async def signup(self, c: Ctx) -> Response:
        body = await c.body(s.Credentials)
        try:  # argon2 takes tens of ms: off the event loop
            user_id = await asyncio.to_thread(self.auth.create_user, body.username, body.password)
        except AuthError as e:
            raise ApiError(409 if e.code == "user_exists" else 400, e.code, str(e)) from None
        return json_response({"user_id": user_id, "username": body.username}, 201)

    async def login(self, c: Ctx) -> Response:
        body = await c.body(s.Credentials)
        p = await asyncio.to_thread(self.auth.login, body.username, body.password)
        if p is None:
            raise ApiError(401, "bad_credentials", "wrong username or password")
        token = self.auth.create_session(p.user_id)
        r = json_response({"user_id": p.user_id, "role": p.role})
        r.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=False)
        return r

    async def logout(self, c: Ctx) -> Response:
        token = c.request.cookies.get(SESSION_COOKIE)
        if token:
            self.auth.end_session(token)
        r = json_response({"ok": True})
        r.delete_cookie(SESSION_COOKIE)
        return r

    async def new_key(self, c: Ctx) -> Response:
        key_id, secret = self.auth.create_key(c.user.user_id)
        return json_response({"key_id": key_id, "secret": secret}, 201)

    async def openapi(self, c: Ctx) -> Response:
        from mercato.api.openapi import openapi_document  # it reads ROUTES, below

        return json_response(openapi_document())

    async def me(self, c: Ctx) -> Response:
        p = c.user
        return json_response(
            {"user_id": p.user_id, "username": p.username, "role": p.role, "accounts": p.accounts}
        )

    # -- trading -------------------------------------------------------------------------

    async def instruments(self, c: Ctx) -> Response:
        out = []
        for sym, b in sorted(self.core.engine.books.items()):
            inst = self.core.instruments.get(sym)
            out.append(
                {
                    "symbol": sym,
                    "tick_size": format_decimal(b.tick_size, b.price_scale),
                    "lot_size": format_decimal(b.lot_size, b.qty_scale),
                    "price_scale": b.price_scale,
                    "qty_scale": b.qty_scale,
                    "currency": inst.currency if inst is not None else None,
                    "status": TradingStatus(b.status).name.lower(),
                    "last_price": format_decimal(b.last_price, b.price_scale)
                    if b.last_price
                    else None,
                }
            )
        return json_response(out)

    async def account(self, c: Ctx) -> Response:
        account = self.own_account(c.user, _int_param(c.request, "account"))
        sm = self.core.summary(account)
        money = {
            k: self.money(account, getattr(sm, k))
            for k in (
                "cash",
                "reserved",
                "buying_power",
                "equity",
                "initial_margin",
                "maintenance_margin",
                "gross_exposure",
                "net_exposure",
                "realized",
                "unrealized",
                "day_pnl",
            )
        }
        return json_response(
            {
                "account": account,
                "kind": AccountKind(sm.kind).name.lower(),
                "currency": sm.currency,
                **money,
                "open_orders": sm.open_orders,
                "margin_status": sm.margin_status,
                "killed": sm.killed,
            }
        )

    async def positions(self, c: Ctx) -> Response:
        account = self.own_account(c.user, _int_param(c.request, "account"))
        out = []
        for sym, pos in sorted(self.core.accounts[account].positions.items()):
            if not pos.qty:
                continue
            b = self.core.engine.books[sym]
            value = self.core._value(sym, pos)
            out.append(
                {
                    "symbol": sym,
                    "qty": format_decimal(pos.qty, b.qty_scale),
                    "cost_basis": self.money(account, pos.cost),
                    "market_value": self.money(account, value if pos.qty > 0 else -value),
                    "unrealized_pnl": self.money(account, pos.unrealized(value)),
                    "realized_pnl": self.money(account, pos.realized),
                    "mark": format_decimal(self.core.mark(sym), b.price_scale),
                }
            )
        return json_response(out)

    async def place(self, c: Ctx) -> Response:
        status, v = await self.place_for(c.user, await c.body(s.OrderRequest))
        return json_response(self.order_json(v), status)

    async def place_for(self, p: Principal, body: Any) -> tuple[int, OrderView]:
        """Place ``body`` (an ``OrderRequest``, or the WebSocket's message with the same
        fields) for ``p``: (201, the new order), or (200, the original) for a repeated
        ``client_order_id``; a refusal raises ``ApiError``."""
        account = self.own_account(p, body.account)
        book = self.book(body.symbol)
        try:
            qty = parse_decimal(body.qty, book.qty_scale)
            price = parse_decimal(body.price, book.price_scale) if body.price else 0
            stop = parse_decimal(body.stop_price, book.price_scale) if body.stop_price else 0
            trail = parse_decimal(body.trail_amount, book.price_scale) if body.trail_amount else 0
        except DecimalError as e:
            raise ApiError(400, "invalid_number", str(e)) from None
        if len(body.client_order_id) > 64:
            raise ApiError(400, "invalid_client_order_id", "at most 64 characters")
        oid = self.platform.next_order_id()
        events = await self.submit(
            NewOrder(
                ts=self.platform.now(),
                order_id=oid,
                account=account,
                symbol=body.symbol,
                side=_SIDES[body.side],
                type=_TYPES[body.type],
                qty=qty,
                tif=_TIFS[body.tif],
                price=price,
                stop_price=stop,
                post_only=body.post_only,
                client_order_id=body.client_order_id,
                trail_amount=trail,
                trail_bps=body.trail_bps,
            )
        )
        for ev in events:
            if isinstance(ev, DuplicateClientOrder):  # idempotent: the original, again
                original = self.platform.history.order(ev.order_id)
                if original is not None:
                    return 200, original
        rej = self.refused(events)
        if rej is not None and rej.order_id == oid:
            raise ApiError(422, rej.reason, rej.detail or rej.reason.replace("_", " "))
        v = self.platform.history.order(oid)
        assert v is not None
        return 201, v

    async def get_order(self, c: Ctx) -> Response:
        v = self.own_order(c.user, _path_int(c.request, "order_id"))
        data = self.order_json(v)
        data["history"] = [
            {
                "seq": t.seq,
                "ts": t.ts,
                "status": OrderStatus(t.status).name.lower(),
                "what": t.event,
            }
            for t in v.history
        ]
        return json_response(data)

    async def list_orders(self, c: Ctx) -> Response:
        q = c.request.query_params
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise ApiError(400, "invalid_status", "status is open, closed or all")
        limit = _int_param(c.request, "limit") or 100
        if not 1 <= limit <= 1_000:
            raise ApiError(400, "invalid_limit", "limit is 1..1000")
        symbol = q.get("symbol")
        out: list[OrderView] = []
        for account in self._accounts_for(c):
            if status == "open":
                out.extend(self.platform.history.open_orders(account, symbol))
            else:
                wanted = None if status == "all" else set(OrderStatus) - _OPEN
                out.extend(
                    self.platform.history.orders(
                        account=account, symbol=symbol, status=wanted, limit=limit
                    )
                )
        out.sort(key=lambda v: v.updated_seq, reverse=True)
        return json_response([self.order_json(v) for v in out[:limit]])

    async def cancel(self, c: Ctx) -> Response:
        v = await self.cancel_for(c.user, _path_int(c.request, "order_id"))
        return json_response(self.order_json(v))

    async def cancel_for(self, p: Principal, order_id: int) -> OrderView:
        """Cancel one of ``p``'s orders; a refusal raises ``ApiError``."""
        v = self.own_order(p, order_id)
        events = await self.submit(
            CancelOrder(ts=self.platform.now(), order_id=v.order_id, symbol=v.symbol)
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(
                409 if rej.reason == "unknown_order" else 422,
                "not_cancellable" if rej.reason == "unknown_order" else rej.reason,
                "the order is no longer open",
            )
        return v

    async def cancel_all(self, c: Ctx) -> Response:
        done = []
        for account in self._accounts_for(c):
            for v in self.platform.history.open_orders(account):
                events = await self.submit(
                    CancelOrder(ts=self.platform.now(), order_id=v.order_id, symbol=v.symbol)
                )
                if self.refused(events) is None:
                    done.append(str(v.order_id))
        return json_response({"cancelled": done})

    async def replace(self, c: Ctx) -> Response:
        v = self.own_order(c.user, _path_int(c.request, "order_id"))
        body = await c.body(s.ReplaceRequest)
        book = self.book(v.symbol)
        try:
            qty = parse_decimal(body.qty, book.qty_scale)
            price = parse_decimal(body.price, book.price_scale) if body.price else 0
            stop = parse_decimal(body.stop_price, book.price_scale) if body.stop_price else 0
        except DecimalError as e:
            raise ApiError(400, "invalid_number", str(e)) from None
        events = await self.submit(
            ReplaceOrder(
                ts=self.platform.now(),
                order_id=v.order_id,
                symbol=v.symbol,
                price=price,
                qty=qty,
                stop_price=stop,
            )
        )
        rej = self.refused(events)
        if rej is not None:
            status = 409 if rej.reason == "unknown_order" else 422
            raise ApiError(status, rej.reason, rej.detail or rej.reason.replace("_", " "))
        return json_response(self.order_json(v))

    async def fills(self, c: Ctx) -> Response:
        q = c.request.query_params
        limit = _int_param(c.request, "limit") or 100
        if not 1 <= limit <= 1_000:
            raise ApiError(400, "invalid_limit", "limit is 1..1000")
        out: list[FillView] = []
        for account in self._accounts_for(c):
            out.extend(
                self.platform.history.fills(account=account, symbol=q.get("symbol"), limit=limit)
            )
        out.sort(key=lambda f: f.seq, reverse=True)
        return json_response([self.fill_json(f) for f in out[:limit]])

    def _accounts_for(self, c: Ctx) -> list[int]:
        requested = _int_param(c.request, "account")
        if requested is not None:
            return [self.own_account(c.user, requested)]
        return list(c.user.accounts)

    # -- market data snapshots (from MarketData, never the engine) -----------------------

    def market(self, symbol: str) -> Market:
        m = self.md.markets.get(symbol)
        if m is None:
            raise ApiError(404, "unknown_symbol", f"no instrument {symbol!r}")
        return m

    async def quote(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        q = m.quote_json()
        return json_response(
            {
                "symbol": symbol,
                "bid": q["bid"],
                "bid_size": q["bid_qty"] if q["bid"] else None,
                "ask": q["ask"],
                "ask_size": q["ask_qty"] if q["ask"] else None,
                "last": q["last"],
                "seq": self.md.channel(f"quotes:{symbol}").seq,
            }
        )

    async def depth(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        levels = _int_param(c.request, "levels")
        levels = 10 if levels is None else levels
        if not 1 <= levels <= 1_000:
            raise ApiError(400, "invalid_levels", "levels is 1..1000")
        bids, asks = m.book.depth(levels)
        return json_response(
            {
                "symbol": symbol,
                "bids": m.levels_json(bids),
                "asks": m.levels_json(asks),
                "seq": self.md.channel(f"book:{symbol}").seq,
            }
        )

    async def recent_trades(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        limit = _int_param(c.request, "limit") or 100
        if not 1 <= limit <= 1_000:
            raise ApiError(400, "invalid_limit", "limit is 1..1000")
        return json_response(
            [
                {k: v for k, v in m.trade_json(t).items() if k != "symbol"}
                for t in self.md.trades(symbol, limit)
            ]
        )

    async def bars(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        limit = _int_param(c.request, "limit") or 100
        if not 1 <= limit <= 1_000:
            raise ApiError(400, "invalid_limit", "limit is 1..1000")
        interval = c.request.query_params.get("interval", DEFAULT_BARS)
        if interval not in INTERVALS:
            raise ApiError(400, "invalid_interval", f"interval is one of {', '.join(INTERVALS)}")
        return json_response([m.bar_json(b) for b in self.md.bars(symbol, limit, interval)])

    # -- outside feeds (market data only; not persisted: a restart forgets them) ----------

    async def add_feed(self, c: Ctx) -> Response:
        body = await c.body(s.FeedRequest)
        problem = Instrument(symbol=body.symbol).validate()
        if problem is not None:
            raise ApiError(400, "invalid_symbol", problem)
        try:
            tick = parse_decimal(body.tick_size, body.price_scale)
            lot = parse_decimal(body.lot_size, body.qty_scale)
        except (DecimalError, ValueError) as e:
            raise ApiError(400, "invalid_number", str(e)) from None
        if tick <= 0 or lot <= 0:
            raise ApiError(400, "invalid_number", "tick_size and lot_size must be positive")
        if body.symbol in self.core.engine.books or body.symbol in self.md.markets:
            raise ApiError(409, "duplicate_symbol", f"{body.symbol!r} exists already")
        self.md.add_instrument(body.symbol, tick, lot, body.price_scale, body.qty_scale, True)
        return json_response({"symbol": body.symbol}, 201)

    async def feed_events(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        if symbol not in self.md.markets or symbol in self.core.engine.books:
            raise ApiError(404, "unknown_feed", f"no outside feed {symbol[:100]!r}")
        body = await c.body(s.FeedEvents)
        for i, e in enumerate(body.events):
            problem = _feed_problem(e, symbol)
            if problem is not None:  # nothing applied: the whole batch is refused
                raise ApiError(400, "invalid_event", f"events[{i}]: {problem}")
        self.md.publish(body.events)
        return json_response({"symbol": symbol, "accepted": len(body.events)})

    async def stats(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        return json_response({"symbol": symbol, **m.stats_json(self.md.now)})

    # -- admin ---------------------------------------------------------------------------

    async def create_user(self, c: Ctx) -> Response:
        body = await c.body(s.UserRequest)
        try:
            user_id = await asyncio.to_thread(
                self.auth.create_user, body.username, body.password, body.role
            )
        except AuthError as e:
            raise ApiError(409 if e.code == "user_exists" else 400, e.code, str(e)) from None
        return json_response(
            {"user_id": user_id, "username": body.username, "role": body.role}, 201
        )

    async def create_account(self, c: Ctx) -> Response:
        body = await c.body(s.AccountRequest)
        if self.auth.user(body.user_id) is None:
            raise ApiError(404, "unknown_user", "no such user")
        account = self.platform.next_account_id()
        kind = AccountKind.CASH if body.kind == "cash" else AccountKind.MARGIN
        venue = Venue.INTERNAL if body.venue == "internal" else Venue.PAPER
        events = await self.submit(
            CreateAccount(
                ts=self.platform.now(),
                account=account,
                kind=kind,
                currency=body.currency,
                venue=venue,
            )
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(422, rej.reason, rej.detail or rej.reason)
        self.auth.add_account(body.user_id, account)
        return json_response({"account": account, "user_id": body.user_id}, 201)

    async def deposit(self, c: Ctx) -> Response:
        account = _path_int(c.request, "account")
        if account not in self.core.accounts:
            raise ApiError(404, "unknown_account", "no such account")
        body = await c.body(s.DepositRequest)
        acct = self.core.accounts[account]
        if body.asset == acct.currency:
            scale = self.core.currencies[acct.currency]
        else:
            scale = self.book(body.asset).qty_scale
        try:
            amount = parse_decimal(body.amount, scale)
        except DecimalError as e:
            raise ApiError(400, "invalid_number", str(e)) from None
        kind = Withdraw if body.withdraw else Deposit
        events = await self.submit(
            kind(ts=self.platform.now(), account=account, asset=body.asset, amount=amount)
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(422, rej.reason, rej.detail or rej.reason)
        return json_response(
            {"account": account, "balance": self.money(account, self.core.cash(account))}
        )

    async def set_limits(self, c: Ctx) -> Response:
        account = _path_int(c.request, "account")
        body = await c.body(s.LimitsRequest)
        try:
            limits = RiskLimits(**msgspec.structs.asdict(body))
        except ValueError as e:
            raise ApiError(400, "invalid_limits", str(e)) from None
        events = await self.submit(
            SetRiskLimits(ts=self.platform.now(), account=account, limits=limits)
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(404 if rej.reason == "unknown_account" else 422, rej.reason, rej.reason)
        return json_response({"account": account, "limits": msgspec.structs.asdict(limits)})

    async def add_instrument(self, c: Ctx) -> Response:
        body = await c.body(s.InstrumentRequest)
        try:
            tick = parse_decimal(body.tick_size, body.price_scale)
            lot = parse_decimal(body.lot_size, body.qty_scale)
            ref = (
                parse_decimal(body.reference_price, body.price_scale) if body.reference_price else 0
            )
        except (DecimalError, ValueError) as e:
            raise ApiError(400, "invalid_number", str(e)) from None
        ts = self.platform.now()
        events = await self.submit(
            AddInstrument(
                ts=ts,
                symbol=body.symbol,
                tick_size=tick,
                lot_size=lot,
                price_scale=body.price_scale,
                qty_scale=body.qty_scale,
                currency=body.currency,
            )
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(
                409 if rej.reason == "duplicate_symbol" else 422,
                rej.reason,
                rej.detail or rej.reason,
            )
        events = await self.submit(
            SetInstrumentRisk(
                ts=self.platform.now(),
                symbol=body.symbol,
                maker_fee_bps=body.maker_fee_bps,
                taker_fee_bps=body.taker_fee_bps,
                reference_price=ref,
            )
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(422, rej.reason, rej.detail or rej.reason)
        return json_response({"symbol": body.symbol}, 201)

    async def set_status(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        self.book(symbol)
        body = await c.body(s.StatusRequest)
        await self.submit(
            SetTradingStatus(ts=self.platform.now(), symbol=symbol, status=_STATUS[body.status])
        )
        return json_response({"symbol": symbol, "status": body.status})

    async def kill(self, c: Ctx) -> Response:
        body = await c.body(s.KillRequest)
        events = await self.submit(
            SetKillSwitch(ts=self.platform.now(), account=body.account, on=body.on)
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(404, rej.reason, rej.reason)
        return json_response({"account": body.account, "on": body.on})

    # -- the caller ----------------------------------------------------------------------

    def principal(self, request: Request) -> tuple[Principal | None, str]:
        """The caller and the rate-limit key: an API key (``Authorization: Bearer
        KEY_ID:SECRET``, or Alpaca's ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``), else a
        session cookie, else anonymous (by client address)."""
        h = request.headers
        key_id, secret = h.get("apca-api-key-id"), h.get("apca-api-secret-key")
        auth = h.get("authorization", "")
        if not key_id and auth.lower().startswith("bearer ") and ":" in auth:
            key_id, _, secret = auth[7:].strip().partition(":")
        if key_id or secret:
            p = self.auth.authenticate_key(key_id or "", secret or "")
            if p is None:
                raise ApiError(401, "bad_key", "unknown or revoked API key, or wrong secret")
            return p, f"k:{key_id}"
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            p = self.auth.session(token)
            if p is not None:
                return p, f"u:{p.user_id}"
        return None, f"ip:{request.client.host if request.client else '?'}"


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    access: str  # PUBLIC, TRADER (any signed-in user) or ADMIN
    handler: str  # the name of the Api method


ROUTES: Final = (
    RouteSpec("POST", "/v1/auth/signup", PUBLIC, "signup"),
    RouteSpec("POST", "/v1/auth/login", PUBLIC, "login"),
    RouteSpec("POST", "/v1/auth/logout", PUBLIC, "logout"),
    RouteSpec("GET", "/v1/instruments", PUBLIC, "instruments"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/quote", PUBLIC, "quote"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/depth", PUBLIC, "depth"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/trades", PUBLIC, "recent_trades"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/bars", PUBLIC, "bars"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/stats", PUBLIC, "stats"),
    RouteSpec("GET", "/v1/openapi.json", PUBLIC, "openapi"),
    RouteSpec("GET", "/v1/me", TRADER, "me"),
    RouteSpec("POST", "/v1/keys", TRADER, "new_key"),
    RouteSpec("GET", "/v1/account", TRADER, "account"),
    RouteSpec("GET", "/v1/positions", TRADER, "positions"),
    RouteSpec("POST", "/v1/orders", TRADER, "place"),
    RouteSpec("GET", "/v1/orders", TRADER, "list_orders"),
    RouteSpec("DELETE", "/v1/orders", TRADER, "cancel_all"),
    RouteSpec("GET", "/v1/orders/{order_id}", TRADER, "get_order"),
    RouteSpec("PATCH", "/v1/orders/{order_id}", TRADER, "replace"),
    RouteSpec("DELETE", "/v1/orders/{order_id}", TRADER, "cancel"),
    RouteSpec("GET", "/v1/fills", TRADER, "fills"),
    RouteSpec("POST", "/v1/admin/users", ADMIN, "create_user"),
    RouteSpec("POST", "/v1/admin/accounts", ADMIN, "create_account"),
    RouteSpec("POST", "/v1/admin/accounts/{account}/transfers", ADMIN, "deposit"),
    RouteSpec("PUT", "/v1/admin/accounts/{account}/limits", ADMIN, "set_limits"),
    RouteSpec("POST", "/v1/admin/instruments", ADMIN, "add_instrument"),
    RouteSpec("POST", "/v1/admin/feeds", ADMIN, "add_feed"),
    RouteSpec("POST", "/v1/admin/feeds/{symbol}/events", ADMIN, "feed_events"),
    RouteSpec("PUT", "/v1/admin/instruments/{symbol}/status", ADMIN, "set_status"),
    RouteSpec("POST", "/v1/admin/kill", ADMIN, "kill"),
)
"""Every route, who may call it, and its handler: the authorization test reads this."""


def _endpoint(api: Api, spec: RouteSpec) -> Callable[[Request], Awaitable[Response]]:
    return endpoint_for(api, spec.access, getattr(api, spec.handler), error_response)


def endpoint_for(
    api: Api,
    access: str,
    handler: Handler,
    on_error: Callable[[ApiError], Response],
) -> Callable[[Request], Awaitable[Response]]:
    """An ASGI endpoint: authenticate, check the role, rate-limit, run ``handler``; an
    ``ApiError`` becomes ``on_error``'s response (the native or the Alpaca shape)."""

    async def endpoint(request: Request) -> Response:
        try:
            principal, key = api.principal(request)
            if access != PUBLIC:
                if principal is None:
                    raise ApiError(401, "unauthenticated", "sign in or send an API key")
                if access == ADMIN and principal.role != ADMIN:
                    raise ApiError(403, "forbidden", "administrators only")
            if not api.limiter.allow(key):
                raise ApiError(429, "rate_limited", "too many requests: slow down")
            return await handler(Ctx(request, principal, api))
        except ApiError as e:
            return on_error(e)

    return endpoint


# How Mercato's servers run the app (uvicorn's options): the libuv loop, the C HTTP
# parser, and the sans-I/O WebSocket protocol (the fastest of uvicorn's three here).
MD_FLUSH: Final = 0.005  # seconds: a server's market-data publication interval (at most)
SERVER_OPTIONS: Final[dict[str, Any]] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "websockets-sansio",
    "log_level": "warning",
}


def create_app(
    platform: Platform,
    auth: AuthStore,
    *,
    rate: float = 200.0,
    burst: int = 400,
    manage_platform: bool = True,
    full_gc_every: float | None = None,
    md_flush: float = 0.0,
    cache: Cache | None = None,
    md_port: int | None = None,
    md_host: str = "127.0.0.1",
) -> Starlette:
    """The ASGI application. With ``manage_platform`` the server's lifespan starts and
    stops the platform (journal writer, snapshot on the way out). With ``full_gc_every``
    (seconds) it also takes the process's full garbage collections off the order path
    (``services/gc_policy.py``): for a server process, not for an app inside tests.
    ``md_flush`` is the market data's publication interval in seconds (0: after every
    command; servers use ``MD_FLUSH``); ``cache`` its last-value cache, started and closed
    with the server. ``md_port``: also serve market data on that port (``api/md_stream.py``,
    the fan-out's fast path)."""
    api = Api(platform, auth, RateLimiter(rate, burst), md_flush, cache)
    from mercato.api.alpaca import alpaca_routes  # these import this module
    from mercato.api.alpaca_data import alpaca_data_routes
    from mercato.api.alpaca_market_stream import alpaca_market_stream_routes
    from mercato.api.alpaca_stream import alpaca_stream_routes
    from mercato.api.ws import websocket_route

    routes: list[BaseRoute] = [
        Route(spec.path, _endpoint(api, spec), methods=[spec.method]) for spec in ROUTES
    ]
    routes += alpaca_routes(api)
    routes += alpaca_data_routes(api)
    routes += alpaca_stream_routes(api)
    routes += alpaca_market_stream_routes(api)
    routes.append(websocket_route(api))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if cache is not None:
            await cache.start()
        if manage_platform:
            platform.start()
        collector = clock = None
        md_server = None
        if md_port is not None:
            from mercato.api.md_stream import serve_md

            md_server = await serve_md(api.md, md_host, md_port)
        if md_flush > 0:  # a server: bars close on time even when nothing trades
            clock = asyncio.create_task(_md_clock(api.md))
        if full_gc_every is not None:
            gc_policy.quiet()
            collector = asyncio.create_task(gc_policy.collect_every(full_gc_every))
        try:
            yield
        finally:
            if md_server is not None:
                md_server.close()
            if clock is not None:
                clock.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await clock
            if collector is not None:
                collector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collector
                gc_policy.restore()
            if manage_platform:
                await platform.stop()
            if cache is not None:
                await cache.close()

    managed = (
        manage_platform
        or full_gc_every is not None
        or cache is not None
        or md_flush > 0
        or md_port is not None
    )
    app = Starlette(routes=routes, lifespan=lifespan if managed else None)
    app.state.api = api
    return app


async def _md_clock(md: MarketData, every: float = 1.0) -> None:
    """Move the market data's clock on once a second (bars close on it)."""
    while True:
        await asyncio.sleep(every)
        md.tick()


_LIMIT = 2**62


def _feed_problem(e: MdEvent, symbol: str) -> str | None:
    """Why an outside feed's event cannot be applied, or None."""
    if e.symbol != symbol:
        return f"symbol {e.symbol[:100]!r} in the feed of {symbol!r}"
    if isinstance(e, MdTrade | MdLevel | MdOrder) and e.side not in (0, 1, 2):
        return "side is 0 (unknown), 1 (buy) or 2 (sell)"
    if isinstance(e, MdLevel | MdOrder) and e.side == 0:
        return "a level or an order has a side"
    values = [v for v in msgspec.structs.astuple(e) if isinstance(v, int)]
    if any(not -_LIMIT < v < _LIMIT for v in values):
        return "an integer out of range"
    if isinstance(e, MdTrade) and (e.price <= 0 or e.qty <= 0):
        return "a trade's price and quantity are positive"
    if isinstance(e, MdLevel | MdOrder) and (e.price < 0 or e.qty < 0):
        return "prices and quantities are not negative"
    if isinstance(e, MdQuote) and min(e.bid, e.bid_qty, e.ask, e.ask_qty) < 0:
        return "prices and quantities are not negative"
    return None


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "invalid_query", f"{name} must be an integer") from None


def _path_int(request: Request, name: str) -> int:
    try:
        return int(request.path_params[name])
    except ValueError:
        raise ApiError(404, "not_found", "no such resource") from None

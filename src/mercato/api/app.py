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
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mercato.api import schemas as s
from mercato.api.admin_handlers import AdminHandlers
from mercato.api.alpaca_models import parse_time
from mercato.api.analytics_handlers import AnalyticsHandlers
from mercato.api.base import (
    ADMIN,
    MAX_BODY,
    PUBLIC,
    SESSION_COOKIE,
    TRADER,
    ApiError,
    Ctx,
    Handler,
    RateLimiter,
    check_query,
    error_response,
    int_param,
    json_response,
    limit_param,
    page_token,
    paged_response,
    path_int,
    refuse_body,
    units,
)
from mercato.api.calendar_handlers import CalendarHandlers
from mercato.api.contingent import contingent
from mercato.api.instrument_analytics import InstrumentAnalytics
from mercato.api.key_handlers import KeyHandlers
from mercato.api.limits import ConnectionGuard, Limits
from mercato.api.md_handlers import md_clock
from mercato.domain.commands import (
    CancelOrder,
    Command,
    NewOco,
    NewOrder,
    ReplaceOrder,
)
from mercato.domain.events import DuplicateClientOrder, Rejected
from mercato.domain.instrument import format_decimal
from mercato.domain.orders import OrderStatus
from mercato.domain.types import (
    SELF_TRADE_NAMES,
    AccountKind,
    OrderType,
    Side,
    TimeInForce,
    TradingStatus,
)
from mercato.ports import AccountPrefs, Cache
from mercato.services import gc_policy
from mercato.services.auth import AuthError, AuthStore, Principal
from mercato.services.history import parse_order_token, parse_seq_token
from mercato.services.oms import OrderView
from mercato.services.platform import Platform
from mercato.services.sessions import Phases, clock_state

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
    "opg": TimeInForce.OPG,
    "cls": TimeInForce.CLS,
    "gtd": TimeInForce.GTD,
}
MAX_GTD_NS = 366 * 86_400 * 1_000_000_000  # a GTD order lives a year at most
SELF_TRADE_MODES: Final = {name: mode for mode, name in SELF_TRADE_NAMES.items()}
_OPEN = {OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.REPLACED}


def _expire_ts(tif: str, expire_at: str | None, now: int) -> int:
    """A GTD order's expiry in ns (0 for the other times in force), or a 422."""
    if tif != "gtd":
        if expire_at is not None:
            raise ApiError(422, "invalid_expire_time", "expire_at: only for tif gtd")
        return 0
    if expire_at is None:
        raise ApiError(422, "invalid_expire_time", "expire_at: required with tif gtd")
    ts = parse_time(expire_at, "expire_at")
    if ts <= now:
        raise ApiError(422, "invalid_expire_time", "expire_at: must be in the future")
    if ts - now > MAX_GTD_NS:
        raise ApiError(422, "invalid_expire_time", "expire_at: at most 366 days ahead")
    return ts


def _auction(b: Any) -> dict[str, Any] | None:
    """While an auction collects: its indicative price, volume and surplus (None else,
    and while nothing would execute)."""
    price, qty, surplus, side = b.indicative
    if not qty:
        return None
    return {
        "indicative_price": format_decimal(price, b.price_scale),
        "indicative_qty": format_decimal(qty, b.qty_scale),
        "surplus": format_decimal(surplus, b.qty_scale),
        "surplus_side": {1: "buy", 2: "sell"}.get(side),
    }


class Api(InstrumentAnalytics, AdminHandlers, KeyHandlers, CalendarHandlers, AnalyticsHandlers):
    """The handlers, over one platform and one auth store: auth and trading here, market
    data in ``md_handlers.py``, administration in ``admin_handlers.py``, API keys in
    ``key_handlers.py``, the clock and calendar in ``calendar_handlers.py``, an account's
    analytics in ``analytics_handlers.py``."""

    # -- auth ----------------------------------------------------------------------------

    async def signup(self, c: Ctx) -> Response:
        body = await c.body(s.Credentials)
        self._throttled(self.logins.check_address(_address(c.request)))
        try:  # argon2 takes tens of ms: off the event loop
            user_id = await asyncio.to_thread(self.auth.create_user, body.username, body.password)
        except AuthError as e:
            raise ApiError(409 if e.code == "user_exists" else 400, e.code, str(e)) from None
        return json_response({"user_id": user_id, "username": body.username}, 201)

    async def login(self, c: Ctx) -> Response:
        body = await c.body(s.Credentials)
        address = _address(c.request)
        self._throttled(self.logins.check(body.username, address))
        p = await asyncio.to_thread(self.auth.login, body.username, body.password)
        if p is None:
            raise ApiError(401, "bad_credentials", "wrong username or password")
        self.logins.succeeded(body.username, address)
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

    def _throttled(self, wait: float) -> None:
        if wait > 0:
            n = self.logins.retry_after(wait)
            raise ApiError(429, "login_throttled", f"too many attempts: retry in {n} s", n)

    async def openapi(self, c: Ctx) -> Response:
        from mercato.api.openapi import openapi_document  # it reads ROUTES, below

        return json_response(openapi_document())

    async def health(self, c: Ctx) -> Response:
        """Liveness: the process answers (``ready`` says whether it takes orders)."""
        return json_response({"status": "ok"})

    async def ready(self, c: Ctx) -> Response:
        """Readiness: 200 while the node takes commands, else 503 saying why."""
        why = self.platform.health()
        if why:
            raise ApiError(503, "not_ready", why)
        return json_response({"ready": True})

    async def me(self, c: Ctx) -> Response:
        p = c.user
        return json_response(
            {"user_id": p.user_id, "username": p.username, "role": p.role, "accounts": p.accounts}
        )

    # -- trading -------------------------------------------------------------------------

    async def instruments(self, c: Ctx) -> Response:
        out = []
        now = self.platform.now()
        for sym, b in sorted(self.core.engine.books.items()):
            inst = self.core.instruments.get(sym)
            cal = self.platform.calendar_of(sym)
            _, next_open, next_close = clock_state(cal, now)
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
                    "auction": _auction(b),
                    "calendar": cal.name,  # its own, else the platform's (GET /v1/clock)
                    "next_open": next_open or None,
                    "next_close": next_close or None,
                }
            )
        return json_response(out)

    async def account(self, c: Ctx) -> Response:
        account = self.own_account(c.user, int_param(c.request, "account"))
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
                "self_trade": SELF_TRADE_NAMES[self.core.accounts[account].self_trade or 1],
            }
        )

    async def positions(self, c: Ctx) -> Response:
        account = self.own_account(c.user, int_param(c.request, "account"))
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
                    "currency": self.core.accounts[account].currency,
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
        qty = units("qty", body.qty, book.qty_scale)
        price = units("price", body.price, book.price_scale)
        stop = units("stop_price", body.stop_price, book.price_scale)
        trail = units("trail_amount", body.trail_amount, book.price_scale)
        now = self.platform.now()
        expire_ts = _expire_ts(body.tif, body.expire_at, now)
        if not body.client_order_id.isprintable():  # (the WebSocket's orders come here too)
            raise ApiError(400, "invalid_client_order_id", "visible ASCII characters only")
        if body.order_class == "simple" and (body.take_profit or body.stop_loss):
            name = "take_profit" if body.take_profit is not None else "stop_loss"
            raise ApiError(422, "invalid_order", f"{name}: needs order_class bracket, oto or oco")
        prior = await self.platform.prior_order(account, body.client_order_id)
        if prior is not None:  # idempotent: the original, again (one the core forgot)
            return 200, prior
        if body.order_class != "simple":
            cmd, ids = contingent(self, body, account, qty, price, now)
            return await self._place(cmd, ids)
        oid = self.platform.next_order_id()
        return await self._place(
            NewOrder(
                ts=now,
                order_id=oid,
                account=account,
                symbol=body.symbol,
                side=_SIDES[body.side],
                type=_TYPES[body.type],
                qty=qty,
                tif=_TIFS[body.tif],
                expire_ts=expire_ts,
                self_trade=SELF_TRADE_MODES[body.self_trade] if body.self_trade else 0,
                price=price,
                stop_price=stop,
                post_only=body.post_only,
                client_order_id=body.client_order_id,
                trail_amount=trail,
                trail_bps=body.trail_bps,
            ),
            (oid,),
        )

    async def _place(self, cmd: Command, ids: tuple[int, ...]) -> tuple[int, OrderView]:
        """Submit an order command that creates the orders ``ids``: (201, the first), or
        (200, the original) for a repeated client order id; a 422 when the first order is
        rejected, or either leg of an OCO (the other is then cancelled). A bracket's exit
        refused when the entry fills leaves the entry standing: its leg reports it."""
        refusable = ids if isinstance(cmd, NewOco) else ids[:1]
        events = await self.submit(cmd)
        for ev in events:
            if isinstance(ev, DuplicateClientOrder):  # idempotent: the original, again
                original = await self.platform.queries.order(ev.order_id)
                if original is not None:
                    return 200, original
        for ev in events:
            if isinstance(ev, Rejected) and ev.order_id in refusable:
                raise ApiError(422, ev.reason, ev.detail or ev.reason.replace("_", " "))
        v = self.platform.history.order(ids[0])
        assert v is not None
        return 201, v

    async def get_order(self, c: Ctx) -> Response:
        v = await self.own_order(c.user, path_int(c.request, "order_id"))
        data = self.order_json(v, await self.stored_legs([v]))
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
        limit = limit_param(c.request)
        symbol = q.get("symbol")
        accounts = self._accounts_for(c)
        token = None
        if status == "open":  # every live order is in memory
            out: list[OrderView] = []
            for account in accounts:
                out.extend(self.platform.history.open_orders(account, symbol))
            out.sort(key=lambda v: v.updated_seq, reverse=True)
            out = out[:limit]
        else:
            wanted = None if status == "all" else set(OrderStatus) - _OPEN
            out, token = await self.platform.queries.orders(
                accounts,
                symbol=symbol,
                statuses=wanted,
                before=page_token(c.request, parse_order_token),
                limit=limit,
            )
        stored = await self.stored_legs(out)
        return paged_response([self.order_json(v, stored) for v in out], token)

    async def cancel(self, c: Ctx) -> Response:
        v = await self.cancel_for(c.user, path_int(c.request, "order_id"))
        return json_response(self.order_json(v))

    async def cancel_for(self, p: Principal, order_id: int) -> OrderView:
        """Cancel one of ``p``'s orders; a refusal raises ``ApiError``."""
        v = await self.own_order(p, order_id)
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
        v = await self.own_order(c.user, path_int(c.request, "order_id"))
        body = await c.body(s.ReplaceRequest)
        book = self.book(v.symbol)
        qty = units("qty", body.qty, book.qty_scale)
        price = units("price", body.price, book.price_scale)
        stop = units("stop_price", body.stop_price, book.price_scale)
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
        limit = limit_param(c.request)
        out, token = await self.platform.queries.fills(
            self._accounts_for(c),
            symbol=q.get("symbol"),
            before=page_token(c.request, parse_seq_token),
            limit=limit,
        )
        return paged_response([self.fill_json(f) for f in out], token)

    def _accounts_for(self, c: Ctx) -> list[int]:
        requested = int_param(c.request, "account")
        if requested is not None:
            return [self.own_account(c.user, requested)]
        return list(c.user.accounts)


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


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
    RouteSpec("GET", "/v1/health", PUBLIC, "health"),
    RouteSpec("GET", "/v1/ready", PUBLIC, "ready"),
    RouteSpec("GET", "/v1/instruments", PUBLIC, "instruments"),
    RouteSpec("GET", "/v1/currencies", PUBLIC, "currencies"),
    RouteSpec("GET", "/v1/clock", PUBLIC, "clock"),
    RouteSpec("GET", "/v1/calendar", PUBLIC, "calendar"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/quote", PUBLIC, "quote"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/depth", PUBLIC, "depth"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/trades", PUBLIC, "recent_trades"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/bars", PUBLIC, "bars"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/indicators", PUBLIC, "indicators"),
    RouteSpec("GET", "/v1/marketdata/{symbol}/stats", PUBLIC, "stats"),
    RouteSpec("GET", "/v1/openapi.json", PUBLIC, "openapi"),
    RouteSpec("GET", "/v1/me", TRADER, "me"),
    RouteSpec("POST", "/v1/keys", TRADER, "new_key"),
    RouteSpec("GET", "/v1/keys", TRADER, "list_keys"),
    RouteSpec("DELETE", "/v1/keys/{key_id}", TRADER, "revoke_key"),
    RouteSpec("GET", "/v1/account", TRADER, "account"),
    RouteSpec("GET", "/v1/positions", TRADER, "positions"),
    RouteSpec("POST", "/v1/orders", TRADER, "place"),
    RouteSpec("GET", "/v1/orders", TRADER, "list_orders"),
    RouteSpec("DELETE", "/v1/orders", TRADER, "cancel_all"),
    RouteSpec("GET", "/v1/orders/{order_id}", TRADER, "get_order"),
    RouteSpec("PATCH", "/v1/orders/{order_id}", TRADER, "replace"),
    RouteSpec("DELETE", "/v1/orders/{order_id}", TRADER, "cancel"),
    RouteSpec("GET", "/v1/fills", TRADER, "fills"),
    RouteSpec("GET", "/v1/analytics/patterns", TRADER, "patterns"),
    RouteSpec("GET", "/v1/analytics/performance", TRADER, "performance"),
    RouteSpec("GET", "/v1/analytics/movers", PUBLIC, "movers"),
    RouteSpec("GET", "/v1/analytics/candles/{symbol}", PUBLIC, "history_candles"),
    RouteSpec("GET", "/v1/analytics/correlation", PUBLIC, "correlation"),
    RouteSpec("POST", "/v1/admin/users", ADMIN, "create_user"),
    RouteSpec("POST", "/v1/admin/accounts", ADMIN, "create_account"),
    RouteSpec("POST", "/v1/admin/accounts/{account}/transfers", ADMIN, "deposit"),
    RouteSpec("PUT", "/v1/admin/accounts/{account}/limits", ADMIN, "set_limits"),
    RouteSpec("PUT", "/v1/admin/accounts/{account}/self_trade", ADMIN, "set_self_trade"),
    RouteSpec("POST", "/v1/admin/currencies", ADMIN, "add_currency"),
    RouteSpec("POST", "/v1/admin/instruments", ADMIN, "add_instrument"),
    RouteSpec("POST", "/v1/admin/feeds", ADMIN, "add_feed"),
    RouteSpec("POST", "/v1/admin/feeds/{symbol}/events", ADMIN, "feed_events"),
    RouteSpec("PUT", "/v1/admin/instruments/{symbol}/status", ADMIN, "set_status"),
    RouteSpec("POST", "/v1/admin/kill", ADMIN, "kill"),
    RouteSpec("DELETE", "/v1/admin/keys/{key_id}", ADMIN, "admin_revoke_key"),
)
"""Every route, who may call it, and its handler: the authorization test reads this."""


def _endpoint(api: Api, spec: RouteSpec) -> Callable[[Request], Awaitable[Response]]:
    from mercato.api.openapi import BODIES, QUERY  # it reads ROUTES, above

    return endpoint_for(
        api,
        spec.access,
        getattr(api, spec.handler),
        error_response,
        query=frozenset(p["name"] for p in QUERY.get(spec.handler, ())),
        body=spec.handler in BODIES,
    )


def endpoint_for(
    api: Api,
    access: str,
    handler: Handler,
    on_error: Callable[[ApiError], Response],
    *,
    query: frozenset[str] = frozenset(),
    body: bool = False,
    invalid: int = 400,
) -> Callable[[Request], Awaitable[Response]]:
    """An ASGI endpoint: authenticate, check the role, rate-limit, refuse a query
    parameter not in ``query`` (and a body, unless the route reads one: ``body``) with
    ``invalid`` (400, or 422 on ``/v2``), run ``handler``; an ``ApiError`` becomes
    ``on_error``'s response (the native or the Alpaca shape)."""

    async def endpoint(request: Request) -> Response:
        try:
            principal, key = api.principal(request)
            if access != PUBLIC:
                if principal is None:
                    raise ApiError(401, "unauthenticated", "sign in or send an API key")
                if access == ADMIN and principal.role != ADMIN:
                    raise ApiError(403, "forbidden", "administrators only")
            if not api.limiter.allow(key, principal.user_id if principal else None):
                raise ApiError(429, "rate_limited", "too many requests: slow down")
            check_query(request, query, invalid)
            if not body:
                await refuse_body(request, invalid)
            return await handler(Ctx(request, principal, api))
        except ApiError as e:
            return on_error(e)

    return endpoint


def one_route_per_path(routes: list[BaseRoute]) -> list[BaseRoute]:
    """The HTTP routes of one path merged into one route that dispatches on the method:
    so that a method no route of the path serves is a 405 whose ``Allow`` lists them all
    (Starlette answers for the first route whose path matches)."""
    groups: dict[str, list[Route]] = {}
    for r in routes:
        if isinstance(r, Route) and r.methods:
            groups.setdefault(r.path, []).append(r)
    out: list[BaseRoute] = []
    for r in routes:
        if not (isinstance(r, Route) and r.methods):
            out.append(r)
            continue
        group = groups.get(r.path)
        if group is None:  # merged already, where its first route stood
            continue
        del groups[r.path]
        if len(group) == 1:
            out.append(r)
            continue
        table = {m: g.endpoint for g in group for m in g.methods or ()}

        async def by_method(request: Request, table: dict[str, Any] = table) -> Response:
            return await table[request.method](request)  # type: ignore[no-any-return]

        out.append(Route(r.path, by_method, methods=sorted(table)))
    return out


_HTTP_CODES: Final = {404: "not_found", 405: "method_not_allowed"}
log = logging.getLogger("mercato.api")


def _error_handlers(
    alpaca_error: Callable[[ApiError], Response],
) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """Starlette's own answers (no route: 404, wrong method: 405 with ``Allow``) and any
    unexpected exception (500, logged) in the documented error shape: Alpaca's under
    ``/v2/``, the native one elsewhere."""

    def shape(request: Request) -> Callable[[ApiError], Response]:
        return alpaca_error if request.url.path.startswith("/v2/") else error_response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        code = _HTTP_CODES.get(status, "http_error")
        message = "no such route" if status == 404 else str(exc.detail).lower()
        return shape(request)(ApiError(status, code, message, headers=exc.headers))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("500 on %s %s: %r", request.method, request.url.path, exc)
        return shape(request)(ApiError(500, "internal_error", "internal server error"))

    return {HTTPException: http_error, Exception: server_error}


# How Mercato's servers run the app (uvicorn's options): the libuv loop, the C HTTP
# parser, and the sans-I/O WebSocket protocol (the fastest of uvicorn's three here), which
# ``limits.server_config`` replaces by its subclass with the connection limits and a close
# bounded in time (api/ws_protocol.py: a client that stopped reading is aborted).
MD_FLUSH: Final = 0.005  # seconds: a server's market-data publication interval (at most)
SERVER_OPTIONS: Final[dict[str, Any]] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "websockets-sansio",  # with a bounded close: api/ws_protocol.py, api/limits.py
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
    limits: Limits | None = None,
    sessions: bool = False,
    phases: Phases | None = None,
    prefs: AccountPrefs | None = None,
) -> Starlette:
    """The ASGI application. With ``manage_platform`` the server's lifespan starts and
    stops the platform (journal writer, snapshot on the way out). With ``full_gc_every``
    (seconds) it also takes the process's full garbage collections off the order path
    (``services/gc_policy.py``): for a server process, not for an app inside tests.
    ``md_flush`` is the market data's publication interval in seconds (0: after every
    command; servers use ``MD_FLUSH``); ``cache`` its last-value cache, started and closed
    with the server. ``md_port``: also serve market data on that port (``api/md_stream.py``,
    the fan-out's fast path). ``limits``: the connection limits (``api/limits.py``) of
    both ports; ``app.state.guard`` holds them for ``server_config``. ``sessions``: run the
    session service (``services/sessions.py``: the platform's calendar opens and closes
    its instruments and ends each trading day), as servers do; ``phases`` its call
    phases (pre-open and auctions; none by default). ``prefs``: where the accounts'
    watchlists and configurations are kept (``adapters/sql/prefs.py``; None: in memory)."""
    guard = ConnectionGuard(limits)
    api = Api(platform, auth, RateLimiter(rate, burst), md_flush, cache, guard.limits, prefs)
    from mercato.api.alpaca import alpaca_error, alpaca_routes  # these import this module
    from mercato.api.alpaca_data import alpaca_data_routes
    from mercato.api.alpaca_market_stream import alpaca_market_stream_routes
    from mercato.api.alpaca_stream import alpaca_stream_routes
    from mercato.api.landing import landing_routes
    from mercato.api.ws import websocket_route

    routes: list[BaseRoute] = [
        Route(spec.path, _endpoint(api, spec), methods=[spec.method]) for spec in ROUTES
    ]
    routes += alpaca_routes(api)
    routes += alpaca_data_routes(api)
    routes += alpaca_stream_routes(api)
    routes += alpaca_market_stream_routes(api)
    routes.append(websocket_route(api))
    routes += landing_routes(api)  # / and /docs (Swagger UI from the package)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if cache is not None:
            await cache.start()
        if manage_platform:
            platform.start()
        collector = clock = day = None
        if sessions:
            from mercato.services.sessions import SessionService

            service = SessionService(platform, platform.calendar, phases=phases or Phases())
            day = asyncio.create_task(service.run())
        md_server = None
        if md_port is not None:
            from mercato.api.md_stream import serve_md

            md_server = await serve_md(api.md, md_host, md_port, guard)
        if md_flush > 0:  # a server: bars close on time even when nothing trades
            clock = asyncio.create_task(md_clock(api.md))
        if full_gc_every is not None:
            gc_policy.quiet()
            collector = asyncio.create_task(gc_policy.collect_every(full_gc_every))
        try:
            yield
        finally:
            await api.keys.close()
            if md_server is not None:
                md_server.close()
            for task in (clock, day):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
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
        or sessions
    )
    app = Starlette(
        routes=one_route_per_path(routes),
        lifespan=lifespan if managed else None,
        exception_handlers=_error_handlers(alpaca_error),
    )
    app.state.api = api
    app.state.guard = guard
    return app


__all__ = [
    "ADMIN",
    "MAX_BODY",
    "MD_FLUSH",
    "PUBLIC",
    "ROUTES",
    "SERVER_OPTIONS",
    "SESSION_COOKIE",
    "TRADER",
    "Api",
    "ApiError",
    "Ctx",
    "Handler",
    "RateLimiter",
    "RouteSpec",
    "create_app",
    "endpoint_for",
    "error_response",
    "json_response",
]

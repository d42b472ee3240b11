"""The Alpaca-compatible trading API (``/v2``): programs written for Alpaca's trading API
and its SDK (``alpaca-py``) run against Mercato with only a changed base URL.

Served so far: the account, orders (submit market / limit / stop / stop-limit with day,
gtc, ioc, fok; get by id or client order id; list; replace; cancel; cancel all),
positions (list, get, close one, close all), assets and the clock. Order ids are UUIDs on
this surface: Mercato's integer order id is the UUID's 128-bit value. Amounts are decimal
strings, as Alpaca sends them. Errors take Alpaca's shape, ``{"code": ..., "message":
...}``; a refused order is a 403 with the core's reason in the message, as Alpaca answers
an order it cannot afford.

The trading stream (``trade_updates``) is in ``alpaca_stream.py`` and the historical data
endpoints in ``alpaca_data.py``. Not yet: the market-data streams.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from starlette.responses import Response
from starlette.routing import Route

from mercato.api.app import TRADER, Api, ApiError, Ctx, endpoint_for, json_response
from mercato.domain.commands import CancelOrder, NewOrder, ReplaceOrder
from mercato.domain.events import DuplicateClientOrder, Rejected
from mercato.domain.instrument import DecimalError, format_decimal, parse_decimal
from mercato.domain.orders import OrderStatus
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus
from mercato.services.oms import OrderView

_NS: Final = uuid.UUID("6d657263-6174-6f00-0000-000000000000")  # names asset and account ids
_SIDES: Final = {"buy": Side.BUY, "sell": Side.SELL}
_TYPES: Final = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT,
}
_TIFS: Final = {
    "day": TimeInForce.DAY,
    "gtc": TimeInForce.GTC,
    "ioc": TimeInForce.IOC,
    "fok": TimeInForce.FOK,
}
_STATUS: Final = {
    OrderStatus.NEW: "new",
    OrderStatus.ACCEPTED: "new",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "canceled",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.REPLACED: "new",
}
_OPEN: Final = {OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.REPLACED}


def alpaca_error(e: ApiError) -> Response:
    return json_response({"code": e.status * 100_000 + 1, "message": e.message}, e.status)


def _iso(ts: int) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts / 1e9, UTC).isoformat().replace("+00:00", "Z")


def order_uuid(order_id: int) -> str:
    return str(uuid.UUID(int=order_id))


def _order_id(text: str) -> int:
    try:
        return uuid.UUID(text).int
    except ValueError:
        raise ApiError(404, "unknown_order", "order not found") from None


class AlpacaApi:
    """The ``/v2`` handlers, over the native ``Api`` (same platform, users and limits)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    @property
    def core(self) -> Any:
        return self.api.core

    def _account(self, c: Ctx) -> int:
        return self.api.own_account(c.user, None)

    def order(self, v: OrderView) -> dict[str, Any]:
        book = self.core.engine.books.get(v.symbol)
        ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
        notional, filled = v.avg_price
        status = _STATUS.get(OrderStatus(v.status), "new")
        if status == "new" and v.filled:
            status = "partially_filled"
        kind = {1: "market", 2: "limit", 3: "stop", 4: "stop_limit"}.get(v.type, "market")
        tif = {1: "gtc", 2: "day", 3: "ioc", 4: "fok"}.get(v.tif, "gtc")
        return {
            "id": order_uuid(v.order_id),
            "client_order_id": v.client_order_id or order_uuid(v.order_id),
            "created_at": _iso(v.created_ts) or _iso(1),
            "updated_at": _iso(v.updated_ts) or _iso(1),
            "submitted_at": _iso(v.created_ts) or _iso(1),
            "filled_at": _iso(v.updated_ts) if status == "filled" else None,
            "expired_at": _iso(v.updated_ts) if status == "expired" else None,
            "canceled_at": _iso(v.updated_ts) if status == "canceled" else None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(_NS, v.symbol)),
            "symbol": v.symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": format_decimal(v.qty, qs),
            "filled_qty": format_decimal(v.filled, qs),
            "filled_avg_price": format_decimal(notional // filled, ps)
            if filled and notional
            else None,
            "order_class": "simple",
            "order_type": kind,
            "type": kind,
            "side": "buy" if v.side == Side.BUY else "sell",
            "time_in_force": tif,
            "limit_price": format_decimal(v.price, ps) if v.price else None,
            "stop_price": format_decimal(v.stop_price, ps) if v.stop_price else None,
            "status": status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }

    # -- account, clock, assets ------------------------------------------------------------

    async def account(self, c: Ctx) -> Response:
        account = self._account(c)
        sm = self.core.summary(account)
        money = self.api.money
        gross_long = sum(
            self.core._value(s, p)
            for s, p in self.core.accounts[account].positions.items()
            if p.qty > 0
        )
        gross_short = sum(
            self.core._value(s, p)
            for s, p in self.core.accounts[account].positions.items()
            if p.qty < 0
        )
        return json_response(
            {
                "id": str(uuid.uuid5(_NS, f"account-{account}")),
                "account_number": str(account),
                "status": "ACTIVE",
                "crypto_status": None,
                "currency": sm.currency,
                "buying_power": money(account, sm.buying_power),
                "regt_buying_power": money(account, sm.buying_power),
                "daytrading_buying_power": money(account, sm.buying_power),
                "non_marginable_buying_power": money(account, sm.buying_power),
                "cash": money(account, sm.cash),
                "accrued_fees": "0",
                "pending_transfer_in": "0",
                "portfolio_value": money(account, sm.equity),
                "equity": money(account, sm.equity),
                "last_equity": money(account, sm.equity - sm.day_pnl),
                "long_market_value": money(account, gross_long),
                "short_market_value": money(account, -gross_short),
                "initial_margin": money(account, sm.initial_margin),
                "maintenance_margin": money(account, sm.maintenance_margin),
                "last_maintenance_margin": money(account, sm.maintenance_margin),
                "sma": "0",
                "multiplier": "1" if sm.kind == 1 else "2",
                "shorting_enabled": sm.kind != 1,
                "pattern_day_trader": False,
                "trading_blocked": sm.killed,
                "transfers_blocked": False,
                "account_blocked": False,
                "trade_suspended_by_user": False,
                "daytrade_count": 0,
                "created_at": _iso(1),
            }
        )

    async def clock(self, c: Ctx) -> Response:
        now = datetime.fromtimestamp(self.api.platform.now() / 1e9, UTC)
        stamp = now.isoformat().replace("+00:00", "Z")
        # a continuous market: always open; the "next" open and close are a day apart
        return json_response(
            {"timestamp": stamp, "is_open": True, "next_open": stamp, "next_close": stamp}
        )

    def _asset(self, symbol: str) -> dict[str, Any]:
        book = self.core.engine.books[symbol]
        return {
            "id": str(uuid.uuid5(_NS, symbol)),
            "class": "us_equity",
            "asset_class": "us_equity",
            "exchange": "OTC",
            "symbol": symbol,
            "name": symbol,
            "status": "active" if book.status != TradingStatus.CLOSED else "inactive",
            "tradable": book.status == TradingStatus.OPEN,
            "marginable": True,
            "shortable": True,
            "easy_to_borrow": True,
            "fractionable": book.qty_scale > 0,
            "min_order_size": None,
            "min_trade_increment": None,
            "price_increment": None,
            "maintenance_margin_requirement": None,
            "attributes": [],
        }

    async def assets(self, c: Ctx) -> Response:
        return json_response([self._asset(s) for s in sorted(self.core.engine.books)])

    async def asset(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        if symbol not in self.core.engine.books:
            raise ApiError(404, "unknown_symbol", "asset not found")
        return json_response(self._asset(symbol))

    # -- orders ------------------------------------------------------------------------------

    async def submit(self, c: Ctx) -> Response:
        body = await c.body(dict)
        account = self._account(c)
        try:
            symbol = str(body["symbol"])
            side = _SIDES[body["side"]]
            kind = _TYPES[body.get("type") or body.get("order_type") or "market"]
            tif = _TIFS[body.get("time_in_force", "day")]
        except (KeyError, TypeError):
            raise ApiError(422, "invalid_order", "symbol, side, type and time_in_force") from None
        book = self.api.book(symbol)
        try:
            qty = parse_decimal(str(body.get("qty", "")), book.qty_scale)
            limit = body.get("limit_price")
            stop = body.get("stop_price")
            price = parse_decimal(str(limit), book.price_scale) if limit is not None else 0
            stop_price = parse_decimal(str(stop), book.price_scale) if stop is not None else 0
        except DecimalError as e:
            raise ApiError(422, "invalid_number", str(e)) from None
        client_id = str(body.get("client_order_id") or "")
        if len(client_id) > 64:
            raise ApiError(422, "invalid_client_order_id", "at most 64 characters")
        oid = self.api.platform.next_order_id()
        events = await self.api.submit(
            NewOrder(
                ts=self.api.platform.now(),
                order_id=oid,
                account=account,
                symbol=symbol,
                side=side,
                type=kind,
                qty=qty,
                tif=tif,
                price=price,
                stop_price=stop_price,
                client_order_id=client_id,
            )
        )
        for ev in events:
            if isinstance(ev, DuplicateClientOrder):
                raise ApiError(422, "duplicate_client_order_id", "client_order_id must be unique")
            if isinstance(ev, Rejected) and ev.order_id == oid:
                raise ApiError(403, ev.reason, ev.detail or ev.reason.replace("_", " "))
        v = self.api.platform.history.order(oid)
        assert v is not None
        return json_response(self.order(v))

    def _own(self, c: Ctx, order_id: int) -> OrderView:
        try:
            return self.api.own_order(c.user, order_id)
        except ApiError:
            raise ApiError(404, "unknown_order", "order not found") from None

    async def get(self, c: Ctx) -> Response:
        return json_response(self.order(self._own(c, _order_id(c.request.path_params["id"]))))

    async def by_client_id(self, c: Ctx) -> Response:
        client_id = c.request.query_params.get("client_order_id", "")
        for account in c.user.accounts:
            v = self.api.platform.history.by_client_id(account, client_id)
            if v is not None:
                return json_response(self.order(v))
        raise ApiError(404, "unknown_order", "order not found")

    async def list(self, c: Ctx) -> Response:
        q = c.request.query_params
        status = q.get("status", "open")
        limit = int(q.get("limit", "50")) if q.get("limit", "50").isdigit() else 50
        symbols = set(q.get("symbols", "").split(",")) - {""}
        out: list[OrderView] = []
        for account in c.user.accounts:
            if status == "open":
                out.extend(self.api.platform.history.open_orders(account))
            else:
                wanted = None if status == "all" else set(OrderStatus) - _OPEN
                out.extend(
                    self.api.platform.history.orders(account=account, status=wanted, limit=500)
                )
        out = [v for v in out if not symbols or v.symbol in symbols]
        out.sort(key=lambda v: v.updated_seq, reverse=True)
        return json_response([self.order(v) for v in out[: max(1, min(limit, 500))]])

    async def replace(self, c: Ctx) -> Response:
        v = self._own(c, _order_id(c.request.path_params["id"]))
        body = await c.body(dict)
        book = self.api.book(v.symbol)
        try:
            qty = (
                parse_decimal(str(body["qty"]), book.qty_scale)
                if body.get("qty") is not None
                else v.remaining
            )
            limit = body.get("limit_price")
            stop = body.get("stop_price")
            price = parse_decimal(str(limit), book.price_scale) if limit is not None else v.price
            stop_price = parse_decimal(str(stop), book.price_scale) if stop is not None else 0
        except DecimalError as e:
            raise ApiError(422, "invalid_number", str(e)) from None
        events = await self.api.submit(
            ReplaceOrder(
                ts=self.api.platform.now(),
                order_id=v.order_id,
                symbol=v.symbol,
                price=price,
                qty=qty,
                stop_price=stop_price,
            )
        )
        rej = self.api.refused(events)
        if rej is not None:
            raise ApiError(422, rej.reason, rej.detail or rej.reason.replace("_", " "))
        return json_response(self.order(v))

    async def cancel(self, c: Ctx) -> Response:
        v = self._own(c, _order_id(c.request.path_params["id"]))
        events = await self.api.submit(
            CancelOrder(ts=self.api.platform.now(), order_id=v.order_id, symbol=v.symbol)
        )
        if self.api.refused(events) is not None:
            raise ApiError(422, "not_cancelable", "order is not cancelable")
        return Response(status_code=204)

    async def cancel_all(self, c: Ctx) -> Response:
        out = []
        for account in c.user.accounts:
            for v in self.api.platform.history.open_orders(account):
                events = await self.api.submit(
                    CancelOrder(ts=self.api.platform.now(), order_id=v.order_id, symbol=v.symbol)
                )
                status = 200 if self.api.refused(events) is None else 500
                out.append({"id": order_uuid(v.order_id), "status": status, "body": None})
        return json_response(out, 207)

    # -- positions ---------------------------------------------------------------------------

    def _position(self, account: int, symbol: str) -> dict[str, Any] | None:
        pos = self.core.accounts[account].positions.get(symbol)
        if pos is None or not pos.qty:
            return None
        book = self.core.engine.books[symbol]
        ps, qs = book.price_scale, book.qty_scale
        money = self.api.money
        value = self.core._value(symbol, pos)
        inst = self.core.instruments[symbol]
        avg = abs(pos.cost) * inst.div // (inst.mul * abs(pos.qty))  # price units, rounded down
        mark = self.core.mark(symbol)
        return {
            "asset_id": str(uuid.uuid5(_NS, symbol)),
            "symbol": symbol,
            "exchange": "OTC",
            "asset_class": "us_equity",
            "avg_entry_price": format_decimal(avg, ps),
            "qty": format_decimal(abs(pos.qty), qs),
            "qty_available": format_decimal(abs(pos.qty), qs),
            "side": "long" if pos.qty > 0 else "short",
            "market_value": money(account, value if pos.qty > 0 else -value),
            "cost_basis": money(account, pos.cost),
            "unrealized_pl": money(account, pos.unrealized(value)),
            "unrealized_plpc": None,
            "unrealized_intraday_pl": money(account, pos.unrealized(value)),
            "unrealized_intraday_plpc": None,
            "current_price": format_decimal(mark, ps) if mark else None,
            "lastday_price": None,
            "change_today": None,
        }

    async def positions(self, c: Ctx) -> Response:
        account = self._account(c)
        out = [self._position(account, s) for s in sorted(self.core.accounts[account].positions)]
        return json_response([p for p in out if p is not None])

    async def position(self, c: Ctx) -> Response:
        p = self._position(self._account(c), c.request.path_params["symbol"])
        if p is None:
            raise ApiError(404, "no_position", "position does not exist")
        return json_response(p)

    async def _close(self, c: Ctx, account: int, symbol: str) -> dict[str, Any]:
        pos = self.core.accounts[account].positions.get(symbol)
        if pos is None or not pos.qty:
            raise ApiError(404, "no_position", "position does not exist")
        oid = self.api.platform.next_order_id()
        events = await self.api.submit(
            NewOrder(
                ts=self.api.platform.now(),
                order_id=oid,
                account=account,
                symbol=symbol,
                side=Side.SELL if pos.qty > 0 else Side.BUY,
                type=OrderType.MARKET,
                qty=abs(pos.qty),
                tif=TimeInForce.DAY,
            )
        )
        rej = self.api.refused(events)
        if rej is not None:
            raise ApiError(403, rej.reason, rej.detail or rej.reason)
        v = self.api.platform.history.order(oid)
        assert v is not None
        return self.order(v)

    async def close_position(self, c: Ctx) -> Response:
        account = self._account(c)
        return json_response(await self._close(c, account, c.request.path_params["symbol"]))

    async def close_all(self, c: Ctx) -> Response:
        account = self._account(c)
        out = []
        for symbol in sorted(self.core.accounts[account].positions):
            pos = self.core.accounts[account].positions[symbol]
            if pos.qty:
                order = await self._close(c, account, symbol)
                out.append({"symbol": symbol, "status": 200, "body": order})
        return json_response(out, 207)


def alpaca_routes(api: Api) -> list[Route]:
    """The ``/v2`` routes, authenticated like the native API (Alpaca's key headers)."""
    a = AlpacaApi(api)
    table: list[tuple[str, str, Callable[[Ctx], Awaitable[Response]]]] = [
        ("GET", "/v2/account", a.account),
        ("GET", "/v2/clock", a.clock),
        ("GET", "/v2/assets", a.assets),
        ("GET", "/v2/assets/{symbol}", a.asset),
        ("POST", "/v2/orders", a.submit),
        ("GET", "/v2/orders", a.list),
        ("DELETE", "/v2/orders", a.cancel_all),
        ("GET", "/v2/orders:by_client_order_id", a.by_client_id),
        ("GET", "/v2/orders/{id}", a.get),
        ("PATCH", "/v2/orders/{id}", a.replace),
        ("DELETE", "/v2/orders/{id}", a.cancel),
        ("GET", "/v2/positions", a.positions),
        ("DELETE", "/v2/positions", a.close_all),
        ("GET", "/v2/positions/{symbol}", a.position),
        ("DELETE", "/v2/positions/{symbol}", a.close_position),
    ]
    return [
        Route(path, endpoint_for(api, TRADER, handler, alpaca_error), methods=[method])
        for method, path, handler in table
    ]

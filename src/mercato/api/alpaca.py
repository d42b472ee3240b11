"""The Alpaca-compatible trading API (``/v2``): programs written for Alpaca's trading API
and its SDK (``alpaca-py``) run against Mercato with only a changed base URL.

Served so far: the account, orders (submit market / limit / stop / stop-limit with day,
gtc, ioc, fok; get by id or client order id; list; replace; cancel; cancel all),
positions (list, get, close one, close all), assets and the clock; watchlists and the
account configurations (``alpaca_account.py``), account activities
(``alpaca_activities.py``). Order ids are UUIDs on
this surface: Mercato's integer order id is the UUID's 128-bit value. Amounts are decimal
strings, as Alpaca sends them. Errors take Alpaca's shape, ``{"code": ..., "message":
...}``; a refused order is a 403 with the core's reason in the message, as Alpaca answers
an order it cannot afford.

The trading stream (``trade_updates``) is in ``alpaca_stream.py`` and the historical data
endpoints in ``alpaca_data.py``. Not yet: the market-data streams.

Bodies in and out are the msgspec structs of ``alpaca_models.py``; ``ROUTES`` names each
route's handler, structs and query parameters, and ``openapi.alpaca_document`` (served at
``GET /v2/openapi.json``) is built from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from starlette.responses import Response
from starlette.routing import Route

from mercato.api.alpaca_account import AlpacaAccount
from mercato.api.alpaca_activities import AlpacaActivities
from mercato.api.alpaca_models import (
    NS,
    Account,
    Activity,
    Asset,
    CalendarDay,
    Canceled,
    Clock,
    Closed,
    Configurations,
    ConfigurationsPatch,
    Error,
    Kind,
    Order,
    OrderBody,
    OrderPatch,
    Position,
    State,
    Tif,
    Watchlist,
    WatchlistBody,
    WatchlistSymbol,
    WatchlistUpdate,
    parse_time,
)
from mercato.api.alpaca_orders import SIDES, Planner, class_fields, is_leg, text
from mercato.api.alpaca_portfolio import AlpacaPortfolio
from mercato.api.alpaca_positions import AlpacaPositions, flag
from mercato.api.app import (
    TRADER,
    Api,
    ApiError,
    Ctx,
    RouteSpec,
    endpoint_for,
    json_response,
)
from mercato.api.base import limit_param, page_token, paged_response, units
from mercato.api.calendar_handlers import sessions_between
from mercato.domain.commands import CancelOrder, ReplaceOrder
from mercato.domain.events import DuplicateClientOrder, Rejected
from mercato.domain.instrument import format_decimal
from mercato.domain.orders import OrderStatus
from mercato.domain.types import Side, TradingStatus
from mercato.services.history import order_token, parse_order_token
from mercato.services.oms import OrderView
from mercato.services.sessions import clock_state

_STATUS: Final[dict[OrderStatus, State]] = {
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
_KIND_NAMES: Final[dict[int, Kind]] = {1: "market", 2: "limit", 3: "stop", 4: "stop_limit"}
_TIF_NAMES: Final[dict[int, Tif]] = {
    1: "gtc",
    2: "day",
    3: "ioc",
    4: "fok",
    5: "opg",
    6: "cls",
}
_B = TypeVar("_B", bound=msgspec.Struct)
_NONE: Final[Mapping[int, OrderView]] = {}  # no legs read from the store
MAX_SEARCH: Final = 10_000  # orders read at most by one filtered GET /v2/orders


def alpaca_error(e: ApiError) -> Response:
    """Alpaca's error shape: ``{"code": status * 100,000 + 1, "message": ...}``."""
    return json_response(Error(e.status * 100_000 + 1, e.message), e.status, e.headers)


def _stamp(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1e9, UTC).isoformat().replace("+00:00", "Z")


def _local(ts: int, zone: ZoneInfo) -> str:
    """``ts`` as RFC 3339 in ``zone`` with its offset (Alpaca's clock: market time)."""
    return datetime.fromtimestamp(ts // 1_000_000_000, zone).isoformat()


def _iso(ts: int) -> str | None:
    return _stamp(ts) if ts else None


async def _body(c: Ctx, kind: type[_B]) -> _B:
    """``kind`` from the request; well-formed JSON of the wrong shape is a 422, as Alpaca
    answers an order it cannot read."""
    try:
        return await c.body(kind)
    except ApiError as e:
        if e.code == "invalid_body":
            raise ApiError(422, "invalid_order", e.message) from None
        raise


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

    async def stored_legs(self, views: Iterable[OrderView]) -> dict[int, OrderView]:
        """The legs memory no longer holds, from the store (``ApiBase.stored_legs``)."""
        result: dict[int, OrderView] = await self.api.stored_legs(views)
        return result

    def order(self, v: OrderView, stored: Mapping[int, OrderView] = _NONE) -> Order:
        book = self.core.engine.books.get(v.symbol)
        ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
        notional, filled = v.avg_price
        status = _STATUS.get(OrderStatus(v.status), "new")
        if status == "new" and v.filled:
            status = "partially_filled"
        kind: Kind = _KIND_NAMES.get(v.type, "market")
        tif: Tif = _TIF_NAMES.get(v.tif, "gtc")
        out = Order(
            id=order_uuid(v.order_id),
            client_order_id=v.client_order_id or order_uuid(v.order_id),
            created_at=_stamp(v.created_ts or 1),
            updated_at=_stamp(v.updated_ts or 1),
            submitted_at=_stamp(v.created_ts or 1),
            filled_at=_iso(v.updated_ts) if status == "filled" else None,
            expired_at=_iso(v.updated_ts) if status == "expired" else None,
            canceled_at=_iso(v.updated_ts) if status == "canceled" else None,
            failed_at=None,
            replaced_at=None,
            replaced_by=None,
            replaces=None,
            asset_id=str(uuid.uuid5(NS, v.symbol)),
            symbol=v.symbol,
            asset_class="us_equity",
            notional=None,
            qty=format_decimal(v.qty, qs),
            filled_qty=format_decimal(v.filled, qs),
            filled_avg_price=format_decimal(notional // filled, ps)
            if filled and notional
            else None,
            order_class="simple",
            order_type=kind,
            type=kind,
            side="buy" if v.side == Side.BUY else "sell",
            time_in_force=tif,
            limit_price=format_decimal(v.price, ps) if v.price else None,
            stop_price=format_decimal(v.stop_price, ps) if v.stop_price else None,
            status=status,
            extended_hours=False,
            legs=None,
            trail_percent=None,
            trail_price=None,
            hwm=None,
        )
        extra = class_fields(
            self.core,
            self.api.platform.history,
            v,
            self.order,
            lambda p: format_decimal(p, ps),
            out,
            stored,
        )
        return msgspec.structs.replace(out, **extra) if extra else out

    async def openapi(self, c: Ctx) -> Response:
        from mercato.api.openapi import alpaca_document  # it reads ROUTES, below

        return json_response(alpaca_document())

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
            Account(
                id=str(uuid.uuid5(NS, f"account-{account}")),
                account_number=str(account),
                status="ACTIVE",
                crypto_status=None,
                currency=sm.currency,
                buying_power=money(account, sm.buying_power),
                regt_buying_power=money(account, sm.buying_power),
                daytrading_buying_power=money(account, sm.buying_power),
                non_marginable_buying_power=money(account, sm.buying_power),
                cash=money(account, sm.cash),
                accrued_fees="0",
                pending_transfer_in="0",
                portfolio_value=money(account, sm.equity),
                equity=money(account, sm.equity),
                last_equity=money(account, sm.equity - sm.day_pnl),
                long_market_value=money(account, gross_long),
                short_market_value=money(account, -gross_short),
                initial_margin=money(account, sm.initial_margin),
                maintenance_margin=money(account, sm.maintenance_margin),
                last_maintenance_margin=money(account, sm.maintenance_margin),
                sma="0",
                multiplier="1" if sm.kind == 1 else "2",
                shorting_enabled=sm.kind != 1,
                pattern_day_trader=False,
                trading_blocked=sm.killed,
                transfers_blocked=False,
                account_blocked=False,
                trade_suspended_by_user=self.api.settings.config(account).suspend_trade,
                daytrade_count=0,
                created_at=_stamp(1),
            )
        )

    async def clock(self, c: Ctx) -> Response:
        """The platform's calendar (``--calendar``), its times in the calendar's zone."""
        cal = self.api.platform.calendar
        zone = ZoneInfo(cal.zone)
        now = self.api.platform.now()
        is_open, next_open, next_close = clock_state(cal, now)
        return json_response(
            Clock(
                timestamp=_local(now, zone),
                is_open=is_open,
                next_open=_local(next_open, zone),
                next_close=_local(next_close, zone),
            )
        )

    async def calendar(self, c: Ctx) -> Response:
        zone = ZoneInfo(self.api.platform.calendar.zone)

        def hhmm(ts: int) -> str:
            return datetime.fromtimestamp(ts // 1_000_000_000, zone).strftime("%H:%M")

        days = []
        for s in sessions_between(self.api, c.request, 422):
            o, e = hhmm(s.open), hhmm(s.close)
            days.append(
                CalendarDay(
                    date=s.date,
                    open=o,
                    close=e,
                    session_open=o.replace(":", ""),
                    session_close=e.replace(":", ""),
                )
            )
        return json_response(days)

    def _asset(self, symbol: str) -> Asset:
        book = self.core.engine.books[symbol]
        return Asset(
            id=str(uuid.uuid5(NS, symbol)),
            class_="us_equity",
            asset_class="us_equity",
            exchange="OTC",
            symbol=symbol,
            name=symbol,
            status="active" if book.status != TradingStatus.CLOSED else "inactive",
            tradable=book.status not in (TradingStatus.HALTED, TradingStatus.CLOSED),
            marginable=True,
            shortable=True,
            easy_to_borrow=True,
            fractionable=book.qty_scale > 0,
            min_order_size=None,
            min_trade_increment=None,
            price_increment=None,
            maintenance_margin_requirement=None,
            attributes=[],
        )

    async def assets(self, c: Ctx) -> Response:
        return json_response([self._asset(s) for s in sorted(self.core.engine.books)])

    async def asset(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        if symbol not in self.core.engine.books:
            raise ApiError(404, "unknown_symbol", "asset not found")
        return json_response(self._asset(symbol))

    # -- orders ------------------------------------------------------------------------------

    async def submit(self, c: Ctx) -> Response:
        """Any order class, a trailing stop or a notional order (``alpaca_orders.py``)."""
        body = await _body(c, OrderBody)
        account = self._account(c)
        command, ids = Planner(self.api).plan(body, account)
        duplicate = ApiError(422, "duplicate_client_order_id", "client_order_id must be unique")
        if await self.api.platform.prior_order(account, body.client_order_id or ""):
            raise duplicate  # (one the core forgot: the history has it)
        events = await self.api.submit(command)
        for ev in events:
            if isinstance(ev, DuplicateClientOrder):
                raise duplicate
            if isinstance(ev, Rejected) and ev.order_id in ids:
                raise ApiError(403, ev.reason, ev.detail or ev.reason.replace("_", " "))
        v = self.api.platform.history.order(ids[0])
        assert v is not None
        return json_response(self.order(v))

    async def _own(self, c: Ctx, order_id: int) -> OrderView:
        try:
            return await self.api.own_order(c.user, order_id)
        except ApiError:
            raise ApiError(404, "unknown_order", "order not found") from None

    async def get(self, c: Ctx) -> Response:
        flag(c, "nested")
        v = await self._own(c, _order_id(c.request.path_params["id"]))
        return json_response(self.order(v, await self.stored_legs([v])))

    async def by_client_id(self, c: Ctx) -> Response:
        client_id = c.request.query_params.get("client_order_id", "")
        for account in c.user.accounts:
            v = await self.api.platform.queries.by_client_id(account, client_id)
            if v is not None:
                return json_response(self.order(v, await self.stored_legs([v])))
        raise ApiError(404, "unknown_order", "order not found")

    async def list(self, c: Ctx) -> Response:
        """Alpaca's ``GET /v2/orders``: ``status`` (open, closed, all), ``limit`` (1..500,
        50), ``after`` / ``until`` (submitted strictly after / before; RFC-3339),
        ``direction`` (by submission time, ``desc`` by default), ``side``, ``symbols``
        (``A,B``) and ``nested`` (no order has legs here: either value lists the same)."""
        q = c.request.query_params
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise ApiError(422, "invalid_status", "status is open, closed or all")
        limit = limit_param(c.request, 50, 500, 422)
        after = parse_time(q["after"], "after") if "after" in q else None
        until = parse_time(q["until"], "until") if "until" in q else None
        direction = q.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise ApiError(422, "invalid_direction", "direction is asc or desc")
        side = q.get("side")
        if side is not None and side not in SIDES:
            raise ApiError(422, "invalid_side", "side is buy or sell")
        nested = flag(c, "nested")
        symbols = {x.strip() for x in q.get("symbols", "").split(",")} - {""}

        def wanted(v: OrderView) -> bool:
            return (
                not (nested and is_leg(v))
                and (not symbols or v.symbol in symbols)
                and (side is None or v.side == SIDES[side])
                and (after is None or v.created_ts > after)
                and (until is None or v.created_ts < until)
            )

        filtered = side is not None or after is not None or until is not None
        if status == "open":  # every live order is in memory, in one answer
            if "page_token" in q:
                raise ApiError(422, "invalid_page_token", "open orders are not paged")
            out: list[OrderView] = []
            for account in c.user.accounts:
                out.extend(self.api.platform.history.open_orders(account))
            out = [v for v in out if wanted(v)]
        elif not filtered and direction == "desc":  # pages, most recently changed first
            statuses = None if status == "all" else set(OrderStatus) - _OPEN
            out = []
            try:
                before = page_token(c.request, parse_order_token)
            except ApiError as e:  # (Alpaca's status for a bad parameter)
                raise ApiError(422, e.code, e.message) from None
            wanted_symbols: list[str | None] = [*sorted(symbols)] or [None]
            for symbol in wanted_symbols:
                page, _ = await self.api.platform.queries.orders(
                    c.user.accounts, symbol=symbol, statuses=statuses, before=before, limit=limit
                )
                out.extend(v for v in page if not (nested and is_leg(v)))
            out.sort(key=lambda v: (v.updated_seq, v.order_id), reverse=True)
            out = out[:limit]
            token = order_token(out[-1]) if len(out) == limit else None
            stored = await self.stored_legs(out)
            return paged_response([self.order(v, stored) for v in out], token)
        else:
            out = await _search(self.api, c, status, symbols, after, wanted)
        out.sort(key=lambda v: (v.created_ts, v.order_id), reverse=direction == "desc")
        out = out[:limit]
        stored = await self.stored_legs(out)
        return paged_response([self.order(v, stored) for v in out], None)

    async def replace(self, c: Ctx) -> Response:
        v = await self._own(c, _order_id(c.request.path_params["id"]))
        body = await _body(c, OrderPatch)
        book = self.api.book(v.symbol)
        qty = (
            units("qty", text(body.qty), book.qty_scale, 422)
            if body.qty is not None
            else v.remaining
        )
        price = (
            units("limit_price", text(body.limit_price), book.price_scale, 422)
            if body.limit_price is not None
            else v.price
        )
        stop_price = units("stop_price", text(body.stop_price), book.price_scale, 422)
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
        v = await self._own(c, _order_id(c.request.path_params["id"]))
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
                out.append(Canceled(order_uuid(v.order_id), status))
        return json_response(out, 207)


async def _search(
    api: Api,
    c: Ctx,
    status: str,
    symbols: set[str],
    after: int | None,
    wanted: Callable[[OrderView], bool],
) -> list[OrderView]:
    """Every kept closed (or any) order of the caller that ``wanted`` takes, for the
    filters and orders a page token cannot follow (``after``, ``until``, ``side``,
    ``direction=asc``): read newest change first, stopping at ``after`` (an order
    submitted after it changed after it too); more than ``MAX_SEARCH`` to read is a
    422 asking for a narrower query rather than a partial answer."""
    if c.request.query_params.get("page_token") is not None:
        raise ApiError(
            422, "invalid_page_token", "page_token goes with status, symbols and limit only"
        )
    statuses = None if status == "all" else set(OrderStatus) - _OPEN
    out: list[OrderView] = []
    read = 0
    every: list[str | None] = [*sorted(symbols)] or [None]
    for symbol in every:
        key = None
        while True:
            page, next_token = await api.platform.queries.orders(
                c.user.accounts, symbol=symbol, statuses=statuses, before=key, limit=500
            )
            done = next_token is None
            for v in page:
                if after is not None and v.updated_ts <= after:
                    done = True
                    break
                if wanted(v):
                    out.append(v)
            read += len(page)
            if done:
                break
            if read >= MAX_SEARCH:
                raise ApiError(
                    422,
                    "too_many_orders",
                    f"more than {MAX_SEARCH} orders to search: narrow with after or symbols",
                )
            key = parse_order_token(next_token)
    return out


@dataclass(frozen=True)
class Param:
    """A query parameter a handler reads, as the OpenAPI document declares it."""

    name: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True)
class AlpacaRoute(RouteSpec):
    """A ``/v2`` route (its handler a method of ``AlpacaApi`` or ``AlpacaData``) and what
    the OpenAPI document says of it: bodies in and out, query, particular errors."""

    response: Any = None  # the success body's type (a Struct, list[...]); None: no body
    status: int = 200
    body: type[msgspec.Struct] | None = None
    query: tuple[Param, ...] = ()
    errors: frozenset[int] = frozenset()  # besides 401, 429 and those of bodies and paths
    tag: str = "trading"


_404: Final = frozenset({404})
_422: Final = frozenset({422})
_403_404: Final = frozenset({403, 404})
_NESTED: Final = Param("nested", {"type": "boolean", "description": "no legs here: no effect"})
_ACTIVITY_QUERY: Final = (
    Param("activity_types", {"type": "string", "description": "FILL,CSD,CSW,JNLS,TRANS"}),
    Param("category", {"enum": ["trade_activity", "non_trade_activity"]}),
    Param("date", {"type": "string", "format": "date", "description": "a UTC day"}),
    Param("after", {"type": "string", "description": "RFC-3339, exclusive"}),
    Param("until", {"type": "string", "description": "RFC-3339, exclusive"}),
    Param("direction", {"enum": ["asc", "desc"], "default": "desc"}),
    Param("page_size", {"type": "integer", "minimum": 1, "maximum": 100, "default": 100}),
    Param("page_token", {"type": "string", "description": "the previous page's last id"}),
)
ROUTES: Final = (
    AlpacaRoute("GET", "/v2/account", TRADER, "account", Account, errors=_404),
    AlpacaRoute("GET", "/v2/clock", TRADER, "clock", Clock),
    AlpacaRoute(
        "GET",
        "/v2/calendar",
        TRADER,
        "calendar",
        list[CalendarDay],
        query=(
            Param("start", {"type": "string", "format": "date", "description": "default today"}),
            Param("end", {"type": "string", "format": "date", "description": "default +30 days"}),
        ),
        errors=_422,
    ),
    AlpacaRoute("GET", "/v2/assets", TRADER, "assets", list[Asset]),
    AlpacaRoute("GET", "/v2/assets/{symbol}", TRADER, "asset", Asset),
    AlpacaRoute("POST", "/v2/orders", TRADER, "submit", Order, body=OrderBody, errors=_403_404),
    AlpacaRoute(
        "GET",
        "/v2/orders",
        TRADER,
        "list",
        list[Order],
        query=(
            Param("status", {"enum": ["open", "closed", "all"], "default": "open"}),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
            Param("after", {"type": "string", "description": "RFC-3339: submitted after"}),
            Param("until", {"type": "string", "description": "RFC-3339: submitted before"}),
            Param("direction", {"enum": ["asc", "desc"], "default": "desc"}),
            Param("side", {"enum": ["buy", "sell"]}),
            Param("nested", {"type": "boolean", "description": "no legs here: no effect"}),
            Param("symbols", {"type": "string", "description": "A,B: only these symbols"}),
            Param(
                "page_token",
                {
                    "type": "string",
                    "description": "closed, all: the Mercato-Next-Page-Token header of "
                    "the previous page",
                },
            ),
        ),
        errors=_422,
    ),
    AlpacaRoute("DELETE", "/v2/orders", TRADER, "cancel_all", list[Canceled], status=207),
    AlpacaRoute(
        "GET",
        "/v2/orders:by_client_order_id",
        TRADER,
        "by_client_id",
        Order,
        query=(Param("client_order_id", {"type": "string"}, required=True),),
        errors=_404,
    ),
    AlpacaRoute("GET", "/v2/orders/{id}", TRADER, "get", Order, query=(_NESTED,)),
    AlpacaRoute("PATCH", "/v2/orders/{id}", TRADER, "replace", Order, body=OrderPatch),
    AlpacaRoute("DELETE", "/v2/orders/{id}", TRADER, "cancel", status=204, errors=_422),
    AlpacaRoute("GET", "/v2/positions", TRADER, "positions", list[Position], errors=_404),
    AlpacaRoute(
        "DELETE",
        "/v2/positions",
        TRADER,
        "close_all",
        list[Closed],
        status=207,
        query=(Param("cancel_orders", {"type": "boolean", "default": False}),),
        errors=_403_404 | _422,
    ),
    AlpacaRoute("GET", "/v2/positions/{symbol}", TRADER, "position", Position),
    AlpacaRoute(
        "DELETE",
        "/v2/positions/{symbol}",
        TRADER,
        "close_position",
        Order,
        query=(
            Param("qty", {"type": "string", "description": "this much of it, in lots"}),
            Param("percentage", {"type": "string", "description": "0 < p <= 100, in lots"}),
        ),
        errors=frozenset({403, 422}),
    ),
    AlpacaRoute("GET", "/v2/watchlists", TRADER, "watchlists", list[Watchlist]),
    AlpacaRoute(
        "POST",
        "/v2/watchlists",
        TRADER,
        "create_watchlist",
        Watchlist,
        body=WatchlistBody,
        errors=_422,
    ),
    AlpacaRoute("GET", "/v2/watchlists/{id}", TRADER, "watchlist", Watchlist),
    AlpacaRoute(
        "PUT",
        "/v2/watchlists/{id}",
        TRADER,
        "update_watchlist",
        Watchlist,
        body=WatchlistUpdate,
        errors=_422,
    ),
    AlpacaRoute(
        "POST",
        "/v2/watchlists/{id}",
        TRADER,
        "add_to_watchlist",
        Watchlist,
        body=WatchlistSymbol,
        errors=_422,
    ),
    AlpacaRoute("DELETE", "/v2/watchlists/{id}", TRADER, "delete_watchlist", status=204),
    AlpacaRoute(
        "DELETE", "/v2/watchlists/{id}/{symbol}", TRADER, "remove_from_watchlist", Watchlist
    ),
    AlpacaRoute(
        "GET",
        "/v2/account/activities",
        TRADER,
        "activities",
        list[Activity],
        query=_ACTIVITY_QUERY,
        errors=_422,
    ),
    AlpacaRoute(
        "GET",
        "/v2/account/activities/{activity_type}",
        TRADER,
        "activities",
        list[Activity],
        query=_ACTIVITY_QUERY[1:],
        errors=_422,
    ),
    AlpacaRoute(
        "GET",
        "/v2/account/portfolio/history",
        TRADER,
        "portfolio_history",
        dict[str, Any],
        query=(
            Param("period", {"type": "string", "description": "1D, 1W, 1M (30 days), 1A"}),
            Param("timeframe", {"enum": ["1Min", "5Min", "15Min", "1H", "1D"]}),
            Param("start", {"type": "string", "description": "RFC-3339"}),
            Param("end", {"type": "string", "description": "RFC-3339"}),
            Param("date_end", {"type": "string", "format": "date"}),
            Param("extended_hours", {"type": "boolean", "description": "false only"}),
            Param("intraday_reporting", {"type": "string", "description": "refused"}),
            Param("pnl_reset", {"type": "string", "description": "refused"}),
            Param("cashflow_types", {"type": "string", "description": "refused"}),
        ),
        errors=_422,
    ),
    AlpacaRoute("GET", "/v2/account/configurations", TRADER, "configurations", Configurations),
    AlpacaRoute(
        "PATCH",
        "/v2/account/configurations",
        TRADER,
        "set_configurations",
        Configurations,
        body=ConfigurationsPatch,
        errors=_422,
    ),
    # keyed like the rest of /v2 (Alpaca clients have a key); /v1/openapi.json is public
    AlpacaRoute("GET", "/v2/openapi.json", TRADER, "openapi", dict[str, Any], tag="meta"),
)
"""The trading routes (and this surface's OpenAPI document); ``alpaca_data.ROUTES`` has
the market data's."""


def alpaca_routes(api: Api) -> list[Route]:
    """The ``/v2`` routes, authenticated like the native API (Alpaca's key headers)."""
    a = AlpacaApi(api)
    p = AlpacaPositions(api, a.order)
    w = AlpacaAccount(api, api.settings, a._account, a._asset)
    v = AlpacaActivities(api, a._account)
    h = AlpacaPortfolio(api, a._account)
    return [
        Route(
            spec.path,
            endpoint_for(
                api,
                spec.access,
                getattr(a, spec.handler, None)
                or getattr(p, spec.handler, None)
                or getattr(w, spec.handler, None)
                or getattr(v, spec.handler, None)
                or getattr(h, spec.handler),
                alpaca_error,
                query=frozenset(p.name for p in spec.query),
                body=spec.body is not None,
                invalid=422,
            ),
            methods=[spec.method],
        )
        for spec in ROUTES
    ]

"""What a ``POST /v2/orders`` body asks, as the core's command, and the Alpaca fields of
an order that belong to its class (``order_class``, ``legs``, the trailing stop's
``trail_price`` / ``trail_percent`` / ``hwm``).

Order classes map onto commands the core already runs (``docs/api.md``):

- ``simple``: a ``NewOrder``; ``type: trailing_stop`` is a stop that trails by
  ``trail_price`` (price units) or ``trail_percent`` (two decimals: basis points). Its first
  stop is the mark less (a sell) or plus (a buy) the distance, on the tick; the core then
  moves it as the market moves.
- ``bracket``: a ``NewBracket`` (market or limit entry, take-profit limit, stop-loss stop or
  stop-limit); ``oto``: the same with one exit; ``oco``: a ``NewOco`` (a limit and a stop
  on one side, for a position already held).
- ``notional`` (market orders, ``day``, instruments with ``qty_scale`` > 0): the gateway
  turns the amount into a quantity at the best opposite price (else the mark), rounded
  down to the lot. The core's orders are quantities and its risk checks reserve on them;
  converting at the edge keeps one kind of market order in the core and the journal's
  command says exactly what was asked of the book. The spend can differ from ``notional``
  by what the book did between the quote and the fill (as on Alpaca, where a notional
  order is an estimate too); the core's collar bounds it.

The ids of a bracket's exits are chosen here, so ``legs`` are answerable before the exits
exist: an exit not placed yet reports ``held`` with the entry's quantity.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from msgspec.structs import replace

from mercato.api.alpaca_models import Amount, Kind, Order, OrderBody
from mercato.api.base import ApiError, units
from mercato.domain.commands import NewBracket, NewOco, NewOrder
from mercato.domain.instrument import format_decimal
from mercato.domain.types import OrderType, Side, TimeInForce
from mercato.services.oms import OrderView

Command = NewOrder | NewBracket | NewOco
SIDES: Final = {"buy": Side.BUY, "sell": Side.SELL}
TYPES: Final = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT,
    "trailing_stop": OrderType.STOP,
}
TIFS: Final = {
    "day": TimeInForce.DAY,
    "gtc": TimeInForce.GTC,
    "ioc": TimeInForce.IOC,
    "fok": TimeInForce.FOK,
    "opg": TimeInForce.OPG,  # the opening auction only
    "cls": TimeInForce.CLS,  # the closing auction only
}
BPS: Final = 10_000


def text(value: Amount | None) -> str | None:
    """An Amount as the decimal string to parse exactly (a float as Python prints it:
    ``95.5``; one with an exponent is refused by the parser)."""
    return None if value is None else str(value)


class Planner:
    """Builds the command for a ``POST /v2/orders`` body; refusals are 422s naming the
    field. ``api`` is the native ``Api`` (books, the core's marks, ids, the clock)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def plan(self, body: OrderBody, account: int) -> tuple[Command, tuple[int, ...]]:
        """The command, and the ids of the orders it creates (the one answered first)."""
        if body.extended_hours:
            raise ApiError(
                422, "unsupported_field", "extended_hours: Mercato has no extended-hours session"
            )
        if body.type and body.order_type and body.type != body.order_type:
            raise ApiError(422, "invalid_order", "type and order_type differ")
        order_class = body.order_class or "simple"
        if order_class == "mleg":
            raise ApiError(
                422, "unsupported_order_class", "order_class 'mleg' (options) is not supported"
            )
        kind = body.type or body.order_type or "market"
        if order_class == "simple":
            for name in ("take_profit", "stop_loss"):
                if getattr(body, name) is not None:
                    raise ApiError(
                        422, "invalid_order", f"{name} needs order_class bracket, oco or oto"
                    )
        if kind != "trailing_stop":
            for name in ("trail_price", "trail_percent"):
                if getattr(body, name) is not None:
                    raise ApiError(422, "invalid_order", f"{name} needs type trailing_stop")
        if order_class == "oco":
            return self._oco(body, account, kind)
        if order_class in ("bracket", "oto"):
            return self._bracket(body, account, kind, order_class)
        return self._simple(body, account, kind)

    # -- simple orders, trailing stops, notional --------------------------------------------

    def _qty(self, body: OrderBody, book: Any, kind: Kind) -> int:
        if body.notional is not None:
            if body.qty is not None:
                raise ApiError(422, "invalid_order", "qty and notional: give one")
            return self._notional_qty(body, book, kind)
        if body.qty is None:
            raise ApiError(422, "invalid_order", "qty is required (or notional)")
        raw = text(body.qty) or ""
        if book.qty_scale == 0 and "." in raw.rstrip("0").rstrip("."):
            raise ApiError(
                422, "invalid_qty", f"qty: {book.symbol} is not fractionable (whole units only)"
            )
        return units("qty", raw, book.qty_scale, 422)

    def _notional_qty(self, body: OrderBody, book: Any, kind: Kind) -> int:
        """``notional`` of the quote currency as a quantity at the best opposite price
        (else the mark), rounded down to the lot (see the module's docstring)."""
        symbol = book.symbol
        if book.qty_scale == 0:
            raise ApiError(
                422, "invalid_order", f"notional: {symbol} is not fractionable (qty_scale 0)"
            )
        if kind != "market" or body.time_in_force != "day":
            raise ApiError(422, "invalid_order", "notional goes with market orders, day only")
        core = self.api.core
        inst = core.instruments[symbol]
        scale = core.currencies.get(inst.currency, 2)
        amount = units("notional", text(body.notional), scale, 422)
        if amount <= 0:
            raise ApiError(422, "invalid_number", "notional: must be positive")
        opposite = book.asks if body.side == "buy" else book.bids
        price = opposite.best_price() or core.mark(symbol)
        if price <= 0:
            raise ApiError(422, "no_reference_price", f"no price for {symbol} to size notional")
        # cash = price * qty * mul // div, so qty = amount * div // (price * mul)
        qty: int = amount * inst.div // (price * inst.mul)
        qty -= qty % book.lot_size
        if qty <= 0:
            raise ApiError(422, "invalid_qty", "notional: less than one lot at the price")
        return qty

    def _trail(self, body: OrderBody, book: Any) -> tuple[int, int, int]:
        """(stop price, trail_amount, trail_bps) of a trailing stop."""
        if body.stop_price is not None or body.limit_price is not None:
            raise ApiError(
                422, "invalid_order", "trailing_stop takes trail_price or trail_percent only"
            )
        if (body.trail_price is None) == (body.trail_percent is None):
            raise ApiError(422, "invalid_order", "trailing_stop: give trail_price or trail_percent")
        amount = units("trail_price", text(body.trail_price), book.price_scale, 422)
        bps = units("trail_percent", text(body.trail_percent), 2, 422)
        if amount < 0 or bps < 0 or bps >= BPS or (amount == 0 and bps == 0):
            name = "trail_price" if body.trail_price is not None else "trail_percent"
            raise ApiError(422, "invalid_number", f"{name}: above 0 (a percent below 100)")
        mark = self.api.core.mark(book.symbol)
        if mark <= 0:
            raise ApiError(422, "no_reference_price", f"no price for {book.symbol} to trail")
        dist = amount or mark * bps // BPS
        tick = book.tick_size
        if body.side == "sell":
            stop = mark - dist
            stop -= stop % tick
        else:
            stop = mark + dist
            stop += -stop % tick
        if stop <= 0:
            raise ApiError(422, "invalid_number", "the trail is wider than the price")
        return stop, amount, bps

    def _simple(self, body: OrderBody, account: int, kind: Kind) -> tuple[Command, tuple[int, ...]]:
        book = self.api.book(body.symbol)
        qty = self._qty(body, book, kind)
        stop, trail_amount, trail_bps = 0, 0, 0
        if kind == "trailing_stop":
            stop, trail_amount, trail_bps = self._trail(body, book)
        else:
            stop = units("stop_price", text(body.stop_price), book.price_scale, 422)
        oid = self.api.platform.next_order_id()
        return (
            NewOrder(
                ts=self.api.platform.now(),
                order_id=oid,
                account=account,
                symbol=body.symbol,
                side=SIDES[body.side],
                type=TYPES[kind],
                qty=qty,
                tif=TIFS[body.time_in_force],
                price=units("limit_price", text(body.limit_price), book.price_scale, 422),
                stop_price=stop,
                client_order_id=body.client_order_id or "",
                trail_amount=trail_amount,
                trail_bps=trail_bps,
            ),
            (oid,),
        )

    # -- bracket, OTO, OCO ----------------------------------------------------------------

    def _exits(self, body: OrderBody, book: Any) -> tuple[int, int, int]:
        """(take-profit limit, stop-loss stop, stop-loss limit) prices; 0 when absent."""
        ps = book.price_scale
        tp = sl = sl_limit = 0
        if body.take_profit is not None:
            tp = units("take_profit.limit_price", text(body.take_profit.limit_price), ps, 422)
        if body.stop_loss is not None:
            sl = units("stop_loss.stop_price", text(body.stop_loss.stop_price), ps, 422)
            sl_limit = units("stop_loss.limit_price", text(body.stop_loss.limit_price), ps, 422)
        return tp, sl, sl_limit

    def _bracket(
        self, body: OrderBody, account: int, kind: Kind, order_class: str
    ) -> tuple[Command, tuple[int, ...]]:
        if kind not in ("market", "limit"):
            raise ApiError(422, "invalid_order", f"a {order_class}'s entry is market or limit")
        if body.notional is not None:
            raise ApiError(422, "invalid_order", f"notional: not for a {order_class} order")
        if order_class == "bracket" and (body.take_profit is None or body.stop_loss is None):
            raise ApiError(422, "invalid_order", "bracket needs take_profit and stop_loss")
        if order_class == "oto" and (body.take_profit is None) == (body.stop_loss is None):
            raise ApiError(422, "invalid_order", "oto needs one of take_profit and stop_loss")
        if body.stop_price is not None:
            raise ApiError(422, "invalid_order", f"stop_price: the {order_class}'s entry has none")
        book = self.api.book(body.symbol)
        qty = self._qty(body, book, kind)
        tp, sl, sl_limit = self._exits(body, book)
        p = self.api.platform
        ids = (p.next_order_id(), p.next_order_id(), p.next_order_id())
        return (
            NewBracket(
                ts=p.now(),
                account=account,
                symbol=body.symbol,
                side=SIDES[body.side],
                qty=qty,
                entry_id=ids[0],
                take_profit_id=ids[1],
                stop_loss_id=ids[2],
                take_profit_price=tp,
                stop_loss_price=sl,
                stop_loss_limit_price=sl_limit,
                type=TYPES[kind],
                price=units("limit_price", text(body.limit_price), book.price_scale, 422),
                tif=TIFS[body.time_in_force],
                client_order_id=body.client_order_id or "",
            ),
            ids,
        )

    def _oco(self, body: OrderBody, account: int, kind: Kind) -> tuple[Command, tuple[int, ...]]:
        """Alpaca's OCO: a take-profit limit and a stop-loss on the side that closes a
        position already held; ``type`` is limit, ``limit_price`` (if given) is the
        take-profit's."""
        if kind != "limit":
            raise ApiError(422, "invalid_order", "an oco order's type is limit")
        if body.take_profit is None or body.stop_loss is None:
            raise ApiError(422, "invalid_order", "oco needs take_profit and stop_loss")
        if body.notional is not None or body.stop_price is not None:
            name = "notional" if body.notional is not None else "stop_price"
            raise ApiError(422, "invalid_order", f"{name}: not for an oco order")
        book = self.api.book(body.symbol)
        qty = self._qty(body, book, kind)
        tp, sl, sl_limit = self._exits(body, book)
        limit = units("limit_price", text(body.limit_price), book.price_scale, 422)
        if limit and limit != tp:
            raise ApiError(422, "invalid_order", "limit_price differs from take_profit's")
        p = self.api.platform
        ids = (p.next_order_id(), p.next_order_id())
        return (
            NewOco(
                ts=p.now(),
                account=account,
                symbol=body.symbol,
                side=SIDES[body.side],
                qty=qty,
                limit_id=ids[0],
                limit_price=tp,
                stop_id=ids[1],
                stop_price=sl,
                stop_limit_price=sl_limit,
                tif=TIFS[body.time_in_force],
                client_order_id=body.client_order_id or "",
            ),
            ids,
        )


# -- reporting -----------------------------------------------------------------------------


def is_leg(v: OrderView) -> bool:
    """An exit of a bracket or OTO, or an OCO's stop: listed under its parent with
    ``nested``."""
    return v.group is not None and v.group.order_ids[0] != v.order_id


def class_fields(
    core: Any,
    history: Any,
    v: OrderView,
    render: Callable[[OrderView], Order],
    fmt: Callable[[int], str],
    base: Order,
    stored: Mapping[int, OrderView],
) -> dict[str, Any]:
    """The fields of ``Order`` that depend on the order's class: ``order_class``,
    ``legs`` (the parent's; each leg its own order, or ``held`` until placed), and a
    trailing stop's ``type``, ``trail_price`` / ``trail_percent`` and ``hwm``.
    ``fmt`` writes a price at the instrument's scale; ``base`` is ``v`` rendered without
    them (a held leg is drawn from it: rendering the parent again would recurse);
    ``stored`` holds the legs that memory no longer has, read from the store."""
    out: dict[str, Any] = {}
    if v.trail_amount or v.trail_bps:
        out["type"] = out["order_type"] = "trailing_stop"
        out["trail_price"] = fmt(v.trail_amount) if v.trail_amount else None
        bps = v.trail_bps
        out["trail_percent"] = f"{bps // 100}.{bps % 100:02d}" if bps else None
        live = core.trailing.get(v.order_id)  # the core's best moves on every trade
        best = live.best if live is not None else v.trail_best
        out["hwm"] = fmt(best) if best else None
    g = v.group
    if g is None:
        return out
    out["order_class"] = g.kind if g.kind in ("bracket", "oco", "oto") else "simple"
    if g.order_ids[0] != v.order_id:
        return out
    legs: list[Order] = []
    for oid in g.order_ids[1:]:
        leg = stored.get(oid) or history.order(oid)
        legs.append(render(leg) if leg is not None else _held(core, v, oid, base))
    out["legs"] = legs
    return out


def _held(core: Any, parent: OrderView, oid: int, base: Order) -> Order:
    """An exit the core has not placed yet (its entry has not filled): ``held`` while the
    bracket waits, ``canceled`` once the entry ended without a fill (its prices are then
    no longer known)."""
    b = core.brackets.get(parent.order_id)
    ps = core.engine.books[parent.symbol].price_scale
    is_tp = b is not None and oid == b.tp_id
    kind: Kind = "limit" if is_tp else "stop"
    limit = stop = None
    if b is not None and is_tp:
        limit = format_decimal(b.tp_price, ps)
    elif b is not None:
        stop = format_decimal(b.sl_price, ps)
        if b.sl_limit:
            kind, limit = "stop_limit", format_decimal(b.sl_limit, ps)
    return replace(
        base,
        id=str(uuid.UUID(int=oid)),
        client_order_id=str(uuid.UUID(int=oid)),
        side="sell" if base.side == "buy" else "buy",
        type=kind,
        order_type=kind,
        time_in_force="gtc",
        limit_price=limit,
        stop_price=stop,
        filled_qty="0",
        filled_avg_price=None,
        filled_at=None,
        status="held" if b is not None and parent.is_open else "canceled",
        legs=None,
    )

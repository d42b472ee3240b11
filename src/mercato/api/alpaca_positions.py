"""The Alpaca-compatible positions (``/v2/positions``): list, get, close one (all of it,
a ``qty`` or a ``percentage``, rounded down to the lot) and close all (optionally
cancelling the open orders first). Routes and docs: ``alpaca.py``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from mercato.api.alpaca_models import NS, Closed, Order, Position
from mercato.api.base import ApiBase, ApiError, Ctx, json_response, units
from mercato.domain.commands import CancelOrder, NewOrder
from mercato.domain.instrument import format_decimal
from mercato.domain.types import OrderType, Side, TimeInForce
from mercato.services.oms import OrderView

_HUNDRED = 100 * 10**9  # 100 percent, in billionths of a percent


class AlpacaPositions:
    """The ``/v2/positions`` handlers, over the native API; ``order`` formats an order as
    ``alpaca.AlpacaApi`` does."""

    def __init__(self, api: ApiBase, order: Callable[[OrderView], Order]) -> None:
        self.api = api
        self.order = order

    @property
    def core(self) -> Any:
        return self.api.core

    def _account(self, c: Ctx) -> int:
        return self.api.own_account(c.user, None)

    def _position(self, account: int, symbol: str) -> Position | None:
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
        return Position(
            asset_id=str(uuid.uuid5(NS, symbol)),
            symbol=symbol,
            exchange="OTC",
            asset_class="us_equity",
            avg_entry_price=format_decimal(avg, ps),
            qty=format_decimal(abs(pos.qty), qs),
            qty_available=format_decimal(abs(pos.qty), qs),
            side="long" if pos.qty > 0 else "short",
            market_value=money(account, value if pos.qty > 0 else -value),
            cost_basis=money(account, pos.cost),
            unrealized_pl=money(account, pos.unrealized(value)),
            unrealized_plpc=None,
            unrealized_intraday_pl=money(account, pos.unrealized(value)),
            unrealized_intraday_plpc=None,
            current_price=format_decimal(mark, ps) if mark else None,
            lastday_price=None,
            change_today=None,
            currency=inst.currency,
        )

    async def positions(self, c: Ctx) -> Response:
        account = self._account(c)
        out = [self._position(account, s) for s in sorted(self.core.accounts[account].positions)]
        return json_response([p for p in out if p is not None])

    async def position(self, c: Ctx) -> Response:
        p = self._position(self._account(c), c.request.path_params["symbol"])
        if p is None:
            raise ApiError(404, "no_position", "position does not exist")
        return json_response(p)

    async def _close(self, account: int, symbol: str, qty: int | None = None) -> Order:
        """A market order closing ``qty`` of the position (all of it by default)."""
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
                qty=abs(pos.qty) if qty is None else qty,
                tif=TimeInForce.DAY,
            )
        )
        rej = self.api.refused(events)
        if rej is not None:
            raise ApiError(403, rej.reason, rej.detail or rej.reason)
        v = self.api.platform.history.order(oid)
        assert v is not None
        return self.order(v)

    def _close_qty(self, c: Ctx, account: int, symbol: str) -> int | None:
        """How much of the position ``DELETE /v2/positions/{symbol}`` closes: ``qty``
        (at most the position, in lots) or ``percentage`` (0 < p <= 100 of it, rounded
        down to the lot), not both; None (everything) without either."""
        q = c.request.query_params
        raw_qty, raw_pct = q.get("qty"), q.get("percentage")
        if raw_qty is None and raw_pct is None:
            return None
        if raw_qty is not None and raw_pct is not None:
            raise ApiError(422, "invalid_close", "give qty or percentage, not both")
        pos = self.core.accounts[account].positions.get(symbol)
        if pos is None or not pos.qty:
            raise ApiError(404, "no_position", "position does not exist")
        book = self.api.book(symbol)
        held = abs(pos.qty)
        if raw_qty is not None:
            qty = units("qty", raw_qty, book.qty_scale, 422)
            if qty <= 0 or qty % book.lot_size:
                raise ApiError(422, "invalid_qty", "qty is a positive number of lots")
            if qty > held:
                have = format_decimal(held, book.qty_scale)
                raise ApiError(
                    403,
                    "insufficient_qty",
                    f"insufficient qty available (requested {raw_qty}, available {have})",
                )
            return qty
        assert raw_pct is not None
        pct = units("percentage", raw_pct, 9, 422)  # billionths of a percent
        if not 0 < pct <= _HUNDRED:
            raise ApiError(422, "invalid_percentage", "percentage is above 0 and at most 100")
        if pct == _HUNDRED:
            return int(held)
        qty = held * pct // (_HUNDRED)
        qty -= qty % book.lot_size
        if qty <= 0:
            raise ApiError(422, "invalid_percentage", "that percentage is less than one lot")
        return int(qty)

    async def close_position(self, c: Ctx) -> Response:
        account = self._account(c)
        symbol = c.request.path_params["symbol"]
        qty = self._close_qty(c, account, symbol)
        return json_response(await self._close(account, symbol, qty))

    async def close_all(self, c: Ctx) -> Response:
        """Every position closed at market; with ``cancel_orders=true``, the account's
        open orders cancelled first."""
        account = self._account(c)
        if flag(c, "cancel_orders"):
            for v in self.api.platform.history.open_orders(account):
                await self.api.submit(
                    CancelOrder(ts=self.api.platform.now(), order_id=v.order_id, symbol=v.symbol)
                )
        out = []
        for symbol in sorted(self.core.accounts[account].positions):
            pos = self.core.accounts[account].positions[symbol]
            if pos.qty:
                order = await self._close(account, symbol)
                out.append(Closed(symbol, 200, order))
        return json_response(out, 207)


def flag(c: Ctx, name: str) -> bool:
    """A boolean query parameter: true or false (any case); absent: false."""
    raw = c.request.query_params.get(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise ApiError(422, "invalid_query", f"{name} is true or false")
    return raw.lower() == "true"

"""Bracket, OTO and OCO orders on the native API (``POST /v1/orders`` and the WebSocket's
``order``, with ``order_class``), and how their legs are reported.

- ``bracket``: a market or limit entry, with ``take_profit: {price}`` (a limit exit) and
  ``stop_loss: {stop_price, limit_price?}`` (a stop, or a stop-limit exit). The exits go
  in as the entry fills and are one-cancels-other (``NewBracket``).
- ``oto``: the same with one of the two exits.
- ``oco``: a limit order at ``take_profit.price`` and a stop (``stop_loss``) on the same
  side and quantity, one cancelling the other (``NewOco``); ``type`` is ``limit`` and
  ``price``, when given, is the take-profit's.

These take ``gtc`` or ``day`` only, no ``stop_price`` (the entry has none), no trailing,
no post-only and no ``expire_at``: each refusal is a 422 naming the field. The answer is
the first order (the entry, or the OCO's limit order) with ``order_class`` and ``legs``:
each leg's id, role and status (``held`` while its entry has not filled), and its prices.
"""

from __future__ import annotations

from typing import Any

from mercato.api.base import ApiError, units
from mercato.domain.commands import Command, NewBracket, NewOco
from mercato.domain.types import OrderType, Side, TimeInForce

_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_TIFS = {"gtc": TimeInForce.GTC, "day": TimeInForce.DAY}


def _refuse_simple_fields(body: Any) -> None:
    kind = body.order_class
    if body.stop_price is not None:
        raise ApiError(422, "invalid_order", f"stop_price: a {kind} order's first order has none")
    if body.trail_amount is not None or body.trail_bps:
        raise ApiError(422, "invalid_order", f"trail_amount / trail_bps: not for a {kind} order")
    if body.post_only:
        raise ApiError(422, "invalid_order", f"post_only: not for a {kind} order")
    if body.expire_at is not None:
        raise ApiError(422, "invalid_order", f"expire_at: not for a {kind} order")
    if body.tif not in _TIFS:
        raise ApiError(422, "invalid_tif", f"tif: a {kind} order is gtc or day")


def _exits(body: Any, scale: int) -> tuple[int, int, int]:
    """(take-profit limit, stop-loss stop, stop-loss limit) prices; 0 when absent."""
    tp = sl = sl_limit = 0
    if body.take_profit is not None:
        tp = units("take_profit.price", body.take_profit.price, scale, 422)
        if tp <= 0:
            raise ApiError(422, "invalid_price", "take_profit.price: must be positive")
    if body.stop_loss is not None:
        sl = units("stop_loss.stop_price", body.stop_loss.stop_price, scale, 422)
        sl_limit = units("stop_loss.limit_price", body.stop_loss.limit_price, scale, 422)
        if sl <= 0 or sl_limit < 0 or (body.stop_loss.limit_price is not None and not sl_limit):
            raise ApiError(422, "invalid_price", "stop_loss: prices must be positive")
    return tp, sl, sl_limit


def contingent(
    api: Any, body: Any, account: int, qty: int, price: int, now: int
) -> tuple[Command, tuple[int, ...]]:
    """The command for a bracket, OTO or OCO ``body`` and the ids of its orders (the one
    answered first)."""
    kind = body.order_class
    _refuse_simple_fields(body)
    book = api.book(body.symbol)
    tp, sl, sl_limit = _exits(body, book.price_scale)
    p = api.platform
    if kind == "oco":
        if body.type != "limit":
            raise ApiError(422, "invalid_order", "type: an oco order is limit")
        if body.take_profit is None or body.stop_loss is None:
            raise ApiError(422, "invalid_order", "an oco order needs take_profit and stop_loss")
        if price and price != tp:
            raise ApiError(422, "invalid_order", "price: differs from take_profit.price")
        pair = (p.next_order_id(), p.next_order_id())
        return (
            NewOco(
                ts=now,
                account=account,
                symbol=body.symbol,
                side=_SIDES[body.side],
                qty=qty,
                limit_id=pair[0],
                limit_price=tp,
                stop_id=pair[1],
                stop_price=sl,
                stop_limit_price=sl_limit,
                tif=_TIFS[body.tif],
                client_order_id=body.client_order_id,
            ),
            pair,
        )
    if body.type not in ("market", "limit"):
        raise ApiError(422, "invalid_order", f"type: a {kind} order's entry is market or limit")
    if kind == "bracket" and (body.take_profit is None or body.stop_loss is None):
        raise ApiError(422, "invalid_order", "a bracket order needs take_profit and stop_loss")
    if kind == "oto" and (body.take_profit is None) == (body.stop_loss is None):
        raise ApiError(422, "invalid_order", "an oto order needs one of take_profit, stop_loss")
    ids = (p.next_order_id(), p.next_order_id(), p.next_order_id())
    return (
        NewBracket(
            ts=now,
            account=account,
            symbol=body.symbol,
            side=_SIDES[body.side],
            qty=qty,
            entry_id=ids[0],
            take_profit_id=ids[1],
            stop_loss_id=ids[2],
            take_profit_price=tp,
            stop_loss_price=sl,
            stop_loss_limit_price=sl_limit,
            type=OrderType.LIMIT if body.type == "limit" else OrderType.MARKET,
            price=price,
            tif=_TIFS[body.tif],
            client_order_id=body.client_order_id,
        ),
        ids,
    )

"""How the native API reports an order's class and its legs (``order_class``, ``legs``):
the first order of a bracket, OTO or OCO lists the others (``api/contingent.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mercato.domain.instrument import format_decimal
from mercato.domain.types import ORDER_TYPE_NAMES, OrderType
from mercato.services.oms import OrderView

_STATUS = {
    1: "accepted",
    2: "partially_filled",
    3: "filled",
    4: "cancelled",
    5: "rejected",
    6: "expired",
    7: "replaced",
}


def order_class(v: OrderView) -> str:
    g = v.group
    return g.kind if g is not None and g.kind in ("bracket", "oco", "oto") else "simple"


def legs(
    api: Any, v: OrderView, stored: Mapping[int, OrderView] | None = None
) -> list[dict[str, Any]] | None:
    """The legs of ``v`` when it is the first order of a group (else None): placed legs
    as the history (or ``stored``, what the store returned for those memory no longer
    holds: ``ApiBase.stored_legs``) has them, held ones from the core's bracket."""
    g = v.group
    if g is None or g.order_ids[0] != v.order_id:
        return None
    core = api.core
    book = core.engine.books.get(v.symbol)
    ps = book.price_scale if book is not None else 0
    bracket = core.brackets.get(v.order_id)
    out: list[dict[str, Any]] = []
    for oid in g.order_ids[1:]:
        leg = (stored or {}).get(oid) or api.platform.history.order(oid)
        role = _role(g.kind, oid, g.order_ids, bracket, leg)
        if leg is not None:
            out.append(
                {
                    "id": str(oid),
                    "role": role,
                    "status": _STATUS.get(int(leg.status), "?"),
                    "type": ORDER_TYPE_NAMES.get(leg.type, "?") if leg.type else None,
                    "price": format_decimal(leg.price, ps) if leg.price else None,
                    "stop_price": format_decimal(leg.stop_price, ps) if leg.stop_price else None,
                }
            )
            continue
        price = stop = None
        typ = "limit"
        if bracket is not None and role == "take_profit":
            price = format_decimal(bracket.tp_price, ps)
        elif bracket is not None:
            typ, stop = "stop", format_decimal(bracket.sl_price, ps)
            if bracket.sl_limit:
                typ, price = "stop_limit", format_decimal(bracket.sl_limit, ps)
        out.append(
            {
                "id": str(oid),
                "role": role,
                # not placed: waiting for the entry's fills, or never (the entry ended)
                "status": "held" if bracket is not None and v.is_open else "cancelled",
                "type": typ if bracket is not None else None,
                "price": price,
                "stop_price": stop,
            }
        )
    return out


def _role(kind: str, oid: int, ids: tuple[int, ...], bracket: Any, leg: OrderView | None) -> str:
    """A leg's role: an OCO's second order is its stop; an exit is known by its type once
    placed, by the core's bracket while held, else by its place in the group."""
    if kind == "oco":
        return "stop_loss"
    if leg is not None and leg.type:
        return "take_profit" if leg.type == OrderType.LIMIT else "stop_loss"
    if bracket is not None:
        return "take_profit" if oid == bracket.tp_id else "stop_loss"
    return "take_profit" if kind == "bracket" and oid == ids[1] else "stop_loss"

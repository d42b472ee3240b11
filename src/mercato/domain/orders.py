"""Orders and their explicit state machine.

::

    NEW ──► ACCEPTED ──► PARTIALLY_FILLED ──► FILLED
     │         │  ▲            │  ▲
     ▼         ▼  │            ▼  │
  REJECTED   REPLACED ◄────────┘  │      (a replace of a live order; it stays live)
               │   └──────────────┘
     ACCEPTED, PARTIALLY_FILLED, REPLACED ──► CANCELLED | EXPIRED

FILLED, CANCELLED, REJECTED and EXPIRED are final. Any other move raises
``IllegalTransition``: a bug, never a silent no-op.
"""

from __future__ import annotations

from enum import IntEnum

from mercato.domain.errors import IllegalTransition
from mercato.domain.types import OrderType, Side, TimeInForce


class OrderStatus(IntEnum):
    NEW = 0
    ACCEPTED = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    REJECTED = 5
    EXPIRED = 6
    REPLACED = 7


_LIVE = (
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED,
    OrderStatus.CANCELLED,
    OrderStatus.EXPIRED,
    OrderStatus.REPLACED,
)
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset((OrderStatus.ACCEPTED, OrderStatus.REJECTED)),
    OrderStatus.ACCEPTED: frozenset(_LIVE),
    OrderStatus.PARTIALLY_FILLED: frozenset(_LIVE),
    OrderStatus.REPLACED: frozenset(_LIVE),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}
# One bit mask per status, indexed by status value, for the hot path.
_ALLOWED: tuple[int, ...] = tuple(
    sum(1 << int(t) for t in TRANSITIONS[OrderStatus(s)]) for s in range(len(OrderStatus))
)
FINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

__all__ = ["FINAL", "TRANSITIONS", "IllegalTransition", "Order", "OrderStatus"]


class Order:
    """A live order as the engine holds it (mutable; never shared outside the engine)."""

    __slots__ = (
        "account",
        "client_order_id",
        "expire_ts",
        "filled",
        "is_buy",
        "link",
        "order_id",
        "post_only",
        "price",
        "protect",
        "qty",
        "remaining",
        "self_trade",
        "side",
        "status",
        "stop_price",
        "symbol",
        "tif",
        "type",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        symbol: str,
        side: int,
        type: int,
        tif: int,
        price: int,
        stop_price: int,
        qty: int,
        post_only: bool,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.type = type
        self.tif = tif
        self.price = price
        self.stop_price = stop_price
        self.qty = qty
        self.filled = 0
        self.remaining = qty
        self.status = int(OrderStatus.NEW)
        self.post_only = post_only
        self.is_buy = side == Side.BUY
        self.client_order_id = ""
        # market and stop orders: the worst price they may trade at (0: any price)
        self.protect = 0
        self.link = 0  # the other order of a one-cancels-other pair (0: none)
        self.expire_ts = 0  # GTD orders: the core time (ns) at which they expire
        self.self_trade = 0  # self-trade prevention (``SelfTrade``; 0: cancel resting)

    def transition(self, new: int) -> None:
        """Move to ``new`` or raise ``IllegalTransition``."""
        if not (_ALLOWED[self.status] >> new) & 1:
            raise IllegalTransition(
                f"order {self.order_id}: {OrderStatus(self.status).name} -> "
                f"{OrderStatus(new).name} is not allowed"
            )
        self.status = new

    def fill(self, qty: int) -> None:
        """Record an execution of ``qty`` and move to PARTIALLY_FILLED or FILLED."""
        self.filled += qty
        self.remaining -= qty
        assert self.remaining >= 0 and self.filled <= self.qty, "overfill"
        self.transition(OrderStatus.FILLED if self.remaining == 0 else OrderStatus.PARTIALLY_FILLED)

    @property
    def is_stop(self) -> bool:
        return self.type == OrderType.STOP or self.type == OrderType.STOP_LIMIT

    def __repr__(self) -> str:
        return (
            f"Order(id={self.order_id}, acct={self.account}, {self.symbol}, "
            f"{Side(self.side).name}, {OrderType(self.type).name}, {TimeInForce(self.tif).name}, "
            f"px={self.price}, stop={self.stop_price}, qty={self.qty}, filled={self.filled}, "
            f"{OrderStatus(self.status).name})"
        )

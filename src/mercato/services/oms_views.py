"""The OMS's records of orders and fills (``OrderView``, ``FillView``), and their stored form.

``encode_view`` / ``decode_view`` turn a view into the bytes the SQL store keeps in
``order_views`` (MessagePack of the whole struct) and back: a view read back equals the
one written, field for field, so the API answers for it with the same bytes.
"""

from __future__ import annotations

import msgspec

from mercato.domain.orders import FINAL, OrderStatus

Details = dict[str, int | str | bool]


class Transition(msgspec.Struct, frozen=True, gc=False):
    """One step of an order's life: the status after it, what happened, and its details."""

    seq: int
    ts: int
    status: OrderStatus
    event: str
    details: Details = {}


class FillView(msgspec.Struct, gc=False):
    """One execution of one order (the counterparty is not shown, only the liquidity).

    ``fee`` is filled in when the trade's ledger posting arrives (0 until then, or free).
    """

    seq: int  # the Trade event's seq
    ts: int
    order_id: int
    account: int
    symbol: str
    side: int
    price: int
    qty: int
    liquidity: str  # "maker" or "taker"
    fee: int = 0


class Group(msgspec.Struct, frozen=True, gc=False):
    """Orders the core manages together: ``kind`` "bracket" or "oco", and their ids."""

    kind: str
    order_ids: tuple[int, ...]


class OrderView(msgspec.Struct, gc=False):
    """What the OMS knows about one order. Owned by the projection: read, never mutate.

    ``qty`` is always ``filled + remaining`` (a replace sets a new remaining quantity). The
    average fill price is ``notional / filled`` (exact integers: price units x qty units).
    ``reason`` says why it ended without filling: a cancel reason, "expired", or a reject
    reason (``detail`` then tells more). A rejected new order knows only what the rejection
    carried (id, account, symbol): its side, type and quantities are 0.
    """

    order_id: int
    account: int
    symbol: str
    status: OrderStatus
    created_seq: int
    created_ts: int
    updated_seq: int
    updated_ts: int
    client_order_id: str = ""
    side: int = 0
    type: int = 0
    tif: int = 0
    price: int = 0
    stop_price: int = 0
    protect_price: int = 0
    post_only: bool = False
    expire_ts: int = 0  # a GTD order: when what is left expires (core time, ns)
    self_trade: int = 0  # its self-trade prevention mode (``SelfTrade``; 0: cancel resting)
    qty: int = 0
    filled: int = 0
    remaining: int = 0
    notional: int = 0
    fees: int = 0
    reason: str = ""
    detail: str = ""
    liquidation: bool = False
    trail_amount: int = 0  # a trailing stop: its distance in price units, or
    trail_bps: int = 0  # in basis points of ``trail_best``
    trail_best: int = 0  # the best price traded since acceptance, as of its last move
    group: Group | None = None
    history: list[Transition] = []
    fills: list[FillView] = []

    @property
    def avg_price(self) -> tuple[int, int]:
        """The average fill price as an exact fraction (notional, filled); (0, 0) unfilled."""
        return self.notional, self.filled

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(OrderView)


def encode_view(v: OrderView) -> bytes:
    return _encoder.encode(v)


def decode_view(data: bytes) -> OrderView:
    return _decoder.decode(data)

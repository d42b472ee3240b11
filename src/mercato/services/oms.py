"""The OMS order history: every order's transitions and fills, mirrored from the core's events.

``OrderHistory`` is a projection: fed the event stream in seq order with ``apply``, it keeps
one ``OrderView`` per order and answers the order-management queries (open orders, by id, by
client order id, orders and fills with filters). It makes no decision of its own: status,
quantities and reasons are exactly what the core said.

Memory is bounded: live orders are always kept; finished orders (filled, cancelled, expired,
rejected) are kept up to ``max_closed`` and evicted oldest-finished first; the recent-fills
list holds the last ``max_fills`` fills. The SQL store (``mercato.adapters.sql``) keeps
everything; this is the fast, recent view.

With a store behind it (``durable``: the seq of the newest event the persister has
committed), an order or fill leaves memory only once the store holds it, so a read never
falls between the two; while the persister lags the window grows past its bound, up to
``OVERSHOOT`` times it (a persister stalled that long: eviction goes on regardless, and
the store answers for those items once it catches up).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, Final

from mercato.domain.events import (
    DuplicateClientOrder,
    Event,
    LedgerPosted,
    Liquidation,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrdersLinked,
    OrderTriggered,
    Rejected,
    StopMoved,
    StopTrails,
    Trade,
)
from mercato.domain.ledger import PAPER, fees_of
from mercato.domain.orders import FINAL, Order, OrderStatus
from mercato.services.oms_views import Details, FillView, Group, OrderView, Transition

__all__ = ["Details", "FillView", "Group", "OrderHistory", "OrderView", "Transition"]

# what happened, as recorded in ``Transition.event``
ACCEPTED: Final = "accepted"
PARTIALLY_FILLED: Final = "partially_filled"
FILLED: Final = "filled"
REPLACED: Final = "replaced"
CANCELLED: Final = "cancelled"
EXPIRED: Final = "expired"
TRIGGERED: Final = "triggered"
STOP_MOVED: Final = "stop_moved"
TRAILING: Final = "trailing"
REJECTED: Final = "rejected"

MAKER: Final = "maker"
TAKER: Final = "taker"
DUPLICATE_CLIENT_ORDER: Final = "duplicate_client_order"
# the tags of the commands that create orders (a rejection of one is a rejected order)
_NEW_COMMANDS: Final = frozenset(("n", "brk", "oco"))
# trades waiting for their ledger posting, links and liquidations waiting for their orders:
# each follows closely, so a small cap only guards against a stream that never sends it
_MAX_PENDING: Final = 65_536
# how far past its bound a window may grow while waiting for the persister (a hard cap)
OVERSHOOT: Final = 8


class OrderHistory:
    """The order-history projection. ``apply`` it every event, in seq order.

    Re-applying events at or below ``seq`` (the last one applied) does nothing, so a
    subscriber may replay from any earlier point after a reconnect.
    """

    def __init__(
        self,
        max_closed: int = 100_000,
        max_fills: int = 100_000,
        durable: Callable[[], int] | None = None,
    ) -> None:
        assert max_closed >= 0 and max_fills >= 0
        self.seq = 0  # the last event applied
        self.max_closed = max_closed
        self.max_fills = max_fills
        # the seq of the newest event the SQL store holds (None: no store, evict at once)
        self.durable = durable
        # every order changed after ``horizon`` is here (those changed at or before it may
        # have been evicted, or be from before a restart: the SQL store has them); the same
        # for the fills after ``fills_horizon``
        self.horizon = 0
        self.fills_horizon = 0
        self._orders: dict[int, OrderView] = {}
        # every kept order, and each account's, oldest update first (a change moves it last)
        self._recent: dict[int, OrderView] = {}
        self._by_account: dict[int, dict[int, OrderView]] = {}
        self._open: dict[int, dict[int, OrderView]] = {}  # account -> live orders, by arrival
        # finished order ids, oldest finished first; an OrderedDict because a plain dict
        # that loses its oldest key on every insert makes finding its first key slower and
        # slower (the holes it leaves at its front are scanned each time)
        self._closed: OrderedDict[int, None] = OrderedDict()
        self._by_client: dict[tuple[int, str], int] = {}
        self._fills: deque[FillView] = deque()  # bounded by ``_evict_fills``
        self._unposted: dict[int, list[tuple[OrderView, FillView]]] = {}  # trade seq -> fills
        self._liquidations: dict[int, None] = {}  # order ids announced by a Liquidation
        self._links: dict[int, Group] = {}  # linked order ids not seen yet
        self._handlers: dict[type, Callable[[Any], None]] = {
            OrderAccepted: self._accepted,
            Trade: self._trade,
            OrderCancelled: self._cancelled,
            OrderReplaced: self._replaced,
            OrderExpired: self._expired,
            OrderTriggered: self._triggered,
            StopMoved: self._stop_moved,
            StopTrails: self._stop_trails,
            Rejected: self._rejected,
            LedgerPosted: self._posted,
            Liquidation: self._liquidation,
            OrdersLinked: self._linked,
            DuplicateClientOrder: self._duplicate,
        }

    # -- feeding -------------------------------------------------------------------------

    def apply(self, events: Iterable[Event]) -> None:
        """Mirror ``events`` (in seq order); those at or below ``self.seq`` are skipped."""
        handlers = self._handlers
        for e in events:
            if e.seq <= self.seq:
                continue
            self.seq = e.seq
            handler = handlers.get(type(e))
            if handler is not None:
                handler(e)

    # -- queries -------------------------------------------------------------------------

    def seed_live(self, orders: Iterable[Order]) -> None:
        """Add views of live orders the projection never saw accepted: after a restart
        from a snapshot, the events before it are not replayed (their history is in SQL).
        Such a view starts at the order's current state; its fills before the snapshot are
        not known here (``notional`` 0)."""
        for o in orders:
            if o.order_id in self._orders:
                continue
            self._add(
                OrderView(
                    order_id=o.order_id,
                    account=o.account,
                    symbol=o.symbol,
                    status=OrderStatus(o.status),
                    created_seq=0,
                    created_ts=0,
                    updated_seq=0,
                    updated_ts=0,
                    client_order_id=o.client_order_id,
                    side=o.side,
                    type=o.type,
                    tif=o.tif,
                    price=o.price,
                    stop_price=o.stop_price,
                    protect_price=o.protect,
                    post_only=o.post_only,
                    qty=o.qty,
                    filled=o.filled,
                    remaining=o.remaining,
                    history=[],
                    fills=[],
                )
            )

    def restore(self, views: Iterable[OrderView]) -> None:
        """Keep ``views`` read back from the store (``decode_view``): a restart's live
        orders, or orders the persister's replica changes again. Give them oldest change
        first, before any newer event is applied (the recent lists stay in change order)."""
        for v in views:
            self._add(v)

    def trim(self, keep: int) -> None:
        """Forget all but the newest ``keep`` finished orders now (``max_closed`` stays)."""
        limit, self.max_closed = self.max_closed, keep
        try:
            self._evict()
        finally:
            self.max_closed = limit

    def order(self, order_id: int) -> OrderView | None:
        return self._orders.get(order_id)

    def by_client_id(self, account: int, client_order_id: str) -> OrderView | None:
        """The order ``account`` sent with ``client_order_id`` (the latest, if reused)."""
        oid = self._by_client.get((account, client_order_id))
        return None if oid is None else self._orders.get(oid)

    def open_orders(self, account: int | None = None, symbol: str | None = None) -> list[OrderView]:
        """Live orders (resting or waiting for their stop), oldest first."""
        if account is None:
            views: Iterable[OrderView] = (v for d in self._open.values() for v in d.values())
        else:
            views = self._open.get(account, {}).values()
        return [v for v in views if symbol is None or v.symbol == symbol]

    def orders(
        self,
        account: int | None = None,
        symbol: str | None = None,
        status: OrderStatus | Collection[OrderStatus] | None = None,
        since_seq: int | None = None,
        limit: int | None = 100,
        before: tuple[int, int] | None = None,
    ) -> list[OrderView]:
        """Kept orders, most recently changed first; ``since_seq``: changed after that seq;
        ``before``: (updated_seq, order_id) below that key (a page's cursor)."""
        statuses = _statuses(status)
        source = self._recent if account is None else self._by_account.get(account, {})
        out: list[OrderView] = []
        for v in reversed(source.values()):
            if since_seq is not None and v.updated_seq <= since_seq:
                break  # everything further back changed earlier still
            if before is not None and (v.updated_seq, v.order_id) >= before:
                continue
            if (symbol is None or v.symbol == symbol) and (
                statuses is None or v.status in statuses
            ):
                out.append(v)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def fills(
        self,
        account: int | None = None,
        symbol: str | None = None,
        order_id: int | None = None,
        since_seq: int | None = None,
        limit: int | None = 100,
        before: int | None = None,
    ) -> list[FillView]:
        """Fills, newest first: an order's own (all of them, while it is kept), or the
        last ``max_fills`` of everyone's; ``before``: of trades with a lower seq."""
        kept = self._orders.get(order_id) if order_id is not None else None
        source: Iterator[FillView] = reversed(kept.fills if kept is not None else self._fills)
        out: list[FillView] = []
        for f in source:
            if since_seq is not None and f.seq <= since_seq:
                break
            if before is not None and f.seq >= before:
                continue
            if (
                (account is None or f.account == account)
                and (symbol is None or f.symbol == symbol)
                and (order_id is None or f.order_id == order_id)
            ):
                out.append(f)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def __len__(self) -> int:
        """How many orders are kept (live and finished)."""
        return len(self._orders)

    # -- bookkeeping ---------------------------------------------------------------------

    def _touch(self, v: OrderView, e: Event, status: OrderStatus, what: str, d: Details) -> None:
        """Record one transition of ``v`` and move it to the front of the recent lists."""
        v.status = status
        v.updated_seq = e.seq
        v.updated_ts = e.ts
        v.history.append(Transition(e.seq, e.ts, status, what, d))
        oid = v.order_id
        del self._recent[oid]
        self._recent[oid] = v
        mine = self._by_account[v.account]
        del mine[oid]
        mine[oid] = v
        assert v.filled + v.remaining == v.qty, f"order {oid}: filled + remaining != qty"

    def _add(self, v: OrderView) -> None:
        """Keep a new order; a finished order with the same id (an id reused) goes."""
        old = self._orders.get(v.order_id)
        if old is not None:
            self._forget(old)
        oid = v.order_id
        self._orders[oid] = v
        self._recent[oid] = v
        self._by_account.setdefault(v.account, {})[oid] = v
        if v.status in FINAL:
            self._closed[oid] = None
            self._evict()
        else:
            self._open.setdefault(v.account, {})[oid] = v
        if v.client_order_id and v.status is not OrderStatus.REJECTED:
            self._by_client[(v.account, v.client_order_id)] = oid
        group = self._links.pop(oid, None)
        if group is not None:
            v.group = group
        if oid in self._liquidations:
            del self._liquidations[oid]
            v.liquidation = True

    def _finished(self, v: OrderView) -> None:
        """``v`` has just ended: out of the open orders, into the closed ones."""
        assert v.created_seq == 0 or sum(f.qty for f in v.fills) == v.filled, (
            f"order {v.order_id}: fills != filled"  # (seeded views miss their early fills)
        )
        mine = self._open.get(v.account)
        if mine is not None:
            mine.pop(v.order_id, None)
            if not mine:
                del self._open[v.account]
        self._closed[v.order_id] = None
        self._evict()

    def _evict(self) -> None:
        closed = self._closed
        bound = self.max_closed
        if len(closed) <= bound:
            return
        durable = self.durable() if self.durable is not None else None
        cap = bound * OVERSHOOT
        while len(closed) > bound:
            oid = next(iter(closed))
            v = self._orders[oid]
            if durable is not None and v.updated_seq > durable and len(closed) <= cap:
                break  # not in the store yet: it stays until the persister has it
            del closed[oid]
            if v.updated_seq > self.horizon:
                self.horizon = v.updated_seq
            self._forget(v)

    def _evict_fills(self) -> None:
        kept = self._fills
        bound = self.max_fills
        if len(kept) <= bound:
            return
        durable = self.durable() if self.durable is not None else None
        cap = bound * OVERSHOOT
        while len(kept) > bound:
            if durable is not None and kept[0].seq > durable and len(kept) <= cap:
                break  # not in the store yet
            self.fills_horizon = max(self.fills_horizon, kept.popleft().seq)

    def _forget(self, v: OrderView) -> None:
        oid = v.order_id
        del self._orders[oid]
        del self._recent[oid]
        mine = self._by_account[v.account]
        del mine[oid]
        if not mine:
            del self._by_account[v.account]
        self._closed.pop(oid, None)
        live = self._open.get(v.account)
        if live is not None and live.pop(oid, None) is not None and not live:
            del self._open[v.account]
        key = (v.account, v.client_order_id)
        if v.client_order_id and self._by_client.get(key) == oid:
            del self._by_client[key]

    def _live(self, order_id: int) -> OrderView | None:
        v = self._orders.get(order_id)
        return v if v is not None and v.status not in FINAL else None

    # -- event handlers ------------------------------------------------------------------

    def _accepted(self, e: OrderAccepted) -> None:
        v = OrderView(
            order_id=e.order_id,
            account=e.account,
            symbol=e.symbol,
            status=OrderStatus.ACCEPTED,
            created_seq=e.seq,
            created_ts=e.ts,
            updated_seq=e.seq,
            updated_ts=e.ts,
            client_order_id=e.client_order_id,
            side=e.side,
            type=e.type,
            tif=e.tif,
            price=e.price,
            stop_price=e.stop_price,
            protect_price=e.protect_price,
            post_only=e.post_only,
            expire_ts=e.expire_ts,
            self_trade=e.self_trade,
            qty=e.qty,
            remaining=e.qty,
            history=[Transition(e.seq, e.ts, OrderStatus.ACCEPTED, ACCEPTED)],
            fills=[],
        )
        self._add(v)

    def _trade(self, e: Trade) -> None:
        posted: list[tuple[OrderView, FillView]] = []
        taker = self._live(e.taker_order_id)
        if taker is not None:
            posted.append(self._fill(taker, e, TAKER, e.taker_remaining))
        if e.maker_account != PAPER:
            maker = self._live(e.maker_order_id)
            if maker is not None:
                posted.append(self._fill(maker, e, MAKER, e.maker_remaining))
        if posted:
            unposted = self._unposted
            unposted[e.seq] = posted
            if len(unposted) > _MAX_PENDING:
                del unposted[next(iter(unposted))]

    def _fill(
        self, v: OrderView, e: Trade, liquidity: str, remaining: int
    ) -> tuple[OrderView, FillView]:
        f = FillView(
            e.seq, e.ts, v.order_id, v.account, v.symbol, v.side, e.price, e.qty, liquidity
        )
        v.fills.append(f)
        if self.max_fills:
            self._fills.append(f)
            self._evict_fills()
        else:
            self.fills_horizon = max(self.fills_horizon, f.seq)
        v.filled += e.qty
        v.remaining -= e.qty
        v.notional += e.price * e.qty
        assert v.remaining == remaining, f"order {v.order_id}: remaining differs from the core's"
        done = remaining == 0
        details: Details = {"price": e.price, "qty": e.qty, "liquidity": liquidity}
        if done:
            self._touch(v, e, OrderStatus.FILLED, FILLED, details)
            self._finished(v)
        else:
            self._touch(v, e, OrderStatus.PARTIALLY_FILLED, PARTIALLY_FILLED, details)
        return v, f

    def _posted(self, e: LedgerPosted) -> None:
        if e.kind != "trade":
            return
        fills = self._unposted.pop(e.ref, None)
        if fills is None:
            return
        fees = fees_of(e.entries)
        for v, f in fills:
            fee = fees.get(f.account, 0)
            f.fee += fee
            v.fees += fee

    def _cancelled(self, e: OrderCancelled) -> None:
        v = self._live(e.order_id)
        if v is None:
            return
        assert v.remaining == e.remaining, f"order {v.order_id}: remaining differs at cancel"
        v.reason = e.reason
        d: Details = {"reason": e.reason, "remaining": e.remaining}
        self._touch(v, e, OrderStatus.CANCELLED, CANCELLED, d)
        self._finished(v)

    def _expired(self, e: OrderExpired) -> None:
        v = self._live(e.order_id)
        if v is None:
            return
        assert v.remaining == e.remaining, f"order {v.order_id}: remaining differs at expiry"
        v.reason = EXPIRED
        self._touch(v, e, OrderStatus.EXPIRED, EXPIRED, {"remaining": e.remaining})
        self._finished(v)

    def _replaced(self, e: OrderReplaced) -> None:
        v = self._live(e.order_id)
        if v is None:
            return
        v.price = e.price
        v.stop_price = e.stop_price
        v.remaining = e.qty
        v.qty = v.filled + e.qty
        d: Details = {
            "price": e.price,
            "qty": e.qty,
            "stop_price": e.stop_price,
            "kept_priority": e.kept_priority,
        }
        self._touch(v, e, OrderStatus.REPLACED, REPLACED, d)

    def _triggered(self, e: OrderTriggered) -> None:
        v = self._live(e.order_id)
        if v is not None:
            d: Details = {"stop_price": e.stop_price, "last_price": e.last_price}
            self._touch(v, e, v.status, TRIGGERED, d)

    def _stop_trails(self, e: StopTrails) -> None:
        v = self._live(e.order_id)
        if v is not None:
            v.trail_amount, v.trail_bps, v.trail_best = e.trail_amount, e.trail_bps, e.best
            d: Details = {"trail_amount": e.trail_amount, "trail_bps": e.trail_bps}
            self._touch(v, e, v.status, TRAILING, d)

    def _stop_moved(self, e: StopMoved) -> None:
        """A trailing stop may move on every trade for as long as it waits: its moves
        share one transition (the latest), so that its history stays small."""
        v = self._live(e.order_id)
        if v is not None:
            v.stop_price = e.stop_price
            v.trail_best = e.best or v.trail_best
            if v.history and v.history[-1].event == STOP_MOVED:
                v.history.pop()
            self._touch(v, e, v.status, STOP_MOVED, {"stop_price": e.stop_price})

    def _rejected(self, e: Rejected) -> None:
        """A rejected new order is kept as a REJECTED order; a rejected command that names
        an order we keep (a replace, a cancel too late, a duplicate id) is noted on it."""
        if e.order_id == 0:
            return
        v = self._orders.get(e.order_id)
        new = e.command in _NEW_COMMANDS
        if v is not None and (not new or v.status not in FINAL):
            if e.account == 0 or e.account == v.account:
                d: Details = {"command": e.command, "reason": e.reason, "detail": e.detail}
                self._touch(v, e, v.status, REJECTED, d)
            return
        if new:
            self._add_rejected(e, e.order_id, e.account, e.symbol, e.reason, e.detail)

    def _add_rejected(
        self,
        e: Event,
        order_id: int,
        account: int,
        symbol: str,
        reason: str,
        detail: str,
        client_order_id: str = "",
    ) -> None:
        d: Details = {"command": "n", "reason": reason, "detail": detail}
        st = OrderStatus.REJECTED
        v = OrderView(
            order_id=order_id,
            account=account,
            symbol=symbol,
            status=st,
            created_seq=e.seq,
            created_ts=e.ts,
            updated_seq=e.seq,
            updated_ts=e.ts,
            client_order_id=client_order_id,
            reason=reason,
            detail=detail,
            history=[Transition(e.seq, e.ts, st, REJECTED, d)],
            fills=[],
        )
        self._add(v)

    def _duplicate(self, e: DuplicateClientOrder) -> None:
        """The repeat is kept as a rejected order (unless it reused the original's id or a
        live one's) and noted on the original."""
        original = self._orders.get(e.order_id)
        detail = f"client order id {e.client_order_id!r} is order {e.order_id}"
        if original is not None and original.account == e.account:
            d: Details = {
                "command": "n",
                "reason": DUPLICATE_CLIENT_ORDER,
                "order_id": e.rejected_id,
            }
            self._touch(original, e, original.status, REJECTED, d)
        if e.rejected_id != e.order_id and e.rejected_id != 0 and not self._live(e.rejected_id):
            symbol = original.symbol if original is not None else ""
            self._add_rejected(
                e,
                e.rejected_id,
                e.account,
                symbol,
                DUPLICATE_CLIENT_ORDER,
                detail,
                e.client_order_id,
            )

    def _liquidation(self, e: Liquidation) -> None:
        v = self._live(e.order_id)
        if v is not None:  # the order usually follows its Liquidation; here it came first
            v.liquidation = True
            return
        pending = self._liquidations
        pending[e.order_id] = None
        if len(pending) > _MAX_PENDING:
            del pending[next(iter(pending))]

    def _linked(self, e: OrdersLinked) -> None:
        group = Group(e.kind, tuple(e.order_ids))
        links = self._links
        for oid in e.order_ids:
            v = self._orders.get(oid)
            if v is not None and v.account == e.account:
                v.group = group
            else:
                links[oid] = group
        while len(links) > _MAX_PENDING:
            del links[next(iter(links))]


def _statuses(status: OrderStatus | Collection[OrderStatus] | None) -> frozenset[int] | None:
    if status is None:
        return None
    if isinstance(status, OrderStatus):
        return frozenset((status,))
    return frozenset(status)

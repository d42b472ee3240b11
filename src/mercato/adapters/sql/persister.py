"""The SQL persister: the engine's event stream folded into relational tables.

``write(events)`` applies one batch in one transaction, together with the last seq it
wrote (``persister_state``), so a crash leaves either the whole batch or none of it, and
re-feeding events from any earlier seq after a restart is harmless: anything at or below
the stored seq is skipped. Events must arrive in seq order (as the engine emits them).

What goes where:
- ``instruments``: ``InstrumentAdded`` (status OPEN), ``TradingStatusChanged``.
- ``orders``: one row per accepted order, following the engine's state machine: created
  ACCEPTED by ``OrderAccepted``; ``Trade`` sets ``filled = qty - remaining`` and
  PARTIALLY_FILLED or FILLED for both sides; ``OrderReplaced`` sets price, stop price,
  ``qty = filled + new remaining`` and REPLACED; ``OrderCancelled`` CANCELLED;
  ``OrderExpired`` EXPIRED; ``OrderTriggered`` only bumps ``updated_seq``.
- ``order_events``: every event about one order (accepted, cancelled, replaced, expired,
  triggered, and rejections that name an order), as JSON. A trade concerns two orders, so
  it lives in ``trades`` (which names both) instead.
- ``trades``: every ``Trade``. ``BookDelta`` is market data and is not stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, create_engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mercato.adapters.sql.migrations import upgrade
from mercato.adapters.sql.schema import instruments, order_events, orders, persister_state, trades
from mercato.adapters.sql.urls import sqlalchemy_url
from mercato.domain.events import (
    Event,
    InstrumentAdded,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    Rejected,
    Trade,
    TradingStatusChanged,
)
from mercato.domain.orders import OrderStatus
from mercato.domain.types import TradingStatus

ACCEPTED = int(OrderStatus.ACCEPTED)
PARTIALLY_FILLED = int(OrderStatus.PARTIALLY_FILLED)
FILLED = int(OrderStatus.FILLED)
CANCELLED = int(OrderStatus.CANCELLED)
EXPIRED = int(OrderStatus.EXPIRED)
REPLACED = int(OrderStatus.REPLACED)

_STATE_ID = 1
_json = msgspec.json.Encoder()


def _payload(e: Event) -> str:
    """The event as a JSON object (field names, not the positional wire form)."""
    fields = msgspec.structs.asdict(e)
    fields["k"] = e.__struct_config__.tag
    return _json.encode(fields).decode()


class SqlPersister:
    """Writes batches of engine events to the database at ``url`` (migrated on start).

    Blocking, one writer per database: it is meant to run in the persister service's own
    thread. It retries nothing; on an error the batch's transaction rolls back and the
    caller re-feeds from ``last_seq() + 1``.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        if migrate:
            upgrade(url)
        self.engine: Engine = create_engine(sqlalchemy_url(url))
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            self._insert: Any = postgresql.insert
        elif dialect == "sqlite":
            self._insert = sqlite.insert
        else:
            raise ValueError(f"unsupported database: {dialect}")

    def close(self) -> None:
        self.engine.dispose()

    def last_seq(self) -> int:
        """The seq of the last event written (0: none yet)."""
        with self.engine.connect() as conn:
            return self._last_seq(conn, lock=False)

    def write(self, events: Sequence[Event]) -> int:
        """Apply ``events`` in one transaction; return how many were new (not skipped)."""
        with self.engine.begin() as conn:
            last = self._last_seq(conn, lock=True)
            fresh = [e for e in events if e.seq > last]
            if not fresh:
                return 0
            self._apply(conn, fresh)
            new_last = max(e.seq for e in fresh)
            if last == 0 and not self._has_state(conn):
                conn.execute(insert(persister_state).values(id=_STATE_ID, last_seq=new_last))
            else:
                conn.execute(
                    update(persister_state)
                    .where(persister_state.c.id == _STATE_ID)
                    .values(last_seq=new_last)
                )
            return len(fresh)

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _has_state(conn: Connection) -> bool:
        q = select(persister_state.c.id).where(persister_state.c.id == _STATE_ID)
        return conn.execute(q).first() is not None

    @staticmethod
    def _last_seq(conn: Connection, *, lock: bool) -> int:
        q = select(persister_state.c.last_seq).where(persister_state.c.id == _STATE_ID)
        if lock:  # a second writer waits here instead of writing the same batch twice
            q = q.with_for_update()
        row = conn.execute(q).first()
        return 0 if row is None else int(row[0])

    def _apply(self, conn: Connection, events: list[Event]) -> None:
        """Order updates run one by one, in seq order; appends are batched at the end."""
        trade_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        o = orders.c
        for e in events:
            if isinstance(e, Trade):
                trade_rows.append(
                    {
                        "seq": e.seq,
                        "ts": e.ts,
                        "symbol": e.symbol,
                        "price": e.price,
                        "qty": e.qty,
                        "taker_order_id": e.taker_order_id,
                        "maker_order_id": e.maker_order_id,
                        "taker_account": e.taker_account,
                        "maker_account": e.maker_account,
                        "taker_side": e.taker_side,
                    }
                )
                for oid, remaining in (
                    (e.taker_order_id, e.taker_remaining),
                    (e.maker_order_id, e.maker_remaining),
                ):
                    conn.execute(
                        update(orders)
                        .where(o.order_id == oid)
                        .values(
                            filled=o.qty - remaining,
                            status=FILLED if remaining == 0 else PARTIALLY_FILLED,
                            updated_seq=e.seq,
                        )
                    )
                continue
            if isinstance(e, OrderAccepted):
                row = {
                    "order_id": e.order_id,
                    "account": e.account,
                    "symbol": e.symbol,
                    "side": e.side,
                    "type": e.type,
                    "tif": e.tif,
                    "price": e.price,
                    "stop_price": e.stop_price,
                    "qty": e.qty,
                    "filled": 0,
                    "status": ACCEPTED,
                    "post_only": e.post_only,
                    "created_seq": e.seq,
                    "updated_seq": e.seq,
                }
                stmt = self._insert(orders).values(row)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[o.order_id],
                        set_={k: v for k, v in row.items() if k != "order_id"},
                    )
                )
            elif isinstance(e, OrderCancelled | OrderExpired):
                status = CANCELLED if isinstance(e, OrderCancelled) else EXPIRED
                conn.execute(
                    update(orders)
                    .where(o.order_id == e.order_id)
                    .values(status=status, updated_seq=e.seq)
                )
            elif isinstance(e, OrderReplaced):
                conn.execute(
                    update(orders)
                    .where(o.order_id == e.order_id)
                    .values(
                        price=e.price,
                        stop_price=e.stop_price,
                        qty=o.filled + e.qty,
                        status=REPLACED,
                        updated_seq=e.seq,
                    )
                )
            elif isinstance(e, OrderTriggered):
                conn.execute(
                    update(orders).where(o.order_id == e.order_id).values(updated_seq=e.seq)
                )
            elif isinstance(e, Rejected):
                if not e.order_id:
                    continue
            elif isinstance(e, InstrumentAdded):
                row = {
                    "symbol": e.symbol,
                    "tick_size": e.tick_size,
                    "lot_size": e.lot_size,
                    "price_scale": e.price_scale,
                    "qty_scale": e.qty_scale,
                    "status": int(TradingStatus.OPEN),
                }
                stmt = self._insert(instruments).values(row)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[instruments.c.symbol],
                        set_={k: v for k, v in row.items() if k != "symbol"},
                    )
                )
                continue
            elif isinstance(e, TradingStatusChanged):
                conn.execute(
                    update(instruments)
                    .where(instruments.c.symbol == e.symbol)
                    .values(status=e.status)
                )
                continue
            else:  # BookDelta and anything not about orders or instruments
                continue
            event_rows.append(
                {
                    "seq": e.seq,
                    "order_id": e.order_id,
                    "kind": e.__struct_config__.tag,
                    "ts": e.ts,
                    "payload": _payload(e),
                }
            )
        if trade_rows:
            conn.execute(insert(trades), trade_rows)
        if event_rows:
            conn.execute(insert(order_events), event_rows)

"""The SQL persister: the core's event stream folded into relational tables.

``write(events)`` applies one batch in one transaction, together with the last seq it
wrote (``persister_state``), so a crash leaves either the whole batch or none of it, and
re-feeding events from any earlier seq after a restart is harmless: anything at or below
the stored seq is skipped. Events must arrive in seq order (as the core emits them).

What goes where:
- ``instruments``: ``InstrumentAdded`` (status OPEN), ``TradingStatusChanged``.
- ``orders``: one row per accepted order, following the engine's state machine: created
  ACCEPTED by ``OrderAccepted`` (with its client order id and protection price); ``Trade``
  sets ``filled = qty - remaining`` and PARTIALLY_FILLED or FILLED for both sides;
  ``OrderReplaced`` sets price, stop price, ``qty = filled + new remaining`` and REPLACED;
  ``OrderCancelled`` CANCELLED; ``OrderExpired`` EXPIRED; ``StopMoved`` the stop price;
  ``OrderTriggered`` only bumps ``updated_seq``.
- ``order_events``: every event about one order (accepted, cancelled, replaced, expired,
  triggered, and rejections that name an order), as JSON. A trade concerns two orders, so
  it lives in ``trades`` (which names both) and ``fills`` (one row per side) instead.
- ``trades``: every ``Trade``; ``fills``: its two sides, each with the fee its account
  paid, read from the trade's ``LedgerPosted`` (kind "trade", ref = the trade's seq) with
  ``fees_of``. The posting follows the trade, in the same batch or a later one.
- ``currencies``, ``accounts`` (``AccountCreated``; ``KillSwitchSet`` sets ``killed``,
  ``MarginCall`` / ``MarginRestored`` set ``margin_status`` "call" / "ok").
- ``ledger_postings`` and ``ledger_entries``: every ``LedgerPosted``, entries in order.
- ``positions``: ``PositionChanged`` carries the whole new state: the row is replaced.
- ``risk_events``: margin calls and restorations, liquidations, kill switches, duplicate
  client orders, linked orders, moved stops, limits, instrument risk, market prices,
  self-trade prevention modes, and
  rejections that name no order (``kind`` "rejected"), each as JSON.
- ``seq_clock``: with every batch, the second of core time its newest event reached (the
  greatest ts so far, never going back) and its last seq: what retention measures age by.
- ``BookDelta`` and ``AuctionIndicative`` are market data and are not stored. Any other
  event type raises ``TypeError``: a new event must be given a place here before it can
  be persisted (``tests/integration/test_sql_persister.py`` checks every one has).

Each batch costs a fixed number of statements, whatever its size: rows that exist before
the batch and that it changes are read once (``IN``), folded in memory in seq order, and
written back with one executemany per table; new rows go in with one executemany each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Table,
    bindparam,
    create_engine,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from mercato.adapters.sql.migrations import upgrade
from mercato.adapters.sql.schema import (
    accounts,
    currencies,
    fills,
    instruments,
    ledger_entries,
    ledger_postings,
    order_events,
    order_views,
    orders,
    persister_state,
    positions,
    replica_state,
    risk_events,
    seq_clock,
    trades,
)
from mercato.adapters.sql.urls import private_sqlite_file, sqlalchemy_url
from mercato.domain.events import (
    AccountCreated,
    AuctionIndicative,
    BookDelta,
    CurrencyAdded,
    DuplicateClientOrder,
    Event,
    InstrumentAdded,
    InstrumentRiskSet,
    KillSwitchSet,
    LedgerPosted,
    Liquidation,
    MarginCall,
    MarginRestored,
    MarketPriceSet,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrdersLinked,
    OrderTriggered,
    PositionChanged,
    Rejected,
    RiskLimitsSet,
    SelfTradeSet,
    StopMoved,
    StopTrails,
    Trade,
    TradingStatusChanged,
)
from mercato.domain.ledger import fees_of
from mercato.domain.orders import OrderStatus
from mercato.domain.types import TradingStatus

ACCEPTED = int(OrderStatus.ACCEPTED)
PARTIALLY_FILLED = int(OrderStatus.PARTIALLY_FILLED)
FILLED = int(OrderStatus.FILLED)
CANCELLED = int(OrderStatus.CANCELLED)
EXPIRED = int(OrderStatus.EXPIRED)
REPLACED = int(OrderStatus.REPLACED)
MARGIN_OK = "ok"
MARGIN_CALL = "call"

_STATE_ID = 1
SECOND = 1_000_000_000  # ts units (ns) per ``seq_clock`` row
_IN_CHUNK = 500  # keys per ``IN (...)`` read, well under every backend's parameter limit
_json = msgspec.json.Encoder()

Row = dict[str, Any]

# risk_events.kind for each event type stored there
RISK_KINDS: dict[type[Event], str] = {
    MarginCall: "margin_call",
    MarginRestored: "margin_restored",
    Liquidation: "liquidation",
    KillSwitchSet: "kill_switch",
    DuplicateClientOrder: "duplicate_client_order",
    OrdersLinked: "orders_linked",
    StopMoved: "stop_moved",
    StopTrails: "stop_trails",
    RiskLimitsSet: "limits_set",
    InstrumentRiskSet: "instrument_risk_set",
    MarketPriceSet: "market_price",
    SelfTradeSet: "self_trade_set",
    Rejected: "rejected",  # only those that name no order
}
# the order columns an event may change, written back whole for orders that existed before
_ORDER_MUTABLE = ("price", "stop_price", "qty", "filled", "status", "updated_seq")
_ACCOUNT_MUTABLE = ("killed", "margin_status", "updated_seq")
_ORDER_EVENTS = (OrderAccepted, OrderCancelled, OrderReplaced, OrderExpired, OrderTriggered)
_ORDER_CHANGES = (
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    StopMoved,
)


def _payload(e: Event) -> str:
    """The event as a JSON object (field names, not the positional wire form)."""
    fields = msgspec.structs.asdict(e)
    fields["k"] = e.__struct_config__.tag
    return _json.encode(fields).decode()


def _read(conn: Connection, table: Table, key: Column[Any], keys: Iterable[Any]) -> dict[Any, Row]:
    """The rows of ``table`` whose ``key`` is one of ``keys``, by key, as dicts."""
    out: dict[Any, Row] = {}
    todo = list(keys)
    for i in range(0, len(todo), _IN_CHUNK):
        q = select(table).where(key.in_(todo[i : i + _IN_CHUNK]))
        for r in conn.execute(q).mappings():
            out[r[key.name]] = dict(r)
    return out


def _update_many(conn: Connection, table: Table, keys: tuple[str, ...], rows: list[Row]) -> None:
    """One executemany ``UPDATE table SET <other columns> WHERE <keys>`` over ``rows``."""
    if not rows:
        return
    cols = [c for c in rows[0] if c not in keys]
    stmt = (
        update(table)
        .where(*(table.c[k] == bindparam(f"k_{k}") for k in keys))
        .values({c: bindparam(f"v_{c}") for c in cols})
    )
    params = [{**{f"k_{k}": r[k] for k in keys}, **{f"v_{c}": r[c] for c in cols}} for r in rows]
    conn.execute(stmt, params)


class _Batch:
    """One batch folded in memory: new rows to insert, changed rows to write back."""

    def __init__(self) -> None:
        self.instruments: dict[str, Row] = {}  # upserted
        self.instrument_status: dict[str, int] = {}  # rows from earlier batches
        self.currencies: dict[str, Row] = {}  # upserted
        self.new_orders: dict[int, Row] = {}  # upserted
        self.old_orders: dict[int, Row] = {}  # read before the batch
        self.dirty_orders: set[int] = set()
        self.new_accounts: dict[int, Row] = {}
        self.old_accounts: dict[int, Row] = {}
        self.dirty_accounts: set[int] = set()
        self.trades: list[Row] = []
        self.fills: list[Row] = []
        self.trade_fills: dict[int, list[Row]] = {}  # trade seq -> its new fills
        self.old_fills: dict[int, list[Row]] = {}  # trade seq -> its fills stored earlier
        self.fee_updates: dict[tuple[int, int], int] = {}  # on fills stored earlier
        self.order_events: list[Row] = []
        self.postings: list[Row] = []
        self.entries: list[Row] = []
        self.positions: dict[tuple[int, str], Row] = {}  # upserted, the last state wins
        self.risk_events: list[Row] = []

    def order(self, order_id: int) -> Row | None:
        row = self.new_orders.get(order_id)
        if row is None:
            row = self.old_orders.get(order_id)
            if row is not None:
                self.dirty_orders.add(order_id)
        return row

    def account(self, account: int) -> Row | None:
        row = self.new_accounts.get(account)
        if row is None:
            row = self.old_accounts.get(account)
            if row is not None:
                self.dirty_accounts.add(account)
        return row


class SqlPersister:
    """Writes batches of core events to the database at ``url`` (migrated on start).

    Blocking, one writer per database: it is meant to run in the persister service's own
    thread. It retries nothing; on an error the batch's transaction rolls back and the
    caller re-feeds from ``last_seq() + 1``.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        private_sqlite_file(url)  # every order and fill: owner only
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
        self._clock_ts: int | None = None  # the greatest event ts written (None: not read)
        self._handlers: dict[type[Event], Callable[[_Batch, Any], None]] = {
            InstrumentAdded: self._instrument_added,
            TradingStatusChanged: self._trading_status,
            OrderAccepted: self._accepted,
            OrderCancelled: self._order_changed,
            OrderExpired: self._order_changed,
            OrderReplaced: self._order_changed,
            OrderTriggered: self._order_changed,
            Rejected: self._rejected,
            Trade: self._trade,
            BookDelta: _ignore,
            AuctionIndicative: _ignore,
            CurrencyAdded: self._currency,
            AccountCreated: self._account_created,
            LedgerPosted: self._posted,
            PositionChanged: self._position,
            RiskLimitsSet: self._risk_event,
            InstrumentRiskSet: self._risk_event,
            KillSwitchSet: self._risk_event,
            MarketPriceSet: self._risk_event,
            MarginCall: self._risk_event,
            MarginRestored: self._risk_event,
            Liquidation: self._risk_event,
            DuplicateClientOrder: self._risk_event,
            OrdersLinked: self._risk_event,
            StopMoved: self._stop_moved,
            StopTrails: self._risk_event,
            SelfTradeSet: self._risk_event,
        }

    def close(self) -> None:
        self.engine.dispose()

    def last_seq(self) -> int:
        """The seq of the last event written (0: none yet)."""
        with self.engine.connect() as conn:
            return self._last_seq(conn, lock=False)

    def journal_seq(self) -> int:
        """The journal seq up to which every command's events are stored (0: unknown)."""
        with self.engine.connect() as conn:
            q = select(replica_state.c.journal_seq).where(replica_state.c.id == _STATE_ID)
            row = conn.execute(q).first()
            return 0 if row is None else int(row[0])

    def views(self, order_ids: Iterable[int]) -> dict[int, bytes]:
        """The stored ``order_views`` blobs of ``order_ids`` (those that have one)."""
        with self.engine.connect() as conn:
            rows = _read(conn, order_views, order_views.c.order_id, order_ids)
        return {oid: bytes(r["view"]) for oid, r in rows.items()}

    def write(
        self,
        events: Sequence[Event],
        *,
        journal_seq: int | None = None,
        views: Sequence[Row] = (),
    ) -> int:
        """Apply ``events`` in one transaction; return how many were new (not skipped).

        ``journal_seq``: a replica's position, stored in the same transaction (it only
        moves forward): every event of the journal's commands up to it is now stored.
        ``views``: ``order_views`` rows (the OMS projection's orders these events changed),
        upserted in the same transaction, only when some event was new.
        """
        with self.engine.begin() as conn:
            last = self._last_seq(conn, lock=True)
            fresh = [e for e in events if e.seq > last]
            if fresh:
                self._apply(conn, fresh)
                self._upsert(conn, order_views, ("order_id",), list(views))
                new_last = max(e.seq for e in fresh)
                self._tick(conn, fresh, new_last)
                if last == 0 and not self._has_state(conn):
                    conn.execute(insert(persister_state).values(id=_STATE_ID, last_seq=new_last))
                else:
                    conn.execute(
                        update(persister_state)
                        .where(persister_state.c.id == _STATE_ID)
                        .values(last_seq=new_last)
                    )
            if journal_seq is not None:
                c = replica_state.c
                conn.execute(
                    update(replica_state)
                    .where(c.id == _STATE_ID, c.journal_seq < journal_seq)
                    .values(journal_seq=journal_seq)
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

    def _tick(self, conn: Connection, fresh: list[Event], last: int) -> None:
        """Record in ``seq_clock``, for each second of core time the batch reaches, the
        newest seq by its end (the greatest ts so far counts: the clock never goes back),
        so that every event up to a row's seq has a ts before that second's end."""
        if self._clock_ts is None:
            second = conn.execute(select(func.max(seq_clock.c.second))).scalar()
            self._clock_ts = 0 if second is None else int(second) * SECOND
        ts = self._clock_ts
        marks: dict[int, int] = {}
        prev = fresh[0].seq - 1  # (a bound: every seq up to it is an earlier batch's)
        for e in fresh:
            if e.ts > ts:
                if e.ts // SECOND != ts // SECOND:
                    marks[ts // SECOND] = prev  # that second ended before this event
                ts = e.ts
            prev = e.seq
        marks[ts // SECOND] = last
        self._clock_ts = ts
        rows = [{"second": k, "seq": q} for k, q in marks.items()]
        self._upsert(conn, seq_clock, ("second",), rows)

    def _apply(self, conn: Connection, events: list[Event]) -> None:
        """Read what the batch changes, fold every event in seq order, write it all."""
        b = _Batch()
        handlers = self._handlers
        for e in events:  # check first: an unknown event fails before any I/O
            if type(e) not in handlers:
                raise TypeError(f"the SQL persister has no place for {type(e).__name__}: {e!r}")
        self._read_before(conn, b, events)
        for e in events:
            handlers[type(e)](b, e)
        self._flush(conn, b)

    @staticmethod
    def _read_before(conn: Connection, b: _Batch, events: list[Event]) -> None:
        """Load the rows from earlier batches that this batch changes (one query each)."""
        new_orders = {e.order_id for e in events if isinstance(e, OrderAccepted)}
        new_accounts = {e.account for e in events if isinstance(e, AccountCreated)}
        trade_seqs = {e.seq for e in events if isinstance(e, Trade)}
        order_ids: set[int] = set()
        account_ids: set[int] = set()
        posted: set[int] = set()
        for e in events:
            if isinstance(e, Trade):
                order_ids.add(e.taker_order_id)
                order_ids.add(e.maker_order_id)
            elif isinstance(e, _ORDER_CHANGES):
                order_ids.add(e.order_id)
            elif isinstance(e, KillSwitchSet | MarginCall | MarginRestored):
                account_ids.add(e.account)
            elif isinstance(e, LedgerPosted) and e.kind == "trade" and e.ref not in trade_seqs:
                posted.add(e.ref)
        b.old_orders = _read(conn, orders, orders.c.order_id, order_ids - new_orders)
        b.old_accounts = _read(conn, accounts, accounts.c.account, account_ids - new_accounts)
        todo = sorted(posted)
        for i in range(0, len(todo), _IN_CHUNK):
            q = select(fills).where(fills.c.trade_seq.in_(todo[i : i + _IN_CHUNK]))
            for r in conn.execute(q).mappings():
                b.old_fills.setdefault(r["trade_seq"], []).append(dict(r))

    def _flush(self, conn: Connection, b: _Batch) -> None:
        """One statement per table (executemany), parents before children."""
        self._upsert(conn, currencies, ("code",), list(b.currencies.values()))
        self._upsert(conn, instruments, ("symbol",), list(b.instruments.values()))
        _update_many(
            conn,
            instruments,
            ("symbol",),
            [{"symbol": s, "status": v} for s, v in b.instrument_status.items()],
        )
        if b.new_accounts:
            conn.execute(insert(accounts), list(b.new_accounts.values()))
        _update_many(
            conn,
            accounts,
            ("account",),
            [
                {"account": a, **{c: b.old_accounts[a][c] for c in _ACCOUNT_MUTABLE}}
                for a in sorted(b.dirty_accounts)
            ],
        )
        self._upsert(conn, orders, ("order_id",), list(b.new_orders.values()))
        _update_many(
            conn,
            orders,
            ("order_id",),
            [
                {"order_id": o, **{c: b.old_orders[o][c] for c in _ORDER_MUTABLE}}
                for o in sorted(b.dirty_orders)
            ],
        )
        if b.order_events:
            conn.execute(insert(order_events), b.order_events)
        if b.trades:
            conn.execute(insert(trades), b.trades)
        if b.fills:
            conn.execute(insert(fills), b.fills)
        _update_many(
            conn,
            fills,
            ("trade_seq", "order_id"),
            [{"trade_seq": t, "order_id": o, "fee": f} for (t, o), f in b.fee_updates.items()],
        )
        if b.postings:
            conn.execute(insert(ledger_postings), b.postings)
        if b.entries:
            conn.execute(insert(ledger_entries), b.entries)
        self._upsert(conn, positions, ("account", "symbol"), list(b.positions.values()))
        if b.risk_events:
            conn.execute(insert(risk_events), b.risk_events)

    def _upsert(
        self, conn: Connection, table: Table, keys: tuple[str, ...], rows: list[Row]
    ) -> None:
        if not rows:
            return
        stmt = self._insert(table)
        cols = [c for c in rows[0] if c not in keys]
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c[k] for k in keys],
            set_={c: stmt.excluded[c] for c in cols},
        )
        conn.execute(stmt, rows)

    # -- one handler per event type ------------------------------------------------------

    @staticmethod
    def _order_event(b: _Batch, e: Any) -> None:
        b.order_events.append(
            {
                "seq": e.seq,
                "order_id": e.order_id,
                "kind": e.__struct_config__.tag,
                "ts": e.ts,
                "payload": _payload(e),
            }
        )

    @staticmethod
    def _risk_row(b: _Batch, e: Any) -> None:
        b.risk_events.append(
            {
                "seq": e.seq,
                "ts": e.ts,
                "kind": RISK_KINDS[type(e)],
                "account": getattr(e, "account", None),
                "symbol": getattr(e, "symbol", None),
                "payload": _payload(e),
            }
        )

    def _instrument_added(self, b: _Batch, e: InstrumentAdded) -> None:
        b.instruments[e.symbol] = {
            "symbol": e.symbol,
            "tick_size": e.tick_size,
            "lot_size": e.lot_size,
            "price_scale": e.price_scale,
            "qty_scale": e.qty_scale,
            "status": int(TradingStatus.OPEN),
        }

    def _trading_status(self, b: _Batch, e: TradingStatusChanged) -> None:
        row = b.instruments.get(e.symbol)
        if row is not None:
            row["status"] = e.status
        else:
            b.instrument_status[e.symbol] = e.status

    def _accepted(self, b: _Batch, e: OrderAccepted) -> None:
        b.new_orders[e.order_id] = {
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
            "client_order_id": e.client_order_id,
            "protect_price": e.protect_price,
        }
        self._order_event(b, e)

    def _order_changed(
        self, b: _Batch, e: OrderCancelled | OrderExpired | OrderReplaced | OrderTriggered
    ) -> None:
        row = b.order(e.order_id)
        if row is not None:
            row["updated_seq"] = e.seq
            if isinstance(e, OrderCancelled):
                row["status"] = CANCELLED
            elif isinstance(e, OrderExpired):
                row["status"] = EXPIRED
            elif isinstance(e, OrderReplaced):
                row["price"] = e.price
                row["stop_price"] = e.stop_price
                row["qty"] = row["filled"] + e.qty
                row["status"] = REPLACED
        self._order_event(b, e)

    def _stop_moved(self, b: _Batch, e: StopMoved) -> None:
        row = b.order(e.order_id)
        if row is not None:
            row["stop_price"] = e.stop_price
            row["updated_seq"] = e.seq
        self._risk_row(b, e)

    def _rejected(self, b: _Batch, e: Rejected) -> None:
        if e.order_id:
            self._order_event(b, e)
        else:
            self._risk_row(b, e)

    def _trade(self, b: _Batch, e: Trade) -> None:
        b.trades.append(
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
        maker_side = 3 - e.taker_side  # Side.BUY = 1, Side.SELL = 2
        sides = b.trade_fills[e.seq] = []
        for oid, account, side, liquidity, remaining in (
            (e.taker_order_id, e.taker_account, e.taker_side, "taker", e.taker_remaining),
            (e.maker_order_id, e.maker_account, maker_side, "maker", e.maker_remaining),
        ):
            fill = {
                "trade_seq": e.seq,
                "order_id": oid,
                "ts": e.ts,
                "account": account,
                "symbol": e.symbol,
                "side": side,
                "price": e.price,
                "qty": e.qty,
                "liquidity": liquidity,
                "fee": 0,
            }
            sides.append(fill)
            b.fills.append(fill)
            row = b.order(oid)
            if row is not None:
                row["filled"] = row["qty"] - remaining
                row["status"] = FILLED if remaining == 0 else PARTIALLY_FILLED
                row["updated_seq"] = e.seq

    def _currency(self, b: _Batch, e: CurrencyAdded) -> None:
        b.currencies[e.code] = {"code": e.code, "scale": e.scale}

    def _account_created(self, b: _Batch, e: AccountCreated) -> None:
        b.new_accounts[e.account] = {
            "account": e.account,
            "kind": e.kind,
            "currency": e.currency,
            "venue": e.venue,
            "killed": False,
            "margin_status": MARGIN_OK,
            "created_seq": e.seq,
            "updated_seq": e.seq,
        }

    def _posted(self, b: _Batch, e: LedgerPosted) -> None:
        b.postings.append(
            {"posting": e.posting, "seq": e.seq, "ts": e.ts, "kind": e.kind, "ref": e.ref}
        )
        b.entries.extend(
            {
                "posting": e.posting,
                "idx": i,
                "account": x.account,
                "asset": x.asset,
                "amount": x.amount,
            }
            for i, x in enumerate(e.entries)
        )
        if e.kind != "trade":
            return
        fees = fees_of(e.entries)
        if not fees:
            return
        new = b.trade_fills.get(e.ref)  # the trade is in this batch, or stored already
        for row, due in _charge(b.old_fills.get(e.ref, []) if new is None else new, fees):
            if new is None:
                b.fee_updates[(row["trade_seq"], row["order_id"])] = due
            else:
                row["fee"] = due

    def _position(self, b: _Batch, e: PositionChanged) -> None:
        b.positions[(e.account, e.symbol)] = {
            "account": e.account,
            "symbol": e.symbol,
            "qty": e.qty,
            "cost": e.cost,
            "realized": e.realized,
            "updated_seq": e.seq,
        }

    def _risk_event(self, b: _Batch, e: Any) -> None:
        if isinstance(e, KillSwitchSet | MarginCall | MarginRestored):
            row = b.account(e.account)  # account 0 (the platform's switch) has no row
            if row is not None:
                if isinstance(e, KillSwitchSet):
                    row["killed"] = e.on
                else:
                    row["margin_status"] = MARGIN_CALL if isinstance(e, MarginCall) else MARGIN_OK
                row["updated_seq"] = e.seq
        self._risk_row(b, e)


def _ignore(b: _Batch, e: Event) -> None:
    """Market data (``BookDelta``, ``AuctionIndicative``): not stored."""


def _charge(rows: list[Row], fees: dict[int, int]) -> list[tuple[Row, int]]:
    """Each fill in ``rows`` (one trade's) whose account paid a fee, with that fee.

    ``fees_of`` merges fees by account, so when one account is on both sides its whole fee
    goes to the taker's fill (and the maker's keeps 0).
    """
    due = dict(fees)
    out = []
    for row in sorted(rows, key=lambda r: r["liquidity"] != "taker"):  # the taker first
        fee = due.pop(row["account"], None)
        if fee is not None:
            out.append((row, fee))
    return out

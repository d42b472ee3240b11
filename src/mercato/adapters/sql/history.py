"""Reading history back from the SQL store: orders (as the OMS projection stored them),
fills, the trade tape and bars, newest first and paged.

The persister (``SqlPersister``) is the only writer; ``SqlHistory`` only reads, from any
thread (SQLAlchemy's pool gives each thread its own connection). Every page query takes a
``before`` key (exclusive; None: from the newest) and an ``upto`` bound (inclusive: rows
changed at or before that event seq, the part of history that memory no longer answers
for), and returns at most ``limit`` rows in the order the API shows them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Final

from sqlalchemy import Engine, and_, create_engine, func, or_, select

from mercato.adapters.sql.schema import (
    accounts,
    fills,
    ledger_balances,
    ledger_entries,
    ledger_postings,
    order_events,
    order_views,
    orders,
    trades,
)
from mercato.adapters.sql.urls import sqlalchemy_url
from mercato.domain.ledger import PAPER
from mercato.domain.orders import OrderStatus
from mercato.domain.types import OrderType, Side, TimeInForce, Venue

_REJECTED: Final = int(OrderStatus.REJECTED)
_IN_CHUNK: Final = 500

Row = dict[str, Any]
Bucket = tuple[int, ...]  # start, open, high, low, close, volume, trades[, notional]
"""One bar from the trades table: (start, open, high, low, close, volume, trades)."""


class SqlHistory:
    """Read-only queries over the persister's tables at ``url`` (already migrated)."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(sqlalchemy_url(url))

    def close(self) -> None:
        self.engine.dispose()

    # -- orders --------------------------------------------------------------------------

    def view(self, order_id: int) -> bytes | None:
        q = select(order_views.c.view).where(order_views.c.order_id == order_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else bytes(row[0])

    def views(self, order_ids: Iterable[int]) -> dict[int, bytes]:
        """The stored views of ``order_ids``, by id (those that have one)."""
        todo = list(order_ids)
        out: dict[int, bytes] = {}
        c = order_views.c
        with self.engine.connect() as conn:
            for i in range(0, len(todo), _IN_CHUNK):
                q = select(c.order_id, c.view).where(c.order_id.in_(todo[i : i + _IN_CHUNK]))
                out.update((int(r[0]), bytes(r[1])) for r in conn.execute(q))
        return out

    def view_by_client(self, account: int, client_order_id: str) -> bytes | None:
        """The newest order (not a rejected one) that ``account`` named ``client_order_id``."""
        c = order_views.c
        q = (
            select(c.view)
            .where(
                c.account == account,
                c.client_order_id == client_order_id,
                c.status != _REJECTED,
            )
            .order_by(c.created_seq.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else bytes(row[0])

    def views_page(
        self,
        accounts: Collection[int],
        *,
        symbol: str | None,
        statuses: Collection[int] | None,
        before: tuple[int, int] | None,
        upto: int | None,
        limit: int,
    ) -> list[tuple[int, int, bytes]]:
        """(updated_seq, order_id, view) of ``accounts``' orders, most recently changed
        first (ties: the higher order id first), keyed below ``before``."""
        c = order_views.c
        q = select(c.updated_seq, c.order_id, c.view).where(c.account.in_(list(accounts)))
        if symbol is not None:
            q = q.where(c.symbol == symbol)
        if statuses is not None:
            q = q.where(c.status.in_(sorted(statuses)))
        if upto is not None:
            q = q.where(c.updated_seq <= upto)
        if before is not None:
            seq, oid = before
            q = q.where(or_(c.updated_seq < seq, and_(c.updated_seq == seq, c.order_id < oid)))
        q = q.order_by(c.updated_seq.desc(), c.order_id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [(int(r[0]), int(r[1]), bytes(r[2])) for r in conn.execute(q)]

    # -- fills and trades ----------------------------------------------------------------

    def fills_page(
        self,
        accounts: Collection[int],
        *,
        symbol: str | None,
        before: int | None,
        upto: int | None,
        limit: int,
    ) -> list[Row]:
        """``accounts``' fills, newest trade first (a trade's maker side before its
        taker's, as memory lists them), with trade seq below ``before``."""
        c = fills.c
        q = select(fills).where(c.account.in_(list(accounts)), c.account != PAPER)
        if symbol is not None:
            q = q.where(c.symbol == symbol)
        if upto is not None:
            q = q.where(c.trade_seq <= upto)
        if before is not None:
            q = q.where(c.trade_seq < before)
        q = q.order_by(c.trade_seq.desc(), c.liquidity.asc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def transfers_page(
        self, accounts: Collection[int], *, before: int | None, upto: int | None, limit: int
    ) -> list[Row]:
        """``accounts``' deposits and withdrawals (cash or an instrument), newest first,
        with event seq below ``before``: seq, ts, account, asset, amount (+ in, - out)."""
        p, e = ledger_postings.c, ledger_entries.c
        q = (
            select(p.seq, p.ts, e.account, e.asset, e.amount)
            .select_from(ledger_postings.join(ledger_entries, e.posting == p.posting))
            .where(p.kind.in_(("deposit", "withdrawal")), e.account.in_(list(accounts)))
        )
        if upto is not None:
            q = q.where(p.seq <= upto)
        if before is not None:
            q = q.where(p.seq < before)
        q = q.order_by(p.seq.desc(), e.account.asc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def ledger_history(
        self, account: int, *, before_ts: int, limit: int
    ) -> tuple[dict[str, int], list[tuple[int, str, int, bool]]]:
        """``account``'s ledger as the store has it: the balances retention folded away
        (per asset), and every remaining entry before ``before_ts`` in seq order as
        (ts, asset, amount, a transfer: deposit or withdrawal) — at most ``limit`` (one
        more: the caller says it is too many)."""
        b, p, e = ledger_balances.c, ledger_postings.c, ledger_entries.c
        q = (
            select(p.ts, e.asset, e.amount, p.kind)
            .select_from(ledger_postings.join(ledger_entries, e.posting == p.posting))
            .where(e.account == account, p.ts < before_ts)
            .order_by(p.seq.asc(), e.idx.asc())
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            folded = {
                str(r[0]): int(r[1])
                for r in conn.execute(select(b.asset, b.amount).where(b.account == account))
            }
            rows = [
                (int(r[0]), str(r[1]), int(r[2]), r[3] in ("deposit", "withdrawal"))
                for r in conn.execute(q)
            ]
        return folded, rows

    def trades_after(self, seq: int, limit: int) -> list[tuple[int, int, str, int, int, int]]:
        """Market trades (every symbol) with seq above ``seq``, oldest first: (seq, ts,
        symbol, price, qty, taker side), at most ``limit``."""
        c = trades.c
        q = (
            select(c.seq, c.ts, c.symbol, c.price, c.qty, c.taker_side)
            .where(c.seq > seq, c.maker_account > 0)
            .order_by(c.seq.asc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                (int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5]))
                for r in conn.execute(q)
            ]

    def trades_page(self, symbol: str, *, before: int | None, limit: int) -> list[Row]:
        """``symbol``'s market trades (paper fills are not market data), newest first."""
        c = trades.c
        q = select(trades).where(c.symbol == symbol, c.maker_account > 0)
        if before is not None:
            q = q.where(c.seq < before)
        q = q.order_by(c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def quote_changed(self, symbol: str, bid: int, ask: int) -> int | None:
        """When ``symbol``'s top of book (now ``bid`` / ``ask``; 0: an empty side) last
        changed, as far as the store can tell: the newest market trade (every trade takes
        from the top), and the newest event (accepted, triggered, replaced, cancelled,
        expired) of a resting order of our own book priced at or better than the top
        now, which is what any change to the top since has to be. None: neither."""
        t, o, e = trades.c, orders.c, order_events.c
        newest = select(func.max(t.ts)).where(t.symbol == symbol, t.maker_account > 0)
        rests = or_(
            and_(o.type == OrderType.LIMIT, e.kind != "tg"),
            and_(o.type == OrderType.STOP_LIMIT, e.kind != "ac"),  # not in the book before
        )
        at_top = or_(
            and_(o.side == Side.BUY, o.price >= bid),
            and_(o.side == Side.SELL, o.price <= ask) if ask else o.side == Side.SELL,
        )
        changed = (
            select(func.max(e.ts))
            .select_from(
                order_events.join(orders, o.order_id == e.order_id).join(
                    accounts, accounts.c.account == o.account
                )
            )
            .where(
                o.symbol == symbol,
                accounts.c.venue == Venue.INTERNAL,
                o.tif.not_in((TimeInForce.IOC, TimeInForce.FOK)),
                e.kind.in_(("ac", "tg", "rp", "cx", "ex")),
                rests,
                at_top,
            )
        )
        with self.engine.connect() as conn:
            found = [conn.execute(q).scalar() for q in (newest, changed)]
        values = [int(v) for v in found if v is not None]
        return max(values) if values else None

    def symbols(self) -> list[str]:
        """The symbols that have market trades."""
        q = select(trades.c.symbol).where(trades.c.maker_account > 0).distinct()
        with self.engine.connect() as conn:
            return sorted(str(r[0]) for r in conn.execute(q))

    def first_ts(self, symbol: str) -> int | None:
        """The time of ``symbol``'s first market trade (None: it has none)."""
        c = trades.c
        q = select(func.min(c.ts)).where(c.symbol == symbol, c.maker_account > 0)
        with self.engine.connect() as conn:
            value = conn.execute(q).scalar()
        return None if value is None else int(value)

    def bars(
        self,
        symbol: str,
        interval: int,
        limit: int,
        since: int | None = None,
        before: int | None = None,
        oldest: bool = False,
        notional: bool = False,
    ) -> list[Bucket]:
        """The newest ``limit`` bars of ``symbol``'s market trades at ``interval`` (ns)
        (``oldest``: the oldest), oldest first, of trades at or after ``since`` and before
        ``before`` only (give bar starts to have whole bars): open and close are the
        first and last trade by seq (the order they happened), as the bar builder has
        them. ``notional``: each bucket ends with its sum of price x qty besides."""
        c = trades.c
        start = (c.ts - c.ts % interval).label("start")
        cond = [c.symbol == symbol, c.maker_account > 0]
        if since is not None:
            cond.append(c.ts >= since)
        if before is not None:
            cond.append(c.ts < before)
        q = (
            select(
                start,
                func.min(c.seq),
                func.max(c.price),
                func.min(c.price),
                func.max(c.seq),
                func.sum(c.qty),
                func.count(),
                *([func.sum(c.price * c.qty)] if notional else []),
            )
            .where(*cond)
            .group_by(start)
            .order_by(start.asc() if oldest else start.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = [tuple(int(x) for x in r) for r in conn.execute(q)]
            seqs = {s for r in rows for s in (r[1], r[4])}
            price: dict[int, int] = {}
            todo = sorted(seqs)
            for i in range(0, len(todo), _IN_CHUNK):
                pq = select(c.seq, c.price).where(c.seq.in_(todo[i : i + _IN_CHUNK]))
                price.update((int(r[0]), int(r[1])) for r in conn.execute(pq))
        return [
            (st, price[first], high, low, price[last], *rest)
            for st, first, high, low, last, *rest in (rows if oldest else reversed(rows))
        ]

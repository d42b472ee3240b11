"""Retention of the SQL store: finished history older than a duration of core time is
deleted, in small batches, oldest first, so the store's size is bounded for a given
retention (issue 11; the rules are in ``docs/persister.md``, "Retention").

Age is measured in the core's own time, never the deleting process's clock, so the same
store prunes the same way wherever and whenever it runs: ``seq_clock`` (written by the
persister with each batch) says, for each second of core time, the newest event seq by
its end. The *horizon* is the newest seq whose whole past is older than ``now - keep``,
where ``now`` is the newest second in ``seq_clock``. Then, for each table:

- ``order_views`` and ``orders``: an order whose last change is at or below the horizon and
  whose status is final (filled, cancelled, expired, rejected) in both tables, and whose
  linked orders (bracket, OCO: ``OrderView.group``) are all final and as old or gone.
  A live order (accepted, partially filled, replaced, an untriggered stop, a held leg's
  parent) is never deleted, however old.
- ``order_events``, ``fills``: rows at or below the horizon whose order has no view left
  (it was deleted, or never had one): a kept order keeps all its events and fills.
- ``trades``, ``risk_events``: rows at or below the horizon (the tape and the risk log).
- ``ledger_postings`` / ``ledger_entries``: postings at or below the horizon are folded
  into ``ledger_balances`` (per account and asset) in the transaction that deletes them,
  so ``ledger_balances.amount + sum(ledger_entries.amount)`` stays every balance and
  every asset still sums to zero over the accounts.
- ``seq_clock``: the seconds before the horizon's own.
- Kept whatever their age: instruments, currencies, accounts, positions (one row per key,
  replaced in place), ``persister_state``, ``replica_state``.

Each batch is one short transaction (``batch_rows`` rows), so the persister and the API's
readers wait at most one batch for the database. Deleted history is gone for good: the
API answers 404 for it, and its keyset page tokens keep working over what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from mercato.adapters.sql.persister import SECOND
from mercato.adapters.sql.schema import (
    fills,
    ledger_balances,
    ledger_entries,
    ledger_postings,
    order_events,
    order_views,
    orders,
    risk_events,
    seq_clock,
    trades,
)
from mercato.domain.orders import FINAL

_FINAL: Final = sorted(int(s) for s in FINAL)


class _Group(msgspec.Struct):
    order_ids: tuple[int, ...]


class _Linked(msgspec.Struct):
    """The one field of a stored ``OrderView`` that retention reads (its links)."""

    order_id: int
    group: _Group | None = None


_linked = msgspec.msgpack.Decoder(_Linked)  # (an OrderView is a MessagePack map)


@dataclass
class Pruned:
    """What one ``prune`` deleted, by table, and the horizon it pruned to."""

    horizon: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    done: bool = True  # False: it stopped at ``max_batches``; the next call goes on

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class SqlRetention:
    """Deletes the store's history older than ``keep_ns`` of core time (``prune``).

    Blocking; run it on the persister's thread, between two of its batches (one writer).
    """

    def __init__(self, engine: Engine, keep_ns: int, *, batch_rows: int = 1_000) -> None:
        if keep_ns < 0:
            raise ValueError("the retention must not be negative")
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        self.engine = engine
        self.keep_ns = keep_ns
        self.batch_rows = batch_rows
        dialect = engine.dialect.name
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._steps: list[tuple[str, Callable[[Connection, int, Any], tuple[int, Any]]]] = [
            ("order_views", self._orders),
            ("order_events", self._order_events),
            ("fills", self._fills),
            ("trades", self._by_seq(trades)),
            ("risk_events", self._by_seq(risk_events)),
            ("ledger_postings", self._ledger),
        ]
        self._cursor: tuple[int, Any] = (0, None)  # (step, key) where the next call goes on

    def horizon(self) -> int:
        """The newest event seq whose event and every earlier one are older than the
        retention (0: none is)."""
        c = seq_clock.c
        with self.engine.connect() as conn:
            newest = conn.execute(select(func.max(c.second))).scalar()
            if newest is None:
                return 0
            # the clock's newest second started at newest * SECOND: "now", to the second
            cutoff = int(newest) * SECOND - self.keep_ns
            # a row (s, q) bounds the ts of every event up to q by (s + 1) * SECOND
            last = cutoff // SECOND - 1
            q = select(c.seq).where(c.second <= last).order_by(c.second.desc()).limit(1)
            seq = conn.execute(q).scalar()
        return 0 if seq is None else int(seq)

    def prune(self, max_batches: int | None = None) -> Pruned:
        """Delete what the rules allow, oldest first, ``batch_rows`` per transaction; stop
        after ``max_batches`` transactions (None: when nothing is left). A call that
        stopped early is resumed by the next one where it stopped (table and key), so
        every table gets its turn however small the rounds."""
        out = Pruned(horizon=self.horizon())
        if out.horizon <= 0:
            return out
        steps = self._steps
        batches = 0
        index, after = self._cursor
        while index < len(steps):
            name, step = steps[index]
            if max_batches is not None and batches >= max_batches:
                self._cursor = (index, after)
                out.done = False
                return out
            with self.engine.begin() as conn:
                n, after = step(conn, out.horizon, after)
            batches += 1
            if n:
                out.rows[name] = out.rows.get(name, 0) + n
            if after is None:
                index += 1
        self._cursor = (0, None)
        with self.engine.begin() as conn:
            c = seq_clock.c
            keep = select(func.max(c.second)).where(c.seq <= out.horizon).scalar_subquery()
            n = conn.execute(delete(seq_clock).where(c.second < keep)).rowcount
            if n:
                out.rows["seq_clock"] = n
        return out

    # -- one batch of one table: (rows deleted, where the next batch starts or None) ----

    def _orders(self, conn: Connection, horizon: int, after: Any) -> tuple[int, Any]:
        """Final orders at or below the horizon whose linked orders are final and as old
        (or gone): their views and rows."""
        v = order_views.c
        q = select(v.order_id, v.updated_seq, v.view).where(
            v.updated_seq <= horizon, v.status.in_(_FINAL)
        )
        if after is not None:
            seq, oid = after
            q = q.where(or_(v.updated_seq > seq, and_(v.updated_seq == seq, v.order_id > oid)))
        rows = conn.execute(q.order_by(v.updated_seq, v.order_id).limit(self.batch_rows)).all()
        if not rows:
            return 0, None
        ids = [int(r[0]) for r in rows]
        live = {  # the orders table must agree that they are over
            int(r[0])
            for r in conn.execute(
                select(orders.c.order_id).where(
                    orders.c.order_id.in_(ids), orders.c.status.not_in(_FINAL)
                )
            )
        }
        links = {int(r[0]): _linked.decode(r[2]).group for r in rows}
        old = set(ids) - live
        others = {o for g in links.values() if g is not None for o in g.order_ids} - set(ids)
        if others:  # linked orders outside this batch: final and as old, or deleted
            todo = sorted(others)
            q2 = select(v.order_id, v.updated_seq <= horizon, v.status.in_(_FINAL))
            seen = {
                int(r[0]): bool(r[1] and r[2]) for r in conn.execute(q2.where(v.order_id.in_(todo)))
            }
            old.update(o for o in others if seen.get(o, True))
        gone = [
            oid for oid in ids if oid in old and all(o in old for o in _members(links[oid], oid))
        ]
        if gone:
            conn.execute(delete(order_views).where(v.order_id.in_(gone)))
            conn.execute(delete(orders).where(orders.c.order_id.in_(gone)))
        nxt = (int(rows[-1][1]), int(rows[-1][0])) if len(rows) == self.batch_rows else None
        return len(gone), nxt

    def _order_events(self, conn: Connection, horizon: int, after: Any) -> tuple[int, Any]:
        e, v = order_events.c, order_views.c
        q = select(e.seq).where(e.seq <= horizon, ~exists().where(v.order_id == e.order_id))
        if after is not None:
            q = q.where(e.seq > after)
        seqs = [int(r[0]) for r in conn.execute(q.order_by(e.seq).limit(self.batch_rows))]
        if seqs:
            conn.execute(delete(order_events).where(e.seq.in_(seqs)))
        return len(seqs), seqs[-1] if len(seqs) == self.batch_rows else None

    def _fills(self, conn: Connection, horizon: int, after: Any) -> tuple[int, Any]:
        f, v = fills.c, order_views.c
        q = select(f.trade_seq, f.order_id).where(
            f.trade_seq <= horizon, ~exists().where(v.order_id == f.order_id)
        )
        if after is not None:
            seq, oid = after
            q = q.where(or_(f.trade_seq > seq, and_(f.trade_seq == seq, f.order_id > oid)))
        keys = conn.execute(q.order_by(f.trade_seq, f.order_id).limit(self.batch_rows)).all()
        if keys:
            stmt = delete(fills).where(f.trade_seq == bindparam("t"), f.order_id == bindparam("o"))
            conn.execute(stmt, [{"t": int(t), "o": int(o)} for t, o in keys])
        nxt = (int(keys[-1][0]), int(keys[-1][1])) if len(keys) == self.batch_rows else None
        return len(keys), nxt

    def _by_seq(self, table: Any) -> Callable[[Connection, int, Any], tuple[int, Any]]:
        def step(conn: Connection, horizon: int, after: Any) -> tuple[int, Any]:
            c = table.c
            q = select(c.seq).where(c.seq <= horizon).order_by(c.seq).limit(self.batch_rows)
            seqs = [int(r[0]) for r in conn.execute(q)]
            if seqs:
                conn.execute(delete(table).where(c.seq.in_(seqs)))
            return len(seqs), True if len(seqs) == self.batch_rows else None

        return step

    def _ledger(self, conn: Connection, horizon: int, after: Any) -> tuple[int, Any]:
        """The oldest postings at or below the horizon, folded into ``ledger_balances``.
        Postings are numbered in seq order, so the oldest are the lowest numbers."""
        p, e = ledger_postings.c, ledger_entries.c
        q = select(p.posting, p.seq).order_by(p.posting).limit(self.batch_rows)
        rows = conn.execute(q).all()
        todo = [int(r[0]) for r in rows if r[1] <= horizon]
        if not todo:
            return 0, None
        through = max(int(r[1]) for r in rows if r[1] <= horizon)
        sums = conn.execute(
            select(e.account, e.asset, func.sum(e.amount))
            .where(e.posting.in_(todo))
            .group_by(e.account, e.asset)
        ).all()
        if sums:
            stmt = self._insert(ledger_balances)
            b = ledger_balances.c
            stmt = stmt.on_conflict_do_update(
                index_elements=[b.account, b.asset],
                set_={
                    "amount": b.amount + stmt.excluded.amount,
                    "through_seq": stmt.excluded.through_seq,
                },
            )
            conn.execute(
                stmt,
                [
                    {"account": a, "asset": s, "amount": int(n), "through_seq": through}
                    for a, s, n in sums
                ],
            )
        conn.execute(delete(ledger_entries).where(e.posting.in_(todo)))
        conn.execute(delete(ledger_postings).where(p.posting.in_(todo)))
        more = len(todo) == len(rows) == self.batch_rows
        return len(todo), True if more else None


def _members(group: _Group | None, order_id: int) -> tuple[int, ...]:
    return (order_id,) if group is None else group.order_ids


def balances(engine: Engine) -> dict[tuple[int, str], int]:
    """Every (account, asset) balance the store's ledger gives: the compacted part plus
    the remaining entries (what holds before and after any ``prune``)."""
    out: dict[tuple[int, str], int] = {}
    e, b = ledger_entries.c, ledger_balances.c
    with engine.connect() as conn:
        for a, s, n in conn.execute(select(b.account, b.asset, b.amount)):
            out[(int(a), str(s))] = int(n)
        q = select(e.account, e.asset, func.sum(e.amount)).group_by(e.account, e.asset)
        for a, s, n in conn.execute(q):
            out[(int(a), str(s))] = out.get((int(a), str(s)), 0) + int(n)
    return out

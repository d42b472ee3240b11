"""The history the API answers from: the OMS projection's window in memory first, then the
SQL store for what the window no longer holds (``docs/persister.md``).

Memory (``OrderHistory``) holds every live order, the newest finished orders and the newest
fills; ``memory.horizon`` says up to which event seq it may be missing orders (evicted, or
from before a restart), ``memory.fills_horizon`` the same for fills. Above a horizon memory
alone answers; at or below it the store does, and a page merges both. An order just
acknowledged is in memory at once (read-your-writes); the store follows within the
persister's lag, and only ever for the part below the horizon, which is already in it
(a restart first catches the store up with the journal).

SQL is read off the event loop (``asyncio.to_thread``); memory answers without an await
when it holds the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from mercato.adapters.sql.history import Bucket, SqlHistory
from mercato.marketdata.bars import INTERVALS, Bar
from mercato.marketdata.events import MdQuote, MdTrade
from mercato.services.marketdata import MarketData
from mercato.services.oms import MAKER, OrderHistory
from mercato.services.oms_views import FillView, OrderView, decode_view
from mercato.services.transfers import Transfer, TransferLog

_REFILLS: Final = 4  # at most this many extra store reads to fill one page


CATCH_UP: Final = 2.0  # seconds a query waits for the persister before StoreBehind


class PageTokenError(ValueError):
    """A page token that no page of this kind gave."""


class StoreBehind(RuntimeError):
    """The store does not hold yet what a query needs of it (the persister lags further
    behind than market data's memory reaches back): asked again later, it will."""


def order_token(v: OrderView) -> str:
    return f"{v.updated_seq}.{v.order_id}"


def parse_order_token(token: str | None) -> tuple[int, int] | None:
    if token is None:
        return None
    seq, dot, oid = token.partition(".")
    if not (dot and seq.isdigit() and oid.isdigit() and len(token) <= 41):
        raise PageTokenError(f"not a page token of this list: {token[:48]!r}")
    return int(seq), int(oid)


def parse_seq_token(token: str | None) -> int | None:
    if token is None:
        return None
    if not (token.isdigit() and len(token) <= 20):
        raise PageTokenError(f"not a page token of this list: {token[:48]!r}")
    return int(token)


class History:
    """Orders, fills and the trade tape: ``memory`` first, then ``store`` (None: memory
    only, e.g. a platform without a data directory)."""

    def __init__(
        self,
        memory: OrderHistory,
        store: SqlHistory | None = None,
        transfers: TransferLog | None = None,
    ) -> None:
        self.memory = memory
        self.store = store
        self.transfers_log = transfers if transfers is not None else TransferLog()

    # -- one order -----------------------------------------------------------------------

    async def order(self, order_id: int) -> OrderView | None:
        v = self.memory.order(order_id)
        if v is not None or self.store is None:
            return v
        blob = await asyncio.to_thread(self.store.view, order_id)
        return None if blob is None else decode_view(blob)

    async def by_client_id(self, account: int, client_order_id: str) -> OrderView | None:
        v = self.memory.by_client_id(account, client_order_id)
        if v is not None or self.store is None:
            return v
        blob = await asyncio.to_thread(self.store.view_by_client, account, client_order_id)
        if blob is None:
            return None
        stored = decode_view(blob)
        return self.memory.order(stored.order_id) or stored

    # -- pages ---------------------------------------------------------------------------

    async def orders(
        self,
        accounts: Sequence[int],
        *,
        symbol: str | None = None,
        statuses: Collection[int] | None = None,
        before: tuple[int, int] | None = None,
        limit: int = 100,
    ) -> tuple[list[OrderView], str | None]:
        """``accounts``' orders, most recently changed first (ties: the higher id first),
        and the token of the next page (a full page has one; None: the last page)."""
        memory, store = self.memory, self.store
        horizon = memory.horizon if store is not None else None
        found: dict[int, OrderView] = {}
        for account in accounts:
            for v in memory.orders(
                account=account,
                symbol=symbol,
                status=statuses,  # type: ignore[arg-type]
                since_seq=horizon,
                limit=limit,
                before=before,
            ):
                found[v.order_id] = v
        if store is not None and accounts:
            key = before
            for _ in range(_REFILLS + 1):
                rows = await asyncio.to_thread(
                    store.views_page,
                    accounts,
                    symbol=symbol,
                    statuses=statuses,
                    before=key,
                    upto=horizon,
                    limit=limit,
                )
                for _seq, oid, blob in rows:
                    if oid in found:
                        continue
                    kept = memory.order(oid)
                    if kept is None:
                        found[oid] = decode_view(blob)
                    elif kept.updated_seq <= memory.horizon:
                        found[oid] = kept  # the same order; memory's copy is as new
                    # (else memory has a newer change: its first part answered for it)
                if len(rows) < limit or len(found) >= limit:
                    break
                key = (rows[-1][0], rows[-1][1])
        out = sorted(found.values(), key=lambda v: (v.updated_seq, v.order_id), reverse=True)
        out = out[:limit]
        return out, order_token(out[-1]) if len(out) == limit else None

    async def fills(
        self,
        accounts: Sequence[int],
        *,
        symbol: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> tuple[list[FillView], str | None]:
        """``accounts``' fills, newest trade first, and the next page's token. A page
        never splits a trade's fills (it may then hold one more than ``limit``)."""
        memory, store = self.memory, self.store
        horizon = memory.fills_horizon if store is not None else None
        out: list[FillView] = []
        for account in accounts:
            out.extend(
                memory.fills(
                    account=account, symbol=symbol, since_seq=horizon, limit=limit, before=before
                )
            )
        if store is not None and accounts:
            rows = await asyncio.to_thread(
                store.fills_page, accounts, symbol=symbol, before=before, upto=horizon, limit=limit
            )
            out.extend(
                FillView(
                    r["trade_seq"],
                    r["ts"],
                    r["order_id"],
                    r["account"],
                    r["symbol"],
                    r["side"],
                    r["price"],
                    r["qty"],
                    r["liquidity"],
                    r["fee"],
                )
                for r in rows
            )
        out.sort(key=lambda f: (f.seq, f.liquidity == MAKER), reverse=True)
        if len(out) < limit:
            return out, None
        end = limit
        while end < len(out) and out[end].seq == out[limit - 1].seq:
            end += 1
        out = out[:end]
        return out, str(out[-1].seq)

    async def transfers(
        self, accounts: Sequence[int], *, before: int | None = None, limit: int = 100
    ) -> list[Transfer]:
        """``accounts``' deposits and withdrawals, newest first, seq below ``before``, at
        most ``limit`` (memory above its horizon, then the store)."""
        log = self.transfers_log
        out = log.page(accounts, before, limit)
        if self.store is not None and accounts and len(out) < limit:
            rows = await asyncio.to_thread(
                self.store.transfers_page,
                accounts,
                before=before,
                upto=log.horizon,
                limit=limit - len(out),
            )
            out.extend(
                Transfer(r["seq"], r["ts"], r["account"], r["asset"], r["amount"]) for r in rows
            )
        return out

    async def trades_before(
        self, symbol: str, before: int | None, limit: int, held: int | None = None
    ) -> list[MdTrade]:
        """The store's market trades of ``symbol`` with seq below ``before``, newest first
        (the tape's older part, that market data's memory no longer holds). ``held``: the
        seq of the oldest trade memory holds; the store is waited for until it has that
        one (so it has every trade before it), ``StoreBehind`` after ``CATCH_UP``."""
        if self.store is None or limit <= 0:
            return []
        if held is not None:
            await self._stored_seq(symbol, held)
        rows = await asyncio.to_thread(self.store.trades_page, symbol, before=before, limit=limit)
        return [
            MdTrade(r["symbol"], r["ts"], r["seq"], r["price"], r["qty"], r["taker_side"])
            for r in rows
        ]

    # -- market data after a restart -----------------------------------------------------

    def restore_market_data(self, md: MarketData) -> None:
        """Give ``md`` (just seeded from the engine's books) each of the engine's
        instruments' quote time (``SqlHistory.quote_changed``), trade tape, bars and
        24-hour statistics back from the store: the
        newest ``md.max_trades`` trades, and each interval's newest ``md.max_bars`` bars
        aggregated from the trades table. Blocking: for start-up."""
        store = self.store
        if store is None:
            return
        for symbol, m in md.markets.items():
            if m.external:
                continue
            q = m.quote  # (seeded from the book, with no time)
            bid, ask = (q.bid if q.bid_qty else 0), (q.ask if q.ask_qty else 0)
            changed = store.quote_changed(symbol, bid, ask)
            if changed is not None:
                m.quote = MdQuote(symbol, changed, q.bid, q.bid_qty, q.ask, q.ask_qty)
            rows = store.trades_page(symbol, before=None, limit=md.max_trades)
            if not rows:
                continue
            tape = [
                MdTrade(r["symbol"], r["ts"], r["seq"], r["price"], r["qty"], r["taker_side"])
                for r in reversed(rows)
            ]
            last = tape[-1].ts + 1
            first = store.first_ts(symbol)
            bars = {
                name: self._stored_bars(symbol, iv, last, md.max_bars, first)
                for name, iv in INTERVALS.items()
            }
            md.restore(symbol, tape, bars)

    def _stored_bars(
        self, symbol: str, interval: int, before: int, limit: int, first: int | None
    ) -> list[Bar]:
        """The store's newest ``limit`` bars of ``symbol`` at ``interval`` of the trades
        before ``before`` (ns), oldest first; ``first``: the time of its first trade.
        Blocking. The bars just before ``before`` are read first (enough when trades are
        dense), and all of the older trades only if that was not enough."""
        store = self.store
        assert store is not None
        floor = before - 1 - (before - 1) % interval  # the start of the bar before
        since = floor - (limit - 1) * interval
        got = store.bars(symbol, interval, limit, since=since, before=before)
        if len(got) < limit and first is not None and first < since:
            got = store.bars(symbol, interval, limit, before=before)  # sparse: further back
        return [Bar(symbol, st, interval, *rest) for st, *rest in got]

    async def bars_before(
        self, symbol: str, interval: int, before: int | None, limit: int
    ) -> list[Bar]:
        """The store's bars of ``symbol`` at ``interval`` (ns) that start before
        ``before`` (a bar start; None: all), the newest ``limit``, oldest first: the bars
        older than market data's memory holds, aggregated from the trades table as at
        start-up (``restore_market_data``)."""
        store = self.store
        if store is None or limit <= 0:
            return []
        first = await asyncio.to_thread(store.first_ts, symbol)
        if first is not None and before is not None and first >= before:
            return []  # nothing older (a young instrument: memory holds all of it)
        last = await self._stored_up_to(symbol, before)
        if last is None:
            return []
        end = before if before is not None else last + 1
        if first is None:
            first = await asyncio.to_thread(store.first_ts, symbol)
        return await asyncio.to_thread(self._stored_bars, symbol, interval, end, limit, first)

    async def bar_buckets(
        self,
        symbol: str,
        interval: int,
        limit: int,
        since: int | None,
        before: int,
        oldest: bool,
        newest: int,
    ) -> list[Bucket]:
        """The store's bars of ``symbol`` at ``interval`` (ns) of the trades from
        ``since`` to before ``before`` (bar starts), the oldest ``limit`` (``oldest``) or
        the newest, oldest first, each with its notional (sum of price x qty) last: for
        the Alpaca bars older than market data's memory. ``newest``: the time of the
        newest trade there is (the store is waited for up to it, or to ``before``)."""
        store = self.store
        if store is None or limit <= 0:
            return []
        if await self._stored_up_to(symbol, min(before, newest)) is None:
            return []
        return await asyncio.to_thread(
            store.bars, symbol, interval, limit, since, before, oldest, True
        )

    async def _stored_seq(self, symbol: str, seq: int) -> None:
        """Return once the store holds ``symbol``'s trades up to seq ``seq``."""
        await self._newest_trade(symbol, lambda row: row is not None and row["seq"] >= seq)

    async def _stored_up_to(self, symbol: str, before: int | None) -> int | None:
        """The time of the store's newest trade of ``symbol`` (None: it has none), once it
        holds every trade before ``before``: once it has one at or after it (trades are
        stored in seq order, which is time order). ``StoreBehind`` if that takes longer
        than ``CATCH_UP``."""
        last = await self._newest_trade(
            symbol, lambda row: before is None or (row is not None and row["ts"] >= before)
        )
        return int(last["ts"]) if last is not None else None

    async def _newest_trade(
        self, symbol: str, ready: Callable[[Mapping[str, Any] | None], bool]
    ) -> Mapping[str, Any] | None:
        """The store's newest trade of ``symbol`` (None: none) once ``ready`` says it is
        recent enough; ``StoreBehind`` if that takes longer than ``CATCH_UP``."""
        assert self.store is not None
        waited = 0.0
        while True:
            rows = await asyncio.to_thread(self.store.trades_page, symbol, before=None, limit=1)
            last = rows[0] if rows else None
            if ready(last):
                return last
            if waited >= CATCH_UP:
                raise StoreBehind(f"the store has not caught up with {symbol}'s trades yet")
            await asyncio.sleep(0.02)  # the persister commits every 50 ms
            waited += 0.02

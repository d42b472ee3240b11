"""The SQL persister's risk-core tables, on SQLite and on PostgreSQL (``MERCATO_PG_DSN``).

A hand-written stream holds every event kind of the risk core (currencies, accounts,
ledger postings, positions, fills and their fees, kill switches, margin calls,
liquidations, limits, linked orders, moved stops, ...). It is written three ways (one
batch, three batches, one event per batch); the three databases must be identical and
hold exactly the rows below, and re-feeding any part of the stream changes nothing.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select, text

from mercato.adapters.sql import SqlPersister, upgrade
from mercato.adapters.sql.migrations import config
from mercato.adapters.sql.schema import TABLES, metadata
from mercato.domain.events import (
    AccountCreated,
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
    OrdersLinked,
    PositionChanged,
    Rejected,
    RiskLimitsSet,
    StopMoved,
    Trade,
    TradingStatusChanged,
)
from mercato.domain.ledger import EXTERNAL, FEES, Entry
from mercato.domain.orders import OrderStatus
from mercato.domain.risk import RiskLimits
from mercato.domain.types import AccountKind, OrderType, Side, TimeInForce, TradingStatus, Venue

from .test_sql_persister import _pg_url

BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT, MARKET, STOP = int(OrderType.LIMIT), int(OrderType.MARKET), int(OrderType.STOP)
GTC = int(TimeInForce.GTC)
S = OrderStatus


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(
    request: pytest.FixtureRequest, tmp_path: Path, require_service: Callable[[str], None]
) -> Iterator[Callable[[], str]]:
    """A factory of empty databases of one backend, all dropped when the test ends."""
    with contextlib.ExitStack() as stack:
        made = iter(range(1_000))

        def make() -> str:
            if request.param == "sqlite":
                return f"sqlite:///{tmp_path / f'db{next(made)}.sqlite'}"
            pg = contextlib.contextmanager(_pg_url)(require_service)
            return stack.enter_context(pg)

        yield make


def _order(seq: int, oid: int, account: int, side: int, qty: int, price: int, **kw: Any) -> Event:
    f: dict[str, Any] = {"type": LIMIT, "stop_price": 0, "client_order_id": "", "protect": 0}
    f.update(kw)
    return OrderAccepted(
        seq,
        seq * 10,
        oid,
        account,
        "XYZ",
        side,
        f["type"],
        GTC,
        price,
        f["stop_price"],
        qty,
        False,
        f["client_order_id"],
        f["protect"],
    )


def _trade_posting(buyer: int, seller: int, qty: int, cash: int) -> tuple[Entry, ...]:
    """The fixed head of a trade posting; the fee pairs follow (``fees_of``)."""
    return (
        Entry(buyer, "XYZ", qty),
        Entry(seller, "XYZ", -qty),
        Entry(buyer, "USD", -cash),
        Entry(seller, "USD", cash),
    )


def _fees(*pairs: tuple[int, int]) -> tuple[Entry, ...]:
    return tuple(
        x for payer, fee in pairs for x in (Entry(payer, "USD", -fee), Entry(FEES, "USD", fee))
    )


def stream() -> list[Event]:
    """Every risk-core event kind, in a plausible order (seq = position + 1)."""
    t1 = _trade_posting(buyer=1, seller=2, qty=3, cash=300) + _fees((1, 2), (2, 1))
    t2 = _trade_posting(buyer=2, seller=3, qty=2, cash=200) + _fees((2, 4))
    # one account on both sides: fees_of merges its two fees, the taker's fill gets them
    t3 = _trade_posting(buyer=1, seller=1, qty=1, cash=100) + _fees((1, 1), (1, 2))
    deposit = (Entry(EXTERNAL, "USD", -10_000), Entry(1, "USD", 10_000))
    return [
        CurrencyAdded(1, 10, "USD", 2),
        InstrumentAdded(2, 20, "XYZ", 1, 1, 2, 0),
        AccountCreated(3, 30, 1, int(AccountKind.CASH), "USD", int(Venue.INTERNAL)),
        AccountCreated(4, 40, 2, int(AccountKind.MARGIN), "USD", int(Venue.INTERNAL)),
        LedgerPosted(5, 50, 1, "deposit", 77, deposit),
        _order(6, 10, 2, SELL, 5, 100, client_order_id="s-1"),
        _order(7, 11, 1, BUY, 3, 100, client_order_id="b-1"),
        Trade(8, 80, "XYZ", 100, 3, 11, 10, 1, 2, BUY, 0, 2),
        LedgerPosted(9, 90, 2, "trade", 8, t1),
        PositionChanged(10, 100, 1, "XYZ", 3, -300, 0),
        PositionChanged(11, 110, 2, "XYZ", -3, 300, 0),
        _order(12, 12, 1, SELL, 3, 0, type=STOP, stop_price=90, protect=85),
        StopMoved(13, 130, 12, 1, "XYZ", 95),
        MarketPriceSet(14, 140, "XYZ", 80),
        MarginCall(15, 150, 2, 50, 100),
        Liquidation(16, 160, 2, 13, "XYZ", BUY, 2, 50, 60),
        AccountCreated(17, 170, 3, int(AccountKind.CASH), "USD", int(Venue.PAPER)),
        _order(18, 14, 3, SELL, 2, 100),
        BookDelta(19, 190, "XYZ", SELL, 100, 4),
        _order(20, 13, 2, BUY, 2, 0, type=MARKET, protect=120),
        Trade(21, 210, "XYZ", 100, 2, 13, 14, 2, 3, BUY, 0, 0),
        LedgerPosted(22, 220, 3, "trade", 21, t2),
        PositionChanged(23, 230, 2, "XYZ", -1, 100, -10),
        MarginRestored(24, 240, 2, 120, 100),
        KillSwitchSet(25, 250, 1, True),
        KillSwitchSet(26, 260, 0, True),
        RiskLimitsSet(27, 270, 1, RiskLimits(max_order_qty=10)),
        RiskLimitsSet(28, 280, 0, None),
        InstrumentRiskSet(29, 290, "XYZ", 1, 2, 10_000, 5_000, 2_500, 100),
        DuplicateClientOrder(30, 300, 1, "b-1", 11, 99),
        OrdersLinked(31, 310, "oco", 1, "XYZ", (12, 15)),
        Rejected(32, 320, "wd", 0, "", "insufficient_funds", "", 1),
        OrderCancelled(33, 330, 12, 1, "XYZ", 3, "oco"),
        _order(34, 16, 1, SELL, 1, 100),
        _order(35, 17, 1, BUY, 1, 100),
        Trade(36, 360, "XYZ", 100, 1, 17, 16, 1, 1, BUY, 0, 0),
        LedgerPosted(37, 370, 4, "trade", 36, t3),
        TradingStatusChanged(38, 380, "XYZ", int(TradingStatus.HALTED)),
        KillSwitchSet(39, 390, 1, False),
    ]


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for name in TABLES:
                table = metadata.tables[name]
                q = select(table).order_by(*table.primary_key.columns)
                out[name] = [tuple(r) for r in conn.execute(q)]
            return out
    finally:
        engine.dispose()


def _write(url: str, batches: list[list[Event]]) -> dict[str, list[tuple[Any, ...]]]:
    p = SqlPersister(url)
    try:
        for b in batches:
            assert p.write(b) == len(b)
        return _dump(url)
    finally:
        p.close()


def test_every_risk_event_lands_and_batching_changes_nothing(
    fresh_db: Callable[[], str],
) -> None:
    ev = stream()
    assert [e.seq for e in ev] == list(range(1, len(ev) + 1))
    one = fresh_db()
    tables = _write(one, [ev])
    # the same stream in three batches (each trade's posting in the next batch) ...
    cut = [e.seq for e in ev if isinstance(e, Trade)]
    assert _write(fresh_db(), [ev[: cut[0]], ev[cut[0] : cut[2]], ev[cut[2] :]]) == tables
    # ... and one event per batch: every update reaches a row of an earlier batch
    assert _write(fresh_db(), [[e] for e in ev]) == tables

    assert tables["currencies"] == [("USD", 2)]
    assert tables["accounts"] == [
        (1, int(AccountKind.CASH), "USD", int(Venue.INTERNAL), False, "ok", 3, 39),
        (2, int(AccountKind.MARGIN), "USD", int(Venue.INTERNAL), False, "ok", 4, 24),
        (3, int(AccountKind.CASH), "USD", int(Venue.PAPER), False, "ok", 17, 17),
    ]
    assert tables["ledger_postings"] == [
        (1, 5, 50, "deposit", 77),
        (2, 9, 90, "trade", 8),
        (3, 22, 220, "trade", 21),
        (4, 37, 370, "trade", 36),
    ]
    entries = tables["ledger_entries"]
    assert len(entries) == 2 + 8 + 6 + 8
    assert entries[:2] == [(1, 0, EXTERNAL, "USD", -10_000), (1, 1, 1, "USD", 10_000)]
    assert [r[1] for r in entries if r[0] == 2] == list(range(8))
    assert tables["positions"] == [(1, "XYZ", 3, -300, 0, 10), (2, "XYZ", -1, 100, -10, 23)]
    assert tables["fills"] == [
        (8, 10, 80, 2, "XYZ", SELL, 100, 3, "maker", 1),
        (8, 11, 80, 1, "XYZ", BUY, 100, 3, "taker", 2),
        (21, 13, 210, 2, "XYZ", BUY, 100, 2, "taker", 4),
        (21, 14, 210, 3, "XYZ", SELL, 100, 2, "maker", 0),
        (36, 16, 360, 1, "XYZ", SELL, 100, 1, "maker", 0),
        (36, 17, 360, 1, "XYZ", BUY, 100, 1, "taker", 3),
    ]
    orders = {r[0]: r for r in tables["orders"]}
    cols = [c.name for c in metadata.tables["orders"].columns]
    o = {oid: dict(zip(cols, r, strict=True)) for oid, r in orders.items()}
    assert (o[10]["client_order_id"], o[10]["filled"], o[10]["status"]) == (
        "s-1",
        3,
        S.PARTIALLY_FILLED,
    )
    assert (o[11]["client_order_id"], o[11]["status"]) == ("b-1", S.FILLED)
    assert (o[12]["stop_price"], o[12]["protect_price"], o[12]["status"]) == (95, 85, S.CANCELLED)
    assert (o[13]["protect_price"], o[13]["status"], o[14]["status"]) == (120, S.FILLED, S.FILLED)
    assert (o[16]["status"], o[17]["status"], o[17]["updated_seq"]) == (S.FILLED, S.FILLED, 36)
    assert tables["instruments"] == [("XYZ", 1, 1, 2, 0, int(TradingStatus.HALTED))]

    risk = {r[0]: r for r in tables["risk_events"]}
    kinds = {seq: r[2] for seq, r in risk.items()}
    assert kinds == {
        13: "stop_moved",
        14: "market_price",
        15: "margin_call",
        16: "liquidation",
        24: "margin_restored",
        25: "kill_switch",
        26: "kill_switch",
        27: "limits_set",
        28: "limits_set",
        29: "instrument_risk_set",
        30: "duplicate_client_order",
        31: "orders_linked",
        32: "rejected",
        39: "kill_switch",
    }
    assert risk[26][3] == 0  # the platform's switch: account 0
    assert risk[14][3] is None and risk[14][4] == "XYZ"
    assert json.loads(risk[27][5])["limits"]["max_order_qty"] == 10
    assert json.loads(risk[28][5])["limits"] is None
    assert json.loads(risk[31][5])["order_ids"] == [12, 15]
    assert json.loads(risk[16][5])["order_id"] == 13
    # BookDelta is market data: stored nowhere
    seqs = {r[0] for t in ("order_events", "trades", "risk_events") for r in tables[t]}
    assert 19 not in seqs and {r[0] for r in tables["trades"]} == {8, 21, 36}
    assert {r[2] for r in tables["order_events"]} == {"ac", "cx"}

    # Replays change nothing: everything, a tail, one by one.
    p = SqlPersister(one)
    try:
        assert p.write(ev) == 0
        assert p.write(ev[20:]) == 0
        for e in ev:
            assert p.write([e]) == 0
        assert p.last_seq() == len(ev)
    finally:
        p.close()
    assert _dump(one) == tables


def test_an_unknown_event_type_raises_and_writes_nothing(fresh_db: Callable[[], str]) -> None:
    class Strange(Event, tag="zz"):
        what: str

    url = fresh_db()
    p = SqlPersister(url)
    try:
        assert p.write([CurrencyAdded(1, 1, "USD", 2)]) == 1
        with pytest.raises(TypeError, match="Strange"):
            p.write([CurrencyAdded(2, 2, "EUR", 2), Strange(3, 3, "?")])
        assert p.last_seq() == 1
        assert _dump(url)["currencies"] == [("USD", 2)]
    finally:
        p.close()


def test_journal_seq_only_moves_forward(fresh_db: Callable[[], str]) -> None:
    p = SqlPersister(fresh_db())
    try:
        assert p.journal_seq() == 0
        p.write([CurrencyAdded(1, 1, "USD", 2)], journal_seq=5)
        p.write([], journal_seq=3)
        assert p.journal_seq() == 5
        p.write([], journal_seq=9)  # commands with no events still move it
        assert (p.journal_seq(), p.last_seq()) == (9, 1)
    finally:
        p.close()


def test_upgrade_from_0001_keeps_orders(fresh_db: Callable[[], str]) -> None:
    url = fresh_db()
    upgrade(url, "0001")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO orders VALUES (1, 7, 'XYZ', 1, 2, 1, 100, 0, 5, 0, 1, false, 1, 1)"
                )
            )
        upgrade(url)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT client_order_id, protect_price FROM orders")).one()
            assert tuple(row) == ("", 0)
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            assert version == ScriptDirectory.from_config(config()).get_current_head()
    finally:
        engine.dispose()

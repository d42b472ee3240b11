"""Per-instrument trading calendars: an equity on the platform's calendar, one on XNYS and
crypto on 24/7, each opened, closed and ending its day (DAY orders expiring) at its own
calendar's times, driven through ``SessionService.step``; the calendar kept by the core,
in its snapshot and its state hash, and a journal replayed to the same state."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from mercato.adapters.calendars import calendar_from_spec
from mercato.adapters.journal import FileJournal
from mercato.domain.commands import (
    AddInstrument,
    Command,
    CreateAccount,
    Deposit,
    EndOfDay,
    NewOrder,
    SetTradingStatus,
)
from mercato.domain.events import OrderExpired, Rejected
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus
from mercato.engine.core import Core
from mercato.services.platform import Platform
from mercato.services.sessions import SessionService

NS = 1_000_000_000
SPEC = "hours:UTC,10:00-11:00,mon-sun"  # the platform's: an hour a day
OPEN, CLOSED = TradingStatus.OPEN, TradingStatus.CLOSED


def at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text + "+00:00").timestamp()) * NS


SETUP: list[Command] = [
    AddInstrument(symbol="EQ"),  # the platform's calendar
    AddInstrument(symbol="NY", calendar="XNYS"),  # 14:30-21:00 UTC in December
    AddInstrument(symbol="BTC", qty_scale=8, calendar="24/7"),
    CreateAccount(account=1),
    Deposit(account=1, asset="USD", amount=10**12),
]


def platform(data_dir: Path | None = None) -> Platform:
    p = Platform(data_dir, calendar=calendar_from_spec(SPEC), store_url=None, fsync=False)
    return p


async def setup(p: Platform) -> None:
    await p.submit_many(SETUP)


def day_bid(order_id: int, symbol: str, ts: int) -> NewOrder:
    return NewOrder(
        ts=ts,
        order_id=order_id,
        account=1,
        symbol=symbol,
        side=Side.BUY,
        type=OrderType.LIMIT,
        qty=1,
        price=100,
        tif=TimeInForce.DAY,
    )


def summary(cmds: list[Command]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for c in cmds:
        if isinstance(c, SetTradingStatus):
            out.append((c.symbol, c.status.name))
        elif isinstance(c, EndOfDay):
            out.append(("eod", c.symbol))
        else:
            out.append((type(c).__name__,))
    return out


def status(p: Platform) -> dict[str, str]:
    return {s: TradingStatus(b.status).name for s, b in sorted(p.core.engine.books.items())}


async def trading_day(p: Platform, svc: SessionService) -> dict[str, list[int]]:
    """The scenario: what expired at each step (order ids), by step name."""
    expired: dict[str, list[int]] = {}

    async def step(name: str, when: str) -> list[Command]:
        before = set(p.core.engine.orders)
        cmds = await svc.step(at(when))
        expired[name] = sorted(before - set(p.core.engine.orders))
        return cmds

    # Thursday 3 December 2026, before anything opens: EQ and NY close, BTC stays open
    assert summary(await step("09:00", "2026-12-03T09:00")) == [
        ("EQ", "CLOSED"),
        ("NY", "CLOSED"),
    ]
    assert status(p) == {"BTC": "OPEN", "EQ": "CLOSED", "NY": "CLOSED"}
    assert summary(await step("10:00", "2026-12-03T10:00")) == [("EQ", "OPEN")]
    t = at("2026-12-03T10:05")
    for oid, sym in ((1, "EQ"), (2, "BTC"), (3, "NY")):
        events = await p.submit(day_bid(oid, sym, t))
        assert any(isinstance(e, Rejected) for e in events) == (sym == "NY")  # NY is closed
    # the platform's close: EQ closes and its DAY order expires; BTC's does not
    day_seq = p.core.client_ids.day_seq
    assert summary(await step("11:00", "2026-12-03T11:00")) == [("EQ", "CLOSED"), ("eod", "")]
    assert expired["11:00"] == [1] and 2 in p.core.engine.orders
    assert p.core.client_ids.day_seq > day_seq  # the platform's new day
    day_seq = p.core.client_ids.day_seq
    # New York opens at 09:30 local (14:30 UTC) and closes at 16:00 (21:00 UTC)
    assert summary(await step("14:29", "2026-12-03T14:29")) == []
    assert summary(await step("14:30", "2026-12-03T14:30")) == [("NY", "OPEN")]
    events = await p.submit(day_bid(4, "NY", at("2026-12-03T15:00")))
    assert not any(isinstance(e, Rejected) for e in events)
    assert summary(await step("21:00", "2026-12-03T21:00")) == [("NY", "CLOSED"), ("eod", "NY")]
    assert expired["21:00"] == [4] and 2 in p.core.engine.orders
    assert p.core.client_ids.day_seq == day_seq  # an instrument's day is not the platform's
    # crypto's day ends at 00:00 UTC: its DAY order expires, no status changes
    assert summary(await step("00:00", "2026-12-04T00:00")) == [("eod", "BTC")]
    assert expired["00:00"] == [2]
    assert status(p) == {"BTC": "OPEN", "EQ": "CLOSED", "NY": "CLOSED"}
    # the next platform day
    assert summary(await step("next 10:00", "2026-12-04T10:00")) == [("EQ", "OPEN")]
    return expired


def test_each_instrument_follows_its_own_calendar() -> None:
    async def go() -> None:
        p = platform()
        await setup(p)
        svc = SessionService(p, p.calendar)
        await trading_day(p, svc)

    asyncio.run(go())


def test_the_next_check_comes_at_the_soonest_boundary_of_any_calendar() -> None:
    async def go() -> None:
        p = platform()
        await setup(p)
        svc = SessionService(p, p.calendar, poll=86_400.0)
        await svc.step(at("2026-12-03T11:30"))  # every calendar in use now has a schedule
        assert svc._next_check(at("2026-12-03T11:30")) == 3 * 3_600  # NY opens at 14:30
        assert svc._next_check(at("2026-12-03T20:30")) == 1_800  # NY closes at 21:00
        assert svc._next_check(at("2026-12-03T23:50")) == 600  # BTC's day at 00:00

    asyncio.run(go())


def test_an_instruments_end_of_day_in_the_core() -> None:
    core = Core()
    for c in SETUP:
        core.process(c)
    for oid, sym in ((1, "EQ"), (2, "BTC"), (3, "NY")):
        core.process(day_bid(oid, sym, 5))

    def expired(events: list[object]) -> list[int]:
        return [e.order_id for e in events if isinstance(e, OrderExpired)]

    assert expired(core.process(EndOfDay(ts=6, symbol="NY"))) == [3]
    # the platform's end of day: the instruments on the platform's calendar only
    assert expired(core.process(EndOfDay(ts=7))) == [1]
    assert list(core.engine.orders) == [2]
    (rej,) = core.process(EndOfDay(ts=8, symbol="NOPE"))
    assert isinstance(rej, Rejected) and rej.reason == "unknown_symbol"
    # without instruments of their own calendar, the platform's day expires every DAY order
    plain = Core()
    for c in (AddInstrument(symbol="A"), AddInstrument(symbol="B"), *SETUP[3:]):
        plain.process(c)
    for oid, sym in ((1, "A"), (2, "B")):
        plain.process(day_bid(oid, sym, 5))
    assert expired(plain.process(EndOfDay(ts=6))) == [1, 2]


def test_the_calendar_is_in_the_snapshot_and_the_state_hash() -> None:
    core = Core()
    for c in SETUP:
        core.process(c)
    assert {s: i.calendar for s, i in core.instruments.items()} == {
        "EQ": "",
        "NY": "XNYS",
        "BTC": "24/7",
    }
    again = Core.restore(core.encode())
    assert again.instruments["NY"].calendar == "XNYS"
    assert again.state_hash() == core.state_hash()
    other = Core()
    for c in [AddInstrument(symbol="EQ"), AddInstrument(symbol="NY"), *SETUP[2:]]:
        other.process(c)  # the same, but NY on the platform's calendar
    assert other.state_hash() != core.state_hash()
    (rej,) = Core().process(AddInstrument(symbol="X", calendar="h" * 65))
    assert isinstance(rej, Rejected) and rej.reason == "invalid_instrument"
    assert "calendar" in rej.detail


def test_a_journaled_day_replays_to_the_same_state(tmp_path: Path) -> None:
    async def go() -> tuple[str, dict[str, list[int]]]:
        p = platform(tmp_path)
        p.start()
        await setup(p)
        expired = await trading_day(p, SessionService(p, p.calendar))
        h = p.core.state_hash()
        await p.stop()
        return h, expired

    h, expired = asyncio.run(go())
    assert expired["21:00"] == [4]
    with FileJournal(tmp_path / "journal") as j:
        replayed = Core()
        for e in j.read_from(1):
            replayed.process(e.cmd)
    assert replayed.state_hash() == h
    assert replayed.instruments["BTC"].calendar == "24/7"
    reopened = platform(tmp_path)  # from its snapshot
    try:
        assert reopened.core.state_hash() == h
        assert reopened.calendar_of("NY").name == "XNYS"
        assert reopened.calendar_of("EQ").name == reopened.calendar.name
    finally:
        asyncio.run(reopened.stop())

"""The session service: the calendar's opens and closes reach the core as commands."""

from __future__ import annotations

import asyncio
import datetime as dt

from mercato.adapters.calendars import ContinuousCalendar, calendar_from_spec
from mercato.domain.commands import (
    AddInstrument,
    CreateAccount,
    Deposit,
    EndOfDay,
    NewOrder,
    SetTradingStatus,
)
from mercato.domain.orders import OrderStatus
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus
from mercato.services.platform import Platform
from mercato.services.sessions import SessionService, clock_state

NS = 1_000_000_000
HOUR = 3_600 * NS
OPEN, HALTED, CLOSED = TradingStatus.OPEN, TradingStatus.HALTED, TradingStatus.CLOSED
CAL = calendar_from_spec("hours:UTC,10:00-11:00,mon-sun")  # an hour a day


def at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text + "+00:00").timestamp()) * NS


def platform() -> Platform:
    p = Platform()
    for cmd in (
        AddInstrument(symbol="XYZ"),
        AddInstrument(symbol="ABC"),
        CreateAccount(account=1),
        Deposit(account=1, asset="USD", amount=10**9),
    ):
        p.core.process(cmd)
    return p


def bid(order_id: int, tif: TimeInForce, ts: int) -> NewOrder:
    return NewOrder(
        ts=ts,
        order_id=order_id,
        account=1,
        symbol="XYZ",
        side=Side.BUY,
        type=OrderType.LIMIT,
        qty=1,
        price=100,
        tif=tif,
    )


def kinds(cmds: list[object]) -> list[tuple[str, ...]]:
    return [
        ("status", c.symbol, c.status.name) if isinstance(c, SetTradingStatus) else ("eod",)
        for c in cmds
    ]


def status(p: Platform) -> dict[str, TradingStatus]:
    return {s: TradingStatus(b.status) for s, b in p.core.engine.books.items()}


def test_the_day_opens_closes_and_day_orders_expire_at_the_close() -> None:
    async def go() -> None:
        p = platform()
        svc = SessionService(p, CAL)
        before = await svc.step(at("2026-12-03T09:00"))
        assert kinds(before) == [("status", "ABC", "CLOSED"), ("status", "XYZ", "CLOSED")]
        assert await svc.step(at("2026-12-03T09:30")) == []  # nothing to do
        opened = await svc.step(at("2026-12-03T10:00"))
        assert kinds(opened) == [("status", "ABC", "OPEN"), ("status", "XYZ", "OPEN")]
        await p.submit(bid(1, TimeInForce.DAY, at("2026-12-03T10:05")))
        await p.submit(bid(2, TimeInForce.GTC, at("2026-12-03T10:06")))
        closed = await svc.step(at("2026-12-03T11:00"))
        assert kinds(closed) == [("status", "ABC", "CLOSED"), ("status", "XYZ", "CLOSED"), ("eod",)]
        day, gtc = p.history.order(1), p.history.order(2)
        assert day is not None and day.status == OrderStatus.EXPIRED
        assert gtc is not None and gtc.status == OrderStatus.ACCEPTED
        late = await p.submit(bid(3, TimeInForce.GTC, at("2026-12-03T11:01")))
        assert any(getattr(e, "reason", "") == "instrument_closed" for e in late)

    asyncio.run(go())


def test_a_halt_is_left_to_the_administrator() -> None:
    async def go() -> None:
        p = platform()
        svc = SessionService(p, CAL)
        await svc.step(at("2026-12-03T10:00"))
        await p.submit(SetTradingStatus(symbol="XYZ", status=HALTED))
        assert kinds(await svc.step(at("2026-12-03T11:00"))) == [
            ("status", "ABC", "CLOSED"),
            ("eod",),
        ]
        assert kinds(await svc.step(at("2026-12-04T10:00"))) == [("status", "ABC", "OPEN")]
        assert status(p) == {"XYZ": HALTED, "ABC": OPEN}

    asyncio.run(go())


def test_a_node_down_across_a_close_expires_yesterdays_day_orders_on_start() -> None:
    async def go() -> None:
        p = platform()
        await SessionService(p, CAL).step(at("2026-12-03T10:00"))
        await p.submit(bid(1, TimeInForce.DAY, at("2026-12-03T10:30")))
        # down from 10:45 until the next day's session: a new service finds the stale order
        cmds = await SessionService(p, CAL).step(at("2026-12-04T10:15"))
        assert kinds(cmds) == [("eod",)]
        v = p.history.order(1)
        assert v is not None and v.status == OrderStatus.EXPIRED
        await p.submit(bid(2, TimeInForce.DAY, at("2026-12-04T10:20")))
        assert await SessionService(p, CAL).step(at("2026-12-04T10:30")) == []  # today's

    asyncio.run(go())


def test_a_continuous_market_only_ends_its_day_at_midnight_utc() -> None:
    async def go() -> None:
        p = platform()
        svc = SessionService(p, ContinuousCalendar())
        assert await svc.step(at("2026-12-03T23:59")) == []
        cmds = await svc.step(at("2026-12-04T00:00"))
        assert cmds == [EndOfDay(ts=at("2026-12-04T00:00"))]
        assert status(p) == {"XYZ": OPEN, "ABC": OPEN}

    asyncio.run(go())


def test_an_instrument_added_while_closed_is_closed_at_the_next_check() -> None:
    async def go() -> None:
        p = platform()
        svc = SessionService(p, CAL)
        await svc.step(at("2026-12-03T12:00"))
        await p.submit(AddInstrument(symbol="NEW"))
        assert kinds(await svc.step(at("2026-12-03T12:00") + NS)) == [("status", "NEW", "CLOSED")]

    asyncio.run(go())


def test_the_clock_gives_the_real_next_open_and_close() -> None:
    assert clock_state(CAL, at("2026-12-03T09:00")) == (
        False,
        at("2026-12-03T10:00"),
        at("2026-12-03T11:00"),
    )
    assert clock_state(CAL, at("2026-12-03T10:30")) == (
        True,
        at("2026-12-04T10:00"),
        at("2026-12-03T11:00"),
    )
    day = at("2026-12-03T00:00")
    assert clock_state(ContinuousCalendar(), day + HOUR) == (True, day + 24 * HOUR, day + 24 * HOUR)


def test_checks_come_at_each_boundary_or_every_poll() -> None:
    svc = SessionService(platform(), CAL, poll=5.0)
    assert svc._next_check(at("2026-12-03T09:59:58")) == 2.0
    assert svc._next_check(at("2026-12-03T09:00")) == 5.0

"""The session service: the calendar's opens and closes reach the core as commands."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec

from mercato.adapters.calendars import ContinuousCalendar, calendar_from_spec
from mercato.domain.commands import (
    AddInstrument,
    Clock,
    CreateAccount,
    Deposit,
    EndOfDay,
    NewOrder,
    SetTradingStatus,
)
from mercato.domain.orders import OrderStatus
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus
from mercato.services.platform import Platform
from mercato.services.sessions import Phases, Schedule, SessionService, clock_state

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


# -- the phases: pre-open, opening auction, open, closing auction, closed ----------------

MIN = 60 * NS
PHASES = Phases(pre_open=10 * MIN, opening_auction=5 * MIN, closing_auction=10 * MIN)


def test_the_schedule_cuts_a_session_into_its_phases() -> None:
    sched = Schedule(CAL, PHASES)
    seen = [
        (t, sched.phase_at(at(f"2026-12-03T{t}"))[0].name)
        for t in ("09:44:59", "09:45", "09:54:59", "09:55", "10:00", "10:49:59", "10:50", "11:00")
    ]
    assert seen == [
        ("09:44:59", "CLOSED"),
        ("09:45", "PRE_OPEN"),
        ("09:54:59", "PRE_OPEN"),
        ("09:55", "OPENING_AUCTION"),
        ("10:00", "OPEN"),
        ("10:49:59", "OPEN"),
        ("10:50", "CLOSING_AUCTION"),
        ("11:00", "CLOSED"),
    ]
    changes = [at("2026-12-03T09:00")]
    for _ in range(6):
        nxt = sched.next_change(changes[-1])
        assert nxt is not None
        changes.append(nxt)
    assert changes[1:] == [
        at("2026-12-03T09:45"),
        at("2026-12-03T09:55"),
        at("2026-12-03T10:00"),
        at("2026-12-03T10:50"),
        at("2026-12-03T11:00"),
        at("2026-12-04T09:45"),
    ]


def test_a_closing_auction_longer_than_the_session_starts_at_the_open() -> None:
    sched = Schedule(CAL, Phases(closing_auction=2 * HOUR))
    assert sched.phase_at(at("2026-12-03T10:00"))[0] == TradingStatus.CLOSING_AUCTION
    assert sched.phase_at(at("2026-12-03T09:59"))[0] == CLOSED


def test_an_early_close_moves_the_closing_auction_and_a_holiday_has_none() -> None:
    xnys = Schedule(calendar_from_spec("XNYS"), PHASES)  # 09:30-16:00 New York, UTC-5
    phase = lambda t: xnys.phase_at(at(t))[0].name  # noqa: E731
    # Wednesday 2026-11-25, a full day: the closing auction from 15:50 to 16:00 New York
    assert phase("2026-11-25T20:49") == "OPEN"
    assert phase("2026-11-25T20:50") == "CLOSING_AUCTION"
    # Thursday 2026-11-26, Thanksgiving: closed all day, no pre-open
    assert {phase(f"2026-11-26T{h}:00") for h in ("14", "14", "15", "18", "20")} == {"CLOSED"}
    # Friday 2026-11-27 closes early at 13:00: its closing auction from 12:50
    assert phase("2026-11-27T14:15") == "PRE_OPEN"
    assert phase("2026-11-27T14:25") == "OPENING_AUCTION"
    assert phase("2026-11-27T17:49") == "OPEN"
    assert phase("2026-11-27T17:50") == "CLOSING_AUCTION"
    assert phase("2026-11-27T18:00") == "CLOSED"


def test_a_continuous_market_has_no_auctions() -> None:
    sched = Schedule(ContinuousCalendar(), PHASES)
    day = at("2026-12-04T00:00")
    assert [sched.phase_at(day + d)[0] for d in (-MIN, -1, 0, MIN)] == [OPEN] * 4
    assert sched.next_change(day - MIN) == day


def test_the_service_walks_the_phases_and_ends_the_day_after_the_closes() -> None:
    async def go() -> None:
        p = platform()
        svc = SessionService(p, CAL, phases=PHASES)
        got = []
        for t in ("09:00", "09:45", "09:55", "10:00", "10:50", "11:00"):
            cmds = await svc.step(at(f"2026-12-03T{t}"))
            got.append(kinds(cmds)[-1][1:] if cmds and kinds(cmds)[-1][0] == "status" else None)
            if t == "11:00":
                assert kinds(cmds) == [
                    ("status", "ABC", "CLOSED"),
                    ("status", "XYZ", "CLOSED"),
                    ("eod",),
                ]
        assert got[:5] == [
            ("XYZ", "CLOSED"),
            ("XYZ", "PRE_OPEN"),
            ("XYZ", "OPENING_AUCTION"),
            ("XYZ", "OPEN"),
            ("XYZ", "CLOSING_AUCTION"),
        ]
        assert svc._next_check(at("2026-12-03T09:44:58")) == 1.0
        assert (
            SessionService(p, CAL, phases=PHASES, poll=5.0)._next_check(at("2026-12-03T09:44:58"))
            == 2.0
        )

    asyncio.run(go())


def test_a_halt_spanning_a_phase_change_is_kept_and_rejoins_the_phase_when_resumed() -> None:
    async def go() -> None:
        p = platform()
        svc = SessionService(p, CAL, phases=PHASES)
        await svc.step(at("2026-12-03T10:00"))
        await p.submit(SetTradingStatus(symbol="XYZ", status=HALTED))
        cmds = await svc.step(at("2026-12-03T10:50"))  # into the closing auction: not XYZ
        assert [c.symbol for c in cmds if isinstance(c, SetTradingStatus)] == ["ABC"]
        await p.submit(SetTradingStatus(symbol="XYZ", status=OPEN))  # the administrator
        cmds = await svc.step(at("2026-12-03T10:55"))
        assert ("status", "XYZ", "CLOSING_AUCTION") in kinds(cmds)

    asyncio.run(go())


def test_the_days_auctions_uncross_in_the_core_and_the_order_history_sees_them() -> None:
    async def go() -> None:
        p = platform()
        p.core.process(CreateAccount(account=2))
        p.core.process(Deposit(account=2, asset="XYZ", amount=10))
        svc = SessionService(p, CAL, phases=PHASES)
        await svc.step(at("2026-12-03T09:50"))  # pre-open: orders collect
        await p.submit(bid(1, TimeInForce.OPG, at("2026-12-03T09:51")))
        sell = NewOrder(
            ts=at("2026-12-03T09:52"),
            order_id=2,
            account=2,
            symbol="XYZ",
            side=Side.SELL,
            type=OrderType.LIMIT,
            qty=3,
            price=99,
            tif=TimeInForce.DAY,
        )
        await p.submit(sell)
        assert p.core.engine.books["XYZ"].indicative == (99, 1, 2, Side.SELL)
        one = p.history.order(1)
        assert one is not None and one.status == OrderStatus.ACCEPTED  # nothing matched
        await svc.step(at("2026-12-03T09:55"))
        await svc.step(at("2026-12-03T10:00"))  # the open: the uncross
        one, two = p.history.order(1), p.history.order(2)
        assert one is not None and one.status == OrderStatus.FILLED
        assert two is not None and two.status == OrderStatus.PARTIALLY_FILLED
        assert p.core.engine.books["XYZ"].last_price == 99
        await p.submit(bid(3, TimeInForce.CLS, at("2026-12-03T10:10")))  # waits for the close
        assert status(p)["XYZ"] == OPEN and p.history.order(3) is not None
        await svc.step(at("2026-12-03T10:50"))
        await svc.step(at("2026-12-03T11:00"))  # the closing uncross, then the end of day
        three, two = p.history.order(3), p.history.order(2)
        assert three is not None and three.status == OrderStatus.FILLED
        assert two is not None and two.status == OrderStatus.EXPIRED  # DAY: 1 left, expired

    asyncio.run(go())


def test_a_gtd_order_expires_at_its_time_by_a_clock_command() -> None:
    async def go() -> None:
        p = platform()
        svc = SessionService(p, CAL)
        await svc.step(at("2026-12-03T10:00"))
        order = msgspec.structs.replace(
            bid(1, TimeInForce.GTD, at("2026-12-03T10:01")), expire_ts=at("2026-12-03T10:05")
        )
        await p.submit(order)
        assert await svc.step(at("2026-12-03T10:04")) == []  # not yet
        cmds = await svc.step(at("2026-12-03T10:05"))
        assert cmds == [Clock(ts=at("2026-12-03T10:05"))]  # only the time, journaled
        v = p.history.order(1)
        assert v is not None and v.status == OrderStatus.EXPIRED and v.expire_ts > 0
        assert await svc.step(at("2026-12-03T10:06")) == []  # nothing due any more

    asyncio.run(go())

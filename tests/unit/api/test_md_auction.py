"""The auction's indicative uncross as streaming market data (``auction:SYM``): while XYZ
collects orders in a call phase, a subscriber sees the current indicative in its snapshot
and every change after it, contiguous, then the clear when the open uncrosses; on
``/v1/ws`` and ``/v1/md``, JSON and binary. Driven through the platform itself: the
engine's ``AuctionIndicative`` events, as an administrator's phase changes cause them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from mercato.api.app import create_app
from mercato.api.md_stream import MdFanout
from mercato.api.ws import SubscribeMsg
from mercato.client.ticks import Decoder, MdIndicative, split_channel
from mercato.domain.commands import NewOrder, SetTradingStatus
from mercato.domain.types import OrderType, Side, TradingStatus
from mercato.marketdata.events import SELL

from .test_md_sequencing import check_contiguous, frames, json_stream, sent, subscriber, ws_session

NONE = {"indicative_price": None, "indicative_qty": "0", "surplus": "0", "surplus_side": None}


def buy(oid: int, qty: int, price: int) -> NewOrder:
    return NewOrder(
        order_id=oid,
        account=2,
        symbol="XYZ",
        side=Side.BUY,
        type=OrderType.LIMIT,
        qty=qty,
        price=price,
    )


def shown(msg: dict[str, Any]) -> dict[str, Any]:
    a = dict(msg["auction"])
    assert isinstance(a.pop("ts"), int)
    return a


def test_subscribers_see_the_indicative_in_their_snapshot_then_each_change_and_the_clear(
    market: Any,
) -> None:
    """The maker (account 1) asks 101.00 for 1,000 and bids 99.00: an early subscriber
    (before the pre-open) sees no indicative, then 5 at 101.00, then 15, then the clear;
    one joining mid-auction sees 5 at 101.00 in its snapshot, then the same updates."""

    async def run() -> None:
        platform = market.platform
        api = create_app(platform, market.auth).state.api
        md = api.md
        fanout = MdFanout(md)
        _, early = ws_session(md)
        await early.op_subscribe(SubscribeMsg(op="subscribe", channels=["auction:XYZ"]))
        got = sent(early, md)  # (drained after each step: a state channel conflates)
        await platform.submit(SetTradingStatus(symbol="XYZ", status=TradingStatus.PRE_OPEN))
        await platform.submit(buy(50, 5, 10_200))  # crosses the 101.00 ask: 5 would trade
        got += sent(early, md)
        assert md.market("XYZ").auction == MdIndicative(
            "XYZ", md.market("XYZ").auction.ts, 10_100, 5, 995, SELL
        )
        cached = md.cache_values("XYZ")["md:XYZ:auction"]
        assert json.loads(cached)["indicative_price"] == "101.00"
        _, late = ws_session(md)
        await late.op_subscribe(SubscribeMsg(op="subscribe", channels=["auction:XYZ"]))
        got_late = sent(late, md)
        _, md_json = subscriber(fanout, 0, False, ["auction:XYZ"])
        _, md_binary = subscriber(fanout, 0, True, ["auction:XYZ"])
        await platform.submit(
            SetTradingStatus(symbol="XYZ", status=TradingStatus.OPENING_AUCTION)
        )  # (no change: nothing published)
        await platform.submit(buy(51, 10, 10_150))
        got += sent(early, md)
        got_late += sent(late, md)
        await platform.submit(SetTradingStatus(symbol="XYZ", status=TradingStatus.OPEN))
        got += sent(early, md)
        got_late += sent(late, md)
        assert [t.price for t in md.trades("XYZ", 10)] == [10_100, 10_100]  # the uncross
        assert json.loads(md.cache_values("XYZ")["md:XYZ:auction"])["indicative_price"] is None
        five = {
            "indicative_price": "101.00",
            "indicative_qty": "5",
            "surplus": "995",
            "surplus_side": "sell",
        }
        fifteen = {**five, "indicative_qty": "15", "surplus": "985"}

        check_contiguous(got)
        assert [m["type"] for m in got] == ["snapshot", "update", "update", "update"]
        assert [shown(m) for m in got] == [NONE, five, fifteen, NONE]
        for msgs in (got_late, json_stream(bytes(md_json.data))):
            check_contiguous(msgs)
            assert [(m["type"], shown(m)) for m in msgs] == [
                ("snapshot", five),
                ("update", fifteen),
                ("update", NONE),
            ]
            assert msgs[0]["seq"] == got[1]["seq"]  # the same channel count for everyone

        # binary: the state as a key frame of its own, the sync frame, then the deltas
        payloads = [p for op, p in frames(bytes(md_binary.data)) if op == 2]
        state, sync, *updates = (split_channel(p)[1] for p in payloads)
        assert [
            (e.price, e.qty, e.surplus, e.side) for e in Decoder("XYZ", 1, 1).decode(state)
        ] == [(10_100, 5, 995, SELL)]
        decoder = Decoder("XYZ", 1, 1)
        assert decoder.decode(sync) == []
        events = [e for u in updates for e in decoder.decode(u)]
        assert all(isinstance(e, MdIndicative) for e in events)
        assert [(e.price, e.qty, e.surplus, e.side) for e in events] == [
            (10_100, 15, 985, SELL),
            (0, 0, 0, 0),
        ]

    asyncio.run(run())


def test_a_restart_mid_auction_serves_the_indicative_from_the_engines_book(market: Any) -> None:
    """The market data seeded from the engine's books (as after a restart) starts with the
    auction's indicative: a new subscriber's snapshot has it, and the cache too."""

    async def run() -> None:
        platform = market.platform
        await platform.submit(SetTradingStatus(symbol="XYZ", status=TradingStatus.PRE_OPEN))
        await platform.submit(buy(50, 5, 10_200))
        md = create_app(platform, market.auth).state.api.md  # a fresh service: seeded
        snap = md.snapshot("auction:XYZ")
        assert snap["type"] == "snapshot" and snap["auction"]["indicative_price"] == "101.00"
        assert md.cache_values("XYZ")["md:XYZ:auction"].startswith(b'{"indicative_price":"101.00"')

    asyncio.run(run())

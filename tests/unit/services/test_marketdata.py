"""The market-data service: channels from the engine's events and from an outside feed,
bars closed by an injected clock, the 24-hour window, conflation and re-snapshots per
connection, and the last-value cache."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from mercato.adapters.cache import MemoryCache
from mercato.api.outbox import BOOK_LAG, Conn
from mercato.domain.commands import AddInstrument, CreateAccount, Deposit, NewOrder
from mercato.domain.types import AccountKind, OrderType, Side
from mercato.marketdata.events import BUY, SELL, MdLevel, MdOrder, MdQuote, MdTrade
from mercato.marketdata.market import MINUTE_NS, Message
from mercato.services.marketdata import MarketData
from mercato.services.platform import Platform

S = 1_000_000_000
T0 = 1_700_000_040 * S  # a minute boundary
J = msgspec.json.Decoder()


def feed() -> tuple[MarketData, list[Message]]:
    md = MarketData()
    md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
    out: list[Message] = []
    md.on_publish(out.extend)
    return md, out


def test_an_outside_l3_feed_makes_levels_quotes_and_trades() -> None:
    md, out = feed()
    for name in ("book:EXT", "l3:EXT", "quotes:EXT", "trades:EXT"):
        md.channel(name)
    md.publish(
        [
            MdOrder("EXT", T0, 1, BUY, 9_900, 5),
            MdOrder("EXT", T0, 2, BUY, 9_900, 3),
            MdOrder("EXT", T0, 3, SELL, 10_100, 7),
        ]
    )
    by = {m.channel.name: J.decode(m.json) for m in out}
    assert by["book:EXT"]["bids"] == [["99.00", "8"]] and by["book:EXT"]["asks"] == [
        ["101.00", "7"]
    ]
    assert by["quotes:EXT"]["quote"]["bid"] == "99.00"
    assert [o["id"] for o in by["l3:EXT"]["orders"]] == ["1", "2", "3"]
    out.clear()
    md.publish([MdOrder("EXT", T0 + 1, 1, BUY, 9_900, 0), MdTrade("EXT", T0 + 1, 7, 9_900, 5, 2)])
    by = {m.channel.name: J.decode(m.json) for m in out}
    assert by["book:EXT"]["bids"] == [["99.00", "3"]]
    assert by["trades:EXT"]["trades"][0]["side"] == "sell"
    assert md.snapshot("book:EXT")["seq"] == 2  # the next update is 3


def test_bars_close_on_the_clock_and_the_24_hour_window_slides() -> None:
    md, out = feed()
    md.channel("bars:EXT")  # 1m by default
    md.publish([MdTrade("EXT", T0 + 5 * S, 1, 10_000, 2, BUY)])
    md.publish([MdTrade("EXT", T0 + 30 * S, 2, 10_200, 1, SELL)])
    bars = J.decode(out[-1].json)["bars"]
    assert [(b["open"], b["high"], b["close"], b["volume"]) for b in bars] == [
        ("100.00", "102.00", "102.00", "3")
    ]
    out.clear()
    md.advance(T0 + MINUTE_NS - 1)
    assert out == []  # not yet over
    md.advance(T0 + MINUTE_NS)
    (msg,) = out
    assert [b["start"] for b in J.decode(msg.json)["bars"]] == [T0]
    assert [b.start for b in md.bars("EXT", 10)] == [T0]
    m = md.market("EXT")
    assert m.stats_json(T0 + MINUTE_NS)["volume"] == "3"
    assert m.stats_json(T0 + MINUTE_NS)["change"] == "2.00"
    day = 1_440 * MINUTE_NS
    assert m.stats_json(T0 + day - 1)["trades"] == 2  # still inside the 24 hours
    md.publish([MdTrade("EXT", T0 + day, 3, 9_000, 4, BUY)])
    stats = m.stats_json(T0 + day)  # the first minute has left the window
    assert (stats["open"], stats["high"], stats["volume"], stats["trades"]) == (
        "90.00",
        "90.00",
        "4",
        1,
    )


def test_the_engines_events_feed_l3_from_its_own_book() -> None:
    platform = Platform()
    md = MarketData(resting=lambda s, oid: _resting(platform, s, oid))
    platform.on_events(md.on_events)
    md_out: list[Message] = []
    md.on_publish(md_out.extend)

    async def run() -> None:
        for cmd in [
            AddInstrument(symbol="XYZ"),
            CreateAccount(account=1, kind=AccountKind.MARGIN),
            Deposit(account=1, asset="USD", amount=10**10),
        ]:
            await platform.submit(cmd)
        md.channel("l3:XYZ")
        await platform.submit(
            NewOrder(
                order_id=5,
                account=1,
                symbol="XYZ",
                side=Side.BUY,
                type=OrderType.LIMIT,
                qty=10,
                price=9_900,
            )
        )

    asyncio.run(run())
    (msg,) = [m for m in md_out if m.kind == "l3"]
    assert J.decode(msg.json)["orders"] == [
        {"id": "5", "side": "buy", "price": "99.00", "qty": "10"}
    ]


def _resting(platform: Platform, symbol: str, oid: int) -> tuple[int, int, int] | None:
    engine = platform.core.engine
    o = engine.orders.get(oid)
    return None if o is None else (o.side, o.price, o.remaining)


def test_a_connection_conflates_quotes_and_resnapshots_a_book_it_fell_behind_on() -> None:
    md, out = feed()
    conn = Conn(None, 1_000)
    for name in ("quotes:EXT", "book:EXT"):
        md.channel(name)
        conn.channels.add(name)
        conn.snapshot(name, md)  # what subscribing sends first
    for i in range(BOOK_LAG + 10):
        md.publish([MdLevel("EXT", T0 + i, BUY, 9_000 + i, 1)])
    for m in out:
        conn.deliver(m)
    entries = list(conn.outbox._frames)
    quotes = [e for e in entries if getattr(e, "name", "") == "quotes:EXT"]
    assert len(quotes) == 1  # one place in the queue, however many quotes
    sent = [f for e in entries for f in conn.frames(e, md)]
    decoded = [J.decode(f) for f in sent]
    book = [d for d in decoded if d["channel"] == "book:EXT"]
    assert [d["type"] for d in book] == ["update"] * BOOK_LAG + ["snapshot"]
    assert len(book[-1]["bids"]) == BOOK_LAG + 10  # the whole book, as it is now
    assert book[-1]["seq"] == md.channel("book:EXT").seq
    (quote,) = [d for d in decoded if d["channel"] == "quotes:EXT"]
    assert quote["quote"]["bid"] == f"{(9_000 + BOOK_LAG + 9) / 100:.2f}"  # the latest


def test_binary_state_channels_send_a_key_frame_after_a_skip() -> None:
    from mercato.client.ticks import Decoder, split_channel

    md, out = feed()
    conn = Conn(None, 1_000, binary=True)
    conn.ids["quotes:EXT"], conn.prefix["quotes:EXT"] = 1, b"\x01"
    conn.channels.add("quotes:EXT")
    dec = Decoder("EXT", 1, 1)
    for f in conn.snapshot("quotes:EXT", md):
        dec.decode(split_channel(f)[1])
    quotes = [MdQuote("EXT", T0 + i, 9_900 + i, 1, 10_100, 1) for i in range(3)]
    for q in quotes:
        md.publish([q])
    for m in out:
        conn.deliver(m)
    frames = [f for e in list(conn.outbox._frames) for f in conn.frames(e, md)]
    (frame,) = frames  # conflated: the latest only, which the decoder can still read
    events: list[Any] = dec.decode(split_channel(frame)[1])
    assert events == [quotes[-1]]


def test_the_cache_holds_the_latest_snapshots() -> None:
    cache = MemoryCache()
    md = MarketData(cache=cache)
    md.add_instrument("EXT", 1, 1, 2, 0)
    md.publish([MdLevel("EXT", T0, BUY, 9_900, 5), MdTrade("EXT", T0, 1, 9_900, 2, SELL)])

    async def read() -> list[bytes | None]:
        return await cache.get_many(["md:EXT:quote", "md:EXT:trade", "md:EXT:depth"])

    quote, trade, depth = asyncio.run(read())
    assert quote is not None and J.decode(quote)["bid"] == "99.00"
    assert trade is not None and J.decode(trade)["price"] == "99.00"
    assert depth is not None and J.decode(depth)["bids"] == [["99.00", "5"]]


def test_tick_moves_the_clock_on_from_the_newest_event_whatever_its_clock() -> None:
    md, out = feed()
    mono = [100.0]
    md.monotonic = lambda: mono[0]
    md.channel("bars:EXT")
    md.publish([MdTrade("EXT", T0 + 5 * S, 1, 10_000, 2, BUY)])  # a recorded time
    out.clear()
    mono[0] += 54.0  # T0 + 59 s on the events' clock
    md.tick()
    assert out == [] and md.now == T0 + 59 * S
    mono[0] += 1.0  # T0 + 60 s: the minute is over
    md.tick()
    (msg,) = out
    assert [b["start"] for b in J.decode(msg.json)["bars"]] == [T0]


def test_a_snapshot_taken_between_publications_holds_no_trade_twice() -> None:
    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        md = MarketData(flush_interval=60.0)  # nothing published on its own meanwhile
        md.add_instrument("EXT", 1, 1, 2, 0)
        out: list[Message] = []
        md.on_publish(out.extend)
        md.channel("trades:EXT")
        md.publish([MdTrade("EXT", T0, 1, 9_900, 1, BUY)])  # pending, not yet published
        snap = J.decode(md.snapshot_json("trades:EXT"))
        md.publish([MdTrade("EXT", T0 + 1, 2, 9_901, 1, BUY)])
        md.flush()
        return snap, [J.decode(m.json) for m in out]

    snap, messages = asyncio.run(run())
    assert (snap["seq"], [t["trade_id"] for t in snap["trades"]]) == (1, ["1"])
    after = [m for m in messages if m["seq"] > snap["seq"]]
    assert [t["trade_id"] for m in after for t in m["trades"]] == ["2"]


def test_a_batch_with_an_unknown_instrument_is_refused_whole() -> None:
    md, out = feed()
    with pytest.raises(KeyError):
        md.publish([MdTrade("EXT", T0, 1, 9_900, 1, BUY), MdTrade("NOPE", T0, 2, 1, 1, BUY)])
    assert md.trades("EXT", 10) == [] and out == []
    md.tick()  # and the clock did not jump
    assert md.now == 0


def test_tick_listeners_get_each_batchs_trades_and_changed_quotes_at_once() -> None:
    md = MarketData()
    md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
    seen: list[tuple[list[int], list[tuple[str, int, int]]]] = []
    md.on_ticks(
        lambda trades, quoted: seen.append(
            ([t.trade_id for t in trades], [(m.symbol, m.quote.bid, m.quote.ask) for m in quoted])
        )
    )
    md.publish([MdLevel("EXT", 1, BUY, 99, 5), MdLevel("EXT", 1, SELL, 101, 5)])
    md.publish([MdLevel("EXT", 2, BUY, 98, 5)])  # below the best: the quote stands
    md.publish([MdTrade("EXT", 3, 7, 100, 1, BUY)])
    md.publish([MdQuote("EXT", 4, 97, 1, 103, 1)])  # a feed's own quote
    assert seen == [
        ([], [("EXT", 99, 101)]),
        ([7], []),
        ([], [("EXT", 97, 103)]),
    ]

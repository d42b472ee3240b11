"""Property: on the fan-out's fast path (``/v1/md``), whatever each subscriber's pace,
encoding, interval and channels, and whenever it subscribes, what it is written rebuilds
the market exactly.

Subscribers of every kind (real time and batched at 100 ms; JSON and binary; on one
channel or three) subscribe through the protocol, then a random stream of publications
(level changes, trades) runs while subscribers are paused and resumed at random, the
service's flush (its ``flush_interval``, as in a server) and the batch timer fire at random
points, and more subscribers join mid-stream: while publications are still pending in the
service and in the batch. At the end everyone is resumed and everything flushed. From the
bytes each fake transport was written, parsed as WebSocket frames: every subscriber of
``trades`` got every trade once, in order (JSON: those of its snapshot, then those after;
binary: those published after it joined); a JSON subscriber gets each channel's snapshot
before any update, and after a snapshot at seq S exactly S+1 (quotes excepted: they
conflate), and rebuilds the book exactly (a fresh snapshot may jump: that is how a laggard
catches up); the last quote each subscriber of ``quotes`` decoded is the service's."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mercato.api.md_stream import MdFanout, MdPeer
from mercato.client.ticks import Decoder, split_channel
from mercato.marketdata.events import BUY, SELL, MdIndicative, MdLevel, MdQuote, MdTrade
from mercato.services.marketdata import MarketData

# (interval ms, binary, channels)
KINDS = [
    (0, False, ["book:EXT", "trades:EXT", "quotes:EXT"]),
    (0, False, ["trades:EXT", "auction:EXT"]),
    (0, True, ["trades:EXT", "quotes:EXT", "auction:EXT"]),
    (0, True, ["trades:EXT"]),
    (100, False, ["book:EXT", "trades:EXT", "quotes:EXT"]),
    (100, False, ["book:EXT"]),
    (100, True, ["trades:EXT", "quotes:EXT", "auction:EXT"]),
    (100, False, ["auction:EXT"]),
    (100, True, ["trades:EXT"]),
]

publication = st.tuples(
    st.lists(
        st.tuples(st.sampled_from([BUY, SELL]), st.integers(90, 110), st.integers(0, 5)),
        max_size=3,
    ),
    st.booleans(),  # and a trade
)
action = st.one_of(
    st.tuples(st.just("publish"), publication),
    # a call auction's indicative (price, volume, surplus, side; 0s: cleared)
    st.tuples(
        st.just("indicative"),
        st.tuples(st.integers(0, 110), st.integers(0, 9), st.integers(0, 9), st.integers(0, 2)),
    ),
    st.tuples(st.just("pause"), st.integers(0, 2 * len(KINDS))),  # (modulo the subscribers)
    st.tuples(st.just("resume"), st.integers(0, 2 * len(KINDS))),
    st.tuples(st.just("tick"), st.none()),  # the batch's timer
    st.tuples(st.just("flush"), st.none()),  # the service's flush interval ends
    st.tuples(st.just("subscribe"), st.integers(0, len(KINDS) - 1)),  # mid-stream
)
LATER = 3600.0  # the service's flush interval: it never elapses here, "flush" ends it


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def write(self, data: Any) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise AssertionError("nobody is disconnected here")


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked WebSocket frame in ``data``."""
    out, i = [], 0
    while i < len(data):
        opcode, n, head = data[i] & 0x0F, data[i + 1] & 0x7F, 2
        if n == 126:
            n, head = int.from_bytes(data[i + 2 : i + 4], "big"), 4
        elif n == 127:
            n, head = int.from_bytes(data[i + 2 : i + 10], "big"), 10
        out.append((opcode, bytes(data[i + head : i + head + n])))
        i += head + n
    assert i == len(data), "a frame was cut"
    return out


def subscriber(fanout: MdFanout, interval: int, binary: bool, channels: list[str]) -> Any:
    peer = MdPeer(fanout)
    transport = Transport()
    peer.connection_made(transport)
    query = f"encoding={'binary' if binary else 'json'}&interval={interval}"
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    request = (
        f"GET /v1/md?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    )
    peer.data_received(request.encode() + b"\r\n")
    assert transport.data.startswith(b"HTTP/1.1 101")
    transport.data = transport.data[transport.data.index(b"\r\n\r\n") + 4 :]
    body = json.dumps({"op": "subscribe", "channels": channels}).encode()
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
    assert len(body) < 126
    peer.data_received(bytes([0x81, 0x80 | len(body)]) + mask + masked)
    return peer, transport


def check_json(got: list[tuple[int, bytes]], channels: list[str], md: MarketData) -> list[int]:
    """Checks one JSON subscriber's stream; the trades it knows of (its snapshot's, then
    its updates'), in order."""
    book: dict[tuple[str, str], str] = {}
    seqs: dict[str, int] = {}
    trades: list[int] = []
    quote = auction = None
    for opcode, payload in got:
        assert opcode == 1
        msg = json.loads(payload)
        if "op" in msg:
            assert msg["status"] == 200
            continue
        name = msg["channel"]
        if msg["type"] == "update":
            assert name in seqs, f"{name}: update {msg['seq']} before its snapshot"
            if not name.startswith(("quotes:", "auction:")):  # state: may skip
                assert msg["seq"] == seqs[name] + 1, (name, seqs[name], msg["seq"])
        seqs[name] = msg["seq"]
        if name.startswith("book:"):
            if msg["type"] == "snapshot":
                book.clear()
            for side in ("bids", "asks"):
                for price, qty in msg[side]:
                    if qty == "0":
                        book.pop((side, price), None)
                    else:
                        book[(side, price)] = qty
        elif name.startswith("trades:"):
            if msg["type"] == "snapshot" and trades:
                raise AssertionError("a second trades snapshot: nobody re-subscribed")
            trades += [int(t["trade_id"]) for t in msg["trades"]]
        elif name.startswith("quotes:"):
            quote = msg["quote"]
        elif name.startswith("auction:"):
            auction = msg["auction"]
    assert set(seqs) == set(channels), "a snapshot is missing"
    if "auction:EXT" in channels:
        assert auction == md.market("EXT").auction_json()
        assert seqs["auction:EXT"] == md.channel("auction:EXT").seq
    if "book:EXT" in channels:
        bids, asks = md.market("EXT").book.depth(0)
        expected = {("bids", f"{p}"): f"{q}" for p, q in bids}
        expected |= {("asks", f"{p}"): f"{q}" for p, q in asks}
        assert book == expected
        assert seqs["book:EXT"] == md.channel("book:EXT").seq
    if "trades:EXT" in channels:
        assert seqs["trades:EXT"] == md.channel("trades:EXT").seq
    if "quotes:EXT" in channels:
        assert quote == md.market("EXT").quote_json()
    return trades


def check_binary(got: list[tuple[int, bytes]], channels: list[str], md: MarketData) -> list[int]:
    """Checks one binary subscriber's stream (a gap raises in the decoder); the trades it
    decoded (a binary trades snapshot holds none: those after it joined)."""
    opcode, reply = got[0]
    assert opcode == 1
    names = {v: k for k, v in json.loads(reply)["ids"].items()}
    decoders = {name: Decoder("EXT", 1, 1) for name in channels}
    trades: list[int] = []
    quote = None
    auction: MdIndicative | None = None
    for opcode, payload in got[1:]:
        assert opcode == 2
        cid, frame = split_channel(payload)
        for e in decoders[names[cid]].decode(frame):
            if isinstance(e, MdTrade):
                trades.append(e.trade_id)
            elif isinstance(e, MdQuote):
                quote = e
            elif isinstance(e, MdIndicative):
                auction = e
    if "auction:EXT" in channels:  # the latest, whatever was skipped (a key frame then)
        a = md.market("EXT").auction
        assert auction is not None
        assert (auction.price, auction.qty, auction.surplus, auction.side) == (
            a.price,
            a.qty,
            a.surplus,
            a.side,
        )
    if "quotes:EXT" in channels:
        q = md.market("EXT").quote
        assert quote is not None
        assert (quote.bid, quote.bid_qty, quote.ask, quote.ask_qty) == (
            q.bid,
            q.bid_qty,
            q.ask,
            q.ask_qty,
        )
    return trades


@settings(max_examples=60, deadline=None)
@given(st.lists(action, max_size=80))
def test_every_subscriber_rebuilds_the_market_at_any_pace(actions: list[Any]) -> None:
    async def run() -> None:
        md = MarketData(flush_interval=LATER)
        md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=0, qty_scale=0)
        fanout = MdFanout(md, queue_size=100_000)
        published: list[int] = []
        # (kind, peer, transport, trades published when it subscribed)
        subs = [(k, *subscriber(fanout, *KINDS[k]), 0) for k in range(len(KINDS))]
        batch = fanout.batches[100]

        def tick() -> None:
            if batch.timer is not None:
                batch.timer.cancel()
            batch.flush()

        for ts, (what, arg) in enumerate(actions, start=1):
            if what == "publish":
                levels, trade = arg
                events: list[Any] = [MdLevel("EXT", ts, s, p, q) for s, p, q in levels]
                if trade:
                    events.append(MdTrade("EXT", ts, ts, 100, 1, BUY))
                    published.append(ts)
                if events:
                    md.publish(events)
            elif what == "indicative":
                md.publish([MdIndicative("EXT", ts, *arg)])
            elif what == "pause":
                subs[arg % len(subs)][1].pause_writing()
            elif what == "resume":
                subs[arg % len(subs)][1].resume_writing()
            elif what == "tick":
                tick()
            elif what == "flush":
                md.flush()
            else:
                subs.append((arg, *subscriber(fanout, *KINDS[arg]), len(published)))
        md.flush()
        for _, peer, _, _ in subs:
            if peer.paused:
                peer.resume_writing()
        tick()
        for k, _, transport, joined in subs:
            _, binary, channels = KINDS[k]
            got = frames(bytes(transport.data))
            check = check_binary if binary else check_json
            trades = check(got, channels, md)
            if "trades:EXT" not in channels:
                continue
            if binary:  # exactly those published after it joined
                assert trades == published[joined:]
            else:  # its snapshot's (the newest few then), then every one after
                assert trades == published[len(published) - len(trades) :]
                assert len(trades) >= len(published) - joined
        assert batch.timer is None

    asyncio.run(run())


def test_the_checks_can_fail() -> None:
    """A lost frame is noticed: the checks above are not vacuous."""
    md = MarketData()
    md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=0, qty_scale=0)

    async def run() -> list[tuple[int, bytes]]:
        fanout = MdFanout(md)
        _, transport = subscriber(fanout, 0, False, ["book:EXT"])
        for ts in range(1, 4):
            md.publish([MdLevel("EXT", ts, BUY, 100, ts)])
        return frames(bytes(transport.data))

    got = asyncio.run(run())
    assert len(got) == 5  # the reply, the snapshot, three updates
    try:
        check_json(got[:3] + got[4:], ["book:EXT"], md)
    except AssertionError:
        return
    raise AssertionError("a missing update went unnoticed")

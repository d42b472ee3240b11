"""Issue 11: a subscription sees its snapshot, then strictly contiguous updates, whatever
is pending when it subscribes: a publication the market-data service has not flushed yet
(``flush_interval`` > 0, as in every server) and a batch whose timer has not fired.

Each case is driven by hand (the service's flush and the batch's timer are called, never
waited for), on ``/v1/md`` (real time and batched, JSON and binary) and on ``/v1/ws``.
Found before the fix: on ``/v1/md?interval=250`` a snapshot at seq S followed by an update
at seq S (the snapshot's seq was read before the pending publication was flushed into it),
and on ``/v1/ws`` and real-time ``/v1/md`` that update S arriving before its snapshot."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from mercato.api.md_stream import MdFanout, MdPeer
from mercato.api.outbox import QUEUE_SIZE, Conn
from mercato.api.ws import Hub, Session, SubscribeMsg
from mercato.client.ticks import Decoder, split_channel
from mercato.marketdata.events import BUY, SELL, MdLevel, MdTrade
from mercato.services.marketdata import MarketData


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def write(self, data: Any) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked WebSocket frame in ``data``."""
    out, i = [], 0
    while i < len(data):
        opcode, n, head = data[i] & 0x0F, data[i + 1] & 0x7F, 2
        if n == 126:
            n, head = int.from_bytes(data[i + 2 : i + 4], "big"), 4
        out.append((opcode, bytes(data[i + head : i + head + n])))
        i += head + n
    return out


def subscriber(fanout: MdFanout, interval: int, binary: bool, channels: list[str]) -> Any:
    """A ``/v1/md`` connection on a fake transport that subscribed to ``channels`` through
    the protocol (handshake, then a masked subscribe frame)."""
    peer = MdPeer(fanout)
    transport = Transport()
    peer.connection_made(transport)
    query = f"encoding={'binary' if binary else 'json'}&interval={interval}"
    request = (
        f"GET /v1/md?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    peer.data_received(request.encode())
    head = transport.data.index(b"\r\n\r\n") + 4
    assert transport.data.startswith(b"HTTP/1.1 101")
    del transport.data[:head]
    body = json.dumps({"op": "subscribe", "channels": channels}).encode()
    assert len(body) < 126
    peer.data_received(bytes([0x81, 0x80 | len(body)]) + b"\0\0\0\0" + body)
    return peer, transport


LATER = 3600.0  # a flush interval that never elapses in a test: flushes are called


def pending_market() -> MarketData:
    """EXT with two trades published and flushed (seq 2), and a third applied but not yet
    flushed: its publication (seq 3) is pending."""
    md = MarketData(flush_interval=LATER)
    md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=0, qty_scale=0)
    for name in ("trades:EXT", "book:EXT"):
        md.channel(name)
    for i in (1, 2):
        md.publish([MdLevel("EXT", i, BUY, 90 + i, 1), MdTrade("EXT", i, i, 100, 1, SELL)])
        md.flush()
    md.publish([MdLevel("EXT", 3, BUY, 93, 1), MdTrade("EXT", 3, 3, 100, 1, SELL)])
    assert md.channel("trades:EXT").seq == 2  # trade 3 applied, its message pending
    return md


def json_stream(data: bytes) -> list[dict[str, Any]]:
    """The JSON channel messages written, in order (replies left out)."""
    out = []
    for opcode, payload in frames(data):
        assert opcode == 1
        msg = json.loads(payload)
        if "channel" in msg:
            out.append(msg)
    return out


def check_contiguous(msgs: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per channel: a snapshot first, then updates S+1, S+2, ...; trade ids once each."""
    seqs: dict[str, int] = {}
    trades: dict[str, list[int]] = {}
    for msg in msgs:
        name, seq = msg["channel"], msg["seq"]
        if msg["type"] == "snapshot":
            seqs[name] = seq
            trades[name] = [int(t["trade_id"]) for t in msg.get("trades", [])]
            continue
        assert name in seqs, f"{name}: update {seq} before its snapshot"
        assert seq == seqs[name] + 1, f"{name}: snapshot/update {seqs[name]} then {seq}"
        seqs[name] = seq
        trades[name] += [int(t["trade_id"]) for t in msg.get("trades", [])]
    return trades


@pytest.mark.parametrize("interval", [0, 100])
@pytest.mark.parametrize("channels", [["trades:EXT"], ["trades:EXT", "book:EXT"]])
def test_md_subscribe_while_a_publication_is_pending(interval: int, channels: list[str]) -> None:
    async def run() -> None:
        md = pending_market()
        fanout = MdFanout(md)
        _, early = subscriber(fanout, interval, False, channels)  # subscribed before trade 3
        _, late = subscriber(fanout, interval, False, channels)  # while it is pending
        md.publish([MdTrade("EXT", 4, 4, 101, 1, BUY)])
        md.flush()
        fanout.batches[100].flush()  # the batch's timer, fired by hand
        for transport in (early, late):
            got = check_contiguous(json_stream(bytes(transport.data)))
            assert got["trades:EXT"] == [1, 2, 3, 4]  # each once, in order

    asyncio.run(run())


def test_md_batched_subscribe_while_its_batch_is_pending() -> None:
    """The found case: a batch holds publications when a subscriber joins it, one of them
    still pending in the service; its snapshot already has them, so the batch must not
    send them again."""

    async def run() -> None:
        md = pending_market()
        fanout = MdFanout(md)
        batch = fanout.batches[100]
        subscriber(fanout, 100, False, ["trades:EXT"])  # keeps the batch busy
        md.publish([MdTrade("EXT", 4, 4, 101, 1, BUY)])
        md.flush()
        assert batch.pending  # trade 4's publication waits for the timer
        _, late = subscriber(fanout, 100, False, ["trades:EXT", "book:EXT"])
        md.publish([MdTrade("EXT", 5, 5, 101, 1, BUY)])  # pending in the service
        _, later = subscriber(fanout, 100, False, ["trades:EXT"])
        md.publish([MdTrade("EXT", 6, 6, 101, 1, BUY)])
        md.flush()
        batch.flush()  # the timer, fired by hand
        for transport in (late, later):
            got = check_contiguous(json_stream(bytes(transport.data)))
            assert got["trades:EXT"] == [1, 2, 3, 4, 5, 6]

    asyncio.run(run())


@pytest.mark.parametrize("interval", [0, 100])
def test_md_binary_subscribe_while_a_publication_is_pending(interval: int) -> None:
    """Binary: the snapshot's sync frame, then the deltas; every trade decoded once."""

    async def run() -> None:
        md = pending_market()
        fanout = MdFanout(md)
        _, transport = subscriber(fanout, interval, True, ["trades:EXT"])
        md.publish([MdTrade("EXT", 4, 4, 101, 1, BUY)])
        md.flush()
        fanout.batches[100].flush()
        got = frames(bytes(transport.data))
        assert got[0][0] == 1  # the reply
        decoder = Decoder("EXT", 1, 1)
        seen: list[int] = []
        for opcode, payload in got[1:]:
            assert opcode == 2
            _, frame = split_channel(payload)
            seen += [e.trade_id for e in decoder.decode(frame) if isinstance(e, MdTrade)]
        assert seen == [4]  # 1-3 are in the snapshot (a trades snapshot has no binary state)

    asyncio.run(run())


class _Ws:
    client = None


def ws_session(md: MarketData) -> tuple[Hub, Session]:
    api = SimpleNamespace(md=md, platform=SimpleNamespace(durable=False))
    hub = Hub(api)  # type: ignore[arg-type]
    conn = Conn(None, QUEUE_SIZE)
    hub.add(conn)
    md.on_publish(hub.on_publish)
    return hub, Session(hub, _Ws(), conn, 100)  # type: ignore[arg-type]


def sent(session: Session, md: MarketData) -> list[dict[str, Any]]:
    """What the session's writer sends now, as JSON, replies left out."""
    conn, out = session.conn, []
    while (entry := conn.outbox.take()) is not None:
        for frame in conn.frames(entry, md):
            assert isinstance(frame, str)
            msg = json.loads(frame)
            if "channel" in msg:
                out.append(msg)
    return out


@pytest.mark.parametrize("channels", [["trades:EXT"], ["book:EXT", "trades:EXT"]])
def test_ws_subscribe_while_a_publication_is_pending(channels: list[str]) -> None:
    async def run() -> None:
        md = pending_market()
        _, early = ws_session(md)
        await early.op_subscribe(SubscribeMsg(op="subscribe", channels=channels))
        got_early = sent(early, md)
        _, late = ws_session(md)
        md.publish([MdTrade("EXT", 4, 4, 101, 1, BUY)])  # pending too
        await late.op_subscribe(SubscribeMsg(op="subscribe", channels=channels))
        md.publish([MdTrade("EXT", 5, 5, 101, 1, BUY)])
        md.flush()
        got_late = sent(late, md)
        got_early += sent(early, md)
        assert check_contiguous(got_early)["trades:EXT"] == [1, 2, 3, 4, 5]
        assert check_contiguous(got_late)["trades:EXT"] == [1, 2, 3, 4, 5]
        assert got_late[0]["type"] == "snapshot"

    asyncio.run(run())


def test_ws_resubscribe_sends_a_fresh_snapshot_then_what_follows_it() -> None:
    """Re-subscribing (how a client recovers) while a publication is pending: the update
    flushed into the new snapshot is not sent after it."""

    async def run() -> None:
        md = pending_market()
        _, s = ws_session(md)
        await s.op_subscribe(SubscribeMsg(op="subscribe", channels=["trades:EXT"]))
        md.publish([MdTrade("EXT", 4, 4, 101, 1, BUY)])
        await s.op_subscribe(SubscribeMsg(op="subscribe", channels=["trades:EXT"]))
        md.publish([MdTrade("EXT", 5, 5, 101, 1, BUY)])
        md.flush()
        msgs = sent(s, md)
        snaps = [i for i, m in enumerate(msgs) if m["type"] == "snapshot"]
        assert len(snaps) == 2
        assert check_contiguous(msgs[snaps[1] :])["trades:EXT"] == [1, 2, 3, 4, 5]

    asyncio.run(run())


def test_rest_depth_and_quote_seqs_hold_what_they_show(market: Any) -> None:
    """The REST snapshots carry the channel's seq too (``GET .../depth``, ``.../quote``):
    state that includes a publication still pending must not be labelled with the seq
    before it, or a client that joins the snapshot to the stream's S+1 applies that
    publication twice."""
    from starlette.testclient import TestClient

    from mercato.api.app import create_app

    app = create_app(market.platform, market.auth, md_flush=LATER)
    md = app.state.api.md
    key_id, secret = market.auth.create_key(market.trader)
    auth = {"Authorization": f"Bearer {key_id}:{secret}"}
    with TestClient(app) as client:
        md.channel("book:XYZ")
        md.channel("quotes:XYZ")
        order = {"symbol": "XYZ", "side": "buy", "type": "limit", "qty": "5", "price": "99.50"}
        assert client.post("/v1/orders", json=order, headers=auth).status_code == 201
        depth = client.get("/v1/marketdata/XYZ/depth").json()
        quote = client.get("/v1/marketdata/XYZ/quote").json()
        assert depth["bids"][0] == ["99.50", "5"] and quote["bid"] == "99.50"
        later = {m.channel.name: m.seq for m in md.flush()}  # what was still pending
        assert "book:XYZ" not in later and "quotes:XYZ" not in later
        assert depth["seq"] == md.channel("book:XYZ").seq
        assert quote["seq"] == md.channel("quotes:XYZ").seq


def test_rest_quote_seq_counts_from_the_start_as_a_subscriber_sees_it(market: Any) -> None:
    """A channel counted its publications only from when someone first asked for it (a
    subscriber or a REST query created it), so a fresh demo's REST quote said seq 0 after
    its quote had changed many times. Now every channel counts from the service's start,
    existing or not: the REST quote and depth, and a WebSocket snapshot taken at the same
    moment, carry the same seq, and the next update is that seq + 1."""
    from starlette.testclient import TestClient

    from mercato.api.app import create_app

    app = create_app(market.platform, market.auth, md_flush=LATER)
    md = app.state.api.md
    key_id, secret = market.auth.create_key(market.trader)
    auth = {"Authorization": f"Bearer {key_id}:{secret}"}
    with TestClient(app) as client:
        for i in range(3):  # three quote changes, each flushed (published) on its own
            price = f"99.{10 + i}"
            order = {"symbol": "XYZ", "side": "buy", "type": "limit", "qty": "1", "price": price}
            assert client.post("/v1/orders", json=order, headers=auth).status_code == 201
            md.flush()
        order = {"symbol": "XYZ", "side": "buy", "type": "limit", "qty": "1", "price": "99.20"}
        assert client.post("/v1/orders", json=order, headers=auth).status_code == 201
        quote = client.get("/v1/marketdata/XYZ/quote").json()  # the 4th change, pending
        depth = client.get("/v1/marketdata/XYZ/depth").json()
        assert (quote["bid"], quote["seq"]) == ("99.20", 4)
        assert (depth["bids"][0], depth["seq"]) == (["99.20", "1"], 4)
        assert "quotes:XYZ" not in md.markets["XYZ"].channels  # a REST query made none
        md.flush()  # the pending change is published (to no one): still seq 4
        assert client.get("/v1/marketdata/XYZ/quote").json()["seq"] == 4

        async def subscribe() -> list[dict[str, Any]]:
            _, s = ws_session(md)
            await s.op_subscribe(SubscribeMsg(op="subscribe", channels=["quotes:XYZ"]))
            return sent(s, md)

        snapshot = asyncio.run(subscribe())
        assert [(m["type"], m["seq"]) for m in snapshot] == [("snapshot", 4)]
        order = {"symbol": "XYZ", "side": "buy", "type": "limit", "qty": "1", "price": "99.30"}
        assert client.post("/v1/orders", json=order, headers=auth).status_code == 201
        assert [m.seq for m in md.flush() if m.channel.name == "quotes:XYZ"] == [5]
        assert client.get("/v1/marketdata/XYZ/quote").json()["seq"] == 5


def test_md_binary_channel_made_after_publications_decodes_from_its_seq() -> None:
    """A channel made after it counted publications starts its binary stream at that seq:
    the sync frame and the next delta decode without a gap."""

    async def run() -> None:
        md = MarketData(flush_interval=LATER)
        md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=0, qty_scale=0)
        for i in (1, 2, 3):  # no channel yet: three publications counted
            md.publish([MdLevel("EXT", i, BUY, 90 + i, 1)])
            md.flush()
        _, transport = subscriber(MdFanout(md), 0, True, ["book:EXT"])
        md.publish([MdLevel("EXT", 4, BUY, 95, 2)])
        assert [m.seq for m in md.flush()] == [4]
        got = frames(bytes(transport.data))
        assert got[0][0] == 1  # the reply
        state, sync, delta = (split_channel(p)[1] for _, p in got[1:])
        levels = Decoder("EXT", 1, 1).decode(state)
        assert sorted((e.price, e.qty) for e in levels if isinstance(e, MdLevel)) == [
            (91, 1),
            (92, 1),
            (93, 1),
        ]
        stream = Decoder("EXT", 1, 1)
        assert stream.decode(sync) == []
        assert [(e.price, e.qty) for e in stream.decode(delta)] == [(95, 2)]
        assert stream.seq == 4

    asyncio.run(run())

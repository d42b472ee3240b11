"""The market-data server on its own port (``/v1/md``): the same channels as ``/v1/ws``,
written straight to each transport; JSON and binary; a paused transport goes through the
connection's queue with the same policy."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.protocol import State

from mercato.api.md_stream import MdFanout, MdPeer, serve_md
from mercato.client.ticks import Decoder, split_channel
from mercato.marketdata.events import BUY, MdLevel, MdTrade
from mercato.services.marketdata import MarketData

S = 1_000_000_000
T0 = 1_700_000_040 * S


def market() -> MarketData:
    md = MarketData()
    md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
    md.publish([MdLevel("EXT", T0, BUY, 9_900, 5)])
    return md


def test_json_and_binary_subscribers_get_snapshots_then_the_same_updates() -> None:
    async def run() -> None:
        md = market()
        server = await serve_md(md, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with (
                connect(f"ws://127.0.0.1:{port}/v1/md") as j,
                connect(f"ws://127.0.0.1:{port}/v1/md?encoding=binary") as b,
                connect(f"ws://127.0.0.1:{port}/v1/md?encoding=binary") as b2,
            ):
                channels = ["trades:EXT", "book:EXT"]
                await j.send(json.dumps({"op": "subscribe", "channels": channels, "id": 1}))
                reply = json.loads(await j.recv())
                assert (reply["status"], reply["id"]) == (200, 1)
                snaps = {m["channel"]: m for m in [json.loads(await j.recv()) for _ in range(2)]}
                assert snaps["book:EXT"]["bids"] == [["99.00", "5"]]
                ids: dict[int, str] = {}
                for ws in (b, b2):
                    await ws.send(json.dumps({"op": "subscribe", "channels": channels}))
                    reply = json.loads(await ws.recv())
                    ids |= {v: k for k, v in reply["ids"].items()}
                assert len(ids) == 2  # the channels' own ids: the same on every connection
                decoders = {c: Decoder("EXT", 1, 1) for c in ids.values()}
                book: dict[int, int] = {}
                for _ in range(3):  # book: levels + sync; trades: sync
                    cid, frame = split_channel(await b.recv())
                    for e in Decoder("EXT", 1, 1).decode(frame) or []:
                        if isinstance(e, MdLevel):
                            book[e.price] = e.qty
                    decoders[ids[cid]].decode(frame)
                assert book == {9_900: 5}
                for _ in range(3):
                    await b2.recv()
                md.publish([MdTrade("EXT", T0 + 1, 1, 9_900, 2, 2)])
                md.publish([MdLevel("EXT", T0 + 1, BUY, 9_900, 3)])
                update = json.loads(await j.recv())
                assert update["type"] == "update" and update["trades"][0]["qty"] == "2"
                update = json.loads(await j.recv())
                assert (update["channel"], update["bids"]) == ("book:EXT", [["99.00", "3"]])
                first, second = await b.recv(), await b.recv()
                assert (first, second) == (await b2.recv(), await b2.recv())  # same bytes
                events = []
                for raw in (first, second):
                    cid, frame = split_channel(raw)
                    events += decoders[ids[cid]].decode(frame)
                assert events == [
                    MdTrade("EXT", T0 + 1, 1, 9_900, 2, 2),
                    MdLevel("EXT", T0 + 1, BUY, 9_900, 3),
                ]
                await j.send(json.dumps({"op": "ping", "id": "p"}))
                assert json.loads(await j.recv()) == {"op": "pong", "id": "p"}
                await j.send(json.dumps({"op": "subscribe", "channels": ["book:NOPE"]}))
                assert json.loads(await j.recv())["error"]["code"] == "unknown_symbol"
                await j.send("{nope")
                assert json.loads(await j.recv())["error"]["code"] == "invalid_json"
            with pytest.raises(InvalidStatus):
                async with connect(f"ws://127.0.0.1:{port}/elsewhere"):
                    pass
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(run())


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_a_paused_transport_queues_with_the_policy_and_a_full_queue_disconnects() -> None:
    md = market()
    fanout = MdFanout(md, queue_size=3)
    peer = MdPeer(fanout)
    transport = FakeTransport()
    peer.connection_made(transport)
    peer.open = True
    peer.ws.state = State.OPEN  # as after the handshake
    peer.conn.channels.add("trades:EXT")
    md.channel("trades:EXT")
    peer.conn.sent["trades:EXT"] = 0
    fanout.follow(peer, "trades:EXT")
    md.publish([MdTrade("EXT", T0, 1, 9_900, 1, 1)])
    assert len(transport.written) == 1  # written at once
    peer.pause_writing()
    md.publish([MdTrade("EXT", T0, 2, 9_900, 1, 1)])
    md.publish([MdTrade("EXT", T0, 3, 9_900, 1, 1)])
    assert len(transport.written) == 1 and len(peer.conn.outbox) == 2  # queued
    peer.resume_writing()
    assert len(transport.written) == 3 and len(peer.conn.outbox) == 0  # in order
    peer.pause_writing()
    for i in range(4, 8):  # more than the queue holds
        md.publish([MdTrade("EXT", T0, i, 9_900, 1, 1)])
    assert transport.closed and not peer.open
    assert "trades:EXT" not in fanout.followers


def test_create_app_serves_market_data_on_its_own_port(market: Any) -> None:
    import socket

    from starlette.testclient import TestClient
    from websockets.sync.client import connect as sync_connect

    from mercato.api.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(market.platform, market.auth, md_port=port)
    with TestClient(app), sync_connect(f"ws://127.0.0.1:{port}/v1/md") as ws:
        ws.send(json.dumps({"op": "subscribe", "channels": ["book:XYZ"]}))
        assert json.loads(ws.recv())["channels"] == ["book:XYZ"]
        snapshot = json.loads(ws.recv())
        assert (snapshot["bids"], snapshot["asks"]) == ([["99.00", "1000"]], [["101.00", "1000"]])


def batched_peer(fanout: MdFanout, interval: int, channels: list[str], binary: bool) -> Any:
    """A subscriber at ``?interval=`` on a fake transport, up to date on ``channels``."""
    peer = MdPeer(fanout)
    transport = FakeTransport()
    peer.connection_made(transport)
    peer.open = True
    peer.ws.state = State.OPEN
    peer.interval = interval
    peer.conn.binary = peer.binary = binary
    peer.single = len(channels) == 1  # as _subscribe sets them
    for name in channels:
        peer.conn.channels.add(name)
        peer.conn.sent[name] = fanout.md.channel(name).seq
        fanout.follow(peer, name)
    return peer, transport


def frames(data: bytes) -> list[bytes]:
    """The payloads of the unmasked WebSocket frames in ``data`` (none over 64 KiB here)."""
    out, i = [], 0
    while i < len(data):
        n, head = data[i + 1], 2
        if n == 126:
            n, head = int.from_bytes(data[i + 2 : i + 4], "big"), 4
        out.append(data[i + head : i + head + n])
        i += head + n
    return out


def test_a_batched_subscriber_gets_an_intervals_publications_in_one_write() -> None:
    async def run() -> None:
        md = market()
        fanout = MdFanout(md)
        live, live_out = batched_peer(fanout, 0, ["trades:EXT"], binary=True)
        slow, slow_out = batched_peer(fanout, 100, ["trades:EXT", "quotes:EXT"], binary=True)
        other, other_out = batched_peer(fanout, 100, ["trades:EXT"], binary=False)
        seq0 = md.channel("trades:EXT").seq
        quote_seq = md.channel("quotes:EXT").seq
        trades, quotes = Decoder("EXT", 1, 1), Decoder("EXT", 1, 1)
        for frame in md.snapshot_binary("trades:EXT"):  # what the subscriber had first
            trades.decode(frame)
        for i in range(3):
            md.publish([MdTrade("EXT", T0 + i, i + 1, 9_900, 1, 1)])
            md.publish([MdLevel("EXT", T0 + i, BUY, 9_900 + i + 1, 1)])  # a new best bid
        assert len(live_out.written) == 3  # real time: each publication as it is made
        assert slow_out.written == other_out.written == []  # the interval has not passed
        await asyncio.sleep(0.15)
        assert len(slow_out.written) == 1 and len(other_out.written) == 1  # one write each
        # the same frames as the real-time subscriber's, joined, then the last quote alone
        got = frames(slow_out.written[0])
        trade_id = md.channel("trades:EXT").id
        of_trades = [f for f in got if split_channel(f)[0] == trade_id]
        of_quotes = [f for f in got if split_channel(f)[0] != trade_id]
        assert of_trades == [f for w in live_out.written for f in frames(w)]
        events = [e for f in of_trades for e in trades.decode(split_channel(f)[1])]
        assert [e.trade_id for e in events] == [1, 2, 3]
        # four quotes were published (the first trade's "last", then each new best bid):
        # only the last is sent, as a key frame, which a fresh decoder reads alone
        (frame,) = of_quotes
        (quote,) = quotes.decode(split_channel(frame)[1])
        assert quote.bid == 9_903 and md.channel("quotes:EXT").seq == quote_seq + 4
        assert slow.conn.sent == {"trades:EXT": seq0 + 3, "quotes:EXT": quote_seq + 4}
        texts = [json.loads(f) for f in frames(other_out.written[0])]
        assert [m["seq"] for m in texts] == [seq0 + 1, seq0 + 2, seq0 + 3]
        await asyncio.sleep(0.15)
        assert len(slow_out.written) == 1  # nothing new, nothing written, no timer left
        assert all(b.timer is None for b in fanout.batches.values())
        slow.connection_lost(None)
        other.connection_lost(None)
        assert fanout.batched == {} and all(not b.followers for b in fanout.batches.values())
        assert live in fanout.followers["trades:EXT"]

    asyncio.run(run())


def test_a_batched_subscriber_behind_goes_through_its_queue_in_order() -> None:
    async def run() -> None:
        md = market()
        fanout = MdFanout(md)
        peer, out = batched_peer(fanout, 100, ["trades:EXT"], binary=False)
        seq0 = md.channel("trades:EXT").seq
        peer.pause_writing()
        for i in range(3):
            md.publish([MdTrade("EXT", T0 + i, i + 1, 9_900, 1, 1)])
        await asyncio.sleep(0.15)
        assert out.written == [] and len(peer.conn.outbox) == 3
        peer.resume_writing()
        md.publish([MdTrade("EXT", T0 + 3, 4, 9_900, 1, 1)])
        await asyncio.sleep(0.15)
        seqs = [json.loads(f)["seq"] for w in out.written for f in frames(w)]
        assert seqs == [seq0 + 1, seq0 + 2, seq0 + 3, seq0 + 4]
        assert len(out.written) == 4  # the queue, then up to date again: the batch's write

    asyncio.run(run())


def test_a_batched_subscriber_over_a_socket_and_an_unknown_interval_is_refused() -> None:
    async def run() -> None:
        md = market()
        server = await serve_md(md, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            url = f"ws://127.0.0.1:{port}/v1/md?encoding=binary&interval=100"
            async with connect(url) as ws:
                await ws.send(json.dumps({"op": "subscribe", "channels": ["trades:EXT"]}))
                assert json.loads(await ws.recv())["status"] == 200
                decoder = Decoder("EXT", 1, 1)
                decoder.decode(split_channel(await ws.recv())[1])  # the snapshot
                for i in range(5):
                    md.publish([MdTrade("EXT", T0 + i, i + 1, 9_900 + i, 2, 1)])
                events = []
                while len(events) < 5:
                    events += decoder.decode(split_channel(await ws.recv())[1])
                assert events == [MdTrade("EXT", T0 + i, i + 1, 9_900 + i, 2, 1) for i in range(5)]
            for bad in ("interval=7", "interval=fast"):
                with pytest.raises(InvalidStatus) as e:
                    async with connect(f"ws://127.0.0.1:{port}/v1/md?{bad}"):
                        pass
                assert e.value.response.status_code == 400
                assert b"interval is one of 0, 100, 250, 1000" in e.value.response.body
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(run())


def test_a_real_time_subscriber_gets_a_flushs_channels_in_one_write() -> None:
    md = market()
    fanout = MdFanout(md)
    channels = ["trades:EXT", "quotes:EXT", "book:EXT"]
    peer, out = batched_peer(fanout, 0, channels, binary=False)
    seqs = {name: md.channel(name).seq for name in channels}
    md.publish([MdTrade("EXT", T0, 1, 9_900, 1, 1), MdLevel("EXT", T0, BUY, 9_901, 2)])
    assert len(out.written) == 1
    got = {m["channel"]: m["seq"] for m in map(json.loads, frames(out.written[0]))}
    assert got == {name: seq + 1 for name, seq in seqs.items()}
    assert peer.conn.sent == got


def test_a_full_batch_is_sent_before_its_interval_ends() -> None:
    from mercato.api.md_stream import BATCH_MAX

    async def run() -> None:
        md = market()
        fanout = MdFanout(md)
        _, out = batched_peer(fanout, 1000, ["trades:EXT"], binary=False)
        seq0 = md.channel("trades:EXT").seq
        for i in range(BATCH_MAX + 5):
            md.publish([MdTrade("EXT", T0 + i, i + 1, 9_900, 1, 1)])
        batch = fanout.batches[1000]
        assert len(out.written) == 1  # the first BATCH_MAX at once, without waiting
        assert len(frames(out.written[0])) == BATCH_MAX
        assert len(batch.pending["trades:EXT"]) == 5 and batch.timer is not None
        batch.flush()
        seqs = [json.loads(f)["seq"] for w in out.written for f in frames(w)]
        assert seqs == list(range(seq0 + 1, seq0 + BATCH_MAX + 6))
        assert batch.timer is None

    asyncio.run(run())


def test_a_client_that_stops_reading_is_cut_off_and_delays_nobody() -> None:
    """Over real sockets: a subscriber that never reads fills its socket, then its queue,
    and is closed with 1013; a batched subscriber and a real-time one meanwhile get every
    trade, in order."""
    import socket

    async def run() -> None:
        md = market()
        # (it reads again later, to see the close: before the abort, 60 s on here)
        fanout = MdFanout(md, queue_size=20, close_timeout=60)
        loop = asyncio.get_running_loop()

        def small_buffers() -> MdPeer:  # so that the kernel holds little for the stuck one
            peer = fanout.protocol()
            made = peer.connection_made

            def connection_made(transport: Any) -> None:
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16_384)
                made(transport)

            peer.connection_made = connection_made  # type: ignore[method-assign]
            return peer

        server = await loop.create_server(small_buffers, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sub = json.dumps({"op": "subscribe", "channels": ["trades:EXT"]})
        stuck = socket.create_connection(("127.0.0.1", port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            key = "dGhlIHNhbXBsZSBub25jZQ=="
            stuck.sendall(
                f"GET /v1/md HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                f"Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            mask = b"\x00\x00\x00\x00"
            stuck.sendall(bytes([0x81, 0x80 | len(sub)]) + mask + sub.encode())
            async with (
                connect(f"ws://127.0.0.1:{port}/v1/md", max_size=None) as live,
                connect(f"ws://127.0.0.1:{port}/v1/md?interval=100", max_size=None) as batched,
            ):
                for ws in (live, batched):
                    await ws.send(sub)
                    assert json.loads(await ws.recv())["status"] == 200
                    await ws.recv()  # the snapshot
                while len(fanout.followers.get("trades:EXT", ())) < 2:
                    await asyncio.sleep(0.01)  # the stuck one has subscribed too
                got: dict[str, list[int]] = {"live": [], "batched": []}

                async def read(name: str, ws: Any) -> None:
                    while len(got[name]) < 200 * 50:
                        msg = json.loads(await ws.recv())
                        got[name] += [int(t["trade_id"]) for t in msg["trades"]]

                readers = [
                    asyncio.create_task(read("live", live)),
                    asyncio.create_task(read("batched", batched)),
                ]
                trade_id = 0
                for _ in range(200):  # 200 publications of 50 trades, ~8 KB each
                    batch = []
                    for _ in range(50):
                        trade_id += 1
                        batch.append(MdTrade("EXT", T0 + trade_id, trade_id, 9_900, 1, 1))
                    md.publish(batch)
                    await asyncio.sleep(0.002)  # the readers keep up; the stuck one cannot
                await asyncio.wait_for(asyncio.gather(*readers), 10)
                expected = list(range(1, trade_id + 1))
                assert got["live"] == expected and got["batched"] == expected
                # the stuck client: cut off, its followers gone
                assert len(fanout.followers["trades:EXT"]) == 1

            def drain() -> bytes:  # in a thread: the server's loop must go on meanwhile
                data = b""
                stuck.settimeout(5)
                with contextlib.suppress(OSError):
                    while chunk := stuck.recv(1 << 20):
                        data += chunk
                return data

            data = await asyncio.to_thread(drain)  # everything queued, then the close
            reason = b"slow consumer"
            assert data.endswith(
                bytes([0x88, 2 + len(reason)]) + (1013).to_bytes(2, "big") + reason
            )
        finally:
            stuck.close()
            server.close()
            await server.wait_closed()

    asyncio.run(run())

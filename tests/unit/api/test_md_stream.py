"""The market-data server on its own port (``/v1/md``): the same channels as ``/v1/ws``,
written straight to each transport; JSON and binary; a paused transport goes through the
connection's queue with the same policy."""

from __future__ import annotations

import asyncio
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

"""``mercato.client.SyncStream`` against a real uvicorn server in a thread (the ``server``
fixture, in conftest.py), and against a scripted WebSocket server for what the real one
never does (sequence gaps)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from websockets.sync.server import Server, ServerConnection, serve

from mercato.client import (
    MercatoError,
    NotFound,
    RiskRejected,
    SequenceGap,
    StreamClosed,
    StreamError,
    StreamOverflow,
    SyncStream,
    Unauthorized,
)

Served = tuple[str, str, str]  # the server fixture: url, key id, secret


def _json(frame: dict[str, Any]) -> str:
    return msgspec.json.encode(frame).decode()


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mercato-sync-stream"]


def test_subscribe_trade_and_cancel(server: Served) -> None:
    url, key_id, secret = server
    with SyncStream(url, key_id, secret, timeout=5) as s:
        assert s.subscribe("orders", "fills", "trades:XYZ") == ["fills", "orders", "trades:XYZ"]
        assert s.recv(timeout=5)["type"] == "snapshot"  # of the trades
        s.ping()
        order = s.place_order("XYZ", "buy", "limit", qty=2, price="101.00")
        assert (order.status, order.filled_qty) == ("filled", Decimal(2))
        got = {m["channel"]: m for m in (s.recv(timeout=5) for _ in range(3))}
        assert {c: m["seq"] for c, m in got.items()} == {"orders": 1, "fills": 1, "trades:XYZ": 1}
        assert got["fills"]["fill"]["order_id"] == order.id
        assert got["trades:XYZ"]["trades"][0]["price"] == "101.00"

        rest = s.place_order("XYZ", "sell", "limit", qty="1", price=Decimal("105.00"))
        assert rest.status == "accepted"
        assert s.cancel_order(rest.id).status == "cancelled"
        updates = [s.recv(timeout=5) for _ in range(2)]
        assert [(m["channel"], m["seq"], m["order"]["status"]) for m in updates] == [
            ("orders", 2, "accepted"),
            ("orders", 3, "cancelled"),
        ]

        assert s.unsubscribe("fills", "trades:XYZ") == ["orders"]


def test_refusals_raise_the_rest_clients_errors(server: Served) -> None:
    url, key_id, secret = server
    with SyncStream(url, key_id, secret, timeout=5) as s:
        with pytest.raises(RiskRejected) as e:
            s.place_order("XYZ", "buy", "limit", qty=5_000, price="101.00")
        assert (e.value.status, e.value.code) == (422, "insufficient_buying_power")
        with pytest.raises(NotFound):
            s.cancel_order(424_242)
        with pytest.raises(MercatoError):
            s.subscribe("no-such-channel")
        with pytest.raises(TypeError):
            s.place_order("XYZ", "buy", "limit", qty=1.5, price="100")  # type: ignore[arg-type]
        s.ping()  # still usable


def test_iterating_while_another_thread_places_an_order(server: Served) -> None:
    url, key_id, secret = server
    with SyncStream(url, key_id, secret, timeout=5) as s:
        s.subscribe("orders")
        placed = threading.Thread(
            target=s.place_order, args=("XYZ", "buy", "limit", 1, "95.00", None, "gtc", "t1")
        )
        placed.start()
        msg = next(iter(s))
        placed.join(5)
        assert (msg["seq"], msg["order"]["client_order_id"]) == (1, "t1")


def test_recv_times_out_without_losing_the_next_message(server: Served) -> None:
    url, key_id, secret = server
    with SyncStream(url, key_id, secret, timeout=5) as s:
        s.subscribe("orders")
        with pytest.raises(TimeoutError):
            s.recv(timeout=0.05)
        with pytest.raises(TimeoutError):
            s.recv(timeout=0)
        s.place_order("XYZ", "buy", "limit", qty=1, price="95.00")
        assert s.recv(timeout=5)["seq"] == 1


def test_bad_key_raises_unauthorized(server: Served) -> None:
    url, key_id, _ = server
    with SyncStream(url, key_id, "wrong", timeout=5) as s:
        with pytest.raises(Unauthorized):
            s.recv(timeout=5)
        with pytest.raises(Unauthorized):
            s.ping()
        assert isinstance(s.failure, Unauthorized)


def test_close_stops_the_thread_and_later_calls_raise(server: Served) -> None:
    url, key_id, secret = server
    s = SyncStream(url, key_id, secret)
    with pytest.raises(StreamError, match="not connected"):
        s.ping()
    with s:
        assert len(_stream_threads()) == 1
        s.subscribe("orders")
    assert _stream_threads() == []
    with pytest.raises(StreamClosed) as e:
        s.recv(timeout=1)
    assert e.value.code == 1000
    with pytest.raises(StreamClosed):
        s.place_order("XYZ", "buy", "limit", qty=1, price="95.00")
    s.close()  # closing twice is harmless


# -- a scripted server: sends its frames to each client, then closes (code 1000) or, with
# close=False, stays and answers each ping (so a ping's reply comes after the frames)

Script = Callable[..., str]


@pytest.fixture
def scripted() -> Iterator[Script]:
    servers: list[Server] = []

    def start(frames: list[dict[str, Any]], close: bool = True) -> str:
        def handler(ws: ServerConnection) -> None:
            # a failed assert here closes with 1011: the test then misses its frames
            assert ws.request is not None
            assert ws.request.path == "/v1/ws"
            assert ws.request.headers["Authorization"] == "Bearer k:s"
            for frame in frames:
                ws.send(_json(frame))
            if not close:
                for raw in ws:
                    ws.send(_json({"op": "pong", "id": msgspec.json.decode(raw)["id"]}))

        srv = serve(handler, "127.0.0.1", 0)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.socket.getsockname()[1]}"

    yield start
    for srv in servers:
        srv.shutdown()


def test_a_seq_gap_raises_after_the_messages_before_it(
    scripted: Script,
) -> None:
    url = scripted(
        [
            {"channel": "fills", "seq": 1, "fill": {}},
            {"op": "heartbeat"},
            {"channel": "fills", "seq": 2, "fill": {}},
            {"channel": "fills", "seq": 4, "fill": {}},
        ]
    )
    with SyncStream(url, "k", "s") as s:
        seen = []
        with pytest.raises(SequenceGap) as e:
            for msg in s:
                seen.append(msg["seq"])
        assert seen == [1, 2]
        assert (e.value.channel, e.value.expected, e.value.got) == ("fills", 3, 4)


def test_an_undrained_queue_overflows(scripted: Script) -> None:
    url = scripted([{"channel": "fills", "seq": n, "fill": {}} for n in (1, 2, 3)], False)
    with SyncStream(url, "k", "s", timeout=5, queue_size=2) as s:
        with pytest.raises(StreamOverflow):
            s.ping()  # its reply comes after the third message, which overflowed the queue
        assert [s.recv(timeout=5)["seq"] for _ in range(2)] == [1, 2]
        with pytest.raises(StreamOverflow):
            s.recv(timeout=5)


def test_a_server_close_ends_iteration_with_stream_closed(
    scripted: Script,
) -> None:
    url = scripted([{"channel": "orders", "seq": 1, "order": {}}])
    with SyncStream(url, "k", "s") as s:
        assert s.recv(timeout=5)["seq"] == 1
        with pytest.raises(StreamClosed) as e:
            s.recv(timeout=5)
        assert e.value.code == 1000

"""``mercato.client.Stream`` against a real uvicorn server in a thread (the ``server``
fixture, in conftest.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from mercato.client import (
    MercatoError,
    NotFound,
    RiskRejected,
    SequenceGap,
    Stream,
    StreamClosed,
    Unauthorized,
)


async def _next(s: Stream) -> dict[str, Any]:
    return await asyncio.wait_for(anext(s), 5)


def test_order_trades_over_the_stream(server: tuple[str, str, str]) -> None:
    url, key_id, secret = server

    async def main() -> None:
        async with Stream(url, key_id, secret, timeout=5) as s:
            assert await s.subscribe("orders", "trades:XYZ") == ["orders", "trades:XYZ"]
            snapshot = await _next(s)
            assert (snapshot["channel"], snapshot["type"], snapshot["seq"]) == (
                "trades:XYZ",
                "snapshot",
                0,
            )
            await s.ping()
            order = await s.place_order("XYZ", "buy", "limit", qty=3, price=Decimal("101.00"))
            assert order.status == "filled"
            assert order.filled_qty == Decimal(3)
            assert order.avg_fill_price == Decimal("101.00")
            got = [await _next(s) for _ in range(2)]
            by_channel = {m["channel"]: m for m in got}
            assert by_channel["trades:XYZ"]["seq"] == 1
            (trade,) = by_channel["trades:XYZ"]["trades"]
            assert (trade["symbol"], trade["price"], trade["side"]) == ("XYZ", "101.00", "buy")
            assert Decimal(trade["qty"]) == 3
            update = by_channel["orders"]["order"]
            assert (update["id"], update["status"]) == (order.id, "filled")

            # a resting order, then its cancel; both show up on "orders"
            rest = await s.place_order("XYZ", "buy", "limit", qty="1", price="98.00")
            assert rest.status == "accepted"
            assert (await _next(s))["order"]["status"] == "accepted"
            cancelled = await s.cancel_order(rest.id)
            assert (cancelled.id, cancelled.status) == (rest.id, "cancelled")
            msg = await _next(s)
            assert (msg["channel"], msg["seq"], msg["order"]["status"]) == (
                "orders",
                3,
                "cancelled",
            )

            # refusals: the REST client's exceptions
            with pytest.raises(RiskRejected) as e:
                await s.place_order("XYZ", "buy", "limit", qty=10_000, price="101.00")
            assert e.value.status == 422 and e.value.code
            with pytest.raises(NotFound):
                await s.cancel_order(999_999)
            with pytest.raises(MercatoError):
                await s.subscribe("nonsense")
            with pytest.raises(TypeError):
                await s.place_order("XYZ", "buy", "limit", qty=1.0, price="100")  # type: ignore[arg-type]
            # still usable afterwards
            await s.ping()

    asyncio.run(asyncio.wait_for(main(), 8))


def test_bad_key_raises_unauthorized(server: tuple[str, str, str]) -> None:
    url, key_id, _ = server

    async def main() -> None:
        async with Stream(url, key_id, "wrong", timeout=5) as s:
            with pytest.raises(Unauthorized):
                await _next(s)
            with pytest.raises(Unauthorized):
                await s.ping()

    asyncio.run(main())


def test_a_seq_gap_raises_after_the_messages_before_it() -> None:
    async def main() -> None:
        s = Stream("ws://unused", "k", "s")
        s._route(b'{"op": "heartbeat"}')
        s._route(b'{"channel": "fills", "seq": 1, "fill": {}}')
        s._route(b'{"channel": "fills", "seq": 3, "fill": {}}')
        assert (await _next(s))["seq"] == 1
        with pytest.raises(SequenceGap) as e:
            await _next(s)
        assert (e.value.channel, e.value.expected, e.value.got) == ("fills", 2, 3)

    asyncio.run(main())


def test_a_market_data_update_before_its_snapshot_is_a_gap() -> None:
    async def main() -> None:
        s = Stream("ws://unused", "k", "s")
        s._route(b'{"channel": "trades:X", "seq": 4, "type": "snapshot", "trades": []}')
        s._route(b'{"channel": "trades:X", "seq": 5, "type": "update", "trades": []}')
        s._route(b'{"channel": "book:X", "seq": 7, "type": "update", "bids": []}')
        assert [(await _next(s))["seq"] for _ in range(2)] == [4, 5]
        with pytest.raises(SequenceGap) as e:
            await _next(s)
        assert (e.value.channel, e.value.expected, e.value.got) == ("book:X", 0, 7)

    asyncio.run(main())


def test_closed_stream_stops_iteration_with_stream_closed(server: tuple[str, str, str]) -> None:
    url, key_id, secret = server

    async def main() -> None:
        s = Stream(url, key_id, secret)
        await s.connect()
        await s.close()
        with pytest.raises(StreamClosed):
            await _next(s)

    asyncio.run(main())


def test_the_stream_follows_the_market_data_server_batched() -> None:
    """``/v1/md?interval=100`` (the fan-out's fast path): the same client, the URL as is;
    a batch's several publications arrive in one write and iterate one by one, in order."""
    from mercato.api.md_stream import serve_md
    from mercato.marketdata.events import BUY, MdTrade
    from mercato.services.marketdata import MarketData

    assert Stream("ws://h:1", "k", "s").url == "ws://h:1/v1/ws"
    assert Stream("http://h:1/v1/md?interval=250", "", "").url == "ws://h:1/v1/md?interval=250"

    async def main() -> None:
        md = MarketData()
        md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
        server = await serve_md(md, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with Stream(f"ws://127.0.0.1:{port}/v1/md?interval=100", "", "") as s:
                assert await s.subscribe("trades:EXT") == ["trades:EXT"]
                snapshot = await _next(s)
                assert snapshot["type"] == "snapshot"
                for i in range(1, 4):
                    md.publish([MdTrade("EXT", i, i, 100 * i, 1, BUY)])
                got = [await _next(s) for _ in range(3)]
                assert [m["seq"] for m in got] == [snapshot["seq"] + i for i in (1, 2, 3)]
                assert [m["trades"][0]["price"] for m in got] == ["1.00", "2.00", "3.00"]
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())

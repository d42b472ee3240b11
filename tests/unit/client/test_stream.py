"""``mercato.client.Stream`` against a real uvicorn server in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from mercato.api.app import create_app
from mercato.client import (
    MercatoError,
    NotFound,
    RiskRejected,
    SequenceGap,
    Stream,
    StreamClosed,
    Unauthorized,
)
from mercato.domain.commands import (
    AddInstrument,
    CreateAccount,
    Deposit,
    NewOrder,
    SetInstrumentRisk,
)
from mercato.domain.types import AccountKind, OrderType, Side
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform

Serve = Callable[[Any], tuple[str, int]]  # the serve_app fixture (tests/conftest.py)


@pytest.fixture
def server(tmp_path: Path, serve_app: Serve) -> Iterator[tuple[str, str, str]]:
    """XYZ at 100.00 with a maker (account 1) quoting 99.00 / 101.00, and a trader
    (account 2, cash 100,000.00) whose key is returned."""
    platform = Platform()
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{tmp_path / 'users.sqlite'}", hasher=hasher)
    for cmd in [
        AddInstrument(symbol="XYZ"),
        SetInstrumentRisk(symbol="XYZ", reference_price=10_000),
        CreateAccount(account=1, kind=AccountKind.MARGIN),
        Deposit(account=1, asset="USD", amount=10**10),
        CreateAccount(account=2),
        Deposit(account=2, asset="USD", amount=10_000_000),
        NewOrder(
            order_id=1,
            account=1,
            symbol="XYZ",
            side=Side.BUY,
            type=OrderType.LIMIT,
            qty=1_000,
            price=9_900,
        ),
        NewOrder(
            order_id=2,
            account=1,
            symbol="XYZ",
            side=Side.SELL,
            type=OrderType.LIMIT,
            qty=1_000,
            price=10_100,
        ),
    ]:
        platform.core.process(cmd)
    user = auth.create_user("trader", "correct horse battery")
    auth.add_account(user, 2)
    key_id, secret = auth.create_key(user)
    app = create_app(platform, auth)
    url, _ = serve_app(app)
    yield url, key_id, secret
    auth.close()


async def _next(s: Stream) -> dict[str, Any]:
    return await asyncio.wait_for(anext(s), 5)


def test_order_trades_over_the_stream(server: tuple[str, str, str]) -> None:
    url, key_id, secret = server

    async def main() -> None:
        async with Stream(url, key_id, secret, timeout=5) as s:
            assert await s.subscribe("orders", "trades:XYZ") == ["orders", "trades:XYZ"]
            await s.ping()
            order = await s.place_order("XYZ", "buy", "limit", qty=3, price=Decimal("101.00"))
            assert order.status == "filled"
            assert order.filled_qty == Decimal(3)
            assert order.avg_fill_price == Decimal("101.00")
            got = [await _next(s) for _ in range(2)]
            by_channel = {m["channel"]: m for m in got}
            assert by_channel["trades:XYZ"]["seq"] == 1
            trade = by_channel["trades:XYZ"]["trade"]
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


def test_closed_stream_stops_iteration_with_stream_closed(server: tuple[str, str, str]) -> None:
    url, key_id, secret = server

    async def main() -> None:
        s = Stream(url, key_id, secret)
        await s.connect()
        await s.close()
        with pytest.raises(StreamClosed):
            await _next(s)

    asyncio.run(main())

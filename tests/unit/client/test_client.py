"""The typed clients (sync and async) against the native REST API, in process: an
in-memory platform, an auth store on a temporary SQLite, the ASGI app behind starlette's
TestClient (sync) or httpx's ASGITransport (async)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import msgspec
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

import mercato.client as mc
from mercato.api.app import create_app
from mercato.client import (
    AsyncClient,
    Client,
    Forbidden,
    MercatoError,
    NotFound,
    RateLimited,
    RiskRejected,
    Unauthorized,
)
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform

PASSWORD = "correct horse battery"
BASE = "http://testserver"


class World:
    """The app, its auth store, and an admin's API key."""

    def __init__(self, tmp: Path, rate: float = 1_000.0, burst: int = 1_000) -> None:
        self.platform = Platform()
        hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        self.auth = AuthStore(f"sqlite:///{tmp / 'users.sqlite'}", hasher=hasher)
        self.app: Starlette = create_app(self.platform, self.auth, rate=rate, burst=burst)
        admin = self.auth.create_user("admin", PASSWORD, "admin")
        self.admin_key = self.auth.create_key(admin)

    def key(self, user_id: int) -> tuple[str, str]:
        return self.auth.create_key(user_id)


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def http(w: World) -> Iterator[TestClient]:
    with TestClient(w.app, base_url=BASE) as tc:
        yield tc


def sync_client(http: httpx.Client, key: tuple[str, str]) -> Client:
    return Client(BASE, *key, http=http)


def setup_market(admin: Client, w: World) -> dict[str, tuple[Client, int]]:
    """An instrument, and two traders with an account each, funded with cash and stock."""
    assert (
        admin.add_instrument(
            "XYZ",
            tick_size="0.01",
            reference_price=Decimal("100.00"),
            maker_fee_bps=1,
            taker_fee_bps=2,
        )
        == "XYZ"
    )
    out = {}
    for name in ("alice", "bob"):
        user = admin.create_user(name, PASSWORD)
        assert (user.username, user.role) == (name, "trader")
        acct = admin.create_account(user.user_id)
        assert acct.user_id == user.user_id
        bal = admin.transfer(acct.account, "USD", "100000.00")
        assert bal.balance == Decimal("100000.00")
        admin.transfer(acct.account, "XYZ", 500)
        out[name] = (Client(BASE, *w.key(user.user_id), http=admin.http), acct.account)
    return out


def test_sync_client_end_to_end(w: World, http: TestClient) -> None:
    admin = sync_client(http, w.admin_key)
    assert admin.me().role == "admin"
    traders = setup_market(admin, w)
    alice, alice_acct = traders["alice"]
    bob, _ = traders["bob"]
    me = alice.me()
    assert (me.username, me.role, me.accounts) == ("alice", "trader", [alice_acct])
    (inst,) = alice.instruments()
    assert (inst.symbol, inst.tick_size, inst.lot_size, inst.status) == (
        "XYZ",
        Decimal("0.01"),
        Decimal("1"),
        "open",
    )

    # place, get, list
    o = alice.place_order("XYZ", "buy", "limit", qty=10, price="100.00", client_order_id="c1")
    assert isinstance(o, mc.Order)
    assert (o.status, o.side, o.type, o.tif, o.price, o.remaining_qty) == (
        "accepted",
        "buy",
        "limit",
        "gtc",
        Decimal("100.00"),
        Decimal("10"),
    )
    assert str(o.price) == "100.00"  # the server's scale is kept
    assert alice.get_order(o.id).client_order_id == "c1"
    assert [x.id for x in alice.orders()] == [o.id]
    assert alice.orders(symbol="NOPE") == []

    # a cross: bob sells 4 at market
    sold = bob.place_order("XYZ", "sell", "market", qty=Decimal("4"))
    assert sold.filled_qty == Decimal("4")
    got = alice.get_order(int(o.id))
    assert (got.status, got.filled_qty, got.avg_fill_price) == (
        "partially_filled",
        Decimal("4"),
        Decimal("100.00"),
    )
    assert [h.what for h in got.history] == ["accepted", "partially_filled"]
    (fill,) = alice.fills()
    assert (fill.order_id, fill.side, fill.price, fill.qty, fill.liquidity, fill.fee) == (
        o.id,
        "buy",
        Decimal("100.00"),
        Decimal("4"),
        "maker",
        Decimal("0.04"),
    )
    assert alice.fills(symbol="XYZ", limit=1) == [fill]
    assert bob.fills()[0].liquidity == "taker"

    # account and positions figures
    (pos,) = alice.positions()
    assert (pos.symbol, pos.qty, pos.mark) == ("XYZ", Decimal("504"), Decimal("100.00"))
    acct = alice.account()
    assert acct.account == alice_acct and acct.kind == "cash" and acct.currency == "USD"
    assert acct.cash == Decimal("99599.96")  # 100,000 - 400.00 - 0.04 fee
    assert acct.reserved == Decimal("600.16")
    assert acct.open_orders == 1 and not acct.killed
    assert alice.account(alice_acct) == acct

    # replace, cancel
    r = alice.replace_order(o.id, qty=3, price=Decimal("99.50"))
    assert (r.status, r.price, r.remaining_qty) == ("replaced", Decimal("99.50"), Decimal("3"))
    c = alice.cancel_order(o.id)
    assert c.id == o.id
    assert alice.orders() == []
    (closed,) = alice.orders(status="closed")
    assert closed.status == "cancelled"
    assert alice.account().reserved == Decimal("0.00")
    alice.place_order("XYZ", "buy", "limit", qty="1", price="90.00")
    alice.place_order("XYZ", "buy", "limit", qty="1", price="91.00", tif="day")
    assert len(alice.cancel_all()) == 2
    assert alice.cancel_all() == []


def test_sync_errors(w: World, http: TestClient) -> None:
    admin = sync_client(http, w.admin_key)
    traders = setup_market(admin, w)
    alice, alice_acct = traders["alice"]
    bob, _ = traders["bob"]

    with pytest.raises(RiskRejected) as e:
        alice.place_order("XYZ", "buy", "limit", qty="100000", price="100.00")
    assert (e.value.status, e.value.code) == (422, "insufficient_buying_power")
    assert isinstance(e.value, MercatoError) and e.value.message

    o = alice.place_order("XYZ", "buy", "limit", qty=1, price="90.00")
    calls: list[Callable[[], object]] = [
        lambda: bob.get_order(o.id),
        lambda: bob.cancel_order(o.id),
        lambda: bob.replace_order(o.id, 1, "90.00"),
    ]
    for call in calls:
        with pytest.raises(NotFound) as nf:
            call()
        assert (nf.value.status, nf.value.code) == (404, "unknown_order")
    with pytest.raises(NotFound):
        bob.account(alice_acct)
    with pytest.raises(Forbidden) as fb:
        alice.kill(True)
    assert fb.value.code == "forbidden"
    with pytest.raises(Unauthorized) as ua:
        Client(BASE, "nope", "nope", http=http).me()
    assert ua.value.code == "bad_key"
    with pytest.raises(mc.Conflict):
        admin.create_user("alice", PASSWORD)
    with pytest.raises(mc.BadRequest) as br:
        alice.place_order("XYZ", "buy", "limit", qty="1", price="nan")
    assert br.value.code == "invalid_number"

    # floats never leave the client
    n = len(alice.orders())
    with pytest.raises(TypeError):
        alice.place_order("XYZ", "buy", "limit", qty=1.0, price="90.00")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        alice.place_order("XYZ", "buy", "limit", qty=1, price=90.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        alice.replace_order(o.id, qty=1, price=90.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        admin.transfer(alice_acct, "USD", 10.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        admin.add_instrument("ABC", tick_size=0.01)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        alice.place_order("XYZ", "buy", "limit", qty=True, price="90.00")
    assert len(alice.orders()) == n
    with pytest.raises(ValueError):
        alice.place_order("XYZ", "buy", "limit", qty=Decimal("NaN"), price="90.00")
    with pytest.raises(ValueError):
        alice.get_order("../account")


def test_decimals_are_sent_without_exponents(w: World, http: TestClient) -> None:
    admin = sync_client(http, w.admin_key)
    alice, acct = setup_market(admin, w)["alice"]
    o = alice.place_order("XYZ", "buy", "limit", qty=Decimal("1E+1"), price=Decimal("9.9E+1"))
    assert (o.qty, o.price) == (Decimal("10"), Decimal("99.00"))
    assert admin.transfer(acct, "USD", Decimal("1E+2")).balance == Decimal("100100.00")


def test_admin_calls(w: World, http: TestClient) -> None:
    admin = sync_client(http, w.admin_key)
    alice, acct = setup_market(admin, w)["alice"]
    limits = admin.set_limits(acct, max_order_qty=5, max_open_orders=2)
    assert (limits.max_order_qty, limits.max_open_orders, limits.collar_bps) == (5, 2, 0)
    with pytest.raises(RiskRejected):
        alice.place_order("XYZ", "buy", "limit", qty=6, price="90.00")
    with pytest.raises(TypeError):
        admin.set_limits(acct, max_colour=1)

    assert admin.set_status("XYZ", "halted") == mc.InstrumentStatus(symbol="XYZ", status="halted")
    assert alice.instruments()[0].status == "halted"
    with pytest.raises(RiskRejected):
        alice.place_order("XYZ", "buy", "limit", qty=1, price="90.00")
    admin.set_status("XYZ", "open")

    assert admin.kill(True, acct) == mc.KillSwitch(account=acct, on=True)
    assert alice.account().killed
    with pytest.raises(RiskRejected):
        alice.place_order("XYZ", "buy", "limit", qty=1, price="90.00")
    admin.kill(False, acct)
    alice.place_order("XYZ", "buy", "limit", qty=1, price="90.00")

    assert admin.transfer(acct, "USD", "100.00", withdraw=True).balance == Decimal("99900.00")
    assert admin.add_instrument("ABC", price_scale=4, tick_size="0.0001", qty_scale=2) == "ABC"
    abc = next(i for i in alice.instruments() if i.symbol == "ABC")
    assert (abc.tick_size, abc.price_scale, abc.qty_scale) == (Decimal("0.0001"), 4, 2)
    with pytest.raises(mc.Conflict) as dup:
        admin.add_instrument("ABC")
    assert dup.value.code == "duplicate_symbol"

    assert admin.add_currency("USDT", 6) == mc.Currency(currency="USDT", scale=6)
    assert alice.currencies() == [
        mc.Currency(currency="USD", scale=2),
        mc.Currency(currency="USDT", scale=6),
    ]
    with pytest.raises(mc.Conflict) as dup:
        admin.add_currency("USDT", 6)
    assert dup.value.code == "duplicate_currency"
    with pytest.raises(RiskRejected) as bad:
        admin.add_currency("EURO", 10)
    assert bad.value.code == "invalid_currency"
    with pytest.raises(TypeError):
        admin.add_currency("EUR", "2")  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        alice.add_currency("EUR", 2)
    assert admin.add_instrument("ETH/USDT", qty_scale=4, currency="USDT") == "ETH/USDT"
    usdt = admin.create_account(admin.me().user_id, currency="USDT")
    assert admin.transfer(usdt.account, "USDT", "12.345678").balance == Decimal("12.345678")
    eth = next(i for i in alice.instruments() if i.symbol == "ETH/USDT")
    assert eth.currency == "USDT"


def test_rate_limited(tmp_path: Path) -> None:
    w = World(tmp_path, rate=0.001, burst=3)
    with TestClient(w.app, base_url=BASE) as http:
        admin = sync_client(http, w.admin_key)
        with pytest.raises(RateLimited) as e:
            for _ in range(10):
                admin.me()
    assert (e.value.status, e.value.code, e.value.retry_after) == (429, "rate_limited", 1.0)


def test_a_client_owns_the_httpx_client_it_makes(w: World) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer k:s"
        assert request.url.params["limit"] == "7"
        return httpx.Response(200, json=[])

    with Client(BASE + "/", "k", "s", transport=httpx.MockTransport(handler)) as c:
        assert c.fills(limit=7) == []
    assert c.http.is_closed

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    with (
        Client(BASE, "k", "s", transport=httpx.MockTransport(broken)) as c,
        pytest.raises(MercatoError) as e,
    ):
        c.me()
    assert (type(e.value), e.value.status, e.value.code) == (MercatoError, 502, "http_502")


def test_async_client_end_to_end(w: World) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app=w.app)

        def client(key: tuple[str, str]) -> AsyncClient:
            return AsyncClient(BASE, *key, transport=transport)

        async with client(w.admin_key) as admin:
            await admin.add_instrument("XYZ", reference_price="100.00", maker_fee_bps=1)
            ids: dict[str, tuple[int, int]] = {}
            for name in ("alice", "bob"):
                user = await admin.create_user(name, PASSWORD)
                acct = await admin.create_account(user.user_id, kind="cash")
                await admin.transfer(acct.account, "USD", Decimal("100000.00"))
                await admin.transfer(acct.account, "XYZ", "500")
                ids[name] = (user.user_id, acct.account)
            await admin.set_limits(ids["bob"][1], max_order_qty=1_000)

        async with client(w.key(ids["alice"][0])) as alice, client(w.key(ids["bob"][0])) as bob:
            assert (await alice.me()).accounts == [ids["alice"][1]]
            assert [i.symbol for i in await alice.instruments()] == ["XYZ"]
            o = await alice.place_order("XYZ", "buy", "limit", 10, "100.00")
            assert (await alice.get_order(o.id)).status == "accepted"
            assert [x.id for x in await alice.orders()] == [o.id]
            await bob.place_order("XYZ", "sell", "market", 4)
            (fill,) = await alice.fills()
            assert (fill.qty, fill.price, fill.fee) == (
                Decimal("4"),
                Decimal("100.00"),
                Decimal("0.04"),
            )
            assert (await alice.positions())[0].qty == Decimal("504")
            assert (await alice.quote("XYZ")).last == Decimal("100.00")
            assert [t.qty for t in await alice.trades("XYZ")] == [Decimal("4")]
            assert (await alice.stats("XYZ")).volume == Decimal("4")
            figures = await alice.account()
            assert (figures.cash, figures.reserved) == (Decimal("99599.96"), Decimal("600.06"))
            r = await alice.replace_order(o.id, 3, "99.50")
            assert (r.status, r.remaining_qty) == ("replaced", Decimal("3"))
            with pytest.raises(NotFound):
                await bob.get_order(o.id)
            with pytest.raises(RiskRejected) as e:
                await alice.place_order("XYZ", "buy", "limit", "100000", "100.00")
            assert e.value.code == "insufficient_buying_power"
            with pytest.raises(TypeError):
                await alice.place_order("XYZ", "buy", "limit", 1.5, "100.00")  # type: ignore[arg-type]
            assert (await alice.cancel_order(o.id)).id == o.id
            await alice.place_order("XYZ", "buy", "limit", 1, "90.00")
            assert len(await alice.cancel_all()) == 1
            assert await alice.orders() == []
            with pytest.raises(Forbidden):
                await alice.set_status("XYZ", "halted")

    asyncio.run(main())


def test_market_data_calls(w: World, http: TestClient) -> None:
    admin = sync_client(http, w.admin_key)
    traders = setup_market(admin, w)
    alice, _ = traders["alice"]
    bob, _ = traders["bob"]
    alice.place_order("XYZ", "buy", "limit", qty=10, price="99.50")
    bob.place_order("XYZ", "sell", "limit", qty=5, price="100.50")
    bob.place_order("XYZ", "sell", "market", qty=4)  # 4 at 99.50
    anyone = Client(BASE, "", "", http=http)  # market data is public
    q = anyone.quote("XYZ")
    assert (q.bid, q.bid_size, q.ask, q.ask_size, q.last) == (
        Decimal("99.50"),
        Decimal("6"),
        Decimal("100.50"),
        Decimal("5"),
        Decimal("99.50"),
    )
    d = anyone.depth("XYZ", levels=1)
    assert (d.bids, d.asks) == (
        [(Decimal("99.50"), Decimal("6"))],
        [(Decimal("100.50"), Decimal("5"))],
    )
    (t,) = anyone.trades("XYZ")
    assert (t.price, t.qty, t.side) == (Decimal("99.50"), Decimal("4"), "sell")
    (bar,) = anyone.bars("XYZ", "1s")
    assert (bar.interval, bar.open, bar.volume, bar.trades) == (
        1,
        Decimal("99.50"),
        Decimal("4"),
        1,
    )
    st = anyone.stats("XYZ")
    assert (st.last, st.volume, st.trades, st.change) == (
        Decimal("99.50"),
        Decimal("4"),
        1,
        Decimal("0.00"),
    )
    with pytest.raises(NotFound):
        anyone.quote("NOPE")
    with pytest.raises(MercatoError) as e:
        anyone.bars("XYZ", "2m")  # type: ignore[arg-type]
    assert e.value.code == "invalid_interval"
    with pytest.raises(TypeError):
        anyone.depth("XYZ", levels="3")  # type: ignore[arg-type]


def test_public_names() -> None:
    assert sorted(mc.__all__) == mc.__all__
    for name in mc.__all__:
        assert getattr(mc, name) is not None, name
    for kind in (mc.Order, mc.Fill, mc.Position, mc.Account, mc.Instrument):
        assert issubclass(kind, msgspec.Struct)
    for error in (
        mc.BadRequest,
        mc.Unauthorized,
        mc.Forbidden,
        mc.NotFound,
        mc.Conflict,
        mc.RiskRejected,
        mc.RateLimited,
    ):
        assert issubclass(error, MercatoError)

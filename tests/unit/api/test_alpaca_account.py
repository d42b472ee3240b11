"""Watchlists and account configurations on ``/v2``, driven by alpaca-py against a real
server: created, read, renamed, filled, emptied and deleted; another account's watchlist
is a 404; the limits and unknown symbols are refused naming what was wrong; the writable
configurations are enforced on every order and every API, the others refused unless
sent as they are; and with a SQL store all of it survives a restart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import AccountConfiguration
from alpaca.trading.requests import (
    CreateWatchlistRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    UpdateWatchlistRequest,
)

from mercato.adapters.sql.prefs import SqlPrefs
from mercato.api.app import create_app
from mercato.domain.commands import AddInstrument, CreateAccount, Deposit, SetInstrumentRisk
from mercato.services.account_settings import MAX_SYMBOLS, MAX_WATCHLISTS

Serve = Callable[[Any], tuple[str, int]]
Server = tuple[str, tuple[str, str], tuple[str, str]]  # url, trader's key, other's key


def _add(market: Any) -> None:
    """More instruments (ABC, and FRC with two decimals of quantity) and a second
    user "other" owning account 3."""
    core = market.platform.core
    for cmd in (
        AddInstrument(symbol="ABC"),
        AddInstrument(symbol="FRC", qty_scale=2),
        SetInstrumentRisk(symbol="FRC", reference_price=10_000),
        CreateAccount(account=3),
        Deposit(account=3, asset="USD", amount=10_000_000),
    ):
        core.process(cmd)
    other = market.auth.create_user("other", "correct horse battery")
    market.auth.add_account(other, 3)
    market.other = other


@pytest.fixture
def server(market: Any, serve_app: Serve) -> Iterator[Server]:
    _add(market)
    url, _ = serve_app(create_app(market.platform, market.auth))
    yield url, market.auth.create_key(market.trader), market.auth.create_key(market.other)


def sdk(url: str, key: tuple[str, str]) -> TradingClient:
    return TradingClient(key[0], key[1], url_override=url)


def _refused(e: pytest.ExceptionInfo[APIError], status: int, *words: str) -> None:
    assert e.value.status_code == status, str(e.value)
    for word in words:
        assert word in str(e.value), str(e.value)


def test_a_watchlist_from_creation_to_deletion(server: Server) -> None:
    url, mine, _ = server
    c = sdk(url, mine)
    assert c.get_watchlists() == []
    w: Any = c.create_watchlist(CreateWatchlistRequest(name="tech", symbols=["XYZ", "ABC"]))
    assert w.name == "tech" and [a.symbol for a in w.assets] == ["XYZ", "ABC"]
    account: Any = c.get_account()
    assert w.account_id == account.id
    got: Any = c.get_watchlist_by_id(w.id)
    assert got.id == w.id and [a.symbol for a in got.assets] == ["XYZ", "ABC"]
    renamed: Any = c.update_watchlist_by_id(w.id, UpdateWatchlistRequest(name="ideas"))
    assert renamed.name == "ideas" and [a.symbol for a in renamed.assets] == ["XYZ", "ABC"]
    assert renamed.updated_at > w.updated_at and renamed.created_at == w.created_at
    replaced: Any = c.update_watchlist_by_id(w.id, UpdateWatchlistRequest(symbols=["ABC"]))
    assert [a.symbol for a in replaced.assets] == ["ABC"] and replaced.name == "ideas"
    added: Any = c.add_asset_to_watchlist_by_id(w.id, "FRC")
    assert [a.symbol for a in added.assets] == ["ABC", "FRC"]
    assert added.assets[1].fractionable and not added.assets[0].fractionable
    removed: Any = c.remove_asset_from_watchlist_by_id(w.id, "ABC")
    assert [a.symbol for a in removed.assets] == ["FRC"]
    second: Any = c.create_watchlist(CreateWatchlistRequest(name="empty", symbols=[]))
    assert [x.name for x in c.get_watchlists()] == ["ideas", "empty"]  # type: ignore[union-attr]
    c.delete_watchlist_by_id(w.id)
    assert [x.id for x in c.get_watchlists()] == [second.id]  # type: ignore[union-attr]
    with pytest.raises(APIError) as e:
        c.get_watchlist_by_id(w.id)
    _refused(e, 404, "watchlist not found")


def test_another_accounts_watchlist_is_not_found(server: Server) -> None:
    url, mine, theirs = server
    w: Any = sdk(url, mine).create_watchlist(CreateWatchlistRequest(name="mine", symbols=["XYZ"]))
    other = sdk(url, theirs)
    assert other.get_watchlists() == []
    for call in (
        lambda: other.get_watchlist_by_id(w.id),
        lambda: other.update_watchlist_by_id(w.id, UpdateWatchlistRequest(name="x")),
        lambda: other.add_asset_to_watchlist_by_id(w.id, "ABC"),
        lambda: other.remove_asset_from_watchlist_by_id(w.id, "XYZ"),
        lambda: other.delete_watchlist_by_id(w.id),
    ):
        with pytest.raises(APIError) as e:
            call()
        _refused(e, 404, "watchlist not found")
    # untouched
    kept: Any = sdk(url, mine).get_watchlist_by_id(w.id)
    assert kept.name == "mine" and [a.symbol for a in kept.assets] == ["XYZ"]


def test_refusals_name_what_is_wrong(server: Server) -> None:
    url, mine, _ = server
    c = sdk(url, mine)
    with pytest.raises(APIError) as e:
        c.create_watchlist(CreateWatchlistRequest(name="bad", symbols=["XYZ", "NOPE"]))
    _refused(e, 422, "NOPE")
    w: Any = c.create_watchlist(CreateWatchlistRequest(name="w", symbols=["XYZ"]))
    with pytest.raises(APIError) as e:
        c.add_asset_to_watchlist_by_id(w.id, "NOPE")
    _refused(e, 422, "NOPE")
    with pytest.raises(APIError) as e:
        c.add_asset_to_watchlist_by_id(w.id, "XYZ")
    _refused(e, 422, "XYZ")
    with pytest.raises(APIError) as e:
        c.update_watchlist_by_id(w.id, UpdateWatchlistRequest(symbols=["ABC", "ABC"]))
    _refused(e, 422, "ABC")
    with pytest.raises(APIError) as e:
        c.remove_asset_from_watchlist_by_id(w.id, "ABC")
    _refused(e, 404, "ABC")
    with pytest.raises(APIError) as e:
        c.create_watchlist(CreateWatchlistRequest(name="w", symbols=[]))
    _refused(e, 422, "name")
    with pytest.raises(APIError) as e:
        c.create_watchlist(CreateWatchlistRequest(name="n" * 65, symbols=[]))
    _refused(e, 422, "name")
    with pytest.raises(APIError) as e:
        c.get_watchlist_by_id("00000000-0000-0000-0000-000000000001")
    _refused(e, 404)
    # raw: an unknown field, a body on a route that takes none, an id that is no UUID
    headers = {"APCA-API-KEY-ID": mine[0], "APCA-API-SECRET-KEY": mine[1]}
    r = httpx.post(f"{url}/v2/watchlists", headers=headers, json={"name": "x", "color": "red"})
    assert r.status_code == 422 and "color" in r.json()["message"]
    assert r.json()["code"] == 42200001
    r = httpx.put(f"{url}/v2/watchlists/{w.id}", headers=headers, json={})
    assert r.status_code == 422 and "name" in r.json()["message"]
    r = httpx.get(f"{url}/v2/watchlists/not-a-uuid", headers=headers)
    assert r.status_code == 404 and r.json()["code"] == 40400001
    assert [a.symbol for a in c.get_watchlist_by_id(w.id).assets] == ["XYZ"]  # type: ignore[union-attr]


def test_the_limits(market: Any, serve_app: Serve) -> None:
    _add(market)
    app = create_app(market.platform, market.auth)
    app.state.api.settings.max_symbols = 2
    url, _ = serve_app(app)
    c = sdk(url, market.auth.create_key(market.trader))
    w: Any = c.create_watchlist(CreateWatchlistRequest(name="w0", symbols=["XYZ", "ABC"]))
    with pytest.raises(APIError) as e:
        c.add_asset_to_watchlist_by_id(w.id, "FRC")
    _refused(e, 422, "at most 2 symbols")
    with pytest.raises(APIError) as e:
        c.create_watchlist(CreateWatchlistRequest(name="big", symbols=["XYZ", "ABC", "FRC"]))
    _refused(e, 422, "at most 2 symbols")
    for i in range(1, MAX_WATCHLISTS):
        c.create_watchlist(CreateWatchlistRequest(name=f"w{i}", symbols=[]))
    with pytest.raises(APIError) as e:
        c.create_watchlist(CreateWatchlistRequest(name="one too many", symbols=[]))
    _refused(e, 422, f"at most {MAX_WATCHLISTS} watchlists")
    assert len(c.get_watchlists()) == MAX_WATCHLISTS  # type: ignore[arg-type]
    assert MAX_SYMBOLS == 200  # (the documented default)


def test_configurations_read_and_written(server: Server) -> None:
    url, mine, theirs = server
    c = sdk(url, mine)
    cfg: Any = c.get_account_configurations()
    assert (cfg.suspend_trade, cfg.fractional_trading, cfg.no_shorting) == (False, True, True)
    assert cfg.max_margin_multiplier == "1" and cfg.trade_confirm_email == "none"
    assert cfg.dtbp_check is None and cfg.pdt_check is None and not cfg.ptp_no_exception_entry
    cfg.suspend_trade = True  # alpaca-py sends every field back: the others as they are
    out: Any = c.set_account_configurations(cfg)
    assert out.suspend_trade and out.fractional_trading
    assert c.get_account_configurations().suspend_trade  # type: ignore[union-attr]
    assert c.get_account().trade_suspended_by_user  # type: ignore[union-attr]
    other: Any = sdk(url, theirs).get_account_configurations()
    assert not other.suspend_trade  # per account


def test_configurations_mercato_cannot_honour_are_refused(server: Server) -> None:
    url, mine, _ = server
    c = sdk(url, mine)
    cfg: Any = c.get_account_configurations()
    for name, value in (
        ("no_shorting", False),
        ("trade_confirm_email", "all"),
        ("ptp_no_exception_entry", True),
        ("max_margin_multiplier", "4"),
        ("dtbp_check", "both"),
        ("pdt_check", "entry"),
        ("max_options_trading_level", 2),
    ):
        bad = AccountConfiguration(**{**cfg.model_dump(), name: value})
        with pytest.raises(APIError) as e:
            c.set_account_configurations(bad)
        _refused(e, 422, name)
    headers = {"APCA-API-KEY-ID": mine[0], "APCA-API-SECRET-KEY": mine[1]}
    r = httpx.patch(f"{url}/v2/account/configurations", headers=headers, json={"day_trading": True})
    assert r.status_code == 422 and "day_trading" in r.json()["message"]
    r = httpx.patch(
        f"{url}/v2/account/configurations", headers=headers, json={"suspend_trade": "yes"}
    )
    assert r.status_code == 422 and "suspend_trade" in r.json()["message"]
    r = httpx.patch(
        f"{url}/v2/account/configurations", headers=headers, json={"max_margin_multiplier": "1.0"}
    )
    assert r.status_code == 200  # the same number
    after: Any = c.get_account_configurations()
    assert after == cfg  # nothing changed


def _buy(c: TradingClient, qty: Any, symbol: str = "XYZ") -> Any:
    return c.submit_order(
        MarketOrderRequest(
            symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        )
    )


def test_suspend_trade_stops_new_orders_on_every_api(server: Server) -> None:
    url, mine, theirs = server
    c = sdk(url, mine)
    resting: Any = c.submit_order(
        LimitOrderRequest(
            symbol="XYZ", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=90
        )
    )
    cfg: Any = c.get_account_configurations()
    cfg.suspend_trade = True
    c.set_account_configurations(cfg)
    with pytest.raises(APIError) as e:
        _buy(c, 1)
    _refused(e, 403, "suspend_trade")
    headers = {"APCA-API-KEY-ID": mine[0], "APCA-API-SECRET-KEY": mine[1]}
    r = httpx.patch(f"{url}/v2/orders/{resting.id}", headers=headers, json={"qty": "2"})
    assert r.status_code == 403 and "suspend_trade" in r.json()["message"]
    native = {"Authorization": f"Bearer {mine[0]}:{mine[1]}"}
    order = {"symbol": "XYZ", "side": "buy", "type": "market", "qty": "1", "tif": "day"}
    r = httpx.post(f"{url}/v1/orders", headers=native, json=order)
    assert r.status_code == 403 and "suspend_trade" in r.json()["error"]["message"]
    assert _buy(sdk(url, theirs), 1).status == "filled"  # another account trades on
    assert c.get_all_positions() == []
    c.cancel_order_by_id(resting.id)  # cancels still work
    cfg.suspend_trade = False
    c.set_account_configurations(cfg)
    assert _buy(c, 1).status == "filled"


def test_fractional_trading_off_refuses_fractions(server: Server) -> None:
    url, mine, _ = server
    c = sdk(url, mine)
    headers = {"APCA-API-KEY-ID": mine[0], "APCA-API-SECRET-KEY": mine[1]}
    order = {"symbol": "FRC", "side": "buy", "type": "limit", "time_in_force": "gtc"}
    r = httpx.post(
        f"{url}/v2/orders", headers=headers, json={**order, "qty": "0.5", "limit_price": "99"}
    )
    assert r.status_code == 200, r.text
    cfg: Any = c.get_account_configurations()
    cfg.fractional_trading = False
    assert not c.set_account_configurations(cfg).fractional_trading  # type: ignore[union-attr]
    r = httpx.post(
        f"{url}/v2/orders", headers=headers, json={**order, "qty": "0.5", "limit_price": "99"}
    )
    assert r.status_code == 403 and "fractional_trading" in r.json()["message"]
    r = httpx.post(
        f"{url}/v2/orders", headers=headers, json={**order, "qty": "2", "limit_price": "99"}
    )
    assert r.status_code == 200, r.text  # whole units go


def test_settings_survive_a_restart_with_a_sql_store(
    market: Any, serve_app: Serve, tmp_path: Path
) -> None:
    _add(market)
    db = f"sqlite:///{tmp_path / 'users.sqlite'}"
    key = market.auth.create_key(market.trader)
    prefs = SqlPrefs(db)
    url, _ = serve_app(create_app(market.platform, market.auth, prefs=prefs))
    c = sdk(url, key)
    w: Any = c.create_watchlist(CreateWatchlistRequest(name="kept", symbols=["ABC", "XYZ"]))
    cfg: Any = c.get_account_configurations()
    cfg.suspend_trade = True
    c.set_account_configurations(cfg)
    prefs.close()
    again = SqlPrefs(db)  # a new gateway on the same database
    try:
        url2, _ = serve_app(create_app(market.platform, market.auth, prefs=again))
        c2 = sdk(url2, key)
        kept: Any = c2.get_watchlist_by_id(w.id)
        assert kept.name == "kept" and [a.symbol for a in kept.assets] == ["ABC", "XYZ"]
        assert kept.created_at == w.created_at
        assert c2.get_account_configurations().suspend_trade  # type: ignore[union-attr]
        with pytest.raises(APIError) as e:
            _buy(c2, 1)
        _refused(e, 403, "suspend_trade")
    finally:
        again.close()

"""Instrument validation and the tick/lot checks at the decimal edge."""

from __future__ import annotations

import pytest

from mercato.domain import DecimalError, Instrument


def test_a_plain_instrument_is_valid() -> None:
    assert Instrument(symbol="ACME").validate() is None
    assert Instrument(symbol="X" * 32, tick_size=5, lot_size=100, price_scale=0).validate() is None
    assert Instrument(symbol="BTC-USD", price_scale=18, qty_scale=18).validate() is None


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"symbol": ""}, "symbol"),
        ({"symbol": "X" * 33}, "symbol"),
        ({"symbol": "AB\n"}, "symbol"),
        ({"symbol": "A\x00B"}, "symbol"),
        ({"symbol": "ACME", "tick_size": 0}, "tick and lot"),
        ({"symbol": "ACME", "tick_size": -1}, "tick and lot"),
        ({"symbol": "ACME", "lot_size": 0}, "tick and lot"),
        ({"symbol": "ACME", "lot_size": -10}, "tick and lot"),
        ({"symbol": "ACME", "price_scale": -1}, "scales"),
        ({"symbol": "ACME", "price_scale": 19}, "scales"),
        ({"symbol": "ACME", "qty_scale": -1}, "scales"),
        ({"symbol": "ACME", "qty_scale": 19}, "scales"),
    ],
)
def test_malformed_instruments_say_why(kwargs: dict[str, object], problem: str) -> None:
    reason = Instrument(**kwargs).validate()  # type: ignore[arg-type]
    assert reason is not None and problem in reason


TICK_5_CENTS = Instrument(symbol="ACME", tick_size=5, lot_size=100, price_scale=2, qty_scale=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("101.25", 10125), ("101.20", 10120), ("101.3", 10130), ("0.05", 5), ("101", 10100)],
)
def test_price_on_the_tick_grid_is_accepted(text: str, expected: int) -> None:
    assert TICK_5_CENTS.price(text) == expected


@pytest.mark.parametrize("text", ["101.21", "101.24", "0.01", "0.04"])
def test_price_off_the_tick_grid_is_refused(text: str) -> None:
    with pytest.raises(DecimalError, match="tick size"):
        TICK_5_CENTS.price(text)


def test_price_with_too_many_places_is_refused() -> None:
    with pytest.raises(DecimalError, match="decimal places"):
        TICK_5_CENTS.price("101.255")


@pytest.mark.parametrize(("text", "expected"), [("100", 100), ("2500", 2500), ("0", 0)])
def test_quantity_in_whole_lots_is_accepted(text: str, expected: int) -> None:
    assert TICK_5_CENTS.qty(text) == expected


@pytest.mark.parametrize("text", ["1", "150", "99"])
def test_quantity_not_a_whole_lot_is_refused(text: str) -> None:
    with pytest.raises(DecimalError, match="lot size"):
        TICK_5_CENTS.qty(text)


def test_fractional_quantity_is_refused_at_qty_scale_0() -> None:
    with pytest.raises(DecimalError):
        TICK_5_CENTS.qty("100.5")


def test_fractional_quantities_at_a_qty_scale() -> None:
    btc = Instrument(symbol="BTC", tick_size=1, lot_size=1000, price_scale=2, qty_scale=8)
    assert btc.qty("0.00001") == 1000
    with pytest.raises(DecimalError, match="lot size"):
        btc.qty("0.000015")


def test_formatting_uses_the_instrument_scales() -> None:
    assert TICK_5_CENTS.format_price(10125) == "101.25"
    assert TICK_5_CENTS.format_qty(2500) == "2500"
    assert Instrument(symbol="BTC", qty_scale=8).format_qty(1000) == "0.00001000"

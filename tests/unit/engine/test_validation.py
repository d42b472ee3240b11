"""Commands the engine refuses: each answered by one Rejected event that changes nothing."""

from __future__ import annotations

import pytest

from mercato.domain import AddInstrument, Command, NewOrder, Rejected, SetTradingStatus
from mercato.domain.types import OrderType, TradingStatus
from mercato.engine import Engine, UnknownCommand, state_hash

from .helpers import BUY, FOK, IOC, SYM, Market, buy, cancel, replace, sell


def assert_rejected_without_change(m: Market, cmd: object, reason: str) -> Rejected:
    before = state_hash(m.engine)
    events = m.raw(cmd)  # type: ignore[arg-type]
    assert len(events) == 1, events
    (e,) = events
    assert isinstance(e, Rejected)
    assert e.reason == reason, e
    # only the sequence number moved
    m.engine.seq -= 1
    assert state_hash(m.engine) == before
    m.engine.seq += 1
    return e


# -- instruments -------------------------------------------------------------------------


def test_adding_an_instrument_twice_is_rejected() -> None:
    m = Market()
    e = assert_rejected_without_change(m, AddInstrument(symbol=SYM), "duplicate_symbol")
    assert (e.command, e.symbol) == ("ai", SYM)


@pytest.mark.parametrize(
    "cmd",
    [
        AddInstrument(symbol=""),
        AddInstrument(symbol="B", tick_size=0),
        AddInstrument(symbol="B", lot_size=-1),
        AddInstrument(symbol="B", price_scale=19),
    ],
)
def test_a_malformed_instrument_is_rejected_with_the_problem(cmd: AddInstrument) -> None:
    e = assert_rejected_without_change(Market(), cmd, "invalid_instrument")
    assert e.detail


class Mystery(Command, tag="mystery"):
    pass


def test_an_unknown_command_raises() -> None:
    with pytest.raises(UnknownCommand):
        Engine().process(Mystery())


# -- prices and quantities on the grid ---------------------------------------------------


def test_price_not_a_multiple_of_the_tick_is_rejected() -> None:
    m = Market(tick=5)
    e = assert_rejected_without_change(m, buy(1, 10, 102), "price_not_tick_multiple")
    assert "tick size" in e.detail


def test_stop_limit_price_not_a_multiple_of_the_tick_is_rejected() -> None:
    m = Market(tick=5)
    assert_rejected_without_change(m, buy(1, 10, 102, stop=100), "price_not_tick_multiple")


def test_stop_price_not_a_multiple_of_the_tick_is_rejected() -> None:
    m = Market(tick=5)
    assert_rejected_without_change(m, buy(1, 10, stop=101), "stop_price_not_tick_multiple")
    assert_rejected_without_change(m, buy(1, 10, 100, stop=101), "stop_price_not_tick_multiple")


def test_quantity_not_a_multiple_of_the_lot_is_rejected() -> None:
    m = Market(lot=100)
    e = assert_rejected_without_change(m, buy(1, 150, 100), "qty_not_lot_multiple")
    assert "lot size" in e.detail


def test_prices_and_quantities_on_the_grid_are_accepted() -> None:
    m = Market(tick=5, lot=100)
    assert m(buy(1, 200, 105)) == [("accepted", 1), ("delta", "bid", 105, 200)]


def test_replace_to_a_price_off_the_tick_is_rejected() -> None:
    m = Market(tick=5)
    m(buy(1, 10, 100))
    assert_rejected_without_change(m, replace(1, 103, 10), "price_not_tick_multiple")


def test_replace_to_a_quantity_off_the_lot_is_rejected() -> None:
    m = Market(lot=10)
    m(buy(1, 10, 100))
    assert_rejected_without_change(m, replace(1, 100, 15), "qty_not_lot_multiple")


@pytest.mark.parametrize("qty", [0, -10])
def test_non_positive_quantity_is_rejected(qty: int) -> None:
    assert_rejected_without_change(Market(), buy(1, qty, 100), "invalid_qty")


@pytest.mark.parametrize("qty", [0, -1])
def test_replace_to_a_non_positive_quantity_is_rejected(qty: int) -> None:
    m = Market()
    m(buy(1, 10, 100))
    assert_rejected_without_change(m, replace(1, 100, qty), "invalid_qty")


@pytest.mark.parametrize("price", [0, -5])
def test_limit_without_a_positive_price_is_rejected(price: int) -> None:
    cmd = buy(1, 10, price, type=OrderType.LIMIT)
    assert_rejected_without_change(Market(), cmd, "invalid_price")


def test_market_order_with_a_price_is_rejected() -> None:
    cmd = buy(1, 10, 100, type=OrderType.MARKET)
    assert_rejected_without_change(Market(), cmd, "price_not_allowed")


def test_stop_without_a_stop_price_is_rejected() -> None:
    cmd = buy(1, 10, type=OrderType.STOP)
    assert_rejected_without_change(Market(), cmd, "invalid_stop_price")


def test_limit_with_a_stop_price_is_rejected() -> None:
    cmd = buy(1, 10, 100, stop=99, type=OrderType.LIMIT)
    assert_rejected_without_change(Market(), cmd, "invalid_stop_price")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("side", 3, "invalid_side"), ("type", 9, "invalid_type"), ("tif", 0, "invalid_tif")],
)
def test_unknown_enum_values_are_rejected(field: str, value: int, reason: str) -> None:
    fields = {f: getattr(buy(1, 10, 100), f) for f in NewOrder.__struct_fields__}
    fields[field] = value
    assert_rejected_without_change(Market(), NewOrder(**fields), reason)


@pytest.mark.parametrize("tif", [IOC, FOK])
def test_post_only_needs_gtc_or_day(tif: int) -> None:
    assert_rejected_without_change(
        Market(), buy(1, 10, 100, tif=tif, post_only=True), "post_only_not_allowed"
    )


def test_post_only_needs_a_limit_order() -> None:
    assert_rejected_without_change(Market(), buy(1, 10, post_only=True), "post_only_not_allowed")


# -- symbols, ids --------------------------------------------------------------------------


def test_unknown_symbol_is_rejected() -> None:
    m = Market()
    e = assert_rejected_without_change(m, buy(1, 10, 100, sym="NOPE"), "unknown_symbol")
    assert (e.command, e.order_id, e.symbol) == ("n", 1, "NOPE")
    assert_rejected_without_change(
        m, SetTradingStatus(symbol="NOPE", status=TradingStatus.HALTED), "unknown_symbol"
    )


def test_cancel_or_replace_naming_another_symbol_is_an_unknown_order() -> None:
    m = Market(symbols=(SYM, "OTHER"))
    m(buy(1, 10, 100))
    assert_rejected_without_change(m, cancel(1, sym="OTHER"), "unknown_order")
    assert_rejected_without_change(m, replace(1, 100, 5, sym="OTHER"), "unknown_order")
    assert_rejected_without_change(m, cancel(1, sym="NOPE"), "unknown_order")


def test_duplicate_order_id_of_a_resting_order_is_rejected() -> None:
    m = Market()
    m(buy(1, 10, 100))
    e = assert_rejected_without_change(m, sell(1, 10, 200), "duplicate_order_id")
    assert (e.command, e.order_id) == ("n", 1)
    assert m.queue(BUY, 100) == [1] and m.asks() == []


def test_duplicate_order_id_of_a_waiting_stop_is_rejected() -> None:
    m = Market()
    m(buy(1, 10, stop=100))
    assert_rejected_without_change(m, buy(1, 10, 90), "duplicate_order_id")


def test_duplicate_order_id_on_another_symbol_is_rejected() -> None:
    m = Market(symbols=(SYM, "OTHER"))
    m(buy(1, 10, 100))
    assert_rejected_without_change(m, buy(1, 10, 100, sym="OTHER"), "duplicate_order_id")

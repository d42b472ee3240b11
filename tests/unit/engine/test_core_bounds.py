"""What the core keeps grows with its accounts and live orders, not with its traffic."""

from __future__ import annotations

from .test_core_scenarios import BUY, SELL, TRADER, WHALE, long_20_at_100, risk_kinds

BAND_SLACK = 64  # mercato.engine.core.BAND_SLACK (not imported: the test predates it)


def test_margin_band_heaps_stay_bounded_under_trading() -> None:
    desk = long_20_at_100()
    core = desk.core
    for _ in range(2_000):  # each trade gives the trader's position a new band
        desk.limit(WHALE, SELL, 1, 10_000)
        desk.limit(TRADER, BUY, 1, 10_000)
        desk.limit(WHALE, BUY, 1, 10_000)
        desk.limit(TRADER, SELL, 1, 10_000)
    lows, highs = core._bands["AAA"]
    bound = 2 * len(core._band_version) + BAND_SLACK + 1
    assert len(lows) <= bound and len(highs) <= bound
    # the bands still work: a print below the trader's band still calls it (19 left at
    # 65.00: equity 335.00 under the 370.50 of maintenance)
    assert core.positions.get(TRADER, "AAA").qty == 19
    assert "MarginCall" in risk_kinds(desk.print_at(6_500))

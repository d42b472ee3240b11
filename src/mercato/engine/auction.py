"""Call auctions: the one price at which the orders an auction collected uncross.

The rules (``docs/matching.md``): the price is the one that executes the most quantity;
among prices that execute as much, the one that leaves the least surplus (unmatched
quantity on the heavier side at that price); then the one nearest the reference price
(the last trade price, the previous close at an opening); then the lower price. Only a
price from the lowest to the highest named (a limit, a protection price, the reference) is
a candidate: beyond them neither side's quantity grows. Between two neighbouring named
prices neither side's quantity changes, so every tick strictly inside executes as much and
leaves the same surplus: of those only the one nearest the reference (or the lowest) can
win, the tick next to one end or the other, or the reference itself.

Pure functions of their arguments, shared by the engine (the uncross and the indicative
price it publishes while an auction collects) and read by its tests.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Final

BUY: Final = 1
SELL: Final = 2
# (price, volume, surplus, surplus side): nothing crosses
NO_PRICE: Final = (0, 0, 0, 0)


def uncross_price(
    buys: list[tuple[int, int]], sells: list[tuple[int, int]], reference: int, tick: int = 1
) -> tuple[int, int, int, int]:
    """The auction price for ``buys`` and ``sells`` as (limit, quantity), limit 0 meaning
    any price, with ``reference`` (0: none) on a grid of ``tick``: (price, volume,
    surplus, surplus side), the side 0 when both sides are equal; ``NO_PRICE`` when no
    quantity would execute (or market orders alone meet with no reference price)."""
    any_buy, buy_limits, buy_qty = _split(buys)
    any_sell, sell_limits, sell_qty = _split(sells)
    # suffix sums of the buys (willing at p: limit >= p), prefix sums of the sells
    buy_at_or_above = [0] * (len(buy_qty) + 1)
    for i in range(len(buy_qty) - 1, -1, -1):
        buy_at_or_above[i] = buy_at_or_above[i + 1] + buy_qty[i]
    sell_at_or_below = [0] * (len(sell_qty) + 1)
    for i, q in enumerate(sell_qty):
        sell_at_or_below[i + 1] = sell_at_or_below[i] + q
    named = set(buy_limits)
    named.update(sell_limits)
    if reference > 0:
        named.add(reference)
    ends = sorted(named)
    candidates = set(ends)
    for k in range(1, len(ends)):
        a, b = ends[k - 1], ends[k]
        if b - a > tick:  # the ticks inside: the two next to the ends
            candidates.add(a + tick)
            candidates.add(b - tick)
    best = NO_PRICE
    best_key = (0, 0, 0, 0)
    for p in candidates:
        b = any_buy + buy_at_or_above[bisect_left(buy_limits, p)]
        s = any_sell + sell_at_or_below[bisect_right(sell_limits, p)]
        volume = b if b < s else s
        if volume <= 0:
            continue
        surplus = b - s if b > s else s - b
        key = (-volume, surplus, abs(p - reference) if reference > 0 else 0, p)
        if best[1] == 0 or key < best_key:
            best_key = key
            best = (p, volume, surplus, BUY if b > s else SELL if s > b else 0)
    return best


def _split(orders: list[tuple[int, int]]) -> tuple[int, list[int], list[int]]:
    """(quantity at any price, the limits ascending, their quantities)."""
    anywhere = 0
    limits: list[int] = []
    qty: list[int] = []
    for limit, q in sorted(orders):
        if limit <= 0:
            anywhere += q
        else:
            limits.append(limit)
            qty.append(q)
    return anywhere, limits, qty

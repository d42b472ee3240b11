"""Turning price x quantity into cash, and fees: the only roundings money goes through.

An instrument's prices are integers of ``10**-price_scale`` and its quantities of
``10**-qty_scale``; its currency's amounts are integers of ``10**-cash_scale``. So the cash
of ``qty`` at ``price`` is ``price * qty * 10**(cash_scale - price_scale - qty_scale)``,
exact when that exponent is not negative, and otherwise a division. The rules:

- A trade's cash is rounded **down** (``cash_floor``), and buyer and seller move the same
  amount, so the posting balances whatever the rounding.
- A fee is rounded **down** (``fee_floor``) on the trade's cash.
- A reservation is rounded **up** (``cash_ceil``, ``fee_ceil``), on the order's limit (or
  protection) price and its whole quantity.

Rounding fills down and reservations up means that an order's fills, however it is split,
never cost more than was reserved for it: a sum of floors is at most the floor of the sum.
"""

from __future__ import annotations

from typing import Final

BPS: Final = 10_000  # basis points in one


def cash_factor(cash_scale: int, price_scale: int, qty_scale: int) -> tuple[int, int]:
    """(multiplier, divisor) turning price x qty into cash units."""
    e = cash_scale - price_scale - qty_scale
    return (10**e, 1) if e >= 0 else (1, 10**-e)


def cash_floor(price: int, qty: int, mul: int, div: int) -> int:
    return price * qty * mul // div


def cash_ceil(price: int, qty: int, mul: int, div: int) -> int:
    return -(-price * qty * mul // div)


def fee_floor(cash: int, bps: int) -> int:
    return cash * bps // BPS


def fee_ceil(cash: int, bps: int) -> int:
    return -(-cash * bps // BPS)


def band_price(price: int, bps: int, up: bool, tick: int) -> int:
    """``price`` moved by ``bps`` up or down, rounded to a tick toward ``price`` (so the
    band is never wider than asked), and never below one tick."""
    if up:
        p = price * (BPS + bps) // BPS
        return max(p - p % tick, tick)
    p = -(-price * (BPS - bps) // BPS)
    p += -p % tick
    return max(p, tick)

"""Risk limits: a value type, configured per platform and per account."""

from __future__ import annotations

import msgspec


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    """One account's limits; 0 means "no limit" for each. Cash amounts in cash units."""

    max_order_qty: int = 0
    max_order_notional: int = 0
    max_open_orders: int = 0
    max_position: int = 0  # per instrument, absolute quantity
    max_gross_exposure: int = 0
    daily_loss_limit: int = 0  # a positive amount: the largest loss allowed today
    collar_bps: int = 0  # price band around the reference price, in basis points
    max_commands_per_s: int = 0

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative (0 means no limit)")

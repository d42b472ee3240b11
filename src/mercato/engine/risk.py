"""Pre-trade risk: the checks a new order passes before it reaches matching.

Pure and deterministic like the rest of the engine: no I/O, no clock (time is the
command's ``ts`` in nanoseconds), integers only. The caller (the engine, next) supplies
every figure as a plain ``int``: quantities, prices and cash amounts in their scaled units.

``check_new_order`` returns the first failing ``RiskReject`` or ``None``. Its checks run in
this fixed order (``CHECK_ORDER``), global switches first, then the rate limit, then what
depends on the order alone, then what depends on the account's state:

 1. platform_killed            the platform-wide kill switch is on
 2. account_killed             the account's kill switch is on
 3. throttled                  more than ``max_commands_per_s`` in one second (see ``Throttle``)
 4. max_order_qty              qty > limit
 5. max_order_notional         notional > limit
 6. price_collar               price outside reference x (1 +/- collar_bps / 10000)
 7. max_open_orders            open_orders + 1 > limit
 8. short_sale_not_allowed     cash account selling more than it has available to sell
 9. max_position               |position after a complete fill| > limit, unless reducing
10. max_gross_exposure         gross_exposure + notional > limit, unless reducing
11. daily_loss_limit           today's loss > limit, unless reducing
12. insufficient_buying_power  buying_power < notional + fees (for what needs cash)

A limit of 0 means "no limit". An order *reduces* when it moves the position toward zero
without crossing it; such orders are exempt from 9-11 so that an account over a limit (or
whose limits were lowered) can still get back under it. Kill switches exempt nothing.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from mercato.domain.reasons import RiskReject
from mercato.domain.risk import RiskLimits
from mercato.domain.types import AccountId, Side

__all__ = [
    "CHECK_ORDER",
    "KillSwitches",
    "LimitsBook",
    "RiskLimits",
    "RiskReject",
    "Throttle",
    "check_new_order",
    "collar_ok",
]

BPS: Final = 10_000  # basis points in one
WINDOW_NS: Final = 1_000_000_000  # the throttle's window: one second in nanoseconds


CHECK_ORDER: Final = (
    RiskReject.PLATFORM_KILLED,
    RiskReject.ACCOUNT_KILLED,
    RiskReject.THROTTLED,
    RiskReject.MAX_ORDER_QTY,
    RiskReject.MAX_ORDER_NOTIONAL,
    RiskReject.PRICE_COLLAR,
    RiskReject.MAX_OPEN_ORDERS,
    RiskReject.SHORT_SALE_NOT_ALLOWED,
    RiskReject.MAX_POSITION,
    RiskReject.MAX_GROSS_EXPOSURE,
    RiskReject.DAILY_LOSS_LIMIT,
    RiskReject.INSUFFICIENT_BUYING_POWER,
)
"""The order in which ``check_new_order`` runs its checks (and so which reject wins)."""


class LimitsBook:
    """Platform defaults plus per-account overrides (an override replaces all the defaults).

    Derive an override from the defaults with ``msgspec.structs.replace(book.defaults, ...)``.
    """

    def __init__(self, defaults: RiskLimits | None = None) -> None:
        self.defaults = RiskLimits() if defaults is None else defaults
        self._accounts: dict[AccountId, RiskLimits] = {}

    def set_account(self, account: AccountId, limits: RiskLimits) -> None:
        self._accounts[account] = limits

    def clear_account(self, account: AccountId) -> None:
        """Drop the account's override: it follows the defaults again."""
        self._accounts.pop(account, None)

    def for_account(self, account: AccountId) -> RiskLimits:
        return self._accounts.get(account, self.defaults)

    def overrides(self) -> list[tuple[AccountId, RiskLimits]]:
        """Every override, sorted by account (for snapshots)."""
        return sorted(self._accounts.items())


class Throttle:
    """A sliding one-second window per account over the timestamps of admitted commands.

    A command at ``ts`` is admitted when fewer than ``limit`` admitted commands of the
    account have timestamps in ``(ts - 1s, ts]``; only admitted commands are recorded, so a
    client that keeps sending while throttled gets through again one second after its last
    admitted command rather than never. A sliding window (not a token bucket) because it
    gives exactly the guarantee the limit's name states: never more than ``limit`` commands
    in any one second. Memory: at most ``limit`` timestamps per account.

    Time never runs backwards here: a timestamp earlier than the account's latest recorded
    one counts as that latest one.
    """

    def __init__(self) -> None:
        self._windows: dict[AccountId, deque[int]] = {}

    def admit(self, account: AccountId, ts: int, limit: int) -> bool:
        """Record and admit the command if the window has room; ``limit`` 0 admits all."""
        if limit == 0:
            return True
        window = self._windows.get(account)
        if window is None:
            window = deque()
            self._windows[account] = window
        elif window and ts < window[-1]:
            ts = window[-1]
        start = ts - WINDOW_NS
        while window and window[0] <= start:
            window.popleft()
        while len(window) > limit:  # the limit was lowered: keep the newest ``limit``
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(ts)
        return True

    def recent(self, account: AccountId) -> list[int]:
        """The account's recorded timestamps, oldest first (for tests and snapshots)."""
        return list(self._windows.get(account, ()))


class KillSwitches:
    """Platform-wide and per-account kill switches: when on, no new order gets through."""

    def __init__(self) -> None:
        self.platform = False
        self._accounts: set[AccountId] = set()

    def set_platform(self, killed: bool) -> None:
        self.platform = killed

    def set_account(self, account: AccountId, killed: bool) -> None:
        if killed:
            self._accounts.add(account)
        else:
            self._accounts.discard(account)

    def account_killed(self, account: AccountId) -> bool:
        return account in self._accounts

    def killed_accounts(self) -> list[AccountId]:
        return sorted(self._accounts)


def collar_ok(side: int, price: int, reference: int, collar_bps: int) -> bool:
    """Whether ``price`` is inside the collar: a buy at most reference x (1 + bps/10000),
    a sell at least reference x (1 - bps/10000), both bounds included. Exact in integers.
    """
    if side == Side.BUY:
        return price * BPS <= reference * (BPS + collar_bps)
    return price * BPS >= reference * (BPS - collar_bps)


def _reduces(side: int, qty: int, position: int) -> bool:
    """Whether the order moves the position toward zero without crossing it."""
    if side == Side.BUY:
        return position < 0 and qty <= -position
    return position > 0 and qty <= position


def check_new_order(
    *,
    account: AccountId,
    side: int,
    qty: int,
    price: int,
    notional: int,
    fees: int = 0,
    open_orders: int,
    position: int,
    gross_exposure: int,
    day_pnl: int,
    reference_price: int,
    ts: int,
    cash_account: bool,
    available_to_sell: int,
    buying_power: int,
    required: int | None = None,
    limits: LimitsBook,
    throttle: Throttle,
    kills: KillSwitches,
) -> RiskReject | None:
    """The first check the new order fails, in the order of ``CHECK_ORDER``, or ``None``.

    ``price`` is the limit price, or for a market order the price it is collared at (the
    reference price itself passes). ``notional`` and ``fees`` are the order's cash value and
    fees; ``open_orders`` the account's open order count; ``position`` its signed quantity
    in the symbol; ``gross_exposure`` the marked value of all its positions; ``day_pnl``
    today's realized + unrealized PnL; ``reference_price`` 0 means none is known, and then
    the collar does not apply. ``available_to_sell`` (cash accounts) is the quantity held
    net of open sell orders; ``buying_power`` the cash the account may commit, and
    ``required`` what the order needs of it when that is not ``notional + fees`` (a margin
    account's initial margin plus fees).

    Buying power is checked for buys, and in a margin account for sells that do not reduce
    a long (they open or add to a short). The only state changed is the throttle's window,
    which records the command once it gets past the kill switches and is admitted.
    """
    if side != Side.BUY and side != Side.SELL:
        raise ValueError(f"unknown side {side!r}")
    if kills.platform:
        return RiskReject.PLATFORM_KILLED
    if kills.account_killed(account):
        return RiskReject.ACCOUNT_KILLED
    lim = limits.for_account(account)
    if not throttle.admit(account, ts, lim.max_commands_per_s):
        return RiskReject.THROTTLED
    if lim.max_order_qty and qty > lim.max_order_qty:
        return RiskReject.MAX_ORDER_QTY
    if lim.max_order_notional and notional > lim.max_order_notional:
        return RiskReject.MAX_ORDER_NOTIONAL
    if (
        lim.collar_bps
        and reference_price > 0
        and not collar_ok(side, price, reference_price, lim.collar_bps)
    ):
        return RiskReject.PRICE_COLLAR
    if lim.max_open_orders and open_orders >= lim.max_open_orders:
        return RiskReject.MAX_OPEN_ORDERS
    if cash_account and side == Side.SELL and qty > available_to_sell:
        return RiskReject.SHORT_SALE_NOT_ALLOWED
    reduces = _reduces(side, qty, position)
    if not reduces:
        after = position + qty if side == Side.BUY else position - qty
        if lim.max_position and abs(after) > lim.max_position:
            return RiskReject.MAX_POSITION
        if lim.max_gross_exposure and gross_exposure + notional > lim.max_gross_exposure:
            return RiskReject.MAX_GROSS_EXPOSURE
        if lim.daily_loss_limit and -day_pnl > lim.daily_loss_limit:
            return RiskReject.DAILY_LOSS_LIMIT
    needs_cash = side == Side.BUY or not (cash_account or reduces)
    if needs_cash and buying_power < (notional + fees if required is None else required):
        return RiskReject.INSUFFICIENT_BUYING_POWER
    return None

"""Machine-readable reasons carried by ``Rejected`` and ``OrderCancelled`` events."""

from __future__ import annotations

from enum import StrEnum


class Reject(StrEnum):
    """Why a command was refused. The command changed nothing."""

    UNKNOWN_SYMBOL = "unknown_symbol"
    DUPLICATE_SYMBOL = "duplicate_symbol"
    INVALID_INSTRUMENT = "invalid_instrument"
    INSTRUMENT_HALTED = "instrument_halted"
    INSTRUMENT_CLOSED = "instrument_closed"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    UNKNOWN_ORDER = "unknown_order"
    INVALID_SIDE = "invalid_side"
    INVALID_TYPE = "invalid_type"
    INVALID_TIF = "invalid_tif"
    INVALID_QTY = "invalid_qty"
    QTY_NOT_LOT_MULTIPLE = "qty_not_lot_multiple"
    INVALID_PRICE = "invalid_price"
    PRICE_NOT_TICK_MULTIPLE = "price_not_tick_multiple"
    PRICE_NOT_ALLOWED = "price_not_allowed"
    INVALID_STOP_PRICE = "invalid_stop_price"
    STOP_PRICE_NOT_TICK_MULTIPLE = "stop_price_not_tick_multiple"
    POST_ONLY_NOT_ALLOWED = "post_only_not_allowed"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    INVALID_PROTECT_PRICE = "invalid_protect_price"
    INVALID_TRAIL = "invalid_trail"
    INVALID_ORDER_ID = "invalid_order_id"
    INVALID_EXPIRE_TIME = "invalid_expire_time"
    INVALID_SELF_TRADE = "invalid_self_trade"
    # accounts and money
    UNKNOWN_ACCOUNT = "unknown_account"
    DUPLICATE_ACCOUNT = "duplicate_account"
    INVALID_ACCOUNT = "invalid_account"
    UNKNOWN_CURRENCY = "unknown_currency"
    DUPLICATE_CURRENCY = "duplicate_currency"
    INVALID_CURRENCY = "invalid_currency"
    UNKNOWN_ASSET = "unknown_asset"
    INVALID_AMOUNT = "invalid_amount"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INVALID_RISK = "invalid_risk"
    NO_REFERENCE_PRICE = "no_reference_price"
    ACCOUNT_LIQUIDATING = "account_liquidating"


class CancelReason(StrEnum):
    """Why a live order ended without filling completely."""

    USER = "user"  # a cancel command
    IOC = "ioc"  # immediate-or-cancel remainder
    MARKET = "market"  # market orders never rest
    FOK = "fok"  # fill-or-kill could not fill completely: nothing traded
    SELF_TRADE = "self_trade"  # resting order cancelled by self-trade prevention
    KILL_SWITCH = "kill_switch"  # a kill switch was turned on
    LIQUIDATION = "liquidation"  # the account is being liquidated
    OCO = "oco"  # the other order of a one-cancels-other pair (or bracket exit) filled
    BRACKET = "bracket"  # the bracket's entry ended, so its exits are not needed


class RiskReject(StrEnum):
    """Why pre-trade risk refused a new order (machine-readable, stable values)."""

    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    SHORT_SALE_NOT_ALLOWED = "short_sale_not_allowed"
    MAX_ORDER_QTY = "max_order_qty"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_OPEN_ORDERS = "max_open_orders"
    MAX_POSITION = "max_position"
    MAX_GROSS_EXPOSURE = "max_gross_exposure"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    PRICE_COLLAR = "price_collar"
    THROTTLED = "throttled"
    ACCOUNT_KILLED = "account_killed"
    PLATFORM_KILLED = "platform_killed"

"""What each client method sends and how its answer is read: shared by the sync and the
async client, which only differ in how the request travels."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeAlias, TypeVar
from urllib.parse import quote

import msgspec

from mercato.client import models as m
from mercato.client.errors import ERRORS, MercatoError, RateLimited

T = TypeVar("T")
R = TypeVar("R")

Number: TypeAlias = str | int | Decimal
"""A price, quantity or amount: sent as a decimal string, never through a float."""
Side: TypeAlias = Literal["buy", "sell"]
OrderType: TypeAlias = Literal["market", "limit", "stop", "stop_limit"]
TimeInForce: TypeAlias = Literal["gtc", "day", "ioc", "fok", "opg", "cls", "gtd"]
OrderClass: TypeAlias = Literal["simple", "bracket", "oto", "oco"]
OrderStatusFilter: TypeAlias = Literal["open", "closed", "all"]
TradingStatus: TypeAlias = Literal[
    "open", "halted", "closed", "pre_open", "opening_auction", "closing_auction"
]
AccountKind: TypeAlias = Literal["cash", "margin"]
Venue: TypeAlias = Literal["internal", "paper"]
Role: TypeAlias = Literal["trader", "admin"]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request, and how to turn a successful answer's body into the result."""

    method: str
    path: str
    read: Callable[[bytes], T]
    params: dict[str, str | int] = field(default_factory=dict)
    body: dict[str, Any] | None = None


def decimal_str(value: object, name: str) -> str:
    """A number as the API wants it: a plain decimal string. Floats are refused (they are
    not exact); so are bools, NaN and infinities."""
    if isinstance(value, float):
        raise TypeError(f"{name}: floats are not exact; pass a str, int or Decimal")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"{name}: expected str, int or Decimal, got {type(value).__name__}")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if not value.is_finite():
        raise ValueError(f"{name}: {value} is not a finite number")
    return format(value, "f")  # never an exponent: Decimal("1E+3") -> "1000"


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected int, got {type(value).__name__}")
    return value


def _reader(kind: type[T]) -> Callable[[bytes], T]:
    return msgspec.json.Decoder(kind).decode


def _then(read: Callable[[bytes], T], f: Callable[[T], R]) -> Callable[[bytes], R]:
    return lambda raw: f(read(raw))


_me = _reader(m.Me)
_instruments = _reader(list[m.Instrument])
_currency = _reader(m.Currency)
_currencies = _reader(list[m.Currency])
_account = _reader(m.Account)
_positions = _reader(list[m.Position])
_order = _reader(m.Order)
_orders = _reader(list[m.Order])
_fills = _reader(list[m.Fill])
_cancelled = _then(_reader(m.Cancelled), lambda c: c.cancelled)
_user = _reader(m.User)
_new_account = _reader(m.NewAccount)
_balance = _reader(m.Balance)
_limits = _then(_reader(m.Limits), lambda x: x.limits)
_created = _then(_reader(m.Created), lambda c: c.symbol)
_status = _reader(m.InstrumentStatus)
_kill = _reader(m.KillSwitch)
_quote = _reader(m.Quote)
_depth = _reader(m.Depth)
_trades = _reader(list[m.Trade])
_bars = _reader(list[m.Bar])
_stats = _reader(m.Stats)
BarInterval: TypeAlias = Literal["1s", "1m", "5m", "1h", "1d"]


def _params(**kw: str | int | None) -> dict[str, str | int]:
    return {k: v for k, v in kw.items() if v is not None}


def _order_path(order_id: str | int) -> str:
    if isinstance(order_id, bool) or not isinstance(order_id, str | int):
        raise TypeError(f"order_id: expected str or int, got {type(order_id).__name__}")
    text = str(order_id)
    if not text.isdigit():
        raise ValueError(f"order_id: {order_id!r} is not an order id")
    return f"/v1/orders/{text}"


# -- trading ---------------------------------------------------------------------------


def me() -> Call[m.Me]:
    return Call("GET", "/v1/me", _me)


def instruments() -> Call[list[m.Instrument]]:
    return Call("GET", "/v1/instruments", _instruments)


def currencies() -> Call[list[m.Currency]]:
    return Call("GET", "/v1/currencies", _currencies)


def account(account: int | None) -> Call[m.Account]:
    return Call("GET", "/v1/account", _account, _params(account=account))


def positions(account: int | None) -> Call[list[m.Position]]:
    return Call("GET", "/v1/positions", _positions, _params(account=account))


def place_order(
    symbol: str,
    side: Side,
    type: OrderType,
    qty: Number,
    price: Number | None,
    stop_price: Number | None,
    tif: TimeInForce,
    client_order_id: str,
    post_only: bool,
    account: int | None,
    expire_at: str | datetime | None = None,
    *,
    order_class: OrderClass = "simple",
    take_profit: Number | None = None,
    stop_loss: Number | None = None,
    stop_loss_limit: Number | None = None,
) -> Call[m.Order]:
    body: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "type": type,
        "qty": decimal_str(qty, "qty"),
        "tif": tif,
        "post_only": post_only,
        "client_order_id": client_order_id,
    }
    if price is not None:
        body["price"] = decimal_str(price, "price")
    if stop_price is not None:
        body["stop_price"] = decimal_str(stop_price, "stop_price")
    if account is not None:
        body["account"] = _int(account, "account")
    if expire_at is not None:
        body["expire_at"] = _rfc3339(expire_at)
    if order_class != "simple":
        body["order_class"] = order_class
    if take_profit is not None:
        body["take_profit"] = {"price": decimal_str(take_profit, "take_profit")}
    if stop_loss is not None:
        body["stop_loss"] = {"stop_price": decimal_str(stop_loss, "stop_loss")}
        if stop_loss_limit is not None:
            body["stop_loss"]["limit_price"] = decimal_str(stop_loss_limit, "stop_loss_limit")
    elif stop_loss_limit is not None:
        raise ValueError("stop_loss_limit goes with stop_loss")
    return Call("POST", "/v1/orders", _order, body=body)


def _rfc3339(when: str | datetime) -> str:
    """A GTD order's expiry: an RFC 3339 string as given, or an aware datetime."""
    if isinstance(when, str):
        return when
    if when.tzinfo is None:
        raise ValueError("expire_at: a datetime with its time zone (e.g. UTC)")
    return when.isoformat()


def get_order(order_id: str | int) -> Call[m.Order]:
    return Call("GET", _order_path(order_id), _order)


def orders(
    status: OrderStatusFilter, symbol: str | None, limit: int, account: int | None
) -> Call[list[m.Order]]:
    params = _params(status=status, symbol=symbol, limit=_int(limit, "limit"), account=account)
    return Call("GET", "/v1/orders", _orders, params)


def replace_order(
    order_id: str | int, qty: Number, price: Number | None, stop_price: Number | None
) -> Call[m.Order]:
    body: dict[str, Any] = {"qty": decimal_str(qty, "qty")}
    if price is not None:
        body["price"] = decimal_str(price, "price")
    if stop_price is not None:
        body["stop_price"] = decimal_str(stop_price, "stop_price")
    return Call("PATCH", _order_path(order_id), _order, body=body)


def cancel_order(order_id: str | int) -> Call[m.Order]:
    return Call("DELETE", _order_path(order_id), _order)


def cancel_all() -> Call[list[str]]:
    return Call("DELETE", "/v1/orders", _cancelled)


def fills(symbol: str | None, limit: int) -> Call[list[m.Fill]]:
    return Call("GET", "/v1/fills", _fills, _params(symbol=symbol, limit=_int(limit, "limit")))


# -- market data -----------------------------------------------------------------------


def _md_path(symbol: str, what: str) -> str:
    if not isinstance(symbol, str) or not symbol:
        raise TypeError("symbol: expected a non-empty str")
    return f"/v1/marketdata/{quote(symbol, safe='')}/{what}"


def quote_of(symbol: str) -> Call[m.Quote]:
    return Call("GET", _md_path(symbol, "quote"), _quote)


def depth(symbol: str, levels: int) -> Call[m.Depth]:
    return Call("GET", _md_path(symbol, "depth"), _depth, {"levels": _int(levels, "levels")})


def trades(symbol: str, limit: int) -> Call[list[m.Trade]]:
    return Call("GET", _md_path(symbol, "trades"), _trades, {"limit": _int(limit, "limit")})


def bars(symbol: str, interval: BarInterval, limit: int) -> Call[list[m.Bar]]:
    params: dict[str, str | int] = {"interval": interval, "limit": _int(limit, "limit")}
    return Call("GET", _md_path(symbol, "bars"), _bars, params)


def stats(symbol: str) -> Call[m.Stats]:
    return Call("GET", _md_path(symbol, "stats"), _stats)


# -- admin -----------------------------------------------------------------------------


def create_user(username: str, password: str, role: Role) -> Call[m.User]:
    body = {"username": username, "password": password, "role": role}
    return Call("POST", "/v1/admin/users", _user, body=body)


def create_account(
    user_id: int, kind: AccountKind, currency: str, venue: Venue
) -> Call[m.NewAccount]:
    body = {"user_id": _int(user_id, "user_id"), "kind": kind, "currency": currency, "venue": venue}
    return Call("POST", "/v1/admin/accounts", _new_account, body=body)


def add_currency(currency: str, scale: int) -> Call[m.Currency]:
    if not isinstance(currency, str):
        raise TypeError("currency: expected str")
    body = {"currency": currency, "scale": _int(scale, "scale")}
    return Call("POST", "/v1/admin/currencies", _currency, body=body)


def transfer(account: int, asset: str, amount: Number, withdraw: bool) -> Call[m.Balance]:
    path = f"/v1/admin/accounts/{_int(account, 'account')}/transfers"
    body = {"asset": asset, "amount": decimal_str(amount, "amount"), "withdraw": withdraw}
    return Call("POST", path, _balance, body=body)


def set_limits(account: int, limits: Mapping[str, int]) -> Call[m.RiskLimits]:
    unknown = set(limits) - set(m.RiskLimits.__struct_fields__)
    if unknown:
        raise TypeError(f"unknown limits: {', '.join(sorted(unknown))}")
    body = {k: _int(v, k) for k, v in limits.items()}
    path = f"/v1/admin/accounts/{_int(account, 'account')}/limits"
    return Call("PUT", path, _limits, body=body)


_DECIMAL_FIELDS = ("tick_size", "lot_size", "reference_price")
_INT_FIELDS = ("price_scale", "qty_scale", "maker_fee_bps", "taker_fee_bps")


def add_instrument(symbol: str, fields: Mapping[str, Number | None]) -> Call[str]:
    body: dict[str, Any] = {"symbol": symbol}
    for k, v in fields.items():
        if v is None:
            continue
        if k in _DECIMAL_FIELDS:
            body[k] = decimal_str(v, k)
        elif k in _INT_FIELDS:
            body[k] = _int(v, k)
        elif k in ("currency", "calendar"):
            if not isinstance(v, str):
                raise TypeError(f"{k}: expected str")
            body[k] = v
        else:
            raise TypeError(f"unknown instrument field: {k}")
    return Call("POST", "/v1/admin/instruments", _created, body=body)


def set_status(symbol: str, status: TradingStatus) -> Call[m.InstrumentStatus]:
    path = f"/v1/admin/instruments/{quote(symbol, safe='')}/status"
    return Call("PUT", path, _status, body={"status": status})


def kill(on: bool, account: int) -> Call[m.KillSwitch]:
    body = {"on": bool(on), "account": _int(account, "account")}
    return Call("POST", "/v1/admin/kill", _kill, body=body)


# -- answers ---------------------------------------------------------------------------


class _ErrorBody(msgspec.Struct):
    code: str
    message: str = ""


class _Error(msgspec.Struct):
    error: _ErrorBody


_error = msgspec.json.Decoder(_Error)


def error_for(status: int, content: bytes, headers: Mapping[str, str]) -> MercatoError:
    """The exception for an answer that is not a success."""
    try:
        e = _error.decode(content).error
        code, message = e.code, e.message
    except msgspec.MsgspecError:
        code, message = f"http_{status}", content.decode("utf-8", "replace")[:500]
    if status == 429:
        retry: float | None = None
        with contextlib.suppress(ValueError):
            retry = float(headers.get("retry-after", ""))
        return RateLimited(status, code, message, retry)
    return ERRORS.get(status, MercatoError)(status, code, message)


def auth_headers(key_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key_id}:{secret}", "Accept": "application/json"}


def encode(body: dict[str, Any] | None) -> bytes | None:
    return None if body is None else msgspec.json.encode(body)

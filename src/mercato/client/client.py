"""The sync (``Client``) and async (``AsyncClient``) clients of the native REST API.

Both have the same methods with the same arguments; the async one's are coroutines.
A call that the server refuses raises a ``MercatoError`` subclass.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar

import httpx

from mercato.client import _calls as c
from mercato.client import models as m
from mercato.client._calls import (
    AccountKind,
    BarInterval,
    Number,
    OrderClass,
    OrderStatusFilter,
    OrderType,
    Role,
    Side,
    TimeInForce,
    TradingStatus,
    Venue,
)

T = TypeVar("T")


class _Base:
    def __init__(self, base_url: str, key_id: str, secret: str) -> None:
        self.base_url = str(base_url).rstrip("/")
        self._headers = c.auth_headers(key_id, secret)

    def _prepare(self, call: c.Call[T]) -> tuple[str, bytes | None, dict[str, str]]:
        """The URL, the body and the headers of a call."""
        headers = dict(self._headers)
        content = c.encode(call.body)
        if content is not None:
            headers["Content-Type"] = "application/json"
        return self.base_url + call.path, content, headers

    @staticmethod
    def _read(call: c.Call[T], r: httpx.Response) -> T:
        if r.status_code >= 400:
            raise c.error_for(r.status_code, r.content, r.headers)
        return call.read(r.content)


class Client(_Base):
    """A synchronous client over ``httpx.Client``.

    ``transport`` and ``timeout`` (seconds) go to the ``httpx.Client`` this creates;
    ``http`` is an ``httpx.Client`` to use instead (for instance starlette's
    ``TestClient``), with its own settings, which this client does not close. Use as a
    context manager, or call ``close()``.
    """

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, key_id, secret)
        self._owned = http is None
        self.http = http if http is not None else httpx.Client(transport=transport, timeout=timeout)

    def close(self) -> None:
        if self._owned:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: c.Call[T]) -> T:
        url, content, headers = self._prepare(call)
        r = self.http.request(
            call.method,
            url,
            params=call.params or None,
            content=content,
            headers=headers,
        )
        return self._read(call, r)

    # -- trading -------------------------------------------------------------------------

    def me(self) -> m.Me:
        """Who the key belongs to: user id, name, role and accounts."""
        return self._send(c.me())

    def instruments(self) -> list[m.Instrument]:
        return self._send(c.instruments())

    def currencies(self) -> list[m.Currency]:
        """Every currency and its scale."""
        return self._send(c.currencies())

    def account(self, account: int | None = None) -> m.Account:
        """An account's figures (default: the caller's first account)."""
        return self._send(c.account(account))

    def positions(self, account: int | None = None) -> list[m.Position]:
        return self._send(c.positions(account))

    def place_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        qty: Number,
        price: Number | None = None,
        stop_price: Number | None = None,
        tif: TimeInForce = "gtc",
        client_order_id: str = "",
        post_only: bool = False,
        account: int | None = None,
        expire_at: str | datetime | None = None,
        *,
        order_class: OrderClass = "simple",
        take_profit: Number | None = None,
        stop_loss: Number | None = None,
        stop_loss_limit: Number | None = None,
    ) -> m.Order:
        """Place an order. A refusal by risk or validation raises ``RiskRejected``."""
        return self._send(
            c.place_order(
                symbol,
                side,
                type,
                qty,
                price,
                stop_price,
                tif,
                client_order_id,
                post_only,
                account,
                expire_at,
                order_class=order_class,
                take_profit=take_profit,
                stop_loss=stop_loss,
                stop_loss_limit=stop_loss_limit,
            )
        )

    def get_order(self, order_id: str | int) -> m.Order:
        """One order, with its ``history``."""
        return self._send(c.get_order(order_id))

    def orders(
        self,
        status: OrderStatusFilter = "open",
        symbol: str | None = None,
        limit: int = 100,
        account: int | None = None,
    ) -> list[m.Order]:
        """The caller's orders, most recently updated first."""
        return self._send(c.orders(status, symbol, limit, account))

    def replace_order(
        self,
        order_id: str | int,
        qty: Number,
        price: Number | None = None,
        stop_price: Number | None = None,
    ) -> m.Order:
        return self._send(c.replace_order(order_id, qty, price, stop_price))

    def cancel_order(self, order_id: str | int) -> m.Order:
        return self._send(c.cancel_order(order_id))

    def cancel_all(self) -> list[str]:
        """Cancel every open order of the caller's; the ids of those cancelled."""
        return self._send(c.cancel_all())

    def fills(self, symbol: str | None = None, limit: int = 100) -> list[m.Fill]:
        """The caller's executions, most recent first."""
        return self._send(c.fills(symbol, limit))

    # -- market data (public: no key needed) ---------------------------------------------

    def quote(self, symbol: str) -> m.Quote:
        return self._send(c.quote_of(symbol))

    def depth(self, symbol: str, levels: int = 10) -> m.Depth:
        return self._send(c.depth(symbol, levels))

    def trades(self, symbol: str, limit: int = 100) -> list[m.Trade]:
        """The most recent trades, newest first."""
        return self._send(c.trades(symbol, limit))

    def bars(self, symbol: str, interval: BarInterval = "1m", limit: int = 100) -> list[m.Bar]:
        """The most recent bars, oldest first (the open one last)."""
        return self._send(c.bars(symbol, interval, limit))

    def stats(self, symbol: str) -> m.Stats:
        return self._send(c.stats(symbol))

    # -- admin ---------------------------------------------------------------------------

    def create_user(self, username: str, password: str, role: Role = "trader") -> m.User:
        return self._send(c.create_user(username, password, role))

    def create_account(
        self,
        user_id: int,
        kind: AccountKind = "cash",
        currency: str = "USD",
        venue: Venue = "internal",
    ) -> m.NewAccount:
        return self._send(c.create_account(user_id, kind, currency, venue))

    def transfer(
        self, account: int, asset: str, amount: Number, withdraw: bool = False
    ) -> m.Balance:
        """Deposit (or with ``withdraw``, withdraw) cash or an instrument's units."""
        return self._send(c.transfer(account, asset, amount, withdraw))

    def set_limits(self, account: int, **limits: int) -> m.RiskLimits:
        """Set an account's risk limits (the fields of ``RiskLimits``; 0: no limit)."""
        return self._send(c.set_limits(account, limits))

    def add_currency(self, currency: str, scale: int) -> m.Currency:
        """Add a currency whose amounts have ``scale`` decimals (admin)."""
        return self._send(c.add_currency(currency, scale))

    def add_instrument(
        self,
        symbol: str,
        *,
        tick_size: Number | None = None,
        lot_size: Number | None = None,
        price_scale: int | None = None,
        qty_scale: int | None = None,
        currency: str | None = None,
        reference_price: Number | None = None,
        maker_fee_bps: int | None = None,
        taker_fee_bps: int | None = None,
        calendar: str | None = None,
    ) -> str:
        """List an instrument; a field left out takes the server's default (``calendar``:
        the platform's). Its symbol."""
        fields: dict[str, Number | None] = {
            "tick_size": tick_size,
            "lot_size": lot_size,
            "price_scale": price_scale,
            "qty_scale": qty_scale,
            "currency": currency,
            "reference_price": reference_price,
            "maker_fee_bps": maker_fee_bps,
            "taker_fee_bps": taker_fee_bps,
            "calendar": calendar,
        }
        return self._send(c.add_instrument(symbol, fields))

    def set_status(self, symbol: str, status: TradingStatus) -> m.InstrumentStatus:
        return self._send(c.set_status(symbol, status))

    def kill(self, on: bool, account: int = 0) -> m.KillSwitch:
        """Turn the kill switch on or off for one account (0: the whole platform)."""
        return self._send(c.kill(on, account))


class AsyncClient(_Base):
    """An asynchronous client over ``httpx.AsyncClient``: ``Client``'s methods, awaited.

    ``transport`` (for instance ``httpx.ASGITransport(app=app)``) and ``timeout`` go to
    the ``httpx.AsyncClient`` this creates; ``http`` is an ``httpx.AsyncClient`` to use
    instead, with its own settings, which this client does not close. Use as an async
    context manager, or call ``aclose()``.
    """

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, key_id, secret)
        self._owned = http is None
        self.http = (
            http if http is not None else httpx.AsyncClient(transport=transport, timeout=timeout)
        )

    async def aclose(self) -> None:
        if self._owned:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, call: c.Call[T]) -> T:
        url, content, headers = self._prepare(call)
        r = await self.http.request(
            call.method,
            url,
            params=call.params or None,
            content=content,
            headers=headers,
        )
        return self._read(call, r)

    # -- trading -------------------------------------------------------------------------

    async def me(self) -> m.Me:
        """Who the key belongs to: user id, name, role and accounts."""
        return await self._send(c.me())

    async def instruments(self) -> list[m.Instrument]:
        return await self._send(c.instruments())

    async def currencies(self) -> list[m.Currency]:
        """Every currency and its scale."""
        return await self._send(c.currencies())

    async def account(self, account: int | None = None) -> m.Account:
        """An account's figures (default: the caller's first account)."""
        return await self._send(c.account(account))

    async def positions(self, account: int | None = None) -> list[m.Position]:
        return await self._send(c.positions(account))

    async def place_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        qty: Number,
        price: Number | None = None,
        stop_price: Number | None = None,
        tif: TimeInForce = "gtc",
        client_order_id: str = "",
        post_only: bool = False,
        account: int | None = None,
        expire_at: str | datetime | None = None,
        *,
        order_class: OrderClass = "simple",
        take_profit: Number | None = None,
        stop_loss: Number | None = None,
        stop_loss_limit: Number | None = None,
    ) -> m.Order:
        """Place an order. A refusal by risk or validation raises ``RiskRejected``."""
        return await self._send(
            c.place_order(
                symbol,
                side,
                type,
                qty,
                price,
                stop_price,
                tif,
                client_order_id,
                post_only,
                account,
                expire_at,
                order_class=order_class,
                take_profit=take_profit,
                stop_loss=stop_loss,
                stop_loss_limit=stop_loss_limit,
            )
        )

    async def get_order(self, order_id: str | int) -> m.Order:
        """One order, with its ``history``."""
        return await self._send(c.get_order(order_id))

    async def orders(
        self,
        status: OrderStatusFilter = "open",
        symbol: str | None = None,
        limit: int = 100,
        account: int | None = None,
    ) -> list[m.Order]:
        """The caller's orders, most recently updated first."""
        return await self._send(c.orders(status, symbol, limit, account))

    async def replace_order(
        self,
        order_id: str | int,
        qty: Number,
        price: Number | None = None,
        stop_price: Number | None = None,
    ) -> m.Order:
        return await self._send(c.replace_order(order_id, qty, price, stop_price))

    async def cancel_order(self, order_id: str | int) -> m.Order:
        return await self._send(c.cancel_order(order_id))

    async def cancel_all(self) -> list[str]:
        """Cancel every open order of the caller's; the ids of those cancelled."""
        return await self._send(c.cancel_all())

    async def fills(self, symbol: str | None = None, limit: int = 100) -> list[m.Fill]:
        """The caller's executions, most recent first."""
        return await self._send(c.fills(symbol, limit))

    # -- market data (public: no key needed) ---------------------------------------------

    async def quote(self, symbol: str) -> m.Quote:
        return await self._send(c.quote_of(symbol))

    async def depth(self, symbol: str, levels: int = 10) -> m.Depth:
        return await self._send(c.depth(symbol, levels))

    async def trades(self, symbol: str, limit: int = 100) -> list[m.Trade]:
        """The most recent trades, newest first."""
        return await self._send(c.trades(symbol, limit))

    async def bars(
        self, symbol: str, interval: BarInterval = "1m", limit: int = 100
    ) -> list[m.Bar]:
        """The most recent bars, oldest first (the open one last)."""
        return await self._send(c.bars(symbol, interval, limit))

    async def stats(self, symbol: str) -> m.Stats:
        return await self._send(c.stats(symbol))

    # -- admin ---------------------------------------------------------------------------

    async def create_user(self, username: str, password: str, role: Role = "trader") -> m.User:
        return await self._send(c.create_user(username, password, role))

    async def create_account(
        self,
        user_id: int,
        kind: AccountKind = "cash",
        currency: str = "USD",
        venue: Venue = "internal",
    ) -> m.NewAccount:
        return await self._send(c.create_account(user_id, kind, currency, venue))

    async def transfer(
        self, account: int, asset: str, amount: Number, withdraw: bool = False
    ) -> m.Balance:
        """Deposit (or with ``withdraw``, withdraw) cash or an instrument's units."""
        return await self._send(c.transfer(account, asset, amount, withdraw))

    async def set_limits(self, account: int, **limits: int) -> m.RiskLimits:
        """Set an account's risk limits (the fields of ``RiskLimits``; 0: no limit)."""
        return await self._send(c.set_limits(account, limits))

    async def add_currency(self, currency: str, scale: int) -> m.Currency:
        """Add a currency whose amounts have ``scale`` decimals (admin)."""
        return await self._send(c.add_currency(currency, scale))

    async def add_instrument(
        self,
        symbol: str,
        *,
        tick_size: Number | None = None,
        lot_size: Number | None = None,
        price_scale: int | None = None,
        qty_scale: int | None = None,
        currency: str | None = None,
        reference_price: Number | None = None,
        maker_fee_bps: int | None = None,
        taker_fee_bps: int | None = None,
        calendar: str | None = None,
    ) -> str:
        """List an instrument; a field left out takes the server's default (``calendar``:
        the platform's). Its symbol."""
        fields: dict[str, Number | None] = {
            "tick_size": tick_size,
            "lot_size": lot_size,
            "price_scale": price_scale,
            "qty_scale": qty_scale,
            "currency": currency,
            "reference_price": reference_price,
            "maker_fee_bps": maker_fee_bps,
            "taker_fee_bps": taker_fee_bps,
            "calendar": calendar,
        }
        return await self._send(c.add_instrument(symbol, fields))

    async def set_status(self, symbol: str, status: TradingStatus) -> m.InstrumentStatus:
        return await self._send(c.set_status(symbol, status))

    async def kill(self, on: bool, account: int = 0) -> m.KillSwitch:
        """Turn the kill switch on or off for one account (0: the whole platform)."""
        return await self._send(c.kill(on, account))

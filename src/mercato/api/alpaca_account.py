"""The account's own settings on ``/v2``: watchlists (``/v2/watchlists``) and the
account configurations (``/v2/account/configurations``), over ``AccountSettings``.

A watchlist belongs to the caller's account: another account's id answers 404, exactly
as an id that does not exist. Of the configurations, ``suspend_trade`` (no new orders,
no replaces; cancels still work) and ``fractional_trading`` (False: whole units only)
are the account's to change and are enforced on every order, whatever API it comes
through (``ApiBase.submit``). The others say what Mercato does and accept only that
value: a PATCH that sends them as they are (alpaca-py sends every field) changes
nothing; another value is a 422 naming the field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec
from starlette.responses import Response

from mercato.api.alpaca_models import (
    NS,
    Asset,
    Configurations,
    ConfigurationsPatch,
    Watchlist,
    WatchlistBody,
    WatchlistSymbol,
    WatchlistUpdate,
)
from mercato.api.base import ApiError, Ctx, json_response
from mercato.domain.types import AccountKind
from mercato.ports import WatchlistRecord
from mercato.services.account_settings import AccountSettings, SettingsError

_B = TypeVar("_B", bound=msgspec.Struct)


def _stamp(ts: int) -> str:
    whole, ns = divmod(ts, 1_000_000_000)
    t = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{t}.{ns // 1000:06d}Z"


def _refused(e: SettingsError) -> ApiError:
    return ApiError(404 if e.missing else 422, e.code, e.message)


async def _body(c: Ctx, kind: type[_B]) -> _B:
    try:
        return await c.body(kind)
    except ApiError as e:
        if e.code == "invalid_body":  # (msgspec's message names the field)
            raise ApiError(422, e.code, e.message) from None
        raise


def _watchlist_id(c: Ctx) -> str:
    try:
        return str(uuid.UUID(c.request.path_params["id"]))
    except ValueError:
        raise ApiError(404, "watchlist_not_found", "watchlist not found") from None


class AlpacaAccount:
    """The handlers; ``account`` finds the caller's account, ``asset`` an Asset."""

    def __init__(
        self,
        api: Any,
        settings: AccountSettings,
        account: Callable[[Ctx], int],
        asset: Callable[[str], Asset],
    ) -> None:
        self.api = api
        self.settings = settings
        self._account = account
        self._asset = asset

    def _watchlist(self, w: WatchlistRecord) -> Watchlist:
        return Watchlist(
            id=w.id,
            account_id=str(uuid.uuid5(NS, f"account-{w.account}")),
            name=w.name,
            created_at=_stamp(w.created_at),
            updated_at=_stamp(w.updated_at),
            assets=[self._asset(s) for s in w.symbols],
        )

    # -- watchlists ----------------------------------------------------------------------

    async def watchlists(self, c: Ctx) -> Response:
        mine = await self.settings.watchlists(self._account(c))
        return json_response([self._watchlist(w) for w in mine])

    async def create_watchlist(self, c: Ctx) -> Response:
        body = await _body(c, WatchlistBody)
        try:
            w = await self.settings.create(self._account(c), body.name, body.symbols or [])
        except SettingsError as e:
            raise _refused(e) from None
        return json_response(self._watchlist(w))

    async def watchlist(self, c: Ctx) -> Response:
        try:
            w = await self.settings.watchlist(self._account(c), _watchlist_id(c))
        except SettingsError as e:
            raise _refused(e) from None
        return json_response(self._watchlist(w))

    async def _mine(self, c: Ctx) -> str:
        """The path's watchlist id, once it is the caller's (404 first: before the body
        is read, so that a stranger learns nothing from a validation error)."""
        wid = _watchlist_id(c)
        try:
            await self.settings.watchlist(self._account(c), wid)
        except SettingsError as e:
            raise _refused(e) from None
        return wid

    async def update_watchlist(self, c: Ctx) -> Response:
        wid = await self._mine(c)
        body = await _body(c, WatchlistUpdate)
        if body.name is None and body.symbols is None:
            raise ApiError(422, "invalid_body", "send name, symbols or both")
        try:
            w = await self.settings.update(self._account(c), wid, body.name, body.symbols)
        except SettingsError as e:
            raise _refused(e) from None
        return json_response(self._watchlist(w))

    async def add_to_watchlist(self, c: Ctx) -> Response:
        wid = await self._mine(c)
        body = await _body(c, WatchlistSymbol)
        try:
            w = await self.settings.add(self._account(c), wid, body.symbol)
        except SettingsError as e:
            raise _refused(e) from None
        return json_response(self._watchlist(w))

    async def remove_from_watchlist(self, c: Ctx) -> Response:
        wid = _watchlist_id(c)
        symbol = c.request.path_params["symbol"]
        try:
            w = await self.settings.remove(self._account(c), wid, symbol)
        except SettingsError as e:
            raise _refused(e) from None
        return json_response(self._watchlist(w))

    async def delete_watchlist(self, c: Ctx) -> Response:
        try:
            await self.settings.delete(self._account(c), _watchlist_id(c))
        except SettingsError as e:
            raise _refused(e) from None
        return Response(status_code=204)

    # -- configurations ------------------------------------------------------------------

    def _configurations(self, account: int) -> Configurations:
        cfg = self.settings.config(account)
        cash = self.api.core.accounts[account].kind == AccountKind.CASH
        return Configurations(
            dtbp_check=None,  # no day-trade buying power check (as Alpaca now answers)
            pdt_check=None,  # no pattern-day-trader check
            trade_confirm_email="none",  # Mercato sends no email
            suspend_trade=cfg.suspend_trade,
            no_shorting=cash,  # a cash account cannot sell short, a margin account can
            fractional_trading=cfg.fractional_trading,
            max_margin_multiplier="1" if cash else "2",  # as /v2/account's multiplier
            ptp_no_exception_entry=False,
            max_options_trading_level=0,  # no options
        )

    async def configurations(self, c: Ctx) -> Response:
        return json_response(self._configurations(self._account(c)))

    async def set_configurations(self, c: Ctx) -> Response:
        account = self._account(c)
        body = await _body(c, ConfigurationsPatch)
        now = self._configurations(account)
        for name in ("dtbp_check", "pdt_check"):
            if getattr(body, name) is not None:
                raise ApiError(
                    422,
                    "unsupported_configuration",
                    f"{name}: Mercato has no such check (null only)",
                )
        fixed: dict[str, Any] = {
            "trade_confirm_email": now.trade_confirm_email,
            "no_shorting": now.no_shorting,
            "ptp_no_exception_entry": now.ptp_no_exception_entry,
            "max_options_trading_level": now.max_options_trading_level,
        }
        for name, value in fixed.items():
            sent = getattr(body, name)
            if sent is not None and sent != value:
                raise ApiError(
                    422,
                    "unsupported_configuration",
                    f"{name}: Mercato supports only {msgspec.json.encode(value).decode()} here",
                )
        if body.max_margin_multiplier is not None:
            try:
                same = Decimal(body.max_margin_multiplier) == Decimal(now.max_margin_multiplier)
            except InvalidOperation:
                same = False
            if not same:
                raise ApiError(
                    422,
                    "unsupported_configuration",
                    f"max_margin_multiplier: this account's is {now.max_margin_multiplier}"
                    " (it follows the account's kind)",
                )
        cfg = self.settings.config(account)
        new = msgspec.structs.replace(
            cfg,
            suspend_trade=cfg.suspend_trade if body.suspend_trade is None else body.suspend_trade,
            fractional_trading=cfg.fractional_trading
            if body.fractional_trading is None
            else body.fractional_trading,
        )
        if new != cfg:
            await self.settings.set_config(account, new)
        return json_response(self._configurations(account))

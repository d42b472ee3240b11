"""The native API's administrator handlers: users, accounts and their money and limits,
currencies, instruments, trading status and the kill switch."""

from __future__ import annotations

import asyncio
import re

import msgspec
from starlette.responses import Response

from mercato.adapters.calendars import CalendarError
from mercato.api import schemas as s
from mercato.api.base import ApiBase, ApiError, Ctx, json_response, path_int, units
from mercato.domain.commands import (
    AddCurrency,
    AddInstrument,
    CreateAccount,
    Deposit,
    SetInstrumentRisk,
    SetKillSwitch,
    SetRiskLimits,
    SetSelfTrade,
    SetTradingStatus,
    Withdraw,
)
from mercato.domain.instrument import MAX_BALANCE, MAX_SCALE, format_decimal
from mercato.domain.risk import RiskLimits
from mercato.domain.types import (
    SELF_TRADE_NAMES,
    AccountKind,
    TradingStatus,
    Venue,
)
from mercato.services.auth import AuthError

_STATUS = {
    "open": TradingStatus.OPEN,
    "halted": TradingStatus.HALTED,
    "closed": TradingStatus.CLOSED,
    "pre_open": TradingStatus.PRE_OPEN,
    "opening_auction": TradingStatus.OPENING_AUCTION,
    "closing_auction": TradingStatus.CLOSING_AUCTION,
}

_CURRENCY = re.compile(r"[A-Za-z0-9]{1,12}")  # the core's rule (ASCII letters and digits)


class AdminHandlers(ApiBase):
    # -- admin ---------------------------------------------------------------------------

    async def create_user(self, c: Ctx) -> Response:
        body = await c.body(s.UserRequest)
        try:
            user_id = await asyncio.to_thread(
                self.auth.create_user, body.username, body.password, body.role
            )
        except AuthError as e:
            raise ApiError(409 if e.code == "user_exists" else 400, e.code, str(e)) from None
        return json_response(
            {"user_id": user_id, "username": body.username, "role": body.role}, 201
        )

    async def create_account(self, c: Ctx) -> Response:
        body = await c.body(s.AccountRequest)
        if self.auth.user(body.user_id) is None:
            raise ApiError(404, "unknown_user", "no such user")
        account = self.platform.next_account_id()
        kind = AccountKind.CASH if body.kind == "cash" else AccountKind.MARGIN
        venue = Venue.INTERNAL if body.venue == "internal" else Venue.PAPER
        events = await self.submit(
            CreateAccount(
                ts=self.platform.now(),
                account=account,
                kind=kind,
                currency=body.currency,
                venue=venue,
            )
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(422, rej.reason, rej.detail or rej.reason)
        self.auth.add_account(body.user_id, account)
        return json_response({"account": account, "user_id": body.user_id}, 201)

    async def deposit(self, c: Ctx) -> Response:
        account = path_int(c.request, "account")
        if account not in self.core.accounts:
            raise ApiError(404, "unknown_account", "no such account")
        body = await c.body(s.DepositRequest)
        acct = self.core.accounts[account]
        if body.asset == acct.currency:
            scale = self.core.currencies[acct.currency]
        elif body.asset in self.core.currencies:
            message = f"asset: the account holds {acct.currency}, not {body.asset}"
            raise ApiError(422, "invalid_currency", message)
        else:
            scale = self.book(body.asset).qty_scale
        amount = units("amount", body.amount, scale)
        if (
            not body.withdraw
            and self.core.ledger.balance(account, body.asset) + amount > MAX_BALANCE
        ):
            most = format_decimal(MAX_BALANCE, scale)
            raise ApiError(422, "balance_too_large", f"a balance is at most {most}")
        kind = Withdraw if body.withdraw else Deposit
        events = await self.submit(
            kind(ts=self.platform.now(), account=account, asset=body.asset, amount=amount)
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(422, rej.reason, rej.detail or rej.reason)
        return json_response(
            {"account": account, "balance": self.money(account, self.core.cash(account))}
        )

    async def set_limits(self, c: Ctx) -> Response:
        account = path_int(c.request, "account")
        body = await c.body(s.LimitsRequest)
        try:
            limits = RiskLimits(**msgspec.structs.asdict(body))
        except ValueError as e:
            raise ApiError(400, "invalid_limits", str(e)) from None
        events = await self.submit(
            SetRiskLimits(ts=self.platform.now(), account=account, limits=limits)
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(404 if rej.reason == "unknown_account" else 422, rej.reason, rej.reason)
        return json_response({"account": account, "limits": msgspec.structs.asdict(limits)})

    async def set_self_trade(self, c: Ctx) -> Response:
        account = path_int(c.request, "account")
        body = await c.body(s.SelfTradeRequest)
        mode = {name: m for m, name in SELF_TRADE_NAMES.items()}[body.mode]
        events = await self.submit(SetSelfTrade(ts=self.platform.now(), account=account, mode=mode))
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(404 if rej.reason == "unknown_account" else 422, rej.reason, rej.reason)
        return json_response({"account": account, "self_trade": body.mode})

    async def add_currency(self, c: Ctx) -> Response:
        """A new cash asset: accounts may then hold it and instruments be quoted in it."""
        body = await c.body(s.CurrencyRequest)
        code = body.currency
        if not _CURRENCY.fullmatch(code):
            raise ApiError(422, "invalid_currency", "currency: 1-12 ASCII letters or digits")
        if not 0 <= body.scale <= MAX_SCALE:
            raise ApiError(422, "invalid_currency", f"scale: 0..{MAX_SCALE} decimals")
        if code in self.core.engine.books:
            raise ApiError(422, "invalid_currency", f"currency: {code} is an instrument")
        events = await self.submit(AddCurrency(ts=self.platform.now(), code=code, scale=body.scale))
        rej = self.refused(events)
        if rej is not None:
            status = 409 if rej.reason == "duplicate_currency" else 422
            raise ApiError(status, rej.reason, rej.detail or f"currency {code} exists already")
        return json_response({"currency": code, "scale": body.scale}, 201)

    async def currencies(self, c: Ctx) -> Response:
        """Every currency with its scale (USD, and those added), by name."""
        return json_response(
            [{"currency": k, "scale": v} for k, v in sorted(self.core.currencies.items())]
        )

    async def add_instrument(self, c: Ctx) -> Response:
        body = await c.body(s.InstrumentRequest)
        tick = units("tick_size", body.tick_size, body.price_scale)
        lot = units("lot_size", body.lot_size, body.qty_scale)
        ref = units("reference_price", body.reference_price, body.price_scale)
        spec = body.calendar or ""
        if spec:
            try:  # an exchange's calendar takes a second to load: off the loop
                await asyncio.to_thread(self.platform.calendar_for, spec)
            except CalendarError as e:
                raise ApiError(422, "invalid_calendar", f"calendar: {e}") from None
        ts = self.platform.now()
        events = await self.submit(
            AddInstrument(
                ts=ts,
                symbol=body.symbol,
                tick_size=tick,
                lot_size=lot,
                price_scale=body.price_scale,
                qty_scale=body.qty_scale,
                currency=body.currency,
                calendar=spec,
            )
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(
                409 if rej.reason == "duplicate_symbol" else 422,
                rej.reason,
                rej.detail or rej.reason,
            )
        events = await self.submit(
            SetInstrumentRisk(
                ts=self.platform.now(),
                symbol=body.symbol,
                maker_fee_bps=body.maker_fee_bps,
                taker_fee_bps=body.taker_fee_bps,
                reference_price=ref,
            )
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(422, rej.reason, rej.detail or rej.reason)
        return json_response({"symbol": body.symbol}, 201)

    async def set_status(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        self.book(symbol)
        body = await c.body(s.StatusRequest)
        await self.submit(
            SetTradingStatus(ts=self.platform.now(), symbol=symbol, status=_STATUS[body.status])
        )
        return json_response({"symbol": symbol, "status": body.status})

    async def kill(self, c: Ctx) -> Response:
        body = await c.body(s.KillRequest)
        events = await self.submit(
            SetKillSwitch(ts=self.platform.now(), account=body.account, on=body.on)
        )
        rej = self.refused(events)
        if rej is not None:
            raise ApiError(404, rej.reason, rej.reason)
        return json_response({"account": body.account, "on": body.on})

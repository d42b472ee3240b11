"""Watchlists and account configurations: each account's own settings, kept beside the
core through the ``AccountPrefs`` port, with the rules and limits that bound them.

Limits (each a 422 past it, so that no account can grow the store without end):
``MAX_WATCHLISTS`` watchlists per account, ``MAX_SYMBOLS`` symbols per watchlist, names
of 1 to ``MAX_NAME`` characters, unique within the account. Symbols are the platform's
instruments (``known``), each at most once in a watchlist.

The configurations are read on every order (``refusal``): they are all loaded at start
(one small row per account that changed a default) and kept in memory, written through
to the store. Writes are serialized by one lock, so that a read-modify-write of a
watchlist never loses another's change; the store is called off the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Final

import msgspec

from mercato.adapters.prefs import MemoryPrefs
from mercato.ports import AccountConfig, AccountPrefs, WatchlistRecord

MAX_WATCHLISTS: Final = 20  # per account
MAX_SYMBOLS: Final = 200  # per watchlist
MAX_NAME: Final = 64  # characters of a watchlist's name (Alpaca's limit)
DEFAULT_CONFIG: Final = AccountConfig()


class SettingsError(Exception):
    """A refused request: ``code`` is machine-readable; ``missing`` says it names
    something that is not there (a watchlist, a symbol in one): the API's 404."""

    def __init__(self, code: str, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.missing = missing


class AccountSettings:
    """The watchlists and configurations of every account, over ``store`` (None: in
    memory, lost with the process). ``clock``: ns since the epoch (the gateway's);
    ``known``: whether a symbol is an instrument."""

    def __init__(
        self,
        store: AccountPrefs | None,
        clock: Callable[[], int],
        known: Callable[[str], bool],
        *,
        max_watchlists: int = MAX_WATCHLISTS,
        max_symbols: int = MAX_SYMBOLS,
    ) -> None:
        self.store: AccountPrefs = store if store is not None else MemoryPrefs()
        self.clock = clock
        self.known = known
        self.max_watchlists = max_watchlists
        self.max_symbols = max_symbols
        self._configs = self.store.configs()
        self._lock = asyncio.Lock()

    # -- configurations ------------------------------------------------------------------

    def config(self, account: int) -> AccountConfig:
        return self._configs.get(account, DEFAULT_CONFIG)

    async def set_config(self, account: int, config: AccountConfig) -> None:
        async with self._lock:
            await asyncio.to_thread(self.store.put_config, account, config)
            self._configs[account] = config

    def refusal(self, account: int, qty: int, qty_scale: int) -> tuple[str, str] | None:
        """Why ``account``'s configuration refuses a new order (or a replace) of ``qty``
        units at ``qty_scale``: (code, message), or None. Pure and cheap: on every order."""
        cfg = self._configs.get(account)
        if cfg is None:
            return None
        if cfg.suspend_trade:
            return "trade_suspended", "new orders are suspended (configuration suspend_trade)"
        if not cfg.fractional_trading and qty % 10**qty_scale:
            return (
                "fractional_trading_disabled",
                "fractional quantities are off (configuration fractional_trading)",
            )
        return None

    # -- watchlists ----------------------------------------------------------------------

    async def watchlists(self, account: int) -> list[WatchlistRecord]:
        return await asyncio.to_thread(self.store.watchlists, account)

    async def watchlist(self, account: int, watchlist_id: str) -> WatchlistRecord:
        return _find(await self.watchlists(account), watchlist_id)

    async def create(self, account: int, name: str, symbols: list[str]) -> WatchlistRecord:
        async with self._lock:
            mine = await self.watchlists(account)
            if len(mine) >= self.max_watchlists:
                raise SettingsError(
                    "too_many_watchlists",
                    f"an account holds at most {self.max_watchlists} watchlists",
                )
            now = self.clock()
            w = WatchlistRecord(
                id=str(uuid.uuid4()),
                account=account,
                name=self._name(name, mine, None),
                symbols=self._symbols(symbols),
                created_at=now,
                updated_at=now,
            )
            await asyncio.to_thread(self.store.put_watchlist, w)
            return w

    async def update(
        self, account: int, watchlist_id: str, name: str | None, symbols: list[str] | None
    ) -> WatchlistRecord:
        """A new name, new symbols (all of them, replacing the old), or both."""
        async with self._lock:
            mine = await self.watchlists(account)
            w = _find(mine, watchlist_id)
            changes: dict[str, object] = {"updated_at": self.clock()}
            if name is not None:
                changes["name"] = self._name(name, mine, w.id)
            if symbols is not None:
                changes["symbols"] = self._symbols(symbols)
            return await self._put(msgspec.structs.replace(w, **changes))

    async def add(self, account: int, watchlist_id: str, symbol: str) -> WatchlistRecord:
        async with self._lock:
            w = _find(await self.watchlists(account), watchlist_id)
            if symbol in w.symbols:
                raise SettingsError("symbol_in_watchlist", f"{symbol!r} is in the watchlist")
            symbols = self._symbols([*w.symbols, symbol])
            return await self._put(
                msgspec.structs.replace(w, symbols=symbols, updated_at=self.clock())
            )

    async def remove(self, account: int, watchlist_id: str, symbol: str) -> WatchlistRecord:
        async with self._lock:
            w = _find(await self.watchlists(account), watchlist_id)
            if symbol not in w.symbols:
                raise SettingsError(
                    "symbol_not_in_watchlist", f"{symbol[:32]!r} is not in it", missing=True
                )
            symbols = tuple(s for s in w.symbols if s != symbol)
            return await self._put(
                msgspec.structs.replace(w, symbols=symbols, updated_at=self.clock())
            )

    async def delete(self, account: int, watchlist_id: str) -> None:
        async with self._lock:
            if not await asyncio.to_thread(self.store.delete_watchlist, account, watchlist_id):
                raise _not_found()

    async def _put(self, w: WatchlistRecord) -> WatchlistRecord:
        await asyncio.to_thread(self.store.put_watchlist, w)
        return w

    def _name(self, name: str, mine: list[WatchlistRecord], own: str | None) -> str:
        name = name.strip()
        if not 1 <= len(name) <= MAX_NAME:
            raise SettingsError("invalid_name", f"name: 1 to {MAX_NAME} characters")
        if any(w.name == name and w.id != own for w in mine):
            raise SettingsError("duplicate_name", f"name: a watchlist {name!r} exists")
        return name

    def _symbols(self, symbols: list[str]) -> tuple[str, ...]:
        if len(symbols) > self.max_symbols:
            raise SettingsError(
                "too_many_symbols", f"a watchlist holds at most {self.max_symbols} symbols"
            )
        seen: set[str] = set()
        for s in symbols:
            if not self.known(s):
                raise SettingsError("unknown_symbol", f"symbols: unknown symbol {s[:32]!r}")
            if s in seen:
                raise SettingsError("duplicate_symbol", f"symbols: {s!r} given twice")
            seen.add(s)
        return tuple(symbols)


def _not_found() -> SettingsError:
    return SettingsError("watchlist_not_found", "watchlist not found", missing=True)


def _find(mine: list[WatchlistRecord], watchlist_id: str) -> WatchlistRecord:
    for w in mine:
        if w.id == watchlist_id:
            return w
    raise _not_found()

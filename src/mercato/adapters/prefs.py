"""``AccountPrefs`` in memory: for a gateway without a database (tests, ``Platform()``
without a data directory). Nothing survives the process; what it holds is bounded by
the service's limits (``AccountSettings``: watchlists per account, symbols per
watchlist) times the accounts there are."""

from __future__ import annotations

import threading

from mercato.ports import AccountConfig, WatchlistRecord


class MemoryPrefs:
    """Watchlists and configurations in dicts, behind one lock."""

    def __init__(self) -> None:
        self._lists: dict[int, dict[str, WatchlistRecord]] = {}  # insertion: oldest first
        self._configs: dict[int, AccountConfig] = {}
        self._lock = threading.Lock()

    def watchlists(self, account: int) -> list[WatchlistRecord]:
        with self._lock:
            return list(self._lists.get(account, {}).values())

    def put_watchlist(self, w: WatchlistRecord) -> None:
        with self._lock:
            self._lists.setdefault(w.account, {})[w.id] = w

    def delete_watchlist(self, account: int, watchlist_id: str) -> bool:
        with self._lock:
            mine = self._lists.get(account, {})
            if mine.pop(watchlist_id, None) is None:
                return False
            if not mine:
                del self._lists[account]
            return True

    def configs(self) -> dict[int, AccountConfig]:
        with self._lock:
            return dict(self._configs)

    def put_config(self, account: int, config: AccountConfig) -> None:
        with self._lock:
            self._configs[account] = config

    def close(self) -> None:
        pass

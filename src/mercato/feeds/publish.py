"""Publishing a replay into a running platform (``mercato feed replay --publish URL``).

The platform's admin routes take an outside instrument (``POST /v1/admin/feeds``: market
data only, never traded here) and batches of its events (``POST
/v1/admin/feeds/{symbol}/events``); its market-data service then serves them like its own:
snapshots, WebSocket channels, the last-value cache, the web screen. Event times are moved
to now (each keeps its distance from the first), so that bars and 24-hour statistics treat
the replay as live; combine with ``--speed 1`` to watch it at the recorded pace.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from mercato.domain.instrument import Instrument, format_decimal
from mercato.feeds import FeedError
from mercato.marketdata.events import AnyMdEvent

MAX_BATCH = 500  # events per request (the server takes at most 2,000 and 64 KiB)
MAX_BYTES = 60_000


class Publisher:
    """Sends events in batches: when ``batch`` are waiting, or ``every`` seconds after the
    first of them (so a paced replay shows up promptly). ``close`` sends the rest."""

    def __init__(
        self,
        url: str,
        key_id: str,
        secret: str,
        instrument: Instrument,
        *,
        batch: int = MAX_BATCH,
        every: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        now_ns: Callable[[], int] = time.time_ns,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.instrument = instrument
        self.batch = min(batch, MAX_BATCH)
        self.every = every
        self.clock = clock
        self.now_ns = now_ns
        self.sent = 0
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {key_id}:{secret}"},
            timeout=10,
            transport=transport,
        )
        self._pending: list[AnyMdEvent] = []
        self._since = 0.0
        self._shift: int | None = None

    def register(self) -> None:
        """Declare the instrument (409 if it exists: an earlier replay's, which is reused)."""
        i = self.instrument
        body = {
            "symbol": i.symbol,
            "tick_size": format_decimal(i.tick_size, i.price_scale),
            "lot_size": format_decimal(i.lot_size, i.qty_scale),
            "price_scale": i.price_scale,
            "qty_scale": i.qty_scale,
        }
        r = self._post("/v1/admin/feeds", body)
        if r.status_code == 409 and r.json()["error"]["code"] == "duplicate_symbol":
            probe = self._post(f"/v1/admin/feeds/{i.symbol}/events", {"events": []})
            if probe.status_code == 200:
                return  # our own feed from before: go on with it
        if r.status_code not in (201, 409):
            raise FeedError(_refusal(r))
        if r.status_code == 409:
            raise FeedError(f"{i.symbol} is an instrument of the platform: {_refusal(r)}")

    def __call__(self, event: AnyMdEvent) -> None:
        if self._shift is None:
            self._shift = self.now_ns() - event.ts
        if not self._pending:
            self._since = self.clock()
        self._pending.append(msgspec.structs.replace(event, ts=event.ts + self._shift))
        if len(self._pending) >= self.batch or self.clock() - self._since >= self.every:
            self.flush()

    def flush(self) -> None:
        events, self._pending = self._pending, []
        while events:
            chunk = events[: self.batch]
            body = msgspec.json.encode({"events": chunk})
            while len(body) > MAX_BYTES and len(chunk) > 1:
                chunk = chunk[: len(chunk) // 2]
                body = msgspec.json.encode({"events": chunk})
            r = self._http.post(
                f"/v1/admin/feeds/{self.instrument.symbol}/events",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            if r.status_code != 200:
                raise FeedError(_refusal(r))
            self.sent += len(chunk)
            events = events[len(chunk) :]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return self._http.post(path, json=body)
        except httpx.HTTPError as e:
            raise FeedError(f"cannot reach {self._http.base_url}: {e}") from None


def _refusal(r: httpx.Response) -> str:
    try:
        err = r.json()["error"]
        return f"{r.status_code} {err['code']}: {err['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{r.status_code}: {r.text[:200]}"

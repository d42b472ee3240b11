"""Last-value caches (the ``Cache`` port): in memory (the embedded default) and Redis.

The Redis adapter never lets the event loop wait on the server for a write: ``put`` only
records the value in a pending map keyed by cache key (so a burst on one key conflates to
one write), and a background task writes the map in one pipeline every ``flush_interval``
or as soon as ``flush_keys`` keys are pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import cast
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

_log = logging.getLogger(__name__)

MSET_CHUNK = 1_000  # keys per MSET inside the pipeline, so other clients interleave


class MemoryCache:
    """The ``Cache`` port in a dict: puts apply at once, nothing is ever pending."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}
        self._closed = False
        self.dropped = 0
        self.failures = 0

    def put(self, key: str, value: bytes) -> None:
        if self._closed:
            self.dropped += 1
        else:
            self._values[key] = value

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if self._closed:
            self.dropped += len(items)
        else:
            self._values.update(items)

    async def get(self, key: str) -> bytes | None:
        return self._values.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        values = self._values
        return [values.get(key) for key in keys]

    async def flush(self) -> None:
        """Nothing to write: every put is already visible."""

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True


class RedisCache:
    """The ``Cache`` port on a Redis server, shared by every process that uses the same
    ``url`` and ``prefix``.

    Pending writes are bounded: by the number of distinct keys (a key's newer value
    replaces its older one), and by ``max_pending`` distinct keys in all, counting a batch
    being written; a put of a new key beyond that is dropped and counted in ``dropped``
    (the key's next put, once there is room, is kept). With ``ttl`` (seconds) each value
    expires that long after its last write. Reads go to the server and see this cache's
    puts once they are flushed. Errors reach callers as the builtin ``ConnectionError``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "",
        flush_interval: float = 0.05,
        flush_keys: int = 1_000,
        max_pending: int = 100_000,
        ttl: float | None = None,
        timeout: float = 1.0,
    ) -> None:
        self.address = _redacted(url)  # for messages: no credentials
        self.prefix = prefix
        self.flush_interval = flush_interval
        self.flush_keys = flush_keys
        self.max_pending = max_pending
        self._ttl_ms = None if ttl is None else max(1, round(ttl * 1000))
        # One immediate reconnect (a pooled connection may be stale), no backoff: the
        # cache itself retries at the next interval.
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._pending: dict[str, bytes] = {}
        self._inflight: dict[str, bytes] = {}  # the batch being written, until it lands
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._streak = 0  # consecutive failed writes
        self.dropped = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        """How many distinct keys wait to be written (a batch in flight not counted)."""
        return len(self._pending)

    def put(self, key: str, value: bytes) -> None:
        pending = self._pending
        if self._closed or (
            key not in pending
            and key not in self._inflight
            and len(pending) + len(self._inflight) >= self.max_pending
        ):
            self.dropped += 1
            return
        pending[key] = value
        if len(pending) >= self.flush_keys:
            self._wake.set()

    def put_many(self, items: Mapping[str, bytes]) -> None:
        for key, value in items.items():
            self.put(key, value)

    async def get(self, key: str) -> bytes | None:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        prefix = self.prefix
        try:
            values = await self._redis.mget([prefix + k for k in keys])
        except (RedisError, OSError) as exc:
            raise ConnectionError(f"redis cache at {self.address}: {exc}") from exc
        return cast("list[bytes | None]", values)  # bytes: responses are not decoded

    async def flush(self) -> None:
        if not await self._write():
            raise ConnectionError(f"redis cache at {self.address}: write failed, values kept")

    async def start(self) -> None:
        self._closed = False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not await self._write():
            _log.warning(
                "redis cache at %s: closing with %d values unwritten",
                self.address,
                len(self._pending),
            )
            self._pending.clear()
        await self._redis.aclose()

    async def _run(self) -> None:
        """The background writer: every interval, or at once when enough keys wait; after
        a failure, a full interval before the next attempt."""
        while True:
            if not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval):
                        await self._wake.wait()
            self._wake.clear()
            if self._pending and not await self._write():
                await asyncio.sleep(self.flush_interval)

    async def _write(self) -> bool:
        """Write what is pending; True when it (or nothing) is on the server. A failed
        batch goes back under the values put since, which are newer."""
        async with self._write_lock:
            if not self._pending:
                return True
            batch = self._inflight = self._pending
            self._pending = {}
            written = False
            try:
                await self._send(batch)
                written = True
            except Exception as exc:  # whatever failed, the values stay and are retried
                self.failures += 1
                self._streak += 1
                if self._streak == 1:
                    _log.warning("redis cache at %s: write failed, retrying: %r", self.address, exc)
                return False
            finally:  # also when cancelled: the batch is not lost
                self._inflight = {}
                if not written:
                    batch.update(self._pending)
                    self._pending = batch
            if self._streak:
                _log.info(
                    "redis cache at %s: written after %d failures", self.address, self._streak
                )
                self._streak = 0
            return True

    async def _send(self, batch: dict[str, bytes]) -> None:
        prefix = self.prefix
        async with self._redis.pipeline(transaction=False) as pipe:
            if self._ttl_ms is None:
                items = [(prefix + k, v) for k, v in batch.items()]
                for i in range(0, len(items), MSET_CHUNK):
                    pipe.mset(dict(items[i : i + MSET_CHUNK]))
            else:
                for key, value in batch.items():
                    pipe.set(prefix + key, value, px=self._ttl_ms)
            await pipe.execute()


def _redacted(url: str) -> str:
    """``url`` without its user and password."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()

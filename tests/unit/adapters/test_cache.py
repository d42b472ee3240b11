"""The ``Cache`` port's contract, which every adapter passes, and the in-memory adapter.

``CacheContract`` is shared: ``tests/integration/test_redis_cache.py`` runs the same tests
against a real Redis. A subclass provides the fixture ``make_cache``: a factory of fresh,
unstarted caches of its adapter (over one store), called inside the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from mercato.adapters.cache import MemoryCache
from mercato.ports import Cache

MakeCache = Callable[[], Cache]


def run(make_cache: MakeCache, body: Callable[[Cache], Awaitable[None]]) -> None:
    """Run ``body`` on a started cache in a fresh event loop; close the cache after."""

    async def main() -> None:
        cache = make_cache()
        await cache.start()
        try:
            await body(cache)
        finally:
            await cache.close()

    asyncio.run(main())


class CacheContract:
    """What the ``Cache`` docstring promises, for any adapter."""

    def test_a_key_never_put_reads_none(self, make_cache: MakeCache) -> None:
        async def body(cache: Cache) -> None:
            assert await cache.get("md:NONE:quote") is None
            assert await cache.get_many(["md:NONE:quote", "md:NONE:trade"]) == [None, None]
            assert await cache.get_many([]) == []

        run(make_cache, body)

    def test_the_latest_put_wins(self, make_cache: MakeCache) -> None:
        async def body(cache: Cache) -> None:
            for i in range(100):
                cache.put("md:XYZ:quote", b"%d" % i)
            await cache.flush()
            assert await cache.get("md:XYZ:quote") == b"99"
            cache.put("md:XYZ:quote", b"new")
            await cache.flush()
            assert await cache.get("md:XYZ:quote") == b"new"

        run(make_cache, body)

    def test_get_many_answers_in_the_order_asked(self, make_cache: MakeCache) -> None:
        async def body(cache: Cache) -> None:
            cache.put_many({"md:A:quote": b"a", "md:B:quote": b"b"})
            cache.put_many({"md:A:quote": b"a2"})
            await cache.flush()
            keys = ["md:B:quote", "md:MISSING:quote", "md:A:quote"]
            assert await cache.get_many(keys) == [b"b", None, b"a2"]

        run(make_cache, body)

    def test_values_are_opaque_bytes_and_keys_any_text(self, make_cache: MakeCache) -> None:
        values = {"empty": b"", "binary": bytes(range(256)), "md:Ä €:quote": b"\x00\r\n*"}

        async def body(cache: Cache) -> None:
            cache.put_many(values)
            await cache.flush()
            assert await cache.get_many(list(values)) == list(values.values())

        run(make_cache, body)

    def test_flush_with_nothing_pending_returns(self, make_cache: MakeCache) -> None:
        async def body(cache: Cache) -> None:
            await cache.flush()
            assert (cache.dropped, cache.failures) == (0, 0)

        run(make_cache, body)

    def test_puts_after_close_are_dropped_and_counted(self, make_cache: MakeCache) -> None:
        async def body(cache: Cache) -> None:
            await cache.close()
            cache.put("md:XYZ:quote", b"late")
            cache.put_many({"md:A:quote": b"a", "md:B:quote": b"b"})
            assert cache.dropped == 3

        run(make_cache, body)


class TestMemoryCache(CacheContract):
    @pytest.fixture
    def make_cache(self) -> MakeCache:
        return MemoryCache


def test_the_memory_cache_shows_a_put_at_once() -> None:
    async def main() -> None:
        cache = MemoryCache()
        cache.put("md:XYZ:quote", b"q")
        assert await cache.get("md:XYZ:quote") == b"q"

    asyncio.run(main())

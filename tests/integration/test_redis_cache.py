"""The Redis last-value cache against a real server (``MERCATO_REDIS_URL``).

It passes the same ``CacheContract`` as the memory cache, then what only a remote store
has: conflation and bounds of the pending writes, the background writer, other processes
reading what one flushed, and a streak of failures that keeps the values and recovers.
Every test writes under its own key prefix and deletes its keys afterwards. Without a
server the tests skip, unless ``MERCATO_REQUIRE_SERVICES=1``, where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from redis.connection import parse_url

from mercato.adapters.cache import RedisCache
from unit.adapters.test_cache import CacheContract, MakeCache

REDIS_URL = os.environ.get("MERCATO_REDIS_URL", "redis://127.0.0.1:6379/0")


class Server(NamedTuple):
    url: str
    prefix: str  # unique to the test
    client: redis.Redis  # a plain synchronous client, to look behind the cache


@pytest.fixture
def server(require_service: Callable[[str], None]) -> Iterator[Server]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        require_service(f"Redis unreachable at MERCATO_REDIS_URL={REDIS_URL}: {exc}")
    prefix = f"mercato-test:{uuid.uuid4().hex}:"
    try:
        yield Server(REDIS_URL, prefix, client)
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


class TestRedisCache(CacheContract):
    @pytest.fixture(params=["mset", "ttl"])
    def make_cache(self, request: pytest.FixtureRequest, server: Server) -> MakeCache:
        ttl = 60.0 if request.param == "ttl" else None
        return lambda: RedisCache(server.url, prefix=server.prefix, ttl=ttl)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 4))


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until true (the background writer runs on a real timer)."""
    while not await check():
        await asyncio.sleep(0.005)


def test_many_puts_to_one_key_are_one_pending_write(server: Server) -> None:
    async def body() -> None:
        cache = RedisCache(server.url, prefix=server.prefix, flush_interval=3600)
        for i in range(10_000):
            cache.put("md:XYZ:quote", b"%d" % i)
        cache.put("md:XYZ:trade", b"t")
        assert cache.pending == 2
        await cache.flush()
        assert cache.pending == 0
        assert server.client.get(server.prefix + "md:XYZ:quote") == b"9999"
        await cache.close()

    run(body)


def test_another_instance_reads_what_one_flushed_and_other_prefixes_do_not(
    server: Server,
) -> None:
    async def body() -> None:
        writer = RedisCache(server.url, prefix=server.prefix)
        reader = RedisCache(server.url, prefix=server.prefix)
        stranger = RedisCache(server.url, prefix=server.prefix + "other:")
        await writer.start()
        writer.put("md:XYZ:quote", b"q1")
        await writer.flush()
        assert await reader.get("md:XYZ:quote") == b"q1"
        assert await stranger.get("md:XYZ:quote") is None
        writer.put("md:XYZ:quote", b"q2")
        await writer.close()  # close flushes
        assert await reader.get("md:XYZ:quote") == b"q2"
        await reader.close()
        await stranger.close()

    run(body)


@pytest.mark.parametrize(
    ("flush_interval", "flush_keys"),
    [(0.01, 1_000), (3600, 3)],
    ids=["on-its-interval", "at-once-when-enough-keys-wait"],
)
def test_the_background_writer_flushes(
    server: Server, flush_interval: float, flush_keys: int
) -> None:
    async def body() -> None:
        cache = RedisCache(
            server.url, prefix=server.prefix, flush_interval=flush_interval, flush_keys=flush_keys
        )
        await cache.start()
        cache.put_many({"md:A:quote": b"a", "md:B:quote": b"b", "md:C:quote": b"c"})
        await eventually(lambda: _has(cache, "md:C:quote", b"c"))
        assert await cache.get_many(["md:A:quote", "md:B:quote"]) == [b"a", b"b"]
        await cache.close()

    run(body)


def test_pending_keys_are_capped_and_new_keys_over_the_cap_dropped(server: Server) -> None:
    async def body() -> None:
        cache = RedisCache(server.url, prefix=server.prefix, flush_interval=3600, max_pending=3)
        cache.put_many({"a": b"1", "b": b"1", "c": b"1", "d": b"1"})
        cache.put("a", b"2")  # a pending key still conflates
        assert (cache.pending, cache.dropped) == (3, 1)
        await cache.flush()
        assert await cache.get_many(["a", "b", "c", "d"]) == [b"2", b"1", b"1", None]
        cache.put("d", b"1")  # room again
        await cache.flush()
        assert await cache.get("d") == b"1"
        await cache.close()

    run(body)


def test_ttl_makes_values_expire(server: Server) -> None:
    async def body() -> None:
        cache = RedisCache(server.url, prefix=server.prefix, ttl=30)
        cache.put("md:XYZ:quote", b"q")
        await cache.flush()
        assert 0 < server.client.pttl(server.prefix + "md:XYZ:quote") <= 30_000
        await cache.close()

    run(body)


def test_a_failure_streak_keeps_the_values_logs_once_and_recovers(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache talks to Redis through a TCP relay that is down at first (a closed
    port), then comes up on the same port: the newest pending value lands."""
    caplog.set_level(logging.INFO, logger="mercato.adapters.cache")
    port = _free_port()
    target = parse_url(server.url)

    async def body() -> None:
        cache = RedisCache(
            _with_address(server.url, f"127.0.0.1:{port}"),
            prefix=server.prefix,
            flush_interval=0.005,
        )
        await cache.start()
        cache.put("md:XYZ:quote", b"old")
        await eventually(lambda: _true(cache.failures >= 3))
        for i in range(1_000):  # still conflating while the server is away
            cache.put("md:XYZ:quote", b"new%d" % i)
        assert cache.pending == 1
        with pytest.raises(ConnectionError):
            await cache.flush()
        with pytest.raises(ConnectionError):
            await cache.get("md:XYZ:quote")
        failed = [r for r in caplog.records if "write failed" in r.getMessage()]
        assert len(failed) == 1  # once per streak, however many retries

        relay = await asyncio.start_server(
            _relay(str(target.get("host", "127.0.0.1")), int(target.get("port", 6379))),
            "127.0.0.1",
            port,
        )
        async with relay:
            await eventually(lambda: _has(cache, "md:XYZ:quote", b"new999"))
            assert cache.pending == 0
            assert server.client.get(server.prefix + "md:XYZ:quote") == b"new999"
            assert any("written after" in r.getMessage() for r in caplog.records)
            await cache.close()

    run(body)


def test_close_with_the_server_away_logs_the_loss_and_returns(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        cache = RedisCache(f"redis://127.0.0.1:{_free_port()}/0", prefix=server.prefix)
        await cache.start()
        cache.put("md:XYZ:quote", b"q")
        await cache.close()
        assert cache.failures == 1

    run(body)
    assert any("1 values unwritten" in r.getMessage() for r in caplog.records)


async def _has(cache: RedisCache, key: str, value: bytes) -> bool:
    return await cache.get(key) == value


async def _true(condition: bool) -> bool:
    return condition


def _with_address(url: str, address: str) -> str:
    """``url`` (its credentials and database kept) pointing at ``address``."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{address}" if credentials else address))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _relay(
    host: str, port: int
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A TCP relay to ``host:port``, one upstream connection per client connection."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return handle

"""The market-data service with Redis as its last-value cache: what one process publishes,
another reads from Redis alone (a gateway without a market-data service of its own)."""

from __future__ import annotations

import asyncio

import msgspec

from mercato.adapters.cache import RedisCache
from mercato.marketdata.events import BUY, SELL, MdLevel, MdTrade
from mercato.services.marketdata import MarketData

from .test_redis_cache import Server, server

__all__ = ["server"]  # the fixture

S = 1_000_000_000
T0 = 1_700_000_040 * S


def test_snapshots_published_through_redis(server: Server) -> None:
    async def run() -> list[bytes | None]:
        writer = RedisCache(server.url, prefix=server.prefix, flush_interval=0.01)
        reader = RedisCache(server.url, prefix=server.prefix)  # another process's view
        await writer.start()
        await reader.start()
        md = MarketData(flush_interval=0.001, cache=writer)
        md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0)
        for i in range(200):  # many updates of the same keys: conflated before Redis
            md.publish([MdLevel("EXT", T0 + i, BUY, 9_900, 1 + i)])
        md.publish([MdTrade("EXT", T0 + 500, 1, 9_900, 7, SELL)])
        await asyncio.sleep(0.01)  # the market data's own publication interval
        await writer.flush()
        got = await reader.get_many(["md:EXT:quote", "md:EXT:depth", "md:EXT:stats"])
        await writer.close()
        await reader.close()
        return got

    quote, depth, stats = asyncio.run(run())
    decode = msgspec.json.decode
    assert quote is not None and decode(quote)["bid_qty"] == "200"
    assert quote is not None and decode(quote)["last"] == "99.00"
    assert depth is not None and decode(depth)["bids"] == [["99.00", "200"]]
    assert stats is not None and decode(stats)["volume"] == "7"

"""Issue 11, over real sockets: Mercato's own ``Stream`` subscribed while trades flow, on
``/v1/ws``, on ``/v1/md`` and on ``/v1/md?interval=250``, against a server that publishes
market data every 5 ms as ``mercato serve`` does (``MD_FLUSH``). Found before the fix: 4 of
12 such subscriptions raised ``SequenceGap`` (a snapshot at seq S, then update S; or an
update before its snapshot). Each stream here must see each channel's snapshot first, then
contiguous updates, and every trade once, up to the last."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from mercato.api.app import MD_FLUSH, create_app
from mercato.client import Stream

from .conftest import Serve

CHANNELS = ("trades:XYZ", "book:XYZ", "quotes:XYZ")


def test_streams_that_subscribe_while_trades_flow_see_no_gap(market: Any, serve_app: Serve) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        md_port = sock.getsockname()[1]
    app = create_app(
        market.platform, market.auth, rate=1e6, burst=10**6, md_flush=MD_FLUSH, md_port=md_port
    )
    url, _ = serve_app(app)
    md = app.state.api.md
    key = market.auth.create_key(market.trader)
    md_url = f"ws://127.0.0.1:{md_port}/v1/md"
    urls = [url] * 5 + [md_url] * 5 + [md_url + "?interval=250"] * 5  # 15 subscriptions

    async def main() -> None:
        stop = asyncio.Event()
        final: dict[str, int] = {}  # the trades channel's last seq, once trading stopped

        async def trade() -> None:  # market orders against the maker's quotes, pipelined
            async with Stream(url, *key) as trader:
                while not stop.is_set():
                    await asyncio.gather(
                        *(
                            trader.place_order("XYZ", side, "market", qty=1)
                            for side in ("buy", "sell") * 3
                        )
                    )
                    await asyncio.sleep(0.003)

        async def watch(n: int, where: str) -> list[int]:
            await asyncio.sleep(0.05 + 0.07 * n)  # each lands somewhere in the flow
            trade_ids: list[int] = []
            seqs: dict[str, int] = {}
            async with Stream(where, *key) as s:
                await s.subscribe(*CHANNELS)
                while "seq" not in final or seqs.get("trades:XYZ") != final["seq"]:
                    try:
                        msg = await asyncio.wait_for(s.__anext__(), 0.5)
                    except TimeoutError:
                        continue
                    if msg["channel"] not in seqs:
                        assert msg["type"] == "snapshot", msg
                    seqs[msg["channel"]] = msg["seq"]
                    if msg["channel"] == "trades:XYZ":
                        trade_ids += [int(t["trade_id"]) for t in msg["trades"]]
            return trade_ids

        trading = asyncio.create_task(trade())
        watchers = [asyncio.create_task(watch(n, where)) for n, where in enumerate(urls)]
        await asyncio.sleep(0.05 + 0.07 * len(urls) + 0.3)
        stop.set()
        await trading
        await asyncio.sleep(0.2)  # the last publication (5 ms) is out
        final["seq"] = md.channel("trades:XYZ").seq
        results = await asyncio.wait_for(asyncio.gather(*watchers, return_exceptions=True), 30)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"{len(failures)} of {len(urls)} streams failed: {failures}"
        tape = [t.trade_id for t in reversed(md.trades("XYZ", md.max_trades))]
        for ids in results:
            assert isinstance(ids, list) and ids
            assert ids == sorted(set(ids))  # each once, in order
            n = min(len(ids), len(tape))
            assert ids[-n:] == tape[-n:]  # none missing, up to the last
        assert len(tape) > 100  # trades did flow

    asyncio.run(main())

"""Market-data fan-out benchmark: N WebSocket subscribers over loopback, each on the
``trades`` channel of one instrument (the seed scenario: a million users, each on one
stock), fed by trades made inside the server.

Three kinds of process, all this module:

* the **server** (``--serve``): uvicorn (uvloop, httptools, websockets-sansio) serving
  ``create_app`` over an in-memory ``Platform`` with S instruments (SYM000.., tick 0.01,
  lot 1), a market maker with deep resting liquidity on each (a bid of 1,000,000 at 99.99,
  an ask at 100.01) and a **feeder**: a task on the server's loop that submits IOC orders
  of 1 crossing the maker (``platform.submit_many``, stamped ``platform.now()``) at a
  fixed total rate R, each on an instrument drawn at random (seeded: a Poisson stream per
  instrument, so trades clump as real ones do), buy then sell on each, so every
  order is one trade. A pure ASGI wrapper adds ``GET /bench/rate?r=R`` (0 stops; it
  answers the trades made so far) and sends everything else to the app.
* **load** processes (``--load``, P of them, each a slice of the N connections): a
  minimal WebSocket client on uvloop (``wsclient.py``: an ``asyncio.Protocol``, about 110
  lines; the ``websockets`` client's task, queue and parser per message would have the
  load processes measure themselves at 10,000 connections). Connection i subscribes to
  ``trades:SYM<i mod S>`` (``?encoding=binary`` for the binary runs). JSON: every message is parsed
  (``msgspec``, the trades' ``ts`` only) and its trades counted, whichever shape: one
  message per publication (``"trades": [..]``) or one per trade (``"trade": {..}``).
  Binary (``varint channel id`` + a small-ticks frame): every frame's header is read for
  its event count; every ``--sample``-th connection decodes every frame in full with the
  client's ``Decoder``, the realistic client cost, checked in order, without gaps.
* the **driver** (no flag): per (N, encoding) and run, a fresh server; a baseline of the
  feeder alone at rate R with no subscriber (the server CPU per trade of matching, the
  feeder and the platform: not fan-out); server RSS; the load processes connect and
  subscribe; server RSS again; the feeder at R, 1 s of warm-up, then a window of D
  seconds, marked in every load process (a line on its stdin), while the driver reads the
  server's CPU time (utime + stime, ``/proc/PID/stat``) at both ends.

Delivery: one trade received by one subscriber. End-to-end delay: the load process's
``time.time_ns()`` when the bytes were read minus the trade's ``ts`` (the platform's
wall clock as it submitted the order; same machine, same clock), for every trade the
sampled connections receive in the window. Bytes are the WebSocket stream as read from
the socket (frame headers included, TCP/IP headers not). A client closed with 1013 was
a slow consumer.

``--floor`` measures instead what one uvloop ``transport.write`` of a pre-framed frame to
each of N loopback connections costs the writer (``write_floor``): the least any design
that writes one message per subscriber pays.

Prints, as its last lines, one JSON object per (connections, encoding):
{"bench": "fanout", "connections": .., "instruments": .., "rate": .., "encoding": ..,
 "deliveries_per_s": .., "deliveries_per_server_cpu_s": .., "deliveries_per_fanout_cpu_s":
 .., "delay_p50_ms": .., "delay_p99_ms": .., "rss_per_conn_kib": .., "bytes_per_delivery":
 .., "deliveries_per_trade": .., "slow_consumers": .., ...} (medians of ``--runs`` runs).

Usage: python benchmarks/fanout.py [--connections 1000,10000] [--encodings json,binary]
       [--rate 1000] [--instruments 100] [--duration 10] [--load-procs 2] [--runs 3]
       [--flush SECONDS] [--sample 10] [--interval MS]   (BENCH_ENDPOINT=md: /v1/md)
       python benchmarks/fanout.py --floor [--connections 1000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    cpu_seconds,
    cpu_times,
    free_port,
    machine,
    pct,
    raise_fd_limit,
    rss_bytes,
    spawn_server,
    stop_process,
    uvloop_run,
)
from mercato.domain.commands import (
    AddInstrument,
    CreateAccount,
    Deposit,
    NewOrder,
    SetInstrumentRisk,
)
from mercato.domain.events import Trade
from mercato.domain.types import OrderType, Side, TimeInForce
from wsclient import MD_ENDPOINT, Stats, Subscriber

TARGET = 250_000  # deliveries per server CPU-second
MAKER, TRADER = 1, 2
BID, ASK = 9_999, 10_001  # 99.99 / 100.01 at price scale 2
DEPTH = 1_000_000
TICK_S = 0.001  # the feeder's timer


def symbols(n: int) -> list[str]:
    width = max(3, len(str(n - 1)))
    return [f"SYM{i:0{width}d}" for i in range(n)]


# -- the server (a separate process) -----------------------------------------------------


class Feeder:
    """Crossing IOC orders of 1 at ``rate`` a second in total, each on an instrument drawn
    at random (buy, then sell, on each): one trade per order, positions stay flat."""

    def __init__(self, platform: Any, names: list[str], seed: int = 1) -> None:
        self.platform = platform
        self.names = names
        self.random = random.Random(seed)
        self.orders = dict.fromkeys(names, 0)  # per instrument: even buys, odd sells
        self.trades = 0
        self.task: asyncio.Task[None] | None = None

    def order(
        self, account: int, symbol: str, buy: bool, price: int, qty: int, tif: int
    ) -> NewOrder:
        return NewOrder(
            ts=self.platform.now(),
            order_id=self.platform.next_order_id(),
            account=account,
            symbol=symbol,
            side=Side.BUY if buy else Side.SELL,
            type=OrderType.LIMIT,
            qty=qty,
            price=price,
            tif=tif,
        )

    def setup(self) -> list[Any]:
        cmds: list[Any] = []
        for acct in (MAKER, TRADER):  # cash accounts: a margin check walks every position
            cmds += [CreateAccount(account=acct), Deposit(account=acct, asset="USD", amount=10**15)]
        for sym in self.names:
            cmds += [
                AddInstrument(symbol=sym),
                SetInstrumentRisk(symbol=sym, reference_price=10_000),
                Deposit(account=MAKER, asset=sym, amount=DEPTH),
                Deposit(account=TRADER, asset=sym, amount=DEPTH),
                self.order(MAKER, sym, True, BID, DEPTH, TimeInForce.GTC),
                self.order(MAKER, sym, False, ASK, DEPTH, TimeInForce.GTC),
            ]
        return cmds

    def set_rate(self, rate: float) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if rate > 0:
            self.task = asyncio.get_running_loop().create_task(self._run(rate))

    async def _run(self, rate: float) -> None:
        names, orders, pick = self.names, self.orders, self.random.choice
        start, sent = time.perf_counter(), 0
        most = max(1, int(rate / 100))  # behind schedule: catch up 10 ms at a time
        while True:
            await asyncio.sleep(TICK_S)
            due = min(int((time.perf_counter() - start) * rate) - sent, most)
            cmds = []
            for _ in range(due):
                symbol = pick(names)
                buy = orders[symbol] % 2 == 0
                orders[symbol] += 1
                price = ASK if buy else BID
                cmds.append(self.order(TRADER, symbol, buy, price, 1, TimeInForce.IOC))
            sent += len(cmds)
            if cmds:
                for events in await self.platform.submit_many(cmds):
                    self.trades += sum(1 for e in events if type(e) is Trade)


class Control:
    """Pure ASGI: ``GET /bench/rate?r=R`` sets the feeder's rate and answers
    ``{"trades": n}``; every other request goes to the app."""

    def __init__(self, app: Any, feeder: Feeder) -> None:
        self.app = app
        self.feeder = feeder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/bench/rate":
            await self.app(scope, receive, send)
            return
        query = dict(q.split("=", 1) for q in scope["query_string"].decode().split("&") if q)
        if "r" in query:
            self.feeder.set_rate(float(query["r"]))
        body = json.dumps({"trades": self.feeder.trades}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def serve(port: int, instruments: int, flush: float | None) -> None:
    """Set up the platform, print the instruments as one JSON line, then run uvicorn."""
    import uvicorn
    from argon2 import PasswordHasher

    from mercato.api.app import SERVER_OPTIONS, create_app
    from mercato.services import gc_policy
    from mercato.services.auth import AuthStore
    from mercato.services.platform import Platform

    raise_fd_limit()
    tmp = tempfile.mkdtemp(prefix="mercato-bench-")
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{Path(tmp) / 'users.sqlite'}", hasher=hasher)
    plat = Platform()
    feeder = Feeder(plat, symbols(instruments))
    asyncio.run(plat.submit_many(feeder.setup()))
    options: dict[str, Any] = {}
    if flush is not None:  # the server's market-data publication interval, if it has one
        if "md_flush" not in inspect.signature(create_app).parameters:
            raise SystemExit("this server has no md_flush: run without --flush")
        options["md_flush"] = flush
    if MD_ENDPOINT:  # the fan-out's fast path: market data alone on the next port
        options["md_port"] = port + 1
    app = create_app(
        plat, auth, rate=1e9, burst=1_000_000_000, full_gc_every=gc_policy.FULL_EVERY, **options
    )
    print(json.dumps({"symbols": feeder.names, "pid": os.getpid()}), flush=True)
    uvicorn.run(Control(app, feeder), host="127.0.0.1", port=port, backlog=8192, **SERVER_OPTIONS)
    auth.close()


# -- the load (separate processes) -------------------------------------------------------


async def load(
    port: int, first: int, count: int, names: list[str], binary: bool, sample: int, interval: int
) -> None:
    """Open connections ``first .. first+count-1``; print ``ready``; on ``start`` and
    ``stop`` (stdin) mark the window; then print the figures as one JSON line."""
    raise_fd_limit()
    if MD_ENDPOINT:
        port += 1
    loop = asyncio.get_running_loop()
    stats = Stats()
    subs: list[Subscriber] = []
    gate = asyncio.Semaphore(200)  # connections being opened at once

    async def open_one(i: int) -> None:
        channel = f"trades:{names[i % len(names)]}"
        async with gate:
            _, sub = await loop.create_connection(
                lambda: Subscriber(stats, port, channel, binary, i % sample == 0, interval),
                "127.0.0.1",
                port,
            )
            subs.append(sub)
            await asyncio.wait_for(sub.ready, 60)

    t0 = time.monotonic()
    await asyncio.gather(*(open_one(i) for i in range(first, first + count)))
    print(
        json.dumps({"ready": len(subs), "connect_s": round(time.monotonic() - t0, 2)}), flush=True
    )
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.strip())

    threading.Thread(target=read_stdin, daemon=True).start()
    marks = []
    for _ in ("start", "stop"):
        await lines.get()
        stats.window = not stats.window
        marks.append(
            (time.monotonic(), time.process_time(), stats.deliveries, stats.messages, stats.bytes)
        )
    (t0, c0, d0, m0, b0), (t1, c1, d1, m1, b1) = marks
    out = {
        "connections": len(subs),
        "window_s": t1 - t0,
        "cpu_s": c1 - c0,
        "deliveries": d1 - d0,
        "messages": m1 - m0,
        "bytes": b1 - b0,
        "min_trades_per_conn": min((s.trades for s in subs), default=0),
        "without_trades": sum(1 for s in subs if s.trades == 0),
        "slow_consumers": sum(1 for s in subs if s.close_code == 1013),
        "closed": sum(1 for s in subs if s.close_code is not None or s.lost),
        "delays_us": [d // 1000 for d in stats.delays],
    }
    print(json.dumps(out), flush=True)
    for s in subs:
        s.close()
    await asyncio.sleep(0.2)


# -- the floor: one write per subscriber, nothing else ------------------------------------


class _Sink(asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        pass


async def sink(port: int, count: int) -> None:
    """``--sink``: open ``count`` connections that read and discard, until killed."""
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    for _ in range(count):
        await loop.create_connection(_Sink, "127.0.0.1", port)
    await asyncio.Event().wait()


async def write_floor(connections: int, size: int, rounds: int = 200) -> dict[str, Any]:
    """The CPU of one uvloop ``transport.write`` of a pre-framed ``size``-byte WebSocket
    frame to each of ``connections`` loopback TCP connections (read by another process):
    what any design that writes one message per subscriber pays at the least."""
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            transports.append(transport)

    server = await loop.create_server(Accept, "127.0.0.1", 0, backlog=8192)
    port = server.sockets[0].getsockname()[1]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--sink", str(port)]
    proc = subprocess.Popen([*cmd, "--count", str(connections)])
    try:
        while len(transports) < connections:
            await asyncio.sleep(0.05)
        frame = bytes([0x82, size - 2]) + b"x" * (size - 2)
        await asyncio.sleep(0.5)
        t0 = os.times()
        for _ in range(rounds):
            for t in transports:
                t.write(frame)
            await asyncio.sleep(0.005)  # the reader drains; nothing queues
        t1 = os.times()
    finally:
        stop_process(proc)
        server.close()
    cpu = t1.user - t0.user + t1.system - t0.system
    writes = rounds * connections
    return {
        "bench": "fanout_floor",
        "connections": connections,
        "frame_bytes": size,
        "cpu_us_per_write": round(cpu / writes * 1e6, 2),
        "writes_per_cpu_s": round(writes / cpu),
        "sys_share": round((t1.system - t0.system) / cpu, 2),
    }


# -- the driver --------------------------------------------------------------------------


@dataclass
class FanoutServer:
    proc: subprocess.Popen[str]
    port: int
    names: list[str]

    def rate(self, r: float | None = None) -> int:
        """Set the feeder's rate (None: leave it); the trades made so far."""
        q = f"?r={r}" if r is not None else ""
        url = f"http://127.0.0.1:{self.port}/bench/rate{q}"
        with urllib.request.urlopen(url, timeout=30) as resp:
            return int(json.loads(resp.read())["trades"])

    def stop(self) -> None:
        stop_process(self.proc)


def start_server(instruments: int, flush: float | None = None) -> FanoutServer:
    port = free_port()
    args = ["--instruments", str(instruments)]
    if flush is not None:
        args += ["--flush", str(flush)]
    proc, info = spawn_server(str(Path(__file__).resolve()), port, args)
    return FanoutServer(proc, port, info["symbols"])


def start_load(
    server: FanoutServer, connections: int, procs: int, binary: bool, sample: int, interval: int
) -> list[subprocess.Popen[str]]:
    out = []
    for k in range(procs):
        first = connections * k // procs
        count = connections * (k + 1) // procs - first
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--load",
            str(server.port),
            "--first",
            str(first),
            "--count",
            str(count),
            "--instruments",
            str(len(server.names)),
            "--encodings",
            "binary" if binary else "json",
            "--sample",
            str(sample),
            "--interval",
            str(interval),
        ]
        out.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    return out


def _tell(loaders: list[subprocess.Popen[str]], line: str) -> None:
    for p in loaders:
        assert p.stdin is not None
        p.stdin.write(line + "\n")
        p.stdin.flush()


def _read(p: subprocess.Popen[str]) -> Any:
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line:
        raise RuntimeError(f"a load process failed (exit {p.wait()})")
    return json.loads(line)


def measure(
    connections: int,
    encoding: str,
    rate: float,
    instruments: int,
    duration: float,
    procs: int,
    sample: int = 10,
    flush: float | None = None,
    interval: int = 0,
    baseline_s: float = 2.0,
    log: bool = True,
) -> dict[str, Any]:
    """One run on a fresh server."""
    server = start_server(instruments, flush)
    pid = server.proc.pid
    loaders: list[subprocess.Popen[str]] = []
    try:
        # the feeder alone: matching, the platform and the feeder, no subscriber
        server.rate(rate)
        time.sleep(0.5)
        c0, n0 = cpu_seconds(pid), server.rate()
        time.sleep(baseline_s)
        c1, n1 = cpu_seconds(pid), server.rate(0)
        base_cpu_per_trade = (c1 - c0) / max(1, n1 - n0)
        time.sleep(0.3)
        rss0 = rss_bytes(pid)
        loaders = start_load(server, connections, procs, encoding == "binary", sample, interval)
        ready = [_read(p) for p in loaders]
        time.sleep(0.5)
        rss1 = rss_bytes(pid)
        server.rate(rate)
        time.sleep(1.0)  # warm-up
        _tell(loaders, "start")
        (u0, s0), n0, t0 = cpu_times(pid), server.rate(), time.monotonic()
        time.sleep(duration)
        (u1, s1), n1, t1 = cpu_times(pid), server.rate(), time.monotonic()
        _tell(loaders, "stop")
        results = [_read(p) for p in loaders]
        server.rate(0)
    finally:
        for p in loaders:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        server.stop()
    cpu, trades = u1 - u0 + s1 - s0, n1 - n0
    deliveries = sum(r["deliveries"] for r in results)
    per_s = sum(r["deliveries"] / r["window_s"] for r in results)
    fanout_cpu = cpu - base_cpu_per_trade * trades
    delays = sorted(d for r in results for d in r["delays_us"])
    out = {
        "connections": connections,
        "instruments": instruments,
        "rate": rate,
        "encoding": encoding,
        "interval_ms": interval,
        "achieved_rate": round(trades / (t1 - t0)),
        "deliveries_per_s": round(per_s),
        "deliveries_per_server_cpu_s": round(deliveries / cpu) if cpu > 0 else None,
        "deliveries_per_fanout_cpu_s": round(deliveries / fanout_cpu) if fanout_cpu > 0 else None,
        "server_cpu_util": round(cpu / (t1 - t0), 3),
        "server_sys_share": round((s1 - s0) / cpu, 2) if cpu > 0 else None,
        "load_cpu_util": round(sum(r["cpu_s"] / r["window_s"] for r in results), 3),
        "baseline_cpu_us_per_trade": round(base_cpu_per_trade * 1e6, 1),
        "delay_p50_ms": pct(delays, 50, 1e3),
        "delay_p99_ms": pct(delays, 99, 1e3),
        "delay_samples": len(delays),
        "rss_per_conn_kib": round((rss1 - rss0) / connections / 1024, 1),
        "bytes_per_delivery": round(sum(r["bytes"] for r in results) / deliveries, 1)
        if deliveries
        else None,
        "messages_per_delivery": round(sum(r["messages"] for r in results) / deliveries, 3)
        if deliveries
        else None,
        "deliveries_per_trade": round(deliveries / trades, 2) if trades else None,
        "expected_per_trade": round(connections / instruments, 2),
        "connect_s": max(r["connect_s"] for r in ready),
        "without_trades": sum(r["without_trades"] for r in results),
        "min_trades_per_conn": min(r["min_trades_per_conn"] for r in results),
        "slow_consumers": sum(r["slow_consumers"] for r in results),
        "closed": sum(r["closed"] for r in results),
    }
    if log:
        print(f"  {out}", file=sys.stderr)
    return out


MEDIAN_KEYS = (
    "achieved_rate",
    "deliveries_per_s",
    "deliveries_per_server_cpu_s",
    "deliveries_per_fanout_cpu_s",
    "server_cpu_util",
    "server_sys_share",
    "load_cpu_util",
    "baseline_cpu_us_per_trade",
    "delay_p50_ms",
    "delay_p99_ms",
    "rss_per_conn_kib",
    "bytes_per_delivery",
    "messages_per_delivery",
    "deliveries_per_trade",
)


def median_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "fanout", **runs[0]}
    for k in MEDIAN_KEYS:
        vals = [r[k] for r in runs if r[k] is not None]
        out[k] = statistics.median(vals) if vals else None
    for k in ("without_trades", "slow_consumers", "closed"):
        out[k] = sum(r[k] for r in runs)
    out["min_trades_per_conn"] = min(r["min_trades_per_conn"] for r in runs)
    out["runs"] = len(runs)
    best = out["deliveries_per_server_cpu_s"]
    out["target_met"] = best is not None and best >= TARGET
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--load", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    ap.add_argument(
        "--floor", action="store_true", help="only the write floor (16- and 170-byte frames)"
    )
    ap.add_argument("--connections", default="1000,10000")
    ap.add_argument("--encodings", default="json,binary")
    ap.add_argument("--rate", type=float, default=1_000, help="trades a second, in all")
    ap.add_argument("--instruments", type=int, default=100)
    ap.add_argument("--duration", type=float, default=10.0, help="the window, seconds")
    ap.add_argument("--load-procs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sample", type=int, default=10, help="every k-th connection: delays")
    ap.add_argument("--flush", type=float, help="the server's md_flush (its default if unset)")
    ap.add_argument(
        "--interval",
        type=int,
        default=0,
        help="BENCH_ENDPOINT=md: the subscribers' ?interval= (ms between the server's writes)",
    )
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.instruments, args.flush)
        return 0
    if args.load is not None:
        names = symbols(args.instruments)
        binary = args.encodings == "binary"
        uvloop_run(
            load(args.load, args.first, args.count, names, binary, args.sample, args.interval)
        )
        return 0
    if args.sink is not None:
        uvloop_run(sink(args.sink, args.count))
        return 0
    raise_fd_limit()
    print(f"fanout: {machine()}", file=sys.stderr)
    if args.floor:
        for n in (int(x) for x in args.connections.split(",")):
            for size in (16, 170):
                print(json.dumps(uvloop_run(write_floor(n, size))))
        return 0
    results = []
    for n in (int(x) for x in args.connections.split(",")):
        for encoding in args.encodings.split(","):
            runs = [
                measure(
                    n,
                    encoding,
                    args.rate,
                    args.instruments,
                    args.duration,
                    args.load_procs,
                    args.sample,
                    args.flush,
                    args.interval,
                )
                for _ in range(args.runs)
            ]
            results.append(median_summary(runs))
    for r in results:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

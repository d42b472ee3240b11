"""Order entry benchmark: order round trip (submit to acknowledgement, matching included)
over the WebSocket (``/v1/ws``) and over REST (``POST /v1/orders``), open-loop.

A real server (uvicorn, uvloop + httptools) runs in a separate process (this module with
``--serve``), so the load generator does not share its GIL; the machine has 2 cores, one
each. Set-up, through the admin REST routes: instrument XYZ (tick 0.01, no fees), a market
maker with deep resting liquidity (a bid of 10,000,000 at 99.99 and an ask of 10,000,000
at 100.01, each one order) and a trader with an API key. The trader alternates an IOC buy
of 1 at 100.01 and an IOC sell of 1 at 99.99: every order crosses, trades against the
maker's resting order and is acknowledged filled, so each round trip includes risk checks,
matching, settlement and the order history; the book stays the same size and the trader's
position stays flat.

Open loop: order i is due at ``start + i / rate``; the sender sends every due order
regardless of replies (WebSocket: pipelined on one connection, a receiver task matches
replies by ``id``; REST: each request is its own task on an ``httpx.AsyncClient`` with a
keep-alive pool). Latency runs from the actual send to the reply; the sender's lateness
(send time minus due time) is reported apart, so a generator that cannot keep up shows.

Prints, as its last lines, one JSON object per (transport, journal) setting:
{"bench": "order_entry", "transport": "ws"|"rest", "journal": false|true, "rate": ..,
 "sent": .., "answered": .., "achieved_rate": .., "p50_us": .., "p99_us": ..,
 "p999_us": .., "late_p50_us": .., "late_p99_us": .., "max_rate_p99_under_5ms": ..}
(figures: the median of ``--runs`` runs at the fixed rate; the step search runs once).

Usage: python benchmarks/order_entry.py [--ws-rate 5000] [--rest-rate 1000] [--transports ws,rest]
       [--duration 5] [--runs 3] [--ws-steps ..] [--rest-steps ..] [--journal]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from _common import free_port, machine, pct, spawn_server, stop_process, uvloop_run

P99_LIMIT_US = 5_000.0
SPIN_REST = os.environ.get("BENCH_REST_SPIN", "0") == "1"
SYMBOL = "XYZ"
DEPTH = "10000000"
decode = msgspec.json.Decoder().decode  # the generator's parser: ~5x json.loads on a reply


# -- the server (a separate process) -----------------------------------------------------


def serve(port: int, data_dir: str | None) -> None:
    """Create the users and keys, print them as one JSON line, then run uvicorn."""
    import uvicorn
    from argon2 import PasswordHasher

    from mercato.api.app import MD_FLUSH, SERVER_OPTIONS, create_app
    from mercato.services import gc_policy
    from mercato.services.auth import AuthStore
    from mercato.services.platform import Platform

    tmp = tempfile.mkdtemp(prefix="mercato-bench-")
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{Path(tmp) / 'users.sqlite'}", hasher=hasher)
    out: dict[str, Any] = {}
    for name, role in (("admin", "admin"), ("maker", "trader"), ("trader", "trader")):
        uid = auth.create_user(name, "correct horse battery", role)
        key_id, secret = auth.create_key(uid)
        out[name] = {"user_id": uid, "auth": f"Bearer {key_id}:{secret}"}
    plat = Platform(data_dir, fsync=True) if data_dir else Platform()
    # no rate limit in the way: the benchmark measures the server, not the limiter
    app = create_app(  # as `mercato serve` runs it
        plat,
        auth,
        rate=1e9,
        burst=1_000_000_000,
        full_gc_every=gc_policy.FULL_EVERY,
        md_flush=float(os.environ.get("BENCH_MD_FLUSH", MD_FLUSH)),
    )
    print(json.dumps(out), flush=True)
    options = {**SERVER_OPTIONS, "ws": os.environ.get("BENCH_WS", SERVER_OPTIONS["ws"])}
    uvicorn.run(app, host="127.0.0.1", port=port, **options)
    auth.close()


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    users: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)


def start_server(data_dir: str | None) -> Server:
    port = free_port()
    proc, users = spawn_server(
        str(Path(__file__).resolve()), port, ["--data-dir", data_dir] if data_dir else []
    )
    return Server(proc, port, users)


async def set_up(server: Server) -> None:
    """Instrument, the maker's deep liquidity, the trader's account (through REST)."""
    import httpx

    u = server.users
    admin = {"Authorization": u["admin"]["auth"]}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:

        async def ok(method: str, path: str, headers: dict[str, str], body: Any) -> Any:
            r = await c.request(method, path, headers=headers, json=body)
            assert r.status_code < 300, (method, path, r.status_code, r.text)
            return r.json()

        await ok(
            "POST",
            "/v1/admin/instruments",
            admin,
            {"symbol": SYMBOL, "tick_size": "0.01", "reference_price": "100.00"},
        )
        for name, usd, xyz in (("maker", "2000000000.00", DEPTH), ("trader", "1000000.00", "1000")):
            acct = await ok("POST", "/v1/admin/accounts", admin, {"user_id": u[name]["user_id"]})
            for asset, amount in (("USD", usd), (SYMBOL, xyz)):
                await ok(
                    "POST",
                    f"/v1/admin/accounts/{acct['account']}/transfers",
                    admin,
                    {"asset": asset, "amount": amount},
                )
        maker = {"Authorization": u["maker"]["auth"]}
        for side, price in (("buy", "99.99"), ("sell", "100.01")):
            o = await ok(
                "POST",
                "/v1/orders",
                maker,
                {"symbol": SYMBOL, "side": side, "type": "limit", "qty": DEPTH, "price": price},
            )
            assert o["status"] == "accepted", o


def order_body(i: int) -> dict[str, Any]:
    """The i-th trader order: IOC buys at the ask and sells at the bid, alternately."""
    buy = i % 2 == 0
    return {
        "symbol": SYMBOL,
        "side": "buy" if buy else "sell",
        "type": "limit",
        "qty": "1",
        "price": "100.01" if buy else "99.99",
        "tif": "ioc",
    }


# -- the load generators -----------------------------------------------------------------


@dataclass
class Run:
    transport: str
    rate: int
    sent: int = 0
    answered: int = 0
    errors: int = 0  # answered, but not "filled"
    elapsed_s: float = 0.0
    latency_ns: list[int] = field(default_factory=list)
    late_ns: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latency_ns)
        late = sorted(self.late_ns)
        return {
            "rate": self.rate,
            "sent": self.sent,
            "answered": self.answered,
            "not_filled": self.errors,
            "achieved_rate": round(self.sent / self.elapsed_s) if self.elapsed_s else 0,
            "p50_us": pct(lat, 50),
            "p99_us": pct(lat, 99),
            "p999_us": pct(lat, 99.9),
            "max_us": round(lat[-1] / 1e3, 1) if lat else None,
            "late_p50_us": pct(late, 50),
            "late_p99_us": pct(late, 99),
        }


async def _wait_until(due: int, spin: bool = True) -> None:
    """Sleep until ``due`` (perf_counter_ns); with ``spin`` the last 2 ms by yielding to
    the loop, so replies keep being read while the sender waits (the loop's timers are
    1 ms coarse); without, to the loop's timer resolution (lateness is reported)."""
    clock = time.perf_counter_ns
    gap = due - clock()
    if not spin:
        if gap > 0:
            await asyncio.sleep(gap / 1e9)
        return
    if gap > 2_000_000:
        await asyncio.sleep((gap - 2_000_000) / 1e9)
    while clock() < due:
        await asyncio.sleep(0)


async def run_ws(server: Server, rate: int, duration: float, drain_s: float = 5.0) -> Run:
    from websockets.asyncio.client import connect

    n = max(1, int(rate * duration))
    run = Run("ws", rate)
    sent_at = [0] * n
    got = [0] * n
    ok = [False] * n
    frames = [json.dumps({"op": "order", "id": i, **order_body(i)}) for i in range(n)]
    headers = {"Authorization": server.users["trader"]["auth"]}
    clock = time.perf_counter_ns
    async with connect(
        f"ws://127.0.0.1:{server.port}/v1/ws",
        additional_headers=headers,
        compression=None,
        max_queue=None,
    ) as ws:
        # warm-up: one order, answered, before the clock starts
        await ws.send(json.dumps({"op": "order", "id": -1, **order_body(0)}))
        json.loads(await ws.recv())
        done = asyncio.Event()

        async def receive() -> None:
            count = 0
            async for frame in ws:
                t = clock()
                msg = decode(frame)
                i = msg.get("id")
                if not isinstance(i, int) or i < 0:
                    continue  # heartbeats and the like
                got[i] = t
                ok[i] = msg.get("status") == 201 and msg["order"]["status"] == "filled"
                count += 1
                if count == n:
                    done.set()
                    return

        receiver = asyncio.create_task(receive())
        interval = 1_000_000_000 / rate
        start = clock() + 5_000_000
        for i in range(n):
            due = start + int(i * interval)
            if clock() < due:
                await _wait_until(due)
            t = clock()
            sent_at[i] = t
            run.late_ns.append(t - due)
            await ws.send(frames[i])
        run.elapsed_s = (clock() - start) / 1e9
        run.sent = n
        with contextlib.suppress(TimeoutError):  # unanswered orders are counted
            await asyncio.wait_for(done.wait(), drain_s)
        receiver.cancel()
    for i in range(n):
        if got[i]:
            run.answered += 1
            run.latency_ns.append(got[i] - sent_at[i])
            if not ok[i]:
                run.errors += 1
    return run


async def run_rest(
    server: Server,
    rate: int,
    duration: float,
    connections: int = int(os.environ.get("BENCH_REST_CONNS", "8")),
    drain_s: float = 10.0,
) -> Run:
    """REST, open loop over a pool of keep-alive HTTP/1.1 connections: each connection is
    a worker taking the next request from a queue; latency runs from the request's send
    (its entry in the queue: waiting for a free connection counts). The client is a bare
    HTTP/1.1 writer and reader on asyncio streams: httpx's ``AsyncClient`` costs about
    2 ms per request of this generator's time here, which would measure the client (see
    ``BENCH_REST_CLIENT=httpx``)."""
    if os.environ.get("BENCH_REST_CLIENT", "raw") == "httpx":
        return await run_rest_httpx(server, rate, duration, connections, drain_s)
    n = max(1, int(rate * duration))
    run = Run("rest", rate)
    auth = server.users["trader"]["auth"]
    reqs = []
    for i in range(n):
        body = json.dumps(order_body(i)).encode()
        reqs.append(
            b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (auth.encode(), len(body), body)
        )
    clock = time.perf_counter_ns
    queue: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
    done = asyncio.Event()
    answered = [0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                i, t = item
                writer.write(reqs[i] if i >= 0 else reqs[0])
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                if i < 0:
                    continue
                run.latency_ns.append(clock() - t)
                code = int(head[9:12])
                if code != 201 or decode(body)["status"] != "filled":
                    run.errors += 1
                answered[0] += 1
                if answered[0] == n:
                    done.set()
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    for _ in range(connections):  # warm-up: one order per connection
        queue.put_nowait((-1, 0))
    while not queue.empty():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    interval = 1_000_000_000 / rate
    start = clock() + 5_000_000
    for i in range(n):
        due = start + int(i * interval)
        if clock() < due:
            await _wait_until(due)
        t = clock()
        run.late_ns.append(t - due)
        queue.put_nowait((i, t))
    run.elapsed_s = (clock() - start) / 1e9
    run.sent = n
    with contextlib.suppress(TimeoutError):  # unanswered orders are counted
        await asyncio.wait_for(done.wait(), drain_s)
    for w in workers:
        w.cancel()
    run.answered = answered[0]
    return run


async def run_rest_httpx(
    server: Server, rate: int, duration: float, connections: int, drain_s: float
) -> Run:
    import httpx

    n = max(1, int(rate * duration))
    run = Run("rest", rate)
    headers = {"Authorization": server.users["trader"]["auth"]}
    bodies = [json.dumps(order_body(i)).encode() for i in range(n)]
    clock = time.perf_counter_ns
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={**headers, "Content-Type": "application/json"},
        limits=limits,
        timeout=30,
    ) as client:
        # warm-up: open the pool's connections
        await asyncio.gather(
            *(client.post("/v1/orders", content=bodies[i % 2]) for i in range(connections))
        )

        async def one(i: int) -> None:
            t = clock()
            try:
                r = await client.post("/v1/orders", content=bodies[i])
            except httpx.HTTPError:
                return
            run.latency_ns.append(clock() - t)
            run.answered += 1
            if r.status_code != 201 or r.json()["status"] != "filled":
                run.errors += 1

        tasks = []
        interval = 1_000_000_000 / rate
        start = clock() + 5_000_000
        for i in range(n):
            due = start + int(i * interval)
            if clock() < due:
                await _wait_until(due, SPIN_REST)
            run.late_ns.append(clock() - due)
            tasks.append(asyncio.create_task(one(i)))
            if i % 16 == 15:
                await asyncio.sleep(0)  # let the requests start even when running late
        run.elapsed_s = (clock() - start) / 1e9
        run.sent = n
        await asyncio.wait(tasks, timeout=drain_s)
        for t in tasks:
            t.cancel()
    return run


# -- the driver --------------------------------------------------------------------------


async def measure(server: Server, transport: str, rate: int, duration: float) -> Run:
    """One run. The generator takes the server's GC policy for the run, so that a full
    collection of its own heap does not show up as the server's latency."""
    from mercato.services import gc_policy

    gc_policy.quiet()
    try:
        if transport == "ws":
            return await run_ws(server, rate, duration)
        return await run_rest(server, rate, duration)
    finally:
        gc_policy.restore()


def step_search(
    server: Server, transport: str, steps: list[int], duration: float, log: bool
) -> tuple[int | None, list[dict[str, Any]]]:
    """The highest step rate held with p99 < 5 ms (every order answered, sender on time:
    achieved rate within 5% of the target); stops at the first step that fails."""
    best, trail = None, []
    for rate in steps:
        r = uvloop_run(measure(server, transport, rate, duration))
        s = r.summary()
        held = (
            r.answered == r.sent
            and s["p99_us"] is not None
            and s["p99_us"] < P99_LIMIT_US
            and s["achieved_rate"] >= 0.95 * rate
        )
        s["held"] = held
        trail.append(s)
        if log:
            print(f"  step {transport} {rate}/s: {s}", file=sys.stderr)
        if not held:
            break
        best = rate
    return best, trail


def bench(
    transport: str,
    rate: int,
    duration: float,
    runs: int,
    steps: list[int],
    journal: bool,
    step_duration: float = 3.0,
    log: bool = True,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mercato-bench-journal-") as tmp:
        server = start_server(tmp if journal else None)
        try:
            uvloop_run(set_up(server))
            summaries = []
            for _ in range(runs):
                s = uvloop_run(measure(server, transport, rate, duration)).summary()
                summaries.append(s)
                if log:
                    print(f"  {transport} journal={journal} {rate}/s: {s}", file=sys.stderr)
        finally:
            server.stop()
        best: int | None = None
        trail: list[dict[str, Any]] = []
        if steps:  # on a fresh server: the fixed-rate runs may have left a backlog
            server = start_server(None)
            try:
                uvloop_run(set_up(server))
                best, trail = step_search(server, transport, steps, step_duration, log)
            finally:
                server.stop()
    out: dict[str, Any] = {"bench": "order_entry", "transport": transport, "journal": journal}
    out.update(median_summary(summaries))
    out["runs"] = runs
    out["max_rate_p99_under_5ms"] = best
    out["steps"] = [(s["rate"], s["p99_us"], s["held"]) for s in trail]
    return out


def median_summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(summaries[len(summaries) // 2])
    for k in ("achieved_rate", "p50_us", "p99_us", "p999_us", "late_p50_us", "late_p99_us"):
        vals = [s[k] for s in summaries if s[k] is not None]
        out[k] = statistics.median(vals) if vals else None
    out["sent"] = sum(s["sent"] for s in summaries)
    out["answered"] = sum(s["answered"] for s in summaries)
    out["not_filled"] = sum(s["not_filled"] for s in summaries)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    ap.add_argument("--ws-rate", type=int, default=5_000)
    ap.add_argument("--rest-rate", type=int, default=1_000)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ws-steps", default="250,500,1000,2000,3000,5000,10000,15000,20000")
    ap.add_argument("--rest-steps", default="100,200,300,500,1000,2000,3000,5000")
    ap.add_argument("--step-duration", type=float, default=3.0)
    ap.add_argument("--journal", action="store_true", help="also one run with the journal on")
    ap.add_argument("--transports", default="ws,rest")
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.data_dir)
        return 0
    print(f"order entry: {machine()}", file=sys.stderr)
    results = []
    for transport in args.transports.split(","):
        rate = args.ws_rate if transport == "ws" else args.rest_rate
        steps_arg = args.ws_steps if transport == "ws" else args.rest_steps
        steps = [int(x) for x in steps_arg.split(",") if x]
        results.append(
            bench(
                transport,
                rate,
                args.duration,
                args.runs,
                steps,
                journal=False,
                step_duration=args.step_duration,
            )
        )
        if args.journal:
            results.append(bench(transport, rate, args.duration, 1, [], journal=True))
    for r in results:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

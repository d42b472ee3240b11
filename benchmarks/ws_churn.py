"""WebSocket connections that come and go (issue 11's finding: the server's memory grew by
about 80 MB per 2,000 of them until the next full collection). Starts ``mercato serve``
(journaled, as shipped: ``services/gc_policy.py`` in force) as a subprocess, then churns
``--connections`` connections, ``--concurrency`` at a time: each opens, signs in or
subscribes, waits up to ``--wait`` seconds for a frame and closes (``--close close``: the
closing handshake; ``abort``: a reset without one; ``mixed``: every other). It reports the
server's resident size at the start, after ``--warmup`` connections and at the end, and how
many times the server logged "Task exception was never retrieved".

    .venv/bin/python benchmarks/ws_churn.py [--endpoint ws|md|stream|iex]
        [--connections 10000] [--concurrency 50] [--close close|abort|mixed]

One result line (JSON) on stdout; ``growth_after_warmup_mb`` is what the target (flat, a
few MB) is about.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, machine, rss_bytes, stop_process, uvloop_run

UNRETRIEVED = "Task exception was never retrieved"
PATHS = {"ws": "/v1/ws", "md": "/v1/md", "stream": "/stream", "iex": "/v2/iex"}


def start_server(root: Path, port: int, md_port: int) -> tuple[subprocess.Popen[str], Path]:
    log = root / "server.log"
    cmd = [sys.executable, "-m", "mercato", "serve", "--data-dir", str(root / "data")]
    cmd += ["--port", str(port), "--md-port", str(md_port)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/instruments", timeout=0.5)
            return proc, log
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_process(proc)
                raise RuntimeError(f"mercato serve did not start: {log.read_text()}") from None
            time.sleep(0.1)


async def one(url: str, endpoint: str, key: tuple[str, str], wait: float, abort: bool) -> None:
    """One connection's life: open, say what the endpoint expects, take a frame, close."""
    async with connect(url, open_timeout=10, close_timeout=2) as ws:
        if endpoint in ("ws", "md"):
            await ws.send(json.dumps({"op": "subscribe", "channels": ["trades:XYZ"]}))
        elif endpoint == "stream":
            await ws.send(json.dumps({"action": "auth", "key": key[0], "secret": key[1]}))
            await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        else:
            await ws.recv()  # "connected"
            await ws.send(json.dumps({"action": "auth", "key": key[0], "secret": key[1]}))
            await ws.send(json.dumps({"action": "subscribe", "trades": ["XYZ"]}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.recv(), wait)
        if abort:
            _abort(ws)


def _abort(ws: ClientConnection) -> None:
    ws.transport.abort()


async def churn(
    url: str, endpoint: str, key: tuple[str, str], n: int, concurrency: int, wait: float, close: str
) -> int:
    """``n`` connections, ``concurrency`` at a time; how many failed."""
    failed = 0
    started = 0
    lock = asyncio.Lock()

    async def worker() -> None:
        nonlocal failed, started
        while True:
            async with lock:
                if started >= n:
                    return
                i = started
                started += 1
            abort = close == "abort" or (close == "mixed" and i % 2 == 1)
            try:
                await one(url, endpoint, key, wait, abort)
            except Exception:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="ws-churn-"))
    port, md_port = free_port(), free_port()
    proc, log = start_server(root, port, md_port)
    try:
        creds = json.loads((root / "data" / "credentials.json").read_text())
        key = (creds["admin_key_id"], creds["admin_secret"])
        admin = {"Authorization": f"Bearer {key[0]}:{key[1]}"}
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/admin/instruments",
            headers=admin,
            json={"symbol": "XYZ", "reference_price": "10"},
        )
        r.raise_for_status()
        time.sleep(0.5)
        start = rss_bytes(proc.pid)
        url = f"ws://127.0.0.1:{md_port if args.endpoint == 'md' else port}"
        url += PATHS[args.endpoint]
        rounds = [min(args.warmup, args.connections), max(0, args.connections - args.warmup)]
        rss = []
        failed = 0
        began = time.monotonic()
        for n in rounds:
            failed += uvloop_run(
                churn(url, args.endpoint, key, n, args.concurrency, args.wait, args.close)
            )
            time.sleep(0.5)  # (the server finishes its closes)
            rss.append(rss_bytes(proc.pid))
        took = time.monotonic() - began
    finally:
        stop_process(proc)
    mb = 1 << 20
    return {
        "bench": "ws_churn",
        "endpoint": args.endpoint,
        "close": args.close,
        "connections": args.connections,
        "concurrency": args.concurrency,
        "warmup": rounds[0],
        "failed": failed,
        "seconds": round(took, 1),
        "rss_start_mb": round(start / mb, 1),
        "rss_warm_mb": round(rss[0] / mb, 1),
        "rss_end_mb": round(rss[1] / mb, 1),
        "growth_after_warmup_mb": round((rss[1] - rss[0]) / mb, 1),
        "unretrieved_task_exceptions": log.read_text().count(UNRETRIEVED),
        "machine": machine(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", choices=sorted(PATHS), default="ws")
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--warmup", type=int, default=1_000, help="connections before the baseline")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--wait", type=float, default=0.5, help="seconds to wait for a frame")
    ap.add_argument("--close", choices=("close", "abort", "mixed"), default="close")
    print(json.dumps(run(ap.parse_args())))


if __name__ == "__main__":
    main()

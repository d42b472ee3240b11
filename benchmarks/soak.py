"""Soak: the demo's market for a long time, watched from outside.

``mercato demo`` runs in its own process (its simulated traders at ``--rate`` commands a
second, journaled with fsync, periodic snapshots) while this script, as a trader of the
demo, places a resting limit order and cancels it ``--order-rate`` times a second over
REST, timing each round trip. Every ``--interval`` seconds it samples the server's RSS
and open files (from /proc), the data directory's size and the p99 of the round trips of
that interval, and prints the sample as a JSON line on stderr.

At the end it prints one JSON line on stdout: the samples, and the growth per hour of
RSS, open files and the data directory, each a least-squares slope over the samples
taken after ``--warmup`` seconds, with RSS growth also as a percentage of the RSS at the
end of the warm-up (target: under 1% an hour).

Usage: python benchmarks/soak.py [--duration 1800] [--interval 60] [--warmup 300]
       [--rate 1000] [--order-rate 20] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from _common import free_port, machine, pct, rss_bytes, stop_process, uvloop_run

SYMBOL = "AAPL"


def dir_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed by retention meanwhile
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value), per hour; None with fewer than 2 points."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / den * 3600


def file_mb(path: Path) -> float:
    try:
        return os.path.getsize(path) / 1e6
    except OSError:
        return 0.0


def start_demo(
    data_dir: Path, port: int, rate: int, retention: str = "1h"
) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "mercato", "demo", "--data-dir", str(data_dir)]
    cmd += ["--port", str(port), "--rate", str(rate), "--seed", "1", "--retention", retention]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    creds = data_dir / "credentials.json"
    while True:
        if proc.poll() is not None:
            assert proc.stderr is not None
            raise RuntimeError(f"the demo exited ({proc.returncode}): {proc.stderr.read()}")
        if creds.exists():
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/instruments", timeout=1.0)
                return proc
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the demo did not start listening")
        time.sleep(0.2)


async def trade(
    base: str, auth: str, rate: float, stop: asyncio.Event, lat: list[int], errors: list[str]
) -> None:
    """Place a resting buy far below the market and cancel it, ``rate`` pairs a second."""
    headers = {"Authorization": f"Bearer {auth}"}
    body = {"symbol": SYMBOL, "side": "buy", "type": "limit", "qty": "1", "price": "1.00"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10.0) as http:
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            due = start + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            i += 1
            t0 = time.perf_counter_ns()
            r = await http.post("/v1/orders", json=body)
            t1 = time.perf_counter_ns()
            if r.status_code != 201:
                errors.append(f"POST {r.status_code} {r.text[:200]}")
                continue
            oid = r.json()["id"]
            r = await http.delete(f"/v1/orders/{oid}")
            t2 = time.perf_counter_ns()
            if r.status_code != 200:
                errors.append(f"DELETE {r.status_code} {r.text[:200]}")
            lat.append(t1 - t0)
            lat.append(t2 - t1)


async def soak(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    port = free_port()
    proc = start_demo(data_dir, port, args.rate, args.retention)
    try:
        creds = json.loads((data_dir / "credentials.json").read_text())
        stop = asyncio.Event()
        lat: list[int] = []
        errors: list[str] = []
        auth = f"{creds['key_id']}:{creds['secret']}"
        task = asyncio.create_task(
            trade(f"http://127.0.0.1:{port}", auth, args.order_rate, stop, lat, errors)
        )
        t0 = time.monotonic()
        samples: list[dict[str, Any]] = []
        while (elapsed := time.monotonic() - t0) < args.duration:
            await asyncio.sleep(min(args.interval, args.duration - elapsed))
            if proc.poll() is not None:
                raise RuntimeError(f"the demo died (exit {proc.returncode})")
            window, lat[:] = sorted(lat), []
            sample = {
                "t_s": round(time.monotonic() - t0, 1),
                "rss_mb": round(rss_bytes(proc.pid) / 1e6, 1),
                "open_files": open_files(proc.pid),
                "data_dir_mb": round(dir_bytes(data_dir) / 1e6, 1),
                "store_mb": round(file_mb(data_dir / "node" / "store.sqlite"), 1),
                "requests": len(window),
                "p99_ms": pct(window, 99, 1e6),
                "errors": len(errors),
            }
            samples.append(sample)
            print(json.dumps(sample), file=sys.stderr, flush=True)
        stop.set()
        await task
    finally:
        stop_process(proc, 30.0)
    late = [s for s in samples if s["t_s"] > args.warmup]
    rss0 = late[0]["rss_mb"] if late else None
    rss_h = slope_per_hour([(s["t_s"], s["rss_mb"]) for s in late])
    files_h = slope_per_hour([(s["t_s"], s["open_files"]) for s in late])
    disk_h = slope_per_hour([(s["t_s"], s["data_dir_mb"]) for s in late])
    return {
        "bench": "soak",
        "machine": machine(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rate": args.rate,
        "order_rate": args.order_rate,
        "retention": args.retention,
        "rss_mb_per_hour": None if rss_h is None else round(rss_h, 2),
        "rss_pct_per_hour": None if rss_h is None or not rss0 else round(rss_h / rss0 * 100, 2),
        "open_files_per_hour": None if files_h is None else round(files_h, 2),
        "data_dir_mb_per_hour": None if disk_h is None else round(disk_h, 2),
        "errors": errors[:10],
        "error_count": len(errors),
        "samples": samples,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--duration", type=float, default=1800.0, help="seconds (default 1800)")
    ap.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=300.0, help="seconds left out of growth")
    ap.add_argument("--rate", type=int, default=1000, help="the demo's commands/s (max 1000)")
    ap.add_argument("--order-rate", type=float, default=20.0, help="REST order+cancel pairs/s")
    ap.add_argument("--retention", default="1h", help="the demo's SQL-store retention (default 1h)")
    ap.add_argument("--data-dir", help="the demo's data directory (default: a fresh temp one)")
    args = ap.parse_args()
    if args.data_dir:
        result = uvloop_run(soak(args, Path(args.data_dir)))
    else:
        with tempfile.TemporaryDirectory(prefix="mercato-soak-") as tmp:
            result = uvloop_run(soak(args, Path(tmp) / "demo"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

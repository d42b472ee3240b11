"""Engine benchmark on the exchange-core mix, with the journal off and on.

Prints, as its last lines, one JSON object per journal setting:
{"bench": "engine", "journal": false|true, "commands_per_s": <median of runs>,
 "p50_us": ..., "p99_us": ..., "p999_us": ...}
Throughput is a closed loop over pre-generated commands; latencies are measured open-loop
at a fixed arrival rate (default 100,000 commands/s): each command's latency runs from its
scheduled arrival, so time spent behind schedule counts (no coordinated omission).

Usage: python benchmarks/engine.py [--commands N] [--runs 5] [--books 1] [--rate 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mercato.engine.engine as engine_module
from mercato.domain import Command
from mercato.engine import Engine
from workload import Workload, generate


def fresh_engine(w: Workload) -> Engine:
    e = Engine()
    for c in w.setup:
        e.process(c)
    return e


def throughput_off(w: Workload) -> float:
    e = fresh_engine(w)
    process = e.process
    cmds = w.commands
    t0 = time.perf_counter_ns()
    for c in cmds:
        process(c)
    return len(cmds) / ((time.perf_counter_ns() - t0) / 1e9)


def latency_off(w: Workload, rate: int, baseline: bool = False) -> list[int]:
    """Open-loop latencies; ``baseline`` runs the same schedule with no work at all, which
    measures the floor this machine imposes (timer reads and time the VM steals)."""
    e = fresh_engine(w)
    process: Callable[[Command], object] = _nothing if baseline else e.process
    clock = time.perf_counter_ns
    interval = 1_000_000_000 // rate
    lat = [0] * len(w.commands)
    start = clock() + 1_000_000
    for i, c in enumerate(w.commands):
        due = start + i * interval
        while clock() < due:
            pass
        process(c)
        lat[i] = clock() - due
    return lat


def _nothing(cmd: Command) -> None:
    return None


def service_times(w: Workload) -> list[int]:
    """Closed loop, one command at a time: how long each command itself takes."""
    e = fresh_engine(w)
    process = e.process
    clock = time.perf_counter_ns
    out = [0] * len(w.commands)
    for i, c in enumerate(w.commands):
        t = clock()
        process(c)
        out[i] = clock() - t
    return out


def _node(directory: str):  # type: ignore[no-untyped-def]
    from mercato.services.engine_node import EngineNode

    return EngineNode.open(directory, snapshot_every=10**12, fsync=True)


def _setup_node(w: Workload, directory: str):  # type: ignore[no-untyped-def]
    node = _node(directory)
    batch = [("bench", i + 1, c) for i, c in enumerate(w.setup)]
    for j in range(0, len(batch), 1024):
        node.submit(batch[j : j + 1024])
    return node, len(batch)


def throughput_on(w: Workload, batch_size: int) -> float:
    with tempfile.TemporaryDirectory(dir=os.environ.get("MERCATO_BENCH_DIR")) as d:
        node, n0 = _setup_node(w, d)
        items = [("bench", n0 + i + 1, c) for i, c in enumerate(w.commands)]
        t0 = time.perf_counter_ns()
        for j in range(0, len(items), batch_size):
            node.submit(items[j : j + batch_size])
        elapsed = time.perf_counter_ns() - t0
        node.close()
    return len(items) / (elapsed / 1e9)


def latency_on(w: Workload, rate: int, max_batch: int) -> list[int]:
    """Open loop with group commit: each submit takes every command that has arrived."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("MERCATO_BENCH_DIR")) as d:
        node, n0 = _setup_node(w, d)
        items = [("bench", n0 + i + 1, c) for i, c in enumerate(w.commands)]
        clock = time.perf_counter_ns
        interval = 1_000_000_000 // rate
        lat = [0] * len(items)
        start = clock() + 1_000_000
        i = 0
        n = len(items)
        while i < n:
            now = clock()
            arrived = min(n, (now - start) // interval + 1) if now >= start else 0
            if arrived <= i:
                continue
            j = min(arrived, i + max_batch)
            node.submit(items[i:j])
            done = clock()
            for k in range(i, j):
                lat[k] = done - (start + k * interval)
            i = j
        node.close()
    return lat


def pct(values: list[int], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000.0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=300_000)
    ap.add_argument("--latency-commands", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--books", type=int, default=1)
    ap.add_argument("--rate", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1024, help="group-commit batch, closed loop")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-journal", action="store_true", help="skip the journal-on runs")
    ap.add_argument("--gc", choices=["freeze", "on", "off"], default="freeze")
    args = ap.parse_args(argv)

    w = generate(args.commands, books=args.books, seed=args.seed)
    wl = generate(args.latency_commands, books=args.books, seed=args.seed + 1)
    compiled = engine_module.__file__ is not None and not engine_module.__file__.endswith(".py")
    print(
        f"# python {platform.python_version()} on {platform.machine()}, "
        f"engine {'compiled (mypyc)' if compiled else 'pure Python'}, gc={args.gc}, "
        f"{len(w.commands)} commands, {args.books} book(s), {args.runs} runs",
        file=sys.stderr,
    )
    if args.gc == "freeze":
        gc.collect()
        gc.freeze()
    elif args.gc == "off":
        gc.disable()

    results = []
    settings = [False] if args.no_journal else [False, True]
    for journal in settings:
        rates = []
        for r in range(args.runs):
            rate = throughput_on(w, args.batch) if journal else throughput_off(w)
            rates.append(rate)
            print(f"#   journal={journal} run {r + 1}: {rate:,.0f} commands/s", file=sys.stderr)
        if not journal:
            st = service_times(wl)
            floor = latency_off(wl, args.rate, baseline=True)
            print(
                f"#   service time per command (closed loop): p50 {pct(st, 0.5)} us, "
                f"p99 {pct(st, 0.99)} us, p99.9 {pct(st, 0.999)} us",
                file=sys.stderr,
            )
            print(
                f"#   machine floor (same open-loop schedule, no work): p50 {pct(floor, 0.5)} us, "
                f"p99 {pct(floor, 0.99)} us, p99.9 {pct(floor, 0.999)} us",
                file=sys.stderr,
            )
        lat = latency_on(wl, args.rate, args.batch) if journal else latency_off(wl, args.rate)
        results.append(
            {
                "bench": "engine",
                "journal": journal,
                "commands_per_s": round(statistics.median(rates)),
                "p50_us": pct(lat, 0.50),
                "p99_us": pct(lat, 0.99),
                "p999_us": pct(lat, 0.999),
            }
        )
    for res in results:
        print(json.dumps(res))


if __name__ == "__main__":
    main()

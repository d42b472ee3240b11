"""Risk core benchmark: matching alone (``Engine``) against the whole ``Core`` (pre-trade
risk, reservations, settlement in the ledger and positions, margin checks) on the same
exchange-core command stream, in one process.

Every account the workload names is created and funded generously before the clock starts
(cash, and for cash accounts the instrument, so that sells are covered), so the core
rejects nothing and both runs do the same matching: the benchmark checks that the two
produce the same trades and prints the core's reject count.

Rounds are interleaved (engine, core, core, ... then again), each on a fresh engine or
core built from the same set-up; throughput is the median over rounds of closed-loop
runs, service time (p50/p99 of one command, closed loop) the median over rounds of each
round's percentile. Prints, as its last lines, one JSON object per core variant:
{"bench": "core", "accounts": "margin"|"cash", "build": ..., "engine_commands_per_s": ...,
 "core_commands_per_s": ..., "ratio": <engine / core>, "ratio_of_rounds": <median of the
 rounds' ratios>, "engine_p50_us": ..., ...}

Usage: python benchmarks/core.py [--commands N] [--rounds 5] [--accounts margin,cash]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mercato.engine.core as core_module
import mercato.engine.engine as engine_module
from mercato.domain import AddInstrument, Command, Event, NewOrder, Rejected, Trade
from mercato.domain.commands import CreateAccount, Deposit, SetInstrumentRisk
from mercato.domain.types import AccountKind
from mercato.engine import Engine
from mercato.engine.core import Core
from workload import MID, Workload, generate

CASH_PER_ACCOUNT = 10**13  # cents: no order of the workload comes near it
SHARES_PER_ACCOUNT = 10**9  # cash accounts: covers every sell the workload sends
MAKER_FEE_BPS = 1
TAKER_FEE_BPS = 2

Process = Callable[[Command], list[Event]]


def core_setup(w: Workload, kind: str) -> list[Command]:
    """The workload's set-up for a ``Core``: instruments with fees and a reference price,
    every account the workload names created and funded, then the resting orders."""
    instruments = [c for c in w.setup if isinstance(c, AddInstrument)]
    orders = [c for c in w.setup if not isinstance(c, AddInstrument)]
    accounts = sorted({c.account for c in (*w.setup, *w.commands) if isinstance(c, NewOrder)})
    account_kind = AccountKind.MARGIN if kind == "margin" else AccountKind.CASH
    out: list[Command] = list(instruments)
    for i in instruments:
        out.append(
            SetInstrumentRisk(
                symbol=i.symbol,
                maker_fee_bps=MAKER_FEE_BPS,
                taker_fee_bps=TAKER_FEE_BPS,
                reference_price=MID,
            )
        )
    for a in accounts:
        out.append(CreateAccount(account=a, kind=account_kind))
        out.append(Deposit(account=a, asset="USD", amount=CASH_PER_ACCOUNT))
        if kind == "cash":
            for i in instruments:
                cost = SHARES_PER_ACCOUNT * MID  # price_scale 2 = the cash scale: 1:1
                out.append(Deposit(account=a, asset=i.symbol, amount=SHARES_PER_ACCOUNT, cost=cost))
    out.extend(orders)
    return out


def fresh(w: Workload, kind: str) -> Process:
    """A ready engine (``kind`` "engine") or core, its set-up applied; its ``process``."""
    if kind == "engine":
        e = Engine()
        for c in w.setup:
            e.process(c)
        return e.process
    core = Core()
    for c in core_setup(w, kind):
        for ev in core.process(c):
            if isinstance(ev, Rejected):
                raise AssertionError(f"set-up rejected: {ev}")
    return core.process


def trades_and_rejects(
    process: Process, commands: Iterable[Command]
) -> tuple[list[tuple[int, ...]], int]:
    """Every trade as (taker, maker, price, qty), and the number of rejects."""
    trades: list[tuple[int, ...]] = []
    rejects = 0
    for c in commands:
        for ev in process(c):
            if isinstance(ev, Trade):
                trades.append((ev.taker_order_id, ev.maker_order_id, ev.price, ev.qty))
            elif isinstance(ev, Rejected):
                rejects += 1
    return trades, rejects


def throughput(process: Process, cmds: list[Command]) -> float:
    t0 = time.perf_counter_ns()
    for c in cmds:
        process(c)
    return len(cmds) / ((time.perf_counter_ns() - t0) / 1e9)


def service_times(process: Process, cmds: list[Command]) -> list[int]:
    """Closed loop, one command at a time: how long each command itself takes (ns)."""
    clock = time.perf_counter_ns
    out = [0] * len(cmds)
    for i, c in enumerate(cmds):
        t = clock()
        process(c)
        out[i] = clock() - t
    return out


def pct(values: list[int], q: float) -> float:
    """The ``q`` quantile of nanosecond ``values``, in microseconds."""
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))] / 1000.0, 2)


def compiled(module: object) -> bool:
    f = getattr(module, "__file__", None) or ""
    return not f.endswith(".py")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--commands", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--books", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--accounts", default="margin,cash", help="core variants, comma-separated")
    args = ap.parse_args(argv)
    variants = [v for v in args.accounts.split(",") if v]
    if not set(variants) <= {"margin", "cash"}:
        ap.error("--accounts takes margin and/or cash")

    w = generate(args.commands, books=args.books, seed=args.seed)
    build = "compiled" if compiled(engine_module) else "plain"
    print(
        f"# python {platform.python_version()} on {platform.machine()}, engine {build}, "
        f"core {'compiled' if compiled(core_module) else 'plain'}, "
        f"{len(w.commands)} commands, {args.books} book(s), {args.rounds} rounds",
        file=sys.stderr,
    )

    # Honesty check (untimed): the same trades, and the core rejects nothing.
    ref_trades, ref_rejects = trades_and_rejects(fresh(w, "engine"), w.commands)
    checks: dict[str, int] = {}
    for v in variants:
        trades, rejects = trades_and_rejects(fresh(w, v), w.commands)
        if trades != ref_trades:
            raise AssertionError(f"{v}: the core's trades differ from the engine's")
        checks[v] = rejects
        print(
            f"#   {v}: {len(trades):,} trades (same as the engine), {rejects} rejected "
            f"({rejects / len(w.commands):.4%}); engine alone rejected {ref_rejects}",
            file=sys.stderr,
        )

    gc.collect()
    gc.freeze()
    kinds = ["engine", *variants]
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    p50: dict[str, list[float]] = {k: [] for k in kinds}
    p99: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]  # rotate who goes first
        for k in order:
            rates[k].append(throughput(fresh(w, k), w.commands))
            st = service_times(fresh(w, k), w.commands)
            p50[k].append(pct(st, 0.5))
            p99[k].append(pct(st, 0.99))
        line = ", ".join(
            f"{k} {rates[k][-1]:,.0f}/s p50 {p50[k][-1]} p99 {p99[k][-1]} us" for k in kinds
        )
        print(f"#   round {r + 1}: {line}", file=sys.stderr)

    med = {k: statistics.median(rates[k]) for k in kinds}
    for k in kinds:
        spread = (max(rates[k]) - min(rates[k])) / med[k]
        print(
            f"#   {k}: median {med[k]:,.0f} commands/s (spread {spread:.0%}), "
            f"service p50 {statistics.median(p50[k])} us, p99 {statistics.median(p99[k])} us",
            file=sys.stderr,
        )
    for v in variants:
        print(
            json.dumps(
                {
                    "bench": "core",
                    "accounts": v,
                    "build": build,
                    "engine_commands_per_s": round(med["engine"]),
                    "core_commands_per_s": round(med[v]),
                    "ratio": round(med["engine"] / med[v], 2),
                    # the same, round by round (each round runs both back to back)
                    "ratio_of_rounds": round(
                        statistics.median(
                            [e / c for e, c in zip(rates["engine"], rates[v], strict=True)]
                        ),
                        2,
                    ),
                    "engine_p50_us": round(statistics.median(p50["engine"]), 2),
                    "engine_p99_us": round(statistics.median(p99["engine"]), 2),
                    "core_p50_us": round(statistics.median(p50[v]), 2),
                    "core_p99_us": round(statistics.median(p99[v]), 2),
                    "core_rejects": checks[v],
                    "trades": len(ref_trades),
                }
            )
        )


if __name__ == "__main__":
    main()

"""The demo behind the API: the platform served over HTTP while simulated traders trade.

``mercato demo --port P`` runs one event loop with three things on it: the REST API
(uvicorn), the journaled core (``Platform``), and the simulator, which submits each slice
of its order flow as one batch (one group commit) and paces itself to the wall clock. The
simulator's market makers quote every instrument, so a market order from the API fills at
once. An administrator and a funded demo trader are created, and their keys written to
``DIR/credentials.json`` so that scripts can drive a fresh demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mercato.api.app import MD_FLUSH, create_app
from mercato.api.limits import Limits, server_config
from mercato.domain.commands import CreateAccount, Deposit
from mercato.domain.types import AccountKind
from mercato.services import gc_policy
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform
from mercato.sim.market import NS, Simulator

DEMO_CASH = 1_000_000_00  # the demo trader's deposit: 1,000,000.00 USD
CREDENTIALS = "credentials.json"


class ServedDemoError(RuntimeError):
    """The served demo cannot start (a data directory that already holds a market)."""


@dataclass(frozen=True)
class ServedConfig:
    symbols: tuple[str, ...]
    seed: int = 1
    rate: int = 200  # simulated commands per second
    host: str = "127.0.0.1"
    port: int = 8000
    md_port: int | None = None  # also market data alone there (/v1/md)
    data_dir: str | None = None
    duration: float | None = None  # seconds; None: until stopped
    limits: Limits = field(default_factory=Limits)  # the server's connection limits (api/limits.py)


async def _setup(
    platform: Platform, auth: AuthStore, sim: Simulator, cfg: ServedConfig, root: Path
) -> dict[str, Any]:
    """The simulator's instruments and accounts, then the administrator and the demo
    trader (with a funded cash account); their keys go to ``credentials.json``."""
    await platform.submit_many(sim.setup())
    admin_password = secrets.token_urlsafe(18)
    admin = auth.create_user("admin", admin_password, "admin")
    admin_key, admin_secret = auth.create_key(admin)
    trader_password = secrets.token_urlsafe(18)
    trader = auth.create_user("demo", trader_password)
    account = platform.next_account_id()
    await platform.submit(CreateAccount(ts=platform.now(), account=account, kind=AccountKind.CASH))
    await platform.submit(
        Deposit(ts=platform.now(), account=account, asset="USD", amount=DEMO_CASH)
    )
    auth.add_account(trader, account)
    key_id, secret = auth.create_key(trader)
    creds = {
        "url": f"http://{cfg.host}:{cfg.port}",
        "key_id": key_id,
        "secret": secret,
        "username": "demo",
        "password": trader_password,
        "account": account,
        "admin_key_id": admin_key,
        "admin_secret": admin_secret,
        "admin_username": "admin",
        "admin_password": admin_password,
    }
    path = root / CREDENTIALS
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(creds, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return creds


async def _trade(platform: Platform, sim: Simulator, stop: asyncio.Event, out: IO[str]) -> None:
    """Submit the simulator's slices in (wall-clock) time until ``stop``."""
    start = time.monotonic()
    base = sim.elapsed_ns
    last_report = start
    trades = 0
    while not stop.is_set():
        batch = sim.next_batch()
        if batch:
            for events in await platform.submit_many(batch):
                sim.on_events(events)
                trades += sum(1 for e in events if type(e).__name__ == "Trade")
        due = start + (sim.elapsed_ns - base) / NS
        now = time.monotonic()
        if now - last_report >= 5.0:
            last_report = now
            out.write(f"  {sim.commands:,} simulated commands, {trades:,} trades\n")
            out.flush()
        if due > now:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), due - now)


async def serve_demo(cfg: ServedConfig, out: IO[str]) -> dict[str, Any]:
    """Run the served demo until ``duration`` passes or the server is stopped (Ctrl-C)."""
    import uvicorn

    root = Path(cfg.data_dir) if cfg.data_dir else Path(tempfile.mkdtemp(prefix="mercato-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    if (root / "node").exists() or (root / "users.sqlite").exists():
        raise ServedDemoError(
            f"{root} already holds a market: pass a new --data-dir (reopen this one with "
            f"`mercato serve --data-dir {root}`)"
        )
    platform = Platform(root / "node", fsync=True)
    auth = AuthStore(f"sqlite:///{root / 'users.sqlite'}")
    # a live market: the simulator's clock starts at the wall clock, like the orders that
    # people and programs send through the API (and bars, stats and the screen agree)
    sim = Simulator(cfg.symbols, cfg.seed, rate=cfg.rate, start_ns=time.time_ns())
    platform.start()
    stop = asyncio.Event()
    try:
        creds = await _setup(platform, auth, sim, cfg, root)
        out.write(
            f"mercato demo: {creds['url']}/v1  (credentials in {root / CREDENTIALS}; "
            f"{len(cfg.symbols)} instruments, {cfg.rate} simulated commands/s)\n"
        )
        if cfg.md_port is not None:
            out.write(f"  market data alone: ws://{cfg.host}:{cfg.md_port}/v1/md\n")
        out.flush()
        app = create_app(
            platform,
            auth,
            manage_platform=False,
            full_gc_every=gc_policy.FULL_EVERY,
            md_flush=MD_FLUSH,
            md_port=cfg.md_port,
            md_host=cfg.host,
            limits=cfg.limits,
        )
        server = uvicorn.Server(server_config(app, cfg.host, cfg.port, app.state.guard))
        trading = asyncio.create_task(_trade(platform, sim, stop, out))
        serving = asyncio.create_task(server.serve())
        if cfg.duration is not None:
            await asyncio.wait({serving}, timeout=cfg.duration)
            server.should_exit = True
        await serving
        stop.set()
        await trading
        return creds
    finally:
        stop.set()
        await platform.stop()
        auth.close()

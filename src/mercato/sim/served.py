"""The demo behind the API: the platform served over HTTP while simulated traders trade.

``mercato demo --port P`` runs one event loop with three things on it: the REST API
(uvicorn), the journaled core (``Platform``), and the simulator, which submits each slice
of its order flow as one batch (one group commit) and paces itself to the wall clock. The
simulator's market makers quote every instrument, so a market order from the API fills at
once. An administrator and a funded demo trader are created, and their keys written to
``DIR/credentials.json`` so that scripts can drive a fresh demo.

A directory that already holds a served demo is resumed (``sim/resume.py``): the market,
its users and keys, the demo trader and the simulated traders' accounts carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mercato.adapters.private_files import write_private
from mercato.adapters.sql.prefs import SqlPrefs
from mercato.api.app import MD_FLUSH, create_app
from mercato.api.landing import About
from mercato.api.limits import Limits, server_config
from mercato.api.listen import ListenError, bind, check_free, serve_until_done
from mercato.domain.commands import CreateAccount, Deposit
from mercato.domain.types import AccountKind
from mercato.services import gc_policy
from mercato.services.auth import AuthStore
from mercato.services.engine_node import RETRY_AFTER, NodeUnavailable
from mercato.services.platform import Platform
from mercato.sim.day import SimDay
from mercato.sim.market import NS, Simulator
from mercato.sim.resume import DemoState, ServedDemoError, open_state, resume_simulator

__all__ = ["CREDENTIALS", "DEMO_CASH", "ServedConfig", "ServedDemoError", "serve_demo"]

DEMO_CASH = 1_000_000_00  # the demo trader's deposit: 1,000,000.00 USD
CREDENTIALS = "credentials.json"


@dataclass(frozen=True)
class ServedConfig:
    symbols: tuple[str, ...] | None = None  # None: the defaults, or what DIR was made with
    seed: int = 1
    rate: int = 200  # simulated commands per second
    host: str = "127.0.0.1"
    port: int = 8000
    md_port: int | None = None  # also market data alone there (/v1/md)
    data_dir: str | None = None
    duration: float | None = None  # seconds; None: until stopped
    limits: Limits = field(default_factory=Limits)  # the server's connection limits (api/limits.py)
    # seconds of core time of finished history the SQL store keeps (None: all of it): an
    # hour, so that a demo left running does not fill the disk (docs/persister.md)
    retention: int | None = 3_600
    # a simulated trading day (sim/day.py): the simulator drives the phases; None: 24/7
    day: SimDay | None = None


DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA")


def _write_credentials(path: Path, creds: dict[str, Any]) -> None:
    write_private(path, json.dumps(creds, indent=2) + "\n")  # 0600 from the start


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
    _write_credentials(root / CREDENTIALS, creds)
    return creds


async def _trade(
    platform: Platform, sim: Simulator, state: DemoState, stop: asyncio.Event, out: IO[str]
) -> None:
    """Submit the simulator's slices in (wall-clock) time until ``stop``."""
    start = time.monotonic()
    base = sim.elapsed_ns
    last_report = start
    trades = 0
    while not stop.is_set():
        batch = sim.next_batch()
        while batch:
            state.reserve(sim.next_order_id)  # durable before any of these ids is
            try:
                results = await platform.submit_many(batch)
            except NodeUnavailable:  # the journal found no space: nothing happened; retry
                await asyncio.sleep(RETRY_AFTER)
                if stop.is_set():
                    return
                continue
            for events in results:
                sim.on_events(events)
                trades += sum(1 for e in events if type(e).__name__ == "Trade")
            break
        due = start + (sim.elapsed_ns - base) / NS
        now = time.monotonic()
        if now - last_report >= 5.0:
            last_report = now
            out.write(f"  {sim.commands:,} simulated commands, {trades:,} trades\n")
            out.flush()
        if due > now:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), due - now)


def _about(cfg: ServedConfig, sim: Simulator, root: Path, url: str) -> About:
    kinds = [("market makers", sim.makers), ("noise traders", sim.noise)]
    kinds.append(("momentum traders", sim.momentum))
    return About(
        mode="demo",
        api_url=url,
        md_url=f"ws://{cfg.host}:{cfg.md_port}/v1/md" if cfg.md_port is not None else None,
        data_dir=str(root),
        credentials=str(root / CREDENTIALS),
        traders=tuple(f"{len(agents)} {name}" for name, agents in kinds),
        rate=cfg.rate,
    )


async def serve_demo(
    cfg: ServedConfig, out: IO[str], stop_when: asyncio.Event | None = None
) -> dict[str, Any]:
    """Run the served demo until ``duration`` passes, ``stop_when`` is set, or the server
    is stopped (Ctrl-C)."""
    import uvicorn

    root = Path(cfg.data_dir) if cfg.data_dir else Path(tempfile.mkdtemp(prefix="mercato-demo-"))
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = open_state(root, cfg.symbols or DEFAULT_SYMBOLS, cfg.seed, cfg.symbols is not None)
    try:  # the ports first: a clash is one line, before anything is created
        sock = bind(cfg.host, cfg.port, "--port")
        if cfg.md_port is not None:
            check_free(cfg.host, cfg.md_port, "--md-port")
    except ListenError as e:
        raise ServedDemoError(str(e)) from None
    url = f"http://{cfg.host}:{sock.getsockname()[1]}"
    platform = Platform(root / "node", fsync=True, retention=cfg.retention)
    auth = AuthStore(f"sqlite:///{root / 'users.sqlite'}")
    prefs = SqlPrefs(f"sqlite:///{root / 'users.sqlite'}")  # watchlists, configurations
    stop = asyncio.Event()
    try:
        platform.start()
        # a live market: the simulator's clock starts at the wall clock, like the orders
        # that people and programs send through the API (and bars, stats and screens agree)
        if state.resumed:
            sim = await resume_simulator(
                platform, state, cfg.seed, cfg.rate, time.time_ns(), day=cfg.day
            )
            creds = dict(json.loads((root / CREDENTIALS).read_text()))
            creds["url"] = url
            _write_credentials(root / CREDENTIALS, creds)
            out.write(f"mercato demo: resumed {root} ({state.runs} earlier runs)\n")
        else:
            sim = Simulator(
                state.symbols, state.seed, rate=cfg.rate, start_ns=time.time_ns(), day=cfg.day
            )
            state.reserve(sim.next_order_id)
            creds = await _setup(platform, auth, sim, cfg, root)
            creds["url"] = url
            _write_credentials(root / CREDENTIALS, creds)
        state.started()
        out.write(
            f"mercato demo: {len(state.symbols)} instruments ({', '.join(state.symbols)}), "
            f"{len(sim.agents)} simulated traders at {cfg.rate} commands/s\n"
            f"  credentials: {root / CREDENTIALS}\n"
        )
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
            # 24/7: the demo's day ends at 00:00 UTC, DAY orders expire; with a simulated
            # day, the simulator sends the phases itself
            sessions=cfg.day is None,
            prefs=prefs,
        )
        app.state.about = _about(cfg, sim, root, url)
        server = uvicorn.Server(server_config(app, cfg.host, cfg.port, app.state.guard))

        def ready() -> None:
            out.write(f"ready: {url}/ (the API: {url}/v1, docs: {url}/docs)\n")
            if cfg.md_port is not None:
                out.write(f"  market data alone: ws://{cfg.host}:{cfg.md_port}/v1/md\n")
            out.flush()

        trading = asyncio.create_task(_trade(platform, sim, state, stop, out))

        async def limit() -> None:
            if cfg.duration is not None or stop_when is not None:
                wanted = stop_when.wait() if stop_when is not None else asyncio.sleep(3e9)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wanted, cfg.duration)
                server.should_exit = True

        timer = asyncio.create_task(limit())
        try:
            started = await serve_until_done(server, sock, ready)
        finally:
            timer.cancel()
            stop.set()
            await trading
        if not started:
            raise ServedDemoError("the API server did not start (its reason is above)")
        return creds
    finally:
        stop.set()
        sock.close()
        await platform.stop()
        auth.close()
        prefs.close()

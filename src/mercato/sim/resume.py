"""A served demo's directory, and how a later run resumes it.

``DIR/demo-served.json`` says what the directory holds: the instruments it was made with,
how many runs it has had, and the simulator's order ids reserved so far. The simulator
numbers its orders itself (1, 2, ...), and a resumed run must never reuse one: ids are
reserved in blocks of ``ID_BLOCK``, the file written and fsynced before an id of a new
block is journaled, and a resumed run starts after the last reserved id (a crash wastes
at most one block; the API's ids, microseconds since the epoch, are far above).

Resuming keeps everything the platform holds: the market and its history, the users and
their keys (``credentials.json`` stays valid), the demo trader, and the simulated traders'
accounts, cash and positions. The traders themselves start afresh from that state: their
orders still resting from the last run are cancelled (a trader knows only the orders it
placed in this run), their positions are read from the core, and every instrument's fair
value starts at its last price.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mercato.domain.commands import CancelOrder, Command
from mercato.services.platform import Platform
from mercato.sim.day import SimDay
from mercato.sim.market import Simulator

STATE_FILE = "demo-served.json"
ID_BLOCK = 1_000_000


class ServedDemoError(RuntimeError):
    """The served demo cannot start (a directory it cannot resume, a port in use)."""


@dataclass
class DemoState:
    """What ``DIR/demo-served.json`` holds; ``resumed``: the directory held a demo."""

    path: Path
    symbols: tuple[str, ...]
    seed: int
    resumed: bool
    ids_to: int = 0  # the simulator's order ids up to here are reserved
    runs: int = 0  # runs that finished their set-up
    ready: bool = False  # the first run's set-up is done (instruments, users, credentials)

    def reserve(self, next_id: int) -> None:
        """Make sure every id below ``next_id`` is reserved, durably, before use."""
        if next_id - 1 > self.ids_to:
            self.ids_to = next_id - 1 + ID_BLOCK
            self._write()

    def started(self) -> None:
        self.runs += 1
        self.ready = True
        self._write()

    def _write(self) -> None:
        data = {
            "symbols": list(self.symbols),
            "seed": self.seed,
            "order_ids_reserved_to": self.ids_to,
            "runs": self.runs,
            "ready": self.ready,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(json.dumps(data, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def open_state(root: Path, symbols: tuple[str, ...], seed: int, symbols_given: bool) -> DemoState:
    """The state of ``root``: new (nothing there yet) or a served demo to resume; anything
    else is refused with the reason and what to do instead."""
    path = root / STATE_FILE
    holds = (root / "node").exists() or (root / "users.sqlite").exists()
    if not holds:
        if (root / "journal").exists() or (root / "demo.json").exists():
            raise ServedDemoError(
                f"{root} holds a console demo (mercato demo --console --data-dir {root} "
                "resumes it): pass another --data-dir"
            )
        return DemoState(path, symbols, seed, resumed=False)
    if not path.exists():
        raise ServedDemoError(
            f"{root} holds a market that is not a demo's: reopen it with "
            f"`mercato serve --data-dir {root}`, or pass another --data-dir"
        )
    try:
        data = json.loads(path.read_text())
        stored = tuple(str(s) for s in data["symbols"])
        state = DemoState(
            path,
            stored,
            int(data["seed"]),
            resumed=True,
            ids_to=int(data["order_ids_reserved_to"]),
            runs=int(data["runs"]),
            ready=bool(data["ready"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ServedDemoError(f"{path} is unreadable ({e}): pass another --data-dir") from None
    if not state.ready:
        raise ServedDemoError(
            f"{root} holds a demo whose first start did not finish: pass another --data-dir"
        )
    if symbols_given and symbols != stored:
        raise ServedDemoError(
            f"{root} was made with --symbols {','.join(stored)}: pass the same (or no "
            "--symbols) to resume it, or another --data-dir"
        )
    return state


async def resume_simulator(
    platform: Platform,
    state: DemoState,
    seed: int,
    rate: int,
    start_ns: int,
    day: SimDay | None = None,
) -> Simulator:
    """A simulator over the market that ``platform`` recovered: its traders' accounts and
    positions as the core holds them, their old orders cancelled, fair values at the last
    prices, and order ids after every id an earlier run may have used."""
    sim = Simulator(
        state.symbols,
        seed,
        rate=rate,
        start_ns=start_ns,
        first_order_id=state.ids_to + 1,
        day=day,  # a new day starts with the run: its first batch sends the phase
    )
    core = platform.core
    missing = [str(a.account) for a in sim.agents if a.account not in core.accounts]
    missing += [s for s in state.symbols if s not in core.engine.books]
    if missing:
        raise ServedDemoError(
            f"{state.path.parent} does not hold this demo's accounts and instruments "
            f"(missing: {', '.join(missing)}): pass another --data-dir"
        )
    for agent in sim.agents:
        for symbol, pos in core.accounts[agent.account].positions.items():
            if symbol in agent.position:
                agent.position[symbol] = pos.qty
    for symbol in state.symbols:
        price = core.engine.books[symbol].last_price or core.mark(symbol)
        if price > 0:
            sim.fair[symbol] = float(price)
    stale: list[Command] = [
        CancelOrder(ts=platform.now(), order_id=o.order_id, symbol=o.symbol)
        for o in list(core.engine.orders.values())
        if o.account in sim.by_account
    ]
    if stale:
        await platform.submit_many(stale)
    return sim


__all__ = [
    "ID_BLOCK",
    "STATE_FILE",
    "DemoState",
    "ServedDemoError",
    "open_state",
    "resume_simulator",
]

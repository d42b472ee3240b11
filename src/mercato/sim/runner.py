"""The live demo: the simulator driving the platform's core in (paced) real time, with a
live view.

The commands go to ``mercato.engine.core.Core``: accounts, ledger, positions, pre-trade
risk, margin and liquidation around the matching engine. This is the only part of
``mercato.sim`` that reads the wall clock, and only to pace batches and to refresh the
view: the command stream depends on the seed, the symbols and the rate, never on how fast
the machine is. With a data directory the core runs behind an ``EngineNode`` (machine
"core": journal, group commit, snapshots); a restart recovers the node and re-simulates
the journaled prefix against a scratch core, checks that it reaches the recovered state
hash, and carries on exactly where the previous run stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from mercato.domain import Command, Event
from mercato.engine.core import Core
from mercato.sim.day import SimDay
from mercato.sim.market import NS, Simulator
from mercato.sim.view import MarketView

SOURCE = "sim"  # the journal source of the simulator's commands
PARAMS_FILE = "demo.json"  # the simulator parameters a data directory was made with
MACHINE = "core"  # what the engine node runs (``mercato.services.engine_node.MACHINES``)


class DemoError(RuntimeError):
    """The demo cannot start or go on (for example, a data directory from another run)."""


@dataclass(frozen=True)
class DemoConfig:
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA")
    seed: int = 1
    rate: int = 1000  # commands per second of virtual time
    duration: float | None = None  # seconds of virtual time; None: until stopped
    data_dir: str | None = None
    fast: bool = False  # do not pace to the wall clock
    day: SimDay | None = None  # a simulated trading day (sim/day.py); None: around the clock


@dataclass
class DemoResult:
    commands: int  # commands submitted by this run
    resumed_from: int  # commands already journaled when this run started
    trades: int
    seconds: float  # wall time of this run's loop
    state_hash: str
    interrupted: bool
    rejects: dict[str, int] = field(default_factory=dict)  # "command:reason" -> count
    risk_rejects: dict[str, int] = field(default_factory=dict)  # by reason
    margin_calls: int = 0
    liquidations: int = 0


class Backend(Protocol):
    """Where the commands go: each batch in, each command's events out."""

    def submit(self, commands: Sequence[Command]) -> list[list[Event]]: ...

    def state_hash(self) -> str: ...

    def close(self) -> None: ...


class CoreBackend:
    """The core in-process, nothing journaled."""

    def __init__(self, core: Core | None = None) -> None:
        self.core = core if core is not None else Core()

    def submit(self, commands: Sequence[Command]) -> list[list[Event]]:
        process = self.core.process
        return [process(c) for c in commands]

    def state_hash(self) -> str:
        return self.core.state_hash()

    def close(self) -> None:
        pass


class NodeBackend:
    """An ``EngineNode`` running the core: every batch is one group commit, durable before
    it is applied."""

    def __init__(self, node: Any, source: str = SOURCE) -> None:
        self.node = node
        self.source = source
        self.source_seq = node.last_source_seq(source)

    def submit(self, commands: Sequence[Command]) -> list[list[Event]]:
        base, source = self.source_seq, self.source
        results = self.node.submit([(source, base + i, c) for i, c in enumerate(commands, 1)])
        self.source_seq = base + len(commands)
        out: list[list[Event]] = []
        for r in results:
            if r.error or r.duplicate:
                raise DemoError(f"the engine node did not apply {r.source}#{r.source_seq}: {r}")
            out.append(r.events)
        return out

    def state_hash(self) -> str:
        return str(self.node.state_hash())

    def close(self) -> None:
        try:
            self.node.snapshot()  # a quicker start next time
        finally:
            self.node.close()


def _open_node(data_dir: str) -> Any:
    try:
        from mercato.services.engine_node import EngineNode, RecoveryError
    except ImportError as e:  # pragma: no cover - only before the node exists
        raise DemoError(f"--data-dir needs mercato.services.engine_node: {e}") from e
    try:
        return EngineNode.open(data_dir, machine=MACHINE)
    except RecoveryError as e:
        raise DemoError(f"cannot recover {data_dir}: {e}") from e


def _check_params(data_dir: str, cfg: DemoConfig, journaled: int) -> None:
    """Refuse to continue a journal made with other simulator parameters."""
    path = Path(data_dir) / PARAMS_FILE
    mine: dict[str, Any] = {
        "seed": cfg.seed,
        "symbols": list(cfg.symbols),
        "rate": cfg.rate,
        "machine": MACHINE,
    }
    if cfg.day is not None:  # (a run without one reads as before)
        mine["day"] = dataclasses.astuple(cfg.day)
    if journaled and path.exists():
        theirs = json.loads(path.read_text())
        if theirs.get("machine", "engine") != MACHINE:
            raise DemoError(
                f"{data_dir} holds a run of an older demo (matching alone, without the "
                "risk core); use another --data-dir"
            )
        if theirs != mine:
            raise DemoError(
                f"{data_dir} holds a run with --seed {theirs['seed']} "
                f"--symbols {','.join(theirs['symbols'])} --rate {theirs['rate']}"
                + (f" --day {','.join(map(str, theirs['day']))}" if "day" in theirs else "")
                + "; "
                "pass the same to resume it, or use another --data-dir"
            )
        return
    if journaled:
        raise DemoError(f"{data_dir} has a journal but no {PARAMS_FILE}: not a demo run")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(mine) + "\n")
    os.replace(tmp, path)


class Pending:
    """A batch whose first commands were journaled before a crash (their events known)."""

    def __init__(self, batch: list[Command], done: list[list[Event]]) -> None:
        self.batch = batch
        self.done = done


def catch_up(sim: Simulator, view: MarketView, journaled: int) -> tuple[Core, Pending | None]:
    """Re-simulate the first ``journaled`` commands of the stream against a scratch core."""
    shadow = Core()
    process = shadow.process
    pos = 0
    batch = sim.setup()
    while pos + len(batch) <= journaled:
        events = [e for c in batch for e in process(c)]
        sim.on_events(events)
        view.apply(events)
        view.commands += len(batch)
        pos += len(batch)
        if pos == journaled:
            return shadow, None
        batch = sim.next_batch()
    done = [process(c) for c in batch[: journaled - pos]]
    view.commands += len(done)
    return shadow, Pending(batch, done)


class Screen:
    """Prints the live block; on a terminal, redraws it in place."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.height = 0

    def show(self, lines: list[str]) -> None:
        if self.tty and self.height:
            self.out.write(f"\x1b[{self.height}F\x1b[J")
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self.height = len(lines)

    def print(self, lines: list[str]) -> None:
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self.height = 0


def run_demo(
    cfg: DemoConfig,
    out: IO[str] = sys.stdout,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
) -> DemoResult:
    """Run the market until ``cfg.duration`` of virtual time has passed or ``stop`` is set.

    Ctrl-C sets ``stop`` (between batches, so the core never stops half-way through a
    command), then the summary is printed as after a normal end.
    """
    stop = stop if stop is not None else threading.Event()
    sim = Simulator(cfg.symbols, cfg.seed, rate=cfg.rate, day=cfg.day)
    view = MarketView(cfg.symbols, kinds={a.account: a.kind for a in sim.agents})
    screen = Screen(out)
    backend: Backend
    pending: Pending | None = None
    resumed = 0
    if cfg.data_dir is None:
        backend = CoreBackend()
        _feed(backend, sim, view, sim.setup())
    else:
        node = _open_node(cfg.data_dir)
        try:
            backend = NodeBackend(node)
            resumed = backend.source_seq
            _check_params(cfg.data_dir, cfg, resumed)
            if resumed:
                screen.print([f"recovered {cfg.data_dir}: re-simulating {resumed:,} commands"])
                shadow, pending = catch_up(sim, view, resumed)
                if shadow.state_hash() != backend.state_hash():
                    raise DemoError(
                        f"{cfg.data_dir}: the journal does not match this simulator "
                        "(its state differs from a re-simulation); use another --data-dir"
                    )
            else:
                _feed(backend, sim, view, sim.setup())
        except BaseException:
            node.close()
            raise
    screen.print(
        [
            f"mercato demo: seed {cfg.seed}, {len(cfg.symbols)} symbols, "
            f"{cfg.rate:,} commands/s, "
            + (f"{cfg.duration:g} s" if cfg.duration is not None else "until Ctrl-C")
            + (f", journal in {cfg.data_dir}" if cfg.data_dir else "")
            + (f", a trading day every {cfg.day.length_ns // NS} s" if cfg.day else "")
        ]
    )
    start_elapsed = sim.elapsed_ns
    limit = None if cfg.duration is None else start_elapsed + int(cfg.duration * NS)
    commands0 = view.commands
    interrupted = False
    restore = _on_sigint(stop)
    t0 = clock()
    next_view = t0 + 1.0
    try:
        if pending is not None:
            rest = backend.submit(pending.batch[len(pending.done) :])
            _learn(sim, view, pending.done + rest)
            view.commands += len(rest)
        while not stop.is_set() and (limit is None or sim.elapsed_ns < limit):
            batch = sim.next_batch()
            if batch:
                _learn(sim, view, backend.submit(batch))
                view.commands += len(batch)
            now = clock()
            if not cfg.fast:
                due = t0 + (sim.elapsed_ns - start_elapsed) / NS
                if due > now:
                    sleep(due - now)
                    now = clock()
            if now >= next_view:
                screen.show(view.live_lines(now - t0, (view.commands - commands0) / (now - t0)))
                next_view = now + 1.0
    except KeyboardInterrupt:
        stop.set()
    finally:
        restore()
        interrupted = stop.is_set()
        seconds = clock() - t0
        try:
            digest = backend.state_hash()
        finally:
            backend.close()
    done = view.commands - commands0
    rate = done / seconds if seconds > 0 else 0.0
    screen.print(
        [
            "",
            ("interrupted" if interrupted else "done")
            + f" after {seconds:.1f} s: {done:,} commands this run ({rate:,.0f}/s)"
            + (f", {resumed:,} before it" if resumed else ""),
            *view.summary_lines(),
            f"state_hash {digest}",
        ]
    )
    return DemoResult(
        commands=done,
        resumed_from=resumed,
        trades=view.trades,
        seconds=seconds,
        state_hash=digest,
        interrupted=interrupted,
        rejects=dict(view.rejects),
        risk_rejects=dict(view.risk_rejects),
        margin_calls=view.margin_calls,
        liquidations=view.liquidations,
    )


def _feed(backend: Backend, sim: Simulator, view: MarketView, batch: list[Command]) -> None:
    _learn(sim, view, backend.submit(batch))
    view.commands += len(batch)


def _learn(sim: Simulator, view: MarketView, per_command: list[list[Event]]) -> None:
    events = [e for evs in per_command for e in evs]
    sim.on_events(events)
    view.apply(events)


def _on_sigint(stop: threading.Event) -> Callable[[], None]:
    """Make Ctrl-C set ``stop``; return what undoes it (a no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore

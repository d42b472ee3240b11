"""The SIGKILL test: an engine worker killed at random points, restarted, and resent to.

A client streams a seeded load of a few thousand commands over three symbols to
``python -m mercato.services.engine_worker`` in pipelined batches. At seeded points the
worker is killed with SIGKILL (mid-batch, mid-commit, mid-snapshot, or while starting up)
and restarted; the client then asks where to resume and resends everything not yet
acknowledged, plus a few acknowledged commands to exercise the duplicate filter. At the
end the journal (from where retention left it) must hold every command exactly once, in
order, and the node's state hash must equal a fresh engine's fed the same commands once.

``MERCATO_CRASH_SEED=n[,m...]`` runs other seeds; a failure prints the seed it ran with.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

import msgspec
import pytest
from msgspec.structs import replace

from mercato.adapters.journal import FileJournal
from mercato.domain.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    EndOfDay,
    NewOrder,
    ReplaceOrder,
    SetTradingStatus,
)
from mercato.domain.events import Trade
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus
from mercato.engine import Engine, state_hash
from mercato.services.engine_node import EngineNode
from mercato.services.engine_worker import encode_batch

SEEDS = [int(s) for s in os.environ.get("MERCATO_CRASH_SEED", "20240611,7,1999").split(",")]
N = 3000  # commands
KILLS = 7  # while commands are in flight
STARTUP_KILLS = 2  # while the worker starts and recovers
WINDOW = 6  # batches sent ahead of their acks
SOURCE = "client"
SEGMENT_BYTES = 32 << 10  # small, so that the run rolls several segments
SNAPSHOT_EVERY = 400
# symbol -> (tick size, lot size, starting mid in price units)
SYMBOLS = {"ACME": (1, 1, 10_000), "GLOBX": (5, 10, 52_500), "ZETA": (1, 100, 875)}


def make_load(seed: int, n: int) -> list[Command]:
    """A trading day in miniature, generated against a shadow engine so that cancels and
    replaces name live orders, stops sit near the last trade, and trades happen."""
    rng = random.Random(seed)
    shadow = Engine()
    cmds: list[Command] = []

    def emit(cmd: Command) -> None:
        cmds.append(cmd)
        shadow.process(cmd)

    for sym, (tick, lot, _) in SYMBOLS.items():
        emit(AddInstrument(symbol=sym, tick_size=tick, lot_size=lot, price_scale=2, ts=0))
    mid = {sym: m for sym, (_, _, m) in SYMBOLS.items()}
    halted: set[str] = set()
    next_id = 1
    while len(cmds) < n:
        ts = 1_000_000 * len(cmds)
        if len(cmds) == n // 2:
            emit(EndOfDay(ts=ts))
            continue
        sym = rng.choice(list(SYMBOLS))
        tick, lot, _ = SYMBOLS[sym]
        if sym in halted or rng.random() < 0.004:
            status = TradingStatus.OPEN if sym in halted else TradingStatus.HALTED
            halted.symmetric_difference_update({sym})
            emit(SetTradingStatus(symbol=sym, status=status, ts=ts))
            continue
        book = shadow.books[sym]
        mid[sym] = max(20 * tick, mid[sym] + rng.randint(-2, 2) * tick)
        last = book.last_price or mid[sym]
        live = [o for o in shadow.orders.values() if o.symbol == sym]
        r = rng.random()
        if r < 0.15 and live:
            oid = rng.choice(live).order_id if rng.random() < 0.95 else next_id + 999_999
            emit(CancelOrder(order_id=oid, symbol=sym, ts=ts))
            continue
        if r < 0.33 and live:
            o = rng.choice(live)
            price = (
                0 if o.type == OrderType.STOP else max(tick, o.price + rng.randint(-3, 3) * tick)
            )
            qty = max(lot, o.remaining + rng.randint(-2, 2) * lot)
            emit(ReplaceOrder(order_id=o.order_id, symbol=sym, price=price, qty=qty, ts=ts))
            continue
        side = rng.choice((Side.BUY, Side.SELL))
        sign = 1 if side == Side.BUY else -1
        base = NewOrder(
            order_id=next_id,
            account=rng.randint(1, 12),
            symbol=sym,
            side=side,
            type=OrderType.LIMIT,
            qty=rng.randint(1, 15) * lot,
            ts=ts,
        )
        next_id += 1
        if r < 0.45:
            emit(replace(base, type=OrderType.MARKET, tif=TimeInForce.IOC))
        elif r < 0.52:
            stop = last + sign * rng.randint(1, 4) * tick
            if rng.random() < 0.5:
                emit(replace(base, type=OrderType.STOP, stop_price=stop))
            else:
                price = stop + sign * 2 * tick
                emit(replace(base, type=OrderType.STOP_LIMIT, price=price, stop_price=stop))
        else:
            price = mid[sym] + rng.randint(-6, 6) * tick
            tif = rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.DAY))
            if r < 0.60:
                tif = TimeInForce.IOC
            elif r < 0.63:
                tif = TimeInForce.FOK
            post_only = tif != TimeInForce.IOC and tif != TimeInForce.FOK and r > 0.95
            emit(replace(base, tif=tif, price=price, post_only=post_only))
    return cmds


class Worker:
    """One run of the worker process, with a watchdog so that a hang fails instead."""

    def __init__(self, data_dir: Path, log: IO[bytes]) -> None:
        args = [
            sys.executable,
            "-m",
            "mercato.services.engine_worker",
            str(data_dir),
            "--snapshot-every",
            str(SNAPSHOT_EVERY),
            "--segment-bytes",
            str(SEGMENT_BYTES),
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
        )
        self.watchdog = threading.Timer(60, self.proc.kill)
        self.watchdog.start()

    def send(self, seqs: list[int], cmds: list[Command]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(encode_batch([(SOURCE, s, cmds[s - 1]) for s in seqs]))
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any] | None:
        """The next complete output line, or None at the end of the output."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.endswith(b"\n"):
            return None  # the end, or a line cut by the kill: not an acknowledgement
        message: dict[str, Any] = json.loads(line)
        return message

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait() == -signal.SIGKILL

    def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        bye = self.read()
        assert bye is not None and "bye" in bye, bye
        assert self.proc.wait() == 0
        return bye

    def close(self) -> None:
        self.watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


class Client:
    """Sends the load through kills and restarts, and checks every answer on the way."""

    def __init__(self, seed: int, data_dir: Path, log: IO[bytes]) -> None:
        self.rng = random.Random(seed)
        self.cmds = make_load(seed, N)
        self.data_dir = data_dir
        self.log = log
        self.kill_after = set(self.rng.sample(range(3, 135), KILLS))  # batch numbers
        self.startup_kill_on = set(self.rng.sample(range(2, 2 + KILLS), STARTUP_KILLS))
        self.acked: set[int] = set()
        self.highest_sent = 0
        self.batches = self.starts = self.kills = self.startup_kills = 0

    def run(self) -> dict[str, Any]:
        while True:
            worker = Worker(self.data_dir, self.log)
            self.starts += 1
            try:
                if self.starts in self.startup_kill_on:
                    time.sleep(self.rng.uniform(0.0, 0.3))  # importing, recovering or idle
                    worker.kill()
                    self.startup_kills += 1
                    continue
                bye = self.session(worker)
                if bye is not None:
                    return bye
            finally:
                worker.close()

    def session(self, worker: Worker) -> dict[str, Any] | None:
        """One life of the worker: resume, send, and return its goodbye or None if killed."""
        hello = worker.read()
        assert hello is not None and "ready" in hello, hello
        resume = hello["ready"]["sources"].get(SOURCE, 0)
        assert resume >= max(self.acked, default=0), "an acknowledged command was lost"
        assert resume <= self.highest_sent, "the node knows commands that were never sent"
        self.acked.update(range(1, resume + 1))  # durable, whether or not its ack arrived
        nxt = max(1, resume + 1 - self.rng.randint(0, 4))  # resend a few acknowledged
        inflight: deque[list[int]] = deque()
        while nxt <= N or inflight:
            if nxt <= N and len(inflight) < WINDOW:
                seqs = list(range(nxt, min(N, nxt + self.rng.randint(1, 40) - 1) + 1))
                worker.send(seqs, self.cmds)
                inflight.append(seqs)
                nxt = seqs[-1] + 1
                self.highest_sent = max(self.highest_sent, seqs[-1])
                self.batches += 1
                if self.batches in self.kill_after:
                    if self.rng.random() < 0.6:
                        time.sleep(self.rng.uniform(0.0, 0.004))
                    worker.kill()
                    self.kills += 1
                    while inflight and (msg := worker.read()) is not None:
                        self.check(msg, inflight.popleft(), resume)  # flushed before the kill
                    return None
                continue
            msg = worker.read()
            assert msg is not None, "the worker died on its own"
            self.check(msg, inflight.popleft(), resume)
        return worker.finish()

    def check(self, msg: dict[str, Any], seqs: list[int], resume: int) -> None:
        """An ack answers its batch exactly: duplicates are those the node had at start."""
        assert msg["err"] == [], msg
        acks = [s for source, s in msg["ack"] if source == SOURCE]
        dups = [s for source, s in msg["dup"] if source == SOURCE]
        assert sorted(acks + dups) == seqs, (msg, seqs)
        assert dups == [s for s in seqs if s <= resume], (msg, resume)
        self.acked.update(seqs)


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_recovery(tmp_path: Path, seed: int) -> None:
    data_dir = tmp_path / "node"
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        client = Client(seed, data_dir, log)
        try:
            bye = client.run()
            verify(client, data_dir, bye)
        except BaseException:
            print(f"crash test seed {seed}: rerun with MERCATO_CRASH_SEED={seed}")
            print(f"kills after batches {sorted(client.kill_after)}, starts {client.starts}")
            log.flush()
            print(log_path.read_text(errors="replace")[-4000:])
            raise


def verify(client: Client, data_dir: Path, bye: dict[str, Any]) -> None:
    cmds = client.cmds
    assert (client.kills, client.startup_kills) == (KILLS, STARTUP_KILLS)
    assert client.acked == set(range(1, N + 1))

    with FileJournal(data_dir / "journal", segment_bytes=SEGMENT_BYTES) as journal:
        first = journal.first_seq  # retention removed what the snapshots cover
        entries = list(journal.read_from(first))
    assert first <= min(int(p.stem) for p in (data_dir / "snapshots").glob("*.snap")) + 1
    assert [e.seq for e in entries] == list(range(first, N + 1))
    # once each, in order (the commands before ``first`` are in the snapshots)
    assert [e.source_seq for e in entries] == list(range(first, N + 1))
    assert {e.source for e in entries} == {SOURCE}
    encode = msgspec.msgpack.encode
    assert [encode(e.cmd) for e in entries] == [encode(c) for c in cmds[first - 1 :]]

    fresh = Engine()
    trades = sum(isinstance(e, Trade) for c in cmds for e in fresh.process(c))
    assert trades > 300  # the load is a market, not a pile of rejects
    expected = state_hash(fresh)
    assert bye["bye"] == {"seq": N, "hash": expected}
    node = EngineNode.open(data_dir, fsync=False)  # from the newest snapshot plus the tail
    try:
        assert node.state_hash() == expected
        assert node.last_source_seq(SOURCE) == N
    finally:
        node.close()
    assert len(list((data_dir / "journal").glob("*.seg"))) > 1
    assert list((data_dir / "snapshots").glob("*.snap"))

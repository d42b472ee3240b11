"""EngineNode: group commit, duplicates, recovery by snapshot and replay, the async wrapper."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from mercato.adapters.journal import FileJournal, JournalFailed
from mercato.domain.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    EndOfDay,
    NewOrder,
    ReplaceOrder,
)
from mercato.domain.events import Event, Trade
from mercato.domain.types import OrderType, TimeInForce
from mercato.engine import Engine, state_hash
from mercato.ports import JournalEntry
from mercato.services.engine_node import (
    AsyncEngineNode,
    EngineNode,
    NodeFailed,
    RecoveryError,
    Submission,
)

SYMBOLS = ("AAA", "BBB")


def load(seed: int, n: int) -> list[Command]:
    """A seeded mix that trades: limits around a drifting mid, markets, IOCs, stops,
    and cancels and replaces of orders that a shadow engine says are live."""
    rng = random.Random(seed)
    shadow = Engine()
    cmds: list[Command] = [AddInstrument(symbol=s, ts=0) for s in SYMBOLS]
    mid = dict.fromkeys(SYMBOLS, 10_000)
    for c in cmds:
        shadow.process(c)
    while len(cmds) < n:
        ts = len(cmds)
        sym = rng.choice(SYMBOLS)
        mid[sym] += rng.randint(-3, 3)
        side = rng.choice((1, 2))
        live = [o for o in shadow.orders.values() if o.symbol == sym and not o.is_stop]
        r = rng.random()
        cmd: Command
        if r < 0.15 and live:
            cmd = CancelOrder(order_id=rng.choice(live).order_id, symbol=sym, ts=ts)
        elif r < 0.3 and live:
            o = rng.choice(live)
            price = o.price + rng.randint(-4, 4)
            cmd = ReplaceOrder(order_id=o.order_id, symbol=sym, price=price, qty=5, ts=ts)
        else:
            kind, tif, price, stop = OrderType.LIMIT, TimeInForce.GTC, 0, 0
            if r < 0.4:
                kind = OrderType.MARKET
            elif r < 0.45:
                kind = OrderType.STOP
                stop = mid[sym] + (6 if side == 1 else -6)
            else:
                price = mid[sym] + rng.randint(-8, 8)
                tif = TimeInForce.IOC if r < 0.5 else rng.choice((TimeInForce.GTC, TimeInForce.DAY))
            cmd = NewOrder(
                order_id=ts,
                account=rng.randint(1, 5),
                symbol=sym,
                side=side,
                type=kind,
                tif=tif,
                qty=rng.randint(1, 20),
                price=price,
                stop_price=stop,
                ts=ts,
            )
        cmds.append(cmd)
        shadow.process(cmd)
    return cmds


def batches(cmds: list[Command], seed: int, source: str = "c") -> list[list[Submission]]:
    rng = random.Random(seed)
    out: list[list[Submission]] = []
    i = 0
    while i < len(cmds):
        k = rng.randint(1, 30)
        out.append([(source, j + 1, cmds[j]) for j in range(i, min(i + k, len(cmds)))])
        i += k
    return out


def wire(events: list[Event]) -> bytes:
    return msgspec.msgpack.encode(events)


def run_live(data: Path, cmds: list[Command], snapshot_every: int = 0) -> dict[int, bytes]:
    """Submit ``cmds`` through a node; the live events per journal seq."""
    live: dict[int, bytes] = {}
    node = EngineNode.open(data, fsync=False, snapshot_every=snapshot_every)
    for batch in batches(cmds, 7):
        for r in node.submit(batch):
            live[r.seq] = wire(r.events)
    node.close()
    return live


def reopen(data: Path) -> tuple[EngineNode, dict[int, bytes]]:
    """Recover the node; the events its replay produced per journal seq."""
    replayed: dict[int, bytes] = {}

    def hook(entry: JournalEntry, events: list[Event]) -> None:
        replayed[entry.seq] = wire(events)

    return EngineNode.open(data, fsync=False, snapshot_every=0, on_replay=hook), replayed


def count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def plain_hash(cmds: Sequence[Command]) -> str:
    engine = Engine()
    for c in cmds:
        engine.process(c)
    return state_hash(engine)


def test_load_trades() -> None:
    engine = Engine()
    events = [e for c in load(1, 1500) for e in engine.process(c)]
    assert sum(isinstance(e, Trade) for e in events) > 200


def test_submit_gives_the_engines_events(tmp_path: Path) -> None:
    cmds = load(2, 600)
    engine = Engine()
    node = EngineNode.open(tmp_path, fsync=False)
    seq = 0
    for batch in batches(cmds, 3):
        for r, (_, _, cmd) in zip(node.submit(batch), batch, strict=True):
            seq += 1
            assert (r.seq, r.duplicate, r.error) == (seq, False, "")
            assert wire(r.events) == wire(engine.process(cmd))
    assert node.state_hash() == state_hash(engine)
    assert node.applied_seq == 600 and node.last_source_seq("c") == 600
    node.close()


def test_one_fsync_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = EngineNode.open(tmp_path, fsync=True, snapshot_every=0)
    cmds = load(3, 301)
    node.submit([("c", 1, cmds[0])])  # creates the first segment
    calls = count_fsyncs(monkeypatch)
    for start in range(1, 301, 100):
        node.submit([("c", i + 1, cmds[i]) for i in range(start, start + 100)])
    assert len(calls) == 3
    node.close()


def test_duplicates_are_answered_not_journaled_nor_applied(tmp_path: Path) -> None:
    cmds = load(4, 40)
    node = EngineNode.open(tmp_path, fsync=False)
    node.submit([("a", i + 1, c) for i, c in enumerate(cmds[:30])])
    again = node.submit(
        [
            ("a", 29, cmds[28]),  # already journaled
            ("a", 30, cmds[29]),
            ("a", 31, cmds[30]),  # new, then its duplicate in the same batch
            ("a", 31, cmds[30]),
            ("b", 5, EndOfDay(ts=99)),  # another source has its own numbering
            ("a", 33, cmds[31]),  # a gap is allowed; 32 is now stale
            ("a", 32, cmds[32]),
        ]
    )
    assert [(r.source_seq, r.duplicate, r.seq) for r in again] == [
        (29, True, 0),
        (30, True, 0),
        (31, False, 31),
        (31, True, 0),
        (5, False, 32),
        (33, False, 33),
        (32, True, 0),
    ]
    assert all(r.events == [] for r in again if r.duplicate)
    assert (node.last_source_seq("a"), node.last_source_seq("b")) == (33, 5)
    assert node.last_source_seq("nobody") == 0
    node.close()
    with FileJournal(tmp_path / "journal") as j:
        seen = [(e.source, e.source_seq) for e in j.read_from(1)]
    assert seen == [("a", i) for i in range(1, 32)] + [("b", 5), ("a", 33)]
    applied = [*cmds[:31], EndOfDay(ts=99), cmds[31]]
    node, _ = reopen(tmp_path)
    assert node.state_hash() == plain_hash(applied)
    node.close()


def test_bad_input_is_answered_and_not_journaled(tmp_path: Path) -> None:
    node = EngineNode.open(tmp_path, fsync=False)
    results = node.submit([("a", 1, "junk"), ("a", 1, EndOfDay())])  # type: ignore[list-item]
    assert results[0].error and results[0].seq == 0
    assert results[1].seq == 1 and not results[1].error
    assert node.last_source_seq("a") == 1
    (odd,) = node.submit([("a", "2", EndOfDay())])  # type: ignore[list-item]
    assert odd.error and node.last_source_seq("a") == 1
    assert node.submit([("a", 2, EndOfDay())])[0].seq == 2  # the node is still healthy
    node.close()


def test_replaying_twice_gives_identical_events_and_hash(tmp_path: Path) -> None:
    cmds = load(5, 800)
    live = run_live(tmp_path, cmds)
    hashes = []
    for _ in range(2):
        node, replayed = reopen(tmp_path)
        assert replayed == live
        hashes.append(node.state_hash())
        node.close()
    assert hashes[0] == hashes[1] == plain_hash(cmds)


def test_snapshot_and_tail_equal_full_replay(tmp_path: Path) -> None:
    cmds = load(6, 900)
    live = run_live(tmp_path, cmds, snapshot_every=250)
    node, replayed = reopen(tmp_path)
    covered = min(replayed) - 1
    assert covered >= 750  # the newest snapshot is recent
    assert replayed == {seq: ev for seq, ev in live.items() if seq > covered}
    from_snapshot = node.state_hash()
    node.close()
    shutil.rmtree(tmp_path / "snapshots")
    node, replayed = reopen(tmp_path)
    assert replayed == live
    assert node.state_hash() == from_snapshot == plain_hash(cmds)
    node.close()


def test_duplicate_table_survives_snapshot_and_replay(tmp_path: Path) -> None:
    node = EngineNode.open(tmp_path, fsync=False, snapshot_every=0)
    node.submit([("early", 7, AddInstrument(symbol="X"))])
    node.snapshot()
    node.submit([("late", i, EndOfDay(ts=i)) for i in range(1, 4)])
    node.close()
    node, replayed = reopen(tmp_path)
    assert sorted(replayed) == [2, 3, 4]  # "early" came from the snapshot
    assert node.sources() == {"early": 7, "late": 3}
    assert [r.duplicate for r in node.submit([("early", 7, EndOfDay()), ("late", 3, EndOfDay())])]
    node.close()


def test_snapshot_ahead_of_journal_is_refused(tmp_path: Path) -> None:
    node = EngineNode.open(tmp_path, fsync=False)
    node.submit([("a", 1, AddInstrument(symbol="X")), ("a", 2, EndOfDay())])
    node.snapshot()
    node.close()
    shutil.rmtree(tmp_path / "journal")
    with pytest.raises(RecoveryError, match="ahead of the journal"):
        EngineNode.open(tmp_path)
    FileJournal(tmp_path / "journal").close()  # the failed open released the journal


def test_torn_tail_after_a_crash_is_dropped(tmp_path: Path) -> None:
    cmds = load(8, 200)
    run_live(tmp_path, cmds)
    segment = next((tmp_path / "journal").glob("*.seg"))
    with segment.open("ab") as f:
        f.write(b"\x30\x00\x00\x00\x01\x02\x03\x04\x94\x01")  # half a record
    node, _ = reopen(tmp_path)
    assert node.applied_seq == 200 and node.state_hash() == plain_hash(cmds)
    node.close()


def test_a_failed_commit_stops_the_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = EngineNode.open(tmp_path)
    node.submit([("a", 1, AddInstrument(symbol="X"))])

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(JournalFailed):
        node.submit([("a", 2, EndOfDay())])
    monkeypatch.undo()
    with pytest.raises(NodeFailed):
        node.submit([("a", 3, EndOfDay())])
    node.close()


def test_async_node_groups_concurrent_submitters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmds = load(9, 400)
    calls = count_fsyncs(monkeypatch)
    node = EngineNode.open(tmp_path, snapshot_every=150)

    async def client(server: AsyncEngineNode, source: str, mine: list[Command]) -> None:
        for i, cmd in enumerate(mine, 1):
            (r,) = await server.submit([(source, i, cmd)])
            assert r.seq > 0 and not r.duplicate

    async def run() -> None:
        async with AsyncEngineNode(node, max_queued=8) as server:
            await server.submit([("setup", i, c) for i, c in enumerate(cmds[:2], 1)])
            rest = cmds[2:]
            await asyncio.gather(*(client(server, f"c{k}", rest[k::8]) for k in range(8)))

    asyncio.run(run())
    assert node.applied_seq == 400
    assert len(calls) < 200  # 399 submissions, far fewer fsyncs
    final = node.state_hash()
    node.close()
    with FileJournal(tmp_path / "journal") as j:
        journaled = [e.cmd for e in j.read_from(1)]
    assert final == plain_hash(journaled)
    node, _ = reopen(tmp_path)
    assert node.state_hash() == final
    node.close()

"""Journal retention: after each snapshot the node keeps the newest snapshots and the
segments that replaying from the oldest of them needs, and no more, unless a reader (the
persister) holds the journal further back. The data directory stops growing, and recovery
and the persister still work."""

from __future__ import annotations

import os
from pathlib import Path

from mercato.adapters.journal_reader import hold, holds, release
from mercato.adapters.sql import SqlPersister
from mercato.engine import Engine
from mercato.services.engine_node import EngineNode
from mercato.services.persister import PersisterService

from .test_engine_node import load
from .test_persister import dump, reference

CMDS = load(21, 3_000)
SEGMENT = 4_000  # bytes: a segment holds about 40 commands


def size(root: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)


def run(node: EngineNode, start: int, end: int) -> None:
    for i in range(start, end, 50):
        node.submit([("c", n, c) for n, c in enumerate(CMDS[i : min(i + 50, end)], i + 1)])


def open_node(data: Path, **kw: object) -> EngineNode:
    return EngineNode.open(
        data,
        fsync=False,
        segment_bytes=SEGMENT,
        snapshot_every=200,
        keep_snapshots=2,
        **kw,  # type: ignore[arg-type]
    )


def test_segments_and_snapshots_stay_bounded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = open_node(data)
    run(node, 0, 1_000)
    at_1000 = size(data)
    segments_1000 = len(list((data / "journal").glob("*.seg")))
    run(node, 1_000, 3_000)
    assert len(node.snapshots.seqs()) == 2
    oldest = node.snapshots.seqs()[0]
    journal = node.journal
    assert 1 < journal.first_seq <= oldest + 1  # replay from the oldest snapshot is there
    assert len(list((data / "journal").glob("*.seg"))) <= segments_1000 + 2
    assert size(data) < at_1000 * 1.5  # three times the commands, not three times the bytes
    node.close()

    fresh = Engine()
    for c in CMDS:
        fresh.process(c)
    reopened = open_node(data)
    assert reopened.applied_seq == 3_000
    assert reopened.state_hash() == fresh.state_hash()
    reopened.close()


def test_without_retention_everything_stays(tmp_path: Path) -> None:
    node = open_node(tmp_path / "data", retain=False)
    run(node, 0, 1_000)
    assert node.journal.first_seq == 1
    node.close()


def test_a_hold_keeps_its_snapshot_and_segments_until_released(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = open_node(data)
    run(node, 0, 250)  # a snapshot at 200
    hold(data / "journal", "reader", 230)  # restarts from the snapshot at 200, replays 201..
    run(node, 250, 2_000)
    assert 200 in node.snapshots.seqs()
    assert node.journal.first_seq <= 201
    release(data / "journal", "reader")
    assert holds(data / "journal") == {}
    run(node, 2_000, 2_400)  # the next snapshot prunes what the hold kept
    assert 200 not in node.snapshots.seqs()
    assert node.journal.first_seq > 201
    node.close()


def test_the_persister_holds_what_its_restart_needs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{tmp_path / 'replica.db'}"
    node = open_node(data)
    events = []
    for i in range(0, 3_000, 50):
        batch = [("c", n, c) for n, c in enumerate(CMDS[i : i + 50], i + 1)]
        for r in node.submit(batch):
            events.extend(r.events)
        if i in (0, 400):  # the persister follows from the start, then stops for a while
            store = SqlPersister(url)
            PersisterService(data, store, batch_events=100).run_once()
            store.close()
            assert holds(data / "journal") == {"persister": i + 50}
    assert node.journal.first_seq <= 401  # the newest snapshot at or before 450 is 400
    assert 400 in node.snapshots.seqs()
    store = SqlPersister(url)
    svc = PersisterService(data, store, batch_events=500)
    svc.run_once()  # a restart from the held snapshot: catches up to the end
    assert svc.applied_seq == 3_000
    assert holds(data / "journal") == {"persister": 3_000}
    assert dump(url) == reference(tmp_path, events)
    store.close()
    node.close()

"""The engine node: the sequencer, the journal and the engine, with recovery as start-up.

``EngineNode`` is synchronous: ``submit`` filters duplicates, journals a batch with one
group commit, then applies it and answers. ``AsyncEngineNode`` serves many concurrent
submitters on an event loop by grouping what arrives while the previous fsync is in
flight. Durability, snapshots and the duplicate rule are described in ``docs/journal.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import msgspec

from mercato.adapters.journal import DEFAULT_SEGMENT_BYTES, FileJournal, JournalFull
from mercato.adapters.journal_reader import holds
from mercato.adapters.snapshots import FileSnapshotStore
from mercato.domain.commands import Command
from mercato.domain.events import Event
from mercato.engine import snapshot as engine_snapshot
from mercato.engine.core import Core
from mercato.engine.engine import Engine
from mercato.ports import Journal, JournalEntry, SnapshotStore, StateMachine

NODE_SNAPSHOT_VERSION: Final = 2

MACHINES: Final[dict[str, tuple[Callable[[], StateMachine], Callable[[bytes], StateMachine]]]] = {
    "engine": (Engine, engine_snapshot.restore),  # matching alone (``mercato replay``, tests)
    "core": (Core, Core.restore),  # the platform: risk, accounts and settlement around it
}
"""The state machines a node can run, by name: (make an empty one, restore a snapshot)."""

Submission = tuple[str, int, Command]  # (source, source_seq, command)
ReplayHook = Callable[[JournalEntry, list[Event]], None]
_BAD_INPUT: Final = (TypeError, ValueError, OverflowError, msgspec.EncodeError)
RETRY_AFTER: Final = 1.0  # seconds between tries of a journal that found no space
MIN_FREE: Final = 1 << 20  # free bytes on its file system for a full journal to look ready
_log = logging.getLogger(__name__)


class Result(msgspec.Struct, kw_only=True, gc=False):
    """The answer to one submitted command.

    ``seq`` is its journal seq (0 when it was not journaled); ``duplicate`` means its
    ``source_seq`` had already been seen from that source, so it was neither journaled nor
    applied again; ``error`` means it could not be journaled at all (not a command).
    """

    source: str
    source_seq: int
    seq: int = 0
    duplicate: bool = False
    error: str = ""
    events: list[Event] = []


class NodeSnapshot(msgspec.Struct, array_like=True):
    """What the node saves: the machine's snapshot and the duplicate table, as of ``seq``."""

    version: int
    seq: int
    machine: str
    engine: bytes
    sources: dict[str, int]


class RecoveryError(RuntimeError):
    """The snapshot and the journal do not fit together; the node cannot start."""


class NodeFailed(RuntimeError):
    """A commit or an engine step failed; the node must be restarted (recovered from disk)."""


class NodeUnavailable(RuntimeError):
    """The journal found no space: the batch was neither journaled nor applied (nothing
    of it happened), and the node refuses commands until a retry finds space again."""


_snapshot_decoder = msgspec.msgpack.Decoder(NodeSnapshot)
_snapshot_encoder = msgspec.msgpack.Encoder()


class EngineNode:
    """The engine behind its journal: nothing is applied or acknowledged before it is durable.

    Single-threaded: one caller at a time (``AsyncEngineNode`` serialises asyncio callers).
    Any failure of the journal or the engine is final (fail-stop): the node refuses further
    work and recovery from disk rebuilds the exact state.
    """

    def __init__(
        self,
        engine: StateMachine,
        journal: Journal,
        snapshots: SnapshotStore,
        *,
        sources: dict[str, int] | None = None,
        applied_seq: int = 0,
        snapshot_every: int = 100_000,
        machine: str = "engine",
        retain: bool = True,
    ) -> None:
        self.engine = engine
        self.machine = machine
        self.journal = journal
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every
        self.retain = retain
        self._sources: dict[str, int] = dict(sources or {})
        self._applied = applied_seq  # journal seq of the last command applied
        self._snapshot_seq = applied_seq  # journal seq of the newest snapshot we know of
        self._failed: BaseException | None = None
        self._full: JournalFull | None = None  # the journal found no space: unready
        self._retry_at = 0.0
        self._busy = False

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        snapshot_every: int = 100_000,
        fsync: bool = True,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        keep_snapshots: int = 3,
        on_replay: ReplayHook | None = None,
        machine: str = "engine",
        accept_loss: bool = False,
        retain: bool = True,
    ) -> EngineNode:
        """Recover the node in ``data_dir``: the newest snapshot, then the journal's tail.

        ``machine`` names what the node runs (``MACHINES``): "core" for the platform,
        "engine" for matching alone. A data directory belongs to one machine for good.

        ``on_replay(entry, events)`` sees each replayed command and the events it caused
        again (the events the node emitted before the crash, bit for bit).

        ``accept_loss``: open a journal that ends before its commit record (acknowledged
        commands lost, ``JournalLost``) and go on from what is left; only on a person's
        explicit decision.

        Retention (``retain``, on by default): after each snapshot, the newest
        ``keep_snapshots`` snapshots are kept, with the newest one at or before each
        reader's hold (``journal_reader.hold``), and the journal segments that no kept
        snapshot needs for its replay are removed (``docs/journal.md``).
        """
        root = Path(data_dir)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        journal_dir = root / "journal"
        store = FileSnapshotStore(
            root / "snapshots", keep=keep_snapshots, holds=lambda: holds(journal_dir).values()
        )
        journal = FileJournal(
            root / "journal", fsync=fsync, segment_bytes=segment_bytes, accept_loss=accept_loss
        )
        try:
            engine, sources, snap_seq = _load_snapshot(store, machine)
            if snap_seq > journal.committed_seq:
                raise RecoveryError(
                    f"snapshot at seq {snap_seq} is ahead of the journal, "
                    f"which ends at seq {journal.committed_seq}"
                )
            applied = _replay(engine, sources, journal, snap_seq, on_replay)
        except BaseException:
            journal.close()
            raise
        node = cls(
            engine,
            journal,
            store,
            sources=sources,
            applied_seq=applied,
            snapshot_every=snapshot_every,
            machine=machine,
            retain=retain,
        )
        node._snapshot_seq = snap_seq
        return node

    # -- queries -------------------------------------------------------------------------

    @property
    def applied_seq(self) -> int:
        """The journal seq of the last command applied to the engine."""
        return self._applied

    def last_source_seq(self, source: str) -> int:
        """The highest source_seq journaled from ``source`` (0: none): resume after it."""
        return self._sources.get(source, 0)

    def sources(self) -> dict[str, int]:
        """A copy of the duplicate table: source -> last source_seq journaled."""
        return dict(self._sources)

    def state_hash(self) -> str:
        return self.engine.state_hash()

    def health(self) -> str:
        """ "" when the node takes commands, else why not (one line, for readiness)."""
        if self._failed is not None:
            return f"failed, restart it: {self._failed!r}"
        if self._full is not None:
            if time.monotonic() >= self._retry_at and self._has_space():
                return ""  # the next command tries the journal again
            return f"journal cannot write ({self._full}); retrying every {RETRY_AFTER:g} s"
        return ""

    def _has_space(self) -> bool:
        directory = getattr(self.journal, "directory", None)
        if directory is None:
            return True
        try:
            return shutil.disk_usage(directory).free >= MIN_FREE
        except OSError:
            return False

    # -- commands ------------------------------------------------------------------------

    def submit(self, batch: Sequence[Submission]) -> list[Result]:
        """Journal ``batch`` with one commit and apply it; answers in batch order.

        The engine applies the batch while the journal's writer thread writes and fsyncs it
        (the fsync releases the GIL), and nothing is answered before the commit is durable:
        a crash in between loses only state that no one was told about, and recovery
        rebuilds exactly what was journaled. Because the batch is applied before the
        commit returns, any failed commit is final here, even one that found no space
        (``submit_async`` can undo that one).
        """
        self._enter()
        try:
            try:
                results, todo = self._sequence(batch)
                durable = self.journal.commit_begin()
            except BaseException as e:
                self._fail(e)
                raise
            try:
                self._apply(batch, results, todo)
            finally:
                try:
                    durable.result()
                except BaseException as e:
                    self._fail(e)
                    raise
            if self._snapshot_due():
                seq, data = self._snapshot_data()
                self._save_snapshot(seq, data)
        finally:
            self._busy = False
        return _done(results)

    async def submit_async(self, batch: Sequence[Submission]) -> list[Result]:
        """``submit`` with the commit (and any snapshot write) off the event loop.

        Nothing is applied before the commit returns, so a commit that finds no space
        (``JournalFull``) is undone instead of failing the node: the journal and the
        duplicate table are rolled back, the batch is refused (``NodeUnavailable``) and
        so is every batch for ``RETRY_AFTER`` seconds; then the next batch tries again.
        """
        self._enter()
        try:
            if self._full is not None and time.monotonic() < self._retry_at:
                raise NodeUnavailable(f"the journal cannot write: {self._full}") from self._full
            undo: list[tuple[str, int]] = []
            try:
                results, todo = self._sequence(batch, undo)
                await self.journal.commit_async()
            except JournalFull as e:
                self._roll_back(undo, e)
                raise NodeUnavailable(f"the journal cannot write: {e}") from e
            except BaseException as e:
                self._fail(e)
                raise
            if self._full is not None:
                _log.warning("the journal writes again")
                self._full = None
            self._apply(batch, results, todo)
            if self._snapshot_due():
                seq, data = self._snapshot_data()
                await asyncio.to_thread(self._save_snapshot, seq, data)
        finally:
            self._busy = False
        return _done(results)

    def snapshot(self) -> int:
        """Save a snapshot of the state as of the last applied command; return its seq."""
        seq, data = self._snapshot_data()
        self.snapshots.save(seq, data)
        self._snapshot_seq = seq
        self._drop_segments()
        return seq

    def _save_snapshot(self, seq: int, data: bytes) -> None:
        """A periodic snapshot: its failure costs only a longer replay, so it is logged."""
        self._snapshot_seq = seq  # on failure, try again after another snapshot_every
        try:
            self.snapshots.save(seq, data)
        except OSError:
            _log.exception("snapshot at seq %d failed", seq)
            return
        self._drop_segments()

    def _drop_segments(self) -> None:
        """Retention: remove the journal segments that replaying from the oldest kept
        snapshot does not need, nor a reader restarting at its hold."""
        if not self.retain:
            return
        kept = self.snapshots.seqs()
        if not kept:
            return
        floor = kept[0]
        directory = getattr(self.journal, "directory", None)
        for held in holds(directory).values() if directory is not None else ():
            at_or_before = [s for s in kept if s <= held]
            floor = min(floor, at_or_before[-1] if at_or_before else 0)
        if floor <= 0:
            return
        try:
            gone = self.journal.drop_before(floor)
        except OSError:
            _log.exception("journal retention failed (it is tried again after the next snapshot)")
            return
        if gone:
            _log.info("journal retention: %d segment(s) before seq %d removed", len(gone), floor)

    def close(self) -> None:
        self.journal.close()

    # -- internals -----------------------------------------------------------------------

    def _enter(self) -> None:
        if self._failed is not None:
            raise NodeFailed("the node failed; restart it") from self._failed
        if self._busy:
            raise RuntimeError("EngineNode.submit is not re-entrant; use AsyncEngineNode")
        self._busy = True

    def _fail(self, e: BaseException) -> None:
        self._failed = e

    def _roll_back(self, undo: list[tuple[str, int]], e: JournalFull) -> None:
        """Forget a batch whose commit found no space (the journal's files are undone)."""
        sources = self._sources
        for source, previous in reversed(undo):
            if previous:
                sources[source] = previous
            else:
                sources.pop(source, None)
        try:
            self.journal.rollback()
        except BaseException as err:
            self._fail(err)
            raise
        if self._full is None:
            _log.error("journal write failed, refusing commands: %s", e)
        self._full = e
        self._retry_at = time.monotonic() + RETRY_AFTER

    def _sequence(
        self, batch: Sequence[Submission], undo: list[tuple[str, int]] | None = None
    ) -> tuple[list[Result | None], list[tuple[int, int]]]:
        """Drop duplicates and append the rest to the journal (no I/O yet).

        Returns the answers known so far (duplicates, bad input) and, for the commands to
        apply, their (index in ``batch``, journal seq). ``undo`` collects each source's
        previous last source_seq, for a roll back.
        """
        sources = self._sources
        append = self.journal.append
        results: list[Result | None] = []
        todo: list[tuple[int, int]] = []
        for i, (source, source_seq, cmd) in enumerate(batch):
            if type(source_seq) is not int or not isinstance(source, str):
                error = "source must be a str and source_seq an int"
                results.append(Result(source=str(source), source_seq=-1, error=error))
                continue
            if source_seq <= sources.get(source, 0):
                results.append(Result(source=source, source_seq=source_seq, duplicate=True))
                continue
            try:
                seq = append(source, source_seq, cmd)  # appends nothing if it raises
            except _BAD_INPUT as e:
                results.append(Result(source=source, source_seq=source_seq, error=repr(e)))
                continue
            if undo is not None:
                undo.append((source, sources.get(source, 0)))
            sources[source] = source_seq
            results.append(None)
            todo.append((i, seq))
        return results, todo

    def _apply(
        self,
        batch: Sequence[Submission],
        results: list[Result | None],
        todo: list[tuple[int, int]],
    ) -> None:
        process = self.engine.process
        for i, seq in todo:
            source, source_seq, cmd = batch[i]
            try:
                events = process(cmd)
            except BaseException as e:  # a bug: the engine's state can no longer be trusted
                self._fail(e)
                raise NodeFailed(f"engine failed on journal seq {seq}") from e
            self._applied = seq
            results[i] = Result(source=source, source_seq=source_seq, seq=seq, events=events)

    def _snapshot_due(self) -> bool:
        every = self.snapshot_every
        return every > 0 and self._applied - self._snapshot_seq >= every

    def _snapshot_data(self) -> tuple[int, bytes]:
        state = NodeSnapshot(
            NODE_SNAPSHOT_VERSION,
            self._applied,
            self.machine,
            self.engine.encode(),
            dict(self._sources),
        )
        return self._applied, _snapshot_encoder.encode(state)


def _done(results: list[Result | None]) -> list[Result]:
    out: list[Result] = []
    for r in results:
        assert r is not None
        out.append(r)
    return out


def _load_snapshot(store: SnapshotStore, machine: str) -> tuple[StateMachine, dict[str, int], int]:
    """The state of the newest snapshot, or an empty machine at seq 0."""
    if machine not in MACHINES:
        raise ValueError(f"unknown machine {machine!r}: one of {sorted(MACHINES)}")
    make, restore = MACHINES[machine]
    latest = store.latest()
    if latest is None:
        return make(), {}, 0
    seq, data = latest
    try:
        state = _snapshot_decoder.decode(data)
    except msgspec.DecodeError as e:
        raise RecoveryError(f"snapshot at seq {seq} cannot be decoded: {e}") from e
    if state.version != NODE_SNAPSHOT_VERSION or state.seq != seq:
        raise RecoveryError(f"snapshot at seq {seq}: version {state.version}, seq {state.seq}")
    if state.machine != machine:
        raise RecoveryError(f"snapshot at seq {seq} is of a {state.machine!r}, not {machine!r}")
    return restore(state.engine), dict(state.sources), seq


def _replay(
    engine: StateMachine,
    sources: dict[str, int],
    journal: Journal,
    after: int,
    on_replay: ReplayHook | None,
) -> int:
    """Apply the journal's entries after seq ``after``; return the last seq applied."""
    expected = after + 1
    for entry in journal.read_from(expected):
        if entry.seq != expected:
            raise RecoveryError(f"journal jumps from seq {expected - 1} to {entry.seq}")
        if entry.source_seq <= sources.get(entry.source, 0):
            raise RecoveryError(f"seq {entry.seq}: {entry.source} source_seq goes backwards")
        events = engine.process(entry.cmd)
        sources[entry.source] = entry.source_seq
        if on_replay is not None:
            on_replay(entry, events)
        expected += 1
    if expected - 1 != journal.committed_seq:
        raise RecoveryError(f"replay stopped at seq {expected - 1} of {journal.committed_seq}")
    return expected - 1


class AsyncEngineNode:
    """Many concurrent submitters, one group commit per round, on an event loop.

    Batches wait in a bounded queue (``max_queued`` batches; ``submit`` blocks when it is
    full: backpressure on the submitters). One task takes everything queued, up to
    ``max_group`` commands, journals it with a single commit on the journal's writer thread
    and applies it; what arrives during that fsync forms the next group.
    """

    def __init__(self, node: EngineNode, *, max_queued: int = 1024, max_group: int = 8192):
        self.node = node
        self._max_group = max_group
        self._queue: asyncio.Queue[tuple[Sequence[Submission], asyncio.Future[list[Result]]]]
        self._queue = asyncio.Queue(max_queued)
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def __aenter__(self) -> AsyncEngineNode:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop (the node itself stays open)."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, batch: Sequence[Submission]) -> list[Result]:
        """Submit a batch; returns once it is durable and applied."""
        if self._error is not None:
            raise NodeFailed("the node failed; restart it") from self._error
        if self._task is None:
            raise RuntimeError("AsyncEngineNode is not started")
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        await self._queue.put((batch, future))
        return await future

    async def _run(self) -> None:
        queue = self._queue
        while True:
            group = [await queue.get()]
            size = len(group[0][0])
            while size < self._max_group and not queue.empty():
                group.append(queue.get_nowait())
                size += len(group[-1][0])
            flat = [item for batch, _ in group for item in batch]
            try:
                results = await self.node.submit_async(flat)
            except NodeUnavailable as e:  # nothing of the group happened: refuse, go on
                for _, future in group:
                    if not future.done():
                        future.set_exception(NodeUnavailable(str(e)))
                    queue.task_done()
                continue
            except BaseException as e:
                self._error = e
                for _, future in group:
                    if not future.done():
                        future.set_exception(NodeFailed(f"the node failed: {e!r}"))
                    queue.task_done()
                if isinstance(e, asyncio.CancelledError):
                    raise
                continue  # later submissions fail in submit_async (the node is failed)
            start = 0
            for batch, future in group:
                if not future.done():  # a cancelled submitter: its commands still count
                    future.set_result(results[start : start + len(batch)])
                start += len(batch)
                queue.task_done()

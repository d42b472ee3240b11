"""The persister service: a replica of the core that keeps the SQL store up to date.

It never talks to the engine node and never slows it down: it reads the node's journal
(``JournalReader``: no lock, stops at the last complete record), runs its own copy of the
deterministic core on the journaled commands, which regenerates the node's events bit for
bit, and writes them with ``SqlPersister.write`` in bounded transactions, together with
the orders they changed as the OMS projection has them (``OrderHistory``, fed the same
events: ``order_views``, what the API answers from once its memory no longer holds an
order). The store keeps,
with each batch, the journal seq up to which every command's events are in it
(``replica_state``); on start the replica restores the newest node snapshot at or before
that seq (or starts from an empty core) and replays the journal from there. Events the
store already has are dropped (idempotency by seq), so a restart writes nothing twice.

With a ``retention`` (``SqlRetention``), each catch-up is followed, at most every
``prune_every`` seconds, by a bounded round of pruning (``prune_batches`` small
transactions) on the same thread: the store's old finished history is deleted as the
journal's is (``docs/persister.md``, "Retention").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import msgspec

from mercato.adapters.heap import Trimmer
from mercato.adapters.journal_reader import JournalReader, hold
from mercato.adapters.snapshots import SNAPSHOT_HEADER, SNAPSHOT_MAGIC, snapshot_name
from mercato.adapters.sql.persister import SqlPersister
from mercato.adapters.sql.retention import Pruned, SqlRetention
from mercato.domain.commands import AnyCommand
from mercato.domain.events import DuplicateClientOrder, Event, OrdersLinked, Trade
from mercato.engine import snapshot as engine_snapshot
from mercato.engine.engine import Engine
from mercato.services.engine_node import NODE_SNAPSHOT_VERSION, NodeSnapshot
from mercato.services.oms import OrderHistory, OrderView
from mercato.services.oms_views import decode_view, encode_view

_log = logging.getLogger(__name__)
_SNAPSHOT_FILE = re.compile(r"(\d{20})\.snap")
_node_snapshot = msgspec.msgpack.Decoder(NodeSnapshot)
_EVERYTHING = 1 << 62  # the replica's projection evicts nothing while a batch is applied
KEEP_VIEWS = 10_000  # finished orders the replica's projection keeps between batches
PRUNE_EVERY = 1.0  # seconds between two rounds of retention, at most
PRUNE_BATCHES = 20  # transactions per round (of SqlRetention.batch_rows rows each)


def touched_orders(events: Sequence[Event]) -> list[int]:
    """The ids of the orders ``events`` may change in the OMS projection, in first-seen
    order (a trade both of its orders; a duplicate the original and the repeat)."""
    ids: dict[int, None] = {}
    for e in events:
        if isinstance(e, Trade):
            ids[e.taker_order_id] = None
            ids[e.maker_order_id] = None
            continue
        oid = getattr(e, "order_id", 0)
        if oid:
            ids[oid] = None
        if isinstance(e, DuplicateClientOrder) and e.rejected_id:
            ids[e.rejected_id] = None
        elif isinstance(e, OrdersLinked):
            ids.update(dict.fromkeys(e.order_ids))
    return list(ids)


def view_row(v: OrderView) -> dict[str, object]:
    """The ``order_views`` row of ``v``."""
    return {
        "order_id": v.order_id,
        "account": v.account,
        "symbol": v.symbol,
        "status": int(v.status),
        "client_order_id": v.client_order_id,
        "created_seq": v.created_seq,
        "updated_seq": v.updated_seq,
        "view": encode_view(v),
    }


class CoreLike(Protocol):
    """What the replica runs: the node's deterministic core (``Engine`` today, ``Core``)."""

    def process(self, cmd: AnyCommand) -> Sequence[Event]: ...


def node_snapshots(directory: Path, upto: int) -> Iterator[tuple[int, bytes]]:
    """The node's intact snapshot files with seq <= ``upto``, newest first, as (seq, data).

    Read-only: unlike ``FileSnapshotStore`` it removes no temporary file of the node's, and
    a file the node prunes while we look is skipped.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    seqs = sorted(int(m.group(1)) for n in names if (m := _SNAPSHOT_FILE.fullmatch(n)))
    for seq in reversed(seqs):
        if seq > upto:
            continue
        try:
            raw = (directory / snapshot_name(seq)).read_bytes()
        except OSError:
            continue
        if len(raw) < SNAPSHOT_HEADER.size:
            continue
        magic, file_seq, length, crc = SNAPSHOT_HEADER.unpack_from(raw)
        data = raw[SNAPSHOT_HEADER.size :]
        intact = magic == SNAPSHOT_MAGIC and file_seq == seq and length == len(data)
        if intact and zlib.crc32(data) == crc:
            yield seq, data


class PersisterService:
    """Catches the SQL store up with the journal in ``data_dir`` (``EngineNode.open``'s).

    ``batch_events`` bounds one transaction (a command's events are never split: one
    command with more events makes a larger one). ``run_once`` is blocking (call it from a
    thread or a process of its own); ``run`` polls it from an event loop, off the loop's
    thread. The replica's CPU is its own: in a one-process deployment it shares the GIL
    with the node, so the distributed deployment runs it as a separate process.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        store: SqlPersister,
        *,
        make_core: Callable[[], CoreLike] = Engine,
        restore_core: Callable[[bytes], CoreLike] = engine_snapshot.restore,
        batch_events: int = 5_000,
        keep_views: int = KEEP_VIEWS,
        hold_name: str = "persister",
        retention: SqlRetention | None = None,
        prune_every: float = PRUNE_EVERY,
        prune_batches: int = PRUNE_BATCHES,
    ) -> None:
        if batch_events < 1:
            raise ValueError("batch_events must be at least 1")
        if prune_batches < 1:
            raise ValueError("prune_batches must be at least 1")
        root = Path(data_dir)
        self.store = store
        self.batch_events = batch_events
        self.keep_views = keep_views
        self._make_core = make_core
        self._restore_core = restore_core
        self._snapshots = root / "snapshots"
        self._journal_dir = root / "journal"
        self._reader = JournalReader(self._journal_dir)
        self.hold_name = hold_name
        self._held = -1  # the seq of our hold on the journal, as last written
        self._core: CoreLike | None = None
        self._views: OrderHistory | None = None  # the OMS projection of what it writes
        self._applied = 0  # journal seq of the last command the replica's core applied
        self._stored = 0  # seq of the last event in the store
        self._written = 0  # the store's journal seq (every command's events stored up to it)
        self._journal_end = 0  # the journal's last complete seq, as last seen
        self.start_seq = 0  # the journal seq the replica started from (a snapshot's, or 0)
        self._stop = threading.Event()
        self._busy = threading.Lock()  # one catch-up at a time (a thread and a caller)
        self._wake: asyncio.Event | None = None
        self.retention = retention
        self.prune_every = prune_every  # seconds of this process's clock: when, not what
        self.prune_batches = prune_batches
        self._pruned_at = -float("inf")  # time.monotonic() of the last round
        self.pruned = Pruned()  # what the last round deleted
        self.trimmer = Trimmer()  # the heap's free pages back to the system after deletions

    # -- metrics -------------------------------------------------------------------------

    @property
    def applied_seq(self) -> int:
        """The journal seq of the last command replayed (and its events written)."""
        return self._applied

    @property
    def stored_seq(self) -> int:
        """The seq of the newest event committed to the store (with the orders it
        changed): what the API's memory may let go of (``OrderHistory.durable``). Read
        from any thread: it moves only after the transaction committed."""
        return self._stored

    def lag(self) -> int:
        """Journal commands not yet in the store, as of the last poll (no I/O)."""
        return max(self._journal_end - self._applied, 0)

    # -- work ----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Replay the journal to its current end; return the number of events written.

        On any error the replica's state is dropped (the store is consistent: each batch
        is one transaction) and the next call starts over from the store's position.
        Calls from several threads take turns.
        """
        with self._busy:
            try:
                written = self._catch_up()
            except BaseException:
                self._core = None
                self._views = None
                raise
        self._prune()
        return written

    def _prune(self) -> None:
        """One bounded round of retention, when one is due (an error is the store's and
        rolls back one small batch: it is logged, and the next round retries)."""
        if self.retention is None or self._stop.is_set():
            return
        now = time.monotonic()
        if now - self._pruned_at < self.prune_every:
            return
        self._pruned_at = now
        try:
            pruned = self.prune(self.prune_batches)
        except Exception:
            _log.exception("persister: retention failed; retrying at the next round")
            return
        self.trimmer.after(pruned.total)

    def prune(self, max_batches: int | None = None) -> Pruned:
        """A round of retention now (blocking; ``max_batches``: None, until nothing is
        due); what it deleted, also kept as ``pruned``. Nothing without a retention."""
        if self.retention is None:
            return Pruned()
        with self._busy:
            self.pruned = self.retention.prune(max_batches)
            return self.pruned

    async def run(self, poll_interval: float = 0.05, retry_delay: float = 1.0) -> None:
        """Catch up every ``poll_interval`` seconds until ``stop()``. An error is logged
        and retried after ``retry_delay`` (the store stays consistent; the retry replays
        from the store's position)."""
        self._stop.clear()
        self._wake = asyncio.Event()
        try:
            while not self._stop.is_set():
                delay = poll_interval
                try:
                    await asyncio.to_thread(self.run_once)
                except Exception:
                    _log.exception("persister: catching up failed; retrying")
                    delay = max(poll_interval, retry_delay)
                if self._stop.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            self._wake = None

    def follow(self, poll_interval: float = 0.05, retry_delay: float = 1.0) -> None:
        """``run`` for a thread of its own: blocking, until ``stop()`` (from any thread;
        a stop before it started makes it return at once). It returns with the stop
        cleared, so that a last ``run_once`` can catch up fully."""
        try:
            while not self._stop.is_set():
                delay = poll_interval
                try:
                    self.run_once()
                except Exception:
                    _log.exception("persister: catching up failed; retrying")
                    delay = max(poll_interval, retry_delay)
                self._stop.wait(delay)
        finally:
            self._stop.clear()

    def stop(self) -> None:
        """Ask ``run`` (call it on ``run``'s loop) or ``follow`` to return after the
        batch in hand."""
        self._stop.set()
        if self._wake is not None:
            self._wake.set()

    # -- internals -----------------------------------------------------------------------

    def _start(self) -> CoreLike:
        """The replica's core at the newest snapshot the store covers, or an empty one."""
        upto = self._written = self.store.journal_seq()
        self._stored = self.store.last_seq()
        self._views = OrderHistory(max_closed=_EVERYTHING, max_fills=0)
        for seq, data in node_snapshots(self._snapshots, upto):
            try:
                state = _node_snapshot.decode(data)
                if state.version != NODE_SNAPSHOT_VERSION or state.seq != seq:
                    raise ValueError(f"version {state.version}, seq {state.seq}")
                core = self._restore_core(state.engine)
            except (msgspec.DecodeError, ValueError) as e:
                _log.warning("persister: node snapshot %d unusable (%s); trying older", seq, e)
                continue
            self._applied = self.start_seq = seq
            return core
        self._applied = self.start_seq = 0
        return self._make_core()

    def _catch_up(self) -> int:
        if self._core is None:
            self._core = self._start()
        core = self._core
        self._journal_end = max(self._reader.last_seq(), self._applied)
        limit = self.batch_events
        stored = self._stored
        written = 0
        buf: list[Event] = []
        for entry in self._reader.read_from(self._applied + 1):
            if entry.seq != self._applied + 1:
                raise RuntimeError(
                    f"journal jumps from seq {self._applied} to {entry.seq} (segments removed "
                    f"by the journal's retention before this store held them? docs/journal.md)"
                )
            events = core.process(entry.cmd)
            self._applied = entry.seq
            # (a command's events all go in one transaction: the projection's state
            # between two of them, a trade waiting for its fees, is never stored)
            buf.extend(e for e in events if e.seq > stored)  # (else the store has it)
            if len(buf) >= limit:
                written += self._write(buf, entry.seq)
                buf = []
            if self._stop.is_set():
                break
        if buf or self._applied > self._written:
            written += self._write(buf, self._applied)
        self._journal_end = max(self._journal_end, self._applied)
        if self._written != self._held:  # retention keeps what a restart here replays
            try:
                hold(self._journal_dir, self.hold_name, self._written)
            except OSError as e:  # a read-only journal directory: nothing holds it
                _log.warning("persister: cannot hold the journal at %d: %s", self._written, e)
            self._held = self._written
        return written

    def _write(self, events: list[Event], whole: int) -> int:
        """One transaction: ``events``, and ``whole``: the journal seq up to which every
        command's events are now stored."""
        views = self._views
        assert views is not None
        rows: list[dict[str, object]] = []
        if events:
            ids = touched_orders(events)
            missing = [oid for oid in ids if views.order(oid) is None]
            if missing:
                stored = [decode_view(b) for b in self.store.views(missing).values()]
                views.restore(sorted(stored, key=lambda v: v.updated_seq))
            views.apply(events)
            rows = [view_row(v) for oid in ids if (v := views.order(oid)) is not None]
            views.trim(self.keep_views)
        n = self.store.write(events, journal_seq=whole, views=rows)
        if events:
            self._stored = events[-1].seq
        self._written = max(self._written, whole)
        return n

"""Ports: the contracts between the services and the outside world.

Each port is a ``typing.Protocol`` whose docstring says what an adapter must guarantee:
whether it blocks, what it retries, and what is durable when. Adapters live in
``mercato.adapters``; services depend only on these protocols.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from typing import Protocol

import msgspec

from mercato.domain.commands import AnyCommand, Command
from mercato.domain.events import Event


class JournalEntry(msgspec.Struct, array_like=True, gc=False):
    """One journaled command: its global ``seq`` and where it came from.

    ``(source, source_seq)`` is the client's own numbering, kept so that a restarted
    node can rebuild its duplicate filter from the journal alone.
    """

    seq: int
    source: str
    source_seq: int
    cmd: AnyCommand


class Journal(Protocol):
    """An append-only, totally ordered log of commands: the core's source of truth.

    Contract:
    - ``append`` assigns the next ``seq`` (1, 2, 3, ... with no gap) and buffers the entry
      in memory; it makes no system call and nothing appended is durable yet.
    - ``commit`` makes everything appended before it durable (written and, unless the
      adapter was opened without fsync, fsynced) in one group; when it returns, a crash
      can no longer lose those entries. It blocks for the duration of the write.
    - ``commit_begin`` starts the same commit and returns a future at once: the caller may
      overlap other work (applying the batch) with the fsync, and must acknowledge nothing
      before the future completes.
    - ``commit_async`` is the same, run off the event loop; everything appended before
      the call is durable when it returns. Calls complete in the order they were made.
    - A failed commit is final: the journal refuses further appends and commits (the
      owner must stop and recover from disk; retrying could reorder or lose entries).
    - ``read_from(seq)`` yields the committed entries with ``entry.seq >= seq`` in order.
    - ``close`` commits what is still buffered and releases the journal.
    One owner appends and commits; a journal is not shared between writers.
    """

    @property
    def last_seq(self) -> int:
        """The seq of the last entry appended (0 when empty), committed or not."""

    @property
    def committed_seq(self) -> int:
        """The seq of the last entry known to be durable."""

    def append(self, source: str, source_seq: int, cmd: Command) -> int: ...

    def commit(self) -> None: ...

    def commit_begin(self) -> Future[None]: ...

    async def commit_async(self) -> None: ...

    def read_from(self, seq: int) -> Iterator[JournalEntry]: ...

    def close(self) -> None: ...


class SnapshotStore(Protocol):
    """Durable point-in-time images of a service's state, each tagged with a journal seq.

    Contract:
    - ``save(seq, data)`` blocks until the snapshot is durable and then visible as a whole:
      a crash during ``save`` leaves either the previous snapshots or the new one, never a
      partial file that ``latest`` would return.
    - ``latest()`` returns the newest intact snapshot as ``(seq, data)``, skipping any that
      are corrupt or partial, or None when there is none.
    - The store may delete older snapshots; it keeps at least the newest intact one.
    """

    def save(self, seq: int, data: bytes) -> None: ...

    def latest(self) -> tuple[int, bytes] | None: ...


class StateMachine(Protocol):
    """A deterministic core the engine node runs: the matching ``Engine`` or the risk
    ``Core``. Same commands, same events and the same hash; no I/O, no clock."""

    def process(self, cmd: Command) -> list[Event]:
        """Apply one command; return the events it caused, in sequence order."""

    def encode(self) -> bytes:
        """A canonical snapshot: equal states, equal bytes."""

    def state_hash(self) -> str:
        """A digest of the whole state."""

"""Ports: the contracts between the services and the outside world.

Each port is a ``typing.Protocol`` whose docstring says what an adapter must guarantee:
whether it blocks, what it retries, and what is durable when. Adapters live in
``mercato.adapters``; services depend only on these protocols.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
      The exception is a write that found no space (``JournalFull``): it is undone, and
      after ``rollback`` (which forgets the entries appended since the last successful
      commit, so their seqs are given again) the journal takes appends again.
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

    def rollback(self) -> None: ...

    def drop_before(self, seq: int) -> list[int]:
        """Retention: remove stored entries up to ``seq`` where the storage allows it."""

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
    - ``seqs()`` lists the seqs of the snapshots present, ascending (journal retention
      keeps what replaying from the oldest of them needs).
    """

    def save(self, seq: int, data: bytes) -> None: ...

    def latest(self) -> tuple[int, bytes] | None: ...

    def seqs(self) -> list[int]: ...


class StateMachine(Protocol):
    """A deterministic core the engine node runs: the matching ``Engine`` or the risk
    ``Core``. Same commands, same events and the same hash; no I/O, no clock."""

    def process(self, cmd: Command) -> list[Event]:
        """Apply one command; return the events it caused, in sequence order."""

    def encode(self) -> bytes:
        """A canonical snapshot: equal states, equal bytes."""

    def state_hash(self) -> str:
        """A digest of the whole state."""


class Cache(Protocol):
    """A last-value cache: the newest bytes under each key, shared by the services that
    serve snapshots (market data keeps e.g. ``md:XYZ:quote`` there, encoded by the caller).

    Contract:
    - Keys are ``str``, values ``bytes``; the cache never interprets a value.
    - ``put`` and ``put_many`` are called on the event loop's thread; they never block and
      never raise. The latest value put under a key wins: writes conflate per key, so a
      burst of updates to one key costs one write to the store. An adapter with a remote
      store buffers them in a pending map bounded by its number of distinct keys (and a cap
      on it; a new key over the cap is dropped and counted in ``dropped``) and writes it in
      the background, soon (tens of milliseconds) and in batches.
    - ``await flush()`` writes everything put before the call and returns once it is in the
      store; it raises ``ConnectionError`` when the store cannot be reached (the values stay
      pending). A background write that fails keeps its values pending (still conflating),
      is counted in ``failures``, logged once per streak of failures, and retried at the
      next interval.
    - ``get`` / ``get_many`` return the stored value (None where a key has none) and see a
      put of the same cache once ``flush()`` has returned; an in-process adapter sees it at
      once. They raise ``ConnectionError`` when the store cannot be reached.
    - ``start()`` before use begins the background writing; ``close()`` writes what is
      pending (a last attempt: what fails then is logged and lost, it is only a cache) and
      releases the store. Puts after ``close()`` are dropped.
    - Each cache may have a key prefix (a namespace, e.g. ``mercato:``), so that several
      platforms can share one store; callers never see it.
    """

    @property
    def dropped(self) -> int:
        """How many puts were discarded: new keys over the pending cap, or after close."""

    @property
    def failures(self) -> int:
        """How many writes to the store have failed (each retried later)."""

    def put(self, key: str, value: bytes) -> None: ...

    def put_many(self, items: Mapping[str, bytes]) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def flush(self) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class TradingSession(msgspec.Struct, frozen=True, gc=False):
    """One trading day: its ``date`` (ISO, in its calendar's zone) and when continuous
    trading opens and closes, in ns since the epoch (UTC)."""

    date: str
    open: int
    close: int


class TradingCalendar(Protocol):
    """Which days trade, and when.

    Contract: pure and non-blocking once built (building may load a library's tables);
    it reads no clock, the time is always an argument. Sessions come in time order and
    never overlap (one may close the instant the next opens: a continuous market).
    """

    name: str
    zone: str  # the IANA zone of its dates and local times

    def session_at_or_after(self, ts: int) -> TradingSession | None:
        """The session open at ``ts`` (open <= ts < close), else the next one; None
        beyond what the calendar knows."""
        ...

    def sessions(self, first: str, last: str) -> list[TradingSession]:
        """The sessions whose dates lie in ``first`` .. ``last`` (ISO dates, inclusive)."""
        ...


class WatchlistRecord(msgspec.Struct, frozen=True, gc=False):
    """One watchlist of one account: its symbols in the order they were added."""

    id: str  # a UUID, the gateway's
    account: int
    name: str
    symbols: tuple[str, ...]
    created_at: int  # ns since the epoch (the gateway's wall clock)
    updated_at: int


class AccountConfig(msgspec.Struct, frozen=True, gc=False):
    """What an account's owner has chosen and the gateway enforces (``/v2/account/
    configurations``): ``suspend_trade`` stops new orders and replaces, ``fractional_trading``
    False refuses quantities that are not whole units."""

    suspend_trade: bool = False
    fractional_trading: bool = True


class AccountPrefs(Protocol):
    """Watchlists and configurations per account, kept beside the core (they are the
    gateway's, not the core's: not journaled, not in the state hash).

    Contract: blocking (SQL, or a dict), safe to call from any thread; each write is
    durable when it returns (a store without a database: until the process ends). It
    enforces no limit and no rule: ``services.account_settings.AccountSettings`` does,
    and is its only writer.
    """

    def watchlists(self, account: int) -> list[WatchlistRecord]:
        """``account``'s watchlists, oldest first."""
        ...

    def put_watchlist(self, w: WatchlistRecord) -> None:
        """Insert ``w``, or replace the watchlist with its id."""
        ...

    def delete_watchlist(self, account: int, watchlist_id: str) -> bool:
        """Delete ``account``'s watchlist ``watchlist_id``; False if it has none such."""
        ...

    def configs(self) -> dict[int, AccountConfig]:
        """Every account's stored configuration (an account not in it has the default)."""
        ...

    def put_config(self, account: int, config: AccountConfig) -> None:
        """Store ``account``'s configuration (replacing the one it had)."""
        ...

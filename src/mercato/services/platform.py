"""The running platform in one process: the core behind its journal, the order history,
and the ids and timestamps the gateway puts into commands.

The gateway is the platform's clock and id source: every command it builds carries
``ts`` from the wall clock and, for a new order, an order id from ``next_order_id``; the
core itself reads neither (it stays deterministic, and the journal replays it exactly).
All of it runs on one event loop: ``submit`` is the only writer, and reads between two
awaits see one consistent state.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from mercato.adapters.calendars import ContinuousCalendar, calendar_from_spec
from mercato.adapters.sql.history import SqlHistory
from mercato.adapters.sql.persister import SECOND, SqlPersister
from mercato.adapters.sql.retention import SqlRetention
from mercato.analytics.store import HistoryStore
from mercato.domain.commands import Command
from mercato.domain.events import Event
from mercato.engine.core import INTERNAL_IDS, Core
from mercato.ports import JournalEntry, TradingCalendar
from mercato.services.engine_node import AsyncEngineNode, EngineNode
from mercato.services.history import History
from mercato.services.history_export import HistoryExporter
from mercato.services.oms import OrderHistory
from mercato.services.oms_views import OrderView, decode_view
from mercato.services.persister import PersisterService
from mercato.services.transfers import TransferLog

SOURCE: Final = "gateway"  # the journal source of every command the gateway submits
DEFAULT_STORE: Final = "default"  # store_url: SQLite in the data directory (store.sqlite)
PERSIST_EVERY: Final = 0.05  # seconds between two catch-ups of the in-process persister
EXPORT_EVERY: Final = 5.0  # seconds between two rounds of the history export
# the in-memory window of finished orders and of fills when the SQL store serves older
# history (it fills within a minute or two at the demo's rate: the memory stays flat
# after that), and without a store, where memory is all the history there is
WINDOW_WITH_STORE: Final = 5_000
WINDOW_WITHOUT_STORE: Final = 100_000
MAX_CALENDARS: Final = 256  # calendars built from specs kept at once (instruments share them)
_log = logging.getLogger(__name__)


def default_store_url(data_dir: str | os.PathLike[str]) -> str:
    """Where a data directory's SQL store is unless told otherwise (``mercato persist``'s
    default too)."""
    return f"sqlite:///{Path(data_dir) / 'store.sqlite'}"


class Platform:
    """The core (journaled when ``data_dir`` is given), its order history and id source.

    Without a data directory the core runs in memory and nothing survives a restart (for
    tests and throw-away demos). With one, start-up is recovery. With a SQL store as well
    (``store_url``: the default, SQLite in the data directory; a PostgreSQL URL; None for
    none) the persister runs in-process on a thread of its own, following the journal into
    SQL; start-up first catches the store up with the journal, so that the store holds all
    history before this run, and keeps only the live orders in memory (read back from the
    store, whole). Queries go through ``queries`` (``History``): memory, then the store.
    Without a store the history is rebuilt from the events replayed after the newest
    snapshot, and what came before it is not known.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        fsync: bool = True,
        snapshot_every: int = 100_000,
        store_url: str | None = DEFAULT_STORE,
        max_closed: int | None = None,
        max_fills: int | None = None,
        accept_loss: bool = False,
        retention: int | None = None,
        calendar: TradingCalendar | None = None,
    ) -> None:
        """``max_closed``/``max_fills``: the in-memory window of finished orders and of
        fills (default ``WINDOW_WITH_STORE`` with a SQL store, else ``WINDOW_WITHOUT_STORE``).
        ``retention``: seconds of core time of finished history the SQL store keeps (None:
        all of it; ``docs/persister.md``, "Retention"). ``calendar``: the trading day its
        instruments follow (default 24/7), which the session service
        (``services/sessions.py``) turns into commands."""
        if retention is not None and retention < 0:
            raise ValueError("the retention must not be negative")
        self.retention = retention
        self.clock = clock
        self.calendar: TradingCalendar = calendar or ContinuousCalendar()
        self._calendars: dict[str, TradingCalendar] = {}  # by spec, built once each
        stored = data_dir is not None and bool(store_url)
        window = WINDOW_WITH_STORE if stored else WINDOW_WITHOUT_STORE
        self.history = OrderHistory(
            window if max_closed is None else max_closed,
            window if max_fills is None else max_fills,
        )
        self.transfers = TransferLog()  # deposits and withdrawals (memory's window)
        self._node: EngineNode | None = None
        self._async: AsyncEngineNode | None = None
        self.persister: PersisterService | None = None
        self._store: SqlPersister | None = None
        self._archive: SqlHistory | None = None
        self._persisting: threading.Thread | None = None
        # the historical store (Parquet, ``analytics/store.py``) and its follower of the SQL
        # store's trades (``services/history_export.py``): with a data directory and a store
        self.history_store: HistoryStore | None = None
        self.exporter: HistoryExporter | None = None
        self._exporting: threading.Thread | None = None
        self.core: Core
        if data_dir is None:
            self.core = Core()
        else:
            if store_url == DEFAULT_STORE:
                store_url = default_store_url(data_dir)

            def replayed(entry: JournalEntry, events: list[Event]) -> None:
                self.history.apply(events)
                self.transfers.apply(events)

            self._node = EngineNode.open(
                data_dir,
                machine="core",
                fsync=fsync,
                snapshot_every=snapshot_every,
                on_replay=None if store_url else replayed,
                accept_loss=accept_loss,
            )
            core = self.core = self._node.engine  # type: ignore[assignment]
            assert isinstance(core, Core)
            live = [*core.engine.orders.values(), *core.paper.orders.values()]
            if store_url:
                try:
                    self._open_store(data_dir, store_url, [o.order_id for o in live])
                except BaseException:
                    self._node.close()  # (its lock: a retry in this process can open it)
                    raise
            # live orders that are not known whole (no store; a store without them): their
            # current state, without their fills before the snapshot
            self.history.seed_live(live)
            self._async = AsyncEngineNode(self._node)
        self._source_seq = self._node.last_source_seq(SOURCE) if self._node else 0
        self._last_id = 0
        self._last_ts = 0
        self._listeners: list[Callable[[list[Event]], None]] = []
        self.queries = History(self.history, self._archive, self.transfers)

    def _open_store(self, data_dir: str | os.PathLike[str], url: str, live: list[int]) -> None:
        """Catch the store up with the journal, then keep the live orders from it."""
        if url.startswith("sqlite:///"):  # the history is private: owner only, like the
            path = Path(url.removeprefix("sqlite:///"))  # journal (SQLite's own side files
            if not path.exists():  # take the database file's mode)
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        store = self._store = SqlPersister(url)
        keep = self.retention
        self.persister = PersisterService(
            data_dir,
            store,
            make_core=Core,
            restore_core=Core.restore,
            retention=None if keep is None else SqlRetention(store.engine, keep * SECOND),
        )
        self.persister.run_once()  # the store now holds every event journaled so far
        persister = self.persister
        self.history.durable = lambda: persister.stored_seq  # evict only what it holds
        views = [decode_view(b) for b in store.views(live).values()]
        self.history.restore(sorted(views, key=lambda v: (v.updated_seq, v.order_id)))
        self.history.horizon = self.history.fills_horizon = self.core.seq
        self.transfers.horizon = self.core.seq
        self.transfers.durable = lambda: persister.stored_seq
        self._archive = SqlHistory(url)
        self.history_store = HistoryStore(Path(data_dir))
        books = self.core.engine.books

        def scales(symbol: str) -> tuple[int, int] | None:
            b = books.get(symbol)
            return (b.price_scale, b.qty_scale) if b is not None else None

        self.exporter = HistoryExporter(self._archive, self.history_store, scales)

    def calendar_for(self, spec: str) -> TradingCalendar:
        """The calendar ``spec`` names (``adapters.calendars.calendar_from_spec``; ""
        the platform's own), built once and kept (an exchange's takes a second to load);
        raises ``CalendarError`` for a spec that names none. It may run on a thread."""
        if not spec:
            return self.calendar
        cal = self._calendars.get(spec)
        if cal is None:
            cal = calendar_from_spec(spec)
            if len(self._calendars) < MAX_CALENDARS:
                self._calendars[spec] = cal
        return cal

    def calendar_of(self, symbol: str) -> TradingCalendar:
        """The calendar ``symbol`` follows: its own (``AddInstrument.calendar``), else the
        platform's; the platform's too should its own not build (logged)."""
        inst = self.core.instruments.get(symbol)
        spec = inst.calendar if inst is not None else ""
        try:
            return self.calendar_for(spec)
        except ValueError as e:  # (CalendarError) a spec the API did not check: a script's
            _log.warning("instrument %s: calendar %r: %s; the platform's instead", symbol, spec, e)
            return self.calendar

    @property
    def durable(self) -> bool:
        """Commands are journaled: ``submit`` returns only after an fsync, so a caller
        with several commands to send should not wait for one before sending the next."""
        return self._async is not None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._async is not None:
            self._async.start()
        if self.persister is not None and self._persisting is None:
            self._persisting = threading.Thread(
                target=self.persister.follow,
                args=(PERSIST_EVERY,),
                name="mercato-persister",
                daemon=True,
            )
            self._persisting.start()
        if self.exporter is not None and self._exporting is None:
            self._exporting = threading.Thread(
                target=self.exporter.run, args=(EXPORT_EVERY,), name="mercato-history", daemon=True
            )
            self._exporting.start()

    async def stop(self) -> None:
        if self._async is not None:
            await self._async.stop()
        if self._persisting is not None:
            assert self.persister is not None
            self.persister.stop()
            self._persisting.join()
            self._persisting = None
        # after the persister's last catch-up: the export's last round sees all of it
        if self._exporting is not None:
            assert self.exporter is not None
            self.exporter.stop()
            self._exporting.join()
            self._exporting = None
        if self._node is not None:
            self._node.snapshot()
            self._node.close()
            self._node = None
        if self.persister is not None:
            try:  # the store complete at a clean stop: the next start has nothing to do
                self.persister.run_once()
            except Exception:
                _log.exception("persister: the last catch-up failed (the next start redoes it)")
            self.persister = None
        for closable in (self._store, self._archive):
            if closable is not None:
                closable.close()
        self._store = self._archive = None

    def health(self) -> str:
        """ "" while commands are taken, else why not (the journal cannot write, the node
        failed): what readiness reports."""
        return self._node.health() if self._node is not None else ""

    # -- ids, time and commands ----------------------------------------------------------

    def now(self) -> int:
        """The wall clock in nanoseconds, never going backwards."""
        ts = self.clock()
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        return ts

    def next_order_id(self) -> int:
        """A new order id: microseconds since the epoch, bumped to stay increasing, so ids
        stay unique across restarts without being stored (ids are not secrets; clients
        name their orders with ``client_order_id``)."""
        oid = max(self.clock() // 1_000, self._last_id + 1)
        assert oid < INTERNAL_IDS
        self._last_id = oid
        return oid

    def next_account_id(self) -> int:
        return max(self.core.accounts, default=0) + 1

    async def prior_order(self, account: int, client_order_id: str) -> OrderView | None:
        """The order ``account`` placed today with ``client_order_id`` if the core may have
        forgotten it, from the history (memory, then the store); None otherwise. The core
        keeps the ids of live orders and of the newest finished ones
        (``engine/client_ids.py``) and answers a repeat of those itself; while it has
        forgotten none today there is nothing to look up."""
        ids = self.core.client_ids
        if not client_order_id or not ids.forgotten:
            return None
        v = await self.queries.by_client_id(account, client_order_id)
        return v if v is not None and v.created_seq > ids.day_seq else None

    def on_events(self, listener: Callable[[list[Event]], None]) -> None:
        """Call ``listener`` with every command's events, in order (it must not block)."""
        self._listeners.append(listener)

    async def submit_many(self, cmds: list[Command]) -> list[list[Event]]:
        """Journal a batch with one group commit and apply it: each command's events."""
        if self._async is not None:
            base = self._source_seq
            self._source_seq += len(cmds)
            batch = [(SOURCE, base + i, c) for i, c in enumerate(cmds, 1)]
            results = await self._async.submit(batch)
            out = []
            for r in results:
                if r.error:
                    raise ValueError(r.error)
                out.append(r.events)
        else:
            process = self.core.process
            out = [process(c) for c in cmds]
        for events in out:
            self.history.apply(events)
            self.transfers.apply(events)
            for listener in self._listeners:
                listener(events)
        return out

    async def submit(self, cmd: Command) -> list[Event]:
        """Journal (when durable) and apply one command; its events, once durable."""
        if self._async is not None:
            self._source_seq += 1
            (result,) = await self._async.submit([(SOURCE, self._source_seq, cmd)])
            if result.error:
                raise ValueError(result.error)
            events = result.events
        else:
            events = self.core.process(cmd)
        self.history.apply(events)
        self.transfers.apply(events)
        for listener in self._listeners:
            listener(events)
        return events

"""Persister benchmark: how fast the replica catches a SQL store up with a core's journal,
with the orders stored whole (``order_views``, what the API reads after a restart) and
without (the cost of those views), and how long a ``Platform`` takes to start on a store
that is caught up.

The exchange-core workload of ``core.py`` (margin accounts, fees) is journaled through an
``EngineNode`` running the risk core, then a fresh ``PersisterService`` replays it into a
fresh SQLite file (or the PostgreSQL URL given, in a fresh schema), timed end to end
(replay + SQL). Prints, as its last line, one JSON object:
{"bench": "persister", "commands": N, "events": ..., "views": true|false, "db": ...,
 "catch_up_s": ..., "commands_per_s": ..., "events_per_s": ..., "order_views": ...,
 "start_s": <Platform(data_dir) from a snapshot at the end, on the caught-up store>}

Usage: python benchmarks/persister.py [--commands N] [--no-views] [--db sqlite|URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import create_engine, func, select

import mercato.services.persister as persister_module
from core import core_setup
from mercato.adapters.sql import SqlPersister
from mercato.adapters.sql.schema import order_views
from mercato.engine.core import Core
from mercato.services.engine_node import EngineNode
from mercato.services.persister import PersisterService
from mercato.services.platform import Platform
from workload import generate


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--commands", type=int, default=50_000)
    ap.add_argument("--no-views", action="store_true", help="store no order_views (the cost)")
    ap.add_argument("--db", default="sqlite", help="sqlite (a temp file) or a PostgreSQL URL")
    args = ap.parse_args(argv)
    if args.no_views:
        persister_module.touched_orders = lambda events: []  # no order is written whole

    w = generate(args.commands)
    cmds = core_setup(w, "margin") + list(w.commands)
    with tempfile.TemporaryDirectory(prefix="mercato-bench-") as tmp:
        data = Path(tmp) / "node"
        node = EngineNode.open(data, machine="core", fsync=False, snapshot_every=0)
        for i in range(0, len(cmds), 500):
            node.submit([("bench", i + j + 1, c) for j, c in enumerate(cmds[i : i + 500])])
        node.snapshot()  # (so that start_s is the store's part, not the journal's replay)
        node.close()
        url = f"sqlite:///{Path(tmp) / 'store.sqlite'}" if args.db == "sqlite" else args.db
        store = SqlPersister(url)
        service = PersisterService(data, store, make_core=Core, restore_core=Core.restore)
        t0 = time.perf_counter()
        events = service.run_once()
        catch_up = time.perf_counter() - t0
        engine = create_engine(url)
        with engine.connect() as conn:
            views = conn.execute(select(func.count()).select_from(order_views)).scalar()
        engine.dispose()
        store.close()
        t0 = time.perf_counter()
        p = Platform(data, fsync=False, store_url=url)  # caught up: nothing to replay
        start = time.perf_counter() - t0
        asyncio.run(p.stop())
    result = {
        "bench": "persister",
        "commands": len(cmds),
        "events": events,
        "views": not args.no_views,
        "db": "sqlite" if args.db == "sqlite" else "postgresql",
        "catch_up_s": round(catch_up, 2),
        "commands_per_s": round(len(cmds) / catch_up),
        "events_per_s": round(events / catch_up),
        "order_views": views,
        "start_s": round(start, 2),
        "python": platform.python_version(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

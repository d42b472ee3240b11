"""History survives restarts: after a clean stop, a SIGKILL and periodic snapshots, the API
answers for every order, fill and trade exactly as a platform that never restarted does.

A seeded day of trading (every order type, cancels, replaces, OCO pairs, duplicate client
order ids, a paper account; commands one second apart, so bars of every interval form)
runs once on a reference ``Platform()`` that keeps everything in memory, and once on a
journaled platform with a SQL store (SQLite, and PostgreSQL in a fresh schema) that
snapshots every 40 commands and keeps only 5 finished orders in memory. The journaled one
is restarted (cleanly, or killed with SIGKILL in a subprocess right after its last
acknowledgement, while its persister still lags), and every query must give the same
orders (by id, by client order id, every page of the lists), fills, trade tape, bars and
statistics: the same structs, and the same bytes from the native and Alpaca routes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from argon2 import PasswordHasher
from msgspec.structs import replace
from starlette.testclient import TestClient

from mercato.api.alpaca import order_uuid
from mercato.api.app import create_app
from mercato.api.base import NEXT_PAGE
from mercato.domain.commands import Command, NewOrder
from mercato.domain.orders import OrderStatus
from mercato.services.auth import AuthStore
from mercato.services.oms import OrderView
from mercato.services.platform import Platform

from .test_core_restart_sql import day
from .test_sql_persister import _pg_url

SNAPSHOT_EVERY = 40
MAX_CLOSED = 5
SEC = 1_000_000_000
T0 = 1_764_000_000 * SEC  # a day in 2025, on a minute boundary
PASSWORD = "correct horse battery"
_commands = msgspec.msgpack.Decoder(list[Any])


def load() -> list[Command]:
    """The seeded day, one second apart, with some client order ids sent twice."""
    cmds = day(20261202, 320)
    out: list[Command] = []
    resent = 0
    for i, c in enumerate(cmds):
        out.append(replace(c, ts=T0 + i * SEC))
        if isinstance(c, NewOrder) and c.client_order_id and resent < 6 and i % 3 == 0:
            resent += 1  # the same client order id again, as a new order id
            again = replace(c, order_id=c.order_id + 100_000, ts=T0 + i * SEC + 1)
            out.append(again)
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, require_service: Callable[[str], None]
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
    else:
        yield from _pg_url(require_service)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def feed(p: Platform, cmds: list[Command]) -> None:
    for i in range(0, len(cmds), 25):
        await p.submit_many(cmds[i : i + 25])


class Views:
    """The reference: the same commands on a platform that never forgets or restarts."""

    def __init__(self, cmds: list[Command], auth: AuthStore) -> None:
        self.platform = Platform(max_closed=1 << 30, max_fills=1 << 30)
        self.app = TestClient(create_app(self.platform, auth))  # (its market data listens)
        run(feed(self.platform, cmds))
        self.orders = self.platform.history.orders(limit=None)
        assert len(self.orders) > 300
        assert sum(v.status in (OrderStatus.FILLED, OrderStatus.CANCELLED) for v in self.orders)


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[tuple[AuthStore, dict[str, str], dict[str, str]]]:
    """The auth store, an administrator's headers and a trader's who owns accounts 1-6."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    store = AuthStore(f"sqlite:///{tmp_path / 'users.sqlite'}", hasher=hasher)
    admin = store.create_user("admin", PASSWORD, "admin")
    trader = store.create_user("trader", PASSWORD)
    for a in range(1, 7):
        store.add_account(trader, a)
    heads = []
    for user in (admin, trader):
        key_id, secret = store.create_key(user)
        heads.append({"Authorization": f"Bearer {key_id}:{secret}"})
    yield store, heads[0], heads[1]
    store.close()


def pages(client: TestClient, path: str, headers: dict[str, str]) -> list[bytes]:
    """Every page of a paged list, following the next-page tokens."""
    out: list[bytes] = []
    token = None
    for _ in range(1_000):
        sep = "&" if "?" in path else "?"
        r = client.get(path + (f"{sep}page_token={token}" if token else ""), headers=headers)
        assert r.status_code == 200, (path, r.text)
        out.append(r.content)
        token = r.headers.get(NEXT_PAGE)
        if token is None:
            return out
    raise AssertionError("a list that never ends")


def api_answers(
    client: TestClient, views: list[OrderView], admin: dict[str, str], trader: dict[str, str]
) -> dict[str, Any]:
    """Everything the API says about this history, by route (each a 200)."""
    out: dict[str, Any] = {}

    def get(path: str, headers: dict[str, str] | None = None) -> bytes:
        r = client.get(path, headers=headers or {})
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.content

    for v in views:
        out[f"order {v.order_id}"] = get(f"/v1/orders/{v.order_id}", admin)
        if 1 <= v.account <= 6:
            out[f"v2 order {v.order_id}"] = get(f"/v2/orders/{order_uuid(v.order_id)}", trader)
        if v.client_order_id and v.status is not OrderStatus.REJECTED and v.account <= 6:
            q = f"/v2/orders:by_client_order_id?client_order_id={v.client_order_id}"
            out[f"v2 client {v.client_order_id}"] = get(q, trader)
    for a in (1, 2, 5, 9):
        for status in ("all", "closed", "open"):
            q = f"/v1/orders?account={a}&status={status}&limit=7"
            out[f"orders {a} {status}"] = pages(client, q, admin)
        out[f"fills {a}"] = pages(client, f"/v1/fills?account={a}&limit=5", admin)
    out["v2 orders"] = pages(client, "/v2/orders?status=all&limit=50", trader)
    out["v2 closed"] = pages(client, "/v2/orders?status=closed&limit=500", trader)
    out["tape"] = pages(client, "/v1/marketdata/X/trades?limit=40", admin)
    out["tape 1000"] = get("/v1/marketdata/X/trades?limit=1000")
    for iv in ("1s", "1m", "5m", "1h", "1d"):
        out[f"bars {iv}"] = get(f"/v1/marketdata/X/bars?interval={iv}&limit=1000")
    out["stats"] = get("/v1/marketdata/X/stats")
    out["v2 trades"] = get("/v2/stocks/trades?symbols=X&limit=1000", trader)
    out["v2 bars"] = get("/v2/stocks/bars?symbols=X&timeframe=1Min&limit=1000", trader)
    assert len(msgspec.json.decode(out["tape 1000"])) > 100
    assert len(msgspec.json.decode(out["bars 1m"])) > 3
    return out


async def check_queries(p: Platform, ref: Views) -> None:
    """The platform's queries (memory, then SQL) equal the reference's memory."""
    if True:
        for v in ref.orders:
            assert await p.queries.order(v.order_id) == v, v.order_id
            if v.client_order_id and v.status is not OrderStatus.REJECTED:
                want = ref.platform.history.by_client_id(v.account, v.client_order_id)
                assert await p.queries.by_client_id(v.account, v.client_order_id) == want
        for a in (1, 2, 3, 4, 5, 6, 9):
            want = ref.platform.history.orders(account=a, limit=None)
            got: list[OrderView] = []
            before = None
            while True:
                page, token = await p.queries.orders([a], before=before, limit=6)
                got += page
                if token is None:
                    break
                seq, _, oid = token.partition(".")
                before = (int(seq), int(oid))
            assert [v.order_id for v in got] == [v.order_id for v in want]
            assert got == want
            fills = ref.platform.history.fills(account=a, limit=None)
            got_fills, token = await p.queries.fills([a], limit=len(fills) + 1)
            assert got_fills == fills and token is None


def test_history_survives_a_clean_restart_and_snapshots(
    tmp_path: Path, store_url: str, auth: tuple[AuthStore, dict[str, str], dict[str, str]]
) -> None:
    store, admin, trader = auth
    cmds = load()
    ref = Views(cmds, store)
    want = api_answers(ref.app, ref.orders, admin, trader)

    node = tmp_path / "node"
    kw: dict[str, Any] = {
        "fsync": False,
        "snapshot_every": SNAPSHOT_EVERY,
        "store_url": store_url,
        "max_closed": MAX_CLOSED,
        "max_fills": 20,
    }
    p = Platform(node, **kw)
    with TestClient(create_app(p, store)) as app:  # its lifespan starts and stops p
        app.portal.call(feed, p, cmds)  # type: ignore[union-attr]
        # before any restart: memory holds 5 finished orders, the rest comes from SQL
        # (caught up first: the in-process persister follows on its own thread)
        assert p.persister is not None
        p.persister.run_once()
        assert len(p.history) < len(ref.orders) // 2
        app.portal.call(check_queries, p, ref)  # type: ignore[union-attr]
        assert api_answers(app, ref.orders, admin, trader) == want

    p = Platform(node, **kw)  # from the last snapshot, the store caught up at the stop
    run(check_queries(p, ref))
    with TestClient(create_app(p, store)) as app:
        assert api_answers(app, ref.orders, admin, trader) == want


def test_history_survives_a_sigkill_with_the_persister_behind(
    tmp_path: Path, store_url: str, auth: tuple[AuthStore, dict[str, str], dict[str, str]]
) -> None:
    store, admin, trader = auth
    cmds = load()
    ref = Views(cmds, store)
    node = tmp_path / "node"
    script = tmp_path / "cmds.msgpack"
    script.write_bytes(msgspec.msgpack.encode(cmds))
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(script), str(node), store_url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert line.startswith("acked "), line
        worker.send_signal(signal.SIGKILL)  # no snapshot, no last catch-up
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    stored = int(line.split()[1])
    assert stored < len(cmds) // 2  # the store was well behind the journal
    p = Platform(node, fsync=False, store_url=store_url, max_closed=MAX_CLOSED)
    assert p.persister is not None and p.persister.applied_seq == len(cmds)
    run(check_queries(p, ref))
    with TestClient(create_app(p, store)) as client:
        assert api_answers(client, ref.orders, admin, trader) == api_answers(
            ref.app, ref.orders, admin, trader
        )
        resend(client, p, ref, trader)


def resend(client: TestClient, p: Platform, ref: Views, trader: dict[str, str]) -> None:
    """The idempotent resend of a finished order's client order id: 200, the original."""
    v = next(
        v
        for v in ref.orders
        if v.client_order_id and v.status is OrderStatus.FILLED and 1 <= v.account <= 6
    )
    assert p.history.order(v.order_id) is None  # not in memory: from the store
    body = {
        "account": v.account,
        "symbol": "X",
        "side": "buy",
        "type": "limit",
        "qty": "1",
        "price": "100.00",
        "client_order_id": v.client_order_id,
    }
    r = client.post("/v1/orders", json=body, headers=trader)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(v.order_id) and r.json()["status"] == "filled"


WORKER = """
import asyncio, sys
import msgspec
from mercato.domain.commands import AnyCommand
from mercato.services import platform
from mercato.services.platform import Platform

platform.PERSIST_EVERY = 3600  # the persister catches up once at the start, then lags

async def main():
    cmds = msgspec.msgpack.Decoder(list[AnyCommand]).decode(open(sys.argv[1], "rb").read())
    p = Platform(sys.argv[2], fsync=False, store_url=sys.argv[3], snapshot_every=40,
                 max_closed=5)
    p.start()
    for i in range(0, len(cmds), 25):
        await p.submit_many(cmds[i : i + 25])
    print("acked", p._store.journal_seq(), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""

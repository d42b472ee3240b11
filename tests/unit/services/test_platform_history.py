"""A journaled platform behind the REST API keeps its history over periodic snapshots and
restarts: closed orders by id and by client order id, fills, the idempotent resend of a
client order id, the trade tape and bars (issue 11: all of these were lost after a
snapshot, the history being rebuilt only from the journal after it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from starlette.testclient import TestClient

from mercato.api.app import create_app
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform

PASSWORD = "correct horse battery"


def test_history_answers_the_same_after_snapshots_and_a_restart(
    tmp_path: Path, funded_accounts: Callable[..., list[int]]
) -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{tmp_path / 'users.sqlite'}", hasher=hasher)
    admin = auth.create_user("admin", PASSWORD, "admin")
    key_id, secret = auth.create_key(admin)
    h = {"Authorization": f"Bearer {key_id}:{secret}"}

    def app() -> TestClient:  # a snapshot every 3 commands: the history predates them all
        return TestClient(
            create_app(Platform(tmp_path / "node", fsync=False, snapshot_every=3), auth)
        )

    def order(side: str, qty: str, price: str, acct: int, coid: str = "") -> dict[str, Any]:
        body = {"symbol": "XYZ", "side": side, "type": "limit", "qty": qty, "price": price}
        return {**body, "account": acct, "client_order_id": coid}

    with app() as c:
        c.post("/v1/admin/instruments", headers=h, json={"symbol": "XYZ", "reference_price": "10"})
        buyer, seller = funded_accounts(c, h, admin, {"USD": "1000.00", "XYZ": "100"})
        filled = c.post("/v1/orders", headers=h, json=order("buy", "5", "10.00", buyer, "b1"))
        c.post("/v1/orders", headers=h, json=order("sell", "5", "10.00", seller, "s1"))
        cancelled = c.post("/v1/orders", headers=h, json=order("buy", "2", "9.00", buyer, "b2"))
        c.delete(f"/v1/orders/{cancelled.json()['id']}", headers=h)
        for i in range(6):  # more commands, more snapshots
            c.post("/v1/orders", headers=h, json=order("buy", "1", "8.00", buyer, f"x{i}"))
        ids = [filled.json()["id"], cancelled.json()["id"]]
        paths = [f"/v1/orders/{i}" for i in ids] + [
            f"/v1/orders?account={buyer}&status=closed",
            f"/v1/orders?account={buyer}&status=all",
            f"/v1/fills?account={buyer}",
            f"/v1/fills?account={seller}",
            "/v1/marketdata/XYZ/trades",
            "/v1/marketdata/XYZ/bars?interval=1s",
            "/v1/marketdata/XYZ/bars?interval=1d",
        ]
        before = {p: c.get(p, headers=h) for p in paths}
    assert all(r.status_code == 200 for r in before.values())
    assert (tmp_path / "node" / "store.sqlite").stat().st_mode & 0o777 == 0o600  # private
    assert before[f"/v1/orders/{ids[0]}"].json()["status"] == "filled"
    assert before[f"/v1/fills?account={buyer}"].json() != []
    assert before["/v1/marketdata/XYZ/trades"].json() != []

    with app() as c:
        after = {p: c.get(p, headers=h) for p in paths}
        for p in paths:
            assert (after[p].status_code, after[p].content) == (200, before[p].content), p
        again = c.post("/v1/orders", headers=h, json=order("buy", "5", "10.00", buyer, "b1"))
        assert again.status_code == 200, again.text
        assert again.json()["id"] == ids[0] and again.json()["status"] == "filled"
    auth.close()


def test_a_bad_page_token_is_refused_in_the_error_shape(tmp_path: Path) -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{tmp_path / 'users.sqlite'}", hasher=hasher)
    admin = auth.create_user("admin", PASSWORD, "admin")
    key_id, secret = auth.create_key(admin)
    h = {"Authorization": f"Bearer {key_id}:{secret}"}
    with TestClient(create_app(Platform(tmp_path / "node", fsync=False), auth)) as c:
        c.post("/v1/admin/instruments", headers=h, json={"symbol": "XYZ", "reference_price": "10"})
        for path in (
            "/v1/orders?status=all&page_token=12",  # a fills token is not an orders one
            "/v1/orders?status=closed&page_token=1.x",
            "/v1/fills?page_token=-1",
            "/v1/marketdata/XYZ/trades?page_token=abc",
        ):
            r = c.get(path, headers=h)
            assert r.status_code == 400, (path, r.text)
            assert r.json()["error"]["code"] == "invalid_page_token"
        r = c.get("/v2/orders?status=all&page_token=zz", headers=h)
        assert r.status_code == 422 and "page token" in r.json()["message"]
        assert c.get("/v1/orders?status=all&page_token=5.7", headers=h).status_code == 200
    auth.close()

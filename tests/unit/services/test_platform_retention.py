"""A platform with a SQL-store retention behind the REST API: history older than the
retention (in the core's time, the gateway's clock here being a fake one) is deleted; the
API answers 404 for it, not 500, keeps answering for the rest and for live orders, and a
page token taken before the deletion still pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from starlette.testclient import TestClient

from mercato.api.app import create_app
from mercato.api.base import NEXT_PAGE
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform

PASSWORD = "correct horse battery"
T0 = 1_800_000_000 * 1_000_000_000


def test_deleted_history_is_a_404_and_the_rest_still_answers(
    tmp_path: Path, funded_accounts: Callable[..., list[int]]
) -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{tmp_path / 'users.sqlite'}", hasher=hasher)
    admin = auth.create_user("admin", PASSWORD, "admin")
    key_id, secret = auth.create_key(admin)
    h = {"Authorization": f"Bearer {key_id}:{secret}"}
    now = [T0]
    platforms: list[Platform] = []

    def app() -> TestClient:
        p = Platform(tmp_path / "node", fsync=False, clock=lambda: now[0], retention=60)
        platforms.append(p)
        return TestClient(create_app(p, auth))

    def order(side: str, price: str, acct: int) -> dict[str, Any]:
        return {"symbol": "XYZ", "side": side, "type": "limit", "qty": "1", "price": price}

    def place(c: TestClient, side: str, price: str, acct: int) -> str:
        r = c.post("/v1/orders", headers=h, json={**order(side, price, acct), "account": acct})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    with app() as c:
        c.post("/v1/admin/instruments", headers=h, json={"symbol": "XYZ", "reference_price": "10"})
        buyer, seller = funded_accounts(c, h, admin, {"USD": "1000.00", "XYZ": "100"})
        old = []
        for _ in range(3):  # filled pairs
            old.append(place(c, "buy", "10.00", buyer))
            place(c, "sell", "10.00", seller)
        resting = place(c, "buy", "5.00", buyer)  # live: kept however old
        page1 = c.get(f"/v1/orders?account={buyer}&status=closed&limit=1", headers=h)
        token = page1.headers[NEXT_PAGE]
        fills_page = c.get(f"/v1/fills?account={buyer}&limit=1", headers=h)
        fills_token = fills_page.headers[NEXT_PAGE]
        now[0] += 600 * 1_000_000_000  # ten minutes of the core's time later
        new = place(c, "buy", "10.00", buyer)
        place(c, "sell", "10.00", seller)
        persister = platforms[-1].persister
        assert persister is not None
        persister.run_once()
        pruned = persister.prune()
        assert pruned.horizon > 0

    with app() as c:  # memory now holds the live orders only: the rest is the store's
        for oid in old:
            r = c.get(f"/v1/orders/{oid}", headers=h)
            assert r.status_code == 404, r.text
            assert r.json()["error"]["code"] == "unknown_order"
        assert c.get(f"/v1/orders/{resting}", headers=h).json()["status"] == "accepted"
        assert c.get(f"/v1/orders/{new}", headers=h).json()["status"] == "filled"
        closed = c.get(f"/v1/orders?account={buyer}&status=closed", headers=h).json()
        assert [o["id"] for o in closed] == [new]
        after = c.get(f"/v1/orders?account={buyer}&status=closed&page_token={token}", headers=h)
        assert (after.status_code, after.json()) == (200, [])
        r = c.get(f"/v1/fills?account={buyer}&page_token={fills_token}", headers=h)
        assert (r.status_code, r.json()) == (200, [])
        fills = c.get(f"/v1/fills?account={buyer}", headers=h).json()
        assert [f["order_id"] for f in fills] == [new]
        tape = c.get("/v1/marketdata/XYZ/trades", headers=h)
        assert tape.status_code == 200 and len(tape.json()) == 1
    auth.close()

"""GTD orders over /v1, the WebSocket and the client: ``tif: "gtd"`` with ``expire_at``
(RFC 3339), refused without it, with it on another time in force, in the past or beyond a
year; the order expires at its time by the next command (here the session service's
``Clock``), and answers with ``expire_at`` in ns like the other times."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from starlette.testclient import TestClient

from mercato.api.app import create_app
from mercato.client import Client, MercatoError
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform
from mercato.services.sessions import SessionService

NS = 1_000_000_000
T0 = dt.datetime(2026, 12, 3, 15, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = int(T0.timestamp()) * NS

    def __call__(self) -> int:
        return self.now


def world(tmp: Path) -> tuple[Platform, Clock, TestClient, dict[str, str], Client]:
    clock = Clock()
    platform = Platform(clock=clock)
    auth = AuthStore(
        f"sqlite:///{tmp / 'users.sqlite'}",
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    http = TestClient(create_app(platform, auth), base_url="http://testserver")
    http.__enter__()
    admin_key = auth.create_key(auth.create_user("admin", PASSWORD, "admin"))
    admin = Client("http://testserver", *admin_key, http=http)
    admin.add_instrument("XYZ", tick_size="0.01", reference_price="100.00")
    user = admin.create_user("alice", PASSWORD)
    acct = admin.create_account(user.user_id)
    admin.transfer(acct.account, "USD", "100000.00")
    key_id, secret = auth.create_key(user.user_id)
    headers = {"Authorization": f"Bearer {key_id}:{secret}"}
    return platform, clock, http, headers, Client("http://testserver", key_id, secret, http=http)


def order(**kw: Any) -> dict[str, Any]:
    return {"symbol": "XYZ", "side": "buy", "type": "limit", "qty": "1", "price": "99.00", **kw}


def test_a_gtd_order_rests_then_expires_at_its_time(tmp_path: Path) -> None:
    platform, clock, http, headers, alice = world(tmp_path)
    at = "2026-12-03T15:30:00Z"
    r = http.post("/v1/orders", headers=headers, json=order(tif="gtd", expire_at=at))
    assert r.status_code == 201, r.text
    o = r.json()
    expire_ns = int(dt.datetime(2026, 12, 3, 15, 30, tzinfo=dt.UTC).timestamp()) * NS
    assert (o["tif"], o["expire_at"], o["status"]) == ("gtd", expire_ns, "accepted")
    svc = SessionService(platform, platform.calendar)
    clock.now = expire_ns - 1
    asyncio.run(svc.step(clock.now))
    assert http.get(f"/v1/orders/{o['id']}", headers=headers).json()["status"] == "accepted"
    clock.now = expire_ns
    asyncio.run(svc.step(clock.now))
    got = alice.get_order(o["id"])
    assert (got.status, got.expire_at, got.tif) == ("expired", expire_ns, "gtd")
    # the client sends an aware datetime as RFC 3339
    later = alice.place_order(
        "XYZ", "buy", "limit", 1, price="98.00", tif="gtd", expire_at=T0 + dt.timedelta(days=2)
    )
    assert later.expire_at == expire_ns + (2 * 86_400 - 1_800) * NS and later.status == "accepted"


def test_expire_at_is_checked(tmp_path: Path) -> None:
    _, _, http, headers, alice = world(tmp_path)
    cases = [
        (order(tif="gtd"), "required"),
        (order(tif="gtc", expire_at="2026-12-04T00:00:00Z"), "only for tif gtd"),
        (order(tif="gtd", expire_at="2026-12-03T14:59:59Z"), "in the future"),
        (order(tif="gtd", expire_at="2028-01-01T00:00:00Z"), "366 days"),
        (order(tif="gtd", expire_at="tomorrow"), "RFC-3339"),
    ]
    for body, words in cases:
        r = http.post("/v1/orders", headers=headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert words in r.json()["error"]["message"], (body, r.text)
    assert http.get("/v1/orders", headers=headers).json() == []  # nothing placed
    try:
        alice.place_order("XYZ", "buy", "limit", 1, price="99.00", tif="gtd")
    except MercatoError as e:
        assert "required" in str(e)
    else:
        raise AssertionError("a GTD order without expire_at was accepted")


def test_a_gtd_order_over_the_websocket(tmp_path: Path) -> None:
    _, _, http, headers, _ = world(tmp_path)
    with http.websocket_connect("/v1/ws", headers=headers) as ws:
        ws.send_json({"op": "order", "id": 1, **order(tif="gtd", expire_at="2026-12-03T16:00:00Z")})
        reply = ws.receive_json()
        while reply.get("id") != 1:
            reply = ws.receive_json()
        assert reply["order"]["tif"] == "gtd" and reply["order"]["expire_at"] > 0, reply

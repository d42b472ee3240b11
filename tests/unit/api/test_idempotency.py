"""A repeated ``client_order_id`` is answered as a repeat even when the core's bounded table
of them (``engine/client_ids.py``) has forgotten it: ``/v1`` answers 200 with the original,
``/v2`` 422 ``client_order_id must be unique``, as when the core catches it; and so after a
restart, when only the SQL store still knows the original."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from mercato.api.app import create_app
from mercato.domain.commands import EndOfDay
from mercato.engine.client_ids import MAX_DONE
from mercato.services.oms import OVERSHOOT
from mercato.services.platform import WINDOW_WITH_STORE, Platform

from .test_rest import World, buy


def alpaca(headers: dict[str, str]) -> dict[str, str]:
    """The same key in Alpaca's headers."""
    key_id, secret = headers["Authorization"].removeprefix("Bearer ").split(":")
    return {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}


def v2_order(cid: str) -> dict[str, Any]:
    return {
        "symbol": "XYZ",
        "side": "buy",
        "type": "limit",
        "qty": "1",
        "limit_price": "95",
        "time_in_force": "day",
        "client_order_id": cid,
    }


def place_and_cancel(w: World, cid: str) -> dict[str, Any]:
    o = w.ok("POST", "/v1/orders", w.alice, json=buy("95.00", client_order_id=cid))
    w.ok("DELETE", f"/v1/orders/{o['id']}", w.alice)
    return dict(o)


def forgotten_by_the_core(w: World) -> dict[str, Any]:
    """Alice's cancelled order "k1", and two more after it: the core keeps one finished."""
    w.platform.core.client_ids.max_done = 1
    first = place_and_cancel(w, "k1")
    place_and_cancel(w, "k2")
    place_and_cancel(w, "k3")
    assert w.platform.core.client_ids.get(w.alice_acct, "k1") is None
    return first


def assert_repeats_answered(client: TestClient, w: World, first: dict[str, Any]) -> None:
    again = client.post("/v1/orders", headers=w.alice, json=buy("95.00", client_order_id="k1"))
    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["status"]) == (first["id"], "cancelled")
    r = client.post("/v2/orders", headers=alpaca(w.alice), json=v2_order("k1"))
    assert r.status_code == 422, r.text
    assert r.json()["message"] == "client_order_id must be unique"
    r = client.post("/v2/orders", headers=alpaca(w.alice), json=v2_order("k3"))  # core: same
    assert r.status_code == 422 and r.json()["message"] == "client_order_id must be unique"
    everything = client.get("/v1/orders?status=all", headers=w.alice).json()
    assert sorted(o["client_order_id"] for o in everything) == ["k1", "k2", "k3"]


def test_a_repeat_the_core_forgot_is_answered_from_memory(tmp_path: Path) -> None:
    w = World(tmp_path)
    first = forgotten_by_the_core(w)
    assert_repeats_answered(w.client, w, first)
    # another account may use the same id, and so may alice on the next trading day
    assert w.call("POST", "/v1/orders", w.bob, json=buy(client_order_id="k1")).status_code == 201
    assert w.client.portal is not None
    w.client.portal.call(w.platform.submit, EndOfDay(ts=w.platform.now()))
    r = w.call("POST", "/v1/orders", w.alice, json=buy("95.00", client_order_id="k1"))
    assert r.status_code == 201 and r.json()["id"] != first["id"]
    w.client.__exit__(None, None, None)


def test_a_repeat_the_core_forgot_is_answered_from_the_store_after_a_restart(
    tmp_path: Path,
) -> None:
    node = tmp_path / "node"
    w = World(tmp_path, platform=Platform(node, fsync=False))
    first = forgotten_by_the_core(w)
    w.client.__exit__(None, None, None)  # stops the platform: snapshot, store caught up

    reopened = Platform(node, fsync=False)
    assert reopened.core.client_ids.max_done == 1  # (from the snapshot)
    assert reopened.history.order(int(first["id"])) is None  # only the store has it
    with TestClient(create_app(reopened, w.auth)) as client:
        assert_repeats_answered(client, w, first)
    w.auth.close()


def test_the_core_keeps_more_ids_than_memory_may_hold_unstored() -> None:
    """The argument of ``docs/api.md`` (idempotency): the core forgets an id only after
    more orders finished than the OMS keeps in memory while the persister lags."""
    assert MAX_DONE > WINDOW_WITH_STORE * OVERSHOOT

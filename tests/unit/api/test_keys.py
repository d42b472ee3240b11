"""API keys through the API: created with an expiry, listed, revoked by their owner or an
administrator; a revoked or expired key stops at once on REST and closes the WebSockets it
signed in (/v1/ws by header or op, the Alpaca trade and market-data streams)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mercato.services.auth import AuthStore

from .test_rest import PASSWORD, World


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.client.__exit__(None, None, None)


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key_id']}:{key['secret']}"}


def test_create_list_and_revoke_own_keys(w: World) -> None:
    k = w.ok("POST", "/v1/keys", w.alice, json={"expires_at": "2099-01-31T00:00:00Z"})
    assert k["expires_at"] == "2099-01-31T00:00:00Z" and len(k["secret"]) == 40
    plain = w.ok("POST", "/v1/keys", w.alice)  # no body: no expiry
    assert plain["expires_at"] is None
    listed = {x["key_id"]: x for x in w.ok("GET", "/v1/keys", w.alice)}
    assert set(listed) >= {k["key_id"], plain["key_id"]}
    assert "secret" not in listed[k["key_id"]]
    assert listed[k["key_id"]]["expires_at"] == "2099-01-31T00:00:00Z"
    assert w.ok("GET", "/v1/me", bearer(k))["username"] == "alice"
    # bob cannot revoke alice's key: 404, as for a key that does not exist
    r = w.call("DELETE", f"/v1/keys/{k['key_id']}", w.bob)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_key"
    assert w.ok("DELETE", f"/v1/keys/{k['key_id']}", w.alice) == {
        "key_id": k["key_id"],
        "revoked": True,
    }
    r = w.call("GET", "/v1/me", bearer(k))  # at once, though the key was cached
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_key"
    assert w.call("DELETE", f"/v1/keys/{k['key_id']}", w.alice).status_code == 404
    assert k["key_id"] not in {x["key_id"] for x in w.ok("GET", "/v1/keys", w.alice)}


def test_an_administrator_revokes_anyones_key(w: World) -> None:
    k = w.ok("POST", "/v1/keys", w.bob)
    assert w.call("DELETE", f"/v1/admin/keys/{k['key_id']}", w.alice).status_code == 403
    w.ok("DELETE", f"/v1/admin/keys/{k['key_id']}", w.admin)
    assert w.call("GET", "/v1/me", bearer(k)).status_code == 401
    r = w.call("DELETE", "/v1/admin/keys/MKNOSUCHKEY", w.admin)
    assert r.status_code == 404


@pytest.mark.parametrize(
    "expires_at, code",
    [
        ("2000-01-01T00:00:00Z", "invalid_expiry"),
        ("2099-01-01T00:00:00", "invalid_timestamp"),  # no offset
        ("tomorrow", "invalid_timestamp"),
    ],
)
def test_bad_expiries_are_refused(w: World, expires_at: str, code: str) -> None:
    r = w.call("POST", "/v1/keys", w.alice, json={"expires_at": expires_at})
    assert r.status_code == 400 and r.json()["error"]["code"] == code


def test_unknown_fields_of_a_key_request_are_refused(w: World) -> None:
    r = w.call("POST", "/v1/keys", w.alice, json={"ttl": 60})
    assert r.status_code == 400


def test_keys_per_user_are_capped_with_a_409(w: World) -> None:
    w.auth.max_keys_per_user = 3  # alice holds one already (World's)
    w.ok("POST", "/v1/keys", w.alice)
    w.ok("POST", "/v1/keys", w.alice)
    r = w.call("POST", "/v1/keys", w.alice)
    assert r.status_code == 409 and r.json()["error"]["code"] == "too_many_keys"


def _closed(ws: Any) -> tuple[int, str]:
    """Read until the server closes: its close code and reason."""
    for _ in range(100):
        msg = ws.receive()
        if msg["type"] == "websocket.close":
            return msg["code"], msg.get("reason", "")
    raise AssertionError("not closed")


def _json(ws: Any) -> Any:
    msg = ws.receive()
    return json.loads(msg["text"] if msg.get("text") is not None else msg["bytes"])


def _sign_in(ws: Any, where: str, key: dict[str, Any]) -> None:
    if where == "/v1/ws":
        ws.send_json({"op": "auth", "key_id": key["key_id"], "secret": key["secret"]})
        assert ws.receive_json()["status"] == 200
    elif where == "/stream":
        ws.send_json({"action": "auth", "key": key["key_id"], "secret": key["secret"]})
        assert _json(ws)["data"]["status"] == "authorized"
    else:
        assert ws.receive_json()[0]["msg"] == "connected"
        ws.send_json({"action": "auth", "key": key["key_id"], "secret": key["secret"]})
        assert ws.receive_json()[0]["msg"] == "authenticated"


@pytest.mark.parametrize("where", ["/v1/ws", "/v1/ws?header", "/stream", "/v2/iex"])
def test_revoking_a_key_closes_its_open_websockets_at_once(w: World, where: str) -> None:
    k = w.ok("POST", "/v1/keys", w.alice)
    other = w.ok("POST", "/v1/keys", w.alice)
    api = w.client.app.state.api  # type: ignore[attr-defined]
    path = where.split("?")[0]
    by_header = where.endswith("?header")
    with (
        w.client.websocket_connect(path, headers=bearer(k) if by_header else {}) as ws,
        w.client.websocket_connect("/v1/ws", headers=bearer(other)) as kept,
    ):
        if not by_header:
            _sign_in(ws, path, k)
        assert api.keys.watching(k["key_id"]) == 1
        w.ok("DELETE", f"/v1/keys/{k['key_id']}", w.alice)
        assert _closed(ws) == (1008, "key revoked")
        assert kept.send_json({"op": "ping"}) is None and kept.receive_json() == {"op": "pong"}
    deadline = time.monotonic() + 2
    while api.keys.watching() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api.keys.watching() == 0  # nothing held for closed sockets


def test_an_expiring_key_closes_its_websocket_when_it_expires(w: World) -> None:
    api = w.client.app.state.api  # type: ignore[attr-defined]
    expires = time.time() + 3600
    k = w.ok(
        "POST",
        "/v1/keys",
        w.alice,
        json={"expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))},
    )
    api.keys.wall = lambda: int(expires) - 0.05  # the hour has passed but for 50 ms
    with w.client.websocket_connect("/v1/ws", headers=bearer(k)) as ws:
        assert _closed(ws) == (1008, "key expired")
    w.auth._wall = lambda: expires + 1
    assert w.call("GET", "/v1/me", bearer(k)).status_code == 401


def test_a_revoke_by_another_process_closes_sockets_at_the_next_sweep(
    w: World, tmp_path: Path
) -> None:
    api = w.client.app.state.api  # type: ignore[attr-defined]
    api.keys.sweep_every = 0.05  # (1 s by default)
    k = w.ok("POST", "/v1/keys", w.alice)
    with w.client.websocket_connect("/v1/ws", headers=bearer(k)) as ws:
        elsewhere = AuthStore(str(w.auth.engine.url), migrate=False)
        try:
            elsewhere.revoke_key(k["key_id"])
        finally:
            elsewhere.close()
        assert _closed(ws) == (1008, "key revoked")


@pytest.mark.parametrize("where", ["/v1/ws", "/stream", "/v2/iex"])
def test_a_websocket_that_never_signs_in_is_closed_after_the_idle_timeout(
    tmp_path: Path, where: str
) -> None:
    from mercato.api.limits import Limits

    w = World(tmp_path)
    try:
        w.client.app.state.api.limits = Limits(ws_idle_timeout=0.1)  # type: ignore[attr-defined]
        with w.client.websocket_connect(where) as ws:
            code, reason = _closed(ws)
        assert code == 1008 and ("auth timeout" in reason or "idle" in reason)
        with w.client.websocket_connect("/v1/ws") as ws:  # anonymous but subscribed: kept
            ws.send_json({"op": "subscribe", "channels": ["trades:XYZ"]})
            assert ws.receive_json()["status"] == 200
            ws.receive_json()  # its snapshot
            time.sleep(0.2)
            ws.send_json({"op": "ping"})
            assert ws.receive_json() == {"op": "pong"}
    finally:
        w.client.__exit__(None, None, None)


def test_a_session_ended_by_logout_is_refused_if_replayed(w: World) -> None:
    from mercato.api.base import SESSION_COOKIE

    w.ok("POST", "/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    token = w.client.cookies[SESSION_COOKIE]
    w.ok("POST", "/v1/auth/logout")
    w.client.cookies.clear()
    r = w.call("GET", "/v1/me", {"Cookie": f"{SESSION_COOKIE}={token}"})
    assert r.status_code == 401

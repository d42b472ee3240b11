"""Liveness and readiness, and a journal that finds no space: orders get a 503 in the
documented error shape, readiness says why, and both recover when space returns, with
nothing acknowledged lost over a restart."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from mercato.adapters import journal as journal_module
from mercato.services import engine_node
from mercato.services.platform import Platform

from .test_rest import World

ORDER = {"symbol": "XYZ", "side": "buy", "type": "limit", "qty": "1", "price": "99.00"}


def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Journal writes fail with ENOSPC (after a few bytes); the disk reports no space."""
    real = journal_module._write_all

    def full(fd: int, data: bytes | bytearray) -> None:
        real(fd, bytes(data[:5]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "_write_all", full)
    monkeypatch.setattr(engine_node, "MIN_FREE", 1 << 62)


def test_health_and_ready_in_memory(tmp_path: Path) -> None:
    w = World(tmp_path)
    assert w.call("GET", "/v1/health").json() == {"status": "ok"}
    r = w.call("GET", "/v1/ready")
    assert (r.status_code, r.json()) == (200, {"ready": True})


def test_no_space_answers_503_and_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node_dir = tmp_path / "node"
    w = World(tmp_path, platform=Platform(node_dir, fsync=False))
    placed = w.ok("POST", "/v1/orders", w.alice, json=ORDER)
    with monkeypatch.context() as m:
        disk_full(m)
        r = w.call("POST", "/v1/orders", w.alice, json={**ORDER, "client_order_id": "lost"})
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/json"
        assert r.headers["retry-after"] == "1"
        error = r.json()["error"]
        assert error["code"] == "journal_unavailable"
        assert "No space left" in error["message"] and "nothing was done" in error["message"]
        r = w.call("GET", "/v1/ready")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "not_ready"
        assert "No space left" in r.json()["error"]["message"]
        assert w.call("GET", "/v1/health").status_code == 200  # alive, not ready
        r = w.call("DELETE", f"/v1/orders/{placed['id']}", w.alice)
        assert r.status_code == 503  # every command, not only new orders
    monkeypatch.setattr(engine_node, "RETRY_AFTER", 0.0)
    w.platform._node._retry_at = 0.0  # type: ignore[union-attr]  # the retry is due
    assert w.call("GET", "/v1/ready").json() == {"ready": True}
    again = w.ok("POST", "/v1/orders", w.alice, json={**ORDER, "client_order_id": "lost"})
    assert again["client_order_id"] == "lost"  # the refused order never existed
    w.client.__exit__(None, None, None)  # stops the platform: snapshot, journal closed
    w.auth.close()

    reopened = Platform(node_dir, fsync=False)
    ids = {o.order_id for o in reopened.history.open_orders()}
    assert ids == {int(placed["id"]), int(again["id"])}

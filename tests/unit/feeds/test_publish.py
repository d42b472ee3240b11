"""``mercato feed replay --publish``: a LOBSTER day replayed into a running platform, whose
market data (REST snapshots, WebSocket channels) then shows it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mercato.api.app import create_app
from mercato.cli import main

Serve = Callable[[Any], tuple[str, int]]


@pytest.fixture
def platform_url(market: Any, serve_app: Serve, tmp_path: Path) -> tuple[str, Path]:
    """A served platform (XYZ traded here) and a credentials.json with an admin key."""
    admin = market.auth.create_user("admin", "correct horse battery", "admin")
    key_id, secret = market.auth.create_key(admin)
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"admin_key_id": key_id, "admin_secret": secret}))
    url, _ = serve_app(create_app(market.platform, market.auth))
    return url, creds


def test_a_lobster_replay_published_into_a_platform(
    platform_url: tuple[str, Path],
    lobster_messages: Path,
    lobster_orderbook: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, creds = platform_url
    argv = ["feed", "replay", "--format", "lobster", str(lobster_messages)]
    argv += ["--seed-book", str(lobster_orderbook), "--publish", url, "--credentials", str(creds)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "published 2,066 events" in out
    assert "final book: bid 585.3500 x 18 | ask 585.7100 x 100" in out
    quote = httpx.get(f"{url}/v1/marketdata/AAPL/quote").json()
    assert (quote["bid"], quote["bid_size"], quote["ask"], quote["ask_size"]) == (
        "585.3500",
        "18",
        "585.7100",
        "100",
    )
    trades = httpx.get(f"{url}/v1/marketdata/AAPL/trades?limit=1000").json()
    assert len(trades) == 159
    stats = httpx.get(f"{url}/v1/marketdata/AAPL/stats").json()
    assert stats["trades"] == 159  # the times were moved to now: inside the 24 hours
    # a second replay of the same feed goes on with it
    assert main(argv) == 0
    assert len(httpx.get(f"{url}/v1/marketdata/AAPL/trades?limit=1000").json()) == 318


def test_refusals(
    platform_url: tuple[str, Path], lobster_messages: Path, lobster_orderbook: Path
) -> None:
    url, creds = platform_url
    admin = json.loads(creds.read_text())
    h = {"Authorization": f"Bearer {admin['admin_key_id']}:{admin['admin_secret']}"}
    r = httpx.post(f"{url}/v1/admin/feeds", headers=h, json={"symbol": "XYZ"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "duplicate_symbol")
    r = httpx.post(f"{url}/v1/admin/feeds/XYZ/events", headers=h, json={"events": []})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_feed")  # ours
    assert httpx.post(f"{url}/v1/admin/feeds", headers=h, json={"symbol": "EXT"}).status_code == 201
    bad = [
        ["t", "OTHER", 1, 1, 100, 1, 1],  # another symbol
        ["t", "EXT", 1, 1, -100, 1, 1],  # a negative price
        ["l", "EXT", 1, 0, 100, 1],  # a level without a side
        ["t", "EXT", 1, 1, 100, 2**63, 1],  # out of range
    ]
    for event in bad:
        body = {"events": [["t", "EXT", 1, 1, 100, 1, 1], event]}
        r = httpx.post(f"{url}/v1/admin/feeds/EXT/events", headers=h, json=body)
        assert (r.status_code, r.json()["error"]["code"]) in (
            (400, "invalid_event"),
            (400, "invalid_body"),
        )
    assert httpx.get(f"{url}/v1/marketdata/EXT/trades").json() == []  # nothing applied
    # an order-level (L3) feed alone: its levels follow from its orders
    orders = [["o", "EXT", 1, 7, 1, 9_900, 5], ["o", "EXT", 2, 8, 1, 9_900, 3]]
    r = httpx.post(f"{url}/v1/admin/feeds/EXT/events", headers=h, json={"events": orders})
    assert r.json() == {"symbol": "EXT", "accepted": 2}
    depth = httpx.get(f"{url}/v1/marketdata/EXT/depth").json()
    assert (depth["bids"], depth["asks"]) == ([["99.00", "8"]], [])
    anonymous = httpx.post(f"{url}/v1/admin/feeds/EXT/events", json={"events": []})
    assert anonymous.status_code == 401

"""The authorization matrix of the Alpaca-compatible routes, generated from the mounted
app: every /v2 trading route x (anonymous, another trader, the owner); nothing answers 5xx,
the anonymous get 401, and another trader never reaches the owner's order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from mercato.api.alpaca import order_uuid

from .test_rest import World, buy


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    w = World(tmp_path_factory.mktemp("routes"))
    try:
        app: Any = w.client.app
        out = []
        for r in app.routes:
            if (
                isinstance(r, Route)
                and r.path.startswith("/v2/")
                and not r.path.startswith("/v2/stocks")
            ):
                for m in sorted(r.methods or ()):
                    if m != "HEAD":
                        out.append((m, r.path))
        return out
    finally:
        w.client.__exit__(None, None, None)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.client.__exit__(None, None, None)


def test_every_trading_route_is_guarded(w: World, routes: list[tuple[str, str]]) -> None:
    assert len(routes) >= 15
    order = w.ok("POST", "/v1/orders", w.alice, json=buy("90.00", "1"))
    uid = order_uuid(int(order["id"]))
    for method, path in routes:
        url = path.replace("{id}", uid).replace("{symbol}", "XYZ")
        body = {"qty": "1", "limit_price": "90"} if method == "PATCH" else None
        for who, headers in (("anonymous", None), ("other", w.bob), ("owner", w.alice)):
            before = w.ok("GET", f"/v1/orders/{order['id']}", w.alice)
            r = w.call(method, url, headers, json=body) if body else w.call(method, url, headers)
            if who != "owner":  # nobody else changes the owner's order
                assert w.ok("GET", f"/v1/orders/{order['id']}", w.alice) == before, (method, path)
            assert r.status_code < 500, (method, path, who, r.status_code, r.text)
            if who == "anonymous":
                assert r.status_code == 401, (method, path, r.text)
            if who == "other" and "{id}" in path:
                assert r.status_code == 404, (method, path, r.text)

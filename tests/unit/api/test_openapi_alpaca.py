"""The Alpaca-compatible surface's OpenAPI document (``GET /v2/openapi.json``): built from
``alpaca.ROUTES`` and ``alpaca_data.ROUTES``, every mounted /v2 HTTP route in it and every
``$ref`` resolving; and Schemathesis, in process against the ASGI app, finds no server
error and every answer in its documented shape (the structs the handlers encode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from mercato.api.alpaca import AlpacaRoute
from mercato.api.openapi import ALPACA_ROUTES, alpaca_document

from .test_openapi import _refs, _resolve, run_schemathesis
from .test_rest import World

schemathesis = pytest.importorskip("schemathesis")


def _apca(w: World, headers: dict[str, str]) -> dict[str, str]:
    """Alpaca's key headers for the user behind native ``headers``."""
    key_id, secret = w.auth.create_key(w.ok("GET", "/v1/me", headers)["user_id"])
    return {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}


def test_every_mounted_v2_route_is_documented(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        app: Any = w.client.app
        mounted = {
            (m, r.path)
            for r in app.routes
            if isinstance(r, Route) and r.path.startswith("/v2/")
            for m in r.methods or ()
            if m != "HEAD"
        }
        doc = alpaca_document()
        documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
        assert mounted == documented
        r = w.call("GET", "/v2/openapi.json", _apca(w, w.alice))
        assert r.status_code == 200 and r.json() == doc
        assert w.call("GET", "/v2/openapi.json").status_code == 401
    finally:
        w.client.__exit__(None, None, None)


def test_document_shape() -> None:
    doc = alpaca_document()
    assert doc["openapi"].startswith("3.1")
    for ref in set(_refs(doc)):
        _resolve(doc, ref)
    schemes = doc["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {"APCA-API-KEY-ID", "APCA-API-SECRET-KEY"}
    for r in ALPACA_ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert names == {seg[1:-1] for seg in r.path.split("/") if seg.startswith("{")}
        assert str(r.status) in op["responses"] and "401" in op["responses"]
        assert ({} in op["security"]) == (r.access == "public")
    schemas = doc["components"]["schemas"]
    assert set(schemas["OrderBody"]["required"]) == {"symbol", "side"}
    assert "class" in schemas["Asset"]["properties"] and "as" in schemas["Quote"]["properties"]
    assert schemas["Error"]["properties"]["code"]["type"] == "integer"


# -- Schemathesis ------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[World, dict[str, str]]]:
    """Alice (Alpaca's key headers returned) holds 5 XYZ bought from Bob, on the tape as a
    trade and a bar, and rests a buy order."""
    w = World(tmp_path, rate=1e9, burst=1_000_000)
    sell = {"symbol": "XYZ", "side": "sell", "type": "limit", "qty": "5", "price": "100.00"}
    w.ok("POST", "/v1/orders", w.bob, json=sell)
    w.ok("POST", "/v1/orders", w.alice, json={**sell, "side": "buy"})
    w.ok("POST", "/v1/orders", w.alice, json={**sell, "side": "buy", "price": "90.00"})
    yield w, _apca(w, w.alice)
    w.client.__exit__(None, None, None)


def _cases() -> Iterator[Any]:
    doc = alpaca_document()
    for r in ALPACA_ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        modes = ["positive"]
        if "parameters" in op or "requestBody" in op:  # else nothing to make invalid
            modes.append("negative")
        for mode in modes:
            yield pytest.param(r, mode, id=f"{r.method} {r.path} {mode}")


@pytest.mark.parametrize(("route", "mode"), list(_cases()))
def test_schemathesis(world: tuple[World, dict[str, str]], route: AlpacaRoute, mode: str) -> None:
    """Generated requests (valid, then invalid, data) with a trader's Alpaca key: never a
    5xx, and every answer of a documented status in its documented shape."""
    w, headers = world
    api = schemathesis.openapi.from_asgi("/v2/openapi.json", w.client.app, headers=headers)
    run_schemathesis(api, route, mode, headers)


@pytest.mark.parametrize(
    "url", ["/v2/orders?limit=%C2%B2", "/v2/stocks/trades?symbols=XYZ&limit=%C2%B2"]
)
def test_superscript_limit_is_not_a_server_error(
    world: tuple[World, dict[str, str]], url: str
) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` fails: once a 500, now read as a number
    only when it is decimal."""
    w, headers = world
    assert w.call("GET", url, headers).status_code in (200, 422)

"""The OpenAPI document: built from the route table, every route in it and every ``$ref``
resolving, served at ``GET /v1/openapi.json``; and Schemathesis, in process against the
ASGI app, finds no server error and every error answer in the documented shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from mercato.api.app import ROUTES, RouteSpec
from mercato.api.openapi import ERROR_SCHEMA, openapi_document

from .test_rest import World

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, ref
        node = node[part]
    return node


def test_every_route_is_documented() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(r.method, r.path) for r in ROUTES}
    for r in ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        assert op["operationId"] == r.handler
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert names == {seg[1:-1] for seg in r.path.split("/") if seg.startswith("{")}
        assert any(code.startswith("2") for code in op["responses"])
        if r.access != "public":
            assert {} not in op["security"] and "401" in op["responses"]
        if r.access == "admin":
            assert "403" in op["responses"]


def test_every_ref_resolves() -> None:
    doc = openapi_document()
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        _resolve(doc, ref)
    assert doc["components"]["schemas"]["Error"] == ERROR_SCHEMA
    order = doc["components"]["schemas"]["OrderRequest"]
    assert set(order["required"]) == {"symbol", "side", "type", "qty"}
    assert order["additionalProperties"] is False


def test_served_publicly(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        r = w.client.get("/v1/openapi.json")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == openapi_document()
    finally:
        w.client.__exit__(None, None, None)


# -- Schemathesis ------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, rate=1e9, burst=1_000_000)
    # the admin trades too: give them a funded account and a resting order to find
    me = w.ok("GET", "/v1/me", w.admin)
    acct = w.ok("POST", "/v1/admin/accounts", w.admin, json={"user_id": me["user_id"]})
    for asset, amount in (("USD", "100000.00"), ("XYZ", "500")):
        w.ok(
            "POST",
            f"/v1/admin/accounts/{acct['account']}/transfers",
            w.admin,
            json={"asset": asset, "amount": amount},
        )
    body = {"symbol": "XYZ", "side": "buy", "type": "limit", "qty": "1", "price": "99.00"}
    w.ok("POST", "/v1/orders", w.admin, json=body)
    yield w
    w.client.__exit__(None, None, None)


SCHEMATHESIS = settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


SERVER_ERRORS: dict[tuple[str, str, str], str] = {}
"""Server errors Schemathesis found that app.py does not yet handle: known, not hidden. (It
found one, a user id beyond int64 reaching SQLite; ids are now bounded in the schemas.)"""


def _cases() -> Iterator[Any]:
    doc = openapi_document()
    for r in ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        modes = ["positive"]
        queries = [p for p in op.get("parameters", []) if p["in"] == "query"]
        if queries or "requestBody" in op or "{order_id}" in r.path or "{account}" in r.path:
            # else nothing to make invalid (any string is a valid symbol in a path)
            modes.append("negative")
        for mode in modes:
            reason = SERVER_ERRORS.get((r.method, r.path, mode))
            marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
            yield pytest.param(r, mode, marks=marks, id=f"{r.method} {r.path} {mode}")


def run_schemathesis(api: Any, route: RouteSpec, mode: str, headers: dict[str, str]) -> None:
    """Requests generated for ``route`` of the loaded document ``api``, sent with
    ``headers``: never a 5xx, and every answer of a documented status in its shape."""
    strategy = api[route.path][route.method].as_strategy(GenerationMode(mode))

    @SCHEMATHESIS
    @given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )

    run()


@pytest.mark.parametrize(("route", "mode"), list(_cases()))
def test_schemathesis(world: World, route: RouteSpec, mode: str) -> None:
    """Generated requests (valid, then invalid, data) with an admin's key."""
    api = schemathesis.openapi.from_asgi("/v1/openapi.json", world.client.app)
    run_schemathesis(api, route, mode, world.admin)

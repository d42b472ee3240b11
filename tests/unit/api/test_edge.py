"""Nothing silently wrong at the edge of the native API: every error in the documented
shape (unknown routes, wrong methods, unexpected exceptions), bodies that are JSON and
only JSON (no duplicate keys, no other media type, not past the size limit), query
parameters that are read or refused, identifiers without control characters, and numbers
the core can hold (or a 4xx saying why, never a 500)."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mercato.api.app import Api, create_app
from mercato.api.base import MAX_BODY
from mercato.domain.instrument import MAX_UNITS
from mercato.services.platform import Platform

from .test_rest import World, buy

Serve = Callable[[Any], tuple[str, int]]


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    """A world whose platform journals to disk: a number the journal cannot encode would
    surface as a server error here, as it does in a served node."""
    world = World(tmp_path, platform=Platform(tmp_path / "node", fsync=False))
    yield world
    world.client.__exit__(None, None, None)


def _json(r: Any) -> Any:
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r.json()


# -- every error in the documented shape -------------------------------------------------


def test_unknown_routes_and_methods_answer_in_the_error_shape(w: World) -> None:
    r = w.call("GET", "/v1/nope")
    assert r.status_code == 404 and _json(r)["error"]["code"] == "not_found"
    r = w.call("GET", "/nope/deeper?x=1")
    assert r.status_code == 404 and _json(r)["error"]["code"] == "not_found"
    r = w.call("PUT", "/v1/orders", w.alice)
    assert r.status_code == 405 and _json(r)["error"]["code"] == "method_not_allowed"
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST", "DELETE"}
    # /v2 answers in Alpaca's shape: {"code": status * 100,000 + 1, "message"}
    r = w.call("GET", "/v2/nope", w.alice)
    assert r.status_code == 404 and _json(r) == {"code": 40400001, "message": "no such route"}
    r = w.call("PUT", "/v2/orders", w.alice)
    assert r.status_code == 405 and _json(r)["code"] == 40500001 and "allow" in r.headers


def test_an_unexpected_exception_is_a_json_500_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(self: Api, c: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Api, "instruments", boom)
    w = World(tmp_path)
    try:
        client = TestClient(w.client.app, raise_server_exceptions=False)
        r = client.get("/v1/instruments")
        assert r.status_code == 500
        assert _json(r) == {"error": {"code": "internal_error", "message": "internal server error"}}
        assert any("500 on GET /v1/instruments" in m for m in caplog.messages)
    finally:
        w.client.__exit__(None, None, None)


def test_a_failed_journal_write_answers_in_the_error_shape(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever status a failed write gets (5xx: the node is not ready), it is JSON."""

    async def disk_full(cmd: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(w.platform, "submit", disk_full)
    client = TestClient(w.client.app, raise_server_exceptions=False)
    r = client.post("/v1/orders", json=buy(), headers=w.alice)
    assert r.status_code >= 500 and set(_json(r)["error"]) == {"code", "message"}
    r = client.post(
        "/v2/orders", json={"symbol": "XYZ", "side": "buy", "qty": "1"}, headers=w.alice
    )
    assert r.status_code >= 500 and set(_json(r)) == {"code", "message"}


# -- bodies: JSON only, no duplicate keys, bounded while streamed ------------------------


def test_a_body_that_is_not_json_is_refused_with_415(w: World) -> None:
    raw = json.dumps(buy()).encode()
    for ctype in (
        "text/plain",
        "application/x-www-form-urlencoded",  # curl -d without a header
        "multipart/form-data",
        "application/json; charset=latin-1",
    ):
        headers = {**w.alice, "Content-Type": ctype}
        assert w.error(415, "POST", "/v1/orders", headers, content=raw) == "unsupported_media_type"
    assert w.ok("GET", "/v1/orders", w.alice) == []
    for ctype in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        w.ok("POST", "/v1/orders", {**w.alice, "Content-Type": ctype}, content=raw)
    w.ok("POST", "/v1/orders", w.alice, content=raw)  # no Content-Type at all: JSON


def test_duplicate_keys_are_refused(w: World) -> None:
    dup = b'{"symbol":"XYZ","side":"buy","type":"limit","qty":"1","price":"1.00","qty":"500"}'
    assert w.error(400, "POST", "/v1/orders", w.alice, content=dup) == "duplicate_key"
    # a colon inside a string takes the slow path: still found, and no false alarm
    dup = (
        b'{"symbol":"XYZ","client_order_id":"a:b","side":"buy","side":"sell",'
        b'"type":"market","qty":"1"}'
    )
    assert w.error(400, "POST", "/v1/orders", w.alice, content=dup) == "duplicate_key"
    fine = (
        b'{"symbol":"XYZ","client_order_id":"a:b","side":"buy","type":"limit",'
        b'"qty":"1","price":"1.00"}'
    )
    assert w.ok("POST", "/v1/orders", w.alice, content=fine)["client_order_id"] == "a:b"
    assert [o["qty"] for o in w.ok("GET", "/v1/orders", w.alice)] == ["1"]


def test_a_route_without_a_body_refuses_one(w: World) -> None:
    """``DELETE /v1/orders {"symbol": "XYZ"}`` must not cancel every order."""
    w.ok("POST", "/v1/orders", w.alice, json=buy())
    code = w.error(400, "DELETE", "/v1/orders", w.alice, json={"symbol": "XYZ"})
    assert code == "unexpected_body"
    assert len(w.ok("GET", "/v1/orders", w.alice)) == 1
    assert w.error(400, "POST", "/v1/auth/logout", w.alice, json={"all": True}) == "unexpected_body"


def _raw_http(port: int, head: bytes, body: bytes, timeout: float = 5.0) -> bytes:
    """Send ``head`` then ``body`` (never ending the request) and read what the server
    answers before we have finished: the first bytes of its response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):  # the server may answer and close meanwhile
            sock.sendall(body)
        deadline = time.monotonic() + timeout
        got = b""
        while b"\r\n\r\n" not in got and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            got += chunk
        return got


def test_a_large_body_is_refused_before_it_is_read(w: World, serve_app: Serve) -> None:
    """A real server: a Content-Length beyond the limit is refused without reading the
    body, and a chunked body as soon as it passes the limit (the request never ends, so
    a server reading it all first would answer nothing)."""
    _, port = serve_app(create_app(Platform(), w.auth))
    key = w.alice["Authorization"].encode()
    head = (
        b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: " + key + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
    )
    got = _raw_http(port, head, b"{")
    assert got.startswith(b"HTTP/1.1 413"), got[:200]
    head = (
        b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: " + key + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * 8192
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (MAX_BODY // len(chunk) + 2)
    got = _raw_http(port, head, body)  # no final 0-length chunk: the body never ends
    assert got.startswith(b"HTTP/1.1 413"), got[:200]


# -- query parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/orders",
        "/v1/fills",
        "/v1/marketdata/XYZ/trades",
        "/v1/marketdata/XYZ/bars",
    ],
)
@pytest.mark.parametrize("limit", ["0", "-1", "1001", "x", "", "1e3", "\u0661"])
def test_a_bad_limit_is_a_400_not_the_default(w: World, path: str, limit: str) -> None:
    code = w.error(400, "GET", f"{path}?limit={limit}", w.alice)
    assert code in ("invalid_limit", "invalid_query")


def test_unknown_and_repeated_query_parameters_are_refused(w: World) -> None:
    w.ok("POST", "/v1/orders", w.alice, json=buy())
    assert w.error(400, "GET", "/v1/orders?side=buy", w.alice) == "unknown_parameter"
    # cancel-all reads no symbol: it must not cancel everything when asked for one symbol
    assert w.error(400, "DELETE", "/v1/orders?symbol=XYZ", w.alice) == "unknown_parameter"
    assert len(w.ok("GET", "/v1/orders", w.alice)) == 1
    assert w.error(400, "GET", "/v1/instruments?symbol=XYZ") == "unknown_parameter"
    assert w.error(400, "GET", "/v1/orders?limit=1&limit=500", w.alice) == "invalid_query"
    assert w.error(400, "GET", "/v1/orders?symbol=X%00", w.alice) == "invalid_query"
    w.ok("GET", "/v1/orders?status=all&symbol=XYZ&limit=5", w.alice)


def test_integers_in_paths_and_queries_are_ascii_digits(w: World) -> None:
    o = w.ok("POST", "/v1/orders", w.alice, json=buy())
    wide = "".join(chr(0xFF10 + int(d)) for d in o["id"])  # fullwidth digits: int() reads them
    assert w.error(404, "GET", f"/v1/orders/{wide}", w.alice) == "not_found"
    assert w.error(404, "GET", f"/v1/orders/{o['id'][:3]}_{o['id'][3:]}", w.alice) == "not_found"
    assert w.error(400, "GET", f"/v1/account?account=%20{w.alice_acct}", w.alice) == "invalid_query"
    assert w.error(400, "GET", "/v1/account?account=" + "9" * 30, w.alice) == "invalid_query"


# -- identifiers and free text --------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\x00b", "a\nb", "tab\t", "\x7f", "a\u200bb", "a b", "é"])
def test_control_characters_in_client_order_id_are_refused(w: World, bad: str) -> None:
    code = w.error(400, "POST", "/v1/orders", w.alice, json=buy(client_order_id=bad))
    assert code == "invalid_body"
    assert w.ok("GET", "/v1/orders?status=all", w.alice) == []


@pytest.mark.parametrize("bad", ["X\x00", "X\nY", "X Y", "X.Y", "\u202eXYZ", ""])
def test_control_characters_in_other_identifiers_are_refused(w: World, bad: str) -> None:
    assert w.error(400, "POST", "/v1/orders", w.alice, json={**buy(), "symbol": bad})
    assert w.error(400, "POST", "/v1/admin/instruments", w.admin, json={"symbol": bad})
    acct = f"/v1/admin/accounts/{w.alice_acct}/transfers"
    assert w.error(400, "POST", acct, w.admin, json={"asset": bad, "amount": "1"})
    assert w.error(400, "POST", "/v1/admin/accounts", w.admin, json={"user_id": 1, "currency": bad})
    if not bad.isprintable():  # (usernames may hold dots and, by auth's rule, no spaces)
        user = {"username": f"eve{bad}", "password": "a long enough password"}
        assert w.error(400, "POST", "/v1/admin/users", w.admin, json=user)
        assert w.error(400, "POST", "/v1/auth/signup", json=user)


# -- numbers the core can hold ------------------------------------------------------------


def test_numbers_beyond_the_core_are_a_4xx_with_a_reason(w: World) -> None:
    big = "1" + "0" * 30
    for field in ("qty", "price"):
        code = w.error(400, "POST", "/v1/orders", w.alice, json={**buy(), field: big})
        assert code == "invalid_number"
    huge = str(2**64)
    assert w.error(400, "POST", "/v1/orders", w.alice, json=buy(qty=huge)) == "invalid_number"
    stop = {**buy(), "type": "stop", "stop_price": big}
    assert w.error(400, "POST", "/v1/orders", w.alice, json=stop) == "invalid_number"
    acct = f"/v1/admin/accounts/{w.alice_acct}/transfers"
    r = w.call("POST", acct, w.admin, json={"asset": "USD", "amount": big})
    assert r.status_code == 400 and "amount" in r.json()["error"]["message"]
    assert w.error(400, "POST", acct, w.admin, json={"asset": "XYZ", "amount": huge})
    assert w.error(
        400,
        "PUT",
        f"/v1/admin/accounts/{w.alice_acct}/limits",
        w.admin,
        json={"max_order_qty": 2**64},
    )
    inst = {
        "symbol": "BIG",
        "price_scale": 18,
        "qty_scale": 18,
        "tick_size": "0.000000000000000001",
    }
    assert w.error(400, "POST", "/v1/admin/instruments", w.admin, json=inst) == "invalid_body"
    inst = {"symbol": "BIG", "reference_price": big}
    assert w.error(400, "POST", "/v1/admin/instruments", w.admin, json=inst) == "invalid_number"
    assert w.error(400, "POST", "/v1/admin/feeds", w.admin, json={"symbol": "F", "lot_size": big})
    # the largest accepted values work, and a balance is capped
    top = str(MAX_UNITS)
    w.ok(
        "POST",
        "/v1/admin/instruments",
        w.admin,
        json={"symbol": "TOP", "tick_size": "0.01", "price_scale": 2, "qty_scale": 0},
    )
    for _ in range(1_000):  # 1,000 times MAX_UNITS: just under MAX_BALANCE
        w.ok("POST", acct, w.admin, json={"asset": "TOP", "amount": top})
    assert (
        w.error(422, "POST", acct, w.admin, json={"asset": "TOP", "amount": top})
        == "balance_too_large"
    )


_ODD: Any = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from([str(2**64), "1" + "0" * 30, str(MAX_UNITS + 1), "99999999999999999.99"]),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30, MAX_UNITS + 1]),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.text(max_size=40),
    st.sampled_from(["1" + "0" * 30, "1e400", "-0", "0.000000000000000001", "9" * 40, " 1 "]),
    st.from_regex(r"\A-?[0-9]{1,35}(\.[0-9]{0,20})?\Z"),
)
_BODIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "order": ("POST", "/v1/orders", buy(stop_price="99.00", trail_amount="1.00", account=None)),
    "deposit": ("POST", "/v1/admin/accounts/{acct}/transfers", {"asset": "USD", "amount": "1"}),
    "instrument": (
        "POST",
        "/v1/admin/instruments",
        {
            "symbol": "NEW",
            "tick_size": "0.01",
            "lot_size": "1",
            "price_scale": 2,
            "qty_scale": 0,
            "reference_price": "1.00",
            "maker_fee_bps": 0,
            "taker_fee_bps": 0,
            "currency": "USD",
        },
    ),
    "limits": (
        "PUT",
        "/v1/admin/accounts/{acct}/limits",
        {"max_order_qty": 0, "max_order_notional": 0, "max_position": 0, "collar_bps": 0},
    ),
    "replace": ("PATCH", "/v1/orders/{order}", {"qty": "1", "price": "1.00", "stop_price": None}),
    "kill": ("POST", "/v1/admin/kill", {"on": False, "account": 0}),
}


@pytest.mark.parametrize("name", sorted(_BODIES))
def test_odd_numbers_and_strings_never_make_a_server_error(w: World, name: str) -> None:
    """Hypothesis throws huge, negative, fractional and non-numeric values (and odd
    strings) into each field of the order, deposit, instrument, limits, replace and
    kill bodies: every answer is below 500, in the error shape when it is an error."""
    order = w.ok("POST", "/v1/orders", w.alice, json=buy("90.00"))
    method, path, base = _BODIES[name]
    path = path.format(acct=w.alice_acct, order=order["id"])
    headers = w.alice if name in ("order", "replace") else w.admin

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(field=st.sampled_from(sorted(base)), value=_ODD)
    def run(field: str, value: Any) -> None:
        body = {k: v for k, v in {**base, field: value}.items() if v is not None}
        r = w.call(method, path, headers, json=body)
        assert r.status_code < 500, (body, r.status_code, r.text)
        if r.status_code >= 400:
            assert set(r.json()["error"]) == {"code", "message"}

    run()


# -- the declared query parameters are the ones read ------------------------------------

_READS = re.compile(r'(?:int_param\(c\.request, |query_params\.get\(|getlist\(|flag\(c, )"(\w+)"')
_Q_READS = re.compile(r'(?:\bq\.get\(|\bq\[)"(\w+)"|"(\w+)" in q\b')


def _read_params(fn: Any) -> set[str]:
    """The query parameters a handler's source reads (``q`` counts when it is the
    request's ``query_params``)."""
    src = inspect.getsource(fn)
    names = set(_READS.findall(src))
    if "q = c.request.query_params" in src:
        names |= {a or b for a, b in _Q_READS.findall(src)}
    if "limit_param(" in src:
        names.add("limit")
    if "page_token(c.request" in src:
        names.add("page_token")
    if "sessions_between(" in src:  # api/calendar_handlers.py: start and end
        names |= {"start", "end"}
    return names


def test_every_query_parameter_a_handler_reads_is_declared(tmp_path: Path) -> None:
    """A parameter read but not declared would be refused (and undocumented); one
    declared but not read would be accepted and ignored."""
    from mercato.api import (
        alpaca,
        alpaca_account,
        alpaca_activities,
        alpaca_data,
        alpaca_portfolio,
        alpaca_positions,
    )
    from mercato.api.app import ROUTES
    from mercato.api.openapi import QUERY

    for spec in ROUTES:
        declared = {p["name"] for p in QUERY.get(spec.handler, [])}
        read = _read_params(getattr(Api, spec.handler))
        if "_accounts_for" in inspect.getsource(getattr(Api, spec.handler)):
            read.add("account")
        assert read == declared, (spec.path, spec.method, read, declared)
    helpers = {
        **{
            n: getattr(alpaca_data.AlpacaData, n)
            for n in (
                "_symbols",
                "_range",
                "_limit",
                "_desc",
                "_page",
                "_bar_page",
                "_markets",
                "_feed",
            )
        },
        "_close_qty": alpaca_positions.AlpacaPositions._close_qty,
    }
    for route in (*alpaca.ROUTES, *alpaca_data.ROUTES):
        owner = next(
            k
            for k in (
                alpaca.AlpacaApi,
                alpaca_positions.AlpacaPositions,
                alpaca_account.AlpacaAccount,
                alpaca_activities.AlpacaActivities,
                alpaca_portfolio.AlpacaPortfolio,
                alpaca_data.AlpacaData,
            )
            if hasattr(k, route.handler)
        )
        fn = getattr(owner, route.handler)
        read = _read_params(fn)
        src = inspect.getsource(fn)
        for name, helper in helpers.items():
            if f"self.{name}(" in src:
                read |= _read_params(helper)
                if name in ("_page", "_bar_page"):
                    read |= _read_params(alpaca_data.AlpacaData._range)
                    read |= {"limit", "sort"}
                if name == "_bar_page":  # (it reads the symbols itself)
                    read |= _read_params(alpaca_data.AlpacaData._markets)
                    read |= _read_params(alpaca_data.AlpacaData._symbols)
                    read |= _read_params(alpaca_data.AlpacaData._feed)
                if name == "_markets":
                    read |= _read_params(alpaca_data.AlpacaData._symbols)
                    read |= _read_params(alpaca_data.AlpacaData._feed)
        if "_Query(c)" in src:  # (the activities' filters)
            read |= _read_params(alpaca_activities._Query.__init__)
            if "{activity_type}" in route.path:  # the path names the type: not the query
                read.discard("activity_types")
        declared = {p.name for p in route.query}
        assert read == declared, (route.path, route.method, read, declared)

"""The native REST API described as an OpenAPI 3.1 document, built from the route table.

Paths, methods and who may call them come from ``ROUTES``; request bodies are the msgspec
structs of :mod:`mercato.api.schemas` (their JSON Schema from msgspec itself); success
bodies are loose objects or arrays, but the error shape is exact::

    {"error": {"code": "...", "message": "..."}}

Served at ``GET /v1/openapi.json``. The Alpaca-compatible surface (``/v2``) has its own
document, :func:`alpaca_document` at ``GET /v2/openapi.json``: Alpaca clients know only
that surface, and Alpaca itself serves trading and market data from different base URLs.
Its routes describe themselves (``alpaca.ROUTES``, ``alpaca_data.ROUTES``), their bodies
in and out being the structs the handlers decode and encode.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from mercato.api import alpaca, alpaca_data, alpaca_models
from mercato.api import schemas as s
from mercato.api.alpaca import AlpacaRoute
from mercato.api.app import ADMIN, MAX_BODY, PUBLIC, ROUTES, RouteSpec
from mercato.marketdata.bars import INTERVALS
from mercato.marketdata.market import DEFAULT_BARS

BODIES: Final[dict[str, type[s.Body]]] = {
    "signup": s.Credentials,
    "login": s.Credentials,
    "new_key": s.KeyRequest,
    "place": s.OrderRequest,
    "replace": s.ReplaceRequest,
    "create_user": s.UserRequest,
    "create_account": s.AccountRequest,
    "deposit": s.DepositRequest,
    "set_limits": s.LimitsRequest,
    "set_self_trade": s.SelfTradeRequest,
    "add_currency": s.CurrencyRequest,
    "add_instrument": s.InstrumentRequest,
    "add_feed": s.FeedRequest,
    "feed_events": s.FeedEvents,
    "set_status": s.StatusRequest,
    "kill": s.KillRequest,
}
"""Which handler decodes which request body (``Ctx.body``); the others read none."""

CREATED: Final = frozenset(
    {
        "signup",
        "new_key",
        "place",
        "create_user",
        "create_account",
        "add_currency",
        "add_instrument",
    }
)
"""Handlers that answer 201 on success (``place`` answers 200 for an idempotent repeat)."""

LISTS: Final = frozenset(
    {
        "instruments",
        "currencies",
        "calendar",
        "positions",
        "list_orders",
        "fills",
        "recent_trades",
        "bars",
        "list_keys",
    }
)
"""Handlers whose success body is a JSON array."""

_ACCOUNT = {
    "name": "account",
    "in": "query",
    "required": False,
    "description": "One of the caller's accounts (default: all of them, or the first).",
    "schema": {"type": "integer"},
}
_SYMBOL = {
    "name": "symbol",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
}
_STATUS = {
    "name": "status",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["open", "closed", "all"], "default": "open"},
}
_LEVELS = {
    "name": "levels",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
}
_PAGE_TOKEN = {
    "name": "page_token",
    "in": "query",
    "required": False,
    "description": "The Mercato-Next-Page-Token header of the previous page (docs/api.md).",
    "schema": {"type": "string"},
}
_INTERVAL = {
    "name": "interval",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": list(INTERVALS), "default": DEFAULT_BARS},
}
_DAY = {"in": "query", "required": False, "schema": {"type": "string", "format": "date"}}
QUERY: Final[dict[str, list[dict[str, Any]]]] = {
    "calendar": [{"name": "start", **_DAY}, {"name": "end", **_DAY}],
    "depth": [_LEVELS],
    "recent_trades": [_LIMIT, _PAGE_TOKEN],
    "bars": [_LIMIT, _INTERVAL, _PAGE_TOKEN],
    "indicators": [
        _LIMIT,
        _INTERVAL,
        {
            "name": "indicators",
            "in": "query",
            "required": True,
            "description": "specs separated by | (docs/indicators.md): sma:20|rsi:14",
            "schema": {"type": "string"},
        },
    ],
    "account": [_ACCOUNT],
    "positions": [_ACCOUNT],
    "list_orders": [_STATUS, _SYMBOL, _LIMIT, _ACCOUNT, _PAGE_TOKEN],
    "cancel_all": [_ACCOUNT],
    "fills": [_SYMBOL, _LIMIT, _ACCOUNT, _PAGE_TOKEN],
    "patterns": [
        _SYMBOL,
        _ACCOUNT,
        {"name": "start", "in": "query", "required": False, "schema": {"type": "integer"}},
        {"name": "end", "in": "query", "required": False, "schema": {"type": "integer"}},
    ],
    "movers": [
        _INTERVAL,
        _LIMIT,
        {"name": "bars", "in": "query", "required": False, "schema": {"type": "integer"}},
        {
            "name": "by",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["change", "volume", "volatility"]},
        },
    ],
    "history_candles": [
        _LIMIT,
        {
            "name": "interval",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "default": "1m", "description": "1s .. 4w, or 1mo"},
        },
        {"name": "start", "in": "query", "required": False, "schema": {"type": "integer"}},
        {"name": "end", "in": "query", "required": False, "schema": {"type": "integer"}},
    ],
    "correlation": [
        _INTERVAL,
        {"name": "bars", "in": "query", "required": False, "schema": {"type": "integer"}},
        {"name": "symbols", "in": "query", "required": True, "schema": {"type": "string"}},
    ],
    "performance": [
        _ACCOUNT,
        {
            "name": "interval",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["1m", "5m", "1h", "1d"], "default": "1d"},
        },
        {"name": "start", "in": "query", "required": False, "schema": {"type": "integer"}},
        {"name": "end", "in": "query", "required": False, "schema": {"type": "integer"}},
        {"name": "benchmark", "in": "query", "required": False, "schema": {"type": "string"}},
        {
            "name": "periods_per_year",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1},
        },
        {"name": "risk_free", "in": "query", "required": False, "schema": {"type": "string"}},
    ],
}
"""The query parameters each handler reads."""

PATH_PARAMS: Final[dict[str, dict[str, Any]]] = {
    "order_id": {"type": "integer"},
    "key_id": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
    "account": {"type": "integer"},
    "symbol": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}

ERRORS: Final[dict[str, frozenset[int]]] = {
    "signup": frozenset({409}),
    "login": frozenset(),
    "logout": frozenset(),
    "instruments": frozenset(),
    "currencies": frozenset(),
    "clock": frozenset(),
    "calendar": frozenset({400}),
    "me": frozenset(),
    "new_key": frozenset({409}),
    "list_keys": frozenset(),
    "revoke_key": frozenset({404}),
    "admin_revoke_key": frozenset({404}),
    "account": frozenset({404}),
    "positions": frozenset({404}),
    "place": frozenset({404, 422, 503}),
    "list_orders": frozenset({404}),
    "cancel_all": frozenset({404, 503}),
    "get_order": frozenset({404}),
    "replace": frozenset({404, 409, 422, 503}),
    "cancel": frozenset({404, 409, 422, 503}),
    "fills": frozenset({404}),
    "patterns": frozenset({404, 422}),
    "performance": frozenset({404, 422}),
    "create_user": frozenset({409}),
    "create_account": frozenset({404, 422, 503}),
    "deposit": frozenset({404, 422, 503}),
    "set_limits": frozenset({404, 422, 503}),
    "set_self_trade": frozenset({404, 422, 503}),
    "add_currency": frozenset({409, 422, 503}),
    "add_instrument": frozenset({409, 422, 503}),
    "set_status": frozenset({404, 503}),
    "kill": frozenset({404, 503}),
    "health": frozenset(),
    "ready": frozenset({503}),
}
"""Error statuses particular to each handler, besides those every route may answer."""

_ERROR_TEXT: Final = {
    400: "Invalid request: bad JSON, body, number or query parameter",
    401: "Not signed in, or an unknown API key",
    403: "Administrators only",
    404: "No such resource (or not the caller's)",
    409: "Conflict: already exists, or no longer open",
    413: f"Request body larger than {MAX_BODY} bytes",
    415: "A body that is not JSON (Content-Type other than application/json)",
    422: "Refused by the core (the code is its machine-readable reason)",
    429: "Rate limited: retry after the Retry-After header's seconds",
    503: "Not ready (the journal cannot write, or the node stopped): nothing was done; "
    "retry after the Retry-After header's seconds",
}

ERROR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}

_AUTHENTICATED: Final[list[dict[str, list[str]]]] = [
    {"bearerKey": []},
    {"apcaKeyId": [], "apcaSecretKey": []},
]
_SECURITY_SCHEMES: Final = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "KEY_ID:SECRET",
        "description": "An API key: `Authorization: Bearer KEY_ID:SECRET`.",
    },
    "apcaKeyId": {"type": "apiKey", "in": "header", "name": "APCA-API-KEY-ID"},
    "apcaSecretKey": {"type": "apiKey", "in": "header", "name": "APCA-API-SECRET-KEY"},
    "session": {"type": "apiKey", "in": "cookie", "name": "mercato_session"},
}

_PARAM = re.compile(r"{(\w+)}")
_REF: Final = "#/components/schemas/{name}"


def _path_params(path: str, schemas: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": schemas[name]}
        for name in _PARAM.findall(path)
    ]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _document(
    title: str,
    version: str,
    paths: dict[str, dict[str, Any]],
    schemas: dict[str, Any],
    errors: dict[int, str],
    security: dict[str, Any],
) -> dict[str, Any]:
    """The document around ``paths``: ``ErrorNNN`` responses (of ``schemas["Error"]``) for
    each status in ``errors``."""
    responses: dict[str, Any] = {}
    for status, text in errors.items():
        resp = _json({"$ref": _REF.format(name="Error")}, text)
        if status in (429, 503):
            resp["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        responses[f"Error{status}"] = resp
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas, "responses": responses, "securitySchemes": security},
    }


def _error_statuses(spec: RouteSpec) -> list[int]:
    statuses = {400, 401, 429} | ERRORS.get(spec.handler, frozenset())  # 400: any query
    if spec.access == ADMIN:
        statuses.add(403)
    if spec.handler in BODIES:
        statuses |= {400, 413, 415}
    if spec.handler in QUERY:
        statuses.add(400)
    if "{" in spec.path:
        statuses.add(404)
    return sorted(statuses)


def _op(
    spec: RouteSpec,
    tag: str,
    ok: dict[str, Any],
    errors: Iterable[int],
    security: list[dict[str, list[str]]],
    params: list[dict[str, Any]],
    body: type | None,
) -> dict[str, Any]:
    """One operation: the success answers ``ok`` (by status), a ``$ref`` per error status."""
    responses = dict(ok)
    for status in sorted(errors):
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    op: dict[str, Any] = {
        "operationId": spec.handler,
        "tags": [tag],
        "responses": responses,
        "security": security,
    }
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(name=body.__name__)}}},
        }
    return op


def _operation(spec: RouteSpec) -> dict[str, Any]:
    success = 201 if spec.handler in CREATED else 200
    body_schema: dict[str, Any] = (
        {"type": "array", "items": {"type": "object"}}
        if spec.handler in LISTS
        else {"type": "object"}
    )
    ok = {str(success): _json(body_schema, "Success")}
    if spec.handler == "place":
        ok["200"] = _json({"type": "object"}, "A repeated client_order_id: the original order")
    security: list[dict[str, list[str]]] = [*_AUTHENTICATED, {"session": []}]
    return _op(
        spec,
        spec.access,
        ok,
        _error_statuses(spec),
        [{}, *security] if spec.access == PUBLIC else security,
        _path_params(spec.path, PATH_PARAMS) + QUERY.get(spec.handler, []),
        BODIES.get(spec.handler),
    )


def openapi_document(title: str = "Mercato", version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document for every route in ``ROUTES``."""
    structs = sorted(set(BODIES.values()), key=lambda t: t.__name__)
    _, schemas = msgspec.json.schema_components(structs, ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for spec in ROUTES:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec)
    return _document(
        title,
        version,
        paths,
        {**schemas, "Error": ERROR_SCHEMA},
        _ERROR_TEXT,
        _SECURITY_SCHEMES,
    )


# -- the Alpaca-compatible surface ----------------------------------------------------------

ALPACA_ROUTES: Final[tuple[AlpacaRoute, ...]] = (*alpaca.ROUTES, *alpaca_data.ROUTES)

ALPACA_PATH_PARAMS: Final[dict[str, dict[str, Any]]] = {
    "id": {"type": "string", "format": "uuid"},
    "symbol": PATH_PARAMS["symbol"],
    "activity_type": {"type": "string", "description": "FILL, CSD, CSW, JNLS or TRANS"},
}

_ALPACA_ERROR_TEXT: Final = {
    400: "Invalid JSON",
    401: "No API key, or an unknown one",
    403: "Order refused (the core's reason is the message), as Alpaca refuses one",
    404: "No such order, asset, position or account",
    413: f"Request body larger than {MAX_BODY} bytes",
    415: "A body that is not JSON (Content-Type other than application/json)",
    422: "Invalid or unserved order field, number, query parameter, time, limit or token",
    429: "Rate limited: retry after the Retry-After header's seconds",
}

_APCA: Final[list[dict[str, list[str]]]] = [{"apcaKeyId": [], "apcaSecretKey": []}]
_ALPACA_SECURITY: Final = {
    "apcaKeyId": {"type": "apiKey", "in": "header", "name": "APCA-API-KEY-ID"},
    "apcaSecretKey": {"type": "apiKey", "in": "header", "name": "APCA-API-SECRET-KEY"},
}


def _alpaca_operation(route: AlpacaRoute, response: dict[str, Any] | None) -> dict[str, Any]:
    statuses = {401, 422, 429} | route.errors  # 422: an unknown query parameter, anywhere
    if route.body is not None:
        statuses |= {400, 413, 415, 422}
    if "{" in route.path:
        statuses.add(404)
    ok = {"description": "Success"} if response is None else _json(response, "Success")
    query = [
        {"name": p.name, "in": "query", "required": p.required, "schema": p.schema}
        for p in route.query
    ]
    return _op(
        route,
        route.tag,
        {str(route.status): ok},
        statuses,
        [{}, *_APCA] if route.access == PUBLIC else _APCA,
        _path_params(route.path, ALPACA_PATH_PARAMS) + query,
        route.body,
    )


def alpaca_document(
    title: str = "Mercato (Alpaca-compatible)", version: str = "0.1.0"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the ``/v2`` routes, their bodies and answers being the
    msgspec structs of ``alpaca`` and ``alpaca_data``."""
    answers = [r.response for r in ALPACA_ROUTES if r.response is not None]
    bodies = [r.body for r in ALPACA_ROUTES if r.body is not None]
    out, schemas = msgspec.json.schema_components(
        [*answers, *bodies, alpaca_models.Error], ref_template=_REF
    )
    schema = iter(out)  # one per route with a success body, in order
    paths: dict[str, dict[str, Any]] = {}
    for r in ALPACA_ROUTES:
        answer = next(schema) if r.response is not None else None
        paths.setdefault(r.path, {})[r.method.lower()] = _alpaca_operation(r, answer)
    return _document(title, version, paths, schemas, _ALPACA_ERROR_TEXT, _ALPACA_SECURITY)

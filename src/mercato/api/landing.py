"""The landing page at ``/`` and the interactive API docs at ``/docs``.

``/`` says what is running (the instruments and their last prices, the simulated traders
and the ports when the demo serves it) and links to the docs, the OpenAPI documents and
the credentials file. ``/docs`` is Swagger UI over both OpenAPI documents (the native
``/v1`` and the Alpaca-compatible ``/v2``), its files served from the ``swagger-ui-bundle``
package under ``/docs/assets``: nothing is fetched from elsewhere, so it works offline.
The Alpaca document is at ``/v2/openapi.json`` for Alpaca clients, with a key like the
rest of ``/v2``; the browser, which sends no key for it, reads the same document at
``/docs/alpaca-openapi.json``.

What the page says about the process beyond the core comes from ``app.state.about``
(a :class:`About`, set by whoever assembles the server: ``mercato demo``, ``mercato
serve``); without it the page shows the instruments and the links alone.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from mercato.api.base import ApiError, error_response, json_response
from mercato.domain.instrument import format_decimal

if TYPE_CHECKING:
    from mercato.api.app import Api

DOCS: str = "/docs"
ASSETS: str = "/docs/assets"
ALPACA_DOC = "/docs/alpaca-openapi.json"  # /v2/openapi.json needs a key, as all of /v2
SPECS: tuple[tuple[str, str], ...] = (
    ("native API (/v1)", "/v1/openapi.json"),
    ("Alpaca-compatible API (/v2)", ALPACA_DOC),
)


@dataclass(frozen=True)
class About:
    """What the landing page says about the running process (all optional)."""

    mode: str = "serve"  # "demo" or "serve"
    api_url: str = ""
    md_url: str | None = None  # the market-data fast path, when served on its own port
    data_dir: str = ""
    credentials: str = ""  # the path of credentials.json
    traders: tuple[str, ...] = ()  # one line per kind of simulated trader
    rate: int = 0  # simulated commands per second
    notes: tuple[str, ...] = field(default_factory=tuple)


_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222}
h1{margin-bottom:.2rem}code,pre{font:13px ui-monospace,monospace;background:#f4f4f4}
pre{padding:.6rem;overflow-x:auto}table{border-collapse:collapse}
td,th{padding:.15rem .8rem .15rem 0;text-align:left}td.n{text-align:right}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def landing_html(api: Api, about: About | None) -> str:
    """The page: pure of the core's books and ``about`` (tested without a server)."""
    about = about if about is not None else About()
    core = api.core
    rows = []
    for sym, b in sorted(core.engine.books.items()):
        last = format_decimal(b.last_price, b.price_scale) if b.last_price else "-"
        rows.append(f"<tr><td><code>{_e(sym)}</code></td><td class=n>{_e(last)}</td></tr>")
    instruments = (
        "<table><tr><th>symbol</th><th>last price</th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p>No instruments yet (an administrator adds them: "
        "<code>POST /v1/admin/instruments</code>).</p>"
    )
    running = []
    if about.api_url:
        running.append(f"REST and WebSocket API: <code>{_e(about.api_url)}/v1</code>")
    if about.md_url:
        running.append(
            f"market data alone (the fan-out's fast path): <code>{_e(about.md_url)}</code>"
        )
    if about.data_dir:
        running.append(f"data directory: <code>{_e(about.data_dir)}</code>")
    if about.traders:
        rate = f" ({about.rate:,} commands/s)" if about.rate else ""
        running.append("simulated traders" + _e(rate) + ": " + _e(", ".join(about.traders)))
    running += [_e(n) for n in about.notes]
    links = "".join(
        f'<li><a href="{DOCS}?spec={i}">Swagger UI: {_e(name)}</a> · '
        f'<a href="{_e(url)}">{_e(url)}</a> (OpenAPI)</li>'
        for i, (name, url) in enumerate(SPECS)
    )
    links += (
        "<li>Alpaca clients read theirs at <code>/v2/openapi.json</code>, with a key "
        "like the rest of <code>/v2</code></li>"
    )
    creds = ""
    if about.credentials:
        path = _e(about.credentials)
        creds = (
            "<h2>Credentials</h2>"
            f"<p>Keys are in <code>{path}</code> (readable by its owner only), never on this "
            "page. Send one as <code>Authorization: Bearer KEY_ID:SECRET</code> "
            "(in Swagger UI: <em>Authorize</em>).</p>"
            "<pre>"
            f'python3 -c \'import json; c = json.load(open("{path}")); '
            'print(c["key_id"] + ":" + c["secret"])\'\n'
            f"jq -r '.key_id + \":\" + .secret' {path}"
            "</pre>"
            + (
                "<p><code>key_id</code> / <code>secret</code>: the demo trader, with a funded "
                "account; <code>admin_key_id</code> / <code>admin_secret</code>: the "
                "administrator.</p>"
                if about.mode == "demo"
                else "<p><code>admin_key_id</code> / <code>admin_secret</code>: the "
                "administrator.</p>"
            )
        )
    items = "".join(f"<li>{r}</li>" for r in running)
    title = "Mercato demo" if about.mode == "demo" else "Mercato"
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>"
        "<p>A trading platform: matching engine, risk, accounts, market data.</p>"
        f"<h2>Running</h2><ul>{items}</ul>"
        f"<h2>Instruments</h2>{instruments}"
        f"<h2>API docs</h2><ul>{links}</ul>"
        f"{creds}</body></html>"
    )


def docs_html(spec: int) -> str:
    """Swagger UI over both OpenAPI documents, the ``spec``-th selected first."""
    urls = ",".join(f'{{url:"{url}",name:"{name}"}}' for name, url in SPECS)
    primary = SPECS[spec % len(SPECS)][0]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Mercato API docs</title>"
        f'<link rel=stylesheet href="{ASSETS}/swagger-ui.css">'
        f'<link rel=icon href="{ASSETS}/favicon-32x32.png"></head><body>'
        '<div id="swagger-ui"></div>'
        f'<script src="{ASSETS}/swagger-ui-bundle.js"></script>'
        f'<script src="{ASSETS}/swagger-ui-standalone-preset.js"></script>'
        "<script>window.ui = SwaggerUIBundle({"
        f'urls:[{urls}],"urls.primaryName":"{primary}",dom_id:"#swagger-ui",'
        "deepLinking:true,persistAuthorization:true,"
        "presets:[SwaggerUIBundle.presets.apis,SwaggerUIStandalonePreset],"
        'layout:"StandaloneLayout"});</script></body></html>'
    )


def landing_routes(api: Api) -> list[BaseRoute]:
    """``/``, ``/docs`` and Swagger UI's files under ``/docs/assets``."""

    async def landing(request: Request) -> Response:
        about = getattr(request.app.state, "about", None)
        return HTMLResponse(landing_html(api, about))

    async def docs(request: Request) -> Response:
        raw = request.query_params.get("spec", "0")
        if raw not in [str(i) for i in range(len(SPECS))]:
            return error_response(ApiError(400, "bad_request", f"spec must be 0..{len(SPECS) - 1}"))
        return HTMLResponse(docs_html(int(raw)))

    async def alpaca_doc(request: Request) -> Response:
        from mercato.api.openapi import alpaca_document  # it reads the route tables

        return json_response(alpaca_document())

    return [
        Route("/", landing, methods=["GET"]),
        Route(ALPACA_DOC, alpaca_doc, methods=["GET"]),
        Route(DOCS, docs, methods=["GET"]),
        Mount(ASSETS, app=StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui"),
    ]


__all__ = ["ALPACA_DOC", "ASSETS", "DOCS", "SPECS", "About", "landing_html", "landing_routes"]

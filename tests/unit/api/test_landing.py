"""The landing page at / and Swagger UI at /docs, its files from the package (no CDN)."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from mercato.api.app import create_app
from mercato.api.landing import About
from mercato.domain.commands import AddInstrument
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform


def _client(tmp: Path, about: About | None) -> TestClient:
    platform = Platform()
    platform.core.process(AddInstrument(symbol="ACME", tick_size=1, lot_size=1))
    app = create_app(platform, AuthStore(f"sqlite:///{tmp / 'users.sqlite'}"))
    if about is not None:
        app.state.about = about
    return TestClient(app)


def test_the_landing_page_says_what_runs_and_links_to_the_docs(tmp_path: Path) -> None:
    about = About(
        mode="demo",
        api_url="http://127.0.0.1:8123",
        md_url="ws://127.0.0.1:8124/v1/md",
        data_dir="/data/demo",
        credentials="/data/demo/credentials.json",
        traders=("3 market makers", "6 noise traders"),
        rate=200,
    )
    r = _client(tmp_path, about).get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    for expected in (
        "ACME",
        "http://127.0.0.1:8123/v1",
        "ws://127.0.0.1:8124/v1/md",
        "3 market makers, 6 noise traders",
        "200 commands/s",
        "/docs?spec=0",
        "/docs?spec=1",
        "/v1/openapi.json",
        "/docs/alpaca-openapi.json",
        "/data/demo/credentials.json",
        "jq -r",
    ):
        assert expected in page, expected
    assert 'secret"]' in page  # how to read the key, never the key itself


def test_without_about_the_page_still_lists_instruments(tmp_path: Path) -> None:
    page = _client(tmp_path, None).get("/").text
    assert "ACME" in page and "/docs?spec=0" in page and "Credentials" not in page


def test_swagger_ui_is_served_from_the_package(tmp_path: Path) -> None:
    client = _client(tmp_path, None)
    page = client.get("/docs").text
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs and all(ref.startswith("/docs/assets/") for ref in refs), refs
    assert "http" not in page.replace("http://", "")  # nothing from elsewhere
    for ref in refs:
        r = client.get(ref)
        assert r.status_code == 200 and len(r.content) > 100, ref
    assert client.get("/docs/assets/swagger-ui-bundle.js").text.count("SwaggerUIBundle")
    assert '"urls.primaryName":"Alpaca' in client.get("/docs?spec=1").text
    bad = client.get("/docs?spec=7")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
    for doc in ("/v1/openapi.json", "/docs/alpaca-openapi.json"):  # what Swagger UI reads
        assert client.get(doc).json()["openapi"].startswith("3.")

"""The streaming clients' server: the API on a real uvicorn server in a thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mercato.api.app import create_app

Serve = Callable[[Any], tuple[str, int]]  # the serve_app fixture (tests/conftest.py)


@pytest.fixture
def server(market: Any, serve_app: Serve) -> Iterator[tuple[str, str, str]]:
    """XYZ at 100.00 with a maker (account 1) quoting 99.00 / 101.00, and a trader
    (account 2, cash 100,000.00) whose key is returned."""
    platform, auth, user = market.platform, market.auth, market.trader
    key_id, secret = auth.create_key(user)
    app = create_app(platform, auth)
    url, _ = serve_app(app)
    yield url, key_id, secret

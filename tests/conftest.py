"""Shared test set-up: hypothesis profiles.

``MERCATO_HYPOTHESIS_PROFILE=long`` runs the property tests with a much bigger budget;
the default keeps the whole property suite under a minute.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings

settings.register_profile("mercato", deadline=None, print_blob=True)
settings.register_profile("long", parent=settings.get_profile("mercato"), max_examples=2000)
settings.load_profile(os.environ.get("MERCATO_HYPOTHESIS_PROFILE", "mercato"))


def _require_service(message: str) -> None:
    """A real server a test needs is not there: skip with the reason, or fail in CI.

    CI sets ``MERCATO_REQUIRE_SERVICES=1``: there a missing PostgreSQL, Redis or NATS is a
    failed test, never a silently skipped one.
    """
    if os.environ.get("MERCATO_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (MERCATO_REQUIRE_SERVICES=1)")
    pytest.skip(message)  # MERCATO_REQUIRE_SERVICES is not set: a developer machine


@pytest.fixture
def require_service() -> Callable[[str], None]:
    """The function above, for tests and fixtures that need a real server."""
    return _require_service


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], tuple[str, int]]]:
    """Serve an ASGI app with a real uvicorn server in a thread on a free port: call it
    with the app, get (url, port) once the server answers; it stops at teardown."""
    import asyncio
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(app: Any) -> tuple[str, int]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=lambda: asyncio.run(srv.serve()))
        thread.start()
        running.append((srv, thread))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                httpx.get(url + "/v1/instruments", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        return url, port

    yield serve
    for srv, thread in running:
        srv.should_exit = True
        thread.join(timeout=10)

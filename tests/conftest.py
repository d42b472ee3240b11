"""Shared test set-up: hypothesis profiles.

``MERCATO_HYPOTHESIS_PROFILE=long`` runs the property tests with a much bigger budget;
the default keeps the whole property suite under a minute.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
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
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws="mercato.api.ws_protocol:BoundedCloseProtocol",  # (as servers close)
        )
        srv = uvicorn.Server(config)
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


def _funded_accounts(
    client: Any, headers: dict[str, str], user_id: int, funds: dict[str, str], n: int = 2
) -> list[int]:
    """``n`` new accounts of ``user_id``, each given ``funds`` (asset -> amount), made
    through the admin API with the admin's ``headers``; their numbers."""
    out = []
    for _ in range(n):
        body = {"user_id": user_id}
        a = client.post("/v1/admin/accounts", headers=headers, json=body).json()["account"]
        for asset, amount in funds.items():
            transfer = {"asset": asset, "amount": amount}
            client.post(f"/v1/admin/accounts/{a}/transfers", headers=headers, json=transfer)
        out.append(a)
    return out


@pytest.fixture
def funded_accounts() -> Callable[..., list[int]]:
    """The function above: accounts with money in them, for tests over the REST API."""
    return _funded_accounts


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Any]:
    """An in-memory platform and its user store: XYZ at 100.00 with a maker (account 1)
    quoting 99.00 / 101.00, each 1,000, and a user "trader" (``market.trader``) owning
    account 2 with 100,000.00 USD. Attributes: ``platform``, ``auth``, ``trader``."""
    from types import SimpleNamespace

    from argon2 import PasswordHasher

    from mercato.domain.commands import (
        AddInstrument,
        CreateAccount,
        Deposit,
        NewOrder,
        SetInstrumentRisk,
    )
    from mercato.domain.types import AccountKind, OrderType, Side
    from mercato.services.auth import AuthStore
    from mercato.services.platform import Platform

    platform = Platform()
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{tmp_path / 'users.sqlite'}", hasher=hasher)
    quotes = [(1, Side.BUY, 9_900), (2, Side.SELL, 10_100)]
    for cmd in [
        AddInstrument(symbol="XYZ"),
        SetInstrumentRisk(symbol="XYZ", reference_price=10_000),
        CreateAccount(account=1, kind=AccountKind.MARGIN),
        Deposit(account=1, asset="USD", amount=10**10),
        CreateAccount(account=2),
        Deposit(account=2, asset="USD", amount=10_000_000),
        *(
            NewOrder(
                order_id=oid,
                account=1,
                symbol="XYZ",
                side=side,
                type=OrderType.LIMIT,
                qty=1_000,
                price=price,
            )
            for oid, side, price in quotes
        ),
    ]:
        platform.core.process(cmd)
    user = auth.create_user("trader", "correct horse battery")
    auth.add_account(user, 2)
    yield SimpleNamespace(platform=platform, auth=auth, trader=user)
    auth.close()

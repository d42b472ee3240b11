"""Shared test set-up: hypothesis profiles.

``MERCATO_HYPOTHESIS_PROFILE=long`` runs the property tests with a much bigger budget;
the default keeps the whole property suite under a minute.
"""

from __future__ import annotations

import os
from collections.abc import Callable

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

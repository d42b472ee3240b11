"""The recordings the feed tests read (copies, with provenance, in ``tests/data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data"
LOBSTER_STEM = "AAPL_2012-06-21_34200000_57600000"


@pytest.fixture(scope="session")
def lobster_messages() -> Path:
    return DATA / "lobster" / f"{LOBSTER_STEM}_message_10.csv"


@pytest.fixture(scope="session")
def lobster_orderbook() -> Path:
    return DATA / "lobster" / f"{LOBSTER_STEM}_orderbook_10.csv"


@pytest.fixture(scope="session")
def binance_file() -> Path:
    return DATA / "binance" / "btcusdt_20240808.gz"

"""The recordings the analytics tests import (copies, with provenance, in ``tests/data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def binance_file() -> Path:
    return DATA / "binance" / "btcusdt_20240808.gz"


@pytest.fixture(scope="session")
def lobster_messages() -> Path:
    return DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"

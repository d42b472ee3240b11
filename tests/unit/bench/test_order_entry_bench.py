"""The order entry benchmark is honest: against a real server in its own process, at a
small rate, every order sent over the WebSocket and over REST gets an answer, each a fill
(the benchmark's orders all cross the maker's resting liquidity), and each latency is
counted once."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from order_entry import run_rest, run_ws, set_up, start_server, uvloop_run


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    s = start_server(None)
    try:
        uvloop_run(set_up(s))
        yield s
    finally:
        s.stop()


@pytest.mark.parametrize("runner", [run_ws, run_rest], ids=["ws", "rest"])
def test_every_order_is_answered_and_filled(server, runner) -> None:  # type: ignore[no-untyped-def]
    run = uvloop_run(runner(server, 200, 0.5))
    assert run.sent == 100
    assert run.answered == run.sent
    assert run.errors == 0
    assert len(run.latency_ns) == run.sent and all(t > 0 for t in run.latency_ns)
    assert len(run.late_ns) == run.sent
    s = run.summary()
    assert s["p50_us"] is not None and s["p50_us"] <= s["p99_us"] <= s["p999_us"]

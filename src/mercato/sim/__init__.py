"""Order flow for the engine: CSV replay and a seeded, reproducible market simulator."""

from mercato.sim.market import SIM_EPOCH_NS, Simulator
from mercato.sim.replay import ReplayError, ReplayStats, replay_file, replay_stream
from mercato.sim.runner import DemoConfig, DemoError, DemoResult, run_demo
from mercato.sim.view import MarketView

__all__ = [
    "SIM_EPOCH_NS",
    "DemoConfig",
    "DemoError",
    "DemoResult",
    "MarketView",
    "ReplayError",
    "ReplayStats",
    "Simulator",
    "replay_file",
    "replay_stream",
    "run_demo",
]

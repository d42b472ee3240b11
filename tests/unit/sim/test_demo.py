"""``mercato demo``: the live loop on the risk core, its view and summary, journaling,
resuming and Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mercato.cli import main
from mercato.engine.core import Core
from mercato.services.engine_node import EngineNode
from mercato.sim import DemoConfig, DemoError, Simulator, run_demo
from mercato.sim.runner import MACHINE, NodeBackend

SYMBOLS = ("AAPL", "MSFT")
SETUP = len(Simulator(SYMBOLS, 0).setup())  # instruments, their risk, funded accounts


class FakeClock:
    """Wall time that moves only when the loop sleeps (plus a little per reading)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0

    def __call__(self) -> float:
        self.now += 0.0001
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def demo(cfg: DemoConfig, **kwargs):
    out = io.StringIO()
    clock = FakeClock()
    kwargs.setdefault("clock", clock)
    kwargs.setdefault("sleep", clock.sleep)
    result = run_demo(cfg, out, **kwargs)
    return result, out.getvalue()


def test_main_demo_produces_trades_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--console", "--duration", "1", "--rate", "1000", "--symbols", "AAPL,MSFT"])
    out = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"^state_hash [0-9a-f]{64}$", out, re.M)
    trades = int(
        re.search(r"trades ([\d,]+)", out.split("done after")[1]).group(1).replace(",", "")
    )
    assert trades > 100
    assert "1,000 commands this run" in out


def test_live_view_once_per_second_then_summary() -> None:
    result, out = demo(DemoConfig(symbols=SYMBOLS, seed=4, rate=500, duration=3.0))
    assert result.commands == 1500 and not result.interrupted
    assert out.count("commands/s") == 1  # the banner
    blocks = [line for line in out.splitlines() if line.startswith("t=")]
    assert len(blocks) in (2, 3)  # at 1 s, 2 s (and maybe 3 s) of paced time
    for s in SYMBOLS:
        assert re.search(rf"^  {s} +last +\d+\.\d\d +bid .* ask .* vol .* trades", out, re.M)
    assert "done after 3.0 s: 1,500 commands this run (500/s)" in out
    assert re.search(r"^  AAPL +\d+\.\d\d +\d+\.\d\d", out, re.M)  # the summary table
    assert out.rstrip().endswith(f"state_hash {result.state_hash}")
    # the risk core's line and the PnL by kind of trader, live and in the summary
    risk = re.findall(r"^  risk +rejected \d+ .*margin calls \d+ .*liquidations \d+$", out, re.M)
    pnl = re.findall(
        r"^  pnl +maker [-+]?[\d,]+\.\d\d  noise [-+]?[\d,]+\.\d\d  momentum [-+]?[\d,]+\.\d\d"
        r"  \(after fees of [\d,]+\.\d\d\)$",
        out,
        re.M,
    )
    assert len(risk) == len(pnl) == len(blocks) + 1


def test_a_short_run_trades_on_the_core_with_few_risk_rejects() -> None:
    result, _ = demo(DemoConfig(symbols=SYMBOLS, seed=3, rate=2000, duration=2.0, fast=True))
    assert result.trades > 1000
    assert sum(result.risk_rejects.values()) < 0.05 * result.commands
    assert result.margin_calls == result.liquidations == 0  # the accounts are well funded
    assert not [k for k in result.rejects if not k.endswith(("unknown_order", "stop_price"))]


def test_same_seed_same_hash_and_different_seed_different_hash() -> None:
    a, _ = demo(DemoConfig(symbols=SYMBOLS, seed=8, rate=2000, duration=1.0, fast=True))
    b, _ = demo(DemoConfig(symbols=SYMBOLS, seed=8, rate=2000, duration=1.0, fast=True))
    c, _ = demo(DemoConfig(symbols=SYMBOLS, seed=9, rate=2000, duration=1.0, fast=True))
    assert a.state_hash == b.state_hash != c.state_hash
    assert a.trades == b.trades > 0


def test_fast_does_not_sleep() -> None:
    clock = FakeClock()
    result, _ = demo(
        DemoConfig(symbols=SYMBOLS, seed=1, duration=2.0, fast=True),
        clock=clock,
        sleep=clock.sleep,
    )
    assert result.commands == 2000 and clock.sleeps == 0


def test_stop_between_batches_prints_the_summary() -> None:
    stop = threading.Event()
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.sleeps == 50:
            stop.set()  # what Ctrl-C does

    result, out = demo(DemoConfig(symbols=SYMBOLS, seed=1), clock=clock, sleep=sleep, stop=stop)
    assert result.interrupted and result.commands == 500  # 50 slices of 10 ms at 1,000/s
    assert "interrupted after" in out and "state_hash" in out


def test_journaled_run_gives_the_same_hash(tmp_path: Path) -> None:
    cfg = DemoConfig(symbols=SYMBOLS, seed=5, rate=2000, duration=1.0, fast=True)
    direct, _ = demo(cfg)
    journaled, out = demo(DemoConfig(**{**cfg.__dict__, "data_dir": str(tmp_path / "d")}))
    assert journaled.state_hash == direct.state_hash
    assert "journal in" in out
    assert (tmp_path / "d" / "demo.json").exists()


def test_a_second_run_resumes_where_the_first_stopped(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    once, _ = demo(DemoConfig(symbols=SYMBOLS, seed=6, rate=1000, duration=2.0, fast=True))
    first, _ = demo(DemoConfig(symbols=SYMBOLS, seed=6, duration=1.0, fast=True, data_dir=d))
    second, out = demo(DemoConfig(symbols=SYMBOLS, seed=6, duration=1.0, fast=True, data_dir=d))
    assert first.resumed_from == 0 and second.resumed_from == SETUP + 1000
    assert f"re-simulating {SETUP + 1000:,} commands" in out
    assert second.state_hash == once.state_hash  # as if it had never stopped


def test_resume_after_a_batch_was_cut_short(tmp_path: Path) -> None:
    """A crash can leave only the start of a batch journaled: the rest is sent on resume."""
    d = str(tmp_path / "d")
    cfg = DemoConfig(symbols=SYMBOLS, seed=12, rate=1000, fast=True, data_dir=d)
    demo(DemoConfig(**{**cfg.__dict__, "duration": 0.5}))  # 50 slices of 10 ms
    # the same stream to the end of the next batch, of which only a prefix gets journaled
    sim = Simulator(SYMBOLS, 12, rate=1000)
    shadow = Core()
    for i in range(51):
        batch = sim.next_batch() if i else sim.setup()
        sim.on_events([e for c in batch for e in shadow.process(c)])
    batch = sim.next_batch()
    node = EngineNode.open(d, machine=MACHINE)
    backend = NodeBackend(node)
    backend.submit(batch[:4])  # 4 of its 10 commands made it to the journal
    node.close()
    resumed, _ = demo(DemoConfig(**{**cfg.__dict__, "duration": 0.5}))
    once, _ = demo(DemoConfig(symbols=SYMBOLS, seed=12, rate=1000, fast=True, duration=1.01))
    assert resumed.resumed_from == SETUP + 500 + 4
    assert resumed.state_hash == once.state_hash


def test_resume_with_other_parameters_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(tmp_path / "d")
    demo(DemoConfig(symbols=SYMBOLS, seed=1, duration=0.2, fast=True, data_dir=d))
    with pytest.raises(DemoError, match="--seed 1 --symbols AAPL,MSFT --rate 1000"):
        demo(DemoConfig(symbols=SYMBOLS, seed=2, duration=0.2, fast=True, data_dir=d))
    rc = main(
        [
            "demo",
            "--console",
            "--seed",
            "2",
            "--symbols",
            "AAPL,MSFT",
            "--duration",
            "0.2",
            "--data-dir",
            d,
        ]
    )
    assert rc == 1 and "pass the same to resume it" in capsys.readouterr().err


def test_a_journal_of_the_matching_only_demo_is_refused(tmp_path: Path) -> None:
    """Data directories of the older demo (the bare engine) hold another machine's state."""
    d = tmp_path / "d"
    node = EngineNode.open(d)  # machine "engine", as the older demo journaled
    NodeBackend(node).submit(Simulator(SYMBOLS, 1).setup()[:1])
    node.close()
    (d / "demo.json").write_text(json.dumps({"seed": 1, "symbols": list(SYMBOLS), "rate": 1000}))
    with pytest.raises(DemoError, match="older demo"):
        demo(DemoConfig(symbols=SYMBOLS, seed=1, duration=0.2, fast=True, data_dir=str(d)))


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--rate", "0"], "must be positive"),
        (["--duration", "-1"], "must be a positive number"),
        (["--symbols", "AAPL,AAPL"], "distinct"),
        (["--symbols", "AAPL,"], "symbol must be"),
    ],
)
def test_bad_arguments(capsys: pytest.CaptureFixture[str], args: list[str], why: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--console", *args])
    assert exc.value.code == 2 and why in capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "replay" in out and "demo" in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "replay" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_ends_cleanly_with_the_summary() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mercato",
            "demo",
            "--console",
            "--rate",
            "500",
            "--symbols",
            "AAPL",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("t="):  # the first live view: it is running
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "interrupted after" in out and re.search(r"state_hash [0-9a-f]{64}", out)
    assert "Traceback" not in err

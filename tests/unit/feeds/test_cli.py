"""``mercato feed check`` and ``mercato feed replay``: exit codes, outputs, bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from mercato.cli import main
from mercato.feeds.run import paced
from mercato.marketdata.events import AnyMdEvent, MdClear, MdTrade

Capture = pytest.CaptureFixture[str]


def test_check_on_the_real_sample(
    lobster_messages: Path, lobster_orderbook: Path, tmp_path: Path, capsys: Capture
) -> None:
    book = tmp_path / "book.csv"
    argv = ["feed", "check", "--format", "lobster", str(lobster_messages), str(lobster_orderbook)]
    assert main([*argv, "--book-out", str(book)]) == 0
    assert "checked 998 messages: 0 books differ" in capsys.readouterr().out
    rows = book.read_text().splitlines()
    assert len(rows) == len(lobster_orderbook.read_text().splitlines()) - 1
    assert rows[0] == lobster_orderbook.read_text().splitlines()[1]  # row 1 + message 2


def test_check_fails_on_a_book_that_differs(
    lobster_messages: Path, lobster_orderbook: Path, tmp_path: Path, capsys: Capture
) -> None:
    rows = lobster_orderbook.read_text().splitlines()
    rows[9] = rows[9].replace(",", ",1", 1)  # row 10's best ask price changed
    bad = tmp_path / lobster_orderbook.name
    bad.write_text("\n".join(rows) + "\n")
    argv = ["feed", "check", "--format", "lobster", str(lobster_messages), str(bad)]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "2 books differ" in out
    assert f"{bad}:10: differs" in err and f"{bad}:11: differs" in err


def test_replay_lobster(
    lobster_messages: Path, lobster_orderbook: Path, tmp_path: Path, capsys: Capture
) -> None:
    bars = tmp_path / "bars.csv"
    argv = ["feed", "replay", "--format", "lobster", str(lobster_messages)]
    assert main([*argv, "--seed-book", str(lobster_orderbook), "--bars-out", str(bars)]) == 0
    out = capsys.readouterr().out
    assert "999 messages, 4 on orders outside the seeded book" in out
    assert "159 trades" in out
    assert "final book: bid 585.3500 x 18 | ask 585.7100 x 100" in out
    assert bars.read_text().splitlines() == [
        "symbol,start,open,high,low,close,volume,trades",
        "AAPL,1340285400000,585.7400,585.9300,585.3000,585.6200,10592,159",  # 13:30 UTC
    ]
    assert main(argv) == 2
    assert "needs --seed-book" in capsys.readouterr().err


def test_replay_binance_summary(binance_file: Path, capsys: Capture) -> None:
    assert main(["feed", "replay", "--format", "binance", str(binance_file), "--fast"]) == 0
    out = capsys.readouterr().out
    assert "41,249 lines, 0 depth gaps" in out and "9,757 trades, 28,040 quotes" in out
    assert "last quote: bid 61685.99000000 x 1.25869000 | ask 61686.00000000" in out


def test_bad_rows_are_reported_with_their_line_and_no_traceback(
    lobster_messages: Path, lobster_orderbook: Path, tmp_path: Path, capsys: Capture
) -> None:
    lines = lobster_messages.read_text().splitlines()
    lines[6] = "34200.1,1,16113575,18,5853300"
    msgs = tmp_path / lobster_messages.name
    msgs.write_text("\n".join(lines) + "\n")
    bars = tmp_path / "bars.csv"
    argv = ["feed", "replay", "--format", "lobster", str(msgs), "--seed-book"]
    assert main([*argv, str(lobster_orderbook), "--bars-out", str(bars)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mercato feed replay: {msgs}:7: expected 6 fields")
    assert "Traceback" not in err and not bars.exists()
    argv = ["feed", "check", "--format", "lobster", str(msgs), str(lobster_orderbook)]
    assert main(argv) == 1
    assert f"{msgs}:7: expected 6 fields" in capsys.readouterr().err


def test_bad_json_line_in_a_gzip_recording(
    binance_file: Path, tmp_path: Path, capsys: Capture
) -> None:
    bad = tmp_path / "bad.gz"
    with gzip.open(binance_file, "rb") as src, gzip.open(bad, "wb") as dst:
        for n, raw in enumerate(src, 1):
            dst.write(raw if n != 3 else b'1723161254087891268 {"stream": "btcusdt@bookTicker", \n')
            if n == 5:
                break
    assert main(["feed", "replay", "--format", "binance", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mercato feed replay: {bad}:3: bad JSON")
    truncated = tmp_path / "truncated.gz"
    shutil.copy(binance_file, truncated)
    with truncated.open("r+b") as f:
        f.truncate(50_000)
    assert main(["feed", "replay", "--format", "binance", str(truncated)]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["feed", "replay", "--format", "binance", str(tmp_path / "none.gz")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_paced_waits_for_event_time_over_speed() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))
        now[0] += s

    events: list[AnyMdEvent] = [
        MdClear("X", 0),
        MdTrade("X", 2 * 10**9, 1, 1, 1, 1),
        MdClear("X", 10**9),
    ]
    assert list(paced(events, 4.0, clock=lambda: now[0], sleep=sleep)) == events
    assert slept == [0.5]  # 2 s of recording at 4x; the event stamped earlier goes at once

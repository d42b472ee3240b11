"""``mercato history import`` and ``mercato history candles`` end to end: exit codes, the
CSV's header and rows, one-line errors with exit status 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mercato.cli import main

Capture = pytest.CaptureFixture[str]
HEADER = "symbol,start,open,high,low,close,volume,trades"


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's refusals
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys: Capture, *argv: str) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mercato"), err
    return lines[0]


def test_import_twice_then_candles(
    binance_file: Path, lobster_messages: Path, tmp_path: Path, capsys: Capture
) -> None:
    data = str(tmp_path / "d")
    lobster = tmp_path / lobster_messages.name  # a copy: the CLI takes any path
    shutil.copy(lobster_messages, lobster)
    argv = ["history", "import", "--format", "binance", str(binance_file), "--data-dir", data]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "9,757 trades of BTCUSDT (source binance): 9,757 new" in out
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "0 new, 9,757 already stored" in out
    lob = ["history", "import", "--format", "lobster", str(lobster), "--data-dir", data]
    assert run(capsys, *lob)[0] == 0

    csv_out = tmp_path / "c.csv"
    argv = ["history", "candles", "BTCUSDT", "--interval", "1m", "--data-dir", data]
    code, out, _ = run(capsys, *argv, "--csv", str(csv_out))
    assert code == 0 and f"7 candles of BTCUSDT at 1m -> {csv_out}" in out
    rows = csv_out.read_text().splitlines()
    assert rows[0] == HEADER and len(rows) == 8
    assert rows[1] == (
        "BTCUSDT,1723161240000,61837.63000000,61855.37000000,61824.00000000,61828.00000000,"
        "12.43238000,875"
    )
    assert sum(int(r.rsplit(",", 1)[1]) for r in rows[1:]) == 9_757
    # a range: the candles that start in it, whole
    code, out, _ = run(
        capsys, *argv, "--csv", "-", "--start", "1723161240001", "--end", "2024-08-09T00:00:00Z"
    )
    assert code == 0
    assert out.splitlines() == [HEADER, *rows[2:7]]
    # the LOBSTER sample in one month's candle (June 2012): 4 decimals, whole shares
    code, out, _ = run(
        capsys, "history", "candles", "AAPL", "--interval", "1mo", "--data-dir", data, "--csv", "-"
    )
    assert out.splitlines() == [
        HEADER,
        "AAPL,1338508800000,585.7400,585.9300,585.3000,585.6200,10592,159",
    ]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: Capture) -> None:
    data = str(tmp_path / "d")
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,ts,price,qty,side\nXYZ,0,1.5,1,buy\nXYZ,0,1.5,1,hold\n")
    imp = ["history", "import", "--data-dir", data]
    assert "--format" in one_line_error(capsys, *imp, "--format", "parquet", str(bad))
    assert "missing.csv" in one_line_error(capsys, *imp, "--format", "csv", "missing.csv")
    assert f"{bad}:3: side must be" in one_line_error(capsys, *imp, "--format", "csv", str(bad))
    assert "csv format only" in one_line_error(
        capsys, *imp, "--format", "binance", str(bad), "--qty-scale", "2"
    )
    assert "--price-scale" in one_line_error(
        capsys, *imp, "--format", "csv", str(bad), "--price-scale", "19"
    )

    good = tmp_path / "good.csv"
    good.write_text("symbol,ts,price,qty,side\nXYZ,0,1.5,1,buy\n")
    assert run(capsys, *imp, "--format", "csv", str(good))[0] == 0
    c = ["history", "candles", "XYZ", "--data-dir", data, "--csv", str(tmp_path / "o.csv")]
    assert "not an interval: '1y'" in one_line_error(capsys, *c, "--interval", "1y")
    assert "2mo" in one_line_error(capsys, *c, "--interval", "2mo")
    assert "not a time" in one_line_error(capsys, *c, "--start", "noon")
    assert "before --end" in one_line_error(capsys, *c, "--start", "10", "--end", "10")
    c[2] = "NOPE"
    assert "no trades of 'NOPE'" in one_line_error(capsys, *c)
    assert not (tmp_path / "o.csv").exists()


def test_indicators_over_stored_candles_agree_with_talib(
    binance_file: Path, tmp_path: Path, capsys: Capture
) -> None:
    import numpy as np
    import talib

    from mercato.analytics.candles import candles, parse_interval
    from mercato.analytics.store import HistoryStore

    data = str(tmp_path / "d")
    argv = ["history", "import", "--format", "binance", str(binance_file), "--data-dir", data]
    assert run(capsys, *argv)[0] == 0
    code, out, _ = run(
        capsys,
        "history",
        "indicators",
        "BTCUSDT",
        "--interval",
        "5s",
        "--indicators",
        "sma:5|rsi:14",
        "--data-dir",
        data,
        "--csv",
        "-",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "symbol,start,sma_5,rsi_14"
    bars = candles(HistoryStore(data).scan_trades("BTCUSDT"), parse_interval("5s"))
    closes = bars["close"].to_numpy().astype(float)
    sma, rsi = talib.SMA(closes, 5), talib.RSI(closes, 14)
    assert len(lines) == 1 + len(closes) > 30
    for line, s, r, start in zip(lines[1:], sma, rsi, bars["start"].to_list(), strict=True):
        sym, ms, got_s, got_r = line.split(",")
        assert sym == "BTCUSDT" and int(ms) == start // 1_000_000
        assert got_s == "" if np.isnan(s) else abs(float(got_s) * 10**8 - s) <= 0.5
        assert got_r == "" if np.isnan(r) else float(got_r) == pytest.approx(r, rel=1e-9)
    assert "unknown indicator" in one_line_error(
        capsys,
        "history",
        "indicators",
        "BTCUSDT",
        "--indicators",
        "nope",
        "--data-dir",
        data,
        "--csv",
        "-",
    )

"""Every `mercato` error is one line on stderr with a non-zero exit, never a traceback:
missing files, wrong formats, bad flag values, unwritable outputs, ports in use."""

from __future__ import annotations

import gzip
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mercato import cli

DATA = Path(__file__).resolve().parents[2] / "data"
BINANCE = DATA / "binance" / "btcusdt_20240808.gz"
ORDERS = DATA / "replay" / "sample_orders.csv"


def mercato(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mercato", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode not in (0, None), r
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("mercato"), lines
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    "args, words",
    [
        (["replay", "missing.csv", "-o", "t.csv"], ["missing.csv"]),
        (["feed", "replay", "--format", "binance", "missing.gz"], ["missing.gz"]),
        (["feed", "check", "--format", "lobster", "m.csv", "o.csv"], ["m.csv"]),
        (["persist", "missing"], ["no journal"]),
        (["history", "import", "--format", "csv", "missing.csv"], ["missing.csv"]),
        (["feed", "replay", "--format", "binance", str(BINANCE), "--publish", "http://x"], []),
    ],
)
def test_a_missing_file(args: list[str], words: list[str], tmp_path: Path) -> None:
    assert_one_line_error(mercato(*args, cwd=tmp_path), *words)


def test_a_file_of_the_wrong_format(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("a,b\n")
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    for args, words in [
        (["feed", "replay", "--format", "binance", "plain.txt"], ["plain.txt:1"]),
        (["feed", "replay", "--format", "binance", "bad.gz"], ["bad.gz"]),
        (["feed", "replay", "--format", "lobster", "plain.txt", "--seed-book", "plain.txt"], []),
        (["feed", "check", "--format", "lobster", "plain.txt", "plain.txt"], ["plain.txt:1"]),
        (["replay", "plain.txt", "-o", "t.csv"], ["plain.txt:1"]),
    ]:
        assert_one_line_error(mercato(*args, cwd=tmp_path), *words)


def test_an_uncompressed_binance_recording_replays_like_the_compressed_one(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "btcusdt.jsonl"
    with gzip.open(BINANCE) as f, open(plain, "wb") as out:
        shutil.copyfileobj(f, out)
    a = mercato("feed", "replay", "--format", "binance", str(BINANCE), cwd=tmp_path)
    b = mercato("feed", "replay", "--format", "binance", str(plain), cwd=tmp_path)
    assert a.returncode == b.returncode == 0, b.stderr
    summary = [line for line in a.stdout.splitlines() if not line.startswith("replayed ")]
    assert summary == [line for line in b.stdout.splitlines() if not line.startswith("replayed ")]


@pytest.mark.parametrize(
    "args, words",
    [
        (["demo", "--rate", "0"], ["--rate"]),
        (["demo", "--port", "99999"], ["--port"]),
        (["serve", "--md-port", "x"], ["--md-port"]),
        (["demo", "--symbols", "A,A"], ["--symbols"]),
        (["feed", "replay", "--format", "csv", "f"], ["--format"]),
        (["persist", "d", "--batch-events", "-1"], ["--batch-events"]),
        (["nosuch"], ["nosuch"]),
        (["replay"], ["ORDERS.csv"]),
    ],
)
def test_a_bad_flag_value(args: list[str], words: list[str], tmp_path: Path) -> None:
    r = mercato(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert_one_line_error(r, *words, "--help")


def test_an_unwritable_output(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    for args, words in [
        (["replay", str(ORDERS), "-o", "/nonexistent/t.csv"], ["/nonexistent"]),
        (["demo", "--console", "--duration", "1", "--data-dir", "file/d"], ["file"]),
        (["demo", "--port", "0", "--data-dir", "file/d", "--duration", "1"], ["file"]),
        (["serve", "--port", "0", "--data-dir", "file/d"], ["file"]),
    ]:
        assert_one_line_error(mercato(*args, cwd=tmp_path), *words)


def test_a_bad_calendar(tmp_path: Path) -> None:
    for spec, words in [("XXXX", "unknown exchange calendar"), ("hours:UTC", "hours:ZONE")]:
        r = mercato("serve", "--port", "0", "--calendar", spec, "--data-dir", "s", cwd=tmp_path)
        assert_one_line_error(r, "--calendar", words)
    assert not (tmp_path / "s").exists()


def test_a_port_in_use(taken_port: int, tmp_path: Path) -> None:
    p = str(taken_port)
    for args, flag in [
        (["serve", "--port", p, "--data-dir", "s"], "--port"),
        (["serve", "--port", "0", "--md-port", p, "--data-dir", "s"], "--md-port"),
        (["demo", "--port", p, "--data-dir", "d"], "--port"),
        (["demo", "--port", "0", "--md-port", p, "--data-dir", "d"], "--md-port"),
    ]:
        assert_one_line_error(mercato(*args, cwd=tmp_path), "in use", flag)
    assert not (tmp_path / "s").exists()  # `mercato serve` created nothing


def test_an_unexpected_error_is_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(args: object) -> int:
        raise RuntimeError("something\nunforeseen")

    monkeypatch.setattr(cli, "_replay", boom)
    monkeypatch.delenv("MERCATO_TRACEBACK", raising=False)
    assert cli.main(["replay", "x.csv", "-o", "y.csv"]) == cli.EXIT_FAILED
    assert capsys.readouterr().err == "mercato replay: RuntimeError: something unforeseen\n"

"""The fan-out benchmark is honest: a tiny run (20 subscribers on 5 instruments, 1 s) over
a real server in its own process delivers every trade to every subscriber of its
instrument, no client is dropped, and the result line parses; the load processes' cheap
count of a binary frame's events (its header only) agrees with the decoder."""

import json
import os
import subprocess
import sys
from pathlib import Path

from mercato.marketdata.codec import Decoder, Encoder
from mercato.marketdata.events import MdTrade

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from wsclient import client_frame, frame_events

FANOUT = str(Path(__file__).resolve().parents[3] / "benchmarks" / "fanout.py")


def test_a_tiny_run_delivers_every_trade_to_every_subscriber() -> None:
    cmd = [
        sys.executable,
        FANOUT,
        *("--connections", "20", "--encodings", "json", "--instruments", "5"),
        *("--rate", "200", "--duration", "1", "--runs", "1", "--load-procs", "1"),
        *("--sample", "1"),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["bench"] == "fanout" and r["connections"] == 20 and r["encoding"] == "json"
    assert r["without_trades"] == 0 and r["min_trades_per_conn"] > 0
    assert r["slow_consumers"] == 0 and r["closed"] == 0
    assert 3.5 <= r["deliveries_per_trade"] <= 4.5  # 20 subscribers / 5 instruments
    assert r["deliveries_per_s"] > 0 and r["deliveries_per_server_cpu_s"] > 0
    assert r["delay_samples"] > 0 and 0 < r["delay_p50_ms"] <= r["delay_p99_ms"]
    assert r["bytes_per_delivery"] > 0 and r["rss_per_conn_kib"] is not None


def test_a_tiny_run_of_batched_binary_subscribers_on_the_fast_path() -> None:
    cmd = [
        sys.executable,
        FANOUT,
        *("--connections", "20", "--encodings", "binary", "--instruments", "5"),
        *("--rate", "200", "--duration", "1", "--runs", "1", "--load-procs", "1"),
        *("--sample", "1", "--interval", "100"),
    ]
    env = {**os.environ, "BENCH_ENDPOINT": "md"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True, env=env)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert (r["encoding"], r["interval_ms"]) == ("binary", 100)
    assert r["without_trades"] == 0 and r["slow_consumers"] == 0 and r["closed"] == 0
    assert 3.5 <= r["deliveries_per_trade"] <= 4.5  # every frame decoded, in order
    assert r["delay_p50_ms"] >= 10  # held for the interval (0-100 ms), not sent at once


def test_the_frame_header_count_agrees_with_the_decoder() -> None:
    enc, dec = Encoder("SYM000", 1, 1), Decoder("SYM000", 1, 1)
    ts = 1_700_000_000_000_000_000
    frames = [enc.snapshot()]
    for k in (3, 1, 200):
        trades = [MdTrade("SYM000", ts + i, i, 10_000 + i % 3, 1, 1 + i % 2) for i in range(k)]
        frames.append(enc.encode(trades))
    for frame in frames:
        prefixed = b"\x81\x01" + frame  # varint channel id 129, as the server sends it
        assert frame_events(prefixed, 2) == len(dec.decode(frame))


def test_client_frames_are_masked() -> None:
    f = client_frame(1, b"hello")
    assert f[0] == 0x81 and f[1] == 0x80 | 5
    mask = f[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(f[6:])) == b"hello"

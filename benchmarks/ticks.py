"""Small ticks benchmark: bytes per trade of the binary market-data encoding
(``mercato.marketdata.codec``) on a real recording, against JSON, and its speed.

Replays the 9,757 ``@trade`` messages of Binance's BTCUSDT recording
(``tests/data/binance/btcusdt_20240808.gz``) as one trade stream (tick 0.01 and lot 0.00001
at the feed's scale 8; the taker sells when ``m``, the buyer is the maker) and counts the
bytes of each message a subscriber would receive:

* small ticks, one trade per frame, and one frame per 100 ms of trade time (the trades whose
  ``T`` falls in the same aligned 100 ms window; empty windows send nothing); the first
  frame is the only key frame;
* Binance's JSON: the ``data`` object of each message exactly as received, and the whole
  combined-stream message (``{"stream":..,"data":..}``);
* Mercato's WebSocket JSON for a trade (``{"channel":"trades:BTCUSDT","seq":N,"trade":..}``);

each also with permessage-deflate (RFC 7692: raw deflate, zlib level 6, one compressor with
context takeover across the messages, ``Z_SYNC_FLUSH`` and the trailing 00 00 ff ff
stripped). Every frame is decoded back and checked equal to the trades. Encode and decode
speeds (events per second) are medians over ``--runs`` runs. Prints a table, then one JSON
line: {"bench": "ticks", "trades": .., "bytes_per_trade": {..}, "encode_events_per_s": {..},
"decode_events_per_s": {..}, "target_bytes_per_trade": 8, "target_met": {..}}

Usage: python benchmarks/ticks.py [--runs 5] [--file PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import statistics
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

import msgspec

from mercato.domain.instrument import format_decimal, parse_decimal
from mercato.marketdata.codec import Decoder, Encoder, TickEvent
from mercato.marketdata.events import BUY, SELL, MdTrade

RECORDING = Path(__file__).resolve().parents[1] / "tests/data/binance/btcusdt_20240808.gz"
SYMBOL = "BTCUSDT"
SCALE = 8  # the feed's decimals: prices and quantities are ints at 10**8
TICK = 10**6  # 0.01
LOT = 10**3  # 0.00001
WINDOW_NS = 100_000_000
TARGET = 8


class _BinanceTrade(msgspec.Struct):
    t: int
    p: str
    q: str
    T: int
    m: bool


class _Message(msgspec.Struct):
    stream: str
    data: msgspec.Raw


def load_trades(path: Path = RECORDING) -> tuple[list[MdTrade], list[bytes], list[bytes]]:
    """The recording's trades, with each one's ``data`` object and whole message as
    received (bytes)."""
    trades: list[MdTrade] = []
    datas: list[bytes] = []
    messages: list[bytes] = []
    with gzip.open(path, "rb") as f:
        for line in f:
            _, _, raw = line.rstrip(b"\n").partition(b" ")
            if not raw.startswith(b'{"stream":"btcusdt@trade"'):
                continue
            msg = msgspec.json.decode(raw, type=_Message)
            d = msgspec.json.decode(msg.data, type=_BinanceTrade)
            price, qty = parse_decimal(d.p, SCALE), parse_decimal(d.q, SCALE)
            side = SELL if d.m else BUY
            trades.append(MdTrade(SYMBOL, d.T * 1_000_000, d.t, price, qty, side))
            datas.append(bytes(msg.data))
            messages.append(raw)
    return trades, datas, messages


def mercato_json(trades: Sequence[MdTrade]) -> list[bytes]:
    """Each trade as Mercato's WebSocket sends it on ``trades:SYMBOL``."""
    out = []
    for seq, t in enumerate(trades, 1):
        body = msgspec.json.encode(
            {
                "trade": {
                    "trade_id": str(t.trade_id),
                    "symbol": t.symbol,
                    "price": format_decimal(t.price, SCALE),
                    "qty": format_decimal(t.qty, SCALE),
                    "side": "buy" if t.side == BUY else "sell",
                    "ts": t.ts,
                }
            }
        )
        out.append(b'{"channel":"trades:%s","seq":%d,' % (t.symbol.encode(), seq) + body[1:])
    return out


def batches(trades: Sequence[MdTrade], window_ns: int) -> list[list[MdTrade]]:
    """The trades grouped by aligned windows of trade time (``window_ns`` 0: one each)."""
    if not window_ns:
        return [[t] for t in trades]
    out: list[list[MdTrade]] = []
    window = None
    for t in trades:
        w = t.ts // window_ns
        if w != window:
            out.append([])
            window = w
        out[-1].append(t)
    return out


def encode_all(frames: Iterable[Sequence[TickEvent]]) -> list[bytes]:
    enc = Encoder(SYMBOL, TICK, LOT)
    return [enc.encode(f) for f in frames]


def decode_all(frames: Iterable[bytes]) -> list[TickEvent]:
    dec = Decoder(SYMBOL, TICK, LOT)
    out: list[TickEvent] = []
    for f in frames:
        out.extend(dec.decode(f))
    return out


def deflated(messages: Iterable[bytes]) -> int:
    """Total bytes of the messages under permessage-deflate with context takeover."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    total = 0
    for m in messages:
        out = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        total += len(out) - 4
    return total


def median_rate(n: int, runs: int, work: Callable[[], object]) -> float:
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        work()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--file", type=Path, default=RECORDING)
    args = ap.parse_args()
    trades, datas, messages = load_trades(args.file)
    n = len(trades)
    variants = {"per_trade": batches(trades, 0), "per_100ms": batches(trades, WINDOW_NS)}
    sizes: dict[str, float] = {}
    encode_rates: dict[str, float] = {}
    decode_rates: dict[str, float] = {}
    frame_counts: dict[str, int] = {}
    for name, groups in variants.items():
        frames = encode_all(groups)
        assert decode_all(frames) == trades, f"{name}: round trip differs"
        frame_counts[name] = len(frames)
        sizes[f"binary_{name}"] = sum(map(len, frames)) / n
        sizes[f"binary_{name}_deflate"] = deflated(frames) / n
        encode_rates[name] = median_rate(n, args.runs, partial(encode_all, groups))
        decode_rates[name] = median_rate(n, args.runs, partial(decode_all, frames))
    ours = mercato_json(trades)
    for name, msgs in (
        ("binance_json_data", datas),
        ("binance_json_message", messages),
        ("mercato_ws_json", ours),
    ):
        sizes[name] = sum(map(len, msgs)) / n
        sizes[f"{name}_deflate"] = deflated(msgs) / n
    print(f"{n} trades over {(trades[-1].ts - trades[0].ts) / 1e9:.0f} s of trade time; frames:")
    print(f"  one per trade: {frame_counts['per_trade']}, per 100 ms: {frame_counts['per_100ms']}")
    print(f"{'encoding':<34}{'bytes/trade':>12}")
    for name, v in sizes.items():
        print(f"{name:<34}{v:>12.2f}")
    for name in variants:
        print(
            f"{name}: encode {encode_rates[name]:,.0f} events/s,"
            f" decode {decode_rates[name]:,.0f} events/s (median of {args.runs})"
        )
    result = {
        "bench": "ticks",
        "trades": n,
        "frames": frame_counts,
        "bytes_per_trade": {k: round(v, 2) for k, v in sizes.items()},
        "encode_events_per_s": {k: round(v) for k, v in encode_rates.items()},
        "decode_events_per_s": {k: round(v) for k, v in decode_rates.items()},
        "target_bytes_per_trade": TARGET,
        "target_met": {k: sizes[f"binary_{k}"] <= TARGET for k in variants},
        "python": platform.python_version(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

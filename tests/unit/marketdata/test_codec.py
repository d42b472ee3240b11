"""Small ticks (``mercato.marketdata.codec``): lossless round trips of any event stream, key
frames and resync, gap detection, robustness to garbage, and the spec's worked example."""

from __future__ import annotations

import contextlib
import random
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mercato.client.ticks import CodecError, Decoder, GapError
from mercato.marketdata.bars import Bar
from mercato.marketdata.codec import Encoder, TickEvent
from mercato.marketdata.events import (
    BUY,
    SELL,
    MdClear,
    MdIndicative,
    MdLevel,
    MdOrder,
    MdQuote,
    MdTrade,
)

ROOT = Path(__file__).resolve().parents[3]
SYM = "BTCUSDT"
TICK, LOT = 10**6, 10**3  # BTCUSDT at scale 8: 0.01 and 0.00001
I64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def streams(draw: st.DrawFn) -> tuple[int, int, list[list[TickEvent]]]:
    """A tick and lot size and frames of events of every kind: mostly near values on the
    grid (as a feed sends), some anywhere in the signed 64-bit range, off the grid, zero."""
    tick = draw(st.sampled_from([1, 7, 100, TICK]) | st.integers(1, 2**40))
    lot = draw(st.sampled_from([1, 3, LOT]) | st.integers(1, 2**40))
    base = draw(I64)

    def clamp(v: int) -> int:
        return max(-(2**63), min(v, 2**63 - 1))

    def price() -> int:
        return clamp(draw(st.integers(-50, 50).map(lambda k: (base // tick + k) * tick) | I64))

    def qty() -> int:
        return clamp(draw(st.integers(0, 1000).map(lambda k: k * lot) | I64))

    ts = draw(I64)
    sides = st.sampled_from([0, BUY, SELL]) | I64
    frames: list[list[TickEvent]] = []
    for _ in range(draw(st.integers(1, 4))):
        frame: list[TickEvent] = []
        for _ in range(draw(st.integers(0, 6))):
            step = draw(st.sampled_from([0, 1, 1000, 10**6, 10**9]))
            ts = draw(st.just(ts + draw(st.integers(0, 5)) * step) | I64)
            ts = clamp(ts)
            kind = draw(st.integers(0, 6))
            e: TickEvent
            if kind == 0:
                e = MdTrade(SYM, ts, draw(I64), price(), qty(), draw(sides))
            elif kind == 1:
                e = MdLevel(SYM, ts, draw(sides), price(), qty())
            elif kind == 2:
                e = MdQuote(SYM, ts, price(), qty(), price(), qty())
            elif kind == 3:
                e = MdOrder(SYM, ts, draw(I64), draw(sides), price(), qty())
            elif kind == 4:
                e = MdClear(SYM, ts)
            elif kind == 5:
                e = Bar(SYM, ts, draw(I64), price(), price(), price(), price(), qty(), draw(I64))
            else:
                e = MdIndicative(SYM, ts, price(), qty(), qty(), draw(sides))
            frame.append(e)
        frames.append(frame)
    return tick, lot, frames


@settings(max_examples=300)
@given(streams(), st.integers(0, 3))
def test_any_stream_round_trips(case: tuple[int, int, list[list[TickEvent]]], every: int) -> None:
    tick, lot, frames = case
    enc = Encoder(SYM, tick, lot, key_interval=every)
    dec = Decoder(SYM, tick, lot)
    for frame in frames:
        assert dec.decode(enc.encode(frame)) == frame


@settings(max_examples=100)
@given(streams())
def test_a_subscriber_joining_at_a_snapshot_decodes_the_rest(
    case: tuple[int, int, list[list[TickEvent]]],
) -> None:
    tick, lot, frames = case
    enc = Encoder(SYM, tick, lot)
    wire = [enc.encode(f) for f in frames[:-1]]
    late = Decoder(SYM, tick, lot)
    late.decode(enc.snapshot())
    assert late.decode(enc.encode(frames[-1])) == frames[-1]
    assert len(wire) == len(frames) - 1


def trades(n: int, first_ts: int = 1_723_161_255_342_000_000) -> list[MdTrade]:
    return [
        MdTrade(SYM, first_ts + i * 1_000_000, 100 + i, (61_837_63 + i % 3) * TICK, 2 * LOT, BUY)
        for i in range(n)
    ]


def test_a_gap_raises_and_decoding_resumes_at_the_next_key_frame() -> None:
    enc, dec = Encoder(SYM, TICK, LOT), Decoder(SYM, TICK, LOT)
    t = trades(5)
    f1, f2, f3 = enc.encode(t[:1]), enc.encode(t[1:2]), enc.encode(t[2:3])
    f4, f5 = enc.encode(t[3:4], key=True), enc.encode(t[4:])
    assert dec.decode(f1) == t[:1]
    with pytest.raises(GapError) as gap:
        dec.decode(f3)
    assert (gap.value.expected, gap.value.got) == (2, 3)
    assert not dec.synced
    with pytest.raises(GapError):
        dec.decode(f2)  # too late: the decoder waits for a key frame now
    assert dec.decode(f4) == t[3:4] and dec.decode(f5) == t[4:]
    assert dec.seq == 5


def test_a_key_frame_that_jumps_counts_the_skipped_frames() -> None:
    enc, dec = Encoder(SYM, TICK, LOT, key_interval=2), Decoder(SYM, TICK, LOT)
    f = [enc.encode([t]) for t in trades(5)]
    assert [x[0] & 1 for x in f] == [1, 0, 1, 0, 1]
    dec.decode(f[0])
    assert dec.decode(f[4]) == trades(5)[4:] and dec.skipped == 3


def test_a_new_decoder_needs_a_key_frame() -> None:
    enc = Encoder(SYM, TICK, LOT)
    enc.encode(trades(1))
    with pytest.raises(GapError):
        Decoder(SYM, TICK, LOT).decode(enc.encode(trades(1)))


def test_the_time_unit_is_the_coarsest_that_loses_nothing() -> None:
    enc = Encoder(SYM, TICK, LOT)
    t0 = 1_723_161_255_000_000_000
    units = []
    for step in (10**9, 10**6, 1000, 1):
        frame = enc.encode([MdClear(SYM, t0), MdClear(SYM, t0 + step)])
        units.append((frame[0] >> 1) & 3)
        t0 += step
    assert units == [3, 2, 1, 0]


def test_the_encoder_refuses_other_symbols_and_out_of_range_values_and_changes_nothing() -> None:
    enc, dec = Encoder(SYM, TICK, LOT), Decoder(SYM, TICK, LOT)
    with pytest.raises(ValueError):
        enc.encode([MdClear("ETHUSDT", 1)])
    with pytest.raises(ValueError):
        enc.encode([MdTrade(SYM, 1, 1, 2**63, 1, BUY)])
    assert enc.seq == 0
    assert dec.decode(enc.encode(trades(2))) == trades(2)


def test_the_recording_round_trips_in_small_frames() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from ticks import batches, decode_all, encode_all, load_trades

    recorded, _, _ = load_trades()
    assert len(recorded) == 9757
    frames = encode_all(batches(recorded, 100_000_000))
    assert decode_all(frames) == recorded
    assert sum(map(len, frames)) / len(recorded) <= 8


def test_garbage_raises_only_codec_errors() -> None:
    rng = random.Random(20240808)
    enc = Encoder(SYM, TICK, LOT)
    good = [enc.encode(trades(3)), enc.encode([MdQuote(SYM, 5, 1, 2, 3, 4), MdClear(SYM, 6)])]
    bar = Bar(SYM, 7, 60, 1, 2, 0, 1, 5, 3)
    good += [enc.encode([MdLevel(SYM, 7, 9, 5, 0), bar, MdOrder(SYM, 8, 1, 1, 2, 3)])]
    for i in range(4000):
        if i % 2:
            data = bytearray(rng.randrange(256) for _ in range(rng.randrange(40)))
        else:  # a real frame, cut short or with bytes flipped
            data = bytearray(good[i % 3][: rng.randrange(1, 60)])
            for _ in range(rng.randrange(3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        dec = Decoder(SYM, TICK, LOT)
        if i % 4 == 0:
            dec.decode(Encoder(SYM, TICK, LOT).encode([]))
        with contextlib.suppress(CodecError):  # and nothing else
            dec.decode(bytes(data))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "truncated"),
        (b"\x00\x01\x00", "not a small-ticks"),
        (b"\xb1\x01\x00\x00\x00\x00\x00\x05", "5 events announced"),
        (b"\xb1\x01\x00\x00\x00\x00\x00\x00\x00", "after the last event"),
        (b"\xb1" + b"\xff" * 11, "longer than 10 bytes"),
        (b"\xb1\x81\x00", "overlong"),
        (b"\xb1\x01\x00\x00\x00\x00\x00\x01\xf0", "unknown event kind"),
        (b"\xb1\x01\x00\x00\x00\x00\x00\x01\x81", "reserved bit"),
    ],
)
def test_malformed_frames_say_what_is_wrong(frame: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        Decoder(SYM, TICK, LOT).decode(frame)


DOC_EXAMPLE: list[list[TickEvent]] = [
    [
        MdTrade(SYM, 1_723_161_255_342_000_000, 3_735_683_259, 6_183_763_000_000, 2_000_000, SELL),
        MdTrade(SYM, 1_723_161_255_617_000_000, 3_735_683_260, 6_183_763_000_000, 4_800_000, SELL),
        MdTrade(SYM, 1_723_161_255_617_000_000, 3_735_683_261, 6_183_764_000_000, 9_000, BUY),
    ],
    [
        MdQuote(
            SYM, 1_723_161_255_618_000_000, 6_183_763_000_000, 378_826_000,
            6_183_764_000_000, 154_698_000,
        ),
        MdTrade(SYM, 1_723_161_255_619_500_000, 3_735_683_262, 6_183_763_500_000, 1, SELL),
    ],
]  # fmt: skip


def test_the_worked_example_in_the_spec_is_what_the_codec_does() -> None:
    text = (ROOT / "docs" / "ticks.md").read_text()
    blocks = re.findall(r"```hex\n(.*?)```", text, re.S)
    frames = [bytes.fromhex(re.sub(r"#.*", "", b)) for b in blocks]
    enc, dec = Encoder(SYM, TICK, LOT), Decoder(SYM, TICK, LOT)
    assert frames == [enc.encode(events) for events in DOC_EXAMPLE]
    assert [dec.decode(f) for f in frames] == DOC_EXAMPLE


def test_an_indicative_is_a_price_two_quantities_and_its_surplus_side() -> None:
    """Kind 5 (``docs/ticks.md``): the surplus side in the tag's side bits, then the price
    delta in ticks, the volume and the surplus in lots; all 0 (no indicative) as well."""
    ts = 1_723_161_255_342_000_000
    events: list[TickEvent] = [
        MdIndicative(SYM, ts, 6_183_763_000_000, 2_000_000, 5_000, SELL),
        MdIndicative(SYM, ts, 0, 0, 0, 0),
    ]
    frame = Encoder(SYM, TICK, LOT).encode(events)
    assert frame == bytes.fromhex(
        "b5 01 00 00 00 00 00 02"  # key frame in ms, seq 1, bases 0, two events
        " a4 dc f6 d0 c6 a6 64"  # kind 5, side 2 (sell); ts delta (as in the worked example)
        " a6 ed f2 05 a0 1f 0a"  # price +6183763 ticks, volume 2000 lots, surplus 5 lots
        " b0 a5 ed f2 05 00 00"  # kind 5, same ts, no side; price -6183763 ticks, 0, 0
    )
    assert Decoder(SYM, TICK, LOT).decode(frame) == events


def test_a_copied_encoder_goes_on_alone_from_the_same_state() -> None:
    enc = Encoder("X", 1, 1)
    ts = 1_700_000_000_000_000_000
    enc.encode([MdTrade("X", ts, 1, 100, 2, 1)])
    twin = enc.copy()
    later = [MdTrade("X", ts + 5, 2, 101, 1, 2)]
    assert twin.encode(later) == enc.encode(later)  # the same deltas from the same state
    key = twin.copy().encode(later, key=True)  # a key frame of what came after
    enc.encode([MdTrade("X", ts + 9, 3, 99, 4, 1)])  # the original moves on alone
    assert twin.encode(later, key=True) == key
    dec = Decoder("X", 1, 1)
    assert dec.decode(key) == later

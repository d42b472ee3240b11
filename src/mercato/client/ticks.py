"""Decoding Mercato's small-ticks market-data frames (the format: ``docs/ticks.md``).

::

    from mercato.client.ticks import Decoder, GapError

    dec = Decoder("BTCUSDT", tick_size=10**6, lot_size=10**3)  # ints at the instrument scale
    for frame in frames:
        try:
            events = dec.decode(frame)
        except GapError:
            ...  # frames were lost: ask for a snapshot, decode again from the next key frame
"""

from mercato.marketdata.bars import Bar
from mercato.marketdata.codec import CodecError, Decoder, GapError, TickEvent, split_channel
from mercato.marketdata.events import MdClear, MdIndicative, MdLevel, MdOrder, MdQuote, MdTrade

__all__ = [
    "Bar",
    "CodecError",
    "Decoder",
    "GapError",
    "MdClear",
    "MdIndicative",
    "MdLevel",
    "MdOrder",
    "MdQuote",
    "MdTrade",
    "TickEvent",
    "split_channel",
]

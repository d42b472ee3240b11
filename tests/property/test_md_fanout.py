"""Property: whatever a subscriber's pace, what it is sent rebuilds the market-data
service's book exactly, and its sequence numbers never show a gap it cannot explain.

A random stream of level changes is published; between publications the subscriber's
writer sends a random number of its queued entries (0: it fell behind). At the end it
drains the rest. Applying what it received — snapshots replace the book, updates set
levels — must give the service's book, and every update must follow the seq of what
was applied before it (snapshots may jump: that is how a laggard catches up)."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from mercato.api.outbox import Conn
from mercato.marketdata.events import BUY, SELL, MdLevel
from mercato.marketdata.market import Message
from mercato.services.marketdata import MarketData

J = msgspec.json.Decoder()
NAME = "book:EXT"

changes = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.sampled_from([BUY, SELL]), st.integers(90, 110), st.integers(0, 5)),
            min_size=1,
            max_size=4,
        ),  # one publication: a few level changes
        st.integers(0, 3),  # entries the writer sends after it
    ),
    max_size=120,
)


def _apply(book: dict[tuple[str, str], str], msg: dict[str, object]) -> None:
    if msg["type"] == "snapshot":
        book.clear()
    for side in ("bids", "asks"):
        for price, qty in msg[side]:  # type: ignore[attr-defined]
            if qty == "0":
                book.pop((side, price), None)
            else:
                book[(side, price)] = qty


@given(changes)
def test_a_subscriber_at_any_pace_rebuilds_the_book(stream: list) -> None:  # type: ignore[type-arg]
    md = MarketData()
    md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=0, qty_scale=0)
    conn = Conn(None, 10_000)
    conn.channels.add(NAME)
    published: list[Message] = []
    md.on_publish(published.extend)
    md.channel(NAME)
    received = [J.decode(f) for f in conn.snapshot(NAME, md)]

    def send(n: int) -> None:
        for _ in range(n):
            entry = conn.outbox.take()
            if entry is None:
                return
            received.extend(J.decode(f) for f in conn.frames(entry, md))

    for ts, (levels, drained) in enumerate(stream):
        md.publish([MdLevel("EXT", ts, side, price, qty) for side, price, qty in levels])
        for msg in published:
            conn.deliver(msg)
        published.clear()
        send(drained)
    send(10_000)

    book: dict[tuple[str, str], str] = {}
    seq = None
    for msg in received:
        if msg["type"] == "update":
            assert seq is not None and msg["seq"] == seq + 1, (seq, msg["seq"])
        seq = msg["seq"]
        _apply(book, msg)
    bids, asks = md.market("EXT").book.depth(0)
    expected = {("bids", str(p)): str(q) for p, q in bids}
    expected |= {("asks", str(p)): str(q) for p, q in asks}
    assert book == expected
    assert seq == md.channel(NAME).seq

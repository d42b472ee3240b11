"""L2 and L3 books: levels, depth, top of book, order semantics, and a naive model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mercato.marketdata.book import BookSide, LevelBook, OrderBook
from mercato.marketdata.events import BUY, SELL, MdLevel, MdOrder, MdQuote


def order(oid: int, side: int, price: int, qty: int, ts: int = 5) -> MdOrder:
    return MdOrder("X", ts, oid, side, price, qty)


def test_side_keeps_levels_sorted_best_first() -> None:
    bids, asks = BookSide(BUY), BookSide(SELL)
    for p in (100, 102, 99, 101):
        bids.set(p, p)
        asks.set(p, p)
    assert bids.depth(0) == [(102, 102), (101, 101), (100, 100), (99, 99)]
    assert asks.depth(2) == [(99, 99), (100, 100)]
    assert bids.best() == (102, 102) and asks.best() == (99, 99)
    assert bids.set(101, 0) and not bids.set(101, 0) and not bids.set(100, 100)
    assert bids.depth(0) == [(102, 102), (100, 100), (99, 99)]
    bids.set(102, 0)  # the best: popped from the end
    assert bids.best() == (100, 100) and bids.get(102) == 0 and len(bids) == 2
    bids.check()
    asks.check()
    assert BookSide(SELL).best() == (0, 0) and BookSide(BUY).depth(5) == []


def test_level_book_top_depth_and_crossing() -> None:
    book = LevelBook("X")
    assert book.quote(7) == MdQuote("X", 7, 0, 0, 0, 0)
    assert book.apply(MdLevel("X", 1, BUY, 100, 5))
    assert book.apply(MdLevel("X", 1, SELL, 103, 2))
    assert book.apply(MdLevel("X", 1, SELL, 102, 4))
    assert not book.apply(MdLevel("X", 1, SELL, 101, 0))  # removing an absent level: nothing
    assert book.quote(9) == MdQuote("X", 9, 100, 5, 102, 4)
    assert book.depth(5) == ([(100, 5)], [(102, 4), (103, 2)])
    assert not book.crossed()
    book.apply(MdLevel("X", 2, BUY, 102, 1))  # locked: taken as stated, and reported
    assert book.crossed()
    assert list(book.levels(3)) == [
        MdLevel("X", 3, BUY, 102, 1),
        MdLevel("X", 3, BUY, 100, 5),
        MdLevel("X", 3, SELL, 102, 4),
        MdLevel("X", 3, SELL, 103, 2),
    ]
    book.check()
    book.clear()
    assert book.depth(1) == ([], [])


def test_order_book_add_partial_execute_delete() -> None:
    book = OrderBook("X")
    assert book.apply(order(1, BUY, 100, 10)) == [MdLevel("X", 5, BUY, 100, 10)]
    assert book.apply(order(2, BUY, 100, 5, ts=6)) == [MdLevel("X", 6, BUY, 100, 15)]
    assert book.apply(order(3, SELL, 105, 7)) == [MdLevel("X", 5, SELL, 105, 7)]
    assert book.apply(order(1, BUY, 100, 4)) == [MdLevel("X", 5, BUY, 100, 9)]  # partial
    assert book.apply(order(1, BUY, 100, 4)) == []  # no change
    assert book.apply(order(2, BUY, 100, 0)) == [MdLevel("X", 5, BUY, 100, 4)]  # gone
    assert book.apply(order(2, BUY, 100, 0)) == []  # delete of an unknown id
    assert book.order(1) == (BUY, 100, 4) and book.order(2) is None
    assert book.apply(order(3, SELL, 105, 0)) == [MdLevel("X", 5, SELL, 105, 0)]
    assert book.depth(3) == ([(100, 4)], [])
    assert book.quote(1) == MdQuote("X", 1, 100, 4, 0, 0)
    book.check()


def test_order_book_move_and_increase() -> None:
    book = OrderBook("X")
    book.apply(order(1, SELL, 105, 3))
    book.apply(order(2, SELL, 105, 2))
    assert book.apply(order(1, SELL, 104, 3)) == [
        MdLevel("X", 5, SELL, 105, 2),
        MdLevel("X", 5, SELL, 104, 3),
    ]
    assert book.apply(order(2, SELL, 105, 9)) == [MdLevel("X", 5, SELL, 105, 9)]
    assert book.best_ask() == (104, 3)
    book.check()
    book.clear()
    assert book.orders == {} and book.depth(0) == ([], [])


_orders = st.lists(
    st.tuples(
        st.integers(1, 12),  # order id
        st.sampled_from([BUY, SELL]),
        st.integers(95, 105),  # price: crossed books included
        st.integers(0, 20),  # qty after
    ),
    max_size=80,
)


@given(_orders, st.integers(0, 12))
def test_order_book_matches_a_naive_model(changes: list[tuple[int, int, int, int]], n: int) -> None:
    """Levels are the sums of the orders; the emitted MdLevels rebuild the same L2 book."""
    book, l2 = OrderBook("X"), LevelBook("X")
    model: dict[int, tuple[int, int, int]] = {}
    for oid, side, price, qty in changes:
        for level in book.apply(order(oid, side, price, qty)):
            l2.apply(level)
        if qty:
            model[oid] = (side, price, qty)
        else:
            model.pop(oid, None)
        book.check()
    sums: dict[tuple[int, int], int] = {}
    for side, price, qty in model.values():
        sums[side, price] = sums.get((side, price), 0) + qty
    bids = sorted(((p, q) for (s, p), q in sums.items() if s == BUY), reverse=True)
    asks = sorted((p, q) for (s, p), q in sums.items() if s == SELL)
    want = (bids[:n], asks[:n]) if n else (bids, asks)
    assert book.depth(n) == want
    assert l2.depth(n) == want
    assert book.quote(0) == l2.quote(0)
    assert book.crossed() == bool(bids and asks and bids[0][0] >= asks[0][0])

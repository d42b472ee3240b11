"""The exchange-core command mix, generated reproducibly against a shadow engine.

Per book about 1,000 resting orders over about 750 price levels; commands 82% replace,
9% GTC limit, 3% IOC, 6% cancel. The shadow engine tells the generator which orders are
still live, so every replace and cancel names a real order (as a trading client would).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    Command,
    NewOrder,
    OrderCancelled,
    OrderType,
    ReplaceOrder,
    Side,
    TimeInForce,
    Trade,
)
from mercato.engine import Engine

MID = 100_000  # in ticks of 0.01: 1,000.00
HALF_SPREAD_LEVELS = 800  # 1,000 orders over 2 x 800 candidate prices occupy ~750 levels


@dataclass
class Workload:
    setup: list[Command]  # instruments and the initial ~1,000 resting orders per book
    commands: list[Command]  # the timed mix


def generate(n: int, books: int = 1, seed: int = 1, target_orders: int = 1000) -> Workload:
    rng = random.Random(seed)
    shadow = Engine()
    symbols = [f"S{i:03d}" for i in range(books)]
    live: list[dict[int, tuple[int, int, int]]] = [{} for _ in symbols]  # id -> side, px, qty
    next_id = 1
    ts = 0

    def apply(cmd: Command) -> None:
        for ev in shadow.process(cmd):
            if isinstance(ev, Trade):
                book = live[symbols.index(ev.symbol)]
                oid = ev.maker_order_id
                if oid in book:
                    side, px, _ = book[oid]
                    if ev.maker_remaining == 0:
                        del book[oid]
                    else:
                        book[oid] = (side, px, ev.maker_remaining)
            elif isinstance(ev, OrderCancelled):
                for book in live:
                    book.pop(ev.order_id, None)

    def gtc(b: int, tif: int = TimeInForce.GTC) -> NewOrder:
        nonlocal next_id
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        offset = rng.randint(1, HALF_SPREAD_LEVELS)
        if tif == TimeInForce.IOC:  # aggressive: crosses into the other side
            price = MID + offset // 8 if side == Side.BUY else MID - offset // 8
        else:
            price = MID - offset if side == Side.BUY else MID + offset
        qty = rng.randint(1, 100)
        oid = next_id
        next_id += 1
        return NewOrder(
            ts=ts,
            order_id=oid,
            account=rng.randint(1, 2000),
            symbol=symbols[b],
            side=side,
            type=OrderType.LIMIT,
            tif=tif,
            price=price,
            qty=qty,
        )

    setup: list[Command] = [AddInstrument(symbol=s) for s in symbols]
    for c in setup:
        apply(c)
    for b in range(books):
        while len(live[b]) < target_orders:
            c = gtc(b)
            setup.append(c)
            apply(c)
            if c.order_id in shadow.orders:
                live[b][c.order_id] = (c.side, c.price, c.qty)

    commands: list[Command] = []
    for _ in range(n):
        ts += 1_000
        b = rng.randrange(books)
        book = live[b]
        r = rng.random()
        if not book:
            r = 0.85
        cmd: Command
        if r < 0.82:
            oid = _pick(rng, book)
            _, px, qty = book[oid]
            step = rng.randint(-8, 8)
            new_px = max(1, px + step)
            new_qty = qty if rng.random() < 0.7 else rng.randint(1, 100)
            cmd = ReplaceOrder(ts=ts, order_id=oid, symbol=symbols[b], price=new_px, qty=new_qty)
        elif r < 0.91:
            # GTC, or a cancel instead when the book has grown past its target size
            if len(book) > target_orders * 1.05:
                cmd = CancelOrder(ts=ts, order_id=_pick(rng, book), symbol=symbols[b])
            else:
                cmd = gtc(b)
        elif r < 0.94:
            cmd = gtc(b, TimeInForce.IOC)
        elif len(book) < target_orders * 0.95:
            cmd = gtc(b)  # a GTC instead of a cancel while the book is below its target
        else:
            oid = _pick(rng, book)
            cmd = CancelOrder(ts=ts, order_id=oid, symbol=symbols[b])
        commands.append(cmd)
        apply(cmd)
        if isinstance(cmd, NewOrder) and cmd.order_id in shadow.orders:
            book[cmd.order_id] = (cmd.side, cmd.price, shadow.orders[cmd.order_id].remaining)
        elif isinstance(cmd, ReplaceOrder) and cmd.order_id in book:
            o = shadow.orders.get(cmd.order_id)
            if o is None:
                del book[cmd.order_id]
            else:
                book[cmd.order_id] = (o.side, o.price, o.remaining)
    return Workload(setup, commands)


_keys_cache: dict[int, tuple[int, list[int]]] = {}


def _pick(rng: random.Random, book: dict[int, tuple[int, int, int]]) -> int:
    """A uniformly random live order id (rebuilding the key list only when it is stale)."""
    while True:
        version, keys = _keys_cache.get(id(book), (-1, []))
        if version != len(book) or not keys:
            keys = list(book)
            _keys_cache[id(book)] = (len(book), keys)
        oid = keys[rng.randrange(len(keys))]
        if oid in book:
            return oid
        _keys_cache.pop(id(book), None)

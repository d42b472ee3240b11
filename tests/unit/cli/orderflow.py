"""A random but valid order stream in the replay CSV format, for cross-checks and timing.

``python tests/unit/cli/orderflow.py 100000 orders.csv [SEED]`` writes one.
"""

from __future__ import annotations

import csv
import random
import sys
from collections.abc import Iterator

from mercato.sim.replay import Replayer

HEADER = ["seq", "action", "order_id", "account", "symbol", "side", "type", "tif", "price", "qty"]


def order_rows(n: int, seed: int = 1, symbols: int = 4, accounts: int = 50) -> Iterator[list[str]]:
    """``n`` rows (header not included): limits near a drifting mid, some market/IOC/FOK,
    and cancels and replaces of orders that are still live (a shadow ``Replayer`` says
    which)."""
    rng = random.Random(seed)
    shadow = Replayer()
    syms = [f"S{i}" for i in range(symbols)]
    mid = dict.fromkeys(syms, 10_000)
    resting: dict[str, list[tuple[str, int]]] = {s: [] for s in syms}  # (order_id, side sign)

    def pick(sym: str) -> tuple[str, int] | None:
        book = resting[sym]
        while book:
            i = rng.randrange(len(book))
            if book[i][0] in shadow.order_ids:
                return book[i]
            book[i] = book[-1]
            book.pop()
        return None

    for seq in range(1, n + 1):
        sym = syms[rng.randrange(symbols)]
        mid[sym] = max(200, mid[sym] + rng.randint(-1, 1))
        side = "buy" if rng.random() < 0.5 else "sell"
        sign = -1 if side == "buy" else 1
        r = rng.random()
        oid = f"o{seq}"
        acct = f"acct{rng.randrange(accounts)}"
        qty = str(rng.randint(1, 100))
        victim = pick(sym) if r < 0.40 else None
        if victim is not None and (r < 0.05 or len(resting[sym]) > 1200):
            row = [str(seq), "cancel", victim[0], "", sym, "", "", "", "", ""]
        elif victim is not None:
            px = mid[sym] + victim[1] * rng.randint(0, 15)
            row = [str(seq), "replace", victim[0], "", sym, "", "", "", _px(px), qty]
        elif r < 0.46:
            row = [str(seq), "new", oid, acct, sym, side, "market", "ioc", "", qty]
        elif r < 0.55:
            px = mid[sym] - sign * rng.randint(0, 3)
            tif = "ioc" if r < 0.51 else "fok"
            row = [str(seq), "new", oid, acct, sym, side, "limit", tif, _px(px), qty]
        else:
            px = mid[sym] + sign * rng.randint(1, 15)
            resting[sym].append((oid, sign))
            row = [str(seq), "new", oid, acct, sym, side, "limit", "gtc", _px(px), qty]
        shadow.run((row,), int, _ignore)
        yield row


def _ignore(rows: object) -> None:
    pass


def _px(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def write_orders(path: str, n: int, seed: int = 1) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(order_rows(n, seed))


if __name__ == "__main__":
    write_orders(sys.argv[2], int(sys.argv[1]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)

"""What reading an order's body costs at the edge (``api/base.py``, ``api/schemas.py``),
in process, per body: msgspec's decode into the order struct as before (no check of its
strings), with the strings checked (``Body.__post_init__``), and the duplicate-key check
on its fast path (colons counted against the decoded keys) and its slow path (a colon
inside a string: the stdlib's pair-by-pair reading).

    .venv/bin/python benchmarks/body_decode.py [--n 200000]

Prints one JSON line: microseconds per body for each step.
"""

from __future__ import annotations

import argparse
import json
import platform
import timeit
from typing import Literal

import msgspec

from mercato.api import schemas as s
from mercato.api.base import check_json_text

ORDER = (
    b'{"symbol":"XYZ","side":"buy","type":"limit","qty":"10","price":"100.00",'
    b'"tif":"day","client_order_id":"bot-1-000042"}'
)
WITH_COLON = ORDER.replace(b"bot-1-000042", b"bot:1:000042")


class PlainOrder(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``OrderRequest`` as it was: the same fields, no pattern, no string check."""

    symbol: str
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop", "stop_limit"]
    qty: str
    price: str | None = None
    stop_price: str | None = None
    tif: Literal["gtc", "day", "ioc", "fok"] = "gtc"
    post_only: bool = False
    client_order_id: str = ""
    trail_amount: str | None = None
    trail_bps: int = 0
    account: int | None = None


def per_call_us(fn: object, n: int) -> float:
    best = min(timeit.repeat(fn, number=n, repeat=15))  # type: ignore[arg-type]
    return round(best / n * 1e6, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    n = parser.parse_args().n
    plain = msgspec.json.Decoder(PlainOrder)
    checked = msgspec.json.Decoder(s.OrderRequest)
    result = {
        "bench": "body_decode",
        "python": platform.python_version(),
        "decode_plain_us": per_call_us(lambda: plain.decode(ORDER), n),
        "decode_checked_us": per_call_us(lambda: checked.decode(ORDER), n),
        "duplicates_fast_us": per_call_us(lambda: check_json_text(ORDER), n),
        "duplicates_slow_us": per_call_us(lambda: check_json_text(WITH_COLON), n),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Replay an order stream from a CSV file through the engine and write every trade.

The file contract (columns, what each action requires, how errors are reported) is in
``docs/cli.md``. The reader streams: it holds one row at a time, the engine's live orders,
and the id of each live order, never the whole file. Trades go to a temporary file next to
the output, renamed over it only when the whole input has been replayed.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, Any, Final

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    Instrument,
    NewOrder,
    OrderCancelled,
    OrderType,
    Rejected,
    ReplaceOrder,
    Side,
    TimeInForce,
    Trade,
)
from mercato.engine import Engine

ORDER_COLUMNS: Final = ("seq", "action", "order_id", "account", "symbol", "side", "type", "tif")
ORDER_COLUMNS_ALL: Final = (*ORDER_COLUMNS, "price", "qty")
TRADE_COLUMNS: Final = ("seq", "symbol", "taker_order_id", "maker_order_id", "price", "qty")

# Every symbol is created on first use with these parameters: tick 0.01, lot 1.
TICK_SIZE: Final = 1
LOT_SIZE: Final = 1
PRICE_SCALE: Final = 2
QTY_SCALE: Final = 0
MAX_INT: Final = 2**63 - 1  # prices and quantities must fit the journal's int64

SIDES: Final = {"buy": int(Side.BUY), "sell": int(Side.SELL)}
TYPES: Final = {"limit": int(OrderType.LIMIT), "market": int(OrderType.MARKET)}
TIFS: Final = {
    "gtc": int(TimeInForce.GTC),
    "ioc": int(TimeInForce.IOC),
    "fok": int(TimeInForce.FOK),
}
LIMIT: Final = int(OrderType.LIMIT)

_PRICE = re.compile(r"(\d+)(?:\.(\d+))?", re.ASCII)
_FLUSH_ROWS: Final = 8192


class ReplayError(Exception):
    """The input is malformed; ``line`` is the 1-based line of the file where it was found."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class ReplayStats:
    rows: int
    trades: int
    rejected: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


@lru_cache(maxsize=65536)
def parse_price(text: str) -> int:
    """``"101.25"`` -> 10125 (cents); raises ``ValueError`` saying what is wrong."""
    m = _PRICE.fullmatch(text)
    if m is None:
        raise ValueError(f"price {text!r} is not a decimal number like 101.25")
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > PRICE_SCALE:
        if frac[PRICE_SCALE:].strip("0"):
            raise ValueError(f"price {text!r} is not on the 0.01 tick")
        frac = frac[:PRICE_SCALE]
    value = int(whole) * 100 + int(frac.ljust(PRICE_SCALE, "0"))
    if value > MAX_INT:
        raise ValueError(f"price {text!r} is too large")
    return value


def parse_qty(text: str) -> int:
    """A quantity is a whole number of lots written with digits only."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"qty {text!r} is not a whole number")
    value = int(text)
    if value > MAX_INT:
        raise ValueError(f"qty {text!r} is too large")
    return value


class Replayer:
    """Turns order rows into engine commands and trades into output rows.

    order_id and account tokens map to ints; an order id's mapping is dropped once the
    order is no longer live, so memory follows the live orders, not the file.
    """

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else Engine()
        self.symbols: set[str] = set()
        self.order_ids: dict[str, int] = {}  # live order token -> engine order id
        self.order_tokens: dict[int, str] = {}  # and back
        self.accounts: dict[str, int] = {}
        self.next_order_id = 1
        self.rows = 0
        self.trades = 0
        self.rejected = 0

    def run(self, rows: Iterable[list[str]], line_of: Any, write: Any) -> None:
        """Replay ``rows``; ``line_of()`` gives the current line, ``write(rows)`` takes output.

        Raises ``ReplayError`` at the first malformed row; the rows before it have been
        applied and their trades written.
        """
        process = self.engine.process
        command = self.command
        live = self.engine.orders
        order_ids = self.order_ids
        order_tokens = self.order_tokens
        out: list[tuple[str, str, str, str, str, int]] = []
        n = rejected = 0
        row: list[str] = []
        try:
            for row in rows:
                cmd = command(row)
                seq = row[0]
                for ev in process(cmd):
                    if type(ev) is Trade:
                        maker = ev.maker_order_id
                        out.append(
                            (
                                seq,
                                ev.symbol,
                                order_tokens[ev.taker_order_id],
                                order_tokens[maker],
                                f"{ev.price // 100}.{ev.price % 100:02d}",
                                ev.qty,
                            )
                        )
                        if ev.maker_remaining == 0:
                            del order_ids[order_tokens.pop(maker)]
                    elif type(ev) is OrderCancelled:
                        token = order_tokens.pop(ev.order_id, None)
                        if token is not None:
                            del order_ids[token]
                    elif type(ev) is Rejected:
                        rejected += 1
                oid = cmd.order_id
                if oid not in live:
                    token = order_tokens.pop(oid, None)
                    if token is not None:
                        del order_ids[token]
                n += 1
                if len(out) >= _FLUSH_ROWS:
                    self.trades += len(out)
                    write(out)
                    out = []
        except ValueError as e:
            message = str(e)
            if any(_has_surrogate(field) for field in row):
                message = "not valid UTF-8"
            raise ReplayError(line_of(), message) from None
        except csv.Error as e:
            raise ReplayError(line_of(), f"bad CSV: {e}") from None
        finally:
            self.rows += n
            self.rejected += rejected
        self.trades += len(out)
        write(out)

    def command(self, row: list[str]) -> NewOrder | CancelOrder | ReplaceOrder:
        """The engine command for one row (creating its symbol first when it is new).

        Raises ``ValueError`` saying what is wrong with a malformed row.
        """
        if len(row) != 10:
            raise ValueError(f"expected 10 fields, found {len(row)}")
        seq, action, token, account, symbol, side, type_, tif, price, qty = row
        if not (seq.isdigit() and seq.isascii()):
            raise ValueError(f"seq {seq!r} is not a non-negative integer")
        if not token:
            raise ValueError("order_id is required")
        if symbol not in self.symbols:
            self._add_symbol(symbol)
        if action == "new":
            if not account:
                raise ValueError("account is required in a new row")
            side_v = SIDES.get(side)
            if side_v is None:
                raise ValueError(f"unknown side {side!r} (buy or sell)")
            type_v = TYPES.get(type_)
            if type_v is None:
                raise ValueError(f"unknown type {type_!r} (limit or market)")
            tif_v = TIFS.get(tif)
            if tif_v is None:
                raise ValueError(f"unknown tif {tif!r} (gtc, ioc or fok)")
            if type_v == LIMIT:
                if not price:
                    raise ValueError("price is required for a limit order")
                price_v = parse_price(price)
            elif price:
                raise ValueError("a market order takes no price")
            else:
                price_v = 0
            if qty.isdigit() and qty.isascii() and len(qty) < 19:
                qty_v = int(qty)
            elif not qty:
                raise ValueError("qty is required in a new row")
            else:
                qty_v = parse_qty(qty)
            oid = self.order_ids.get(token)
            if oid is None:
                if not (token.isascii() and account.isascii()) and (
                    _has_surrogate(token) or _has_surrogate(account)
                ):
                    raise ValueError("not valid UTF-8")
                oid = self.next_order_id
                self.next_order_id = oid + 1
                self.order_ids[token] = oid
                self.order_tokens[oid] = token
            acct = self.accounts.get(account)
            if acct is None:
                acct = self.accounts[account] = len(self.accounts) + 1
            return NewOrder(
                order_id=oid,
                account=acct,
                symbol=symbol,
                side=side_v,
                type=type_v,
                tif=tif_v,
                price=price_v,
                qty=qty_v,
            )
        if action == "cancel":
            _require_empty(
                action, account=account, side=side, type=type_, tif=tif, price=price, qty=qty
            )
            return CancelOrder(order_id=self.order_ids.get(token, 0), symbol=symbol)
        if action == "replace":
            _require_empty(action, account=account, side=side, type=type_, tif=tif)
            if not price:
                raise ValueError("price is required in a replace row")
            if not qty:
                raise ValueError("qty is required in a replace row")
            return ReplaceOrder(
                order_id=self.order_ids.get(token, 0),
                symbol=symbol,
                price=parse_price(price),
                qty=parse_qty(qty),
            )
        raise ValueError(f"unknown action {action!r} (new, cancel or replace)")

    def _add_symbol(self, symbol: str) -> None:
        if not symbol:
            raise ValueError("symbol is required")
        inst = Instrument(
            symbol=symbol,
            tick_size=TICK_SIZE,
            lot_size=LOT_SIZE,
            price_scale=PRICE_SCALE,
            qty_scale=QTY_SCALE,
        )
        problem = inst.validate()
        if problem is not None:
            raise ValueError(f"symbol {symbol!r}: {problem}")
        events = self.engine.process(
            AddInstrument(
                symbol=symbol,
                tick_size=TICK_SIZE,
                lot_size=LOT_SIZE,
                price_scale=PRICE_SCALE,
                qty_scale=QTY_SCALE,
            )
        )
        if any(isinstance(ev, Rejected) for ev in events):
            raise ValueError(f"the engine refused symbol {symbol!r}: {events}")
        self.symbols.add(symbol)


def _has_surrogate(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (read with ``surrogateescape``)."""
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)


def _require_empty(action: str, **fields: str) -> None:
    for name, value in fields.items():
        if value:
            raise ValueError(f"{name} must be empty in a {action} row (found {value!r})")


def replay_stream(orders: IO[str], trades: IO[str], engine: Engine | None = None) -> ReplayStats:
    """Replay the CSV text stream ``orders``; write the trades' CSV to ``trades``."""
    t0 = time.perf_counter()
    reader = csv.reader(orders, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise ReplayError(reader.line_num, f"bad CSV: {e}") from None
    if header is None:
        raise ReplayError(1, "empty file: expected the header " + ",".join(ORDER_COLUMNS_ALL))
    if tuple(header) != ORDER_COLUMNS_ALL:
        raise ReplayError(
            reader.line_num,
            f"header must be {','.join(ORDER_COLUMNS_ALL)} (found {','.join(header)})",
        )
    writer = csv.writer(trades, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    r = Replayer(engine)
    r.run(reader, lambda: reader.line_num, writer.writerows)
    return ReplayStats(r.rows, r.trades, r.rejected, time.perf_counter() - t0)


def replay_file(orders_path: str, trades_path: str) -> ReplayStats:
    """Replay ``orders_path`` into ``trades_path``, which appears only when all went well."""
    directory = os.path.dirname(os.path.abspath(trades_path))
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(trades_path)}.", suffix=".tmp"
    )
    try:
        with (
            open(orders_path, encoding="utf-8-sig", errors="surrogateescape", newline="") as src,
            os.fdopen(fd, "w", encoding="utf-8", newline="", buffering=1 << 20) as dst,
        ):
            stats = replay_stream(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, trades_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return stats


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

"""``GET /v2/account/activities`` and ``/v2/account/activities/{activity_type}``: the
caller's fills (``FILL``) and transfers (``CSD`` cash deposits, ``CSW`` cash
withdrawals, ``JNLS`` an instrument transferred in or out; ``TRANS`` asks for
``CSD`` and ``CSW``), from the order history and the ledger's postings (memory, then the
SQL store).

Alpaca's filters: ``activity_types`` (comma-separated) or ``category``
(``trade_activity``, ``non_trade_activity``), ``date`` (a UTC day) or ``after`` /
``until`` (RFC 3339, exclusive), ``direction`` (``desc`` by default), ``page_size``
(1..100, 100) and ``page_token`` (the ``id`` of the previous page's last activity).
An id is ``YYYYMMDDHHMMSSmmm::UUID`` as Alpaca's, the UUID holding the event seq and
the order id (0: a transfer), so a token says exactly where the page ended. Any other
activity type or parameter is a 422 naming it.

Pages newest first are read from the top down to ``page_size`` per source; an oldest
first page (``asc``) is everything from its start read newest first, at most
``MAX_SCAN`` records per source (more is a 422 asking for ``after`` or ``date``, never
a partial answer).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, Final

from starlette.responses import Response

from mercato.api.alpaca_models import (
    NS,
    TRANSFERS,
    Activity,
    FillActivity,
    State,
    parse_time,
)
from mercato.api.base import ApiError, Ctx, json_response
from mercato.domain.instrument import format_decimal
from mercato.domain.orders import OrderStatus
from mercato.domain.types import Side
from mercato.services.oms_views import FillView
from mercato.services.transfers import Transfer

TYPES: Final = frozenset({"FILL", "CSD", "CSW", "JNLS"})
ALIASES: Final = {"TRANS": {"CSD", "CSW"}}
CATEGORIES: Final = {"trade_activity": {"FILL"}, "non_trade_activity": {"CSD", "CSW", "JNLS"}}
MAX_PAGE: Final = 100
MAX_SCAN: Final = 10_000  # records read at most per source for one answer
_READ: Final = 500
_DAY: Final = 86_400 * 1_000_000_000
Key = tuple[int, int]  # (event seq, order id or 0): the order of activities
_STATUS: Final[dict[int, State]] = {
    OrderStatus.NEW: "new",
    OrderStatus.ACCEPTED: "new",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "canceled",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.REPLACED: "new",
}


def activity_id(ts: int, key: Key) -> str:
    whole, ns = divmod(ts, 1_000_000_000)
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y%m%d%H%M%S")
    return f"{stamp}{ns // 1_000_000:03d}::{uuid.UUID(int=(key[0] << 64) | key[1])}"


def parse_activity_id(token: str) -> Key:
    _, sep, tail = token.partition("::")
    try:
        if not sep:
            raise ValueError
        n = uuid.UUID(tail).int
    except ValueError:
        raise ApiError(422, "invalid_page_token", "page_token is an activity's id") from None
    return n >> 64, n & (2**64 - 1)


class _Query:
    """The request's filters, checked."""

    def __init__(self, c: Ctx) -> None:
        q = c.request.query_params
        path_type = c.request.path_params.get("activity_type")
        types: set[str] = set()
        listed = [path_type] if path_type is not None else []
        if "activity_types" in q:
            if path_type is not None:
                raise ApiError(422, "invalid_query", "activity_types: the path names the type")
            listed += [t.strip() for t in q["activity_types"].split(",") if t.strip()]
        for t in listed:
            if t in ALIASES:
                types |= ALIASES[t]
            elif t in TYPES:
                types.add(t)
            else:
                known = ", ".join(sorted(TYPES | set(ALIASES)))
                raise ApiError(
                    422,
                    "unsupported_activity_type",
                    f"activity type {t[:32]!r}: Mercato has {known}",
                )
        if "category" in q:
            if listed:
                raise ApiError(422, "invalid_query", "category: not with activity types")
            if q["category"] not in CATEGORIES:
                raise ApiError(
                    422, "invalid_query", "category is trade_activity or non_trade_activity"
                )
            types = set(CATEGORIES[q["category"]])
        self.types = types or set(TYPES)
        self.after = parse_time(q["after"], "after") if "after" in q else None
        self.until = parse_time(q["until"], "until") if "until" in q else None
        if "date" in q:
            if self.after is not None or self.until is not None:
                raise ApiError(422, "invalid_query", "date: not with after or until")
            try:
                day = date.fromisoformat(q["date"][:10])
            except ValueError:
                raise ApiError(422, "invalid_time", "date must be YYYY-MM-DD") from None
            start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
            self.after, self.until = start * 1_000_000_000 - 1, start * 1_000_000_000 + _DAY
        self.direction = q.get("direction", "desc")
        if self.direction not in ("asc", "desc"):
            raise ApiError(422, "invalid_direction", "direction is asc or desc")
        size = q.get("page_size", str(MAX_PAGE))
        if not size.isdigit() or not 1 <= int(size) <= MAX_PAGE:
            raise ApiError(422, "invalid_page_size", f"page_size is 1..{MAX_PAGE}")
        self.size = int(size)
        self.token = parse_activity_id(q["page_token"]) if "page_token" in q else None

    def in_time(self, ts: int) -> bool:
        return (self.after is None or ts > self.after) and (self.until is None or ts < self.until)


Item = tuple[Key, int, Any]  # key, ts, the record


async def _scan(
    read: Callable[[int | None], Awaitable[list[Item]]],
    q: _Query,
    want: int | None,
    take: Callable[[Any], bool] = lambda rec: True,
) -> list[Item]:
    """The records ``read`` pages (newest first, each page below a seq) that the query
    and ``take`` take, newest first: the first ``want``, or (None) all of them down to
    the token or ``after``, at most ``MAX_SCAN`` read."""
    desc = q.direction == "desc"
    high = q.token if desc else None
    low = None if desc else q.token
    before = high[0] + 1 if high is not None else None
    out: list[Item] = []
    read_n = 0
    while True:
        page = await read(before)
        for key, ts, rec in page:
            if (high is not None and key >= high) or (q.until is not None and ts >= q.until):
                continue
            if (low is not None and key <= low) or (q.after is not None and ts <= q.after):
                return out
            if not take(rec):
                continue
            out.append((key, ts, rec))
            if want is not None and len(out) >= want:
                return out
        read_n += len(page)
        if len(page) < _READ:
            return out
        if read_n >= MAX_SCAN:
            raise ApiError(
                422,
                "too_many_activities",
                f"more than {MAX_SCAN} records to read: narrow with after, until or date",
            )
        before = page[-1][0][0]  # (a trade's fills are read whole: pages end on a seq)


class AlpacaActivities:
    def __init__(self, api: Any, account: Callable[[Ctx], int]) -> None:
        self.api = api
        self._account = account

    async def activities(self, c: Ctx) -> Response:
        q = _Query(c)
        account = self._account(c)
        queries = self.api.platform.queries
        want = q.size if q.direction == "desc" else None
        found: list[Item] = []
        if "FILL" in q.types:

            async def fills(before: int | None) -> list[Item]:
                page, _ = await queries.fills([account], before=before, limit=_READ)
                return [((f.seq, f.order_id), f.ts, f) for f in page]

            found += await _scan(fills, q, want)
        kinds = q.types - {"FILL"}
        if kinds:

            async def transfers(before: int | None) -> list[Item]:
                page = await queries.transfers([account], before=before, limit=_READ)
                return [((t.seq, 0), t.ts, t) for t in page]

            found += await _scan(transfers, q, want, lambda t: self._type(t) in kinds)
        found.sort(key=lambda i: i[0], reverse=q.direction == "desc")
        out: list[Activity] = []
        for key, _ts, rec in found[: q.size]:
            if isinstance(rec, FillView):
                out.append(await self._fill(account, key, rec))
            else:
                out.append(self._transfer(account, key, rec))
        return json_response(out)

    def _type(self, t: Transfer) -> str:
        if t.asset in self.api.core.currencies:
            return "CSD" if t.amount > 0 else "CSW"
        return "JNLS"

    async def _fill(self, account: int, key: Key, f: FillView) -> FillActivity:
        book = self.api.core.engine.books.get(f.symbol)
        ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
        v = await self.api.platform.queries.order(f.order_id)
        qty = v.qty if v is not None else f.qty
        cum = sum(x.qty for x in v.fills if x.seq <= f.seq) if v is not None and v.fills else f.qty
        status: State = _STATUS.get(OrderStatus(v.status), "new") if v is not None else "filled"
        return FillActivity(
            id=activity_id(f.ts, key),
            account_id=str(uuid.uuid5(NS, f"account-{account}")),
            transaction_time=_time(f.ts),
            type="fill" if cum >= qty else "partial_fill",
            price=format_decimal(f.price, ps),
            qty=format_decimal(f.qty, qs),
            side="buy" if f.side == Side.BUY else "sell",
            symbol=f.symbol,
            leaves_qty=format_decimal(max(qty - cum, 0), qs),
            order_id=str(uuid.UUID(int=f.order_id)),
            cum_qty=format_decimal(cum, qs),
            order_status=status,
        )

    def _transfer(self, account: int, key: Key, t: Transfer) -> Activity:
        kind = self._type(t)
        core = self.api.core
        if kind == "JNLS":
            book = core.engine.books.get(t.asset)
            qty = format_decimal(t.amount, book.qty_scale if book is not None else 0)
            net, symbol = "0", t.asset
            what = f"{'in' if t.amount > 0 else 'out'}: {qty} {t.asset}"
        else:
            net = format_decimal(t.amount, core.currencies[t.asset])
            qty, symbol = None, None
            what = f"{'deposit' if t.amount > 0 else 'withdrawal'} of {t.asset}"
        return TRANSFERS[kind](
            id=activity_id(t.ts, key),
            account_id=str(uuid.uuid5(NS, f"account-{account}")),
            date=datetime.fromtimestamp(t.ts // 1_000_000_000, UTC).date().isoformat(),
            net_amount=net,
            description=what,
            status="executed",
            symbol=symbol,
            qty=qty,
        )


def _time(ts: int) -> str:
    whole, ns = divmod(ts, 1_000_000_000)
    t = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{t}.{ns // 1000:06d}Z"

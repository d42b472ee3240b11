"""What every handler of the native API shares: the error shape, the request context, the
rate limiter, and ``ApiBase``: the platform, the auth store and the market data, with the
helpers that find what the caller may see and format it. The handlers themselves are in
``app.py`` (auth, trading), ``md_handlers.py`` and ``admin_handlers.py``."""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from mercato.api.keywatch import KeyWatch
from mercato.api.legs import legs, order_class
from mercato.api.limits import Limits
from mercato.api.throttle import LoginThrottle
from mercato.domain.commands import NewBracket, NewOco, NewOrder, ReplaceOrder
from mercato.domain.events import Event, Rejected
from mercato.domain.instrument import MAX_UNITS, DecimalError, format_decimal, parse_decimal
from mercato.domain.orders import OrderStatus
from mercato.domain.types import (
    ORDER_TYPE_NAMES,
    SELF_TRADE_NAMES,
    SIDE_NAMES,
    TIF_NAMES,
    Side,
)
from mercato.engine.book import Book
from mercato.engine.core import Core
from mercato.ports import AccountPrefs, Cache
from mercato.services.account_settings import AccountSettings
from mercato.services.auth import AuthStore, Principal
from mercato.services.engine_node import NodeFailed, NodeUnavailable
from mercato.services.marketdata import MarketData
from mercato.services.oms import FillView, OrderView
from mercato.services.platform import Platform

PUBLIC: Final = "public"
TRADER: Final = "trader"
ADMIN: Final = "admin"
MAX_BODY: Final = 64 * 1024  # bytes: a larger request body is refused with 413
JSON_MEDIA: Final = "application/json"  # the one media type a body may have (or none)
REPEATABLE: Final = frozenset({"symbols"})  # query parameters that may be given twice
SESSION_COOKIE: Final = "mercato_session"

_STATUS_NAMES = {st: st.name.lower() for st in OrderStatus}
_json = msgspec.json.Encoder()
T = TypeVar("T")


class ApiError(Exception):
    """An answer other than success: HTTP status, machine-readable code, message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str = "",
        retry_after: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message or code.replace("_", " ")
        self.retry_after = retry_after  # seconds, for a 429 or a 503
        self.headers = dict(headers or {})
        if status in (429, 503):
            self.headers.setdefault("Retry-After", str(retry_after))


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(_json.encode(data), status, headers, media_type="application/json")


NEXT_PAGE: Final = "Mercato-Next-Page-Token"  # the response header of a paged list


def paged_response(data: list[Any], token: str | None) -> Response:
    """One page of a list: ``token`` (the next page's ``page_token``) in ``NEXT_PAGE``."""
    return json_response(data, headers={NEXT_PAGE: token} if token is not None else None)


def page_token(request: Request, parse: Callable[[str | None], T]) -> T:
    """The ``page_token`` query parameter as ``parse`` reads it, or a 400."""
    try:
        return parse(request.query_params.get("page_token"))
    except ValueError as e:
        raise ApiError(400, "invalid_page_token", str(e)) from None


def error_response(e: ApiError) -> Response:
    """The native error shape: ``{"error": {"code": ..., "message": ...}}``."""
    return json_response({"error": {"code": e.code, "message": e.message}}, e.status, e.headers)


@dataclass
class Ctx:
    """What a handler gets: the request, the caller (None when anonymous) and the app."""

    request: Request
    principal: Principal | None
    api: ApiBase

    @property
    def user(self) -> Principal:
        assert self.principal is not None
        return self.principal

    async def body(self, kind: type[T]) -> T:
        """The request's JSON body as ``kind``: a JSON media type (or none), at most
        ``MAX_BODY`` bytes, no unknown fields (``schemas.Body``), no duplicate keys and no
        non-printable characters (``check_json_text``)."""
        media_type_check(self.request.headers.get("content-type"))
        raw = await read_body(self.request)
        if not raw.strip():
            raw = b"{}"
        try:
            value = msgspec.json.decode(raw, type=kind)
        except msgspec.ValidationError as e:
            raise ApiError(400, "invalid_body", str(e)) from None
        except msgspec.DecodeError as e:
            raise ApiError(400, "invalid_json", str(e)) from None
        check_json_text(raw)
        return value


def media_type_check(content_type: str | None) -> None:
    """A body is JSON: ``Content-Type: application/json`` (charset, if given, UTF-8), or
    no Content-Type at all; anything else (``text/plain``, a form, ...) is a 415."""
    if content_type is None:
        return
    media, _, params = content_type.partition(";")
    charset = params.strip().lower().replace(" ", "")
    if media.strip().lower() != JSON_MEDIA or charset not in ("", "charset=utf-8"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"bodies are JSON: send Content-Type: {JSON_MEDIA} (got {content_type[:100]!r})",
        )


async def read_body(request: Request) -> bytes:
    """The request's body, refused (413) as soon as it passes ``MAX_BODY``: a larger
    Content-Length before reading anything, a longer stream at the chunk that passes it."""
    length = request.headers.get("content-length")
    if length is not None and (not _DIGITS.fullmatch(length) or int(length) > MAX_BODY):
        raise ApiError(413, "body_too_large", f"bodies are at most {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "body_too_large", f"bodies are at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_json_text(raw: bytes) -> None:
    """What a typed decode lets through and the edge refuses (400): a key twice in one
    object (decoders keep the last silently), and a string with a control or other
    non-printable character (``str.isprintable``; passwords excepted). Fast path, for
    the usual body: printable ASCII without an escape cannot hold a non-printable
    character; and every key has its colon, so when the decoded objects hold as many keys
    as the text has colons, no key was repeated. Only a colon inside a string makes the
    text be read again, pair by pair."""
    simple = raw.isascii() and b"\\" not in raw and b"\x7f" not in raw
    colons = raw.count(b":")
    if simple and not colons:
        return
    tree = msgspec.json.decode(raw)
    if not simple:
        _refuse_nonprintable(tree, "")
    if colons and _count_keys(tree) != colons:
        try:
            json.loads(raw, object_pairs_hook=_unique_pairs)
        except _DuplicateKey as e:
            raise ApiError(400, "duplicate_key", f"key {e.key[:100]!r} appears twice") from None
        except (ValueError, RecursionError) as e:  # msgspec read it: not expected
            raise ApiError(400, "invalid_json", str(e)[:200]) from None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _count_keys(node: Any) -> int:
    n = 0
    if type(node) is dict:
        n = len(node)
        for v in node.values():
            if type(v) is dict or type(v) is list:
                n += _count_keys(v)
    elif type(node) is list:
        for v in node:
            if type(v) is dict or type(v) is list:
                n += _count_keys(v)
    return n


def _refuse_nonprintable(node: Any, where: str) -> None:
    if type(node) is str:
        if not node.isprintable():
            field = where or "the body"
            raise ApiError(
                400, "invalid_body", f"{field} has a control or other non-printable character"
            )
    elif type(node) is dict:
        for k, v in node.items():
            if k != "password":  # a secret, never shown: any character goes
                _refuse_nonprintable(v, k[:100])
    elif type(node) is list:
        for v in node:
            _refuse_nonprintable(v, where)


Handler = Callable[[Ctx], Awaitable[Response]]


class RateLimiter:
    """Token buckets: ``rate`` requests per second, bursts up to ``burst``, per caller key
    (an API key, a session's user, an anonymous client address), and one more per user
    that all of a user's keys and sessions share (``user_rate``, ``user_burst``: by
    default the same), so that more keys buy no more requests. A request spends a token
    of each of its buckets, or of none. At most ``max_buckets`` are held: beyond that the
    least recently used go (a forgotten bucket starts full again)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        user_rate: float | None = None,
        user_burst: int | None = None,
        max_buckets: int = 100_000,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.user_rate = rate if user_rate is None else user_rate
        self.user_burst = burst if user_burst is None else user_burst
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, user_id: int | None = None) -> bool:
        now = self.clock()
        mine = self._tokens(key, self.rate, self.burst, now)
        if user_id is None or key == f"u:{user_id}":
            if mine < 1.0:
                self._put(key, mine, now)
                return False
            self._put(key, mine - 1.0, now)
            return True
        user_key = f"u:{user_id}"
        theirs = self._tokens(user_key, self.user_rate, self.user_burst, now)
        ok = mine >= 1.0 and theirs >= 1.0
        spent = 1.0 if ok else 0.0
        self._put(key, mine - spent, now)
        self._put(user_key, theirs - spent, now)
        return ok

    def _tokens(self, key: str, rate: float, burst: int, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(burst), now))
        return min(float(burst), tokens + (now - last) * rate)

    def _put(self, key: str, tokens: float, now: float) -> None:
        buckets = self._buckets
        buckets[key] = (tokens, now)
        buckets.move_to_end(key)
        while len(buckets) > self.max_buckets:
            buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


class ApiBase:
    """One platform, one auth store and the market data fed by the platform; the helpers
    every group of handlers uses."""

    def __init__(
        self,
        platform: Platform,
        auth: AuthStore,
        limiter: RateLimiter,
        md_flush: float = 0.0,
        cache: Cache | None = None,
        limits: Limits | None = None,
        prefs: AccountPrefs | None = None,
    ) -> None:
        self.platform = platform
        # watchlists and configurations (``prefs``: their store; None: in memory)
        self.settings = AccountSettings(
            prefs, platform.now, lambda symbol: symbol in platform.core.engine.books
        )
        self.auth = auth
        self.limiter = limiter
        self.limits = limits or Limits()  # the connections' (api/limits.py)
        self.keys = KeyWatch(auth)  # open WebSockets by key: closed when it stops working
        self.logins = LoginThrottle()  # password guessing slowed down (api/throttle.py)
        self.md = MarketData(
            flush_interval=md_flush,
            cache=cache,
            resting=self._resting,
            resting_all=self._resting_all,
        )
        self.md.seed(platform.core.engine.books.values())
        platform.queries.restore_market_data(self.md)  # the tape and bars, from the store
        platform.on_events(self.md.on_events)

    def _resting_all(self, symbol: str) -> list[tuple[int, int, int, int]]:
        """Every order resting in our own book of ``symbol``: (id, side, price, remaining),
        in time priority per level."""
        book = self.platform.core.engine.books[symbol]
        return [
            (o.order_id, o.side, o.price, o.remaining)
            for side in (book.bids, book.asks)
            for level in side.levels_best_first()
            for o in level.orders.values()
        ]

    def _resting(self, symbol: str, order_id: int) -> tuple[int, int, int] | None:
        """The L3 view of our own book: (side, price, remaining) of a resting order."""
        engine = self.platform.core.engine
        o = engine.orders.get(order_id)
        if o is None or order_id in engine.books[symbol].stops:
            return None
        return o.side, o.price, o.remaining

    # -- helpers -------------------------------------------------------------------------

    @property
    def core(self) -> Core:
        return self.platform.core

    def book(self, symbol: str) -> Book:
        book = self.core.engine.books.get(symbol)
        if book is None:
            raise ApiError(404, "unknown_symbol", f"no instrument {symbol!r}")
        return book

    def own_account(self, p: Principal, account: int | None) -> int:
        if account is None:
            if not p.accounts:
                raise ApiError(404, "no_account", "you have no trading account yet")
            return p.accounts[0]
        if account not in p.accounts and p.role != ADMIN:
            raise ApiError(404, "unknown_account", "no such account")
        if account not in self.core.accounts:
            raise ApiError(404, "unknown_account", "no such account")
        return account

    async def own_order(self, p: Principal, order_id: int) -> OrderView:
        """One of ``p``'s orders, live or finished (from the store once memory no longer
        holds it), or a 404."""
        v = await self.platform.queries.order(order_id)
        if v is None or (v.account not in p.accounts and p.role != ADMIN):
            raise ApiError(404, "unknown_order", "no such order")
        return v

    async def stored_legs(self, views: Iterable[OrderView]) -> dict[int, OrderView]:
        """The legs of these orders that memory no longer holds (a finished bracket after
        a restart or past the memory window), read from the store for ``order_json``."""
        history = self.platform.history
        found: dict[int, OrderView] = {}
        for v in views:
            g = v.group
            if g is None or g.order_ids[0] != v.order_id:
                continue
            for oid in g.order_ids[1:]:
                if history.order(oid) is None:
                    leg = await self.platform.queries.order(oid)
                    if leg is not None:
                        found[oid] = leg
        return found

    def order_json(
        self, v: OrderView, stored: Mapping[int, OrderView] | None = None
    ) -> dict[str, Any]:
        book = self.core.engine.books.get(v.symbol)
        ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
        notional, filled = v.avg_price  # exact; shown rounded down to the price's scale
        avg = format_decimal(notional // filled, ps) if filled and notional else None
        return {
            "id": str(v.order_id),
            "client_order_id": v.client_order_id,
            "account": v.account,
            "symbol": v.symbol,
            "side": SIDE_NAMES.get(v.side, "?") if v.side else None,  # (IntEnum keys)
            "type": ORDER_TYPE_NAMES.get(v.type, "?") if v.type else None,
            "tif": TIF_NAMES.get(v.tif, "?") if v.tif else None,
            "price": format_decimal(v.price, ps) if v.price else None,
            "stop_price": format_decimal(v.stop_price, ps) if v.stop_price else None,
            "trail_amount": format_decimal(v.trail_amount, ps) if v.trail_amount else None,
            "trail_bps": v.trail_bps or None,
            "qty": format_decimal(v.qty, qs),
            "filled_qty": format_decimal(v.filled, qs),
            "remaining_qty": format_decimal(v.remaining, qs),
            "avg_fill_price": avg,
            "status": _STATUS_NAMES[v.status],
            "reason": v.reason or None,
            "expire_at": v.expire_ts or None,
            "self_trade": SELF_TRADE_NAMES.get(v.self_trade) if v.self_trade else None,
            "order_class": order_class(v),
            "legs": legs(self, v, stored),
            "created_at": v.created_ts,
            "updated_at": v.updated_ts,
        }

    def fill_json(self, f: FillView) -> dict[str, Any]:
        book = self.core.engine.books.get(f.symbol)
        ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
        inst = self.core.instruments.get(f.symbol)
        cs = self.core.currencies.get(inst.currency, 0) if inst is not None else 0
        return {
            "trade_id": str(f.seq),
            "order_id": str(f.order_id),
            "account": f.account,
            "symbol": f.symbol,
            "side": SIDE_NAMES.get(Side(f.side), "?"),
            "price": format_decimal(f.price, ps),
            "qty": format_decimal(f.qty, qs),
            "liquidity": f.liquidity,
            "fee": format_decimal(f.fee, cs),
            "ts": f.ts,
        }

    def money(self, account: int, value: int) -> str:
        currency = self.core.accounts[account].currency
        return format_decimal(value, self.core.currencies[currency])

    async def submit(self, cmd: Any) -> list[Event]:
        """Journal and apply ``cmd``; a node that cannot take it answers 503 (nothing done).
        A new order or a replace that the account's configuration refuses (suspended
        trading, fractional trading off) is a 403, whichever API it came through."""
        self._configured(cmd)
        try:
            return await self.platform.submit(cmd)
        except NodeUnavailable as e:
            raise ApiError(503, "journal_unavailable", f"{e}; nothing was done") from None
        except NodeFailed:
            message = "the trading node stopped after a failure and must be restarted"
            raise ApiError(503, "node_failed", message) from None

    def _configured(self, cmd: Any) -> None:
        if isinstance(cmd, NewOrder | NewBracket | NewOco):
            account = cmd.account
        elif isinstance(cmd, ReplaceOrder):
            v = self.platform.history.order(cmd.order_id)
            if v is None:
                return  # (not live: the core refuses it)
            account = v.account
        else:
            return
        book = self.core.engine.books.get(cmd.symbol)
        why = self.settings.refusal(account, cmd.qty, book.qty_scale if book is not None else 0)
        if why is not None:
            raise ApiError(403, *why)

    @staticmethod
    def refused(events: list[Event]) -> Rejected | None:
        for e in events:
            if isinstance(e, Rejected):
                return e
        return None

    # -- the caller ----------------------------------------------------------------------

    def principal(self, request: Request) -> tuple[Principal | None, str]:
        """The caller and the rate-limit key: an API key (``Authorization: Bearer
        KEY_ID:SECRET``, or Alpaca's ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``), else a
        session cookie, else anonymous (by client address)."""
        key = header_key(request.headers)
        if key is not None:
            p = self.auth.authenticate_key(*key)
            if p is None:
                raise ApiError(401, "bad_key", "unknown or revoked API key, or wrong secret")
            return p, f"k:{key[0]}"
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            p = self.auth.session(token)
            if p is not None:
                return p, f"u:{p.user_id}"
        return None, f"ip:{request.client.host if request.client else '?'}"


def header_key(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """The API key in a request's headers: ``Authorization: Bearer KEY_ID:SECRET``, or
    Alpaca's ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``; None without one."""
    key_id, secret = headers.get("apca-api-key-id"), headers.get("apca-api-secret-key")
    auth = headers.get("authorization", "")
    if not key_id and auth.lower().startswith("bearer ") and ":" in auth:
        key_id, _, secret = auth[7:].strip().partition(":")
    if key_id or secret:
        return key_id or "", secret or ""
    return None


def units(name: str, text: str | None, scale: int, status: int = 400) -> int:
    """The field ``name``'s decimal string as an integer at ``scale`` (0 when absent):
    exact, and at most ``MAX_UNITS`` in magnitude; else ``status`` ``invalid_number``
    naming the field."""
    if text is None:
        return 0
    try:
        return parse_decimal(text, scale, MAX_UNITS)
    except DecimalError as e:
        raise ApiError(status, "invalid_number", f"{name}: {e}") from None


def limit_param(request: Request, default: int = 100, most: int = 1_000, status: int = 400) -> int:
    """The ``limit`` query parameter: 1..``most`` (0, negative or not a number is an
    error, not the default), ``default`` when absent."""
    limit = int_param(request, "limit", status)
    if limit is None:
        return default
    if not 1 <= limit <= most:
        raise ApiError(status, "invalid_limit", f"limit is 1..{most}")
    return limit


def int_param(request: Request, name: str, status: int = 400) -> int | None:
    """An integer query parameter: ASCII digits (an optional minus), at most 19 of them."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not _INT.fullmatch(raw):
        raise ApiError(status, "invalid_query", f"{name} must be an integer")
    return int(raw)


def path_int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    if not _DIGITS.fullmatch(raw):
        raise ApiError(404, "not_found", "no such resource")
    return int(raw)


def check_query(request: Request, allowed: frozenset[str], status: int = 400) -> None:
    """Refuse a query parameter the route does not read (never ignore it), one given
    twice (unless ``REPEATABLE``), and any parameter or path segment with a control or
    other non-printable character."""
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ApiError(
                status, "unknown_parameter", f"unknown query parameter {name[:100]!r} ({known})"
            )
        if name in seen and name not in REPEATABLE:
            raise ApiError(status, "invalid_query", f"query parameter {name!r} given twice")
        seen.add(name)
        if not value.isprintable():
            raise ApiError(status, "invalid_query", f"{name} has a non-printable character")
    for name, value in request.path_params.items():
        if isinstance(value, str) and not value.isprintable():
            raise ApiError(404, "not_found", f"no such resource (a non-printable {name})")


async def refuse_body(request: Request, status: int = 400) -> None:
    """A route that reads no body refuses one (a 400 ``unexpected_body``), rather than
    acting as if it had not been sent."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return
    if (await read_body(request)).strip():
        raise ApiError(
            status, "unexpected_body", "this route takes no body (options go in the query)"
        )


_DIGITS = re.compile(r"[0-9]{1,19}")
_INT = re.compile(r"-?[0-9]{1,19}")

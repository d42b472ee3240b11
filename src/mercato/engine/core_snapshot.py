"""Snapshots of the whole risk core, and its state hash.

Canonical like the engine's (``snapshot.py``): everything that is not order-sensitive is
sorted, so equal states encode to equal bytes and the hash of the bytes is the state hash.
The engine and the paper venue keep their own formats inside.
"""

from __future__ import annotations

import hashlib
from collections import deque

import msgspec

from mercato.domain.risk import RiskLimits
from mercato.engine import snapshot as engine_snapshot
from mercato.engine.client_ids import MAX_DONE
from mercato.engine.core import Core
from mercato.engine.core_state import Account, Bracket, Hold, InstrumentRisk, Trailing
from mercato.engine.paper import PaperState, PaperVenue

CORE_SNAPSHOT_VERSION = 1


class AccountState(msgspec.Struct, array_like=True):
    account: int
    kind: int
    currency: str
    venue: int
    reserved: int
    open_orders: int
    selling: list[tuple[str, int]]
    margin_status: int
    sod_pnl: int
    self_trade: int = 0  # (a snapshot from before the modes reads as the default)


class HoldState(msgspec.Struct, array_like=True):
    order_id: int
    account: int
    symbol: str
    side: int
    venue: int
    cash: int
    qty: int
    sibling: int


class InstrumentState(msgspec.Struct, array_like=True):
    symbol: str
    currency: str
    mul: int
    div: int
    tick: int
    maker: int
    taker: int
    im: int
    mm: int
    liq: int
    reference: int
    calendar: str = ""  # (added later: older snapshots have none, the platform's calendar)


class TrailingState(msgspec.Struct, array_like=True):
    order_id: int
    symbol: str
    side: int
    amount: int
    bps: int
    best: int


class BracketState(msgspec.Struct, array_like=True):
    entry_id: int
    account: int
    symbol: str
    side: int
    tp_id: int
    sl_id: int
    tp_price: int
    sl_price: int
    pending: int
    used_ids: bool
    sl_limit: int = 0  # (added later: older snapshots have none)


class CoreState(msgspec.Struct, array_like=True):
    version: int
    engine: bytes
    paper: PaperState
    ledger_seq: int
    balances: list[tuple[int, str, int]]
    positions: list[tuple[int, str, int, int, int]]  # account, symbol, qty, cost, realized
    currencies: list[tuple[str, int]]
    instruments: list[InstrumentState]
    accounts: list[AccountState]
    holds: list[HoldState]
    client_ids: list[tuple[int, str, int]]  # live orders' (older snapshots: every order's)
    prices: list[tuple[str, int]]
    trailing: list[TrailingState]
    brackets: list[BracketState]
    next_id: int
    default_limits: RiskLimits
    limits: list[tuple[int, RiskLimits]]
    throttle: list[tuple[int, list[int]]]
    platform_killed: bool
    killed: list[int]
    # (added later: older snapshots have none; their finished orders' keys are in client_ids)
    client_ids_done: list[tuple[int, str, int]] = []  # oldest finished first
    client_ids_max: int = MAX_DONE
    client_ids_forgotten: int = 0
    day_seq: int = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CoreState)


def capture(core: Core) -> CoreState:
    """The core's state as plain data (between commands only)."""
    return CoreState(
        CORE_SNAPSHOT_VERSION,
        engine_snapshot.encode(core.engine),
        core.paper.capture(),
        core.ledger.seq,
        [(acct, asset, v) for (acct, asset), v in core.ledger.items()],
        [(a, s, p.qty, p.cost, p.realized) for a, s, p in core.positions.items()],
        sorted(core.currencies.items()),
        [
            InstrumentState(
                i.symbol,
                i.currency,
                i.mul,
                i.div,
                i.tick,
                i.maker,
                i.taker,
                i.im,
                i.mm,
                i.liq,
                i.reference,
                i.calendar,
            )
            for _, i in sorted(core.instruments.items())
        ],
        [
            AccountState(
                a.account,
                a.kind,
                a.currency,
                a.venue,
                a.reserved,
                a.open_orders,
                sorted((s, q) for s, q in a.selling.items() if q),
                a.margin_status,
                a.sod_pnl,
                a.self_trade,
            )
            for _, a in sorted(core.accounts.items())
        ],
        [
            HoldState(h.order_id, h.account, h.symbol, h.side, h.venue, h.cash, h.qty, h.sibling)
            for _, h in sorted(core.holds.items())
        ],
        core.client_ids.live_items(),
        sorted(core.prices.items()),
        [
            TrailingState(t.order_id, t.symbol, t.side, t.amount, t.bps, t.best)
            for _, t in sorted(core.trailing.items())
        ],
        [
            BracketState(
                b.entry_id,
                b.account,
                b.symbol,
                b.side,
                b.tp_id,
                b.sl_id,
                b.tp_price,
                b.sl_price,
                b.pending,
                b.used_ids,
                b.sl_limit,
            )
            for _, b in sorted(core.brackets.items())
        ],
        core.next_id,
        core.limits.defaults,
        core.limits.overrides(),
        sorted((a, list(w)) for a, w in core.throttle._windows.items() if w),
        core.kills.platform,
        core.kills.killed_accounts(),
        core.client_ids.done_items(),
        core.client_ids.max_done,
        core.client_ids.forgotten,
        core.client_ids.day_seq,
    )


def encode(core: Core) -> bytes:
    return _encoder.encode(capture(core))


def state_hash(core: Core) -> str:
    """A digest of the whole core: equal states, equal hashes."""
    return hashlib.blake2b(encode(core), digest_size=32).hexdigest()


def restore(data: bytes) -> Core:
    """Rebuild a core from ``encode``'s bytes."""
    s = _decoder.decode(data)
    if s.version != CORE_SNAPSHOT_VERSION:
        raise ValueError(f"core snapshot version {s.version} is not {CORE_SNAPSHOT_VERSION}")
    core = Core(s.client_ids_max)
    core.engine = engine_snapshot.restore(s.engine)
    core.paper = PaperVenue.restore(core.engine, s.paper)
    core.ledger.seq = s.ledger_seq
    for acct_id, asset, v in s.balances:
        core.ledger._balances[(acct_id, asset)] = v
    core.currencies = dict(s.currencies)
    for i in s.instruments:
        inst = InstrumentRisk(i.symbol, i.currency, i.mul, i.div, i.tick, i.calendar)
        inst.maker, inst.taker, inst.im, inst.mm, inst.liq = i.maker, i.taker, i.im, i.mm, i.liq
        inst.reference = i.reference
        core.instruments[i.symbol] = inst
    for a in s.accounts:
        acct = Account(a.account, a.kind, a.currency, a.venue)
        acct.reserved, acct.open_orders = a.reserved, a.open_orders
        acct.selling = dict(a.selling)
        acct.margin_status, acct.sod_pnl = a.margin_status, a.sod_pnl
        acct.self_trade = a.self_trade
        core.accounts[a.account] = acct
    for acct_id, sym, qty, cost, realized in s.positions:
        pos = core.positions.ensure(acct_id, sym)
        pos.qty, pos.cost, pos.realized = qty, cost, realized
        if acct_id in core.accounts:
            acct = core.accounts[acct_id]
            acct.positions[sym] = pos
            if qty and acct.kind == 2:
                core.holders.setdefault(sym, set()).add(acct_id)
    for h in s.holds:
        hold = Hold(h.order_id, h.account, h.symbol, h.side, h.venue, h.cash, h.qty)
        hold.sibling = h.sibling
        core.holds[h.order_id] = hold
    ids = core.client_ids
    live = [k for k in s.client_ids if k[2] in core.holds]
    done = [k for k in s.client_ids if k[2] not in core.holds]  # (an older snapshot's)
    ids.forgotten, ids.day_seq = s.client_ids_forgotten, s.day_seq
    ids.restore(live, done + s.client_ids_done)
    core.prices = dict(s.prices)
    for t in s.trailing:
        tr = Trailing(t.order_id, t.symbol, t.side, t.amount, t.bps)
        tr.best = t.best
        core.add_trailing(tr)
    for b in s.brackets:
        br = Bracket(
            b.entry_id,
            b.account,
            b.symbol,
            b.side,
            b.tp_id,
            b.sl_id,
            b.tp_price,
            b.sl_price,
            b.sl_limit,
        )
        br.pending, br.used_ids = b.pending, b.used_ids
        core.brackets[b.entry_id] = br
    core.next_id = s.next_id
    core.limits.defaults = s.default_limits
    for acct_id, lim in s.limits:
        core.limits.set_account(acct_id, lim)
    for acct_id, window in s.throttle:
        core.throttle._windows[acct_id] = deque(window)
    core.kills.platform = s.platform_killed
    for acct_id in s.killed:
        core.kills.set_account(acct_id, True)
    for acct in sorted(core.accounts.values(), key=lambda a: a.account):
        if acct.kind == 2:
            core._set_bands(acct)  # derived: bands only ever widen the checks made
    return core

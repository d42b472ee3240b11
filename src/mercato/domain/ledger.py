"""Double-entry ledger records: entries and postings (pure data, no state).

Every movement of money or instruments is a ``Posting`` whose entries sum to zero per
asset: nothing is created or destroyed, only moved between accounts. Money comes from
outside through the ``EXTERNAL`` account, so per asset the balances of all other accounts
always add up to the net deposits (minus the external account's balance).
"""

from __future__ import annotations

from typing import Final

import msgspec

# System accounts have negative ids, so they never collide with a customer's account.
EXTERNAL: Final = -1  # the world outside: deposits come from it, withdrawals go to it
FEES: Final = -2  # where trading fees are collected
PAPER: Final = -3  # the paper venue's house: the other side of every paper fill


class Entry(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """One line of a posting: ``amount`` (scaled int, + credit / - debit) of ``asset``."""

    account: int
    asset: str
    amount: int


class Posting(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """A balanced set of entries, stamped with the ledger's own sequence number."""

    seq: int
    ts: int
    kind: str  # deposit, withdrawal, trade, fee, ...
    ref: int  # what caused it: a trade's event seq, a deposit's request id, ...
    entries: tuple[Entry, ...]


class UnbalancedPosting(ValueError):
    """A posting whose entries do not sum to zero for some asset: a bug in the caller."""


def imbalance(entries: tuple[Entry, ...]) -> dict[str, int]:
    """Per asset, the sum of ``entries`` where it is not zero (empty when balanced)."""
    sums: dict[str, int] = {}
    for e in entries:
        sums[e.asset] = sums.get(e.asset, 0) + e.amount
    return {asset: total for asset, total in sums.items() if total}


def fees_of(entries: tuple[Entry, ...]) -> dict[int, int]:
    """The fee each account paid in a trade posting: {payer: amount}.

    A trade posting lays out its entries as: buyer +qty, seller -qty (the instrument),
    buyer -cash, seller +cash (the currency), then for each fee that is not zero the pair
    (payer -fee, ``FEES`` +fee): a ``FEES`` entry's payer is the entry just before it.
    """
    fees: dict[int, int] = {}
    for i, e in enumerate(entries):
        if e.account == FEES and i > 0:
            payer = entries[i - 1].account
            fees[payer] = fees.get(payer, 0) + e.amount
    return fees

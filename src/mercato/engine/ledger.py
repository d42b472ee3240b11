"""The ledger: balances derived from balanced postings, and nothing else.

Pure and deterministic like the rest of the engine. Every change of a balance goes through
``post``, which refuses a posting whose entries do not sum to zero per asset, so the
ledger's invariants hold after every posting:

- per asset, the balances of all accounts (the external one included) sum to zero;
- every balance equals the sum of the entries ever posted to it.

Risk (issue 3) decides whether a movement is allowed; the ledger only records it.
"""

from __future__ import annotations

from mercato.domain.errors import InsufficientFunds
from mercato.domain.ledger import EXTERNAL, FEES, Entry, Posting, UnbalancedPosting, imbalance

__all__ = ["InsufficientFunds", "Ledger"]


class Ledger:
    """Balances per (account, asset), changed only by balanced postings."""

    def __init__(self) -> None:
        self.seq = 0  # sequence number of the last posting
        self._balances: dict[tuple[int, str], int] = {}

    def balance(self, account: int, asset: str) -> int:
        return self._balances.get((account, asset), 0)

    def balances(self, account: int) -> dict[str, int]:
        """Every non-zero balance of ``account``, by asset."""
        return {a: v for (acct, a), v in self._balances.items() if acct == account and v}

    def items(self) -> list[tuple[tuple[int, str], int]]:
        """All non-zero balances, sorted (for snapshots and hashing)."""
        return sorted((k, v) for k, v in self._balances.items() if v)

    def post(self, ts: int, kind: str, ref: int, entries: tuple[Entry, ...]) -> Posting:
        """Apply a balanced set of entries and return the posting that records it."""
        if not entries:
            raise UnbalancedPosting("a posting needs entries")
        off = imbalance(entries)
        if off:
            raise UnbalancedPosting(f"{kind} {ref}: entries do not sum to zero: {off}")
        balances = self._balances
        for e in entries:
            key = (e.account, e.asset)
            balances[key] = balances.get(key, 0) + e.amount
        self.seq += 1
        return Posting(self.seq, ts, kind, ref, entries)

    # -- the postings the platform makes -------------------------------------------------

    def deposit(self, ts: int, ref: int, account: int, asset: str, amount: int) -> Posting:
        """Money (or an instrument) arrives from outside."""
        if amount <= 0:
            raise ValueError("a deposit must be positive")
        return self.post(
            ts, "deposit", ref, (Entry(EXTERNAL, asset, -amount), Entry(account, asset, amount))
        )

    def withdraw(self, ts: int, ref: int, account: int, asset: str, amount: int) -> Posting:
        """Money leaves to the outside; never more than the account holds."""
        if amount <= 0:
            raise ValueError("a withdrawal must be positive")
        if self.balance(account, asset) < amount:
            raise InsufficientFunds(f"account {account} holds less than {amount} {asset}")
        return self.post(
            ts, "withdrawal", ref, (Entry(account, asset, -amount), Entry(EXTERNAL, asset, amount))
        )

    def settle_trade(
        self,
        ts: int,
        ref: int,
        *,
        buyer: int,
        seller: int,
        symbol: str,
        qty: int,
        currency: str,
        cash: int,
        buyer_fee: int,
        seller_fee: int,
    ) -> Posting:
        """One execution: the buyer pays ``cash`` and gets ``qty``; both pay their fee.

        The entries' layout is fixed (``mercato.domain.ledger.fees_of`` reads it): the
        instrument moves, the cash moves, then one (payer, ``FEES``) pair per non-zero fee.

        ``cash`` and the fees are in the currency's own units; turning price x quantity
        into them (and the fee schedule) is the caller's business.
        """
        if qty <= 0 or cash < 0 or buyer_fee < 0 or seller_fee < 0:
            raise ValueError("quantity must be positive; cash and fees not negative")
        entries = [
            Entry(buyer, symbol, qty),
            Entry(seller, symbol, -qty),
            Entry(buyer, currency, -cash),
            Entry(seller, currency, cash),
        ]
        if buyer_fee:
            entries += (Entry(buyer, currency, -buyer_fee), Entry(FEES, currency, buyer_fee))
        if seller_fee:
            entries += (Entry(seller, currency, -seller_fee), Entry(FEES, currency, seller_fee))
        return self.post(ts, "trade", ref, tuple(entries))

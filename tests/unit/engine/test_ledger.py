"""The double-entry ledger: balanced postings only, balances derived from them."""

import pytest

from mercato.domain.ledger import EXTERNAL, FEES, Entry, UnbalancedPosting
from mercato.engine.ledger import InsufficientFunds, Ledger


def test_deposit_moves_money_from_outside() -> None:
    ledger = Ledger()
    p = ledger.deposit(1, 10, account=7, asset="USD", amount=100_00)
    assert p.seq == 1 and p.kind == "deposit" and p.ref == 10
    assert ledger.balance(7, "USD") == 100_00
    assert ledger.balance(EXTERNAL, "USD") == -100_00


def test_unbalanced_posting_is_refused_and_changes_nothing() -> None:
    ledger = Ledger()
    with pytest.raises(UnbalancedPosting, match="USD"):
        ledger.post(1, "bad", 1, (Entry(7, "USD", 5), Entry(8, "USD", -4)))
    assert ledger.items() == [] and ledger.seq == 0


def test_balanced_per_asset_not_across_assets() -> None:
    ledger = Ledger()
    with pytest.raises(UnbalancedPosting):
        ledger.post(1, "bad", 1, (Entry(7, "USD", 5), Entry(8, "EUR", -5)))


def test_empty_posting_is_refused() -> None:
    with pytest.raises(UnbalancedPosting):
        Ledger().post(1, "bad", 1, ())


def test_withdrawal_never_exceeds_the_balance() -> None:
    ledger = Ledger()
    ledger.deposit(1, 1, 7, "USD", 50)
    with pytest.raises(InsufficientFunds):
        ledger.withdraw(2, 2, 7, "USD", 51)
    ledger.withdraw(3, 3, 7, "USD", 50)
    assert ledger.balance(7, "USD") == 0 and ledger.balance(EXTERNAL, "USD") == 0


@pytest.mark.parametrize("amount", [0, -1])
def test_non_positive_amounts_are_refused(amount: int) -> None:
    ledger = Ledger()
    with pytest.raises(ValueError):
        ledger.deposit(1, 1, 7, "USD", amount)
    with pytest.raises(ValueError):
        ledger.withdraw(1, 1, 7, "USD", amount)


def test_trade_settles_cash_position_and_fees() -> None:
    ledger = Ledger()
    ledger.deposit(1, 1, 1, "USD", 10_000_00)
    ledger.deposit(1, 2, 2, "AAPL", 100)
    p = ledger.settle_trade(
        2,
        99,
        buyer=1,
        seller=2,
        symbol="AAPL",
        qty=10,
        currency="USD",
        cash=1_500_00,
        buyer_fee=150,
        seller_fee=75,
    )
    assert p.kind == "trade" and p.ref == 99
    assert ledger.balances(1) == {"USD": 10_000_00 - 1_500_00 - 150, "AAPL": 10}
    assert ledger.balances(2) == {"USD": 1_500_00 - 75, "AAPL": 90}
    assert ledger.balance(FEES, "USD") == 225


def test_items_are_sorted_and_skip_zero() -> None:
    ledger = Ledger()
    ledger.deposit(1, 1, 9, "USD", 5)
    ledger.deposit(1, 2, 3, "USD", 5)
    ledger.withdraw(1, 3, 9, "USD", 5)
    assert ledger.items() == [((EXTERNAL, "USD"), -5), ((3, "USD"), 5)]

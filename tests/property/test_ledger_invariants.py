"""Ledger invariants after every posting, on random deposits, withdrawals and trades."""

from hypothesis import given
from hypothesis import strategies as st

from mercato.domain.ledger import EXTERNAL, imbalance
from mercato.engine.ledger import InsufficientFunds, Ledger

ACCOUNTS = st.integers(1, 4)
ASSETS = st.sampled_from(["USD", "AAPL", "BTC"])

deposit = st.tuples(st.just("deposit"), ACCOUNTS, ASSETS, st.integers(1, 10**6))
withdraw = st.tuples(st.just("withdraw"), ACCOUNTS, ASSETS, st.integers(1, 10**6))
trade = st.tuples(
    st.just("trade"),
    ACCOUNTS,
    ACCOUNTS,
    st.integers(1, 1000),  # qty
    st.integers(0, 10**6),  # cash
    st.integers(0, 100),  # buyer fee
    st.integers(0, 100),  # seller fee
)


@given(st.lists(st.one_of(deposit, withdraw, trade), max_size=60))
def test_invariants_hold_after_every_posting(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    ledger = Ledger()
    postings = []
    net_deposits: dict[str, int] = {}
    for ts, op in enumerate(ops):
        if op[0] == "deposit":
            _, acct, asset, amount = op
            postings.append(ledger.deposit(ts, ts, acct, asset, amount))
            net_deposits[asset] = net_deposits.get(asset, 0) + amount
        elif op[0] == "withdraw":
            _, acct, asset, amount = op
            before = ledger.items()
            try:
                postings.append(ledger.withdraw(ts, ts, acct, asset, amount))
            except InsufficientFunds:
                assert ledger.items() == before  # refused: nothing moved
                continue
            net_deposits[asset] = net_deposits.get(asset, 0) - amount
        else:
            _, buyer, seller, qty, cash, bfee, sfee = op
            postings.append(
                ledger.settle_trade(
                    ts,
                    ts,
                    buyer=buyer,
                    seller=seller,
                    symbol="AAPL",
                    qty=qty,
                    currency="USD",
                    cash=cash,
                    buyer_fee=bfee,
                    seller_fee=sfee,
                )
            )
        # every posting sums to zero per asset
        assert imbalance(postings[-1].entries) == {}
        # per asset, the balances of everyone but the outside world equal the net deposits
        totals: dict[str, int] = {}
        for (acct, asset), value in ledger.items():
            if acct != EXTERNAL:
                totals[asset] = totals.get(asset, 0) + value
        assert {a: v for a, v in totals.items() if v} == {
            a: v for a, v in net_deposits.items() if v
        }
        # balances are exactly what the postings say
        derived: dict[tuple[int, str], int] = {}
        for p in postings:
            for e in p.entries:
                derived[(e.account, e.asset)] = derived.get((e.account, e.asset), 0) + e.amount
        assert sorted((k, v) for k, v in derived.items() if v) == ledger.items()
    assert [p.seq for p in postings] == list(range(1, len(postings) + 1))

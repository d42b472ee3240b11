"""``mercato replay``: golden scenarios with hand-computed trades, and every malformed row."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mercato.cli import main
from mercato.domain import (
    AddInstrument,
    CancelOrder,
    NewOrder,
    OrderType,
    ReplaceOrder,
    Side,
    TimeInForce,
    Trade,
    format_decimal,
    parse_decimal,
)
from mercato.engine import Engine
from mercato.sim.replay import Replayer, parse_price, replay_stream

from .orderflow import HEADER as FLOW_HEADER
from .orderflow import order_rows

HEADER = "seq,action,order_id,account,symbol,side,type,tif,price,qty"
TRADES_HEADER = "seq,symbol,taker_order_id,maker_order_id,price,qty"
DATA = Path(__file__).resolve().parents[2] / "data" / "replay"


class Run:
    """Exit status, the output file's lines (None when there is no file), stdout, stderr."""

    def __init__(self, rc: int, trades: list[str] | None, out: str, err: str) -> None:
        self.rc, self.trades, self.out, self.err = rc, trades, out, err


@pytest.fixture
def replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """``replay(rows)`` writes the header plus ``rows`` and runs ``main(["replay", ...])``."""

    def run(rows: str, header: str = HEADER) -> Run:
        body = "\n".join(line.strip() for line in rows.strip().splitlines())
        orders = tmp_path / "orders.csv"
        orders.write_text("".join(f"{part}\n" for part in (header, body) if part))
        out = tmp_path / "trades.csv"
        rc = main(["replay", str(orders), "--trades-out", str(out)])
        captured = capsys.readouterr()
        lines = out.read_text().splitlines() if out.exists() else None
        return Run(rc, lines, captured.out, captured.err)

    return run


def ok(run: Run) -> list[str]:
    assert run.rc == 0, run.err
    assert run.trades is not None and run.trades[0] == TRADES_HEADER
    return run.trades[1:]


# -- golden scenarios ------------------------------------------------------------------------


def test_partial_fills_across_levels(replay) -> None:
    trades = ok(
        replay("""
            1,new,s1,alice,ACME,sell,limit,gtc,10.00,5
            2,new,s2,bob,ACME,sell,limit,gtc,10.01,5
            3,new,s3,carol,ACME,sell,limit,gtc,10.01,5
            4,new,b1,dave,ACME,buy,limit,gtc,10.01,12
            5,new,b2,dave,ACME,buy,limit,gtc,10.02,4
            6,new,s4,alice,ACME,sell,market,gtc,,2
        """)
    )
    assert trades == [
        "4,ACME,b1,s1,10.00,5",  # best price first
        "4,ACME,b1,s2,10.01,5",  # then time priority within the level
        "4,ACME,b1,s3,10.01,2",
        "5,ACME,b2,s3,10.01,3",  # at the maker's price; b2 rests 1 @ 10.02
        "6,ACME,s4,b2,10.02,1",  # b1 is filled; s4 takes b2's 1 and its rest is cancelled
    ]


def test_market_remainder_is_cancelled(replay) -> None:
    trades = ok(
        replay("""
            1,new,s1,alice,ACME,sell,limit,gtc,10.00,3
            2,new,s2,alice,ACME,sell,limit,gtc,10.50,1
            3,new,b1,bob,ACME,buy,market,gtc,,10
            4,new,s3,carol,ACME,sell,limit,gtc,9.00,5
        """)
    )
    # the market order takes every level at any price, and its remainder does not rest
    assert trades == ["3,ACME,b1,s1,10.00,3", "3,ACME,b1,s2,10.50,1"]


def test_ioc_trades_what_it_can_and_cancels_the_rest(replay) -> None:
    trades = ok(
        replay("""
            1,new,s1,alice,ACME,sell,limit,gtc,10.00,3
            2,new,s2,alice,ACME,sell,limit,gtc,10.01,5
            3,new,b1,bob,ACME,buy,limit,ioc,10.00,10
            4,new,s3,carol,ACME,sell,limit,gtc,10.00,5
        """)
    )
    assert trades == ["3,ACME,b1,s1,10.00,3"]


def test_fok_fills_completely_or_not_at_all(replay) -> None:
    trades = ok(
        replay("""
            1,new,s1,alice,ACME,sell,limit,gtc,10.00,3
            2,new,s2,bob,ACME,sell,limit,gtc,10.01,5
            3,new,s3,bob,ACME,sell,limit,gtc,10.02,5
            4,new,k1,carol,ACME,buy,limit,fok,10.01,9
            5,new,f1,carol,ACME,buy,limit,fok,10.01,8
            6,new,k2,carol,ACME,buy,market,fok,,6
            7,new,f2,carol,ACME,buy,market,fok,,5
        """)
    )
    assert trades == [
        # 4: 9 wanted, only 8 up to 10.01: killed, nothing traded
        "5,ACME,f1,s1,10.00,3",
        "5,ACME,f1,s2,10.01,5",
        # 6: 6 wanted, 5 left in the book: killed
        "7,ACME,f2,s3,10.02,5",
    ]


def test_cancelled_order_no_longer_trades(replay) -> None:
    run = replay("""
        1,new,s1,alice,ACME,sell,limit,gtc,10.00,5
        2,new,s2,bob,ACME,sell,limit,gtc,10.00,5
        3,cancel,s1,,ACME,,,,,
        4,new,b1,carol,ACME,buy,limit,gtc,10.00,7
        5,cancel,s1,,ACME,,,,,
        6,cancel,nope,,ACME,,,,,
    """)
    assert ok(run) == ["4,ACME,b1,s2,10.00,5"]
    assert "2 rejected" in run.out  # cancelling a cancelled or unknown order writes nothing


def test_replace_down_at_the_same_price_keeps_priority(replay) -> None:
    trades = ok(
        replay("""
            1,new,s1,alice,ACME,sell,limit,gtc,10.00,5
            2,new,s2,bob,ACME,sell,limit,gtc,10.00,5
            3,replace,s1,,ACME,,,,10.00,3
            4,new,b1,carol,ACME,buy,market,ioc,,4
        """)
    )
    assert trades == ["4,ACME,b1,s1,10.00,3", "4,ACME,b1,s2,10.00,1"]


@pytest.mark.parametrize(
    ("price", "qty"),
    [("10.00", "8"), ("10.01", "5")],
    ids=["more-quantity", "new-price"],
)
def test_replace_up_or_to_a_new_price_loses_priority(replay, price: str, qty: str) -> None:
    trades = ok(
        replay(f"""
            1,new,s1,alice,ACME,sell,limit,gtc,10.00,5
            2,new,s2,bob,ACME,sell,limit,gtc,10.00,5
            3,replace,s1,,ACME,,,,{price},{qty}
            4,replace,s1,,ACME,,,,10.00,{qty}
            5,new,b1,carol,ACME,buy,market,ioc,,6
        """)
    )
    assert trades == ["5,ACME,b1,s2,10.00,5", "5,ACME,b1,s1,10.00,1"]


def test_replace_that_crosses_trades_as_taker(replay) -> None:
    trades = ok(
        replay("""
            1,new,b1,alice,ACME,buy,limit,gtc,9.99,5
            2,new,s1,bob,ACME,sell,limit,gtc,10.01,3
            3,new,s2,bob,ACME,sell,limit,gtc,10.02,3
            4,replace,b1,,ACME,,,,10.02,5
            5,new,s3,carol,ACME,sell,market,ioc,,1
        """)
    )
    # b1 takes both asks at the makers' prices, then nothing is left of it for s3
    assert trades == ["4,ACME,b1,s1,10.01,3", "4,ACME,b1,s2,10.02,2"]


def test_self_trade_prevention_cancels_the_resting_order(replay) -> None:
    trades = ok(
        replay("""
            1,new,s1,alice,ACME,sell,limit,gtc,10.00,5
            2,new,s2,bob,ACME,sell,limit,gtc,10.00,5
            3,new,b1,alice,ACME,buy,limit,gtc,10.00,7
            4,new,s3,carol,ACME,sell,limit,gtc,10.00,4
        """)
    )
    # alice's s1 is cancelled rather than traded against her own b1, which trades with bob
    # and rests 2; carol then trades with that remainder (s1 is gone)
    assert trades == ["3,ACME,b1,s2,10.00,5", "4,ACME,s3,b1,10.00,2"]


def test_symbols_have_separate_books(replay) -> None:
    trades = ok(
        replay("""
            1,new,s1,alice,AAA,sell,limit,gtc,10.00,5
            2,new,b1,bob,BBB,buy,limit,gtc,10.00,5
            3,new,b2,bob,AAA,buy,limit,gtc,10.00,2
        """)
    )
    assert trades == ["3,AAA,b2,s1,10.00,2"]


def test_rejected_commands_write_nothing(replay) -> None:
    run = replay("""
        1,new,s1,alice,ACME,sell,limit,gtc,10.00,5
        2,new,s1,bob,ACME,buy,limit,gtc,10.00,5
        3,new,b1,bob,ACME,buy,limit,gtc,10.00,0
        4,new,b2,bob,ACME,buy,limit,gtc,0.00,1
        5,replace,s1,,OTHER,,,,10.00,1
        6,replace,s1,,ACME,,,,10.00,0
        7,new,b3,bob,ACME,buy,limit,gtc,10.00,1
    """)
    # 2 reuses a live order id, 3 has no quantity, 4 no price, 5 names the wrong symbol,
    # 6 replaces to nothing: all refused by the engine, and the book is as before for 7
    assert ok(run) == ["7,ACME,b3,s1,10.00,1"]
    assert "5 rejected" in run.out


def test_order_ids_and_accounts_are_any_token(replay) -> None:
    trades = ok(
        replay("""
            10,new,"ord,1",acct 1,ACME,sell,limit,gtc,10.00,5
            11,new,ORD-2,"x""y",ACME,buy,limit,gtc,10.00,2
            12,new,ORD-3,ACME,ACME,buy,limit,gtc,10.00,3
            13,new,"ord,1",acct 1,ACME,buy,limit,gtc,10.00,1
            14,new,ORD-4,z,ACME,sell,limit,gtc,10.00,1
        """)
    )
    # a token can be reused once its order is over (ord,1 filled at 12)
    assert trades == [
        '11,ACME,ORD-2,"ord,1",10.00,2',
        '12,ACME,ORD-3,"ord,1",10.00,3',
        '14,ACME,ORD-4,"ord,1",10.00,1',
    ]


def test_prices_are_written_with_two_decimals(replay) -> None:
    trades = ok(
        replay("""
            1,new,s1,a,ACME,sell,limit,gtc,7,1
            2,new,s2,a,ACME,sell,limit,gtc,7.5,1
            3,new,s3,a,ACME,sell,limit,gtc,1234567.890,1
            4,new,b1,b,ACME,buy,market,ioc,,3
        """)
    )
    assert [t.split(",")[4] for t in trades] == ["7.00", "7.50", "1234567.89"]


def test_no_trades_still_writes_the_header(replay) -> None:
    assert ok(replay("1,new,s1,a,ACME,sell,limit,gtc,10.00,1")) == []
    assert ok(replay("", header=HEADER)) == []


# -- malformed input -------------------------------------------------------------------------

GOOD = "1,new,s1,alice,ACME,sell,limit,gtc,10.00,5"

MALFORMED = {
    "too-few-fields": ("2,new,b1,bob,ACME,buy,limit,gtc,10.00", "expected 10 fields, found 9"),
    "too-many-fields": ("2,new,b1,bob,ACME,buy,limit,gtc,10.00,5,x", "found 11"),
    "blank-line": ("", "found 0"),
    "unknown-action": ("2,amend,s1,,ACME,,,,10.00,5", "unknown action 'amend'"),
    "unknown-side": ("2,new,b1,bob,ACME,bid,limit,gtc,10.00,5", "unknown side 'bid'"),
    "side-wrong-case": ("2,new,b1,bob,ACME,BUY,limit,gtc,10.00,5", "unknown side 'BUY'"),
    "unknown-type": ("2,new,b1,bob,ACME,buy,stop,gtc,10.00,5", "unknown type 'stop'"),
    "unknown-tif": ("2,new,b1,bob,ACME,buy,limit,day,10.00,5", "unknown tif 'day'"),
    "seq-not-a-number": ("x,new,b1,bob,ACME,buy,limit,gtc,10.00,5", "seq 'x'"),
    "seq-negative": ("-2,new,b1,bob,ACME,buy,limit,gtc,10.00,5", "seq '-2'"),
    "seq-missing": (",new,b1,bob,ACME,buy,limit,gtc,10.00,5", "seq ''"),
    "price-not-a-number": ("2,new,b1,bob,ACME,buy,limit,gtc,ten,5", "price 'ten'"),
    "price-exponent": ("2,new,b1,bob,ACME,buy,limit,gtc,1e3,5", "price '1e3'"),
    "price-negative": ("2,new,b1,bob,ACME,buy,limit,gtc,-1.00,5", "price '-1.00'"),
    "price-trailing-dot": ("2,new,b1,bob,ACME,buy,limit,gtc,10.,5", "price '10.'"),
    "price-off-tick": ("2,new,b1,bob,ACME,buy,limit,gtc,10.005,5", "not on the 0.01 tick"),
    "replace-price-off-tick": ("2,replace,s1,,ACME,,,,10.001,5", "not on the 0.01 tick"),
    "limit-without-price": ("2,new,b1,bob,ACME,buy,limit,gtc,,5", "price is required"),
    "market-with-price": ("2,new,b1,bob,ACME,buy,market,ioc,10.00,5", "market order takes no"),
    "qty-fraction": ("2,new,b1,bob,ACME,buy,limit,gtc,10.00,1.5", "qty '1.5'"),
    "qty-negative": ("2,new,b1,bob,ACME,buy,limit,gtc,10.00,-5", "qty '-5'"),
    "qty-word": ("2,new,b1,bob,ACME,buy,limit,gtc,10.00,five", "qty 'five'"),
    "qty-missing": ("2,new,b1,bob,ACME,buy,limit,gtc,10.00,", "qty is required"),
    "order-id-missing": ("2,new,,bob,ACME,buy,limit,gtc,10.00,5", "order_id is required"),
    "account-missing": ("2,new,b1,,ACME,buy,limit,gtc,10.00,5", "account is required"),
    "symbol-missing": ("2,new,b1,bob,,buy,limit,gtc,10.00,5", "symbol is required"),
    "symbol-too-long": ("2,new,b1,bob," + "S" * 33 + ",buy,limit,gtc,10.00,5", "symbol 'SSS"),
    "cancel-with-account": ("2,cancel,s1,alice,ACME,,,,,", "account must be empty"),
    "cancel-with-side": ("2,cancel,s1,,ACME,sell,,,,", "side must be empty"),
    "cancel-with-type": ("2,cancel,s1,,ACME,,limit,,,", "type must be empty"),
    "cancel-with-tif": ("2,cancel,s1,,ACME,,,gtc,,", "tif must be empty"),
    "cancel-with-price": ("2,cancel,s1,,ACME,,,,10.00,", "price must be empty"),
    "cancel-with-qty": ("2,cancel,s1,,ACME,,,,,5", "qty must be empty"),
    "cancel-without-id": ("2,cancel,,,ACME,,,,,", "order_id is required"),
    "cancel-without-symbol": ("2,cancel,s1,,,,,,,", "symbol is required"),
    "replace-with-account": ("2,replace,s1,alice,ACME,,,,10.00,5", "account must be empty"),
    "replace-with-side": ("2,replace,s1,,ACME,sell,,,10.00,5", "side must be empty"),
    "replace-with-type": ("2,replace,s1,,ACME,,limit,,10.00,5", "type must be empty"),
    "replace-with-tif": ("2,replace,s1,,ACME,,,gtc,10.00,5", "tif must be empty"),
    "replace-without-price": ("2,replace,s1,,ACME,,,,,5", "price is required"),
    "replace-without-qty": ("2,replace,s1,,ACME,,,,10.00,", "qty is required"),
    "replace-qty-fraction": ("2,replace,s1,,ACME,,,,10.00,2.5", "qty '2.5'"),
    "unterminated-quote": ('2,new,"b1,bob,ACME,buy,limit,gtc,10.00,5', "bad CSV"),
}


@pytest.mark.parametrize(("row", "why"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_row_stops_the_run(tmp_path: Path, replay, row: str, why: str) -> None:
    # a trade first, so that a half-written output would have something in it
    run = replay(f"{GOOD}\n1,new,b0,bob,ACME,buy,limit,gtc,10.00,1\n{row}\n{GOOD}")
    assert run.rc == 1
    assert run.trades is None  # no output file at all
    line = 5 if why == "bad CSV" else 4  # the open quote runs to the end of the file
    assert f"orders.csv:{line}: " in run.err and why in run.err, run.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv"]  # no temp file left


@pytest.mark.parametrize(
    "header",
    [
        "seq,action,order_id,account,symbol,side,type,tif,qty,price",  # order
        "seq,action,id,account,symbol,side,type,tif,price,qty",  # name
        "seq,action,order_id,account,symbol,side,type,tif,price",  # count
        "",  # none: the first row is data
    ],
)
def test_bad_header(replay, header: str) -> None:
    run = replay(GOOD, header=header)
    assert run.rc == 1 and run.trades is None
    assert "orders.csv:1: header must be" in run.err


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "orders.csv").write_text("")
    rc = main(["replay", str(tmp_path / "orders.csv"), "--trades-out", str(tmp_path / "t.csv")])
    assert rc == 1 and "orders.csv:1: empty file" in capsys.readouterr().err


def test_invalid_utf8_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [HEADER, GOOD] + [f"{i},new,b{i},bob,ACME,buy,limit,gtc,9.00,1" for i in range(2, 999)]
    data = ("\n".join(rows) + "\n").encode() + b"999,new,b\xff,bob,ACME,buy,limit,gtc,9.00,1\n"
    (tmp_path / "orders.csv").write_bytes(data)
    rc = main(["replay", str(tmp_path / "orders.csv"), "--trades-out", str(tmp_path / "t.csv")])
    assert rc == 1
    assert "orders.csv:1000: not valid UTF-8" in capsys.readouterr().err


def test_a_failed_run_leaves_an_earlier_result_alone(tmp_path: Path, replay) -> None:
    (tmp_path / "trades.csv").write_text("earlier\n")
    run = replay(f"{GOOD}\n2,new,b1,bob,ACME,buy,limit,gtc,10.005,5")
    assert run.rc == 1
    assert (tmp_path / "trades.csv").read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv", "trades.csv"]


def test_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["replay", str(tmp_path / "nope.csv"), "--trades-out", str(tmp_path / "t.csv")])
    assert rc == 1 and "nope.csv" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_trades_out_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["replay", "orders.csv"])
    assert exc.value.code == 2 and "--trades-out" in capsys.readouterr().err


# -- units, cross-check, and the real command ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("7", 700), ("7.5", 750), ("10.01", 1001), ("10.0100", 1001)]
)
def test_parse_price(text: str, value: int) -> None:
    assert parse_price(text) == value


def test_replay_matches_the_engine_driven_directly() -> None:
    """A random stream through ``replay_stream`` gives the trades of the same commands sent
    to an engine by hand."""
    rows = list(order_rows(3000, seed=7))
    src = io.StringIO()
    csv.writer(src, lineterminator="\n").writerows([FLOW_HEADER, *rows])
    src.seek(0)
    out = io.StringIO()
    stats = replay_stream(src, out)
    got = out.getvalue().splitlines()[1:]

    engine = Engine()
    ids: dict[str, int] = {}
    names: dict[int, str] = {}
    accounts: dict[str, int] = {}
    expected = []
    tifs = {"gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}
    for seq, action, oid, acct, sym, side, typ, tif, price, qty in rows:
        if sym not in engine.books:
            engine.process(AddInstrument(symbol=sym, tick_size=1, lot_size=1))
        px = parse_decimal(price, 2) if price else 0
        cmd: NewOrder | CancelOrder | ReplaceOrder
        if action == "new":
            ids[oid] = len(ids) + 1
            names[ids[oid]] = oid
            cmd = NewOrder(
                order_id=ids[oid],
                account=accounts.setdefault(acct, len(accounts) + 1),
                symbol=sym,
                side=Side.BUY if side == "buy" else Side.SELL,
                type=OrderType.MARKET if typ == "market" else OrderType.LIMIT,
                tif=tifs[tif],
                price=px,
                qty=int(qty),
            )
        elif action == "cancel":
            cmd = CancelOrder(order_id=ids[oid], symbol=sym)
        else:
            cmd = ReplaceOrder(order_id=ids[oid], symbol=sym, price=px, qty=int(qty))
        for ev in engine.process(cmd):
            if isinstance(ev, Trade):
                expected.append(
                    f"{seq},{sym},{names[ev.taker_order_id]},{names[ev.maker_order_id]},"
                    f"{format_decimal(ev.price, 2)},{ev.qty}"
                )
    assert got == expected
    assert stats.rows == 3000 and stats.trades == len(expected) > 500


def test_id_mappings_follow_the_live_orders() -> None:
    """Memory follows the live orders, not the length of the file."""
    r = Replayer()
    rows = iter(order_rows(5000, seed=3))
    r.run(rows, lambda: 0, lambda batch: None)
    assert set(r.order_tokens) == set(r.engine.orders)
    assert len(r.order_ids) == len(r.order_tokens) == len(r.engine.orders)


def test_python_dash_m_mercato_replay(tmp_path: Path) -> None:
    out = tmp_path / "trades.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mercato",
            "replay",
            str(DATA / "sample_orders.csv"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "trades" in proc.stdout
    assert out.read_text() == (DATA / "sample_trades.csv").read_text()

"""``mercato history``: the analytics' historical store from the command line (imports of
recordings, candles and indicators as CSV; ``docs/cli.md``, ``docs/analytics.md``). Its
parser is added to ``mercato``'s by ``mercato.cli``, which runs ``run_history``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mercato.analytics.store import HistoryStore
from mercato.cli import EXIT_FAILED, EXIT_OK, _one_line


def _scale(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 18:
        raise argparse.ArgumentTypeError(f"a scale is 0..18: {text}")
    return value


def add_history_parser(sub: argparse._SubParsersAction[Any]) -> None:
    history = sub.add_parser(
        "history",
        help="the historical store: import recordings, export candles",
        description="The analytics' history: Parquet files under DIR/history, by day and "
        "symbol. Layout, formats and definitions: docs/analytics.md.",
    )
    history_sub = history.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    imp = history_sub.add_parser(
        "import",
        help="load the trades of a recording into the store (twice adds nothing)",
        description="Load the trades of FILE into DIR/history. Trades already stored (the "
        "same source and trade id) are left out, so importing a file again adds nothing. "
        "A bad row stops the import with exit status 2 and one line naming it.",
    )
    imp.add_argument("--format", choices=("binance", "lobster", "csv"), required=True)
    imp.add_argument(
        "file",
        metavar="FILE",
        help="Binance recording (.gz or not), LOBSTER message CSV, or CSV with a header "
        "symbol,ts,price,qty,side[,trade_id]",
    )
    imp.add_argument("--data-dir", default=".mercato", metavar="DIR", help="default ./.mercato")
    imp.add_argument(
        "--source",
        metavar="NAME",
        help="the source whose trade ids these are (a-z 0-9 _; default: the format's, "
        "docs/analytics.md)",
    )
    for flag in ("--price-scale", "--qty-scale"):
        imp.add_argument(
            flag,
            type=_scale,
            metavar="N",
            help="csv: decimals of the instrument (default: the store's for a known symbol, "
            "else the most the file writes)",
        )
    candles = history_sub.add_parser(
        "candles",
        help="write a symbol's candles as CSV",
        description="Candles of SYMBOL from the stored trades: symbol,start,open,high,low,"
        "close,volume,trades; start in epoch ms, prices and volume exact decimals. Intervals "
        "without trades are omitted.",
    )
    candles.add_argument("symbol", metavar="SYMBOL")
    candles.add_argument(
        "--interval",
        default="1m",
        metavar="IV",
        help="1s .. 4w (N + s, m, h, d, w) or 1mo; weeks start Monday, months are calendar "
        "months, both in UTC (default 1m)",
    )
    candles.add_argument("--data-dir", default=".mercato", metavar="DIR", help="default ./.mercato")
    candles.add_argument("--csv", required=True, metavar="OUT", help="the file to write (- stdout)")
    candles.add_argument(
        "--start",
        metavar="TIME",
        help="the first candle starts at or after TIME (epoch ms, RFC 3339 or YYYY-MM-DD)",
    )
    candles.add_argument("--end", metavar="TIME", help="the last candle starts before TIME")
    ind = history_sub.add_parser(
        "indicators",
        help="write indicators over a symbol's candles as CSV",
        description="Indicators (docs/indicators.md) over the candles of SYMBOL, as the API "
        "serves them: symbol,start, then one column per output (e.g. sma_20, rsi_14, macd, "
        "macd_signal, macd_hist); start in epoch ms; price-like values as decimals at the "
        "instrument's scale, the others as numbers; empty during an indicator's warm-up.",
    )
    ind.add_argument("symbol", metavar="SYMBOL")
    ind.add_argument(
        "--indicators",
        required=True,
        metavar="SPECS",
        help="specs separated by |, e.g. 'sma:20|rsi:14|macd:12,26,9'",
    )
    ind.add_argument("--interval", default="1m", metavar="IV", help="as for candles (default 1m)")
    ind.add_argument("--data-dir", default=".mercato", metavar="DIR", help="default ./.mercato")
    ind.add_argument("--csv", required=True, metavar="OUT", help="the file to write (- stdout)")
    ind.add_argument("--start", metavar="TIME", help="as for candles")
    ind.add_argument("--end", metavar="TIME", help="as for candles")


def run_history(args: argparse.Namespace) -> int:
    store = HistoryStore(args.data_dir)
    if args.history_command == "import":
        from mercato.analytics.importer import import_file
        from mercato.feeds import FeedError

        try:
            r = import_file(
                store,
                args.format,
                args.file,
                source=args.source,
                price_scale=args.price_scale,
                qty_scale=args.qty_scale,
            )
        except (FeedError, OSError, ValueError) as e:
            print(f"mercato history import: {_one_line(e)}", file=sys.stderr)
            return 2
        print(
            f"imported {args.file}: {r.read:,} trades of {', '.join(sorted(r.symbols)) or '-'}"
            f" (source {r.source}): {r.written:,} new, {r.duplicates:,} already stored"
            f" -> {store.root}"
        )
        return EXIT_OK
    if args.history_command == "indicators":
        return _history_indicators(args, store)
    return _history_candles(args, store)


def _history_indicators(args: argparse.Namespace, store: HistoryStore) -> int:
    """The indicators over the candles in [--start, --end) (the candles before --start
    count as their warm-up), written as CSV."""
    import csv
    import io
    from pathlib import Path

    from mercato.analytics.candles import candles, parse_interval
    from mercato.analytics.indicator_specs import SpecError, compute, parse_spec
    from mercato.analytics.indicators import render
    from mercato.analytics.times import TimeError, parse_time

    def fail(message: str) -> int:
        print(f"mercato history indicators: {message}", file=sys.stderr)
        return 2

    try:
        interval = parse_interval(args.interval)
        start = None if args.start is None else parse_time(args.start)
        end = None if args.end is None else parse_time(args.end)
        specs = [parse_spec(t) for t in args.indicators.split("|") if t.strip()]
    except (TimeError, SpecError, ValueError) as e:
        return fail(_one_line(e))
    if not specs:
        return fail("--indicators: at least one spec, e.g. sma:20")
    if start is not None and end is not None and start >= end:
        return fail(f"--start must be before --end ({args.start} >= {args.end})")
    scales = store.scales(args.symbol)
    if scales is None:
        return fail(f"no trades of {args.symbol!r} in {store.root}")
    hi = None if end is None else interval.ceil(end)
    bars = candles(store.scan_trades(args.symbol, None, hi), interval)
    try:
        out_frame = compute(bars, specs)
    except ValueError as e:
        return fail(_one_line(e))
    if start is not None:
        out_frame = out_frame.filter(out_frame["start"] >= interval.ceil(start))
    units = {o.name: o.unit for s in specs for o in s.outputs()}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["symbol", "start", *units])
    for row in out_frame.iter_rows(named=True):
        cells = []
        for name, unit in units.items():
            v = row[name]
            text = render(v, scales[0]) if unit == "price" else (None if v is None else repr(v))
            cells.append("" if text is None else text)
        w.writerow([args.symbol, row["start"] // 1_000_000, *cells])
    try:
        if args.csv == "-":
            sys.stdout.write(buf.getvalue())
        else:
            tmp = Path(f"{args.csv}.tmp")
            tmp.write_text(buf.getvalue(), encoding="ascii")
            tmp.replace(args.csv)
    except OSError as e:
        print(f"mercato history indicators: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAILED
    if args.csv != "-":
        print(f"{out_frame.height:,} rows of {args.symbol} at {interval.text} -> {args.csv}")
    return EXIT_OK


def _history_candles(args: argparse.Namespace, store: HistoryStore) -> int:
    from mercato.analytics.candles import candles, parse_interval, write_csv
    from mercato.analytics.times import TimeError, parse_time

    def fail(message: str) -> int:
        print(f"mercato history candles: {message}", file=sys.stderr)
        return 2

    try:
        interval = parse_interval(args.interval)
        start = None if args.start is None else parse_time(args.start)
        end = None if args.end is None else parse_time(args.end)
    except (TimeError, ValueError) as e:
        return fail(_one_line(e))
    if start is not None and end is not None and start >= end:
        return fail(f"--start must be before --end ({args.start} >= {args.end})")
    scales = store.scales(args.symbol)
    if scales is None:
        return fail(f"no trades of {args.symbol!r} in {store.root}")
    # whole candles only: those starting in [start, end), with every trade they hold
    lo = None if start is None else interval.ceil(start)
    hi = None if end is None else interval.ceil(end)
    frame = candles(store.scan_trades(args.symbol, lo, hi), interval)
    try:
        out = sys.stdout if args.csv == "-" else args.csv
        write_csv(frame, args.symbol, scales[0], scales[1], out)
    except OSError as e:
        print(f"mercato history candles: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAILED
    if args.csv != "-":
        print(f"{frame.height:,} candles of {args.symbol} at {interval.text} -> {args.csv}")
    return EXIT_OK

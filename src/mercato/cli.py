"""The ``mercato`` command: ``replay`` a CSV order stream, or run the ``demo`` market.

Usage is documented in ``docs/cli.md``; ``mercato COMMAND --help`` says the same briefly.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mercato import __version__
from mercato.api.limits import add_limit_flags, limits_from_args
from mercato.domain import Instrument

EXIT_OK = 0
EXIT_FAILED = 1  # bad input data, or the run could not go on
EXIT_INTERRUPTED = 130


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip() for s in text.split(","))
    for s in symbols:
        problem = Instrument(symbol=s).validate()
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{s!r}: {problem}")
    if len(set(symbols)) != len(symbols):
        raise argparse.ArgumentTypeError("symbols must be distinct")
    return symbols


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0: any free one): {text}")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
DEMO_RETENTION = 3_600  # seconds: the served demo's SQL store keeps an hour of history


def _retention(text: str) -> int | None:
    """A retention: ``forever`` (None), or a whole number of seconds, minutes, hours or
    days (``90s``, ``30m``, ``1h``, ``7d``; a bare number is seconds)."""
    if text == "forever":
        return None
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    if not (number.isascii() and number.isdigit() and len(number) <= 9):
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (examples: 90s, 30m, 1h, 7d, forever)"
        )
    seconds = int(number) * _UNITS[unit]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be positive (or forever): {text}")
    return seconds


def _phase(text: str) -> int:
    """A call phase's length in seconds: 0 (none) or a duration (``90s``, ``5m``, ``1h``)."""
    if text == "0":
        return 0
    seconds = _retention(text)
    if seconds is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 0, 90s, 5m)")
    return seconds


def _add_retention_flag(parser: argparse.ArgumentParser, default: int | None) -> None:
    shown = "forever: nothing is deleted" if default is None else f"{default // 3_600}h"
    parser.add_argument(
        "--retention",
        type=_retention,
        default=default,
        metavar="DURATION",
        help="delete finished history (orders, fills, trades, ledger postings, risk events) "
        "older than this much of the core's time from the SQL store, in small batches; "
        "live orders and balances are kept (90s, 30m, 1h, 7d or forever; default "
        f"{shown}; docs/persister.md)",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text}")
    return value


def build_kind() -> str:
    """Which build runs: the hot modules (``mercato/compiled.txt``) compiled or plain."""
    import importlib.util
    from importlib import resources

    text = resources.files("mercato").joinpath("compiled.txt").read_text()
    names = [
        line.strip().removesuffix(".py").replace("/", ".")
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    compiled = 0
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and spec.origin.endswith((".so", ".pyd")):
            compiled += 1
    if compiled == len(names):
        return f"compiled build (mypyc: {compiled} hot modules)"
    if compiled == 0:
        return "plain Python build (no compiled modules)"
    return f"partly compiled build ({compiled} of {len(names)} hot modules)"


class _Version(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kw: object) -> None:
        print(f"mercato {__version__}, {build_kind()}")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mercato", description="Mercato, a trading platform: matching engine tools."
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="the version, and which build runs"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    replay = sub.add_parser(
        "replay",
        help="feed a CSV order stream through the engine and write every trade",
        description="Feed ORDERS (CSV: seq,action,order_id,account,symbol,side,type,tif,"
        "price,qty) through the matching engine and write every trade to TRADES "
        "(CSV: seq,symbol,taker_order_id,maker_order_id,price,qty). A malformed row stops "
        "the run with exit status 1 and leaves TRADES untouched. See docs/cli.md.",
    )
    replay.add_argument("orders", metavar="ORDERS.csv", help="the order stream to replay")
    replay.add_argument(
        "--trades-out",
        "-o",
        metavar="TRADES.csv",
        required=True,
        help="where to write the trades",
    )

    demo = sub.add_parser(
        "demo",
        help="run a live simulated market on the platform's core",
        description="Run a live market: seeded market makers, noise traders and momentum "
        "traders, each with a funded cash or margin account, trade through the platform's "
        "core (pre-trade risk, ledger, positions, margin, liquidation, matching). Prints a "
        "live view every second and, at the end (after --duration, or on Ctrl-C), a summary "
        "and the core's state hash. The same seed, symbols and rate give the same commands "
        "and the same hash.",
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument(
        "--symbols",
        type=_symbols,
        default=None,
        metavar="SYM,SYM,...",
        help="instruments to trade (default AAPL,MSFT,GOOG,AMZN,NVDA; resuming a served "
        "demo: the ones its directory was made with)",
    )
    demo.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after this much market time (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--rate",
        type=_positive_int,
        default=1000,
        metavar="CMDS_PER_S",
        help="commands per second (default 1000)",
    )
    demo.add_argument(
        "--data-dir",
        metavar="DIR",
        help="journal to DIR through the engine node; a later run with the same DIR resumes",
    )
    demo.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="serve the API on this port while the traders trade, and write "
        "DIR/credentials.json (default 8000)",
    )
    demo.add_argument(
        "--console",
        action="store_true",
        help="no API: the console market view only (implied by --fast)",
    )
    demo.add_argument("--host", default="127.0.0.1", help="with --port (default 127.0.0.1)")
    demo.add_argument(
        "--md-port",
        type=_port,
        default=None,
        metavar="P",
        help="with the API: also serve market data alone on port P (/v1/md, the fan-out's "
        "fast path)",
    )
    demo.add_argument(
        "--fast",
        action="store_true",
        help="do not pace to the wall clock: simulate --duration as fast as possible",
    )
    demo.add_argument(
        "--day",
        type=_sim_day,
        default=None,
        metavar="S[,C,X,P,O]",
        help="a simulated trading day, over and over, in seconds of market time: S of "
        "continuous trading, a closing auction of C (default 10), closed for X (default 20; "
        "DAY orders expire at its start), a pre-open of P (default 20) and an opening auction "
        "of O (default 10). Without it the market trades around the clock",
    )
    add_limit_flags(demo)
    _add_retention_flag(demo, DEMO_RETENTION)
    serve = sub.add_parser(
        "serve",
        help="run the platform behind its REST API (no simulated traders)",
        description="Run the risk core, journaled in DATA_DIR, behind the REST API. On first "
        "start an administrator is created and DATA_DIR/credentials.json written.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--data-dir", default=".mercato", metavar="DIR", help="default ./.mercato")
    serve.add_argument(
        "--md-port",
        type=_port,
        default=None,
        metavar="P",
        help="also serve market data alone on port P (path /v1/md: the fan-out's fast path)",
    )
    add_limit_flags(serve)
    serve.add_argument(
        "--calendar",
        default="24/7",
        metavar="SPEC",
        help="the trading day its instruments follow: 24/7 (default: always open, the day "
        "ends at 00:00 UTC), an exchange code from exchange_calendars (XNYS, XLON, ...), or "
        "hours:ZONE,HH:MM-HH:MM[,mon-fri]; DAY orders expire at each close",
    )
    for flag, what in (
        (
            "--pre-open",
            "the pre-open (orders accepted, nothing matches) before the opening auction",
        ),
        ("--opening-auction", "the opening auction's call lasts, ending at each open"),
        ("--closing-auction", "the closing auction's call lasts, ending at each close"),
    ):
        serve.add_argument(
            flag,
            type=_phase,
            default=0,
            metavar="DURATION",
            help=f"how long {what}: 0 (none, the default), 90s, 5m, 1h; never at a 24/7 "
            "calendar's boundary (docs/cli.md)",
        )
    serve.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="the SQL store the in-process persister keeps the history in: sqlite:///FILE "
        "or postgresql://... (default: sqlite:///DIR/node/store.sqlite)",
    )
    serve.add_argument(
        "--redis",
        default=os.environ.get("MERCATO_REDIS_URL"),
        metavar="URL",
        help="keep the market data's last values in this Redis too (default: "
        "$MERCATO_REDIS_URL; none: in memory only)",
    )
    serve.add_argument(
        "--accept-loss",
        action="store_true",
        help="open a journal that ends before its last acknowledged command (refused "
        "otherwise) and go on from what is left: those commands are lost for good",
    )
    _add_retention_flag(serve, None)
    persist = sub.add_parser(
        "persist",
        help="follow a core's journal into SQL (SQLite or PostgreSQL), as its own process",
        description="Re-run the risk core from DATA_DIR's journal (written by `mercato demo "
        "--data-dir` or any core node) and keep the SQL store up to date; with --once, "
        "catch up and exit.",
    )
    persist.add_argument("data_dir", metavar="DATA_DIR", help="the node's data directory")
    persist.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="sqlite:///FILE or postgresql://... (default: sqlite:///DATA_DIR/store.sqlite)",
    )
    persist.add_argument("--once", action="store_true", help="catch up once, then exit")
    persist.add_argument(
        "--batch-events",
        type=_positive_int,
        default=5_000,
        metavar="N",
        help="events per transaction at most (default 5000)",
    )
    _add_retention_flag(persist, None)
    _add_feed_parser(sub)
    from mercato.analytics.cli import add_history_parser

    add_history_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "replay":
            return _replay(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "persist":
            return _persist(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "feed":
            return _feed(args)
        if args.command == "history":
            from mercato.analytics.cli import run_history

            return run_history(args)
    except KeyboardInterrupt:
        print(f"mercato {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # the last resort: one line, never a traceback (unless asked)
        if os.environ.get("MERCATO_TRACEBACK"):
            raise
        print(f"mercato {args.command}: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAILED
    parser.print_help(sys.stderr)
    return 2


def _replay(args: argparse.Namespace) -> int:
    from mercato.sim.replay import ReplayError, replay_file

    try:
        stats = replay_file(args.orders, args.trades_out)
    except ReplayError as e:
        print(f"mercato replay: {args.orders}:{e.line}: {e.message}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:
        print(f"mercato replay: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"replayed {stats.rows:,} rows: {stats.trades:,} trades, {stats.rejected:,} rejected, "
        f"{stats.seconds:.2f} s ({stats.rows_per_s:,.0f} rows/s) -> {args.trades_out}"
    )
    return EXIT_OK


def _sim_day(text: str) -> Any:
    from mercato.sim.day import parse_day

    try:
        return parse_day(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _demo(args: argparse.Namespace) -> int:
    if not (args.console or args.fast):
        return _served_demo(args)
    from mercato.sim.runner import DemoConfig, DemoError, run_demo

    cfg = DemoConfig(
        symbols=args.symbols or DemoConfig.symbols,
        seed=args.seed,
        rate=args.rate,
        duration=args.duration,
        data_dir=args.data_dir,
        fast=args.fast,
        day=args.day,
    )
    try:
        run_demo(cfg, sys.stdout)
    except (DemoError, OSError) as e:
        print(f"mercato demo: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _persist(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from mercato.adapters.sql import SqlPersister
    from mercato.adapters.sql.persister import SECOND
    from mercato.adapters.sql.retention import SqlRetention
    from mercato.engine.core import Core
    from mercato.services.persister import PersisterService

    root = Path(args.data_dir)
    node = root / "node" if (root / "node" / "journal").is_dir() else root  # demo, serve
    if not (node / "journal").is_dir():
        print(f"mercato persist: {args.data_dir} has no journal", file=sys.stderr)
        return EXIT_FAILED
    url = args.db or f"sqlite:///{root / 'store.sqlite'}"
    keep = args.retention
    try:
        store = SqlPersister(url)
    except Exception as e:  # a bad URL or an unreachable server: say so, do not trace
        print(f"mercato persist: cannot open {url}: {e}", file=sys.stderr)
        return EXIT_FAILED
    service = PersisterService(
        str(node),
        store,
        make_core=Core,
        restore_core=Core.restore,
        batch_events=args.batch_events,
        retention=None if keep is None else SqlRetention(store.engine, keep * SECOND),
    )
    try:
        if args.once:
            n = service.run_once()
            deleted = service.pruned.total
            if not service.pruned.done:  # --once: all that is due, not one round
                deleted += service.prune().total
            print(f"wrote {n:,} events; the store is at journal seq {service.applied_seq:,}")
            if keep is not None:
                print(f"retention ({keep:,} s of core time): deleted {deleted:,} rows")
            return EXIT_OK
        print(f"following {args.data_dir} into {url} (Ctrl-C stops)")
        asyncio.run(service.run())
    finally:
        store.close()
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mercato.adapters.calendars import CalendarError, calendar_from_spec
    from mercato.api.listen import ListenError, bind, check_free

    limits = limits_from_args(args)
    try:
        calendar = calendar_from_spec(args.calendar)
    except CalendarError as e:
        print(f"mercato serve: --calendar: {e}", file=sys.stderr)
        return EXIT_FAILED
    try:  # the ports first: a clash is one line naming the flag
        sock = bind(args.host, args.port, "--port")
        if args.md_port is not None:
            check_free(args.host, args.md_port, "--md-port")
    except ListenError as e:
        print(f"mercato serve: {e}", file=sys.stderr)
        return EXIT_FAILED
    from mercato.adapters.sql.prefs import SqlPrefs
    from mercato.api.app import MD_FLUSH, create_app
    from mercato.api.landing import About
    from mercato.services import gc_policy
    from mercato.services.auth import AuthStore
    from mercato.services.platform import DEFAULT_STORE, Platform
    from mercato.services.sessions import NS, Phases

    root = Path(args.data_dir)
    url = f"http://{args.host}:{sock.getsockname()[1]}"
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        auth = AuthStore(f"sqlite:///{root / 'users.sqlite'}")
        prefs = SqlPrefs(f"sqlite:///{root / 'users.sqlite'}")  # watchlists, configurations
    except Exception as e:  # an unwritable or foreign directory
        sock.close()
        print(f"mercato serve: cannot open {root}: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAILED
    try:
        platform = Platform(
            root / "node",
            store_url=args.db or DEFAULT_STORE,
            accept_loss=args.accept_loss,
            retention=args.retention,
            calendar=calendar,
        )
    except Exception as e:  # an unreachable or unusable store, a journal it cannot recover
        sock.close()
        auth.close()
        prefs.close()
        print(f"mercato serve: cannot open the platform: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAILED
    creds = root / "credentials.json"
    if not any(u.role == "admin" for u in auth.users()):
        import secrets

        password = secrets.token_urlsafe(18)
        admin = auth.create_user("admin", password, "admin")
        key_id, secret = auth.create_key(admin)
        data = {
            "url": url,
            "admin_username": "admin",
            "admin_password": password,
            "admin_key_id": key_id,
            "admin_secret": secret,
        }
        from mercato.adapters.private_files import write_private

        write_private(creds, json.dumps(data, indent=2) + "\n")
        print(f"created the administrator: credentials in {creds}")
    cache = None
    if args.redis:
        from mercato.adapters.cache import RedisCache

        cache = RedisCache(args.redis, prefix="mercato:")
    app = create_app(
        platform,
        auth,
        full_gc_every=gc_policy.FULL_EVERY,
        md_flush=MD_FLUSH,
        cache=cache,
        md_port=args.md_port,
        md_host=args.host,
        limits=limits,
        sessions=True,
        prefs=prefs,
        phases=Phases(
            pre_open=args.pre_open * NS,
            opening_auction=args.opening_auction * NS,
            closing_auction=args.closing_auction * NS,
        ),
    )
    md_url = f"ws://{args.host}:{args.md_port}/v1/md" if args.md_port is not None else None
    app.state.about = About(
        mode="serve", api_url=url, md_url=md_url, data_dir=str(root), credentials=str(creds)
    )

    def ready() -> None:
        print(f"ready: {url}/ (the API: {url}/v1, docs: {url}/docs; data in {root})")
        if md_url is not None:
            print(f"  market data alone: {md_url}")
        sys.stdout.flush()

    try:
        started = _run_server(app, sock, ready)
    finally:
        sock.close()
        auth.close()
        prefs.close()
    if not started:
        print("mercato serve: the server did not start (its reason is above)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _run_server(app: Any, sock: socket.socket, ready: Callable[[], None]) -> bool:
    """uvicorn with Mercato's configuration (``api/limits.py``) on the bound socket, on
    uvloop; True if it started."""
    import uvicorn
    import uvloop

    from mercato.api.limits import server_config
    from mercato.api.listen import serve_until_done

    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(server_config(app, host, port, app.state.guard))
    return bool(uvloop.run(serve_until_done(server, sock, ready)))


def _one_line(e: BaseException | str) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


def _served_demo(args: argparse.Namespace) -> int:
    from mercato.sim.served import ServedConfig, ServedDemoError, serve_demo

    cfg = ServedConfig(
        symbols=args.symbols,
        seed=args.seed,
        rate=min(args.rate, 1_000),
        host=args.host,
        port=args.port,
        md_port=args.md_port,
        data_dir=args.data_dir,
        duration=args.duration,
        limits=limits_from_args(args),
        retention=args.retention,
        day=args.day,
    )
    print(f"mercato {__version__}, {build_kind()}")
    try:
        import uvloop

        uvloop.run(serve_demo(cfg, sys.stdout))
    except KeyboardInterrupt:  # the way to stop it: a clean end, like the console demo's
        again = f"; `mercato demo --data-dir {args.data_dir}` resumes it" if args.data_dir else ""
        print(f"mercato demo: stopped{again}")
        return EXIT_OK
    except ServedDemoError as e:
        print(f"mercato demo: {e}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # an unwritable --data-dir, a full disk
        print(f"mercato demo: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _add_feed_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    feed = sub.add_parser(
        "feed",
        help="replay or check an outside market-data recording (LOBSTER, Binance)",
        description="Replay a recorded outside feed as market data, or check the L3 book "
        "builder against LOBSTER's own books. Formats and rules: docs/feeds.md.",
    )
    feed_sub = feed.add_subparsers(dest="feed_command", metavar="ACTION", required=True)
    replay = feed_sub.add_parser(
        "replay",
        help="replay a recording as market-data events and print a summary",
        description="Turn a recording into market-data events (trades, quotes, order and "
        "level changes) and print a summary: events, trades, the final top of book.",
    )
    replay.add_argument("--format", choices=("lobster", "binance"), required=True)
    replay.add_argument("recording", metavar="FILE", help="LOBSTER messages CSV, Binance .gz")
    replay.add_argument(
        "--seed-book",
        metavar="ORDERBOOK.csv",
        help="lobster: the orderbook file whose first row seeds the book (required)",
    )
    replay.add_argument("--bars-out", metavar="BARS.csv", help="write bars of the trades here")
    replay.add_argument(
        "--bar-interval",
        choices=("1s", "1m", "5m", "1h", "1d"),
        default="1m",
        help="with --bars-out (default 1m)",
    )
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=_positive_float,
        metavar="N",
        help="pace at N times the recorded speed (default: as fast as possible)",
    )
    pace.add_argument("--fast", action="store_true", help="as fast as possible (the default)")
    replay.add_argument(
        "--publish",
        metavar="URL",
        help="also send the events to a running platform (its market data shows them)",
    )
    replay.add_argument(
        "--credentials",
        default=".mercato/credentials.json",
        metavar="FILE",
        help="with --publish: the administrator's key, from the platform's credentials.json "
        "(default .mercato/credentials.json)",
    )
    check = feed_sub.add_parser(
        "check",
        help="check the book builder against LOBSTER's books, message by message",
        description="For every message k+1, apply it to LOBSTER's orderbook row k and "
        "compare the top levels but the last with row k+1. Exit 1 if any row differs.",
    )
    check.add_argument("--format", choices=("lobster",), required=True)
    check.add_argument("messages", metavar="MESSAGES.csv")
    check.add_argument("orderbook", metavar="ORDERBOOK.csv")
    check.add_argument("--book-out", metavar="BOOK.csv", help="write the books built here")


def _feed(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mercato.feeds import FeedError
    from mercato.feeds import run as feeds
    from mercato.marketdata.bars import interval_ns

    try:
        if args.feed_command == "check":
            result = feeds.check_lobster(args.messages, args.orderbook, args.book_out)
            for m in result.mismatches:
                print(
                    f"{args.orderbook}:{m.line}: differs\n  expected {m.expected}\n"
                    f"  built    {m.got}",
                    file=sys.stderr,
                )
            to = f" -> {args.book_out}" if args.book_out else ""
            print(
                f"checked {result.rows:,} messages: {len(result.mismatches):,} books differ "
                f"from LOBSTER's in the compared levels{to}"
            )
            return EXIT_FAILED if result.mismatches else EXIT_OK
        if args.format == "lobster":
            if args.seed_book is None:
                print("mercato feed replay: lobster needs --seed-book", file=sys.stderr)
                return 2
            source = feeds.lobster_source(args.recording, args.seed_book)
        else:
            source = feeds.binance_source(args.recording)
        publisher = None
        if args.publish:
            import json

            from mercato.feeds.publish import Publisher

            creds = json.loads(Path(args.credentials).read_text())
            publisher = Publisher(
                args.publish, creds["admin_key_id"], creds["admin_secret"], source.instrument
            )
            publisher.register()
        try:
            feeds.replay(
                source,
                sys.stdout,
                speed=args.speed,
                bars_out=args.bars_out,
                bar_interval=interval_ns(args.bar_interval),
                sink=publisher,
            )
        finally:
            if publisher is not None:
                publisher.close()
        if publisher is not None:
            print(f"published {publisher.sent:,} events to {args.publish}")
    except (FeedError, OSError, KeyError, ValueError) as e:
        print(f"mercato feed {args.feed_command}: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

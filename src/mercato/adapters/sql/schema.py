"""The relational schema the persister writes: SQLAlchemy Core tables, one for every backend.

The same database also holds the auth store's users, sessions and API keys, and the
gateway's watchlists and account configurations (at the end).

Money and quantities are ``BigInteger`` (the engine's scaled ints, never floats); statuses,
sides, types and TIFs keep the engine's int values (``OrderStatus``, ``Side``, ...).
``BigInteger`` holds |x| < 2**63; a larger amount makes the batch fail loudly (both
drivers refuse it) and roll back instead of being stored inexactly. ``Numeric(38, 0)``
would be exact on PostgreSQL, but SQLite stores a NUMERIC above 2**63 as a float,
silently; widening is a later migration if instruments ever need it.
This is the shape of the newest migration; the migrations themselves do not import it, so
an old revision never changes when this file does (a test compares the two).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

instruments = Table(
    "instruments",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("tick_size", BigInteger, nullable=False),
    Column("lot_size", BigInteger, nullable=False),
    Column("price_scale", Integer, nullable=False),
    Column("qty_scale", Integer, nullable=False),
    Column("status", Integer, nullable=False),  # mercato.domain.types.TradingStatus
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", Integer, nullable=False),
    Column("type", Integer, nullable=False),
    Column("tif", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("stop_price", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),  # filled + remaining, as the engine keeps it
    Column("filled", BigInteger, nullable=False),
    Column("status", Integer, nullable=False),  # mercato.domain.orders.OrderStatus
    Column("post_only", Boolean, nullable=False),
    Column("created_seq", BigInteger, nullable=False),
    Column("updated_seq", BigInteger, nullable=False),
    Column("client_order_id", String(64), nullable=False, server_default=""),  # "": none
    Column("protect_price", BigInteger, nullable=False, server_default="0"),
    Index("ix_orders_account", "account"),
    Index("ix_orders_symbol_status", "symbol", "status"),
    Index("ix_orders_account_client_order_id", "account", "client_order_id"),
)

order_events = Table(
    "order_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("order_id", BigInteger, nullable=False),
    Column("kind", String(8), nullable=False),  # the event's tag: "ac", "cx", "rp", ...
    Column("ts", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),  # the event as a JSON object
    Index("ix_order_events_order_id", "order_id"),
)

trades = Table(
    "trades",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("taker_order_id", BigInteger, nullable=False),
    Column("maker_order_id", BigInteger, nullable=False),
    Column("taker_account", BigInteger, nullable=False),
    Column("maker_account", BigInteger, nullable=False),
    Column("taker_side", Integer, nullable=False),
    Index("ix_trades_symbol_seq", "symbol", "seq"),
    Index("ix_trades_symbol_ts", "symbol", "ts"),
)

order_views = Table(
    "order_views",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("status", Integer, nullable=False),  # mercato.domain.orders.OrderStatus
    Column("client_order_id", String(64), nullable=False),  # "": none
    Column("created_seq", BigInteger, nullable=False),
    Column("updated_seq", BigInteger, nullable=False),
    # the OMS projection's whole order (``mercato.services.oms.OrderView``, MessagePack):
    # the API answers from it, byte for byte as from memory, once memory no longer holds it
    Column("view", LargeBinary, nullable=False),
    Index("ix_order_views_account_updated", "account", "updated_seq", "order_id"),
    Index("ix_order_views_updated", "updated_seq", "order_id"),
    Index("ix_order_views_account_client", "account", "client_order_id"),
)

persister_state = Table(
    "persister_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    Column("last_seq", BigInteger, nullable=False),
)

replica_state = Table(
    "replica_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    # the journal seq up to which every command's events are stored (0: unknown), written
    # with the batch: a replica restarts from a node snapshot at or before it
    # (``mercato.services.persister``)
    Column("journal_seq", BigInteger, nullable=False),
)

# -- accounts, money and risk ---------------------------------------------------------------

currencies = Table(
    "currencies",
    metadata,
    Column("code", String(16), primary_key=True),
    Column("scale", Integer, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", Integer, nullable=False),  # mercato.domain.types.AccountKind
    Column("currency", String(16), nullable=False),
    Column("venue", Integer, nullable=False),  # mercato.domain.types.Venue
    Column("killed", Boolean, nullable=False),  # the account's own kill switch
    Column("margin_status", String(8), nullable=False),  # "ok" or "call"
    Column("created_seq", BigInteger, nullable=False),
    Column("updated_seq", BigInteger, nullable=False),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("posting", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),  # the LedgerPosted event's seq
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # deposit, withdrawal, trade, ...
    Column("ref", BigInteger, nullable=False),  # a trade: the Trade event's seq
    Index("ix_ledger_postings_kind_ref", "kind", "ref"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column(
        "posting",
        BigInteger,
        ForeignKey("ledger_postings.posting"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("idx", Integer, primary_key=True, autoincrement=False),  # place in the posting
    Column("account", BigInteger, nullable=False),
    Column("asset", String(32), nullable=False),
    Column("amount", BigInteger, nullable=False),  # + credit / - debit
    Index("ix_ledger_entries_account_asset", "account", "asset"),
)

positions = Table(
    "positions",
    metadata,
    Column("account", BigInteger, primary_key=True, autoincrement=False),
    Column("symbol", String(32), primary_key=True),
    Column("qty", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),  # signed cash
    Column("realized", BigInteger, nullable=False),
    Column("updated_seq", BigInteger, nullable=False),
)

fills = Table(
    "fills",
    metadata,
    Column("trade_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("account", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("liquidity", String(5), nullable=False),  # "maker" or "taker"
    Column("fee", BigInteger, nullable=False),  # from the trade's ledger posting
    Index("ix_fills_account_trade_seq", "account", "trade_seq"),
    Index("ix_fills_order_id", "order_id"),
)

risk_events = Table(
    "risk_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),  # margin_call, liquidation, kill_switch, ...
    Column("account", BigInteger, nullable=True),  # 0: the platform; NULL: not about one
    Column("symbol", String(32), nullable=True),
    Column("payload", Text, nullable=False),  # the event as a JSON object
    Index("ix_risk_events_account_seq", "account", "seq"),
    Index("ix_risk_events_kind_seq", "kind", "seq"),
)

# -- retention (``mercato.adapters.sql.retention``) -----------------------------------------

seq_clock = Table(
    "seq_clock",
    metadata,
    # a second of core time (the events' ts // 10**9) and the newest event seq by its end:
    # every event at or before ``seq`` has ts < (second + 1) * 10**9
    Column("second", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
)

ledger_balances = Table(
    "ledger_balances",
    metadata,
    # the ledger's compacted part: the sum of the entries retention deleted, so that a
    # balance is this amount plus the sum of the account's remaining ledger_entries
    Column("account", BigInteger, primary_key=True, autoincrement=False),
    Column("asset", String(32), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("through_seq", BigInteger, nullable=False),  # the newest posting folded in
)

# -- users, sessions and API keys (``mercato.services.auth``) -------------------------------
# Times are Unix seconds (wall clock, not the core's ts); secrets are stored only as digests.

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),  # canonical: lower case
    Column("password_hash", String(255), nullable=False),  # argon2id, PHC string
    Column("role", String(16), nullable=False),  # mercato.services.auth.Role
    Column("created_at", Float, nullable=False),
    Index("ix_users_username", "username", unique=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.user_id"), nullable=False),
    Column("secret_digest", String(64), nullable=False),  # hex HMAC-SHA256(pepper, secret)
    Column("created_at", Float, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("expires_at", Float, nullable=True),  # None: never
    Column("revoked_at", Float, nullable=True),  # after every earlier revoke's (polled)
    Index("ix_api_keys_user_id", "user_id"),
    Index("ix_api_keys_revoked_at", "revoked_at"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_digest", String(64), primary_key=True),  # hex SHA-256 of the token
    Column("user_id", Integer, ForeignKey("users.user_id"), nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_sessions_expires_at", "expires_at"),
)

user_accounts = Table(
    "user_accounts",
    metadata,
    Column("user_id", Integer, ForeignKey("users.user_id"), primary_key=True),
    Column("account", BigInteger, primary_key=True, autoincrement=False),  # a core account
)

auth_settings = Table(
    "auth_settings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    Column("pepper", LargeBinary, nullable=False),  # the API-key HMAC key when none is given
)

# -- watchlists and account configurations (``mercato.adapters.sql.prefs``) -----------------
# The gateway's, not the core's; times are ns since the epoch (the gateway's wall clock).

watchlists = Table(
    "watchlists",
    metadata,
    Column("watchlist_id", String(36), primary_key=True),  # a UUID
    Column("account", BigInteger, nullable=False),
    Column("name", String(64), nullable=False),
    Column("symbols", Text, nullable=False),  # a JSON array, in the order they were added
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_watchlists_account_name", "account", "name", unique=True),
)

account_configs = Table(
    "account_configs",
    metadata,
    Column("account", BigInteger, primary_key=True, autoincrement=False),
    Column("suspend_trade", Boolean, nullable=False),
    Column("fractional_trading", Boolean, nullable=False),
)

TABLES = (
    "instruments",
    "orders",
    "order_events",
    "trades",
    "order_views",
    "persister_state",
    "replica_state",
    "currencies",
    "accounts",
    "ledger_postings",
    "ledger_entries",
    "positions",
    "fills",
    "risk_events",
    "seq_clock",
    "ledger_balances",
)
"""The tables the persister writes (the auth tables are the auth store's: ``AUTH_TABLES``)."""

AUTH_TABLES = ("users", "api_keys", "sessions", "user_accounts", "auth_settings")

PREFS_TABLES = ("watchlists", "account_configs")
"""The gateway's per-account settings (``mercato.adapters.sql.prefs``)."""

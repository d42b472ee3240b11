"""The risk core: currencies, accounts, the ledger, positions, fills, risk events, the
replica's journal position, and the new order fields (client order id, protection price).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:  # SQLite: a table copy; elsewhere ALTERs
        batch.add_column(
            sa.Column("client_order_id", sa.String(64), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("protect_price", sa.BigInteger, nullable=False, server_default="0")
        )
    op.create_index("ix_orders_account_client_order_id", "orders", ["account", "client_order_id"])
    state = op.create_table(
        "replica_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("journal_seq", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "journal_seq": 0}])
    op.create_table(
        "currencies",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("scale", sa.Integer, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("account", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("venue", sa.Integer, nullable=False),
        sa.Column("killed", sa.Boolean, nullable=False),
        sa.Column("margin_status", sa.String(8), nullable=False),
        sa.Column("created_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("posting", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ledger_postings_kind_ref", "ledger_postings", ["kind", "ref"])
    op.create_table(
        "ledger_entries",
        sa.Column(
            "posting",
            sa.BigInteger,
            sa.ForeignKey("ledger_postings.posting"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account", sa.BigInteger, nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ledger_entries_account_asset", "ledger_entries", ["account", "asset"])
    op.create_table(
        "positions",
        sa.Column("account", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.BigInteger, nullable=False),
        sa.Column("realized", sa.BigInteger, nullable=False),
        sa.Column("updated_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "fills",
        sa.Column("trade_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("order_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("account", sa.BigInteger, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.Integer, nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("liquidity", sa.String(5), nullable=False),
        sa.Column("fee", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_fills_account_trade_seq", "fills", ["account", "trade_seq"])
    op.create_index("ix_fills_order_id", "fills", ["order_id"])
    op.create_table(
        "risk_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("account", sa.BigInteger, nullable=True),
        sa.Column("symbol", sa.String(32), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_risk_events_account_seq", "risk_events", ["account", "seq"])
    op.create_index("ix_risk_events_kind_seq", "risk_events", ["kind", "seq"])


def downgrade() -> None:
    op.drop_index("ix_risk_events_kind_seq", table_name="risk_events")
    op.drop_index("ix_risk_events_account_seq", table_name="risk_events")
    op.drop_table("risk_events")
    op.drop_index("ix_fills_order_id", table_name="fills")
    op.drop_index("ix_fills_account_trade_seq", table_name="fills")
    op.drop_table("fills")
    op.drop_table("positions")
    op.drop_index("ix_ledger_entries_account_asset", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index("ix_ledger_postings_kind_ref", table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_table("accounts")
    op.drop_table("currencies")
    op.drop_table("replica_state")
    op.drop_index("ix_orders_account_client_order_id", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("protect_price")
        batch.drop_column("client_order_id")

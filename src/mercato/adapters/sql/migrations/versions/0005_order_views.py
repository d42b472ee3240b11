"""The OMS projection's orders, whole (``order_views``): what the API answers for an order
that its in-memory window no longer holds; and trades by (symbol, ts), for bars.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_views",
        sa.Column("order_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("account", sa.BigInteger, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("created_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_seq", sa.BigInteger, nullable=False),
        sa.Column("view", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_order_views_account_updated", "order_views", ["account", "updated_seq", "order_id"]
    )
    op.create_index("ix_order_views_updated", "order_views", ["updated_seq", "order_id"])
    op.create_index("ix_order_views_account_client", "order_views", ["account", "client_order_id"])
    op.create_index("ix_trades_symbol_ts", "trades", ["symbol", "ts"])  # bars after a restart


def downgrade() -> None:
    op.drop_index("ix_trades_symbol_ts", table_name="trades")
    op.drop_table("order_views")

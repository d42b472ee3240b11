"""The first schema: instruments, orders, order events, trades and the persister's state.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instruments",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("tick_size", sa.BigInteger, nullable=False),
        sa.Column("lot_size", sa.BigInteger, nullable=False),
        sa.Column("price_scale", sa.Integer, nullable=False),
        sa.Column("qty_scale", sa.Integer, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("account", sa.BigInteger, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.Integer, nullable=False),
        sa.Column("type", sa.Integer, nullable=False),
        sa.Column("tif", sa.Integer, nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("stop_price", sa.BigInteger, nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("filled", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("post_only", sa.Boolean, nullable=False),
        sa.Column("created_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_orders_account", "orders", ["account"])
    op.create_index("ix_orders_symbol_status", "orders", ["symbol", "status"])
    op.create_table(
        "order_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("order_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_order_events_order_id", "order_events", ["order_id"])
    op.create_table(
        "trades",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("taker_order_id", sa.BigInteger, nullable=False),
        sa.Column("maker_order_id", sa.BigInteger, nullable=False),
        sa.Column("taker_account", sa.BigInteger, nullable=False),
        sa.Column("maker_account", sa.BigInteger, nullable=False),
        sa.Column("taker_side", sa.Integer, nullable=False),
    )
    op.create_index("ix_trades_symbol_seq", "trades", ["symbol", "seq"])
    state = op.create_table(
        "persister_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "last_seq": 0}])


def downgrade() -> None:
    op.drop_table("persister_state")
    op.drop_index("ix_trades_symbol_seq", table_name="trades")
    op.drop_table("trades")
    op.drop_index("ix_order_events_order_id", table_name="order_events")
    op.drop_table("order_events")
    op.drop_index("ix_orders_symbol_status", table_name="orders")
    op.drop_index("ix_orders_account", table_name="orders")
    op.drop_table("orders")
    op.drop_table("instruments")

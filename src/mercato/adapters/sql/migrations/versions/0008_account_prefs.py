"""Watchlists and account configurations (``/v2/watchlists``, ``/v2/account/
configurations``): the gateway's per-account settings, beside the API keys.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlists",
        sa.Column("watchlist_id", sa.String(36), primary_key=True),
        sa.Column("account", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("symbols", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_watchlists_account_name", "watchlists", ["account", "name"], unique=True)
    op.create_table(
        "account_configs",
        sa.Column("account", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("suspend_trade", sa.Boolean, nullable=False),
        sa.Column("fractional_trading", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("account_configs")
    op.drop_index("ix_watchlists_account_name", table_name="watchlists")
    op.drop_table("watchlists")

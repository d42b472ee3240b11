"""API keys may expire (``api_keys.expires_at``, Unix seconds; NULL: never), and their
revocations are stamped (``revoked_at``, indexed: other gateways poll for new ones).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("expires_at", sa.Float, nullable=True))
    op.add_column("api_keys", sa.Column("revoked_at", sa.Float, nullable=True))
    op.create_index("ix_api_keys_revoked_at", "api_keys", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_revoked_at", table_name="api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("expires_at")

"""Key revocations are stamped (``api_keys.revoked_at``, Unix seconds, indexed): every
gateway on the database polls for the new ones (``AuthStore.poll_revocations``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("revoked_at", sa.Float, nullable=True))
    op.create_index("ix_api_keys_revoked_at", "api_keys", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_revoked_at", table_name="api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("revoked_at")

"""Retention of the SQL store (``adapters/sql/retention.py``): the core's clock by the
second (``seq_clock``: the newest event seq by the end of each second of core time), and
the ledger's compacted part (``ledger_balances``: the sum of the deleted entries).

A store written before this revision gets one clock row: every event it holds is at or
before its last seq, and none is later than the newest ts among its rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SECOND = 1_000_000_000


def upgrade() -> None:
    op.create_table(
        "seq_clock",
        sa.Column("second", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_balances",
        sa.Column("account", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("asset", sa.String(32), primary_key=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("through_seq", sa.BigInteger, nullable=False),
    )
    conn = op.get_bind()
    last = conn.execute(sa.text("SELECT last_seq FROM persister_state WHERE id = 1")).scalar()
    if not last:
        return
    newest = 0
    for table in ("order_events", "trades", "ledger_postings", "risk_events", "fills"):
        ts = conn.execute(sa.text(f"SELECT MAX(ts) FROM {table}")).scalar()
        newest = max(newest, int(ts or 0))
    conn.execute(
        sa.text("INSERT INTO seq_clock (second, seq) VALUES (:s, :q)"),
        {"s": newest // _SECOND, "q": int(last)},
    )


def downgrade() -> None:
    op.drop_table("ledger_balances")
    op.drop_table("seq_clock")

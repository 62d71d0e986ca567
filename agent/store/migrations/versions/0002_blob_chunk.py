"""File bytes in the database (used on PostgreSQL): one row per chunk of a blob."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_chunk",
        sa.Column("blob_id", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )

"""Containers and their files (the Containers API)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
KINDS = ("container", "container_file")


def upgrade() -> None:
    for kind in KINDS:
        op.create_table(
            kind,
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("owner", sa.String(64), nullable=False),
            sa.Column("parent", sa.String(64)),
            sa.Column("run_id", sa.String(64)),
            sa.Column("status", sa.String(32)),
            sa.Column("lease", sa.String(64)),
            sa.Column("lease_until", sa.Integer),
            sa.Column("created_at", sa.Integer, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
            sa.UniqueConstraint("parent", "id", name=f"uq_{kind}_parent_id"),
        )
        op.create_index(f"ix_{kind}_id", kind, ["id"])
        op.create_index(f"ix_{kind}_owner_parent_seq", kind, ["owner", "parent", "seq"])


def downgrade() -> None:
    for kind in reversed(KINDS):
        op.drop_table(kind)

"""The schema of the first release: one table per kind of object (frozen here; never edit a migration)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

KINDS = (
    "assistant",
    "thread",
    "message",
    "run",
    "step",
    "file",
    "vector_store",
    "vector_store_file",
    "file_batch",
)


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
    op.create_index("ix_run_status", "run", ["status"])
    active = sa.text("status IN ('queued', 'in_progress', 'requires_action', 'cancelling')")
    op.create_index(
        "uq_run_one_active_per_thread",
        "run",
        ["parent"],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )

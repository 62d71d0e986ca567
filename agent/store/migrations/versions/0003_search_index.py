"""file_search's index in the database (PostgreSQL only; SQLite keeps its FTS5 file)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "search_file",
        sa.Column("fid", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("attributes", sa.Text),
        sa.Column("usage_bytes", sa.Integer, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.UniqueConstraint("store_id", "file_id", name="uq_search_file_store_file"),
    )
    op.create_index("ix_search_file_file", "search_file", ["file_id"])
    op.create_table(
        "search_chunk",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("fid", sa.Integer, nullable=False),
        sa.Column("chunk_index", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("vec", sa.LargeBinary),
    )
    op.create_index("ix_search_chunk_fid", "search_chunk", ["fid", "chunk_index"])
    op.execute("CREATE INDEX ix_search_chunk_tsv ON search_chunk USING gin (to_tsvector('english', text))")

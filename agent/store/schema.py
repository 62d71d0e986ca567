"""Bring a database to the current schema with Alembic (agent/store/migrations), at every start.

A database made before migrations existed (tables, no ``alembic_version``) is recognised as revision 0001
and upgraded from there. Replicas starting together take turns: PostgreSQL's advisory lock (SQLite's
write transaction holds the whole file anyway).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_KEY = 0x6167656E74  # "agent": the advisory lock replicas take while migrating


def config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def upgrade(connection: sa.Connection) -> None:
    """Migrate the database this connection is open on to the head revision (within its transaction)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    tables = set(sa.inspect(connection).get_table_names())
    cfg = config(connection)
    if "run" in tables and "alembic_version" not in tables:
        command.stamp(cfg, "0001")  # made by the first release, before migrations
    command.upgrade(cfg, "head")

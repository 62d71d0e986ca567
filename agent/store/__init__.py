"""Persistence: SQLAlchemy Core async; SQLite by default, Postgres by URL."""

from agent.store.db import KINDS, Page, Store

__all__ = ["KINDS", "Page", "Store"]

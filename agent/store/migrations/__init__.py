"""Alembic migrations of the store's schema; ``upgrade(connection)`` brings any database to the head."""

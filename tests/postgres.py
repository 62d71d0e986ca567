"""A real PostgreSQL for the tests: the cluster .ci/run started (AGENT_TEST_POSTGRES_URL), or a throwaway
one started here with .ci/postgres.sh; each service under test gets a fresh database of its own."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres.sh"
_names = itertools.count()


def cluster() -> Iterator[str]:
    """The admin URL of a PostgreSQL cluster; a skip without one, a failure when CI=true."""
    url = os.environ.get("AGENT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    run_dir = tempfile.mkdtemp(prefix="agent-pg-")
    os.chmod(run_dir, 0o777)  # the cluster runs as the non-root postgres user
    started = subprocess.run(["bash", str(SCRIPT), "start", run_dir], capture_output=True, text=True)
    if started.returncode != 0:
        shutil.rmtree(run_dir, ignore_errors=True)
        reason = f"no PostgreSQL server (.ci/postgres.sh install): {started.stderr.strip()[-500:]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", run_dir], check=False)


def fresh_database(admin_url: str) -> str:
    """Create an empty database on the cluster; its SQLAlchemy URL."""
    import asyncpg

    name = f"t{os.getpid()}_{next(_names)}"
    url = make_url(admin_url)

    async def create() -> None:
        conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return url.set(database=name).render_as_string(hide_password=False)

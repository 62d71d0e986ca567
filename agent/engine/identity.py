"""A replica's stable name, so that a restarted process recognises the runs it left and resumes them at once.

The name is ``AGENT_INSTANCE_ID`` when set; otherwise it is kept in the data directory, in the first of
``replica-<n>.id`` whose lock no live process holds (the lock goes with the process, also on kill -9).
Two processes on one data directory thus never share a name, and a restarted one takes its old name back.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path
from typing import IO

SLOTS = 64


class Identity:
    def __init__(self, name: str, lock: IO[str] | None = None) -> None:
        self.name, self._lock = name, lock

    @classmethod
    def claim(cls, data_dir: Path, configured: str | None = None) -> Identity:
        if configured:
            return cls(configured)
        data_dir.mkdir(parents=True, exist_ok=True)
        for slot in range(SLOTS):
            path = data_dir / f"replica-{slot}.id"
            fh = path.open("a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            fh.seek(0)
            name = fh.read().strip()
            if not name:
                name = secrets.token_hex(8)
                fh.write(name)
                fh.flush()
                os.fsync(fh.fileno())
            return cls(name, fh)
        return cls(secrets.token_hex(8))  # more live processes than slots: a name for this process only

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

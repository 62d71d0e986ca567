"""Sandboxed, stateful Python for the code_interpreter tool: Docker containers with a long-lived kernel.

    manager = SandboxManager()            # image "agent-sandbox:latest"
    await manager.start()                 # sweep leftovers, warm the pool
    session = await manager.session(thread_id)
    result = await session.execute("import numpy as np\\nnp.arange(3).sum()")
    result.result                         # '3'
    await manager.close()

See sandbox/README.md for the image and the hardening.
"""

from .errors import PathError, SandboxError, SandboxUnavailable, SessionClosed, SessionLimit, StorageFull
from .limits import Limits
from .manager import SandboxManager
from .results import ErrorInfo, ExecResult, FileInfo
from .session import Session

__all__ = [
    "ErrorInfo",
    "ExecResult",
    "FileInfo",
    "Limits",
    "PathError",
    "SandboxError",
    "SandboxManager",
    "SandboxUnavailable",
    "Session",
    "SessionClosed",
    "SessionLimit",
    "StorageFull",
]

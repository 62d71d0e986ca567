"""Exceptions of the sandbox package.

    SandboxError                  base class
    ├── SandboxUnavailable        engine unreachable, image missing, container failed to start
    ├── SessionClosed             the session was closed, dropped or reaped
    ├── SessionLimit              the owner already has its maximum of live sessions (retry later)
    ├── PathError (ValueError)    a path that is not inside /mnt/data
    └── StorageFull               /mnt/data is full

Errors of the executed code are not exceptions: they come back in ``ExecResult.error``.
A missing file raises the built-in ``FileNotFoundError``.
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base class of all sandbox errors."""


class SandboxUnavailable(SandboxError):
    """The Docker engine or the image is not available, or a container could not be started."""


class SessionClosed(SandboxError):
    """The session is closed (dropped, reaped or the manager shut down)."""


class SessionLimit(SandboxError):
    """The owner already has ``max_sessions_per_owner`` live sessions; retry when one is closed."""


class PathError(SandboxError, ValueError):
    """The path does not stay inside /mnt/data."""


class StorageFull(SandboxError):
    """/mnt/data has no space left."""

"""What one execution returns."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileInfo:
    """A regular file under /mnt/data."""

    path: str
    """Relative to /mnt/data, with forward slashes."""
    size: int
    mtime: float

    @property
    def sandbox_path(self) -> str:
        """The path as the code inside the sandbox sees it (``/mnt/data/...``)."""
        return f"/mnt/data/{self.path}"


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised by the executed code (or a sandbox-level failure reported the same way)."""

    name: str
    value: str
    traceback: str


@dataclass
class ExecResult:
    stdout: str = ""
    stderr: str = ""
    error: ErrorInfo | None = None
    result: str | None = None
    """``repr`` of the value of a trailing expression, if any and not None."""
    images: list[bytes] = field(default_factory=list)
    """PNG images of the matplotlib figures left open by the code."""
    files: list[FileInfo] = field(default_factory=list)
    """Files created or changed under /mnt/data during this call, as the kernel listed them (untrusted:
    valid names, each once, at most 1000; sizes are hints, the host reads with its own limits)."""
    files_total: int = 0
    """How many changed files the kernel saw (may exceed ``len(files)``)."""
    files_complete: bool = True
    """False when the kernel stopped scanning /mnt/data early (too many entries): more may have changed."""
    timed_out: bool = False
    oom_killed: bool = False
    reset: bool = False
    """The kernel was restarted: variables and imports are lost, files in /mnt/data are kept."""
    truncated: bool = False
    """stdout or stderr was cut to ``Limits.output_bytes``."""
    duration: float = 0.0
    """Wall-clock seconds as seen by the host."""

    @property
    def ok(self) -> bool:
        return self.error is None

"""Resource limits of one sandbox session."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Per-session limits; every field is enforced by the engine or the kernel, all on by default."""

    memory_mb: int = 512
    """Container memory; memory+swap is set to the same value (no swap)."""
    cpus: float = 1.0
    """CPU quota in cores."""
    pids: int = 64
    """Maximum number of processes and threads in the container."""
    tmp_mb: int = 64
    """Size of the /tmp tmpfs."""
    data_mb: int = 256
    """Size of /mnt/data (a tmpfs volume the host reads and writes directly)."""
    output_bytes: int = 65536
    """stdout and stderr are each cut to this many bytes per call."""
    timeout: float = 30.0
    """Default per-call timeout in seconds."""
    nofile: int = 256
    """Open-file limit inside the container."""
    shm_mb: int = 64
    """Size of /dev/shm (multiprocessing needs it)."""
    interrupt_grace: float = 0.5
    """After the in-kernel alarm should have fired, wait this long before interrupting from the host."""
    kill_grace: float = 1.0
    """After the host's interrupt, wait this long before killing and restarting the kernel."""
    start_timeout: float = 60.0
    """How long a container may take until its kernel answers."""

    def __post_init__(self) -> None:
        for name in ("memory_mb", "pids", "tmp_mb", "data_mb", "output_bytes", "nofile", "shm_mb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive")
        if self.cpus <= 0 or self.timeout <= 0:
            raise ValueError("Limits.cpus and Limits.timeout must be positive")

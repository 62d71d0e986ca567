"""One hardened container with its two tmpfs volumes (blocking docker-py calls; run them in a thread).

A box is ``<prefix>-<id>`` plus the volumes ``<prefix>-<id>-k`` (1 MiB: the kernel's socket and exit
file, mounted at /run/k) and ``<prefix>-<id>-d`` (``Limits.data_mb``: /mnt/data). Both are ``local``
tmpfs volumes: size-capped, gone with the box, and readable and writable by the host through their
mountpoints, so neither the calls nor the file transfers go through the Docker API.
The container's PID 1 is the kernel supervisor (see kernel.py); the box is never stopped while in use,
because stopping it would empty the tmpfs volumes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import LogConfig, Mount, Ulimit

from . import kernel
from .errors import SandboxUnavailable
from .hostview import HostView, container_state
from .limits import Limits

log = logging.getLogger(__name__)

SANDBOX_USER = "65534:65534"
TMPFS_OWNER = "uid=65534,gid=65534,mode=0700"
KERNEL_DIR = "/run/k"
SOCKET_NAME = "k.sock"
ENVIRONMENT = {
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp/mpl",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
}
DEFAULT_PRELOAD = ("numpy", "pandas", "matplotlib.pyplot", "PIL.Image")


def kernel_source() -> str:
    return Path(kernel.__file__).read_text(encoding="utf-8")


@dataclass(frozen=True)
class BoxSpec:
    """Everything needed to create a box; the same for every box of one manager."""

    image: str
    limits: Limits
    label_prefix: str
    instance: str
    runtime: str | None = None
    attach: bool = False
    """Talk to the kernel over the container's attached stdin/stdout instead of a Unix socket."""
    preload: tuple[str, ...] = DEFAULT_PRELOAD
    host: HostView = HostView()
    """Where this process runs relative to the engine (see hostview.py)."""

    def labels(self) -> dict[str, str]:
        return {
            f"{self.label_prefix}.managed": "1",
            f"{self.label_prefix}.instance": self.instance,
            f"{self.label_prefix}.created": str(int(time.time())),
            f"{self.label_prefix}.host": socket.gethostname(),
            f"{self.label_prefix}.pid": str(os.getpid()),
            **self.host.owner_labels(self.label_prefix),
        }


@dataclass
class Box:
    name: str
    container: Container
    kernel_dir: str
    """Host mountpoint of /run/k."""
    data_dir: str
    """Host mountpoint of /mnt/data."""
    volumes: list[str] = field(default_factory=list)
    oom_file: str | None = None
    created: float = field(default_factory=time.monotonic)
    host: HostView = HostView()

    @property
    def socket_path(self) -> str:
        return os.path.join(self.kernel_dir, SOCKET_NAME)

    def oom_count(self) -> int | None:
        """The cgroup's OOM-kill counter (counts child-process kills too), or None if not readable."""
        if self.oom_file is None:
            return None
        try:
            with open(self.oom_file, encoding="ascii") as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            return None
        return None

    def exit_status(self) -> int | None:
        """Exit status of the last kernel that died, as written by the supervisor (untrusted, advisory)."""
        path = os.path.join(self.kernel_dir, "exit")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fh:
                status = json.loads(fh.read(4096)).get("status")
        except (OSError, ValueError, AttributeError):
            return None
        return status if isinstance(status, int) else None


def _mem(mb: int) -> str:
    return f"{mb}m"


def create_box(client: docker.DockerClient, spec: BoxSpec) -> Box:
    """Create a hardened container and its volumes (not started yet: see ``start_box``)."""
    lim = spec.limits
    name = f"{spec.label_prefix}-{uuid.uuid4().hex[:10]}"
    labels = spec.labels()
    volumes: list[str] = []
    container: Container | None = None
    try:
        for suffix, size in (("k", "1m"), ("d", _mem(lim.data_mb))):
            vol = client.volumes.create(
                name=f"{name}-{suffix}",
                driver="local",
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={size},{TMPFS_OWNER}"},
                labels=labels,
            )
            volumes.append(vol.name)
        config = {
            "socket": None if spec.attach else f"{KERNEL_DIR}/{SOCKET_NAME}",
            "state_dir": KERNEL_DIR,
            "data_dir": "/mnt/data",
            "preload": list(spec.preload),
        }
        container = client.containers.create(
            spec.image,
            entrypoint=["python3"],
            command=["-c", kernel_source(), "supervise", json.dumps(config)],
            name=name,
            labels=labels,
            hostname="sandbox",
            user=SANDBOX_USER,
            working_dir="/mnt/data",
            environment=ENVIRONMENT,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={_mem(lim.tmp_mb)},mode=1777"},
            mounts=[
                Mount(KERNEL_DIR, volumes[0], type="volume"),
                Mount("/mnt/data", volumes[1], type="volume"),
            ],
            mem_limit=_mem(lim.memory_mb),
            memswap_limit=_mem(lim.memory_mb),
            nano_cpus=int(lim.cpus * 1e9),
            pids_limit=lim.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ulimits=[Ulimit(name="nofile", soft=lim.nofile, hard=lim.nofile)],
            ipc_mode="private",
            shm_size=_mem(lim.shm_mb),
            log_config=LogConfig(type="none"),
            runtime=spec.runtime,
            stdin_open=spec.attach,
            init=False,
        )
        return Box(name, container, "", "", volumes, host=spec.host)
    except Exception as exc:
        destroy_box(client, name, volumes, container)
        if isinstance(exc, docker.errors.ImageNotFound):
            raise SandboxUnavailable(f"sandbox image {spec.image!r} not found") from exc
        if isinstance(exc, docker.errors.DockerException):
            raise SandboxUnavailable(f"could not start a sandbox container: {exc}") from exc
        raise


def start_box(client: docker.DockerClient, box: Box) -> None:
    """Start the container and learn its host-side paths; the kernel may still be starting."""
    try:
        box.container.start()
        box.container.reload()
        mountpoints = [str(client.volumes.get(v).attrs["Mountpoint"]) for v in box.volumes]
    except docker.errors.DockerException as exc:
        destroy_box(client, box.name, box.volumes, box.container)
        raise SandboxUnavailable(f"could not start a sandbox container: {exc}") from exc
    kernel_dir, data_dir = (box.host.local_path(p) for p in mountpoints)
    if kernel_dir is None or data_dir is None:
        destroy_box(client, box.name, box.volumes, box.container)
        raise SandboxUnavailable(f"the sandbox volumes {mountpoints} are not visible from this container")
    box.kernel_dir, box.data_dir = kernel_dir, data_dir
    box.oom_file = _oom_file(box.container)


def _oom_file(container: Container) -> str | None:
    """Find the container's memory cgroup on this host (v1 ``memory.oom_control`` or v2 ``memory.events``).

    None when this process does not see it: State.Pid is a pid of the engine's host, so in another pid
    namespace (a containerised service) ``/proc/<pid>`` is absent or an unrelated process of our own; a
    cgroup path must name the container to count."""
    pid = container.attrs.get("State", {}).get("Pid")
    cid = container.id or ""
    if not pid or len(cid) < 12:
        return None
    try:
        with open(f"/proc/{pid}/cgroup", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if cid not in path or "/.." in path:
            continue
        if "memory" in controllers.split(","):
            candidate = f"/sys/fs/cgroup/memory{path}/memory.oom_control"
        elif controllers == "":
            candidate = f"/sys/fs/cgroup{path}/memory.events"
        else:
            continue
        if os.path.exists(candidate):
            return candidate
    return None


def signal_box(box: Box, sig: str) -> bool:
    """Send a signal to the supervisor (PID 1). False if the container is gone."""
    try:
        box.container.kill(signal=sig)
    except docker.errors.DockerException:
        return False
    return True


def box_running(box: Box) -> bool:
    try:
        box.container.reload()
    except docker.errors.DockerException:
        return False
    return bool(box.container.attrs.get("State", {}).get("Running"))


def destroy_box(
    client: docker.DockerClient, name: str, volumes: list[str], container: Container | None = None
) -> None:
    """Remove the container and its volumes; never raises."""
    try:
        (container or client.containers.get(name)).remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except Exception as exc:
        log.warning("could not remove sandbox container %s: %s", name, exc)
    for vol in volumes:
        try:
            client.volumes.get(vol).remove(force=True)
        except docker.errors.NotFound:
            pass
        except Exception as exc:
            log.warning("could not remove sandbox volume %s: %s", vol, exc)


OwnerLookup = Callable[[str], str | None]


def _orphaned(labels: dict[str, str] | None, label_prefix: str, view: HostView, started: OwnerLookup) -> bool:
    """Left behind by a process that is gone: another live service on this engine keeps its sandboxes.

    ``started(container_id)`` is the start time of a running container, None if it is not running."""
    labels = labels or {}
    owner = labels.get(f"{label_prefix}.container")
    if owner:
        if started(owner) != labels.get(f"{label_prefix}.started"):
            return True  # the service's container is gone, stopped, or was restarted since
        if owner != view.container_id:
            return False  # a live service in another container
        # our own container in this incarnation: its pids are ours, go on below
    host, pid = labels.get(f"{label_prefix}.host"), labels.get(f"{label_prefix}.pid")
    if host != socket.gethostname() or not (pid or "").isdigit():
        return host is None  # unlabelled leftovers are ours to sweep; another host's are not
    try:
        os.kill(int(pid or "0"), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _start_times(client: docker.DockerClient) -> OwnerLookup:
    """Memoised: when a container runs, its State.StartedAt; None if it is gone or stopped. Engine errors
    propagate (sweep then keeps everything: nothing is removed on a guess)."""
    cache: dict[str, str | None] = {}

    def started(container_id: str) -> str | None:
        if container_id not in cache:
            attrs = container_state(client, container_id)
            state = attrs.get("State") if attrs else None
            running = isinstance(state, dict) and state.get("Running")
            cache[container_id] = (
                str(state.get("StartedAt", "")) if running and isinstance(state, dict) else None
            )
        return cache[container_id]

    return started


def sweep(client: docker.DockerClient, label_prefix: str, view: HostView = HostView()) -> int:  # noqa: B008
    """Remove the containers and volumes carrying ``<label_prefix>.managed`` whose owning process is gone;
    returns how many containers."""
    selector = {"label": f"{label_prefix}.managed=1"}
    started = _start_times(client)
    containers = [
        c
        for c in client.containers.list(all=True, filters=selector)
        if _orphaned(c.labels, label_prefix, view, started)
    ]
    for c in containers:
        with contextlib.suppress(docker.errors.DockerException):
            c.remove(force=True, v=True)
    for vol in client.volumes.list(filters=selector):
        if _orphaned(vol.attrs.get("Labels"), label_prefix, view, started):
            with contextlib.suppress(docker.errors.DockerException):
                vol.remove(force=True)
    return len(containers)

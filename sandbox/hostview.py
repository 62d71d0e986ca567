"""Where this process runs relative to the Docker engine: on the engine's host, or in one of its containers.

A service on the host reaches a box's tmpfs volumes through the ``Mountpoint`` paths the engine reports,
finds the box's memory cgroup through ``/proc/<pid>/cgroup`` and tells its own leftovers by hostname and
pid. A service in a container (the image of the top-level Dockerfile) sees none of that directly:

* host paths are translated through the service container's own mounts (its inspect data, not anything a
  sandbox controls). The engine's volume directory must be one of them, mounted with ``rslave``
  propagation, because each box's tmpfs is mounted after the service started;
* the engine's pids are not in the service's pid namespace (see ``container._oom_file``);
* hostname and pid repeat when the container restarts (pid 1 again), so boxes also carry the service's
  container id and start time, and whether their owner lives is asked of the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import docker
import docker.errors

_CONTAINER_FILE = re.compile(r"/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)(?:\s|$)")
PROPAGATING = frozenset({"rslave", "slave", "rshared", "shared"})


@dataclass(frozen=True)
class HostMount:
    source: str
    """Path on the engine's host."""
    destination: str
    """Where this process sees it."""
    propagation: str = ""


@dataclass(frozen=True)
class HostView:
    """This process's view of the engine's host. ``HostView()``: on the host itself."""

    container_id: str | None = None
    started_at: str = ""
    mounts: tuple[HostMount, ...] = ()

    @property
    def containerised(self) -> bool:
        return self.container_id is not None

    def _mount_of(self, host_path: str) -> HostMount | None:
        best: HostMount | None = None
        for m in self.mounts:
            src = m.source.rstrip("/") or "/"
            inside = host_path == src or host_path.startswith(src if src == "/" else src + "/")
            if inside and (best is None or len(src) > len(best.source.rstrip("/"))):
                best = m
        return best

    def local_path(self, host_path: str) -> str | None:
        """Where ``host_path`` (as the engine names it) is seen here; None if it is not visible."""
        if not self.containerised:
            return host_path
        if not host_path.startswith("/") or "/../" in host_path + "/":
            return None
        m = self._mount_of(host_path)
        if m is None:
            return None
        rest = host_path[len(m.source.rstrip("/")) :]
        return (m.destination.rstrip("/") + rest) or "/"

    def volumes_problem(self, volume_root: str) -> str | None:
        """Why boxes' volumes under ``volume_root`` (host path) would not be reachable here, or None."""
        if not self.containerised:
            return None
        how = f"--mount type=bind,source={volume_root},target={volume_root},bind-propagation=rslave"
        m = self._mount_of(volume_root.rstrip("/") + "/box/_data")
        if m is None:
            return f"this service runs in a container without the engine's volume directory: add {how}"
        if m.propagation not in PROPAGATING:
            return (
                f"{m.destination} is mounted with propagation {m.propagation or 'private'!r}, so sandbox "
                f"volumes mounted later stay invisible: use {how}"
            )
        return None

    def owner_labels(self, prefix: str) -> dict[str, str]:
        if not self.containerised:
            return {}
        return {f"{prefix}.container": self.container_id or "", f"{prefix}.started": self.started_at}


def own_container_id(mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The id of the container this process runs in, from the engine's bind mounts of /etc/hostname etc."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    match = _CONTAINER_FILE.search(text)
    return match.group(1) if match else None


def container_state(client: docker.DockerClient, container_id: str) -> dict[str, object] | None:
    """``inspect`` of a container, or None if the engine does not know it."""
    try:
        return client.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return None


def detect(client: docker.DockerClient, mountinfo: str = "/proc/self/mountinfo") -> HostView:
    """This process's view; on the host (or in a container of another engine) ``HostView()``."""
    cid = own_container_id(mountinfo)
    attrs = container_state(client, cid) if cid else None
    if not cid or attrs is None:
        return HostView()
    state = attrs.get("State")
    started = str(state.get("StartedAt", "")) if isinstance(state, dict) else ""
    mounts = tuple(
        HostMount(str(m["Source"]), str(m["Destination"]), str(m.get("Propagation") or ""))
        for m in attrs.get("Mounts") or []  # type: ignore[attr-defined]
        if isinstance(m, dict) and m.get("Source") and m.get("Destination")
    )
    return HostView(cid, started, mounts)


def volume_root(client: docker.DockerClient) -> str:
    """The engine's directory of ``local`` volumes (on its host)."""
    root = str(client.info().get("DockerRootDir") or "/var/lib/docker")
    return root.rstrip("/") + "/volumes"

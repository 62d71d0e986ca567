"""The sandbox seen from a containerised service: host paths, own container, and whose leftovers are whose.

Pure logic (no engine): the end-to-end proof is tests/deploy/test_service_image.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sandbox.container import _orphaned
from sandbox.hostview import HostMount, HostView, own_container_id

CID = "a" * 64
OTHER = "b" * 64
VOLUMES = HostMount("/var/lib/docker/volumes", "/var/lib/docker/volumes", "rslave")
DATA = HostMount("/var/lib/docker/volumes/agent-data/_data", "/data", "")
IN_CONTAINER = HostView(CID, "2026-01-01T00:00:00Z", (DATA, VOLUMES))


def test_on_the_host_paths_are_the_engines() -> None:
    view = HostView()
    assert view.local_path("/var/lib/docker/volumes/x-k/_data") == "/var/lib/docker/volumes/x-k/_data"
    assert view.volumes_problem("/var/lib/docker/volumes") is None
    assert view.owner_labels("p") == {}


def test_in_a_container_paths_go_through_its_mounts() -> None:
    view = HostView(CID, "t", (DATA, HostMount("/var/lib/docker/volumes", "/host-volumes", "rslave")))
    assert view.local_path("/var/lib/docker/volumes/box-k/_data") == "/host-volumes/box-k/_data"
    assert view.local_path("/var/lib/docker/volumes/agent-data/_data/f") == "/data/f"  # longest source
    assert view.local_path("/var/lib/docker/volumes-evil/x") is None  # a prefix, not a parent
    assert view.local_path("/var/lib/docker/volumes/../containers/x") is None
    assert view.local_path("/srv/other") is None
    assert view.owner_labels("p") == {"p.container": CID, "p.started": "t"}


def test_a_container_without_the_volume_directory_is_told_how_to_mount_it() -> None:
    missing = HostView(CID, "t", (DATA,)).volumes_problem("/var/lib/docker/volumes")
    assert missing and "bind-propagation=rslave" in missing and "source=/var/lib/docker/volumes" in missing
    private = HostView(CID, "t", (DATA, HostMount("/var/lib/docker/volumes", "/v", "rprivate")))
    problem = private.volumes_problem("/var/lib/docker/volumes")
    assert problem and "rprivate" in problem
    assert IN_CONTAINER.volumes_problem("/var/lib/docker/volumes/") is None


def test_own_container_id_comes_from_the_engines_bind_mounts(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "27 1 254:0 / / rw - overlay overlay rw\n"
        f"610 27 254:0 /var/lib/docker/containers/{CID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw\n"
    )
    assert own_container_id(str(info)) == CID
    info.write_text("27 1 254:0 / / rw - ext4 /dev/vda rw\n")
    assert own_container_id(str(info)) is None
    assert own_container_id(str(tmp_path / "absent")) is None


def labels(**extra: str) -> dict[str, str]:
    return {"p.managed": "1", "p.host": socket.gethostname(), "p.pid": str(os.getpid()), **extra}


def test_leftovers_of_a_restarted_or_removed_service_container_are_swept() -> None:
    running = {CID: "2026-01-01T00:00:00Z", OTHER: "2026-02-02T00:00:00Z"}.get
    mine_now = labels(**{"p.container": CID, "p.started": "2026-01-01T00:00:00Z"})
    assert not _orphaned(mine_now, "p", IN_CONTAINER, running)  # this incarnation, this live pid
    # same hostname and pid 1 after `docker restart`: only the start time tells them apart
    earlier = labels(**{"p.container": CID, "p.started": "2025-12-31T00:00:00Z"})
    assert _orphaned(earlier, "p", IN_CONTAINER, running)
    gone = labels(**{"p.container": "c" * 64, "p.started": "x"})
    assert _orphaned(gone, "p", IN_CONTAINER, running)
    other_live = {
        "p.host": "elsewhere",
        "p.pid": "1",
        "p.container": OTHER,
        "p.started": running(OTHER) or "",
    }
    assert not _orphaned(other_live, "p", IN_CONTAINER, running)
    assert not _orphaned(other_live, "p", HostView(), running)  # a host-run service asks the engine too
    assert _orphaned({**other_live, "p.started": "old"}, "p", HostView(), running)
    # no container label: the host-run rules (another host's are kept, unlabelled ones swept)
    assert not _orphaned({"p.host": "elsewhere", "p.pid": "1"}, "p", IN_CONTAINER, running)
    assert _orphaned({"p.managed": "1"}, "p", IN_CONTAINER, running)

"""The public surface and the pieces that need no Docker engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sandbox
from sandbox import FileInfo, Limits, PathError, StorageFull
from sandbox import files as fs


def test_public_names_are_pinned() -> None:
    assert sorted(sandbox.__all__) == [
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


def test_limits_defaults_and_validation() -> None:
    lim = Limits()
    assert (lim.memory_mb, lim.cpus, lim.pids, lim.tmp_mb, lim.data_mb) == (512, 1.0, 64, 64, 256)
    assert (lim.output_bytes, lim.timeout) == (65536, 30.0)
    with pytest.raises(ValueError):
        Limits(memory_mb=0)


@pytest.mark.parametrize(
    "path", ["../x", "/etc/passwd", "a/../../x", "", "/mnt/data", "/mnt/database/x", "a\0b"]
)
def test_paths_outside_data_are_refused(path: str) -> None:
    with pytest.raises(PathError):
        fs.split_path(path)


def test_paths_inside_data() -> None:
    assert fs.split_path("/mnt/data/a/b.csv") == ["a", "b.csv"]
    assert fs.split_path("./a//b.csv") == ["a", "b.csv"]


def test_host_side_files_never_follow_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    (root / "link").symlink_to(secret)
    (root / "dirlink").symlink_to(tmp_path)
    with pytest.raises(PathError):
        fs.read_file(str(root), "link")
    with pytest.raises(PathError):
        fs.read_file(str(root), "dirlink/secret")
    with pytest.raises(PathError):
        fs.write_file(str(root), "link", b"x")
    with pytest.raises(PathError):
        fs.write_file(str(root), "dirlink/new", b"x")
    assert secret.read_text() == "host secret"
    assert not (tmp_path / "new").exists()
    assert fs.list_files(str(root)) == []


def test_host_side_round_trip(tmp_path: Path) -> None:
    info = fs.write_file(str(tmp_path), "/mnt/data/sub/x.bin", b"\x00\x01")
    assert (info.path, info.size) == ("sub/x.bin", 2)
    assert fs.read_file(str(tmp_path), "sub/x.bin") == b"\x00\x01"
    assert [f.path for f in fs.list_files(str(tmp_path))] == ["sub/x.bin"]
    assert isinstance(fs.list_files(str(tmp_path))[0], FileInfo)
    if os.geteuid() == 0:
        assert (tmp_path / "sub" / "x.bin").stat().st_uid == 65534


def test_storage_full_is_reported(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    (tmp_path / "full").symlink_to("/dev/full")
    with pytest.raises(PathError):  # a symlink, even to /dev/full, is refused before any write
        fs.write_file(str(tmp_path), "full", b"x")
    assert StorageFull.__mro__[1] is sandbox.SandboxError

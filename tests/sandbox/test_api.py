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


def test_host_side_files_refuse_special_files_without_blocking(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    os.mkfifo(root / "fifo")
    os.mkfifo(root / "dir")
    held = os.open(root / "fifo", os.O_RDONLY | os.O_NONBLOCK)  # a reader: a blocking open would succeed
    try:
        for call in (
            lambda: fs.write_file(str(root), "fifo", b"x"),
            lambda: fs.read_file(str(root), "fifo"),
            lambda: fs.copy_out(str(root), "fifo", str(tmp_path / "out"), 10),
            lambda: fs.write_file(str(root), "dir/x", b"x"),
        ):
            with pytest.raises(PathError):
                call()
    finally:
        os.close(held)
    assert not (tmp_path / "out").exists()


def test_copy_out_stops_at_the_limit_whatever_the_size(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    with open(root / "sparse", "wb") as fh:
        fh.truncate(2 << 30)
    (root / "small").write_bytes(b"12345")
    with pytest.raises(fs.TooLarge) as info:
        fs.copy_out(str(root), "sparse", str(tmp_path / "a"), 1 << 20)
    assert info.value.size == 2 << 30 and not (tmp_path / "a").exists()
    got = fs.copy_out(str(root), "small", str(tmp_path / "b"), 5)
    assert got.size == 5 and (tmp_path / "b").read_bytes() == b"12345"
    with pytest.raises(fs.TooLarge):
        fs.copy_out(str(root), "small", str(tmp_path / "c"), 4)
    with pytest.raises(FileExistsError):  # never overwrites a host file
        fs.copy_out(str(root), "small", str(tmp_path / "b"), 5)

"""Confined host-side access to a session's /mnt/data through its volume's mountpoint.

The sandbox controls that directory, so every path is opened component by component relative to the
root's file descriptor with ``O_NOFOLLOW``: a symlink planted by the sandboxed code (say to /etc/shadow)
can never make the host read or write outside the volume, with no race between check and use.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import PathError, StorageFull
from .results import FileInfo

DATA_DIR = "/mnt/data"
SANDBOX_UID = 65534
MAX_LIST = 10000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_path(path: str) -> list[str]:
    """``/mnt/data/a/b.csv`` or ``a/b.csv`` -> ``["a", "b.csv"]``; anything escaping raises PathError."""
    if "\x00" in path:
        raise PathError("path contains a NUL byte")
    if path.startswith("/"):
        if path != DATA_DIR and not path.startswith(DATA_DIR + "/"):
            raise PathError(f"{path!r} is outside {DATA_DIR}")
        path = path[len(DATA_DIR) :]
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise PathError(f"invalid path {path!r}: name a file inside {DATA_DIR}")
    return parts


@contextmanager
def _dir_fd(root: str, parts: list[str], create: bool) -> Iterator[int]:
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    os.chown(part, SANDBOX_UID, SANDBOX_UID, dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    pass
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise PathError(f"{part!r} is not a directory") from exc
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def write_file(root: str, path: str, data: bytes) -> FileInfo:
    parts = split_path(path)
    with _dir_fd(root, parts[:-1], create=True) as dfd:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(parts[-1], flags, 0o644, dir_fd=dfd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR):
                raise PathError(f"{path!r} is not a regular file") from exc
            raise
        try:
            os.fchown(fd, SANDBOX_UID, SANDBOX_UID)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            st = os.fstat(fd)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                os.ftruncate(fd, 0)
                raise StorageFull(f"no space left in {DATA_DIR} for {path!r}") from exc
            raise
        finally:
            os.close(fd)
    return FileInfo("/".join(parts), st.st_size, st.st_mtime)


def read_file(root: str, path: str, max_bytes: int | None = None) -> bytes:
    parts = split_path(path)
    with _dir_fd(root, parts[:-1], create=False) as dfd:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathError(f"{path!r} is a symbolic link") from exc
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PathError(f"{path!r} is not a regular file")
            chunks = []
            total = 0
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
                total += len(chunk)
                if max_bytes is not None and total > max_bytes:
                    raise PathError(f"{path!r} is larger than {max_bytes} bytes")
            return b"".join(chunks)
        finally:
            os.close(fd)


def list_files(root: str) -> list[FileInfo]:
    """Every regular file under root (symlinks and special files are skipped)."""
    found: list[FileInfo] = []

    def walk(fd: int, prefix: str) -> None:
        for entry in os.scandir(fd):
            if len(found) >= MAX_LIST:
                return
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                found.append(FileInfo(prefix + entry.name, st.st_size, st.st_mtime))
            elif stat.S_ISDIR(st.st_mode):
                try:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                try:
                    walk(sub, prefix + entry.name + "/")
                finally:
                    os.close(sub)

    root_fd = os.open(root, _DIR_FLAGS)
    try:
        walk(root_fd, "")
    finally:
        os.close(root_fd)
    return sorted(found, key=lambda f: f.path)

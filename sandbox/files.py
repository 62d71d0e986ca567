"""Confined host-side access to a session's /mnt/data through its volume's mountpoint.

The sandbox controls that directory, so every path is opened component by component relative to the
root's file descriptor with ``O_NOFOLLOW``: a symlink planted by the sandboxed code (say to /etc/shadow)
can never make the host read or write outside the volume, with no race between check and use.
Every open also carries ``O_NONBLOCK`` and the opened descriptor must be a regular file (``fstat``), in
both directions: a FIFO, socket or device planted by the sandbox is refused and never blocks a thread.
Copies move at most ``CHUNK`` bytes at a time and stop at a byte limit, whatever size the file claims.
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
CHUNK = 1 << 20
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
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


def _open_regular(dfd: int, name: str, path: str, flags: int) -> int:
    """Open ``name`` in ``dfd`` without following a link or blocking; refuse anything but a regular file."""
    try:
        fd = os.open(name, flags | _FILE_FLAGS, 0o644, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
            raise PathError(f"{path!r} is not a regular file") from exc
        raise
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise PathError(f"{path!r} is not a regular file")
    return fd


def write_file(root: str, path: str, data: bytes) -> FileInfo:
    parts = split_path(path)
    with _dir_fd(root, parts[:-1], create=True) as dfd:
        fd = _open_regular(dfd, parts[-1], path, os.O_WRONLY | os.O_CREAT)
        try:
            os.ftruncate(fd, 0)  # only now: truncating on open would happen before the type check
            os.fchown(fd, SANDBOX_UID, SANDBOX_UID)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view[:CHUNK]) :]
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
        fd = _open_regular(dfd, parts[-1], path, os.O_RDONLY)
        try:
            if max_bytes is not None and os.fstat(fd).st_size > max_bytes:
                raise PathError(f"{path!r} is larger than {max_bytes} bytes")
            chunks = []
            total = 0
            while chunk := os.read(fd, CHUNK):
                chunks.append(chunk)
                total += len(chunk)
                if max_bytes is not None and total > max_bytes:
                    raise PathError(f"{path!r} is larger than {max_bytes} bytes")
            return b"".join(chunks)
        finally:
            os.close(fd)


class TooLarge(PathError):
    """The file is larger than the bytes left for it."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        super().__init__(f"{path!r} has {size} bytes, more than the {limit} bytes left")
        self.size = size


def copy_out(root: str, path: str, dest: str, max_bytes: int) -> FileInfo:
    """Copy ``/mnt/data/<path>`` to the new host file ``dest`` (created exclusively), ``CHUNK`` by ``CHUNK``.

    Refuses (TooLarge) a file whose size (``fstat``, the host's view) exceeds ``max_bytes`` before reading a
    byte, and one that grows past ``max_bytes`` while copied (a sparse file is read only up to the limit);
    ``dest`` is removed on any failure. Raises PathError, FileNotFoundError, TooLarge."""
    parts = split_path(path)
    name = "/".join(parts)
    with _dir_fd(root, parts[:-1], create=False) as dfd:
        fd = _open_regular(dfd, parts[-1], name, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            if st.st_size > max_bytes:
                raise TooLarge(name, st.st_size, max_bytes)
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            total = 0
            try:
                while chunk := os.read(fd, min(CHUNK, max_bytes + 1 - total)):
                    total += len(chunk)
                    if total > max_bytes:
                        raise TooLarge(name, total, max_bytes)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view) :]
            except BaseException:
                os.close(out)
                os.unlink(dest)
                raise
            os.close(out)
        finally:
            os.close(fd)
    return FileInfo(name, total, st.st_mtime)


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

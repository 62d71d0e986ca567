"""The sandbox boundary under attack (issue 11): nothing the sandbox controls decides where the host connects
or what it opens, no host thread blocks on a sandbox file, outputs are bounded by the host, PID 1 is out of
reach. Every test runs on the real engine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import PathError, SandboxManager, Session, SessionLimit
from sandbox import files as fs
from sandbox.channel import Peer, connect_unix
from sandbox.container import SOCKET_NAME

from .conftest import LIMITS

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(600)]

RACE_SECONDS = float(os.environ.get("SANDBOX_RACE_SECONDS", "15"))

SWAPPER = """
import os, socket, threading
HONEY = {honey!r}
d = '/run/k'
os.rename(d + '/k.sock', d + '/k.real')  # the kernel's own socket is hidden for good
decoy = socket.socket(socket.AF_UNIX)  # a plain socket: passes an lstat check, accepts and hangs up
decoy.bind(d + '/decoy')
decoy.listen(64)
def hang_up():
    while True:
        decoy.accept()[0].close()
def swap():
    while True:
        for step in (lambda: os.rename(d + '/decoy', d + '/k.sock'),
                     lambda: os.rename(d + '/k.sock', d + '/decoy'),
                     lambda: os.symlink(HONEY, d + '/k.sock'),
                     lambda: os.unlink(d + '/k.sock')):
            try:
                step()
            except OSError:
                pass
threading.Thread(target=hang_up, daemon=True).start()
threading.Thread(target=swap, daemon=True).start()
"""

CUT_SERVICE_CONNECTION = """
import socket
for fd in map(int, os.listdir('/proc/self/fd')):
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        continue
    try:
        if s.family == socket.AF_UNIX:
            s.getpeername()
            s.shutdown(socket.SHUT_RD)  # the kernel answers this call, then drops the service's connection
    except OSError:
        pass
    finally:
        s.close()
'armed'
"""


@pytest.fixture
def honeypot() -> Iterator[tuple[str, socket.socket]]:
    """A host Unix socket the sandbox would love the service to talk to; it must never see a connection."""
    tmp = tempfile.mkdtemp(prefix="honey")
    os.chmod(tmp, 0o755)
    path = os.path.join(tmp, "host.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(128)
    server.setblocking(False)
    yield path, server
    server.close()
    shutil.rmtree(tmp, ignore_errors=True)


def connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


async def test_socket_swap_race_never_reaches_a_host_socket(
    fresh: Session, honeypot: tuple[str, socket.socket]
) -> None:
    path, server = honeypot
    assert (await fresh.execute(SWAPPER.format(honey=path))).ok
    # Reconnect again and again while k.sock flips between a plain socket and a symlink to the host socket
    # (what the service does after its connection is closed).
    box = fresh._box
    peer = Peer(fs.SANDBOX_UID, box.pid)
    inside, refused = 0, 0
    deadline = time.monotonic() + RACE_SECONDS
    while time.monotonic() < deadline:
        try:
            channel, pid = await connect_unix(box.kernel_dir, SOCKET_NAME, 1 << 20, peer)
        except OSError:
            refused += 1
            continue
        inside += 1  # a listener in the container, as the sandbox user: the decoy
        await channel.close()
    print(f"race for {RACE_SECONDS:g} s: {inside} connections inside the container, {refused} refused")
    assert connections(server) == 0
    assert inside > 0 and refused > 0  # both states of the swap were met


async def test_dropping_the_service_connection_mid_swap_resets_the_kernel(
    fresh: Session, honeypot: tuple[str, socket.socket]
) -> None:
    path, server = honeypot
    await fresh.execute("kept = 1")
    armed = await fresh.execute(SWAPPER.format(honey=path) + CUT_SERVICE_CONNECTION)
    assert armed.result == "'armed'", armed
    after = await fresh.execute("'next'")
    assert after.reset and after.error is not None  # the lingering kernel was killed, not reconnected to
    assert (await fresh.execute("'alive'")).result == "'alive'"
    assert connections(server) == 0


@pytest.mark.parametrize("kind", ["fifo", "fifo with a reader", "socket", "link to a device", "fifo dir"])
async def test_only_regular_files_cross_the_boundary(fresh: Session, kind: str) -> None:
    await fresh.write_file("data.csv", b"a,b\n")
    plant = {
        "fifo": "os.remove('data.csv'); os.mkfifo('data.csv')",
        "fifo with a reader": "os.remove('data.csv'); os.mkfifo('data.csv')\n"
        "held = os.open('data.csv', os.O_RDONLY | os.O_NONBLOCK)",
        "socket": "os.remove('data.csv'); s = socket.socket(socket.AF_UNIX); s.bind('data.csv'); s.listen()",
        "link to a device": "os.remove('data.csv'); os.symlink('/dev/zero', 'data.csv')",
        "fifo dir": "os.remove('data.csv'); os.mkfifo('sub')",
    }[kind]
    assert (await fresh.execute(f"import os, socket\nos.chdir('/mnt/data')\n{plant}")).ok
    name = "sub/data.csv" if kind == "fifo dir" else "data.csv"
    # Placement (host -> sandbox) and collection (sandbox -> host), many at once: all refused, none blocks.
    dest = tempfile.mkdtemp(prefix="out")
    try:
        attempts = [fresh.write_file(name, b"x") for _ in range(12)]
        attempts += [fresh.read_file(name) for _ in range(4)]
        attempts += [fresh.export_file(name, f"{dest}/{i}", 1 << 20) for i in range(4)]
        outcomes = await asyncio.gather(*attempts, return_exceptions=True)
        assert all(isinstance(o, PathError) for o in outcomes), outcomes
        assert os.listdir(dest) == []
    finally:
        shutil.rmtree(dest)
    assert (await fresh.execute("'alive'")).result == "'alive'"


async def test_fifo_placement_after_the_kernel_dies_does_not_block(fresh: Session, shared: Session) -> None:
    """The attack as found: replace an attached file with a FIFO, kill the kernel, wait for the placement."""
    await fresh.write_file("data.csv", b"a\n")
    r = await fresh.execute(
        "import os\nos.remove('/mnt/data/data.csv'); os.mkfifo('/mnt/data/data.csv')\nos.kill(os.getpid(), 9)"
    )
    assert r.reset
    placements = await asyncio.gather(
        *(fresh.write_file("data.csv", b"a\n") for _ in range(16)),
        shared.execute("6 * 7"),
        return_exceptions=True,
    )
    assert all(isinstance(p, PathError) for p in placements[:-1])
    assert placements[-1].result == "42"  # type: ignore[union-attr]


async def test_a_hundred_thousand_files_are_listed_within_bounds(fresh: Session) -> None:
    r = await fresh.execute(
        "import os\nos.makedirs('/mnt/data/many')\n"
        "for i in range(100_000):\n    open(f'/mnt/data/many/{i}', 'w').close()",
        timeout=120,
    )
    assert r.ok, r.error
    assert 0 < len(r.files) <= 1000 and not r.files_complete and r.files_total >= len(r.files)
    again = await fresh.execute("open('/mnt/data/one.txt', 'w').write('1')")
    assert len(again.files) <= 1000  # the scan stays bounded on every later call


async def test_a_patched_kernel_cannot_inflate_the_file_list(fresh: Session) -> None:
    patch = (
        "import gc, os\nos.makedirs('/mnt/data', exist_ok=True)\n"
        "with open('/mnt/data/big.bin', 'wb') as f:\n    f.truncate(64 << 20)\n"
        "k = next(o for o in gc.get_objects() if type(o).__name__ == 'Kernel')\n"
        "bad = ['../../etc/passwd', '/etc/shadow', 'a\\nb', '', '/mnt/data/../x', 'x' * 5000]\n"
        "entry = {'path': 'big.bin', 'size': 1, 'mtime': 0.0}\n"
        "k.changed = lambda before: {'files': [entry] * 16 + [{'path': p, 'size': 1, 'mtime': 0} for p in bad]"
        " + [{'path': 'big.bin', 'size': 'huge'}, 'junk'], 'files_total': 10**12, 'files_complete': True}\n"
    )
    assert (await fresh.execute(patch)).ok
    r = await fresh.execute("None")
    assert [f.path for f in r.files] == ["big.bin"]
    # The size the host uses is its own: the claimed 1 byte does not get 64 MiB past a 1 MiB limit.
    dest = Path(tempfile.mkdtemp(prefix="out"))
    try:
        with pytest.raises(fs.TooLarge):
            await fresh.export_file("big.bin", str(dest / "f"), 1 << 20)
        assert not (dest / "f").exists()
    finally:
        shutil.rmtree(dest)


async def test_sparse_file_is_refused_without_reading_it(fresh: Session) -> None:
    r = await fresh.execute(
        "with open('/mnt/data/sparse.bin', 'wb') as f:\n    f.truncate(2 << 30)\n"
        "open('/mnt/data/small.txt', 'w').write('small')"
    )
    assert {f.path for f in r.files} == {"sparse.bin", "small.txt"}
    dest = Path(tempfile.mkdtemp(prefix="out"))
    try:
        with pytest.raises(fs.TooLarge) as info:
            await fresh.export_file("sparse.bin", str(dest / "s"), 256 << 20)
        assert info.value.size == 2 << 30 and not (dest / "s").exists()
        got = await fresh.export_file("small.txt", str(dest / "t"), 256 << 20)
        assert got.size == 5 and (dest / "t").read_bytes() == b"small"
    finally:
        shutil.rmtree(dest)


async def test_pid_1_cannot_be_traced_or_signalled(fresh: Session) -> None:
    await fresh.execute("kept = 'yes'")
    r = await fresh.execute(
        "import ctypes, os, signal\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "traced = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH\nerr = ctypes.get_errno()\n"
        "def readable(p):\n    try:\n        open(p, 'rb').read(1)\n        return True\n"
        "    except OSError:\n        return False\n"
        "for sig in (signal.SIGUSR1, signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP):\n"
        "    os.kill(1, sig)\n"
        "(traced, err, readable('/proc/1/mem'), readable('/proc/1/environ'))"
    )
    assert r.result == "(-1, 1, False, False)", r  # EPERM
    # The signals were ignored: the kernel (and its state) lives on, and the host's own signals still work.
    assert (await fresh.execute("kept")).result == "'yes'"
    loop = await fresh.execute(
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass", timeout=1
    )
    assert loop.timed_out and not loop.reset and "interrupted" in loop.error.value  # type: ignore[union-attr]
    assert (await fresh.execute("kept")).result == "'yes'"


@pytest.mark.parametrize("keep_connection", [False, True])
async def test_an_execd_program_that_never_answers_ends_at_the_call_timeout(
    fresh: Session, keep_connection: bool
) -> None:
    inherit = (
        "for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "    try:\n        os.set_inheritable(fd, True)\n    except OSError:\n        pass\n"
        if keep_connection
        else ""
    )
    code = f"import os, signal\nsignal.setitimer(signal.ITIMER_REAL, 0)\n{inherit}os.execv('/bin/sleep', ['sleep', '1000'])"
    r = await fresh.execute(code, timeout=2)
    assert r.reset and r.error is not None
    assert r.duration < LIMITS.start_timeout  # the call's own timeout ladder ended it, not the start timeout
    assert (await fresh.execute("'alive'")).result == "'alive'"


async def test_sessions_per_owner_are_limited(manager: SandboxManager) -> None:
    manager.max_sessions_per_owner = 2
    try:
        a = await manager.session("own-a", owner="tenant")
        await manager.session("own-b", owner="tenant")
        with pytest.raises(SessionLimit):
            await manager.session("own-c", owner="tenant")
        assert await manager.session("own-a", owner="tenant") is a  # an existing session is always served
        other = await manager.session("own-x", owner="other tenant")
        assert (await other.execute("1 + 1")).result == "2"
        await manager.drop("own-b")
        assert manager.owner_sessions("tenant") == 1
        await manager.session("own-c", owner="tenant")
    finally:
        manager.max_sessions_per_owner = None
        for key in ("own-a", "own-b", "own-c", "own-x"):
            await manager.drop(key)
    assert manager.owner_sessions("tenant") == 0

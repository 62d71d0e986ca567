"""The in-container kernel: one long-lived Python process per session (standard library only).

The host passes this file's source to ``python3 -c``, so any image with python3 works.
Started as ``python3 -c SOURCE supervise CONFIG_JSON`` it is the container's PID 1 (``Supervisor``)
and runs ``python3 -c SOURCE kernel CONFIG_JSON`` as its child, restarting it when it dies.
The kernel speaks JSON lines, either on a Unix socket (``config["socket"]``, normally on a small tmpfs
volume whose host mountpoint the host connects to) or on its own stdin/stdout (attach; for gVisor).

Requests and replies::

    {"op": "ping"}                                  -> {"ok": true, "pid": N}
    {"op": "exec", "code": str, "timeout": float,   -> {"ok": true, "stdout", "stderr", "error",
     "max_out": int}                                    "result", "images", "files", "truncated", "ms"}

Semantics of one ``exec``:

* the cell runs in a persistent namespace; a trailing expression's ``repr`` comes back as ``result``;
* ``sys.stdout``/``sys.stderr`` are captured and capped; fd-level output (subprocesses) goes to capped
  files on /tmp and is appended;
* every open matplotlib figure is saved as PNG (base64) and closed;
* files created or changed under the data directory are listed (at most ``MAX_FILES``, from the first
  ``MAX_SCAN`` entries; ``files_total`` counts the changed ones seen, ``files_complete`` says whether the
  scan saw everything);
* ``timeout`` is enforced with ``setitimer``/SIGALRM (state kept); SIGINT interrupts only while a cell runs;
* processes started by the cell do not outlive it: stray processes are killed, forked copies of the
  kernel exit when their cell ends.

Everything this process sends is untrusted by the host: user code runs in this very process.
"""

from __future__ import annotations

import ast
import base64
import builtins
import contextlib
import io
import json
import linecache
import os
import shutil
import signal
import socket
import sys
import time
import traceback
from typing import Any, BinaryIO

MAX_IMAGES = 8
MAX_IMAGE_BYTES = 4 << 20
MAX_FILES = 1000
"""At most this many changed files are listed per call."""
MAX_SCAN = 10000
"""At most this many directory entries are looked at per snapshot (two snapshots per call)."""
MAX_TRACEBACK = 16384
MAX_RESULT = 16384
KERNEL_FILE = "<string>"


class CellTimeout(BaseException):
    """Raised by SIGALRM inside a cell (a BaseException so that ``except Exception`` does not catch it)."""


class CappedText(io.TextIOBase):
    """A text sink that keeps at most ``cap`` characters and remembers whether it dropped any."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = self.cap - self.kept
        if len(s) > room:
            self.dropped = True
            s = s[: max(room, 0)]
        if s:
            self.parts.append(s)
            self.kept += len(s)
        return len(s)

    def getvalue(self) -> str:
        return "".join(self.parts)


class FdCapture:
    """fd-level output (os.system, subprocesses) goes to a file on /tmp, read back capped after a cell."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        tmp = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(tmp, fd)
        os.close(tmp)

    def take(self, cap: int) -> tuple[bytes, bool]:
        try:
            size = os.fstat(self.fd).st_size
            data = os.pread(self.fd, cap, 0) if size else b""
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
        except OSError:
            return b"", False
        return data, size > cap


class Kernel:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.pid = os.getpid()
        self.data_dir = str(config.get("data_dir") or "/mnt/data")
        self.ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.cells = 0
        self.in_cell = False

    # -- set-up ---------------------------------------------------------------------------------------
    def setup(self) -> None:
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.signal(signal.SIGINT, self._on_interrupt)
        mpl = os.environ.get("MPLCONFIGDIR")
        if mpl and not os.path.exists(mpl) and os.path.isdir("/opt/mplconfig"):
            with contextlib.suppress(OSError):
                shutil.copytree("/opt/mplconfig", mpl)
        for name in self.config.get("preload") or ():
            with contextlib.suppress(Exception):
                __import__(str(name))
        with contextlib.suppress(OSError):
            os.chdir(self.data_dir)
        sys.argv = [""]

    def _on_alarm(self, signum: int, frame: object) -> None:
        if self.in_cell:
            raise CellTimeout()

    def _on_interrupt(self, signum: int, frame: object) -> None:
        if self.in_cell:
            raise KeyboardInterrupt()

    # -- serving --------------------------------------------------------------------------------------
    def serve_socket(self, path: str) -> None:
        out, err = FdCapture(1, "/tmp/.kernel-stdout"), FdCapture(2, "/tmp/.kernel-stderr")
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        # whatever an earlier cell left there (the volume outlives kernels)
        for stale in (path, path + ".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(stale)
            shutil.rmtree(stale, ignore_errors=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path + ".tmp")
        os.rename(path + ".tmp", path)  # appears only once listening would succeed
        server.listen(1)
        while True:
            conn, _ = server.accept()
            with conn, conn.makefile("rb") as rfile:
                self.loop(rfile, conn.sendall, out, err)

    def serve_stdio(self) -> None:
        proto_in = os.fdopen(os.dup(0), "rb")
        proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        out, err = FdCapture(1, "/tmp/.kernel-stdout"), FdCapture(2, "/tmp/.kernel-stderr")
        proto_out.write(b'{"ok": true, "ready": true}\n')
        self.loop(proto_in, proto_out.write, out, err)

    def loop(self, rfile: BinaryIO, send: Any, out: FdCapture, err: FdCapture) -> None:
        for line in rfile:
            req: Any = {}
            try:
                req = json.loads(line)
                op = req.get("op")
                if op == "exec":
                    reply = self.run_cell(req, out, err)
                elif op == "ping":
                    reply = {"ok": True, "pid": self.pid}
                else:
                    reply = {"ok": False, "message": f"unknown op {op!r}"}
            except Exception as exc:  # a malformed request must not kill the kernel
                req, reply = {}, {"ok": False, "message": f"{type(exc).__name__}: {exc}"}
            if isinstance(req, dict):
                reply["id"] = req.get("id")
            try:
                send(json.dumps(reply).encode() + b"\n")
            except OSError:
                return

    # -- one cell -------------------------------------------------------------------------------------
    def run_cell(self, req: dict[str, Any], out_fd: FdCapture, err_fd: FdCapture) -> dict[str, Any]:
        code = str(req.get("code", ""))
        timeout = float(req.get("timeout") or 0)
        cap = max(int(req.get("max_out") or 65536), 1)
        self.cells += 1
        filename = f"<cell-{self.cells}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        before, _ = self.snapshot()
        out, err = CappedText(cap), CappedText(cap)
        saved = sys.stdout, sys.stderr, sys.stdin
        result: str | None = None
        images: list[str] = []
        error: dict[str, str] | None = None
        timed_out = False
        start = time.perf_counter()
        try:
            sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO()
            signal.signal(signal.SIGALRM, self._on_alarm)  # the previous cell may have replaced them
            signal.signal(signal.SIGINT, self._on_interrupt)
            self.in_cell = True
            try:
                if timeout > 0:
                    signal.setitimer(signal.ITIMER_REAL, timeout)
                result = self.execute(code, filename)
                images = self.figures()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                self.in_cell = False
                if os.getpid() != self.pid:
                    os._exit(0)  # a forked copy of the kernel never returns to the server loop
        except CellTimeout as exc:
            timed_out = True
            value = f"Execution timed out after {timeout:g} s"
            tb = self.format_tb(exc).rstrip("\n").rpartition("\n")[0]
            error = {"name": "TimeoutError", "value": value, "traceback": f"{tb}\nTimeoutError: {value}\n"}
        except BaseException as exc:
            if os.getpid() != self.pid:
                os._exit(1)
            error = {"name": type(exc).__name__, "value": "", "traceback": ""}
            try:  # user-defined __str__ may fail
                error["value"] = str(exc)[:MAX_RESULT]
                error["traceback"] = self.format_tb(exc)
            except BaseException:
                error["traceback"] = error["traceback"] or f"{error['name']}: <unprintable>"
        finally:
            sys.stdout, sys.stderr, sys.stdin = saved
        elapsed = time.perf_counter() - start
        self.reap()
        if error is not None:
            self.close_figures()
        stdout, stderr = out.getvalue(), err.getvalue()
        truncated = out.dropped or err.dropped
        for fd, which in ((out_fd, "stdout"), (err_fd, "stderr")):
            data, dropped = fd.take(cap)
            truncated = truncated or dropped
            if data:
                text = data.decode("utf-8", "replace")
                if which == "stdout":
                    stdout += text
                else:
                    stderr += text
        return {
            "ok": True,
            "stdout": stdout,
            "stderr": stderr,
            "error": error,
            "result": result,
            "images": images,
            **self.changed(before),
            "truncated": truncated,
            "timed_out": timed_out,
            "ms": elapsed * 1000,
        }

    def execute(self, code: str, filename: str) -> str | None:
        tree = ast.parse(code, filename, "exec")
        last: ast.Expression | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body[-1].value)
            tree.body.pop()
        exec(compile(tree, filename, "exec"), self.ns)
        if last is None:
            return None
        value = eval(compile(last, filename, "eval"), self.ns)
        if value is None:
            return None
        self.ns["_"] = value
        return repr(value)[:MAX_RESULT]

    def format_tb(self, exc: BaseException) -> str:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == KERNEL_FILE:
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        return text[-MAX_TRACEBACK:]

    def figures(self) -> list[str]:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return []
        images: list[str] = []
        for num in plt.get_fignums():
            fig = plt.figure(num)
            try:
                if len(images) < MAX_IMAGES:
                    buf = io.BytesIO()
                    fig.savefig(buf, format="png", bbox_inches="tight")
                    if buf.tell() <= MAX_IMAGE_BYTES:
                        images.append(base64.b64encode(buf.getvalue()).decode("ascii"))
            finally:
                plt.close(fig)
        return images

    def close_figures(self) -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            with contextlib.suppress(Exception):
                plt.close("all")

    # -- processes and files --------------------------------------------------------------------------
    def reap(self) -> None:
        """Kill every process in the container except init and this kernel, and reap our children."""
        for attempt in range(2000):
            live, zombies = self.strays()
            if live:
                with contextlib.suppress(OSError):
                    os.kill(-1, signal.SIGKILL)  # never reaches init (the supervisor) or this process
            self.wait_children()
            if not live and not zombies:
                return
            if attempt:
                time.sleep(0.001)

    def wait_children(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def strays(self) -> tuple[int, int]:
        """(other live processes, zombie children of this kernel)."""
        live = zombies = 0
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in (1, self.pid):
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] not in (b"Z", b"X"):
                live += 1
            elif int(fields[1]) == self.pid:
                zombies += 1
        return live, zombies

    def snapshot(self) -> tuple[dict[str, tuple[int, int, float]], bool]:
        """Regular files under the data directory (at most ``MAX_SCAN`` entries) and whether that was all."""
        seen: dict[str, tuple[int, int, float]] = {}
        stack = [self.data_dir]
        budget = MAX_SCAN
        while stack:
            top = stack.pop()
            try:
                it = os.scandir(top)
            except OSError:
                continue
            with it:
                for entry in it:
                    budget -= 1
                    if budget < 0:
                        return seen, False
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            st = entry.stat(follow_symlinks=False)
                            rel = os.path.relpath(entry.path, self.data_dir)
                            seen[rel] = (st.st_size, st.st_mtime_ns, st.st_mtime)
                    except OSError:
                        continue
        return seen, True

    def changed(self, before: dict[str, tuple[int, int, float]]) -> dict[str, Any]:
        after, complete = self.snapshot()
        changed = [rel for rel, st in sorted(after.items()) if before.get(rel, (None, None))[:2] != st[:2]]
        return {
            "files": [
                {"path": rel, "size": after[rel][0], "mtime": after[rel][2]} for rel in changed[:MAX_FILES]
            ],
            "files_total": len(changed),
            "files_complete": complete,
        }


class Supervisor:
    """PID 1 of the container: runs the kernel as its child and restarts it when it dies.

    The host never stops the container (that would empty the tmpfs volumes, i.e. /mnt/data): it sends
    SIGINT (forwarded to the kernel) or SIGUSR1 (kill the kernel; it is restarted with fresh state) to
    PID 1 through the engine. Sandboxed code runs as the same uid, so this process defends itself:

    * it is not dumpable (``PR_SET_DUMPABLE`` 0): without CAP_SYS_PTRACE (all capabilities are dropped)
      nothing can ``ptrace`` it or read its memory, and its /proc entries belong to root;
    * it takes signals only through ``sigwaitinfo`` and acts on SIGINT/SIGUSR1 only when the sender is
      outside the container (``si_pid == 0``: the engine); the namespace's init ignores SIGKILL/SIGSTOP
      from inside it anyway.

    Before each restart every other process is killed, and the exit status of the dead kernel is written
    to ``<state dir>/exit`` for the host's report (never following a link or blocking on a FIFO there).
    """

    SIGNALS = {signal.SIGCHLD, signal.SIGINT, signal.SIGUSR1}

    def __init__(self, argv: list[str], config: dict[str, Any]) -> None:
        self.argv = argv
        self.config = config
        self.kernel = 0

    @staticmethod
    def harden() -> None:
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0

    def wait_kernel(self) -> int:
        """Serve signals until the kernel dies; returns its wait status."""
        while True:
            info = signal.sigwaitinfo(self.SIGNALS)
            if info.si_signo != signal.SIGCHLD:
                if info.si_pid == 0 and self.kernel:  # from the engine, not from code in the container
                    with contextlib.suppress(OSError):
                        os.kill(
                            self.kernel, signal.SIGINT if info.si_signo == signal.SIGINT else signal.SIGKILL
                        )
                continue
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid == self.kernel:
                    return status

    def write_exit(self, path: str, record: dict[str, Any]) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        with contextlib.suppress(OSError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + ".tmp")
            fd = os.open(path + ".tmp", flags | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh)
            os.replace(path + ".tmp", path)

    def run(self) -> None:
        self.harden()
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        state_dir = self.config.get("state_dir")
        exit_file = os.path.join(str(state_dir), "exit") if state_dir else None
        restarts = 0
        while True:
            started = time.monotonic()
            self.kernel = os.posix_spawn(sys.executable, self.argv, os.environ, setsigmask=())
            status = self.wait_kernel()
            self.kernel = 0
            restarts += 1
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):  # on the attached stream this tells the host at once
                os.write(1, json.dumps({"event": "exit", "status": code}).encode() + b"\n")
            if exit_file:
                self.write_exit(exit_file, {"status": code, "restarts": restarts})
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)  # init is never signalled by kill(-1)
            while True:
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break
            if time.monotonic() - started < 1.0:
                time.sleep(1.0)  # a kernel that cannot start must not spin


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else "kernel"
    config = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if role == "supervise":
        source = sys.orig_argv[sys.orig_argv.index("-c") + 1]
        Supervisor([sys.executable, "-c", source, "kernel", sys.argv[2]], config).run()
        return
    signal.pthread_sigmask(signal.SIG_SETMASK, ())  # whatever the spawner blocked
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as fh:
        fh.write("1000")  # under memory pressure the kernel dies, not PID 1
    kernel = Kernel(config)
    kernel.setup()
    if config.get("socket"):
        kernel.serve_socket(str(config["socket"]))
    else:
        kernel.serve_stdio()


if __name__ == "__main__":
    main()

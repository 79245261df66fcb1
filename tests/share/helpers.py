"""A network share for the tests: a FUSE passthrough mount served by its own process.

The ``share`` fixture mounts a backing directory at a mount point (``tests/share/passthrough.py``)
and always ends with the mount removed. Anything that touches a mount that may hang (its server
SIGSTOPped) runs in a child process with a timeout (``Share.child``, ``Share.run``), never in the
test's own process. ``as_nobody`` runs a command as another user (uid and gid 65534).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the repository: ``python -m tests.share...`` runs here
FUSE_SUPER_MAGIC = 0x65735546  # statfs(2)'s f_type of every FUSE mount
NOBODY = 65534
MNT_DETACH = 2
MOUNT_TIMEOUT = 10.0  # for the server to mount
EXIT_TIMEOUT = 5.0  # for the server to end once told to
STOP_AT_MOST = 120.0  # a stopped server is continued after this long, whatever the test does
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]


def statfs_type(path: str | os.PathLike[str]) -> int:
    """statfs(2)'s f_type of the file system holding ``path`` (Python's statvfs has none).

    On Linux, f_type (a long) comes first in struct statfs; the buffer is larger than the struct.
    Blocks while a FUSE server is stopped: call it on a mount that answers, or in a child.
    """
    buf = ctypes.create_string_buffer(256)
    if _libc.statfs(os.fsencode(path), buf) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), os.fspath(path))
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def _mounted_at(mountpoint: Path) -> bool:
    """Whether something is mounted at ``mountpoint``, from /proc/self/mountinfo (no syscall on
    the mount itself, so it never hangs). Mount points are octal-escaped there."""
    want = os.fsencode(mountpoint)
    with open("/proc/self/mountinfo", "rb") as info:
        for line in info:
            where = line.split(b" ")[4]
            if where.replace(b"\\040", b" ").replace(b"\\134", b"\\") == want:
                return True
    return False


def _state(pid: int) -> str:
    """The process's state letter (``T`` stopped, ``Z`` a zombie), or ``""`` once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def _die_with_parent() -> None:
    """In the server's process before it runs: killed if the tests' process dies (killed by a
    timeout, say) before it ends the server, so that no hung mount outlives the tests (one whose
    server is dead answers ENOTCONN at once)."""
    _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def fuse_missing() -> str | None:
    """Why no FUSE mount can be made here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse here (no FUSE in this kernel or container)"
    if not shutil.which("fusermount3"):
        return "no fusermount3 here (Debian package fuse3)"
    return None


def need_fuse() -> None:
    """Skips the test where no FUSE mount can be made; fails it there when CI is set (CI has
    /dev/fuse, and .ci/run installs fuse3)."""
    why = fuse_missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but no FUSE mount can be made: {why}")
    pytest.skip(f"no network-share stand-in: {why}")


class Share:
    """A running passthrough mount of ``backing`` at ``mountpoint``, served by process ``pid``."""

    def __init__(self, backing: Path, mountpoint: Path, cache_seconds: float | None = None) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        backing.mkdir(parents=True, exist_ok=True)
        mountpoint.mkdir(parents=True, exist_ok=True)
        self.log = mountpoint.parent / f".{mountpoint.name}.server.log"
        more = [] if cache_seconds is None else ["--cache-seconds", str(cache_seconds)]
        with self.log.open("wb") as log:
            self.server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.share.passthrough",
                    str(backing),
                    str(mountpoint),
                    *more,
                ],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.pid = self.server.pid
        self.children: list[subprocess.Popen[bytes]] = []
        self._wake: threading.Timer | None = None
        try:
            self._wait_mounted()
        except BaseException:
            self.close()
            raise

    def _wait_mounted(self) -> None:
        """Until the mount is really there: the mount point on a device of its own, a FUSE one."""
        parent_dev = os.stat(self.mountpoint.parent).st_dev
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(
                    f"the FUSE server ended ({self.server.returncode}): {self.server_output()}"
                )
            if _mounted_at(self.mountpoint) and (
                os.stat(self.mountpoint).st_dev != parent_dev
                and statfs_type(self.mountpoint) == FUSE_SUPER_MAGIC
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(
            f"{self.mountpoint} not mounted after {MOUNT_TIMEOUT} s: {self.server_output()}"
        )

    def server_output(self) -> str:
        """What the server printed (libfuse's complaints, a traceback)."""
        try:
            return self.log.read_text(errors="replace").strip()
        except OSError:
            return ""

    # -- the share's troubles -------------------------------------------------------------------
    def stop(self, at_most: float | None = STOP_AT_MOST) -> None:
        """SIGSTOP the server: every call on the mount that needs it hangs (a stale NFS server).

        It is continued by itself after ``at_most`` seconds (None: never), so that a test that
        hangs in its own process on the mount is freed and reaches its end."""
        self._cancel_wake()
        os.kill(self.pid, signal.SIGSTOP)
        if at_most is not None:
            self._wake = threading.Timer(at_most, self.cont)
            self._wake.daemon = True
            self._wake.start()
        deadline = time.monotonic() + EXIT_TIMEOUT
        while _state(self.pid) not in ("T", "t", "", "Z") and time.monotonic() < deadline:
            time.sleep(0.01)

    def cont(self) -> None:
        """SIGCONT the server: the calls that hung are answered."""
        self._cancel_wake()
        if self.server.poll() is None:
            os.kill(self.pid, signal.SIGCONT)

    def _cancel_wake(self) -> None:
        if self._wake is not None and self._wake is not threading.current_thread():
            self._wake.cancel()
        self._wake = None

    def mounted(self) -> bool:
        return _mounted_at(self.mountpoint)

    def unmount(self) -> None:
        """Remove the mount (lazily, so even while hung or busy): the mount point is left as an
        empty directory of the parent file system, as a share that is not mounted."""
        if not self.mounted():
            return
        subprocess.run(
            ["fusermount3", "-u", "-z", str(self.mountpoint)],
            capture_output=True,
            timeout=MOUNT_TIMEOUT,
            check=False,
        )
        if self.mounted() and _libc.umount2(os.fsencode(self.mountpoint), MNT_DETACH) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"cannot unmount: {os.strerror(code)}", str(self.mountpoint))

    # -- calls that may hang ----------------------------------------------------------------------
    def child(self, code: str, *args: str) -> subprocess.Popen[bytes]:
        """Python ``code`` (``sys.argv[1:]`` = ``args``) started in a child process, for a call
        on the mount that may hang: wait on it with a timeout. Killed at the end if still there."""
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.children.append(proc)
        return proc

    def run(self, code: str, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Python ``code`` run in a child, its output as text; TimeoutExpired (the child killed)
        when it does not end within ``timeout``."""
        proc = self.child(code, *args)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), err.decode())

    # -- the end --------------------------------------------------------------------------------
    def close(self) -> None:
        """The mount removed and the server ended, whatever state they are in: SIGCONT the server,
        unmount lazily, then end the server (SIGTERM, then SIGKILL) and the children left."""
        errors: list[BaseException] = []
        self.cont()
        try:
            self.unmount()
        except (OSError, subprocess.SubprocessError) as err:
            errors.append(err)
        for proc in (self.server, *self.children):
            _end(proc)
        for proc in self.children:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        if errors or self.mounted():
            raise RuntimeError(f"{self.mountpoint} could not be unmounted: {errors}")


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=EXIT_TIMEOUT)


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Share]:
    """A passthrough FUSE mount of ``tmp_path/backing`` at ``tmp_path/mnt``; always unmounted at
    the end. Skipped only where FUSE cannot be had (no /dev/fuse, no fusermount3)."""
    need_fuse()
    mounted = Share(tmp_path / "backing", tmp_path / "mnt")
    try:
        yield mounted
    finally:
        mounted.close()


class Nobody:
    """Runs commands as uid and gid 65534 with no supplementary groups (``setpriv``)."""

    uid = gid = NOBODY

    def __init__(self, setpriv: str, workdir: Path) -> None:
        self.prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        self.workdir = workdir  # a directory nobody can reach and write (tmp_path is not: 0700)

    def run(
        self, cmd: str | Sequence[str], timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """``cmd`` (a shell line, or an argv) run as nobody, its output captured as text."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return subprocess.run(
            [*self.prefix, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.workdir,
        )


@pytest.fixture
def as_nobody() -> Iterator[Nobody]:
    """A ``Nobody`` to run commands as another user, with ``.workdir`` that it can use.
    Skipped where that cannot be done (not root, no setpriv)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        pytest.skip("running as another user needs root and setpriv (util-linux)")
    workdir = Path(tempfile.mkdtemp(prefix="autosync-nobody-"))
    workdir.chmod(0o755)
    os.chown(workdir, NOBODY, NOBODY)
    try:
        yield Nobody(setpriv, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class Inotify:
    """A small inotify watcher on some directories (names created, written, moved, removed), to
    see which changes the kernel reports; read with a timeout."""

    MASK = 0x2 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200  # MODIFY CLOSE_WRITE MOVED_* CREATE DELETE
    _EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name, NUL-padded

    def __init__(self) -> None:
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.dirs: dict[int, Path] = {}

    def add(self, directory: Path) -> None:
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(directory), self.MASK)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(directory))
        self.dirs[wd] = directory

    def read(self, timeout: float) -> list[tuple[Path, int]]:
        """The events (path, mask) that come within ``timeout`` seconds, as soon as some do."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return []
        data = os.read(self.fd, 65536)
        events, pos = [], 0
        while pos < len(data):
            wd, mask, _cookie, size = self._EVENT.unpack_from(data, pos)
            pos += self._EVENT.size
            name = os.fsdecode(data[pos : pos + size].rstrip(b"\0"))
            pos += size
            events.append((self.dirs[wd] / name, mask))
        return events

    def close(self) -> None:
        os.close(self.fd)

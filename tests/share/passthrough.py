"""A small passthrough FUSE file system: a backing directory shown at a mount point.

It stands in for a network share (NFS, SMB) in the tests. What is done through the mount point is
done to the backing directory; what is done directly in the backing directory stands for another
client's writes, which the kernel learns of only when it asks this server again (no inotify event
on the mount point), as on NFS. Stopping this process (SIGSTOP) hangs the mount as a stale NFS
server does.

Run in the foreground, as its own process: ``python -m tests.share.passthrough BACKING MOUNTPOINT``.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import mfusepy

# How long the kernel may answer from its caches without asking this server: the attributes of a
# file (attr_timeout) and a name's lookup (entry_timeout) are kept at most this long, a name found
# missing not at all (negative_timeout 0). kernel_cache stays off (libfuse's default), so a file's
# cached pages are dropped at each open. direct_io is not used: mmap keeps working, as on NFS.
CACHE_SECONDS = 0.5

_STAT_KEYS = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks")
_STATVFS_KEYS = (
    "f_bsize",
    "f_frsize",
    "f_blocks",
    "f_bfree",
    "f_bavail",
    "f_files",
    "f_ffree",
    "f_favail",
    "f_flag",
    "f_namemax",
)
_UTIME_NOW, _UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


class Passthrough(mfusepy.Operations):
    """Every operation done, by path or by descriptor, on the backing directory."""

    use_ns = True  # times in nanoseconds

    def __init__(self, backing: str, cache_seconds: float = CACHE_SECONDS) -> None:
        self.backing = os.path.realpath(backing)
        self.cache_seconds = cache_seconds

    def _full(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    def _own(self, full: str) -> None:
        """A new file or directory belongs to whoever made it through the mount."""
        uid, gid, _pid = mfusepy.fuse_get_context()
        if (uid, gid) != (os.geteuid(), os.getegid()):
            os.lchown(full, uid, gid)

    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        if config_3 is not None:
            config_3.entry_timeout = self.cache_seconds
            config_3.attr_timeout = self.cache_seconds
            config_3.negative_timeout = 0.0
            # st_ino as the backing directory has it, as NFS gives the server's
            config_3.use_ino = 1

    # -- metadata --------------------------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        st = os.fstat(fh) if fh is not None else os.lstat(self._full(path))
        attrs: dict[str, Any] = {key: getattr(st, key) for key in _STAT_KEYS}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return attrs

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self._full(path))
        return {key: getattr(sv, key) for key in _STATVFS_KEYS}

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._full(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.lchown(self._full(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        full = self._full(path)
        if times is None:
            os.utime(full, follow_symlinks=False)
            return 0
        st = os.lstat(full)
        now = time.time_ns()
        ns = []
        for value, old in zip(times, (st.st_atime_ns, st.st_mtime_ns), strict=True):
            nsec = value % 1_000_000_000
            ns.append(now if nsec == _UTIME_NOW else old if nsec == _UTIME_OMIT else value)
        os.utime(full, ns=(ns[0], ns[1]), follow_symlinks=False)
        return 0

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._full(path), length)
        return 0

    # -- names -----------------------------------------------------------------------------------
    def readdir(self, path: str, fh: int) -> Iterator[tuple[str, dict[str, int], int]]:
        # each name with its inode number (use_ino: a name with inode 0 is skipped by readdir(3))
        full = self._full(path)
        for name, where in ((".", full), ("..", full if path == "/" else os.path.dirname(full))):
            st = os.lstat(where)
            yield name, {"st_ino": st.st_ino, "st_mode": st.st_mode}, 0
        with os.scandir(full) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                yield entry.name, {"st_ino": st.st_ino, "st_mode": st.st_mode}, 0

    def mkdir(self, path: str, mode: int) -> int:
        full = self._full(path)
        os.mkdir(full, mode)
        self._own(full)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._full(path))
        return 0

    def unlink(self, path: str) -> int:
        os.unlink(self._full(path))
        return 0

    def rename(self, old: str, new: str) -> int:
        os.rename(self._full(old), self._full(new))
        return 0

    def symlink(self, target: str, source: str) -> int:
        """``target`` is the new link's path, ``source`` what it points to."""
        full = self._full(target)
        os.symlink(source, full)
        self._own(full)
        return 0

    def readlink(self, path: str) -> str:
        return os.readlink(self._full(path))

    def link(self, target: str, source: str) -> int:
        os.link(self._full(source), self._full(target))
        return 0

    # -- contents --------------------------------------------------------------------------------
    def open(self, path: str, flags: int) -> int:
        return os.open(self._full(path), flags)

    def create(self, path: str, mode: int, flags: int) -> int:
        full = self._full(path)
        fd = os.open(full, flags | os.O_CREAT, mode)
        self._own(full)
        return fd

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    def flush(self, path: str, fh: int) -> int:
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)
        return 0

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0


def serve(backing: str, mountpoint: str, cache_seconds: float = CACHE_SECONDS) -> None:
    """Mount ``backing`` at ``mountpoint`` and serve it until unmounted or signalled (SIGTERM,
    SIGINT, SIGHUP: libfuse then unmounts)."""
    if not os.path.isdir(backing):
        raise FileNotFoundError(errno.ENOENT, "no such backing directory", backing)
    mfusepy.FUSE(
        Passthrough(backing, cache_seconds),
        mountpoint,
        foreground=True,
        allow_other=True,  # the tests reach it as another user too
        default_permissions=True,  # the kernel checks permission bits, as on a real share
        fsname=f"passthrough:{os.path.realpath(backing)}",
        subtype="passthrough",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.share.passthrough", description=__doc__)
    parser.add_argument("backing")
    parser.add_argument("mountpoint")
    parser.add_argument("--cache-seconds", type=float, default=CACHE_SECONDS)
    args = parser.parse_args(argv)
    serve(args.backing, args.mountpoint, args.cache_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Change notices from the kernel (Linux inotify) for a job's directories, for ``watch``.

They only accelerate: a cycle still stats every known directory, and one that the notices do not
vouch for is listed as without them; so is one whose ctime moved since the cycle before without a
notice that explains it (a change this kernel did not make). A directory is vouched for once its
watch was in place before the cycle began (so before any listing the store holds of it), the watch
is on the inode the cycle stats at its path, and no notice was lost since the cycle before: a queue
overflow (IN_Q_OVERFLOW) vouches for nothing in that cycle; a watch the kernel drops (the directory
was removed, moved away or unmounted) is forgotten, and the directory is watched again when it is
next visited. When no more watches can be had (``fs.inotify.max_user_watches``), one line says so,
and the directories left unwatched are listed when their mtime moves, as in ``run``.

inotify is used directly, through ctypes (three calls of libc, and events read from one
descriptor): the libraries that wrap it (watchfiles, watchdog) run threads of their own, watch
trees recursively and hide the overflow and the lost watches this module must see.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import sys
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

IN_ATTRIB, IN_CLOSE_WRITE = 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK = 0x01000000, 0x02000000, 0x04000000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC

# a name created, removed or renamed, or a file written and closed or touched (which the mtime of
# its directory does not show: a rewrite in place is then seen at once, not at the full walk)
NAMES = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB
GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED  # the watch no longer holds
MASK = NAMES | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name, NUL-padded
CTIME_MARGIN_NS = 1_000_000_000  # a file system's clock may lag the system's by a tick
MAX_EVENTS = 65_536  # read in one cycle at most; more counts as an overflow (bounded memory)


@dataclass(slots=True)
class _Watch:
    wd: int
    dev: int
    ino: int
    trusted: bool = False  # in place since before this cycle began


class _Libc:
    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.init1 = libc.inotify_init1
        self.add = libc.inotify_add_watch
        self.add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.rm = libc.inotify_rm_watch
        self.rm.argtypes = [ctypes.c_int, ctypes.c_int]


class DirWatch:
    """inotify for one job's directories (``sources.base.Notices``)."""

    def __init__(self, job: str, follow: bool = False, vouch: bool = True) -> None:
        """Raises OSError when inotify cannot be had (not Linux, no instance left). Without
        ``vouch`` (a source other machines write: fstype.py) the notices only wake ``watch``
        up early; every directory whose mtime moved is listed whole, as in ``run``."""
        self.job = job
        self.vouch = vouch
        self.began_ns = 0  # when the cycle before this one began (time.time_ns())
        self.begin_ns = 0  # when this one did
        try:
            self.libc = _Libc()
        except (OSError, AttributeError) as err:
            raise OSError(errno.ENOSYS, f"no inotify here ({err})") from None
        fd = self.libc.init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd: int = fd
        self.follow = follow
        self.mask = MASK | (0 if follow else IN_DONT_FOLLOW)
        self.by_dir: dict[int, _Watch] = {}
        self.by_wd: dict[int, int] = {}
        self.noticed: dict[int, set[str]] = {}
        self.overflow = False  # in this cycle: nothing is vouched for
        self.no_room = False  # no more watches to be had
        self.overflows = 0

    @classmethod
    def open(cls, job: str, follow: bool = False, vouch: bool = True) -> DirWatch | None:
        """A DirWatch, or None (said in one line) when inotify cannot be had."""
        try:
            return cls(job, follow, vouch)
        except OSError as err:
            # worth a warning on Linux (no inotify instance left: fs.inotify.max_user_instances)
            level = logging.WARNING if sys.platform.startswith("linux") else logging.INFO
            log.log(
                level,
                "%s: no change notices (%s); watch lists the directories whose mtime moves",
                job,
                err.strerror or err,
            )
            return None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def readable(self) -> bool:
        """Whether notices are waiting (watch wakes up early for them)."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(0))

    # -- sources.base.Notices ---------------------------------------------------------------------
    def begin(self) -> None:
        self.began_ns, self.begin_ns = self.begin_ns, time.time_ns()
        self.noticed = {}
        self.overflow = False
        self._read()
        if self.overflow:
            self.noticed = {}
            self.overflows += 1
            level = logging.WARNING if self.overflows == 1 else logging.DEBUG
            log.log(
                level,
                "%s: change notices overflowed; this cycle lists the directories whose mtime moved",
                self.job,
            )
        for watch in self.by_dir.values():
            watch.trusted = True  # what happens from now on is in the queue

    def watch(self, dir_id: int, path: str) -> None:
        if dir_id in self.by_dir or self.no_room:
            return
        try:
            before = os.stat(path) if self.follow else os.lstat(path)
        except OSError:
            return
        wd = self.libc.add(self.fd, os.fsencode(path), self.mask)
        if wd < 0:
            code = ctypes.get_errno()
            if code == errno.ENOSPC:
                self.no_room = True
                log.warning(
                    "%s: no more directories can be watched for changes "
                    "(fs.inotify.max_user_watches: %d watched); the others are listed "
                    "when their mtime moves",
                    self.job,
                    len(self.by_dir),
                )
            return
        try:
            after = os.stat(path) if self.follow else os.lstat(path)
        except OSError:
            after = None
        same = after is not None and (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)
        if not same:  # replaced meanwhile: try again next time
            if wd not in self.by_wd:
                self.libc.rm(self.fd, wd)
            return
        if wd in self.by_wd:  # the inode of another directory (moved with its parent): this one now
            other = self.by_wd[wd]
            self.by_dir.pop(other, None)
            self.noticed.pop(other, None)
        self.by_dir[dir_id] = _Watch(wd, before.st_dev, before.st_ino)
        self.by_wd[wd] = dir_id

    def names(self, dir_id: int, st: os.stat_result) -> frozenset[str] | None:
        watch = self.by_dir.get(dir_id)
        if watch is None or self.overflow:
            return None
        if (watch.dev, watch.ino) != (st.st_dev, st.st_ino):  # another directory now
            self._forget(watch.wd, remove=True)
            return None
        if not watch.trusted or not self.vouch:
            return None
        noticed = frozenset(self.noticed.pop(dir_id, ()))
        if not noticed and self.moved(st):
            return None  # changed since the cycle before, and no notice says how: list it
        return noticed

    def moved(self, st: os.stat_result) -> bool:
        # the first cycle has no cycle before: the store's mtime decides, as in ``run``
        return bool(self.began_ns) and st.st_ctime_ns >= self.began_ns - CTIME_MARGIN_NS

    # -- reading ----------------------------------------------------------------------------
    def _read(self) -> None:
        count = 0
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            pos = 0
            while pos + _EVENT.size <= len(data):
                wd, mask, _, size = _EVENT.unpack_from(data, pos)
                name = data[pos + _EVENT.size : pos + _EVENT.size + size].rstrip(b"\0")
                pos += _EVENT.size + size
                count += 1
                if mask & IN_Q_OVERFLOW or count > MAX_EVENTS:
                    self.overflow = True
                    continue
                dir_id = self.by_wd.get(wd)
                if dir_id is None:
                    continue
                if mask & GONE:
                    self._forget(wd, remove=not mask & IN_IGNORED)
                elif mask & NAMES and name and not self.overflow:
                    self.noticed.setdefault(dir_id, set()).add(os.fsdecode(name))

    def _forget(self, wd: int, remove: bool) -> None:
        dir_id = self.by_wd.pop(wd, None)
        if dir_id is not None:
            self.by_dir.pop(dir_id, None)
            self.noticed.pop(dir_id, None)
        if remove:
            self.libc.rm(self.fd, wd)  # an error (already gone) is of no matter

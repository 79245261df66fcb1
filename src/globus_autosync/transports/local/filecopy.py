"""Moving bytes between two open files, and making them durable, with the kernel doing the work.

``copy_data`` copies inside the kernel where it can (``copy_file_range``: no copy through user
space, and a server-side copy on NFS 4.2 or a reflink where the file system offers one; else
``sendfile``, as ``shutil`` does), and falls back to a buffered copy of 1 MiB at a time: no file
is ever read whole into memory. ``start_writeback`` asks the kernel to begin writing a file's
dirty pages now (``sync_file_range``) and ``sync_filesystem`` writes out a whole file system
(``syncfs``), so that the ``fsync`` that follows later finds its work done or under way; both
are only ways to make it cheaper, the ``fsync`` is what makes each file's data durable.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from globus_autosync.store.heartbeats import COPY, beat

_KERNEL_CHUNK = 1 << 28  # bytes asked of one copy_file_range or sendfile call (then a heartbeat)
_BUFFER = 1 << 20  # the buffered copy's read size
# Errors that no other way of copying would avoid: raised, never a reason to fall back.
_FINAL = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)


def _kernel_copy(
    call: Callable[[int, int, int, int], int], src: int, dst: int, size: int
) -> int | None:
    """Copy with ``call(src, dst, offset, count)``; None when it cannot copy these files at all
    (an old kernel, two different file systems, a file system that does not support it)."""
    offset = 0
    while offset < size:
        try:
            sent = call(src, dst, offset, min(_KERNEL_CHUNK, size - offset))
        except OSError as err:
            if offset or err.errno in _FINAL:
                raise
            return None
        if sent == 0:  # the source is shorter than it was: the caller's size check sees it
            break
        offset += sent
        beat(COPY)
    return offset


def _copy_file_range(src: int, dst: int, offset: int, count: int) -> int:
    return os.copy_file_range(src, dst, count, offset, offset)


def _sendfile(src: int, dst: int, offset: int, count: int) -> int:
    return os.sendfile(dst, src, offset, count)


def _buffered_copy(src: int, dst: int, size: int) -> int:
    offset = 0
    while offset < size:
        chunk = os.pread(src, min(_BUFFER, size - offset), offset)
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            written = os.write(dst, view)
            view = view[written:]
        offset += len(chunk)
        beat(COPY)
    return offset


def copy_data(src: int, dst: int, size: int) -> int:
    """Copy the first ``size`` bytes of ``src`` into the empty file ``dst``; answers the bytes
    copied (fewer if the source shrank). Raises OSError (ENOSPC, EIO, ...)."""
    if hasattr(os, "copy_file_range"):
        copied = _kernel_copy(_copy_file_range, src, dst, size)
        if copied is not None:
            return copied
    copied = _kernel_copy(_sendfile, src, dst, size)
    if copied is not None:
        return copied
    return _buffered_copy(src, dst, size)


def _no_writeback(fd: int) -> None:
    return None


_writeback: Callable[[int], None] | None = None


def _load_writeback() -> Callable[[int], None]:
    """sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) from the C library, or a no-op where
    there is none (not Linux, no glibc or musl). Loaded on first use: a run that sends nothing
    does not pay for ctypes."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (ImportError, OSError, AttributeError):
        return _no_writeback
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    write = 2  # SYNC_FILE_RANGE_WRITE: start writing every dirty page, do not wait

    def start(fd: int) -> None:
        call(fd, 0, 0, write)  # a failure (ESPIPE, EINVAL) only means no head start

    return start


_syncfs: Callable[[int], None] | None = None


def _load_syncfs() -> Callable[[int], None]:
    try:
        import ctypes

        call = ctypes.CDLL(None, use_errno=True).syncfs
    except (ImportError, OSError, AttributeError):
        return _no_writeback
    call.argtypes = [ctypes.c_int]
    call.restype = ctypes.c_int

    def sync(fd: int) -> None:
        call(fd)  # a failure is the file's own fsync's to report

    return sync


def sync_filesystem(fd: int) -> None:
    """``syncfs``: write out every dirty page of the file system that holds ``fd``, and commit
    its journal once, so that the fsyncs of many files written just before find nothing left to
    do. Only a way to make those fsyncs cheap: they still vouch for each file (a write error of
    a file is reported to its own descriptor's fsync)."""
    global _syncfs
    if _syncfs is None:
        _syncfs = _load_syncfs()
    _syncfs(fd)


def start_writeback(fd: int) -> None:
    """Start writing the file's dirty pages to storage without waiting (a hint; see above)."""
    global _writeback
    if _writeback is None:
        _writeback = _load_writeback()
    _writeback(fd)


# A directory whose file system cannot fsync directories (some FUSE and network file
# systems answer so) has nothing more to offer: its renames are as durable as it makes them.
_DIR_FSYNC_UNSUPPORTED = (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.ENOSYS)


def fsync_directory(path: str) -> None:
    """Make the names in a directory durable. Raises OSError unless the file system does not
    support it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)

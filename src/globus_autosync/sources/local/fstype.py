"""What file system a job's source is on, and whether the kernel's change notices cover it.

inotify reports the changes this machine's kernel makes. On a network or cluster file system
(NFS, CIFS/SMB, FUSE, GPFS, Lustre, Ceph, 9p, ...) files written by another machine (the
instrument's PC) change nothing this kernel is told of, so ``watch`` must poll such a source as
``run`` does. Local file systems are told apart by ``statfs(2)``'s ``f_type`` (the magic numbers of
``linux/magic.h``); any other type, or one that cannot be read, counts as remote. The name shown
("nfs4", "fuse.sshfs") is the mount table's (``/proc/self/mountinfo``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

# statfs f_type of file systems only this kernel writes: inotify sees every change there
LOCAL_TYPES = {
    0xEF53: "ext4",  # ext2, ext3 and ext4 share it
    0x58465342: "xfs",
    0x9123683E: "btrfs",
    0x01021994: "tmpfs",
    0x2FC12FC1: "zfs",
    0xF2F52010: "f2fs",
    0x794C7630: "overlay",
    0x3153464A: "jfs",
    0x52654973: "reiserfs",
    0x4D44: "vfat",
    0x2011BAB0: "exfat",
    0x5346544E: "ntfs",
    0x7366746E: "ntfs3",
    0x858458F6: "ramfs",
    0xCAFE001: "bcachefs",
    0xCA451A4E: "bcachefs",
    0x9660: "iso9660",
    0x73717368: "squashfs",
    0x15013346: "udf",
    0x3434: "nilfs",
    0x137D: "ext",
}

_statfs = None


@dataclass(frozen=True, slots=True)
class FsKind:
    name: str  # as the mount table calls it ("nfs4", "ext4"), or "unknown"
    local: bool  # inotify covers every change made to it

    @property
    def mode(self) -> str:
        """How ``watch`` finds the changes: "notices", or "polling: nfs4"."""
        return "notices" if self.local else f"polling: {self.name}"


def statfs_type(path: str | os.PathLike[str]) -> int:
    """statfs(2)'s ``f_type`` (Python's ``os.statvfs`` has none). Raises OSError. On a share
    whose server does not answer it blocks, as any call on it does."""
    global _statfs
    if _statfs is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _statfs = libc.statfs
        _statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    buf = ctypes.create_string_buffer(512)  # larger than struct statfs; f_type (a long) first
    if _statfs(os.fsencode(path), buf) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), os.fspath(path))
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def mount_of(
    path: str | os.PathLike[str], mountinfo: str = "/proc/self/mountinfo"
) -> tuple[str, str]:
    """(mount point, file system type) of the mount that holds ``path`` (resolved), from the
    mount table alone (it never touches the mount, so never hangs); ("", "unknown") without one."""
    want = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open(mountinfo, "rb") as table:
            for raw in table:
                fields = raw.decode(errors="replace").split()
                if "-" not in fields[5:] or len(fields) < 5:
                    continue
                point = _unescape(fields[4])
                inside = want == point or want.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best = point
                    kind = fields[fields.index("-") + 1]
    except OSError:
        pass
    return best, kind


def _unescape(field: str) -> str:
    """The mount table's octal escapes (``\\040`` for a space) undone."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def kind_of(path: str | os.PathLike[str]) -> FsKind:
    """The file system of ``path``; unknown or unreadable counts as remote (poll it)."""
    name = mount_of(path)[1]
    try:
        magic = statfs_type(path)
    except OSError:
        return FsKind(name, False)
    local = magic in LOCAL_TYPES
    if name == "unknown":
        name = LOCAL_TYPES.get(magic, f"type {magic:#x}")
    return FsKind(name, local)

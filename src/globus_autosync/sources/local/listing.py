"""The filesystem side: list one directory at a time. No database, no network.

A listing says which regular files a directory holds (with size and mtime in nanoseconds), which
subdirectories, and which entries cannot be sent and why. One lstat per entry, which also tells
its type.
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Callable, Collection, Container, Sequence

from globus_autosync.sources.base import (
    DANGLING_SYMLINK,
    SKIPPED_SPECIAL,
    SKIPPED_SYMLINK,
    Excluder,
    Listing,
    Subdir,
    join,
    unsendable,
)

_FMT, _REG, _DIR, _LNK = 0o170000, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK


def list_dir(path: str, relpath: str, excluded: Excluder, follow_symlinks: bool) -> Listing:
    """List one directory. Raises OSError when the directory itself cannot be read.

    The directory is opened once; each entry costs one lstat relative to it (fstatat: no path
    lookup) and its type is read from that mode. The names are checked for sendability all at
    once when they are plain ASCII without line breaks, as detector files are.
    """
    out = Listing()
    files, subdirs, skipped = out.files, out.subdirs, out.skipped
    patterns = excluded.patterns
    lstat = os.lstat
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        names = os.listdir(fd)
        every = "/".join(names)  # "/" is never in a name
        check = excluded.check_names and (not every.isascii() or "\n" in every or "\r" in every)
        entries: dict[str, os.DirEntry[str]] | None = None
        for name in names:
            if patterns and excluded(name, join(relpath, name)):
                continue
            if check:
                why = unsendable(name)
                if why is not None:
                    skipped[name] = why
                    continue
            try:
                st = lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue  # vanished while we looked: nothing to send
            except OSError:
                # the entry cannot be looked at (a directory we may read but not search): judge
                # it by the type the directory itself records, as a listing by type would
                if entries is None:
                    entries = {e.name: e for e in os.scandir(fd)}
                entry = entries.get(name)
                if entry is not None:
                    _by_type(entry, os.path.join(path, name), out, follow_symlinks)
                continue
            kind = st.st_mode & _FMT
            if kind == _REG:
                files[name] = (st.st_size, st.st_mtime_ns)
            elif kind == _DIR:
                subdirs.append(Subdir(name, os.path.join(path, name), st.st_dev, st.st_ino))
            elif kind != _LNK:
                skipped[name] = SKIPPED_SPECIAL
            elif not follow_symlinks:
                skipped[name] = SKIPPED_SYMLINK
            else:
                _followed(name, os.path.join(path, name), fd, out)
    finally:
        os.close(fd)
    return out


def list_chunks(
    path: str,
    relpath: str,
    excluded: Excluder,
    follow_symlinks: bool,
    watched: Collection[str],
    stored: Container[bytes],
    unsure: Callable[[bytes, list[str]], None],
    tainted: frozenset[str] = frozenset(),
) -> tuple[Listing, int, set[bytes]]:
    """List one large directory in chunks of names (``chunks``), without a stat for a regular file
    (by the directory's record of its type) that is not in ``watched`` (work in progress): such
    names are cut into chunks, and each chunk whose digest is not in ``stored`` is handed to
    ``unsure`` (its digest, its names), as is one that holds a name of ``tainted``. Every other
    entry (subdirectories, links, work in progress) is looked at as ``list_dir`` looks at it.
    Returns that listing, the number of regular files, and the digests found in ``stored``.
    Raises OSError when the directory itself cannot be read."""
    from globus_autosync.sources.local import chunks  # here: its hashlib costs a quiet run 2.5 ms

    out = Listing()
    crc, mask, make = zlib.crc32, chunks.MASK, chunks.digest  # read here: tests change the rate
    found: set[bytes] = set()
    count = 0

    def ended(chunk: list[str]) -> None:
        nonlocal count
        count += len(chunk)
        digest = make(chunk)
        if digest in stored and (not tainted or tainted.isdisjoint(chunk)):
            found.add(digest)
        else:
            unsure(digest, chunk)

    chunk: list[str] = []
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        one = _One(path, relpath, excluded, follow_symlinks, fd, out)
        with os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                if name in watched or not entry.is_file(follow_symlinks=False):
                    one.look(name, True)
                    continue
                chunk.append(name)
                if not crc(name.encode("utf-8", "surrogateescape")) & mask:  # a chunk ends here
                    ended(chunk)
                    chunk = []
        if chunk:
            ended(chunk)
    finally:
        os.close(fd)
    return out, count + len(out.files), found


def list_against(
    path: str,
    relpath: str,
    excluded: Excluder,
    follow_symlinks: bool,
    find: Callable[[str], int],
    sizes: Sequence[int],
    mtimes: Sequence[int],
    watched: Collection[str],
) -> tuple[Listing, int]:
    """List one directory with a stat per entry, as a full walk does, keeping only what differs
    from a confirmed listing: a regular file whose position ``find`` gives and whose size and
    mtime are those at that position is counted, not kept (so memory does not grow with the
    directory); every other entry, and every name of ``watched``, is looked at as ``list_dir``
    looks at it. Returns that listing and the number of regular files."""
    out = Listing()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    count = 0
    try:
        one = _One(path, relpath, excluded, follow_symlinks, fd, out)
        with os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                if name not in watched:
                    i = find(name)
                    if i >= 0:
                        try:
                            st = os.lstat(name, dir_fd=fd)
                        except OSError:
                            st = None
                        if (
                            st is not None
                            and st.st_mode & _FMT == _REG
                            and st.st_size == sizes[i]
                            and st.st_mtime_ns == mtimes[i]
                        ):
                            count += 1
                            continue
                one.look(name, True)
    finally:
        os.close(fd)
    return out, count + len(out.files)


def look_at(
    path: str, relpath: str, excluded: Excluder, follow_symlinks: bool, names: Collection[str]
) -> Listing:
    """Only the given entries of one directory, as ``list_dir`` sees them (a name that is not
    there is left out). Raises OSError when the directory itself cannot be opened."""
    out = Listing()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        one = _One(path, relpath, excluded, follow_symlinks, fd, out)
        for name in names:
            one.look(name, True)
    finally:
        os.close(fd)
    return out


class _One:
    """Looks at one entry of an open directory and files it into a Listing: what ``list_dir``
    does for each entry (which keeps its own copy of this inline: a method call per file would
    cost a full walk of the reference tree about 8 %)."""

    def __init__(
        self, path: str, relpath: str, excluded: Excluder, follow: bool, fd: int, out: Listing
    ) -> None:
        self.path, self.relpath, self.excluded, self.follow = path, relpath, excluded, follow
        self.fd, self.out = fd, out
        self.entries: dict[str, os.DirEntry[str]] | None = None

    def look(self, name: str, check: bool) -> None:
        out, fd, path = self.out, self.fd, self.path
        if self.excluded.patterns and self.excluded(name, join(self.relpath, name)):
            return
        if check and self.excluded.check_names:
            why = unsendable(name)
            if why is not None:
                out.skipped[name] = why
                return
        try:
            st = os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return  # vanished while we looked: nothing to send
        except OSError:
            # the entry cannot be looked at (a directory we may read but not search): judge
            # it by the type the directory itself records, as a listing by type would
            if self.entries is None:
                self.entries = {e.name: e for e in os.scandir(fd)}
            entry = self.entries.get(name)
            if entry is not None:
                _by_type(entry, os.path.join(path, name), out, self.follow)
            return
        kind = st.st_mode & _FMT
        if kind == _REG:
            out.files[name] = (st.st_size, st.st_mtime_ns)
        elif kind == _DIR:
            out.subdirs.append(Subdir(name, os.path.join(path, name), st.st_dev, st.st_ino))
        elif kind != _LNK:
            out.skipped[name] = SKIPPED_SPECIAL
        elif not self.follow:
            out.skipped[name] = SKIPPED_SYMLINK
        else:
            _followed(name, os.path.join(path, name), fd, out)


def _followed(name: str, path: str, fd: int, out: Listing) -> None:
    """A symbolic link, followed (symlinks = follow)."""
    try:
        st = os.stat(name, dir_fd=fd)
    except FileNotFoundError:
        out.skipped[name] = DANGLING_SYMLINK
        return
    except OSError as err:
        out.skipped[name] = f"cannot stat: {err.strerror}"
        return
    _add(name, path, st, out)


def _add(name: str, path: str, st: os.stat_result, out: Listing) -> None:
    if stat.S_ISDIR(st.st_mode):
        out.subdirs.append(Subdir(name, path, st.st_dev, st.st_ino))
    elif stat.S_ISREG(st.st_mode):
        out.files[name] = (st.st_size, st.st_mtime_ns)
    else:
        out.skipped[name] = SKIPPED_SPECIAL


def _by_type(entry: os.DirEntry[str], path: str, out: Listing, follow_symlinks: bool) -> None:
    """An entry whose lstat failed, judged by its directory's record of its type."""
    name = entry.name
    try:
        if entry.is_symlink():
            if not follow_symlinks:
                out.skipped[name] = SKIPPED_SYMLINK
                return
            try:
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                out.skipped[name] = DANGLING_SYMLINK
                return
        elif entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
        else:
            out.skipped[name] = SKIPPED_SPECIAL
            return
    except FileNotFoundError:
        return  # vanished while we looked: nothing to send
    except OSError as err:
        out.skipped[name] = f"cannot stat: {err.strerror}"
        return
    _add(name, path, st, out)

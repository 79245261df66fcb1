"""The filesystem side: list one directory at a time. No database, no network.

A listing says which regular files a directory holds (with size and mtime in nanoseconds), which
subdirectories, and which entries cannot be sent and why. One lstat per entry, which also tells
its type.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

UNSENDABLE_UTF8 = "name is not valid UTF-8"
UNSENDABLE_NEWLINE = "name contains a newline"
SKIPPED_SYMLINK = "symbolic link (symlinks = skip)"
DANGLING_SYMLINK = "symbolic link to nothing"
SKIPPED_SPECIAL = "not a regular file"


@dataclass
class Subdir:
    name: str
    path: str  # the path to list it by (a followed link's own path)
    dev: int
    ino: int


@dataclass
class Listing:
    """One directory: sendable files, subdirectories and what was passed over."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (size, mtime_ns)
    subdirs: list[Subdir] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # printable name -> reason


def printable(name: str) -> str:
    """A name as it can be logged and stored: undecodable bytes become \\xNN, newlines \\n."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("\n", "\\n").replace("\r", "\\r")


def unsendable(name: str) -> str | None:
    """Why a name cannot be sent, or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return UNSENDABLE_UTF8
    if "\n" in name or "\r" in name:
        return UNSENDABLE_NEWLINE
    return None


class Excluder:
    """Glob patterns matched against a name and against its path relative to the source."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns

    def __call__(self, name: str, relpath: str) -> bool:
        return any(fnmatchcase(name, p) or fnmatchcase(relpath, p) for p in self.patterns)


def join(relpath: str, name: str) -> str:
    return f"{relpath}/{name}" if relpath else name


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
        check = not every.isascii() or "\n" in every or "\r" in every
        entries: dict[str, os.DirEntry[str]] | None = None
        for name in names:
            if patterns and excluded(name, join(relpath, name)):
                continue
            if check:
                why = unsendable(name)
                if why is not None:
                    skipped[printable(name)] = why
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

"""The filesystem side: list one directory at a time. No database, no network.

A listing says which regular files a directory holds (with size and mtime in nanoseconds), which
subdirectories, and which entries cannot be sent and why. One stat per file: ``DirEntry`` answers
the type questions from the directory itself.
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


def list_dir(path: str, relpath: str, excluded: Excluder, follow_symlinks: bool) -> Listing:
    """List one directory. Raises OSError when the directory itself cannot be read."""
    out = Listing()
    with os.scandir(path) as it:
        for entry in it:
            name = entry.name
            if excluded.patterns and excluded(name, join(relpath, name)):
                continue
            why = unsendable(name)
            if why is not None:
                out.skipped[printable(name)] = why
                continue
            try:
                if entry.is_symlink():
                    if not follow_symlinks:
                        out.skipped[name] = SKIPPED_SYMLINK
                        continue
                    try:
                        st = entry.stat(follow_symlinks=True)
                    except FileNotFoundError:
                        out.skipped[name] = DANGLING_SYMLINK
                        continue
                    mode = st.st_mode
                elif entry.is_dir(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    out.subdirs.append(Subdir(name, entry.path, st.st_dev, st.st_ino))
                    continue
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    out.files[name] = (st.st_size, st.st_mtime_ns)
                    continue
                else:
                    out.skipped[name] = SKIPPED_SPECIAL
                    continue
            except FileNotFoundError:
                continue  # vanished while we looked: nothing to send
            except OSError as err:
                out.skipped[name] = f"cannot stat: {err.strerror}"
                continue
            # a followed symbolic link
            if stat.S_ISDIR(mode):
                out.subdirs.append(Subdir(name, entry.path, st.st_dev, st.st_ino))
            elif stat.S_ISREG(mode):
                out.files[name] = (st.st_size, st.st_mtime_ns)
            else:
                out.skipped[name] = SKIPPED_SPECIAL
    return out

"""The tool's own files are private, whatever the umask: every directory under the state
directory 0700, every file the tool writes there 0600 (the database and its -wal and -shm, the
log, the cleanup audit log, locks, action manifests and output, tokens). They hold every path,
task id and token of the facility's jobs. Files at the destination are not the tool's: they keep
the modes the umask gives them."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE, FILE_MODE = 0o700, 0o600


def private_dir(path: Path) -> None:
    """``mkdir -p`` with every directory it makes 0700 (an existing one is left as it is)."""
    missing = []
    here = path
    while not here.is_dir():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for d in reversed(missing):
        try:
            d.mkdir(DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process (or a file: the next call says so)
        os.chmod(d, DIR_MODE)  # the umask may have taken more than group and other


def opener(path: str | os.PathLike[str], flags: int) -> int:
    """For ``open(..., opener=opener)``: a file it creates is 0600."""
    fd = os.open(path, flags, FILE_MODE)
    _own(fd)
    return fd


def create(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open`` with ``O_CREAT``: a file it creates is 0600 (``flags`` as for os.open)."""
    return opener(path, flags | os.O_CREAT)


def write_text(path: Path, text: str) -> None:
    """A 0600 file holding ``text`` (a temporary one, renamed by the caller)."""
    with open(path, "w", encoding="utf-8", opener=opener) as out:
        out.write(text)


def _own(fd: int) -> None:
    """Exactly 0600 for a file of ours that the umask made narrower or an older version made
    wider."""
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != FILE_MODE:
        with contextlib.suppress(PermissionError):  # another user's: its owner decides
            os.fchmod(fd, FILE_MODE)


def tighten(state_dir: Path) -> None:
    """A state directory that others may read (made by an older version, or by hand) and all
    below it: 0700 and 0600, said in one line."""
    try:
        mode = stat.S_IMODE(os.stat(state_dir).st_mode)
    except OSError:
        return
    if not mode & 0o077:
        return
    changed = 0
    for top, dirs, files in os.walk(state_dir):
        for name, want in [(top, DIR_MODE)] + [(os.path.join(top, f), FILE_MODE) for f in files]:
            try:
                st = os.lstat(name)
                if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == want:
                    continue
                os.chmod(name, want)
                changed += 1
            except OSError:
                continue
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
    log.info(
        "the state directory %s was open to other users (mode %o): made private (%d entries "
        "now 0700 or 0600)",
        state_dir,
        mode,
        changed,
    )

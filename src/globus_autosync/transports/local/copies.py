"""What a local directory holds: each regular file's (size, mtime_ns), by name. A module that
needs only ``os``, so that ``verify`` can run it in worker processes."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from globus_autosync.errors import TransportError


def held_in(folder: str, beat: Callable[[], None] | None = None) -> dict[str, tuple[int, int]]:
    """Every regular file of ``folder``, looked at now (an ``lstat`` relative to the directory:
    no path look-up); empty when the directory is not there. ``beat`` is called every 1,024
    entries. Raises TransportError when the directory cannot be looked into."""
    found: dict[str, tuple[int, int]] = {}
    lstat, regular = os.lstat, stat.S_ISREG
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return found  # the directory is not there: neither is any file in it
    except OSError as err:
        raise TransportError(f"cannot look into {folder}: {err.strerror or err}") from None
    try:
        for i, name in enumerate(os.listdir(fd)):
            if beat is not None and not i & 1023:
                beat()
            try:
                st = lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue
            if regular(st.st_mode):
                found[name] = (st.st_size, st.st_mtime_ns)
    except OSError as err:
        raise TransportError(f"cannot look into {folder}: {err.strerror or err}") from None
    finally:
        os.close(fd)
    return found

"""The real CLI, run by the fault suite under libfiu: ``python child.py ARGS`` == the console
script with ARGS, except that its stdout and stderr are written with writev(2).

The suite makes write(2) fail (and fsync, rename, ...) to hit every file the tool writes: the
destination, the state database, the lock, the log, the metrics file. libfiu cannot tell one
file descriptor from another, so without this the faults would also eat the very lines the suite
reads (and a console that fails to print is not what the suite is about); writev(2) is not faulted.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any


class _Console(io.RawIOBase):
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def write(self, data: Any, /) -> int:
        return os.writev(self.fd, [data])


def _console(fd: int) -> io.TextIOWrapper:
    raw = io.BufferedWriter(_Console(fd))
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=True)


if __name__ == "__main__":
    sys.stdout = _console(1)
    sys.stderr = _console(2)
    from globus_autosync.cli import main

    main()

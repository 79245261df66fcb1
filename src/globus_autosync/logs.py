"""Logging, configured only by the CLI: a rotated file in the state dir, plus stderr."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

SUMMARY_LOGGER = "globus_autosync.summary"
FORMAT = "%(asctime)s: %(levelname)s: %(message)s"
MAX_BYTES = 10_000_000  # the log file is rotated past this size
BACKUPS = 5  # rotated files kept: .1 (the newest) to .5


def setup(
    state_dir: Path, debug: bool, quiet: bool, to_file: bool = True, resident: bool = False
) -> Path | None:
    """Log INFO (DEBUG with --debug) to <state dir>/log/globus-autosync.log and to stderr
    (WARNING and up with --quiet). Answers the log file's path, or None if it cannot be written.

    A resident process (``watch``) rotates the file whenever it passes ``MAX_BYTES``; a command
    that ends soon (``run`` from cron) rotates it, if need be, before it writes, and spares its
    start-up the import of ``logging.handlers`` (sockets, pickle, queues: 4 ms of every run)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    formatter = logging.Formatter(FORMAT)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    console.setFormatter(formatter)
    # run's summary lines go to stdout (and the file), not twice to a terminal
    console.addFilter(lambda record: record.name != SUMMARY_LOGGER)
    root.addHandler(console)
    logging.getLogger("globus_sdk").setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if not to_file:
        return None
    path = state_dir / "log" / "globus-autosync.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler
        if resident:
            from logging.handlers import RotatingFileHandler

            handler = RotatingFileHandler(
                path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
            )
        else:
            _rotate_if_full(path)
            handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as err:
        logging.getLogger(__name__).warning(
            "cannot write the log file %s (%s); logging to stderr only", path, err.strerror
        )
        return None
    handler.setFormatter(formatter)
    root.addHandler(handler)
    return path


def _rotate_if_full(path: Path) -> None:
    """Rotate as RotatingFileHandler does (.4 to .5, ..., the file to .1), once, if it is full."""
    try:
        if path.stat().st_size < MAX_BYTES:
            return
    except FileNotFoundError:
        return
    # FileNotFoundError: another run (of another job) rotated them first
    for n in range(BACKUPS - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}.{n}", f"{path}.{n + 1}")
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, f"{path}.1")

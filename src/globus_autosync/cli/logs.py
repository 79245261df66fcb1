"""Logging, configured only by the CLI: a rotated file in the state dir, plus stderr.

A log line that cannot be written (a full or failing disk) never fails a run: the file handler
says so once on stderr and carries on (the lines it could not write are lost; it tries again
with the next one), instead of logging's default ``--- Logging error ---`` and a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from io import TextIOWrapper
from pathlib import Path

from globus_autosync.store import private

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
    formatter = _Printable(FORMAT)
    console = _Console(sys.stderr)
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
        private.private_dir(path.parent)
        handler: logging.FileHandler
        if resident:
            # here: logging.handlers costs 16 ms to import; only watch rotates its log
            from logging.handlers import RotatingFileHandler

            class _RotatingLog(_SaysOnce, RotatingFileHandler):
                def _open(self) -> TextIOWrapper:
                    return _private_open(self)

            handler = _RotatingLog(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
        else:
            try:
                _rotate_if_full(path)
            except OSError as err:  # a log past its size is better than none
                logging.getLogger(__name__).warning(
                    "cannot rotate the log file %s (%s); appending to it", path, err.strerror
                )
            handler = _FileLog(path, encoding="utf-8")
    except OSError as err:
        logging.getLogger(__name__).warning(
            "cannot write the log file %s (%s); logging to stderr only", path, err.strerror
        )
        return None
    handler.setFormatter(formatter)
    root.addHandler(handler)
    return path


class _Printable(logging.Formatter):
    """A line of the log never fails on a name that is not UTF-8: each such byte is ``\\xNN``,
    as the store and the reports show it (a message should show names with ``printable``:
    this is the net beneath it)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        if text.isascii():
            return text
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _SaysOnce(logging.Handler):
    """A handler of the log file whose write failures are said once on stderr, not raised: once
    per outage (again after a line got through and a later one failed)."""

    failing = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)  # calls handleError on a failure
        if not self._failed_now:
            self.failing = False

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):  # a bug (a bad format): logging's report
            super().handleError(record)
            return
        self._failed_now = True
        if self.failing:
            return
        self.failing = True
        why = err.strerror or str(err)
        name = getattr(self, "baseFilename", "the log file")
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(
                f"globus-autosync: warning: cannot write the log file {name} ({why}); "
                "carrying on without the lines it cannot take\n"
            )
            sys.stderr.flush()


class _FileLog(_SaysOnce, logging.FileHandler):
    def _open(self) -> TextIOWrapper:
        return _private_open(self)


def _private_open(handler: logging.FileHandler) -> TextIOWrapper:
    """FileHandler's ``_open``, but a log it creates is 0600."""
    opened = open(  # noqa: SIM115 (the handler keeps it open)
        handler.baseFilename,
        handler.mode,
        encoding=handler.encoding,
        errors=handler.errors,
        opener=private.opener,
    )
    assert isinstance(opened, TextIOWrapper)
    return opened


class _Console(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr: a line it cannot write is dropped (there is nowhere left to say so)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)


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

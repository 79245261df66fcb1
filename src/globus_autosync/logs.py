"""Logging, configured only by the CLI: a rotated file in the state dir, plus stderr."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

SUMMARY_LOGGER = "globus_autosync.summary"
FORMAT = "%(asctime)s: %(levelname)s: %(message)s"


def setup(state_dir: Path, debug: bool, quiet: bool, to_file: bool = True) -> Path | None:
    """Log INFO (DEBUG with --debug) to <state dir>/log/globus-autosync.log and to stderr
    (WARNING and up with --quiet). Answers the log file's path, or None if it cannot be written."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
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
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=10_000_000, backupCount=5, encoding="utf-8"
        )
    except OSError as err:
        logging.getLogger(__name__).warning(
            "cannot write the log file %s (%s); logging to stderr only", path, err.strerror
        )
        return None
    handler.setFormatter(formatter)
    root.addHandler(handler)
    return path

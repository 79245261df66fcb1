"""The configuration file: its table of keys, its records, and the units it is written in.
Imports only ``errors`` (and the standard library); every other folder may import it."""

from __future__ import annotations

from globus_autosync.config.keys import SCANS, SYNC_LEVELS, TRANSPORTS
from globus_autosync.config.load import MAX_REQUESTS_PER_SECOND, load, parse
from globus_autosync.config.records import (
    NO_ALERTS,
    AlertSettings,
    Config,
    GlobusSettings,
    Job,
    JobActions,
    JobCleanup,
    JobGlobus,
)
from globus_autosync.config.units import FreeSpace, parse_duration, parse_free_space, parse_size

__all__ = [
    "MAX_REQUESTS_PER_SECOND",
    "NO_ALERTS",
    "SCANS",
    "SYNC_LEVELS",
    "TRANSPORTS",
    "AlertSettings",
    "Config",
    "FreeSpace",
    "GlobusSettings",
    "Job",
    "JobActions",
    "JobCleanup",
    "JobGlobus",
    "load",
    "parse",
    "parse_duration",
    "parse_free_space",
    "parse_size",
]

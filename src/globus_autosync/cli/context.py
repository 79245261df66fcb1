"""What every command shares: the context (config path, state dir, flags), the default paths,
the worst of several exit codes, the progress line, a read-only store, ages in words."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from globus_autosync.errors import (
    EXIT_HUNG,
    EXIT_JOB,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from globus_autosync import config
    from globus_autosync.sources.base import WalkStats
    from globus_autosync.store import Store

log = logging.getLogger("globus_autosync")


APP = "globus-autosync"
EXIT_INTERNAL = 70  # a bug: please report it


# Modules that only some commands need are imported where they are used: a cron `run` starts a
# fresh interpreter every few minutes, and its start-up is most of a quiet run's time.


def default_config() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def default_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir(APP))


class Context:
    """The global options (a plain class: `--version` defines no dataclass)."""

    def __init__(self, config_path: Path, state_dir: Path, debug: bool, quiet: bool) -> None:
        self.config_path, self.state_dir = config_path, state_dir
        self.debug, self.quiet = debug, quiet

    def load(self) -> config.Config:
        from globus_autosync import config

        return config.load(self.config_path)


pass_ctx = click.make_pass_decorator(Context)


def worst(codes: list[int]) -> int:
    """Several jobs: a configuration error outweighs a hung job, which outweighs a job that
    could not run, which outweighs a lock, which outweighs failed files."""
    for code in (EXIT_USAGE, EXIT_HUNG, EXIT_JOB, EXIT_LOCKED, EXIT_PARTIAL):
        if code in codes:
            return code
    return next((code for code in codes if code != EXIT_OK), EXIT_OK)


@contextlib.contextmanager
def progress_line(obj: Context, label: str) -> Iterator[Callable[[WalkStats], None] | None]:
    """A progress line on a terminal (rich is imported only then: start-up time counts)."""
    if obj.quiet or not sys.stderr.isatty():
        yield None
        return
    from globus_autosync.cli.display import ScanProgress

    progress = ScanProgress(label, enabled=True)
    try:
        yield progress
    finally:
        progress.close()


@contextlib.contextmanager
def readonly_store(obj: Context) -> Iterator[Store | None]:
    """The state database for reading (None before the first run), closed afterwards."""
    from globus_autosync.store import Store

    store = Store.open_readonly(obj.state_dir)
    try:
        yield store
    finally:
        if store is not None:
            store.close()


def age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

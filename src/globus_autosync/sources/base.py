"""What every source shares: the ``Source`` protocol and what a walk answers (``Walked``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from globus_autosync.sources.local.listing import Listing
from globus_autosync.sources.local.walk import Apply, DirTree, WalkStats


@dataclass(slots=True)
class Walked:
    """What a walk of the source saw, and whether it saw it whole."""

    stats: WalkStats
    stopped: bool = False  # asked to stop, or could not go on: the tree was not seen whole
    problem: str | None = None  # why it could not go on (the source's service unreachable)


class Source(Protocol):
    kind: str
    # a file's own mtime may vouch that it settled (plan.settled): true of the local clock,
    # not of a remote collection's
    trust_mtime: bool

    def ready(self) -> None:
        """Raise JobError when the source cannot be walked at all."""

    def list_dir(self, rel: str) -> Listing:
        """One directory (relative to the source's root): files, subdirectories, and the entries
        passed over with why."""

    def walk(
        self,
        tree: DirTree,
        apply: Apply,
        full: bool,
        now: float,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[WalkStats], None] | None = None,
        *,
        plan: bool = True,
    ) -> Walked:
        """List the tree against the store; ``apply`` after each directory listed (with its
        plan; with ``plan=False`` the listing's files themselves, for ``baseline``)."""

"""Sources: where files come from. ``make_source`` picks one for a job.
May import: transports.base, globus, store, model, errors, config; never cleanup or above.

The seam mirrors the transports': a source lists one directory at a time (``list_dir``) and
walks the job's tree against the store, handing each listed directory and what changed in it
since the stored state (a ``DirPlan``) to the cycle's ``apply``. The cycle does not know which
source it drives; ``plan.py`` and the store serve both.

- ``local``: the filesystem (walk, listing, listwork, parwalk), in O(directories) when nothing
  changed.
- ``globus``: a collection listed through the Transfer API (``operation_ls``), every known
  directory each cycle, at a pace of ``requests_per_second``; it lists with the Globus
  transport's client (``globus.client.TransferSession``), not through the transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from globus_autosync.config import Job
from globus_autosync.sources.local.listing import Listing
from globus_autosync.sources.local.walk import Apply, DirTree, Notices, WalkStats
from globus_autosync.transports.base import Transport

__all__ = ["Source", "Walked", "make_source"]


@dataclass
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


def make_source(job: Job, transport: Transport | None, notices: Notices | None = None) -> Source:
    """The job's source; a Globus one lists through the job's (real) Globus transport. A local
    one may learn new names from the kernel's change notices (``watch`` on Linux)."""
    if job.scan == "local":
        from globus_autosync.sources.local.source import LocalSource

        return LocalSource(job, notices)
    # here: the Globus source and globus_sdk cost a local run 30 ms
    from globus_autosync.globus.client import TransferSession
    from globus_autosync.sources.globus import GlobusSource

    real = getattr(transport, "real", transport)  # a dry run's stand-in lists through the real
    session = getattr(real, "session", None)  # the Globus transport's client, shared
    if not isinstance(session, TransferSession):
        raise TypeError(f"job {job.name}: scan = 'globus' needs the Globus transport")
    return GlobusSource(job, session)

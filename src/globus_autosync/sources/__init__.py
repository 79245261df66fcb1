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

from globus_autosync.config import Job
from globus_autosync.sources.base import Notices, Source, Walked
from globus_autosync.sources.local.source import LocalSource
from globus_autosync.transports.base import Transport

__all__ = ["Source", "Walked", "make_source"]


def make_source(job: Job, transport: Transport | None, notices: Notices | None = None) -> Source:
    """The job's source; a Globus one lists through the job's (real) Globus transport. A local
    one may learn new names from the kernel's change notices (``watch`` on Linux)."""
    if job.scan == "local":
        return LocalSource(job, notices)
    # here: the Globus source and globus_sdk cost a local run 30 ms
    from globus_autosync.globus.client import TransferSession
    from globus_autosync.sources.globus import GlobusSource

    real = getattr(transport, "real", transport)  # a dry run's stand-in lists through the real
    session = getattr(real, "session", None)  # the Globus transport's client, shared
    if not isinstance(session, TransferSession):
        raise TypeError(f"job {job.name}: scan = 'globus' needs the Globus transport")
    return GlobusSource(job, session)

"""A batch the service refused for good (a 4xx: a label it will not take, a path it refuses):
the job is ``failing`` until a later batch succeeds. Its files back off and are tried again by
themselves; what was refused, and why, is the reason (health.py words it)."""

from __future__ import annotations

from globus_autosync.errors import REFUSED
from globus_autosync.store import Store

_LOOK_BACK = 50  # batches looked at for the latest one that finished


def refused_batch(store: Store, job_id: int) -> str | None:
    """What the service refused, when the job's latest finished batch was refused."""
    for batch in store.batches.recent(job_id, _LOOK_BACK):
        if batch.state in ("new", "submitted"):
            continue
        reason = batch.reason or ""
        if batch.state != "failed" or not reason.startswith(REFUSED):
            return None
        return f"batch {batch.id} ({batch.files} files) was {reason}"
    return None

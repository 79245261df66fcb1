"""Pure decisions: (a directory's listing, what the store knows of it, now) -> changes.

No I/O here, so every rule can be tested exhaustively.

The life of a file: ``seen`` (observed, not yet settled) -> ``queued`` (settled, waiting for a
batch) -> ``submitted`` (in a batch) -> confirmed (kept in the directory's compact listing, its row
gone). ``failed`` waits for ``next_try`` and is queued again; ``skipped`` is reported and looked at
again on a full scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

SEEN, QUEUED, SUBMITTED, FAILED, SKIPPED = "seen", "queued", "submitted", "failed", "skipped"
WORK_STATES = (SEEN, QUEUED, SUBMITTED, FAILED)  # rows that keep a directory under watch


class Pending(NamedTuple):
    """A file that is not confirmed at the destination as it is now: one row of the store."""

    name: str
    size: int
    mtime_ns: int
    state: str
    since: float  # when this (size, mtime) was first observed
    queued_at: float | None = None  # when it settled (for lag)
    attempts: int = 0
    next_try: float = 0.0
    batch: int | None = None
    reason: str | None = None


@dataclass
class DirPlan:
    upserts: list[Pending] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    changed: int = 0  # files new or changed since last confirmed, first noticed now
    newly_skipped: list[Pending] = field(default_factory=list)
    digest: bytes | None = None  # the listing needed nothing: remember its digest (listwork)
    chunks: bytes | None = None  # a large directory's runs of confirmed names (runs.pack)


def settled(
    size_mtime: tuple[int, int], since: float, now: float, settle: float, trust_mtime: bool = True
) -> bool:
    """Unchanged for ``settle`` seconds: seen so that long ago, or last modified that long ago.
    ``trust_mtime=False`` (a remote source, whose clock and connector we cannot vouch for): by
    observation time alone."""
    if now - since >= settle:
        return True
    if not trust_mtime:
        return False
    mtime = size_mtime[1] / 1e9
    return mtime <= now and now - mtime >= settle


def backoff(attempts: int) -> float:
    """Seconds to wait before retry number ``attempts`` (1, 2, ...): the first at the next cycle
    (the cause may be fixed by then: space freed, a permission changed), then 30 s doubling, at
    most 1 h."""
    if attempts <= 1:
        return 0.0
    return float(min(30 * 2 ** (attempts - 2), 3600))


def _observe(
    name: str,
    stats: tuple[int, int],
    now: float,
    settle: float,
    attempts: int,
    trust_mtime: bool = True,
) -> Pending:
    if settled(stats, now, now, settle, trust_mtime):
        return Pending(name, *stats, QUEUED, since=now, queued_at=now, attempts=attempts)
    return Pending(name, *stats, SEEN, since=now, attempts=attempts)


def plan_dir(
    files: dict[str, tuple[int, int]],
    skipped: dict[str, str],
    done: dict[str, tuple[int, int]],
    pending: dict[str, Pending],
    now: float,
    settle: float,
    full: bool,
    trust_mtime: bool = True,
) -> DirPlan:
    """Compare one directory's listing with its confirmed files and work in progress.
    ``trust_mtime=False``: a file settles by observation time only (see ``settled``)."""
    plan = DirPlan()
    t = trust_mtime
    for name, stats in files.items():
        row = pending.get(name)
        if row is None:
            if done.get(name) != stats:
                plan.upserts.append(_observe(name, stats, now, settle, 0, t))
                plan.changed += 1
            continue
        if row.state == SUBMITTED:
            continue  # in flight; a change is seen again once the batch is resolved
        same = (row.size, row.mtime_ns) == stats
        if row.state == SKIPPED:
            if same and not full:
                continue
            if done.get(name) == stats:
                plan.deletes.append(name)
            else:
                plan.upserts.append(_observe(name, stats, now, settle, 0, t))
                plan.changed += not same
            continue
        if not same:
            plan.upserts.append(_observe(name, stats, now, settle, row.attempts, t))
            if row.state != SEEN:
                plan.changed += 1
        elif row.state == SEEN and settled(stats, row.since, now, settle, t):
            plan.upserts.append(row._replace(state=QUEUED, queued_at=now))
        elif row.state == FAILED and row.next_try <= now:
            plan.upserts.append(row._replace(state=QUEUED, queued_at=row.queued_at or now))
    for name, reason in skipped.items():
        row = pending.get(name)
        if row is not None and row.state == SKIPPED and row.reason == reason and not full:
            continue
        if row is not None and row.state == SUBMITTED:
            continue
        new = Pending(name, 0, 0, SKIPPED, since=now, reason=reason)
        plan.upserts.append(new)
        if row is None or row.state != SKIPPED or row.reason != reason:
            plan.newly_skipped.append(new)
    for name, row in pending.items():
        if name not in files and name not in skipped and row.state != SUBMITTED:
            plan.deletes.append(name)  # gone from the source before it was sent
    return plan

"""What a finished task means for each file of its batch: confirmed, seen again (to be listed and
sent anew), skipped, or failed with a backoff; and whether the batch succeeded. A pure function
over records: the store's writes and the log lines are the caller's (batches.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from globus_autosync.model.plan import FAILED, SEEN, SKIPPED, Pending, backoff
from globus_autosync.store import QueuedFile
from globus_autosync.transports.base import DONE, FAIL, RETRY, SKIP, Outcome, TaskReport

BATCH_SUCCEEDED = "succeeded"
BATCH_FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A file the task failed or skipped, for the log."""

    result: str  # "failed" or "skipped"
    relpath: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class Resolution:
    """The decisions for one finished batch."""

    state: str  # of the batch: BATCH_SUCCEEDED or BATCH_FAILED
    reason: str | None  # the task's own, if any
    done: list[QueuedFile]  # confirmed at the destination
    others: list[tuple[int, Pending]]  # (dir, the file's new row): retried, skipped or failed
    skipped: list[tuple[int, str]]  # (dir, name) of the files the transport skipped
    undelivered: list[Undelivered]  # failed or skipped, in the batch's order
    failed: int


def resolve(
    files: Sequence[QueuedFile], relpaths: Sequence[str], report: TaskReport, now: float
) -> Resolution:
    """Decide each file of a finished batch from the task's report (``relpaths``: the files'
    paths as the transport was given them, in the same order); a file the report does not
    name failed, with the task's reason."""
    done: list[QueuedFile] = []
    others: list[tuple[int, Pending]] = []
    skipped: list[tuple[int, str]] = []
    undelivered: list[Undelivered] = []
    failed = 0
    for f, relpath in zip(files, relpaths, strict=True):
        outcome = report.outcomes.get(relpath, Outcome(FAIL, report.reason))
        if outcome.result == DONE:
            done.append(f)
            continue
        row = f.row._replace(batch=None, reason=outcome.reason)
        if outcome.result == RETRY:
            row = row._replace(state=SEEN, since=now)
        elif outcome.result == SKIP:
            row = row._replace(state=SKIPPED)
            skipped.append((f.dir, f.row.name))
        else:  # FAIL
            attempts = row.attempts + 1
            row = row._replace(state=FAILED, attempts=attempts, next_try=now + backoff(attempts))
        others.append((f.dir, row))
        if outcome.result != RETRY:
            failed += outcome.result == FAIL
            undelivered.append(Undelivered(outcome.result, relpath, outcome.reason))
    state = BATCH_SUCCEEDED if not failed and report.reason is None else BATCH_FAILED
    return Resolution(state, report.reason, done, others, skipped, undelivered, failed)

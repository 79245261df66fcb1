"""The pure decisions of engine/resolve.py: what a finished task means for each file of its batch
and for the batch, checked against tables written as the rules, with literal values.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from globus_autosync.engine.resolve import BATCH_FAILED, BATCH_SUCCEEDED, Undelivered, resolve
from globus_autosync.model.plan import FAILED, SEEN, SKIPPED, SUBMITTED, Pending
from globus_autosync.store import QueuedFile
from globus_autosync.transports.base import Outcome, TaskReport

NOW = 1_000_000.0
SINCE = NOW - 600  # when the file's (size, mtime) was first seen
QUEUED_AT = NOW - 300


def sent(name: str, attempts: int = 0, dir_id: int = 3) -> QueuedFile:
    """A file of batch 7, as the store gives it back to be resolved."""
    row = Pending(name, 10, 20, SUBMITTED, SINCE, QUEUED_AT, attempts, 0.0, 7, None)
    return QueuedFile(dir_id, row)


@dataclass(frozen=True)
class FileCase:
    outcome: Outcome | None  # None: the report does not name the file
    attempts: int  # before this batch
    task_reason: str | None
    # expected: None when confirmed, else the file's new row fields
    state: str | None
    new_attempts: int = 0
    next_try: float = 0.0
    since: float = SINCE
    reason: str | None = None
    logged: bool = False  # among the undelivered files said in the log


FILE_CASES = [
    # confirmed: no new row, whatever came before
    FileCase(Outcome("done"), 0, None, None),
    FileCase(Outcome("done"), 4, "ignored for a done file", None),
    # sent again: seen anew now, attempts kept, no backoff, not logged
    FileCase(Outcome("retry", "source changed"), 0, None, SEEN, 0, 0.0, NOW, "source changed"),
    FileCase(Outcome("retry"), 2, None, SEEN, 2, 0.0, NOW, None),
    # skipped: kept as it is, with the transport's reason, and logged
    FileCase(Outcome("skipped", "vanished"), 1, None, SKIPPED, 1, 0.0, SINCE, "vanished", True),
    # failed: one more attempt, the first retried at once, then 30 s doubling, at most 1 h
    FileCase(Outcome("failed", "EIO"), 0, None, FAILED, 1, NOW, SINCE, "EIO", True),
    FileCase(Outcome("failed", "EIO"), 1, None, FAILED, 2, NOW + 30, SINCE, "EIO", True),
    FileCase(Outcome("failed", "EIO"), 3, None, FAILED, 4, NOW + 120, SINCE, "EIO", True),
    FileCase(Outcome("failed"), 20, None, FAILED, 21, NOW + 3600, SINCE, None, True),
    # not named by the report: failed, with the task's reason
    FileCase(None, 0, "task canceled", FAILED, 1, NOW, SINCE, "task canceled", True),
    FileCase(None, 2, None, FAILED, 3, NOW + 60, SINCE, None, True),
]


@pytest.mark.parametrize("c", FILE_CASES, ids=lambda c: f"{c.outcome}-{c.attempts}")
def test_each_file_of_a_finished_batch(c: FileCase) -> None:
    f = sent("a.tif", c.attempts)
    outcomes = {} if c.outcome is None else {"d/a.tif": c.outcome}
    decided = resolve([f], ["d/a.tif"], TaskReport(True, outcomes, c.task_reason), NOW)
    if c.state is None:
        assert decided.done == [f]
        assert decided.others == []
        return
    assert decided.done == []
    [(dir_id, row)] = decided.others
    assert dir_id == 3
    want = Pending(
        "a.tif", 10, 20, c.state, c.since, QUEUED_AT, c.new_attempts, c.next_try, None, c.reason
    )
    assert row == want
    assert decided.skipped == ([(3, "a.tif")] if c.state == SKIPPED else [])
    logged = [Undelivered(str(c.outcome.result if c.outcome else "failed"), "d/a.tif", c.reason)]
    assert decided.undelivered == (logged if c.logged else [])


@dataclass(frozen=True)
class BatchCase:
    results: tuple[str | None, ...]  # each file's outcome; None: not in the report
    task_reason: str | None
    state: str
    failed: int
    skipped: int
    done: int


BATCH_CASES = [
    BatchCase(("done", "done"), None, BATCH_SUCCEEDED, 0, 0, 2),
    BatchCase((), None, BATCH_SUCCEEDED, 0, 0, 0),
    # a skipped or retried file does not fail the batch
    BatchCase(("done", "skipped", "retry"), None, BATCH_SUCCEEDED, 0, 1, 1),
    BatchCase(("done", "failed"), None, BATCH_FAILED, 1, 0, 1),
    BatchCase(("done", None), None, BATCH_FAILED, 1, 0, 1),
    BatchCase((None, None, "skipped"), None, BATCH_FAILED, 2, 1, 0),
    # a task that ended with a reason failed, even with every file done
    BatchCase(("done", "done"), "deadline passed", BATCH_FAILED, 0, 0, 2),
]


@pytest.mark.parametrize("c", BATCH_CASES, ids=lambda c: ",".join(map(str, c.results)) or "empty")
def test_a_finished_batch(c: BatchCase) -> None:
    files = [sent(f"f{i}") for i in range(len(c.results))]
    paths = [f"f{i}" for i in range(len(c.results))]
    outcomes = {p: Outcome(r) for p, r in zip(paths, c.results, strict=True) if r is not None}  # type: ignore[arg-type]
    decided = resolve(files, paths, TaskReport(True, outcomes, c.task_reason), NOW)
    assert decided.state == c.state
    assert decided.reason == c.task_reason
    assert decided.failed == c.failed
    assert len(decided.skipped) == c.skipped
    assert len(decided.done) == c.done
    assert len(decided.others) == len(c.results) - c.done
    assert [u.relpath for u in decided.undelivered] == [
        p for p, r in zip(paths, c.results, strict=True) if r in (None, "failed", "skipped")
    ]


def test_the_files_keep_their_directory_and_their_order() -> None:
    files = [sent("b", dir_id=9), sent("a", dir_id=4), sent("c", dir_id=9)]
    report = TaskReport(True, {"x/b": Outcome("done"), "y/a": Outcome("failed", "EACCES")})
    decided = resolve(files, ["x/b", "y/a", "x/c"], report, NOW)
    assert decided.done == [files[0]]
    assert [(d, r.name) for d, r in decided.others] == [(4, "a"), (9, "c")]
    assert decided.undelivered == [
        Undelivered("failed", "y/a", "EACCES"),
        Undelivered("failed", "x/c", None),
    ]


def test_paths_and_files_must_match() -> None:
    with pytest.raises(ValueError):
        resolve([sent("a")], [], TaskReport(True), NOW)

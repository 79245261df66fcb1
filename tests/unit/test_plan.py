"""The pure rules of plan.py, checked exhaustively against a plain statement of them.

For one name, every combination of: what the listing shows (nothing, a file with the same or other
size/mtime as the store's row, an unsendable entry with the same or another reason), what was
last confirmed (nothing, the listed stats, other stats), the store's row (none, or any state,
with the listed or other stats, a retry due or not), whether the file has settled, and whether
the scan is full. ``expected`` below is the contract, written as rules rather than code paths.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from globus_autosync.model.plan import (
    FAILED,
    QUEUED,
    SEEN,
    SKIPPED,
    SUBMITTED,
    WORK_STATES,
    Pending,
    backoff,
    plan_dir,
    settled,
)

NOW = 1_000_000.0
SETTLE = 30.0
NAME = "f.tif"
REASON = "name contains a newline"
OTHER_REASON = "symbolic link (symlinks = skip)"

# stats are (size, mtime_ns); "fresh" was modified just now, "old" long before the settle time
FRESH = (100, int((NOW - 1) * 1e9))
OLD = (100, int((NOW - 3600) * 1e9))
ELSEWHERE = (999, int((NOW - 7200) * 1e9))


@dataclass(frozen=True)
class Case:
    listing: str  # "none", "file", "unsendable", "unsendable-other"
    stats: tuple[int, int]  # the listed stats, when a file
    done: str  # "none", "same", "other"
    row_state: str | None
    row_same: bool  # the row's stats equal the listed ones
    row_reason: str | None
    row_since_old: bool  # the row's (size, mtime) was first seen longer ago than settle
    retry_due: bool
    full: bool


@dataclass(frozen=True)
class Expect:
    action: str  # "nothing", "upsert", "delete"
    state: str | None = None
    changed: int = 0
    newly_skipped: bool = False
    keeps_attempts: bool = False
    keeps_since: bool = False


def expected(c: Case) -> Expect:
    row = c.row_state
    is_settled = c.stats == OLD or (row == SEEN and c.row_same and c.row_since_old)
    observe = QUEUED if c.stats == OLD else SEEN  # a first sight: settled only by its mtime
    if row == SUBMITTED:
        return Expect("nothing")  # in flight: left alone until its batch is resolved
    if c.listing == "none":
        return Expect("delete" if row else "nothing")  # gone before it was sent: forgotten
    if c.listing.startswith("unsendable"):
        reason = REASON if c.listing == "unsendable" else OTHER_REASON
        known = row == SKIPPED and c.row_reason == reason
        if known and not c.full:
            return Expect("nothing")
        return Expect("upsert", SKIPPED, newly_skipped=not known)
    # a sendable file
    if row is None:
        if c.done == "same":
            return Expect("nothing")  # confirmed with these very stats: never sent twice
        return Expect("upsert", observe, changed=1)  # new path, or other size/mtime
    if row == SKIPPED:
        if c.row_same and not c.full:
            return Expect("nothing")  # looked at again on a full scan
        if c.done == "same":
            return Expect("delete")
        return Expect("upsert", observe, changed=int(not c.row_same))
    if not c.row_same:  # changed since the store last saw it: the settle clock restarts
        return Expect("upsert", observe, changed=int(row != SEEN), keeps_attempts=True)
    if row == SEEN:
        if is_settled:
            return Expect("upsert", QUEUED, keeps_since=True, keeps_attempts=True)
        return Expect("nothing")
    if row == FAILED and c.retry_due:
        return Expect("upsert", QUEUED, keeps_since=True, keeps_attempts=True)
    return Expect("nothing")  # queued, or failed and not due yet


def _cases() -> list[Case]:
    out = []
    rows: list[str | None] = [None, SEEN, QUEUED, SUBMITTED, FAILED, SKIPPED]
    for listing, stats, done, row, row_same, reason, since_old, due, full in itertools.product(
        ["none", "file", "unsendable", "unsendable-other"],
        [FRESH, OLD],
        ["none", "same", "other"],
        rows,
        [True, False],
        [REASON, OTHER_REASON],
        [True, False],
        [True, False],
        [True, False],
    ):
        if listing != "file" and (stats != FRESH or done != "none"):
            continue  # stats and done only matter for a listed file
        if row is None and (not row_same or reason != REASON or not since_old or not due):
            continue
        if row != FAILED and not due:
            continue
        if row != SKIPPED and reason != REASON:
            continue
        if row != SEEN and not since_old:
            continue
        out.append(Case(listing, stats, done, row, row_same, reason, since_old, due, full))
    return out


CASES = _cases()


Stats = dict[str, tuple[int, int]]


def _inputs(c: Case) -> tuple[Stats, dict[str, str], Stats, dict[str, Pending]]:
    files = {NAME: c.stats} if c.listing == "file" else {}
    skipped = {}
    if c.listing == "unsendable":
        skipped[NAME] = REASON
    elif c.listing == "unsendable-other":
        skipped[NAME] = OTHER_REASON
    done = {}
    if c.done == "same":
        done[NAME] = c.stats
    elif c.done == "other":
        done[NAME] = ELSEWHERE
    pending = {}
    if c.row_state is not None:
        if c.row_state == SKIPPED and c.listing.startswith("unsendable"):
            row_stats = (0, 0)  # how an unsendable entry is stored
        else:
            row_stats = c.stats if c.row_same else (c.stats[0] + 1, c.stats[1])
        pending[NAME] = Pending(
            NAME,
            *row_stats,
            c.row_state,
            since=NOW - 3600 if c.row_since_old else NOW - 1,
            queued_at=NOW - 50 if c.row_state != SEEN else None,
            attempts=3,
            next_try=NOW - 1 if c.retry_due else NOW + 100,
            batch=7 if c.row_state == SUBMITTED else None,
            reason=c.row_reason if c.row_state == SKIPPED else None,
        )
    return files, skipped, done, pending


def test_the_cases_cover_every_state() -> None:
    assert len(CASES) > 200
    assert {c.row_state for c in CASES} == {None, *WORK_STATES, SKIPPED}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule(case: Case) -> None:
    files, skipped, done, pending = _inputs(case)
    plan = plan_dir(files, skipped, done, pending, NOW, SETTLE, case.full)
    want = expected(case)
    assert plan.changed == want.changed
    assert [p.name for p in plan.newly_skipped] == ([NAME] if want.newly_skipped else [])
    if want.action == "nothing":
        assert (plan.upserts, plan.deletes) == ([], [])
        return
    if want.action == "delete":
        assert (plan.upserts, plan.deletes) == ([], [NAME])
        return
    assert plan.deletes == []
    (row,) = plan.upserts
    assert (row.name, row.state) == (NAME, want.state)
    assert row.batch is None
    if want.state == SKIPPED:
        assert (row.size, row.mtime_ns) == (0, 0)
        assert row.reason == skipped[NAME]
        return
    assert (row.size, row.mtime_ns) == case.stats  # the stats as listed now
    old = pending.get(NAME)
    assert row.attempts == (old.attempts if old and want.keeps_attempts else 0)
    if want.keeps_since:
        assert old is not None
        assert row.since == old.since
    else:
        assert row.since == NOW
    if row.state == QUEUED:
        assert row.queued_at is not None
        assert row.queued_at <= NOW


def test_many_names_at_once_are_planned_independently() -> None:
    """The rules apply per name: one plan over every case equals the union of the plans."""
    files: dict[str, tuple[int, int]] = {}
    skipped: dict[str, str] = {}
    done: dict[str, tuple[int, int]] = {}
    pending: dict[str, Pending] = {}
    expect_upserts, expect_deletes, changed = set(), set(), 0
    for i, c in enumerate(c for c in CASES if not c.full):
        f, s, d, p = _inputs(c)
        name = f"n{i:05}"
        if NAME in f:
            files[name] = f[NAME]
        if NAME in s:
            skipped[name] = s[NAME]
        if NAME in d:
            done[name] = d[NAME]
        if NAME in p:
            pending[name] = p[NAME]._replace(name=name)
        want = expected(c)
        if want.action == "upsert":
            expect_upserts.add(name)
        elif want.action == "delete":
            expect_deletes.add(name)
        changed += want.changed
    plan = plan_dir(files, skipped, done, pending, NOW, SETTLE, False)
    assert {p.name for p in plan.upserts} == expect_upserts
    assert set(plan.deletes) == expect_deletes
    assert plan.changed == changed


def test_an_empty_directory_plans_nothing() -> None:
    plan = plan_dir({}, {}, {}, {}, NOW, SETTLE, True)
    assert (plan.upserts, plan.deletes, plan.changed, plan.newly_skipped) == ([], [], 0, [])


def test_confirmed_files_missing_from_the_listing_are_not_deleted_from_done() -> None:
    """Deleting a source file never causes anything at the destination, nor a row."""
    plan = plan_dir({}, {}, {"gone.tif": OLD}, {}, NOW, SETTLE, True)
    assert (plan.upserts, plan.deletes) == ([], [])


# -- settle and backoff ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mtime_age", "since_age", "settle", "want"),
    [
        (0, 0, 30, False),  # just written, just seen
        (29, 0, 30, False),
        (30, 0, 30, True),  # unchanged for settle seconds, by its mtime
        (3600 * 24 * 365 * 5, 0, 30, True),  # copied in with an old mtime: settled at once
        (0, 30, 30, True),  # seen settle seconds ago and unchanged since
        (0, 29, 30, False),
        (0, 0, 0, True),  # settle = 0s: at once
        (-100, 0, 30, False),  # an mtime in the future does not count as old
        (-100, 31, 30, True),
    ],
)
def test_settled(mtime_age: float, since_age: float, settle: float, want: bool) -> None:
    stats = (10, int((NOW - mtime_age) * 1e9))
    assert settled(stats, NOW - since_age, NOW, settle) is want


def test_backoff_first_retry_at_the_next_cycle_then_doubling_up_to_an_hour() -> None:
    waits = [backoff(n) for n in range(1, 12)]
    assert waits[0] == 0
    assert waits[1:5] == [30, 60, 120, 240]
    assert all(a <= b for a, b in itertools.pairwise(waits))
    assert max(waits) == 3600
    assert backoff(100) == 3600


@pytest.mark.parametrize(
    ("mtime_age", "since_age", "want"),
    [
        (3600 * 24 * 365 * 5, 0, False),  # an old remote mtime vouches for nothing
        (3600, 29, False),
        (3600, 30, True),  # unchanged across listings settle seconds apart
        (0, 30, True),
    ],
)
def test_settled_by_observation_time_only(mtime_age: float, since_age: float, want: bool) -> None:
    stats = (10, int((NOW - mtime_age) * 1e9))
    assert settled(stats, NOW - since_age, NOW, 30, trust_mtime=False) is want


def test_a_remote_file_is_seen_first_then_queued_after_settle() -> None:
    """plan_dir(trust_mtime=False): a new file with an old mtime waits a listing later."""
    first = plan_dir({"a.tif": OLD}, {}, {}, {}, NOW, SETTLE, False, trust_mtime=False)
    [row] = first.upserts
    assert row.state == SEEN and first.changed == 1
    early = plan_dir(
        {"a.tif": OLD}, {}, {}, {"a.tif": row}, NOW + SETTLE - 1, SETTLE, False, trust_mtime=False
    )
    assert early.upserts == []
    late = plan_dir(
        {"a.tif": OLD}, {}, {}, {"a.tif": row}, NOW + SETTLE, SETTLE, False, trust_mtime=False
    )
    assert [r.state for r in late.upserts] == [QUEUED]
    assert plan_dir({"a.tif": OLD}, {}, {}, {}, NOW, SETTLE, False).upserts[0].state == QUEUED

"""The pure rules of cleanup/rules.py, checked against tables and plain statements of them.

Each table lists the cases a rule must tell apart; the exhaustive checks combine every input the
rule reads and compare with the rule written as a sentence rather than as the code's path.
"""

from __future__ import annotations

import itertools
import stat
from dataclasses import dataclass

import pytest

from globus_autosync.cleanup import rules
from globus_autosync.config import FreeSpace
from globus_autosync.model.plan import backoff
from globus_autosync.store import Candidate
from globus_autosync.transports.base import Copy

NOW = 1_000_000.0
SETTLE = 30.0
OLD_NS = int((NOW - 3600) * 1e9)
FRESH_NS = int((NOW - 1) * 1e9)


def cand(
    name: str = "f",
    *,
    dir: int = 1,
    size: int = 100,
    mtime_ns: int = OLD_NS,
    ino: int = 7,
    ctime_ns: int = 5,
    confirmed: float = NOW - 7200,
    attempts: int = 0,
) -> Candidate:
    return Candidate(dir, name, size, mtime_ns, ino, ctime_ns, confirmed, None, 0, attempts)


@dataclass(frozen=True, slots=True)
class St:
    st_mode: int = stat.S_IFREG | 0o644
    st_ino: int = 7
    st_size: int = 100
    st_mtime_ns: int = OLD_NS
    st_ctime_ns: int = 5


@dataclass(frozen=True, slots=True)
class Row:
    parent: int


# -- free space, and what is due --------------------------------------------------------------
@pytest.mark.parametrize(
    ("keep_free", "free", "total", "short"),
    [
        (None, 0, 1000, 0),  # no keep_free: never short
        (FreeSpace(size=100), 150, 1000, 0),  # enough bytes free
        (FreeSpace(size=100), 100, 1000, 0),  # exactly enough
        (FreeSpace(size=100), 40, 1000, 60),
        (FreeSpace(percent=20.0), 100, 1000, 100),  # 20 % of 1000 is 200
        (FreeSpace(percent=20.0), 300, 1000, 0),
    ],
)
def test_shortfall(keep_free: FreeSpace | None, free: int, total: int, short: int) -> None:
    assert rules.shortfall(keep_free, free, total) == short


@pytest.mark.parametrize(
    ("delete_after", "need", "before"),
    [
        (None, 0, None),  # no age rule, space enough: nothing is due
        (3600.0, 0, NOW - 3600),  # by age
        (None, 10, NOW),  # space short: anything confirmed before now
        (3600.0, 10, NOW),  # space short wins over age
    ],
)
def test_due_before(delete_after: float | None, need: int, before: float | None) -> None:
    assert rules.due_before(NOW, delete_after, need) == before


def _choose_statement(
    rows: list[Candidate], age_cut: float | None, need: int, cap: int
) -> list[Candidate]:
    """The oldest-first prefix of rows that are old enough, or needed for space; at most cap."""
    out: list[Candidate] = []
    for i, c in enumerate(rows):
        aged = age_cut is not None and c.confirmed < age_cut
        needed = sum(r.size for r in rows[:i]) < need
        if len(out) == cap or not (aged or needed):
            break
        out.append(c)
    return out


def test_choose_against_its_statement() -> None:
    confirmations = [NOW - 9000, NOW - 5000, NOW - 4000, NOW - 100]
    sizes = [10, 50, 200]
    for age_cut, need, cap in itertools.product(
        (None, NOW - 4500, NOW - 3000, NOW), (0, 1, 10, 60, 260, 10_000), (0, 1, 2, 3, 10)
    ):
        for chosen_sizes in itertools.product(sizes, repeat=len(confirmations)):
            rows = [
                cand(f"f{i}", size=s, confirmed=t)
                for i, (s, t) in enumerate(zip(chosen_sizes, confirmations, strict=True))
            ]
            expected = _choose_statement(rows, age_cut, need, cap)
            assert rules.choose(rows, age_cut, need, cap) == expected, (age_cut, need, cap)


@pytest.mark.parametrize(
    ("age_cut", "need", "names"),
    [
        (None, 0, []),  # nothing old enough, nothing needed
        (NOW - 4500, 0, ["a", "b"]),  # by age only: the two confirmed before the cut
        (None, 1, ["a"]),  # the oldest covers a byte short
        (None, 150, ["a", "b"]),  # 100 then 200 bytes: the second is needed too
        (None, 10_000, ["a", "b", "c"]),  # short of more than all: all
        (NOW - 8000, 150, ["a", "b"]),  # by age none past the first; space takes the second
    ],
)
def test_choose_by_age_and_by_space(age_cut: float | None, need: int, names: list[str]) -> None:
    rows = [
        cand("a", size=100, confirmed=NOW - 9000),
        cand("b", size=200, confirmed=NOW - 5000),
        cand("c", size=300, confirmed=NOW - 100),
    ]
    assert [c.name for c in rules.choose(rows, age_cut, need, 10)] == names


def test_choose_stops_at_max_deletes() -> None:
    rows = [cand(f"f{i}", confirmed=NOW - 9000 + i) for i in range(5)]
    assert [c.name for c in rules.choose(rows, NOW, 0, 3)] == ["f0", "f1", "f2"]
    assert rules.choose(rows, NOW, 10**9, 0) == []


def test_by_dir_keeps_the_order_of_directories_and_files() -> None:
    rows = [cand("a", dir=2), cand("b", dir=1), cand("c", dir=2), cand("d", dir=3)]
    groups = rules.by_dir(rows)
    assert list(groups) == [2, 1, 3]
    assert [c.name for c in groups[2]] == ["a", "c"]


@pytest.mark.parametrize(
    ("need", "age_cut", "names"),
    [
        (10, None, ["old", "young"]),  # still short: all of the directory's chosen
        (10, NOW - 4000, ["old", "young"]),
        (0, NOW - 4000, ["old"]),  # enough free now: only those due by age
        (0, None, None),  # enough free and no age rule: stop
    ],
)
def test_still_due(need: int, age_cut: float | None, names: list[str] | None) -> None:
    cands = [cand("old", confirmed=NOW - 5000), cand("young", confirmed=NOW - 100)]
    got = rules.still_due(cands, need, age_cut)
    assert (None if got is None else [c.name for c in got]) == names


# -- the first look, from the store -----------------------------------------------------------
def test_first_look_against_its_statement() -> None:
    """Dropped if in work, confirmed with other stats (or no longer), or excluded; else deferred
    while younger than settle; else checked."""
    c_old, c_fresh = cand(mtime_ns=OLD_NS), cand(mtime_ns=FRESH_NS)
    for c, done_kind, in_work, excluded in itertools.product(
        (c_old, c_fresh), ("same", "other", "none"), (False, True), (False, True)
    ):
        done = {"same": (c.size, c.mtime_ns), "other": (c.size + 1, c.mtime_ns), "none": None}
        got = rules.first_look(c, done[done_kind], in_work, excluded, NOW, SETTLE)
        if in_work or excluded or done_kind != "same":
            assert got == "drop", (c, done_kind, in_work, excluded)
        elif c is c_fresh:
            assert got == "defer"
        else:
            assert got == "check"


def test_settled_at() -> None:
    c = cand(mtime_ns=FRESH_NS)
    assert rules.settled_at(c, SETTLE) == pytest.approx(NOW - 1 + SETTLE)
    assert rules.first_look(c, (c.size, c.mtime_ns), False, False, NOW + 28.5, SETTLE) == "defer"
    assert rules.first_look(c, (c.size, c.mtime_ns), False, False, NOW + 29.0, SETTLE) == "check"


# -- the destination's copy -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("copy", "problem"),
    [
        (None, "its copy is missing at the destination"),
        (Copy(100, OLD_NS), None),
        (Copy(100, None), None),  # Globus cannot tell the mtime exactly: the size vouches
        (Copy(99, OLD_NS), "its copy at the destination has 99 bytes, not 100"),
        (Copy(99, None), "its copy at the destination has 99 bytes, not 100"),
        (Copy(100, OLD_NS + 1), "its copy at the destination has another modification time"),
    ],
)
def test_copy_problem(copy: Copy | None, problem: str | None) -> None:
    assert rules.copy_problem(copy, cand()) == problem


# -- the source, looked at right before the unlink, and after a crash -------------------------
FIELDS = ("st_size", "st_mtime_ns", "st_ino", "st_ctime_ns")


@pytest.mark.parametrize("changed", [(), *((f,) for f in FIELDS), ("st_ino", "st_ctime_ns")])
@pytest.mark.parametrize(
    "mode", [stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777, stat.S_IFDIR | 0o755, stat.S_IFIFO]
)
def test_same_and_deletable(changed: tuple[str, ...], mode: int) -> None:
    c = cand()
    st = St(st_mode=mode, **{f: getattr(St(), f) + 1 for f in changed})
    assert rules.same(st, c) == (not changed)
    assert rules.deletable(st, c) == (not changed and stat.S_ISREG(mode))


@pytest.mark.parametrize(
    ("st", "found"),
    [
        (None, "deleted"),  # gone: the journaled unlink happened
        (St(), "kept"),  # the very file: not deleted
        (St(st_size=5), "changed"),  # the same inode rewritten: sent again
        (St(st_ctime_ns=6), "changed"),  # the same inode number, a new ctime
        (St(st_ino=8), "deleted"),  # another file in its place: the journaled one went
        (St(st_ino=8, st_size=5), "deleted"),
    ],
)
def test_recovered(st: St | None, found: str) -> None:
    assert rules.recovered(st, cand()) == found


@pytest.mark.parametrize("attempts", [0, 1, 2, 3, 8, 20])
def test_retry_at_waits_a_minute_at_least(attempts: int) -> None:
    when = rules.retry_at(cand(attempts=attempts), NOW)
    assert when == NOW + max(backoff(attempts + 1), 60.0)
    assert when >= NOW + 60.0


# -- directories ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rel", "excluded"),
    [
        ("", False),  # the root is never excluded
        ("a", False),
        ("a/b", False),
        ("tmp", True),
        ("a/tmp", True),  # by its own name
        ("tmp/a/b", True),  # below an excluded directory
        ("a/keep/b", True),  # by a path pattern
        ("keep", False),  # the path pattern matches only a/keep
    ],
)
def test_excluded_dir(rel: str, excluded: bool) -> None:
    def is_excluded(name: str, path: str) -> bool:
        return name == "tmp" or path == "a/keep"

    assert rules.excluded_dir(rel, is_excluded) == excluded


@pytest.mark.parametrize(
    ("dir_id", "marked", "below"),
    [
        (4, set(), False),
        (4, {4}, True),  # itself
        (4, {2}, True),  # its parent
        (4, {1}, True),  # the root
        (4, {3}, False),  # a sibling
        (3, {2}, False),
        (9, {9}, False),  # not in the tree: not reached
    ],
)
def test_below_any(dir_id: int, marked: set[int], below: bool) -> None:
    rows = {1: Row(0), 2: Row(1), 3: Row(1), 4: Row(2)}  # 1 is the root; 4 is in 2
    assert rules.below_any(dir_id, marked, rows) == below


@pytest.mark.parametrize(
    ("age", "removable"), [(0.0, False), (29.9, False), (30.0, True), (1e6, True)]
)
def test_may_remove(age: float, removable: bool) -> None:
    assert rules.may_remove(NOW, NOW - age, SETTLE) == removable

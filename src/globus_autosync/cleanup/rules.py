"""Cleanup's decisions as pure functions over records: what is due, in what order, whether a
file is still the one confirmed, whether its copy counts as verified. The deleter does the I/O.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Literal, Protocol

from globus_autosync.config import FreeSpace
from globus_autosync.model.plan import backoff
from globus_autosync.store import Candidate
from globus_autosync.transports.base import Copy

FIRST_TRY_MIN = 60.0  # seconds at least before a failed deletion is tried again

Look = Literal["drop", "defer", "check"]
Found = Literal["kept", "changed", "deleted"]


class Stat(Protocol):
    """What an ``lstat`` tells (``os.stat_result`` is one)."""

    @property
    def st_mode(self) -> int: ...
    @property
    def st_ino(self) -> int: ...
    @property
    def st_size(self) -> int: ...
    @property
    def st_mtime_ns(self) -> int: ...
    @property
    def st_ctime_ns(self) -> int: ...


class Parented(Protocol):
    """A directory of the tree: its parent's id."""

    @property
    def parent(self) -> int: ...


def shortfall(keep_free: FreeSpace | None, free: int, total: int) -> int:
    """Bytes short of ``keep_free`` on a file system with ``free`` of ``total`` bytes (0: none)."""
    if keep_free is None:
        return 0
    return max(0, keep_free.bytes_of(total) - free)


def due_before(now: float, delete_after: float | None, need: int) -> float | None:
    """Candidates confirmed before this time may be due: all when space is short, else those
    older than ``delete_after``; None: nothing is due."""
    if need > 0:
        return now
    return now - delete_after if delete_after is not None else None


def choose(
    rows: Iterable[Candidate], age_cut: float | None, need: int, cap: int
) -> list[Candidate]:
    """The candidates to delete, from ``rows`` in the order of their confirmation (oldest
    first): those older than ``age_cut``, and more while the bytes chosen fall short of
    ``need``; at most ``cap`` of them (``max_deletes``)."""
    chosen: list[Candidate] = []
    planned = 0
    for c in rows:
        if len(chosen) >= cap:
            break
        if (age_cut is not None and c.confirmed < age_cut) or planned < need:
            chosen.append(c)
            planned += c.size
        else:
            break
    return chosen


def by_dir(cands: Iterable[Candidate]) -> dict[int, list[Candidate]]:
    """Candidates grouped by directory, each group and directory in their first order."""
    groups: dict[int, list[Candidate]] = {}
    for c in cands:
        groups.setdefault(c.dir, []).append(c)
    return groups


def still_due(cands: list[Candidate], need: int, age_cut: float | None) -> list[Candidate] | None:
    """A directory's chosen candidates once the free space is looked at again before it (only
    when space was short): all while still short, else only those due by age; None: nothing
    more is due in any directory (enough is free and no age rule)."""
    if need > 0:
        return cands
    if age_cut is None:
        return None
    return [c for c in cands if c.confirmed < age_cut]


def first_look(
    c: Candidate,
    done: tuple[int, int] | None,
    in_work: bool,
    excluded: bool,
    now: float,
    settle: float,
) -> Look:
    """What the store says of a candidate before the source is looked at: ``drop`` it (in work
    again, confirmed with other stats, or excluded now), ``defer`` it (modified less than
    ``settle`` ago), or ``check`` its copy and source."""
    if in_work or done != (c.size, c.mtime_ns) or excluded:
        return "drop"
    if now - c.mtime_ns / 1e9 < settle:
        return "defer"
    return "check"


def settled_at(c: Candidate, settle: float) -> float:
    """When a deferred candidate has settled."""
    return c.mtime_ns / 1e9 + settle


def copy_problem(copy: Copy | None, c: Candidate) -> str | None:
    """Why the destination's copy does not count as verified; None: it does."""
    if copy is None:
        return "its copy is missing at the destination"
    if copy.size != c.size:
        return f"its copy at the destination has {copy.size} bytes, not {c.size}"
    if copy.mtime_ns is not None and copy.mtime_ns != c.mtime_ns:
        return "its copy at the destination has another modification time"
    return None


def same(st: Stat, c: Candidate) -> bool:
    """The file at the source is the one that was confirmed: the same size and mtime, and the
    same inode with the same ctime (a reused inode number has a new ctime)."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) == (
        c.size,
        c.mtime_ns,
        c.ino,
        c.ctime_ns,
    )


def deletable(st: Stat, c: Candidate) -> bool:
    """An ``lstat`` right before the unlink allows it: the confirmed file, a regular one."""
    return same(st, c) and stat.S_ISREG(st.st_mode)


def recovered(st: Stat | None, c: Candidate) -> Found:
    """What became of a deletion a killed run journaled, from an ``lstat`` now (None: no file):
    ``kept`` (not deleted), ``changed`` (its inode rewritten, or reused: sent, never deleted),
    or ``deleted`` (gone, or another file in its place)."""
    if st is not None and same(st, c):
        return "kept"
    if st is not None and st.st_ino == c.ino:
        return "changed"
    return "deleted"


def retry_at(c: Candidate, now: float) -> float:
    """When a failed deletion is tried again."""
    return now + max(backoff(c.attempts + 1), FIRST_TRY_MIN)


def excluded_dir(rel: str, excluded: Callable[[str, str], bool]) -> bool:
    """A directory (relative to the root) is excluded, or lies below an excluded one."""
    if not rel:
        return False
    parts = rel.split("/")
    return any(excluded(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts))


def below_any(dir_id: int, marked: Container[int], rows: Mapping[int, Parented]) -> bool:
    """``dir_id`` or one of its ancestors is ``marked`` (e.g. could not be listed)."""
    while dir_id in rows:
        if dir_id in marked:
            return True
        dir_id = rows[dir_id].parent
    return False


def may_remove(now: float, dir_mtime: float, settle: float) -> bool:
    """An emptied directory may be removed: it was last modified ``settle`` ago or more."""
    return now - dir_mtime >= settle

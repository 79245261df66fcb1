"""Property: incremental and full cycles agree on a write-once tree; a full cycle misses nothing.

Random trees and random sequences of operations (create a file, append, rewrite in place, rename,
delete, make a directory) are played on a real source tree, with the clock moving: every write
gets a fresh, strictly increasing mtime set with ``os.utime`` (so a version of a file is known by
its size and mtime, as the engine assumes), and every directory an operation touches gets the next
tick of a simulated clock in the past. A past mtime is never "racy" (within 2 s of now), so the
incremental walk really relies on directory mtimes and does not relist everything; some operations
date them now, to the second, as a filesystem with coarse timestamps does: two changes in one
second then leave a directory's mtime unchanged, and only the racy rule (a directory listed
within 2 s of its mtime is listed again) keeps the incremental walk right.

The same properties hold when every directory whose names changed is listed as a large one is
(in chunks of names, of about 4 here, only the names of chunks not vouched for looked up, new names
and work in progress looked at: ``listwork.QUICK_FROM = 0``), and on a tree with one large flat
directory (a few thousand files recorded by ``baseline``) that operations keep adding to,
deleting from and renaming in.

After each step, ``run`` (incremental) works in one state directory and ``run --full`` in another,
each with a destination of its own; the engine is called in-process (``step.run_job``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from globus_autosync import config as config_mod
from globus_autosync.config import Config, Job
from globus_autosync.engine.baseline import baseline_job
from globus_autosync.engine.step import run_job
from globus_autosync.engine.summary import Summary
from globus_autosync.monitoring.status import job_status
from globus_autosync.sources.base import join
from globus_autosync.sources.local import chunks, listwork
from globus_autosync.store import Store

# AUTOSYNC_PROPERTY_EXAMPLES=2000 for a longer search than CI's
SETTINGS = settings(
    max_examples=int(os.environ.get("AUTOSYNC_PROPERTY_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NS = 1_000_000_000

# ---------------------------------------------------------------------------------------------
# operations: plain tuples, resolved against the tree as it is when they run (indices wrap)

Op = tuple[Any, ...]

_index = st.integers(min_value=0, max_value=1_000)
_size = st.integers(min_value=0, max_value=40)
# How the directories an operation touched are dated: the next tick of a clock in the past
# (never racy), the present second (a filesystem with 1 s timestamps: two changes in one second
# leave the same mtime, which only the racy rule catches), or whatever the kernel wrote (now).
PAST, COARSE, KERNEL = "past", "coarse", "kernel"
_dir_time = st.sampled_from([PAST, PAST, COARSE, KERNEL])

create_file = st.tuples(st.just("create"), _index, _size, st.booleans(), _dir_time)
create_dir = st.tuples(st.just("mkdir"), _index, _dir_time)
rename_file = st.tuples(st.just("rename"), _index, _index, _dir_time)
rename_dir = st.tuples(st.just("rename_dir"), _index, _index, _dir_time)
delete_file = st.tuples(st.just("delete"), _index, _dir_time)
append_file = st.tuples(st.just("append"), _index, st.integers(min_value=1, max_value=20))
rewrite_file = st.tuples(st.just("rewrite"), _index, _size)
recreate_file = st.tuples(st.just("recreate"), _index, _size, _dir_time)
copy_dir = st.tuples(st.just("copy_dir"), _index, _index, _dir_time)  # cp -a: old mtimes
remove_dir = st.tuples(st.just("rmtree"), _index, _dir_time)

# in the large flat directory (``Tree.flat``): new files, deletions, renames to new names
flat_create = st.tuples(st.just("flat_create"), st.integers(1, 5), st.booleans(), _dir_time)
flat_delete = st.tuples(st.just("flat_delete"), _index, _dir_time)
flat_rename = st.tuples(st.just("flat_rename"), _index, _dir_time)

WRITE_ONCE_OPS = st.one_of(
    create_file, create_dir, rename_file, rename_dir, delete_file, copy_dir, remove_dir
)
ANY_OPS = st.one_of(
    create_file,
    create_dir,
    rename_file,
    rename_dir,
    delete_file,
    copy_dir,
    remove_dir,
    append_file,
    rewrite_file,
    recreate_file,
)


FLAT_OPS = st.one_of(flat_create, flat_create, flat_delete, flat_rename, WRITE_ONCE_OPS)
FLAT_FILES = 2_000  # the large flat directory: above FLAT_QUICK_FROM, so it is listed by name
FLAT_QUICK_FROM = 1_000


def initial_tree() -> st.SearchStrategy[list[Op]]:
    """A random starting tree: directories and files, made before the first cycle."""
    return st.lists(st.one_of(create_file, create_dir), min_size=3, max_size=20)


def steps(ops: st.SearchStrategy[Op]) -> st.SearchStrategy[list[list[Op]]]:
    """Steps of one to three operations; both cycles run after each step."""
    return st.lists(st.lists(ops, min_size=1, max_size=3), min_size=2, max_size=10)


# ---------------------------------------------------------------------------------------------
# the source tree and its clock


@dataclass
class Tree:
    """A source tree that an operation changes the way a program would, then dates."""

    root: Path
    clock: int = field(default_factory=lambda: (int(time.time()) - 30 * 86400) * NS + 123_456_789)
    old_clock: int = field(default_factory=lambda: (int(time.time()) - 3 * 365 * 86400) * NS)
    serial: int = 0
    deleted: dict[str, list[str]] = field(default_factory=dict)  # dir -> names once used there
    flat: str | None = None  # the large flat directory, if any

    def tick(self) -> int:
        """The next moment of the simulated clock: strictly increasing, always in the past."""
        self.clock += 1_000_000_007
        return self.clock

    def new_name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def dirs(self) -> list[str]:
        out = [""]
        for path, subdirs, _ in os.walk(self.root):
            rel = os.path.relpath(path, self.root)
            out.extend(join("" if rel == "." else rel, d) for d in subdirs)
        return sorted(out)

    def files(self) -> list[str]:
        out: list[str] = []
        for path, _, names in os.walk(self.root):
            rel = os.path.relpath(path, self.root)
            out.extend(join("" if rel == "." else rel, n) for n in names)
        return sorted(out)

    def path(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def touched(self, rel_dirs: list[str], how: str) -> None:
        """Date the directories an operation changed (see ``_dir_time``)."""
        if how == KERNEL:
            return
        for rel in rel_dirs:
            t = self.tick() if how == PAST else time.time_ns() // NS * NS
            os.utime(self.path(rel), ns=(t, t))

    def write(self, rel: str, size: int, mode: str, old: bool = False) -> None:
        """Write a new version of a file: unique content, a unique mtime."""
        self.serial += 1
        content = (f"<{rel}#{self.serial}>" * (size // 4 + 1)).encode()[:size]
        with open(self.path(rel), mode) as fh:
            if mode == "r+b":
                fh.truncate(0)
            fh.write(content)
        if old:  # copied in with an old mtime (cp -p): new whatever its mtime
            self.old_clock += 1_000_003
            t = self.old_clock
        else:
            t = self.tick()
        os.utime(self.path(rel), ns=(t, t))

    def make_flat(self, rel: str, count: int) -> None:
        """A flat directory of ``count`` empty files, written long ago."""
        self.path(rel).mkdir()
        self.flat = rel
        for i in range(count):
            path = self.path(join(rel, f"frame_{i:06d}.tif"))
            path.touch()
            t = self.clock - (count - i) * 1_000_003
            os.utime(path, ns=(t, t))
        self.touched([rel], PAST)

    def apply_flat(self, op: Op) -> None:
        kind, flat = op[0], self.flat
        assert flat is not None
        if not self.path(flat).is_dir():
            return  # removed or renamed by an operation of the tree
        names = sorted(os.listdir(self.path(flat)))
        if kind == "flat_create":
            _, count, old, kt = op
            for _ in range(count):
                self.write(join(flat, self.new_name("frame_n") + ".tif"), 8, "xb", old)
            self.touched([flat], kt)
        elif kind == "flat_delete" and names:
            _, i, kt = op
            os.unlink(self.path(join(flat, names[i * 7 % len(names)])))
            self.touched([flat], kt)
        elif kind == "flat_rename" and names:
            _, i, kt = op
            src = join(flat, names[i * 11 % len(names)])
            if self.path(src).is_file():
                os.rename(self.path(src), self.path(join(flat, self.new_name("frame_r") + ".tif")))
                self.touched([flat], kt)

    def apply(self, op: Op, write_once: bool) -> None:
        kind = op[0]
        if kind.startswith("flat_"):
            self.apply_flat(op)
            return
        dirs, files = self.dirs(), self.files()
        if kind == "create":
            _, i, size, old, kt = op
            parent = dirs[i % len(dirs)]
            rel = join(parent, self.new_name("f") + ".dat")
            self.write(rel, size, "xb", old)
            self.touched([parent], kt)
        elif kind == "mkdir":
            _, i, kt = op
            parent = dirs[i % len(dirs)]
            rel = join(parent, self.new_name("d"))
            self.path(rel).mkdir()
            self.touched([rel, parent], kt)
        elif kind == "rename" and files:
            _, i, j, kt = op
            src = files[i % len(files)]
            target_dir = dirs[j % len(dirs)]
            old_parent = os.path.dirname(src)
            if write_once or j % 3:
                dst = join(target_dir, self.new_name("f") + ".dat")
            else:  # over an existing file, or back to a name once used
                candidates = [f for f in files if f != src]
                dst = candidates[j % len(candidates)] if candidates else join(target_dir, "x.dat")
                target_dir = os.path.dirname(dst)
            os.rename(self.path(src), self.path(dst))
            self.deleted.setdefault(old_parent, []).append(os.path.basename(src))
            self.touched(sorted({old_parent, target_dir}), kt)
        elif kind == "rename_dir" and len(dirs) > 1:
            _, i, j, kt = op
            src = dirs[1:][i % (len(dirs) - 1)]
            targets = [d for d in dirs if d != src and not d.startswith(src + "/")]
            target_dir = targets[j % len(targets)]
            old_parent = os.path.dirname(src)
            dst = join(target_dir, self.new_name("d"))
            os.rename(self.path(src), self.path(dst))
            self.touched(sorted({old_parent, target_dir}), kt)
        elif kind == "copy_dir" and len(dirs) > 1:
            _, i, j, kt = op
            src = dirs[1:][i % (len(dirs) - 1)]
            targets = [d for d in dirs if d != src and not d.startswith(src + "/")]
            target_dir = targets[j % len(targets)]
            dst = join(target_dir, self.new_name("d"))
            # copies files and directories with their mtimes (shutil.copystat), like cp -a
            shutil.copytree(self.path(src), self.path(dst), copy_function=shutil.copy2)
            self.touched([target_dir], kt)
        elif kind == "rmtree" and len(dirs) > 1:
            _, i, kt = op
            rel = dirs[1:][i % (len(dirs) - 1)]
            shutil.rmtree(self.path(rel))
            self.touched([os.path.dirname(rel)], kt)
        elif kind == "delete" and files:
            _, i, kt = op
            rel = files[i % len(files)]
            os.unlink(self.path(rel))
            parent = os.path.dirname(rel)
            self.deleted.setdefault(parent, []).append(os.path.basename(rel))
            self.touched([parent], kt)
        elif kind == "append" and files:
            _, i, n = op
            self.write(files[i % len(files)], n, "ab")
        elif kind == "rewrite" and files:
            _, i, size = op
            self.write(files[i % len(files)], size, "r+b")  # same inode, new content
        elif kind == "recreate":
            _, i, size, kt = op
            gone = [
                join(d, n)
                for d, names in sorted(self.deleted.items())
                for n in names
                if self.path(d).is_dir() and not self.path(join(d, n)).exists()
            ]
            if gone:
                rel = gone[i % len(gone)]
                self.write(rel, size, "xb")
                self.touched([os.path.dirname(rel)], kt)


# ---------------------------------------------------------------------------------------------
# what a user would check: bytes at the destination, what the store holds as confirmed


def snapshot(root: Path) -> tuple[dict[str, tuple[bytes, int]], set[str]]:
    """{relpath: (bytes, mtime_ns)} of the files, and the set of directories, under root."""
    files: dict[str, tuple[bytes, int]] = {}
    dirs: set[str] = set()
    for path, subdirs, names in os.walk(root):
        rel = os.path.relpath(path, root)
        rel = "" if rel == "." else rel
        dirs.update(join(rel, d) for d in subdirs)
        for name in names:
            p = Path(path) / name
            files[join(rel, name)] = (p.read_bytes(), p.stat().st_mtime_ns)
    return files, dirs


def stats_of(root: Path) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for path, _, names in os.walk(root):
        rel = os.path.relpath(path, root)
        for name in names:
            st = (Path(path) / name).stat()
            out[join("" if rel == "." else rel, name)] = (st.st_size, st.st_mtime_ns)
    return out


@dataclass
class StoreView:
    confirmed: dict[str, tuple[int, int]]  # relpath -> (size, mtime_ns) confirmed
    pending: dict[str, str]  # relpath -> state of the work in progress
    status: dict[str, Any]


def store_view(state_dir: Path, job: Job) -> StoreView:
    store = Store.open_readonly(state_dir)
    assert store is not None
    try:
        job_id = store.jobs.find(job.name)
        assert job_id is not None
        rel: dict[int, str] = {}
        confirmed: dict[str, tuple[int, int]] = {}
        pending: dict[str, str] = {}
        for row in store.dirs.rows(job_id):
            rel[row.id] = join(rel[row.parent], row.name) if row.parent else ""
            done, work = store.dirs.state(row.id)
            for name, stats in done.items():
                confirmed[join(rel[row.id], name)] = stats
            for name, p in work.items():
                pending[join(rel[row.id], name)] = p.state
        status = job_status(store, job)
    finally:
        store.close()
    for key in ("last_run", "last_summary", "lag_seconds"):
        status.pop(key, None)
    return StoreView(confirmed, pending, status)


# ---------------------------------------------------------------------------------------------


@dataclass
class World:
    tree: Tree
    config: Config
    inc: Job
    full: Job
    inc_state: Path
    full_state: Path

    def cycle(self, job: Job, full: bool) -> Summary:
        state = self.full_state if job is self.full else self.inc_state
        return run_job(job, self.config, state, full=full)


@contextmanager
def world() -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="autosync-prop-") as tmp:
        base = Path(tmp)
        for name in ("source", "dest-inc", "dest-full"):
            (base / name).mkdir()
        common = {"source": str(base / "source"), "settle": "0s", "full_scan_every": "3650d"}
        cfg = config_mod.parse(
            base / "config.toml",
            {
                "job": [
                    {"name": "inc", "destination": str(base / "dest-inc"), **common},
                    {"name": "full", "destination": str(base / "dest-full"), **common},
                ]
            },
        )
        inc, full = cfg.jobs
        yield World(Tree(base / "source"), cfg, inc, full, base / "state-inc", base / "state-full")


def unsent(view_before: StoreView | None, source: dict[str, tuple[int, int]]) -> int:
    """Files of the source whose present version is not confirmed yet: what a cycle must send."""
    confirmed = view_before.confirmed if view_before else {}
    return sum(1 for rel, stats in source.items() if confirmed.get(rel) != stats)


def check_matches_source(w: World, job: Job, where: str) -> StoreView:
    """Every file of the source is at the job's destination, same bytes and mtime, confirmed;
    every directory of the source is there too (an empty one included)."""
    src, src_dirs = snapshot(w.tree.root)
    dst, dst_dirs = snapshot(Path(job.destination))
    assert src_dirs <= dst_dirs, f"{where}: {job.name}: missing dirs {src_dirs - dst_dirs}"
    state = w.full_state if job is w.full else w.inc_state
    view = store_view(state, job)
    for rel, (data, mtime) in src.items():
        assert rel in dst, f"{where}: {job.name}: {rel} missing at the destination"
        assert dst[rel] == (data, mtime), f"{where}: {job.name}: {rel} differs at the destination"
        assert view.confirmed.get(rel) == (len(data), mtime), (
            f"{where}: {job.name}: {rel} confirmed as {view.confirmed.get(rel)}, "
            f"source has {(len(data), mtime)}"
        )
    assert not view.pending, f"{where}: {job.name}: work left in the store: {view.pending}"
    return view


def run_both(w: World, where: str, views: dict[str, StoreView | None]) -> tuple[Summary, Summary]:
    """One incremental cycle and one full cycle; each sends exactly what is not yet confirmed."""
    source = stats_of(w.tree.root)
    s_inc = w.cycle(w.inc, full=False)
    s_full = w.cycle(w.full, full=True)
    assert s_full.full
    if not s_inc.full:
        event(
            "incremental listed fewer files"
            if s_inc.scanned < s_full.scanned
            else "incremental listed as many files"
        )
    assert s_inc.exit_code == 0 and s_full.exit_code == 0, (s_inc.line(), s_full.line())
    expected = unsent(views["full"], source)
    assert s_full.sent_files == expected, f"{where}: full sent {s_full.sent_files}, not {expected}"
    views["inc"] = store_view(w.inc_state, w.inc)
    views["full"] = store_view(w.full_state, w.full)
    return s_inc, s_full


def play_write_once(w: World, start: list[Op], sequence: list[list[Op]]) -> None:
    for op in start:
        w.tree.apply(op, write_once=True)
    views: dict[str, StoreView | None] = {"inc": None, "full": None}
    if w.tree.flat is not None:
        views = {"inc": store_view(w.inc_state, w.inc), "full": store_view(w.full_state, w.full)}
    for n, step in enumerate([[], *sequence]):
        for op in step:
            w.tree.apply(op, write_once=True)
        where = f"after step {n} {step}"
        before_inc = views["inc"]
        source = stats_of(w.tree.root)
        s_inc, _ = run_both(w, where, views)
        expected = unsent(before_inc, source)
        assert s_inc.sent_files == expected, (
            f"{where}: incremental sent {s_inc.sent_files}, not {expected}"
        )
        check_matches_source(w, w.inc, where)
        check_matches_source(w, w.full, where)
        inc, full = views["inc"], views["full"]
        assert inc is not None and full is not None
        assert inc.confirmed == full.confirmed, f"{where}: the stores differ"
        assert {k: v for k, v in inc.status.items() if k != "job"} == {
            k: v for k, v in full.status.items() if k != "job"
        }, f"{where}: status differs"
        assert snapshot(Path(w.inc.destination)) == snapshot(Path(w.full.destination)), (
            f"{where}: the destinations differ"
        )


@SETTINGS
@given(start=initial_tree(), sequence=steps(WRITE_ONCE_OPS))
def test_write_once_incremental_equals_full(start: list[Op], sequence: list[list[Op]]) -> None:
    """Creates, renames to new names, deletes, new directories: both modes reach the same store,
    the same destination, send each file version exactly once, and miss nothing."""
    with world() as w:
        play_write_once(w, start, sequence)


def short_chunks() -> Any:
    """Chunks of names of about 4 (``chunks``): many of them, even in a small directory."""
    return mock.patch.object(chunks, "MASK", 3)


@SETTINGS
@given(start=initial_tree(), sequence=steps(WRITE_ONCE_OPS))
def test_write_once_incremental_equals_full_listing_by_name(
    start: list[Op], sequence: list[list[Op]]
) -> None:
    """The same, with every directory whose mtime moved listed by name only: new names and work
    in progress are looked at, the confirmed ones only counted."""
    with world() as w, mock.patch.object(listwork, "QUICK_FROM", 0), short_chunks():
        play_write_once(w, start, sequence)


@settings(SETTINGS, max_examples=max(4, SETTINGS.max_examples // 12))
@given(start=initial_tree(), sequence=steps(FLAT_OPS))
def test_write_once_incremental_equals_full_in_a_large_flat_directory(
    start: list[Op], sequence: list[list[Op]]
) -> None:
    """A directory of a few thousand files (recorded by ``baseline``, already at both
    destinations) gains, loses and renames files among other operations on the tree: the
    incremental walk lists it by name and agrees with the full walk."""
    with world() as w, mock.patch.object(listwork, "QUICK_FROM", FLAT_QUICK_FROM), short_chunks():
        w.tree.make_flat("flat", FLAT_FILES)
        for job, state in ((w.inc, w.inc_state), (w.full, w.full_state)):
            shutil.copytree(w.tree.root / "flat", Path(job.destination) / "flat")
            baseline_job(job, state, None)
        play_write_once(w, start, sequence)


@SETTINGS
@given(start=initial_tree(), sequence=steps(ANY_OPS))
def test_full_cycle_catches_every_change(start: list[Op], sequence: list[list[Op]]) -> None:
    """With appends and rewrites in place too: after every step the full cycle's destination and
    store match the source exactly; an incremental cycle may miss a rewrite in place, but one
    ``run --full`` brings it level, and neither ever confirms a version that was not sent."""
    with world() as w:
        play_any(w, start, sequence)


@settings(SETTINGS, max_examples=max(5, SETTINGS.max_examples // 2))
@given(start=initial_tree(), sequence=steps(ANY_OPS))
def test_full_cycle_catches_every_change_comparing_by_index(
    start: list[Op], sequence: list[list[Op]]
) -> None:
    """The same, with every directory handled as a large one: full walks compare each entry with
    the confirmed listing held as arrays, incremental ones list by name."""
    with world() as w, mock.patch.object(listwork, "QUICK_FROM", 0), short_chunks():
        play_any(w, start, sequence)


def play_any(w: World, start: list[Op], sequence: list[list[Op]]) -> None:
    """Any operations; after each step both cycles, then a final run --full of the incremental."""
    for op in start:
        w.tree.apply(op, write_once=False)
    views: dict[str, StoreView | None] = {"inc": None, "full": None}
    for n, step in enumerate([[], *sequence]):
        for op in step:
            w.tree.apply(op, write_once=False)
        where = f"after step {n} {step}"
        run_both(w, where, views)
        check_matches_source(w, w.full, where)
        # whatever the incremental store confirms is at its destination, byte for byte
        inc = views["inc"]
        assert inc is not None
        dst, _ = snapshot(Path(w.inc.destination))
        for rel, (size, mtime) in inc.confirmed.items():
            assert rel in dst and (len(dst[rel][0]), dst[rel][1]) == (size, mtime), (
                f"{where}: incremental confirmed {rel} as {(size, mtime)}, destination has "
                f"{(len(dst[rel][0]), dst[rel][1]) if rel in dst else None}"
            )
    summary = w.cycle(w.inc, full=True)
    assert summary.full and summary.exit_code == 0, summary.line()
    inc_view = check_matches_source(w, w.inc, "after the final run --full")
    full_view = check_matches_source(w, w.full, "after the final run --full")
    present = stats_of(w.tree.root)
    assert {r: inc_view.confirmed[r] for r in present} == {
        r: full_view.confirmed[r] for r in present
    }

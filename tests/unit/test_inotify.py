"""Change notices (inotify) in a cycle: what they show arrives, and what they lose is listed.

Each test runs cycles in this process with one ``DirWatch``, as ``watch`` does. Directories are
dated in the past, so no listing is racy; a test that wants to show the notices at work puts a
directory's mtime back after changing it: then only a notice can tell the cycle what changed.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from globus_autosync import config as config_mod
from globus_autosync.config import Job
from globus_autosync.engine.cycle import Cycle
from globus_autosync.engine.summary import Summary
from globus_autosync.sources.context import CycleContext
from globus_autosync.sources.local import inotify as notify
from globus_autosync.sources.local import listwork
from globus_autosync.sources.local.inotify import DirWatch
from globus_autosync.store import Store
from globus_autosync.transports.local.transport import LocalTransport

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify: Linux")

NS = 1_000_000_000
PAST = (int(time.time()) - 86400) * NS


class World:
    def __init__(self, tmp: Path) -> None:
        self.src, self.dst = tmp / "source", tmp / "dest"
        self.src.mkdir()
        self.dst.mkdir()
        cfg = config_mod.parse(
            tmp / "config.toml",
            {"job": [{"name": "job", "source": str(self.src), "destination": str(self.dst),
                      "settle": "0s", "full_scan_every": "3650d"}]},
        )  # fmt: skip
        self.cfg = cfg
        self.job: Job = cfg.jobs[0]
        self.store = Store.open(tmp / "state")
        self.notices = DirWatch("job")
        self.tick = PAST

    def cycle(self, notices: bool = True) -> Summary:
        ctx = CycleContext.start(self.job, self.cfg, self.store, LocalTransport(self.job))
        cycle = Cycle(ctx, notices=self.notices if notices else None)
        summary = cycle.run(full=False)
        assert summary.exit_code == 0, summary.line()
        return summary

    def write(self, rel: str, data: bytes, keep_dir_mtime: bool = False) -> None:
        path = self.src / rel
        parent = path.parent
        before = parent.stat().st_mtime_ns
        path.write_bytes(data)
        t = PAST + len(data)
        os.utime(path, ns=(t, t))
        self.tick += NS  # a new mtime in the past for the directory: never racy
        os.utime(parent, ns=(before, before) if keep_dir_mtime else (self.tick, self.tick))

    def arrived(self) -> dict[str, bytes]:
        out = {}
        for path, _, names in os.walk(self.dst):
            for name in names:
                p = Path(path, name)
                out[str(p.relative_to(self.dst))] = p.read_bytes()
        return out

    def close(self) -> None:
        self.notices.close()
        self.store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    (w.src / "day").mkdir()
    for path in (w.src / "day", w.src):
        os.utime(path, ns=(PAST, PAST))
    yield w
    w.close()


def test_a_file_only_a_notice_shows_arrives_and_the_directory_is_not_listed(world: World) -> None:
    world.write("day/a.tif", b"a")
    world.cycle()  # listed (new); the watches are in place from now on
    world.cycle()  # listed once more (a.tif was confirmed): the store is level with the tree
    world.write("day/b.tif", b"bb", keep_dir_mtime=True)  # the mtime says nothing changed
    assert world.cycle(notices=False).changed == 0  # as `run` sees it: nothing
    summary = world.cycle()
    assert summary.changed == 1
    assert world.arrived() == {"day/a.tif": b"a", "day/b.tif": b"bb"}
    # only the name noticed was looked at, not the directory's listing
    world.write("day/c.tif", b"ccc")
    for i in range(20):
        (world.src / "day" / f"old{i}.tif").touch()  # not noticed: the watch holds since
    world.notices.begin()  # ... these are read and dropped, as if noticed in a cycle before
    world.write("day/d.tif", b"dddd")
    summary = world.cycle()
    assert summary.scanned == 1 and summary.changed == 1
    assert "day/d.tif" in world.arrived() and "day/c.tif" not in world.arrived()


def test_an_overflow_falls_back_to_listing(world: World, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    world.write("day/a.tif", b"a")
    world.cycle()
    world.cycle()
    real_read = os.read
    overflow = struct.pack("iIII", -1, notify.IN_Q_OVERFLOW, 0, 0)

    def read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        return overflow + data if fd == world.notices.fd else data

    for i in range(5):
        world.write(f"day/f{i}.tif", b"x" * i)
    monkeypatch.setattr(os, "read", read)
    with caplog.at_level(logging.WARNING):
        summary = world.cycle()
    monkeypatch.undo()
    assert "change notices overflowed" in caplog.text
    assert summary.scanned == 6  # listed whole, not by notices
    assert set(world.arrived()) == {"day/a.tif", *(f"day/f{i}.tif" for i in range(5))}
    # the notices are trusted again in the cycle after
    world.write("day/g.tif", b"g", keep_dir_mtime=True)
    world.cycle()
    assert "day/g.tif" in world.arrived()


def test_too_many_notices_count_as_an_overflow(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.cycle()
    monkeypatch.setattr(notify, "MAX_EVENTS", 3)
    for i in range(10):
        world.write(f"day/f{i}.tif", b"y")
    summary = world.cycle()
    assert summary.changed == 10 and len(world.arrived()) == 10
    assert world.notices.overflow


def test_no_watch_to_be_had_is_said_once_and_files_arrive_by_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = World(tmp_path)
    try:
        for d in ("a", "b", "c"):
            (w.src / d).mkdir()

        def add(fd: int, path: bytes, mask: int) -> int:
            import ctypes

            ctypes.set_errno(errno.ENOSPC)
            return -1

        monkeypatch.setattr(w.notices.libc, "add", add)
        with caplog.at_level(logging.WARNING):
            w.write("a/1.tif", b"1")
            w.cycle()
            w.write("b/2.tif", b"2")
            w.write("c/3.tif", b"3")
            w.cycle()
        assert caplog.text.count("fs.inotify.max_user_watches") == 1
        assert set(w.arrived()) == {"a/1.tif", "b/2.tif", "c/3.tif"}
        assert not w.notices.by_dir
    finally:
        w.close()


def test_no_inotify_at_all_is_one_line_and_watch_lists(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise OSError("no libc here")

    monkeypatch.setattr(notify, "_Libc", broken)
    with caplog.at_level(logging.WARNING):
        assert DirWatch.open("job") is None
    assert "no change notices" in caplog.text


@pytest.mark.parametrize("quick_from", [listwork.QUICK_FROM, 0])
def test_a_directory_replaced_while_watched_loses_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, quick_from: int
) -> None:
    """Renamed away, and a new one made with the same name (listed by name when large: not the
    new one, whose names are not the old one's)."""
    monkeypatch.setattr(listwork, "QUICK_FROM", quick_from)
    world.write("day/a.tif", b"old a")
    world.write("day/b.tif", b"old b")
    world.cycle()
    world.cycle()  # the watches are trusted
    day = world.src / "day"
    os.rename(day, world.src / "day.old")
    day.mkdir()
    world.write("day/a.tif", b"new a, same name")
    world.write("day/c.tif", b"new c")
    os.utime(day, ns=(PAST + 9 * NS, PAST + 9 * NS))
    world.cycle()
    # the files written into the new directory right after its first listing, unseen by mtime
    world.write("day/d.tif", b"new d", keep_dir_mtime=True)
    world.cycle()
    world.write("day/e.tif", b"new e", keep_dir_mtime=True)
    world.cycle()
    assert world.arrived() == {
        "day/a.tif": b"new a, same name",
        "day/b.tif": b"old b",  # was sent before; the destination keeps what it has
        "day/c.tif": b"new c",
        "day/d.tif": b"new d",
        "day/e.tif": b"new e",
        "day.old/a.tif": b"old a",
        "day.old/b.tif": b"old b",
    }
    shutil.rmtree(world.src / "day.old")
    world.cycle()  # its watch is gone with it; nothing breaks


def test_a_directory_moved_with_its_parent_is_watched_at_its_new_path(world: World) -> None:
    (world.src / "day" / "run1").mkdir()
    world.write("day/run1/a.tif", b"a")
    world.cycle()
    world.cycle()
    os.rename(world.src / "day", world.src / "night")  # run1's watch follows its inode
    world.cycle()  # night/run1 is new to the store: listed, and its watch taken over
    world.cycle()
    world.write("night/run1/b.tif", b"b", keep_dir_mtime=True)  # only a notice tells
    world.cycle()
    assert world.arrived() == {"day/run1/a.tif": b"a", "night/run1/a.tif": b"a",
                               "night/run1/b.tif": b"b"}  # fmt: skip


def test_a_directory_changed_without_a_notice_that_explains_it_is_listed_whole(
    tmp_path: Path,
) -> None:
    """A change this kernel did not make (another machine's, on a share) moves the directory's
    ctime but sends no notice naming it: the notices no longer vouch for that directory."""
    day = tmp_path / "day"
    day.mkdir()
    watch = DirWatch("job")
    try:
        watch.watch(1, str(day))
        time.sleep(notify.CTIME_MARGIN_NS / NS + 0.2)  # the directory's making is old news
        watch.begin()
        watch.begin()  # a cycle later: the watch is trusted
        assert watch.names(1, day.stat()) == frozenset()  # vouched for: nothing changed
        os.chmod(day, 0o700)  # its ctime moves; a notice with no name (the directory's own)
        watch.begin()
        assert watch.moved(day.stat())
        assert watch.names(1, day.stat()) is None  # listed whole, as without notices
        (day / "x.tif").write_bytes(b"x")  # a name noticed: that explains the change
        watch.begin()
        assert watch.names(1, day.stat()) == frozenset({"x.tif"})
        unvouched = DirWatch("job", vouch=False)  # a source other machines write
        try:
            unvouched.watch(1, str(day))
            unvouched.begin()
            unvouched.begin()
            assert unvouched.names(1, day.stat()) is None
        finally:
            unvouched.close()
    finally:
        watch.close()

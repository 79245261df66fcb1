"""The walk in worker processes gives what the walk in one process gives, and ends cleanly.

The parallel path is forced on small trees (``PARALLEL_FROM = 0``); each test compares the store,
the destination and the summary with those of the serial walk of the same tree.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from globus_autosync import config as config_mod
from globus_autosync.config import Config, Job
from globus_autosync.engine.baseline import baseline_job
from globus_autosync.engine.cycle import Cycle
from globus_autosync.engine.step import run_job
from globus_autosync.errors import JobError, WorkerError
from globus_autosync.sources.base import join
from globus_autosync.sources.context import CycleContext, never
from globus_autosync.sources.local import parwalk, walk
from globus_autosync.sources.local.listwork import DirTask, Setup
from globus_autosync.sources.local.parwalk import Workers
from globus_autosync.store import Store, codec
from globus_autosync.transports.local.transport import LocalTransport

NS = 1_000_000_000
PAST = (int(time.time()) - 86400) * NS  # settled long ago, never racy


class Spy(Workers):
    """Workers that are ready before the walk begins (so that they, not the walk's process,
    list a small tree) and remember themselves, to check they worked and are gone."""

    made: ClassVar[list[Spy]] = []

    def __init__(self, count: int, setup: Setup) -> None:
        super().__init__(count, setup)
        self.procs = [w.proc for w in self.workers.values()]
        self.sent = 0
        Spy.made.append(self)
        _ready(self)

    def submit(self, task: DirTask) -> None:
        inline = self.inline.busy
        super().submit(task)
        self.sent += self.inline.busy == inline


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Spy]]:
    Spy.made = []
    monkeypatch.setattr(parwalk, "Workers", Spy)
    monkeypatch.setattr(walk, "_cpus", lambda: 2)
    yield Spy
    for made in Spy.made:  # whatever happened, no worker is left behind
        assert all(p.poll() is not None for p in made.procs)


REAL_DECODE = codec.decode


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes | None]:
    """Every confirmed listing this process decodes (a worker's are not seen)."""
    seen: list[bytes | None] = []

    def decode(blob: bytes | None) -> dict[str, tuple[int, int]]:
        seen.append(blob)
        return REAL_DECODE(blob)

    monkeypatch.setattr(codec, "decode", decode)
    return seen


def parallel(monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    monkeypatch.setattr(walk, "PARALLEL_FROM", 0 if on else 10**12)


def make_tree(root: Path) -> None:
    """Files, subdirectories, excluded entries, names that cannot be sent, links, a fifo."""
    for rel in ("a", "a/b", "a/b/c", "a/empty", "skipdir", "keep", "keep/skipdir", "d/e"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    for i in range(40):
        write(root / "a" / "b" / f"frame_{i:05d}.tif", b"x" * i)
    for rel in ("top.dat", "a/one.dat", "a/b/c/deep.dat", "keep/skipdir/no.dat", "d/e/x.tmp",
                "d/e/y.dat", "skipdir/inside.dat", "a/café.dat"):  # fmt: skip
        write(root / rel, rel.encode())
    write(root / "fresh.dat", b"fresh", mtime=time.time_ns())  # not settled: a row stays
    with open(os.fsencode(root / "a") + b"/bad\xff.dat", "wb"):
        pass
    (root / "a" / "two\nlines").write_bytes(b"")
    os.mkfifo(root / "a" / "fifo")
    (root / "a" / "link.dat").symlink_to("one.dat")
    (root / "a" / "dangling").symlink_to("nowhere")
    (root / "a" / "uplink").symlink_to("..")  # a loop when links are followed
    (root / "d" / "to_b").symlink_to("../a/b")
    date_dirs(root)


def write(path: Path, data: bytes, mtime: int | None = None) -> None:
    path.write_bytes(data)
    t = PAST + len(data) if mtime is None else mtime
    os.utime(path, ns=(t, t))


def date_dirs(root: Path) -> None:
    """Every directory dated in the past: no listing is racy, whenever a test runs."""
    for path, _, _ in os.walk(root):
        os.utime(path, ns=(PAST, PAST))


def make_config(tmp: Path, name: str, symlinks: str) -> tuple[Config, Job]:
    (tmp / f"dest-{name}").mkdir()
    cfg = config_mod.parse(
        tmp / "config.toml",
        {
            "job": [
                {
                    "name": "job",
                    "source": str(tmp / "source"),
                    "destination": str(tmp / f"dest-{name}"),
                    "settle": "60s",
                    "full_scan_every": "3650d",
                    "exclude": ["*.tmp", "skipdir", "keep/skipdir/*"],
                    "symlinks": symlinks,
                }
            ]
        },
    )
    return cfg, cfg.jobs[0]


def store_view(state: Path) -> dict[str, Any]:
    """Everything the store holds of the job, by relative path, without clock readings."""
    conn = sqlite3.connect(state / "state.db")
    rel: dict[int, str] = {}
    dirs: dict[str, Any] = {}
    rows = conn.execute("SELECT id, parent, name, mtime_ns, ino, made, nfiles, nbytes, digest, "
                        "done FROM dirs ORDER BY id")  # fmt: skip
    for dir_id, parent, name, *rest, done in rows:
        rel[dir_id] = join(rel[parent], name) if parent else ""
        dirs[rel[dir_id]] = (*rest, codec.decode(done))
    files = {
        (rel[d], name): rest
        for d, name, *rest in conn.execute(
            "SELECT dir, name, size, mtime_ns, state, attempts, reason FROM files"
        )
    }
    conn.close()
    return {"dirs": dirs, "files": files}


def tree_of(root: Path) -> dict[str, bytes]:
    out = {}
    for path, _, names in os.walk(root):
        for name in names:
            out[os.path.relpath(os.path.join(path, name), root)] = Path(path, name).read_bytes()
    return out


def summary_of(line: str) -> str:
    return line.rsplit(",", 1)[0]  # without the seconds


@pytest.mark.parametrize("symlinks", ["skip", "follow"])
def test_a_parallel_full_walk_leaves_what_a_serial_one_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[Spy], symlinks: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    make_tree(tmp_path / "source")
    jobs = {name: make_config(tmp_path, name, symlinks) for name in ("serial", "parallel")}

    def cycle(name: str) -> str:
        parallel(monkeypatch, name == "parallel")
        cfg, job = jobs[name]
        caplog.clear()
        summary = run_job(job, cfg, tmp_path / f"state-{name}", full=True)
        warnings = sorted(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
        return f"{summary_of(summary.line())} {warnings}"

    caplog.set_level(logging.WARNING)
    for step in range(3):
        lines = {name: cycle(name) for name in ("serial", "parallel")}
        assert lines["serial"] == lines["parallel"], step
        assert store_view(tmp_path / "state-serial") == store_view(tmp_path / "state-parallel")
        assert tree_of(tmp_path / "dest-serial") == tree_of(tmp_path / "dest-parallel")
        assert "scanned 0 files" not in lines["parallel"]
        source = tmp_path / "source"
        if step == 0:  # rewritten in place, new files, one gone, a new directory
            write(source / "a" / "b" / "frame_00003.tif", b"rewritten")
            write(source / "a" / "b" / "frame_99999.tif", b"new")
            (source / "a" / "one.dat").unlink()
            (source / "n").mkdir()
            write(source / "n" / "new.dat", b"in a new directory")
            date_dirs(source)
    assert len(spy.made) == 3 and all(made.sent > 5 for made in spy.made)
    view = store_view(tmp_path / "state-parallel")
    assert view["files"][("", "fresh.dat")][2] == "seen"
    assert view["dirs"]["a/b"][-1]["frame_00003.tif"] == (9, PAST + 9)
    assert "a/empty" in view["dirs"] and "skipdir" not in view["dirs"]


@pytest.mark.parametrize("in_workers", [False, True])
def test_a_directory_that_lists_as_when_it_needed_nothing_is_not_compared_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_workers: bool, decoded: list[bytes | None]
) -> None:
    """The digest shortcut of a full walk, and the change it must never hide: a file rewritten
    in place, same size, in a directory whose own mtime did not move."""
    source = tmp_path / "source"
    (source / "frames").mkdir(parents=True)
    for i in range(40):
        write(source / "frames" / f"frame_{i:05d}.tif", b"x" * 100)
    date_dirs(source)
    cfg, job = make_config(tmp_path, "x", "skip")
    state = tmp_path / "state"
    parallel(monkeypatch, in_workers)

    def digest() -> bytes | None:
        conn = sqlite3.connect(state / "state.db")
        (value,) = conn.execute("SELECT digest FROM dirs WHERE name='frames'").fetchone()
        conn.close()
        return value  # type: ignore[no-any-return]

    def full() -> str:
        decoded.clear()
        return summary_of(run_job(job, cfg, state, full=True).line())

    assert "sent 40 (4.0 kB), confirmed 40" in full() and digest() is None
    assert "0 new or changed" in full() and digest() is not None  # listed as confirmed: noted
    remembered = digest()
    assert "0 new or changed" in full()
    assert digest() == remembered
    if not in_workers:  # (a worker's decodes are not seen here)
        assert not decoded  # nothing decoded: the listing hashed as remembered

    write(source / "frames" / "frame_00007.tif", b"y" * 100, mtime=PAST + 7 * NS)
    date_dirs(source)  # the directory's own mtime does not tell
    assert "1 new or changed, sent 1 (100 B), confirmed 1" in full()
    assert (tmp_path / "dest-x" / "frames" / "frame_00007.tif").read_bytes() == b"y" * 100
    assert digest() is None  # confirming it changed `done`: the digest no longer vouches
    assert "0 new or changed" in full() and digest() not in (None, remembered)


def test_baseline_notes_the_digest_of_each_directory_it_confirms_whole(
    tmp_path: Path, decoded: list[bytes | None]
) -> None:
    source = tmp_path / "source"
    for sub, mtime in (("old", PAST), ("mixed", PAST), ("mixed", time.time_ns())):
        (source / sub).mkdir(parents=True, exist_ok=True)
        for i in range(5):
            write(source / sub / f"f{mtime}_{i}.dat", b"x" * i, mtime=mtime)
    date_dirs(source)
    cfg, job = make_config(tmp_path, "x", "skip")
    state = tmp_path / "state"
    line = baseline_job(job, state, PAST + NS).line()  # the fresh files of "mixed" are left
    assert "recorded 10 files" in line and "5 newer files left" in line
    view = store_view(state)
    assert view["dirs"]["old"][-2] is not None
    assert view["dirs"]["mixed"][-2] is None  # some of it is still to send

    decoded.clear()
    summary = run_job(job, cfg, state, full=True)
    assert "5 new or changed" in summary.line()  # the files baseline left, and only those
    # "old" and the root list as baseline confirmed them: only "mixed" is decoded and compared
    assert [sorted(REAL_DECODE(blob)) for blob in decoded] == [
        [f"f{PAST}_{i}.dat" for i in range(5)]
    ]


def test_baseline_in_workers_records_what_it_records_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[Spy]
) -> None:
    make_tree(tmp_path / "source")
    results = {}
    for name in ("serial", "parallel"):
        parallel(monkeypatch, name == "parallel")
        _, job = make_config(tmp_path, name, "skip")
        results[name] = baseline_job(job, tmp_path / f"state-{name}", PAST + 30).line()
    assert results["serial"] == results["parallel"]
    assert "recorded 0 files" not in results["parallel"]
    assert store_view(tmp_path / "state-serial") == store_view(tmp_path / "state-parallel")
    assert len(spy.made) == 1 and spy.made[0].sent > 5


def test_tasks_too_large_for_a_pipe_go_to_an_idle_worker_or_stay_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[Spy]
) -> None:
    make_tree(tmp_path / "source")
    monkeypatch.setattr(parwalk, "_pipe_room", lambda fd: 16)
    lines = {}
    for name in ("serial", "parallel"):
        parallel(monkeypatch, name == "parallel")
        cfg, job = make_config(tmp_path, name, "skip")
        lines[name] = summary_of(run_job(job, cfg, tmp_path / f"state-{name}", full=True).line())
    assert lines["serial"] == lines["parallel"]
    assert store_view(tmp_path / "state-serial") == store_view(tmp_path / "state-parallel")
    assert spy.made[0].sent > 0


def _cycle(tmp_path: Path, should_stop: Callable[[], bool] = never) -> Cycle:
    make_tree(tmp_path / "source")
    cfg, job = make_config(tmp_path, "x", "skip")
    store = Store.open(tmp_path / "state")
    return Cycle(CycleContext.start(job, cfg, store, LocalTransport(job), should_stop=should_stop))


def test_should_stop_ends_a_parallel_walk_between_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[Spy]
) -> None:
    parallel(monkeypatch, True)
    asked = iter(range(100))
    cycle = _cycle(tmp_path, lambda: next(asked) >= 3)
    summary = cycle.run(full=True)
    assert 0 < summary.dirs <= 3
    # a stopped walk is not a full scan
    assert cycle.ctx.store.jobs.last_full_scan(cycle.ctx.job_id) == 0
    assert len(spy.made) == 1


def test_an_interrupted_parallel_walk_ends_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[Spy]
) -> None:
    parallel(monkeypatch, True)
    cycle = _cycle(tmp_path)
    applied = []

    def apply(*args: Any) -> None:
        applied.append(args)
        if len(applied) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cycle, "_apply", apply)
    with pytest.raises(KeyboardInterrupt):
        cycle.run(full=True)
    assert len(spy.made) == 1  # and the fixture checks its processes are gone


def test_a_worker_that_dies_mid_walk_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[Spy]
) -> None:
    parallel(monkeypatch, True)
    cycle = _cycle(tmp_path)
    real = cycle._apply

    def apply(*args: Any) -> None:
        for proc in spy.made[0].procs:
            proc.kill()
            proc.wait()
        real(*args)

    monkeypatch.setattr(cycle, "_apply", apply)
    with pytest.raises(WorkerError, match=r"worker process died \(killed by signal 9\)") as info:
        cycle.run(full=True)
    assert isinstance(info.value, JobError) and "\n" not in str(info.value)


def _setup() -> Setup:
    return Setup((), False, True, True, time.time(), 0.0)


def _ready(workers: Workers) -> None:
    """Wait for every worker's hello (until then, the walk's process lists by itself)."""
    while not all(w.ready for w in workers.workers.values()):
        workers._pump(None)


def test_an_exception_in_a_worker_is_raised_here_with_its_trace(tmp_path: Path) -> None:
    workers = Workers(1, _setup())
    try:
        _ready(workers)
        workers.submit(DirTask(1, str(tmp_path), "", b"\x09\x00\x00\x00\x00", {}))
        with pytest.raises(WorkerError, match="failed in a worker process") as info:
            while True:
                workers.collect()
        assert "unknown listing format" in str(info.value.__cause__)
        assert "Traceback" in str(info.value.__cause__)
    finally:
        workers.close(kill=True)


def test_a_directory_a_worker_cannot_list_is_a_problem_not_an_error(tmp_path: Path) -> None:
    workers = Workers(2, _setup())
    try:
        _ready(workers)
        workers.submit(DirTask(7, str(tmp_path / "missing"), "x", None, {}))
        ((task, result),) = workers.collect()
        assert (task.dir_id, result.error) == (7, "No such file or directory")
    finally:
        workers.close()
    assert not workers.workers


def test_workers_that_cannot_start_leave_the_walk_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An interpreter that cannot run the worker (here: one that exits at once) costs the walk
    its speed, not its result."""
    make_tree(tmp_path / "source")
    jobs = {name: make_config(tmp_path, name, "skip") for name in ("serial", "broken")}
    parallel(monkeypatch, False)
    run_job(jobs["serial"][1], jobs["serial"][0], tmp_path / "state-serial", full=True)
    parallel(monkeypatch, True)
    monkeypatch.setattr(walk, "_cpus", lambda: 3)  # two workers
    monkeypatch.setattr(sys, "executable", "/bin/false")
    caplog.set_level(logging.WARNING)
    summary = run_job(jobs["broken"][1], jobs["broken"][0], tmp_path / "state-broken", full=True)
    assert "scanned 0 files" not in summary.line()
    assert store_view(tmp_path / "state-serial") == store_view(tmp_path / "state-broken")
    told = [r.getMessage() for r in caplog.records if "listing in this process" in r.getMessage()]
    assert told, caplog.text


def test_a_small_tree_or_an_incremental_walk_stays_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[Spy]
) -> None:
    make_tree(tmp_path / "source")
    cfg, job = make_config(tmp_path, "x", "skip")
    run_job(job, cfg, tmp_path / "state", full=True)  # below PARALLEL_FROM
    parallel(monkeypatch, True)
    run_job(job, cfg, tmp_path / "state", full=False)
    assert not spy.made
    monkeypatch.setattr(walk, "_cpus", lambda: 1)
    run_job(job, cfg, tmp_path / "state", full=True)
    assert not spy.made


def test_a_busy_worker_is_sent_only_what_its_pipe_holds() -> None:
    worker = object.__new__(parwalk._Worker)
    worker.room, worker.inflight, worker.sizes = 1000, deque(), deque()
    assert worker.takes(5000)  # idle: it reads whatever comes
    worker.inflight.append(DirTask(1, "/a", "a", None, {}))
    worker.sizes.append(5000)  # read already, or being read
    assert worker.takes(1000) and not worker.takes(1001)
    worker.inflight.append(DirTask(2, "/b", "b", None, {}))
    worker.sizes.append(600)
    assert worker.takes(400) and not worker.takes(401)
    worker.inflight.append(DirTask(3, "/c", "c", None, {}))
    worker.sizes.append(10)
    assert not worker.takes(1)  # a full window


def test_workers_ended_by_the_signal_that_stops_the_walk_are_a_stop_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[Spy]
) -> None:
    """systemd stops ``watch`` with SIGTERM to every process of the service, workers included."""
    parallel(monkeypatch, True)
    stop: list[bool] = []
    cycle = _cycle(tmp_path, lambda: bool(stop))
    real = cycle._apply

    def apply(*args: Any) -> None:
        for proc in spy.made[0].procs:
            proc.terminate()
            proc.wait()
        stop.append(True)
        real(*args)

    monkeypatch.setattr(cycle, "_apply", apply)
    summary = cycle.run(full=True)
    assert summary.dirs >= 1
    assert cycle.ctx.store.jobs.last_full_scan(cycle.ctx.job_id) == 0


def test_a_worker_killed_with_a_task_in_hand_names_the_directory(tmp_path: Path) -> None:
    workers = Workers(1, _setup())
    try:
        _ready(workers)
        (worker,) = workers.workers.values()
        worker.proc.send_signal(signal.SIGSTOP)  # it takes the task, never answers
        workers.submit(DirTask(1, str(tmp_path), "", None, {}))
        worker.proc.kill()
        with pytest.raises(WorkerError, match=f"killed by signal 9\\) while listing {tmp_path}$"):
            workers.collect()
    finally:
        workers.close(kill=True)
    assert worker.proc.returncode == -9

"""One run per job at a time (exit 75); different jobs share the store at the same time."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time

from .helpers import CliEnv, assert_mirrored, console_script, job_toml, tree


def test_a_second_run_of_a_locked_job_exits_75_and_does_nothing(env: CliEnv) -> None:
    env.write("a.dat", "a")
    lock = env.state / "locks" / "detector.lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"12345")
        started = time.monotonic()
        res = env.run(code=75)
        assert time.monotonic() - started < 30  # at once, not after waiting for the lock
        assert "already running" in res.stderr
        assert "12345" in res.stderr
        assert tree(env.dst) == {}
        assert not env.db_path.exists()
        env.cli("baseline", code=75)
        # reading is allowed while a run holds the lock
        env.cli("status")
        env.cli("tasks")
        env.run("--dry-run")
    finally:
        os.close(fd)
    env.run()
    assert (env.dst / "a.dat").read_text() == "a"


def test_a_run_blocked_by_a_running_run_of_the_same_job(env: CliEnv) -> None:
    """A real run holds the lock; a second one started meanwhile exits 75 at once."""
    for i in range(20):
        env.write(f"big/{i:03}.dat", os.urandom(1 << 20))
    first = env.popen("run")
    try:
        deadline = time.monotonic() + 30
        while not any(env.dst.rglob("*")) and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        first.send_signal(signal.SIGSTOP)  # a slow run: paused in the middle of copying
        try:
            if first.poll() is None:
                second = env.run(code=75)
                assert "already running" in second.stderr
                assert str(first.pid) in second.stderr
                assert "sent" not in second.stdout
        finally:
            first.send_signal(signal.SIGCONT)
    finally:
        first.wait(60)
    assert first.returncode == 0, first.communicate()
    env.run()
    assert_mirrored(env.src, env.dst)


def test_the_lock_of_a_killed_run_is_released(env: CliEnv) -> None:
    """Killed inside its lock (a batch journaled, not yet submitted): the next run is not
    locked out, and repairs what the killed one left."""
    for i in range(20):
        env.write(f"{i:03}.dat", os.urandom(1 << 20))
    crash = env.environ() | {"GLOBUS_AUTOSYNC_CRASH_AT": "batch-journaled"}
    killed = subprocess.Popen(
        [*console_script(), "run"], env=crash, cwd=env.root, stdout=subprocess.PIPE, text=True
    )
    out, _ = killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL  # killed, not finished by itself
    assert "sent" not in out
    lock = env.state / "locks" / "detector.lock"
    assert lock.read_text() == str(killed.pid)  # it held the lock when it was killed
    with env.db() as db:
        assert db.execute("SELECT count(*) FROM batches WHERE task_id IS NULL").fetchone() == (1,)
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the OS released it: no wait, no error
    finally:
        os.close(fd)
    env.run()
    assert_mirrored(env.src, env.dst)


def test_two_jobs_run_at_the_same_time_against_one_store(env: CliEnv) -> None:
    jobs = []
    for name in ("alpha", "beta"):
        (env.root / f"src-{name}").mkdir()
        (env.root / f"dst-{name}").mkdir()
        jobs.append(job_toml(name=name, source=f"src-{name}", destination=f"dst-{name}"))
        for i in range(150):
            d = env.root / f"src-{name}" / f"d{i % 10}"
            d.mkdir(exist_ok=True)
            (d / f"{name}_{i:04}.dat").write_bytes(os.urandom(2000 + i))
    env.configure(*jobs)
    for _ in range(2):  # first on a store that does not exist yet, then on one that does
        procs = [env.popen("run", "--job", name) for name in ("alpha", "beta")]
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert "failed 0, skipped 0" in out
        for _ in range(20):
            (env.root / "src-alpha" / "d0" / f"more_{time.monotonic_ns()}.dat").write_text("x")
            (env.root / "src-beta" / "d1" / f"more_{time.monotonic_ns()}.dat").write_text("y")
    env.run()
    for name in ("alpha", "beta"):
        assert_mirrored(env.root / f"src-{name}", env.root / f"dst-{name}")
        st = env.status(name)
        assert st["done"] == 190
        assert (st["queued"], st["in_flight"], st["failed"]) == (0, 0, 0)

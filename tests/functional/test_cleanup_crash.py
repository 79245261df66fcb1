"""Source cleanup killed (SIGKILL) at every step, and at random moments: the next run neither
deletes a file the rules did not clear nor loses track of one it deleted. Every source file is
either still there, or at the destination with exactly one line in the audit log."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from .helpers import LONG_AGO, CliEnv, job_toml, tree

DIRS, PER_DIR = 3, 5


def _populate(env: CliEnv, dirs: int = DIRS, per_dir: int = PER_DIR) -> dict[str, bytes]:
    files = {}
    rng = random.Random(dirs * per_dir)
    for d in range(dirs):
        for i in range(per_dir):
            rel = f"scan_{d}/frame_{i:05}.tif"
            data = rng.randbytes(rng.randint(1, 2000))
            env.write(rel, data, mtime=LONG_AGO + i)
            files[rel] = data
    return files


def _audit(env: CliEnv) -> list[str]:
    path = env.state / "log" / "deletions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["source"] for line in path.read_text("utf-8").splitlines()]


def assert_nothing_lost(env: CliEnv, files: dict[str, bytes]) -> None:
    """Every file is at the source as written, or deleted with its copy whole at the
    destination and one audit line; and the store knows each one still there."""
    at_source = tree(env.src)
    lines = _audit(env)
    assert len(lines) == len(set(lines)), "a deletion recorded twice"
    for rel, data in files.items():
        if rel in at_source:
            assert at_source[rel] == data, rel
            assert str(env.src / rel) not in lines, f"{rel} recorded as deleted but still there"
        else:
            assert (env.dst / rel).read_bytes() == data, f"{rel} deleted, copy missing or torn"
            assert str(env.src / rel) in lines, f"{rel} deleted without its audit line"
    with env.db() as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        journaled = db.execute("SELECT COUNT(*) FROM cleanup WHERE deleting=1").fetchone()[0]
        assert journaled == 0, "a journaled deletion left unresolved"


@pytest.mark.parametrize(
    "point",
    [
        "cleanup-journaled:1",
        "cleanup-unlinked:1",
        "cleanup-unlinked:3",
        "cleanup-unlinked:7",
        "cleanup-audited:1",
        "cleanup-audited:2",
        "cleanup-resolved:1",
        "cleanup-resolved:3",
    ],
)
def test_killed_at_every_step_of_cleanup(env: CliEnv, point: str) -> None:
    env.configure(job_toml(delete_after="0s"))
    files = _populate(env)
    env.run()  # confirmed; deleted in the next cycle
    crash = dict(env.environ(), GLOBUS_AUTOSYNC_CRASH_AT=point)
    res = env.cli("run", code=None, env=crash)
    assert res.returncode == -signal.SIGKILL, (point, res.stdout, res.stderr)
    env.run()  # resolves what the killed run journaled, then deletes the rest
    assert_nothing_lost(env, files)
    env.run()
    assert tree(env.src) == {}
    assert sorted(_audit(env)) == sorted(str(env.src / rel) for rel in files)
    assert env.status()["cleanup"]["deleted_files"] == len(files)


def test_killed_again_while_resolving_an_interrupted_cleanup(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s"))
    files = _populate(env)
    env.run()
    first = dict(env.environ(), GLOBUS_AUTOSYNC_CRASH_AT="cleanup-unlinked:4")
    assert env.cli("run", code=None, env=first).returncode == -signal.SIGKILL
    second = dict(env.environ(), GLOBUS_AUTOSYNC_CRASH_AT="cleanup-recovery-audited:1")
    assert env.cli("run", code=None, env=second).returncode == -signal.SIGKILL
    env.run()
    assert_nothing_lost(env, files)
    env.run()
    assert tree(env.src) == {}
    assert sorted(_audit(env)) == sorted(str(env.src / rel) for rel in files)


def test_a_new_file_in_place_of_one_deleted_by_a_killed_run_is_sent(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s", delete_empty_dirs=False))
    files = _populate(env, dirs=1, per_dir=3)
    env.run()
    crash = dict(env.environ(), GLOBUS_AUTOSYNC_CRASH_AT="cleanup-unlinked:1")
    assert env.cli("run", code=None, env=crash).returncode == -signal.SIGKILL
    gone = next(rel for rel in files if not (env.src / rel).exists())
    # the instrument writes a new file under that name, with the old size and mtime
    env.write(gone, b"N" * len(files[gone]), mtime=LONG_AGO)
    os.utime(env.src / gone, ns=(0, (env.dst / gone).stat().st_mtime_ns))
    (env.dst / gone).unlink()
    env.run()
    assert (env.src / gone).read_bytes() == b"N" * len(files[gone])  # not deleted: not sent yet
    assert (env.dst / gone).read_bytes() == b"N" * len(files[gone])  # sent as a new file
    # the old one's deletion is recorded, unless the new file took its inode number (then
    # the run cannot tell a rewrite from a new file, and records nothing it is not sure of)
    assert _audit(env).count(str(env.src / gone)) <= 1
    env.run()
    assert not (env.src / gone).exists()  # the new one, once confirmed, is deleted in turn
    assert _audit(env).count(str(env.src / gone)) in (1, 2)


def test_sigkill_at_random_moments_of_a_large_cleanup(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s", max_files_per_task=5000))
    files = _populate(env, dirs=8, per_dir=250)
    env.run()
    rng = random.Random(9)
    kills = 0
    for _ in range(6):
        before = _count(env.src)
        if not before:
            break
        proc = env.popen("run")
        deadline = time.monotonic() + 30
        while proc.poll() is None and _count(env.src) == before:  # until deleting has begun
            assert time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.03))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(30)
        assert_nothing_lost_so_far(env, files)
    env.run()
    assert_nothing_lost(env, files)
    env.run()
    assert tree(env.src) == {}
    assert len(_audit(env)) == len(files)
    assert kills >= 2, f"the runs finished before they could be killed ({kills} kills)"


def assert_nothing_lost_so_far(env: CliEnv, files: dict[str, bytes]) -> None:
    """Right after a kill: a file gone from the source has a whole copy at the destination
    (its audit line may wait for the next run)."""
    at_source = tree(env.src)
    for rel, data in files.items():
        if rel not in at_source:
            assert (env.dst / rel).read_bytes() == data, rel


def _count(top: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(top))

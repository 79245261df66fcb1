"""A run killed at any moment loses nothing: the next run repairs the store and the copy."""

from __future__ import annotations

import os
import random
import signal
import stat
import time
from pathlib import Path

import pytest

from globus_autosync.transports.local.transport import temp_name

from .helpers import CliEnv, assert_mirrored, part_files, tree

TRANSFERS = (1, 4)  # each test that uses ``env`` runs with 1 and with 4 copy workers


def _snapshot(top: Path) -> dict[str, int]:
    """Sizes of the files below ``top``, while a run may still be renaming them."""
    out = {}
    for p in top.rglob("*"):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue  # a .part file renamed into place since the directory was read
        if stat.S_ISREG(st.st_mode):
            out[str(p)] = st.st_size
    return out


def test_sigkill_during_copying_then_repair(env: CliEnv) -> None:
    rng = random.Random(2)
    sizes = {}
    for i in range(32):
        rel = f"run_{i // 8}/frame_{i:05}.tif"
        size = rng.randint(1 << 20, 3 << 20)
        env.write(rel, rng.randbytes(size))
        sizes[rel] = size
    kills = 0
    # kill as soon as the destination receives anything, then later and later
    for delay in (0.0, 0.002, 0.01, 0.03, 0.06, 0.1, 0.2):
        before = _snapshot(env.dst)
        proc = env.popen("run")
        deadline = time.monotonic() + 30
        while proc.poll() is None and _snapshot(env.dst) == before:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(30)
        # whatever arrived under its real name arrived whole
        for rel in tree(env.dst):
            if not rel.rsplit("/", 1)[-1].startswith(".autosync-"):
                assert (env.dst / rel).stat().st_size == sizes[rel], rel
        if len(tree(env.dst)) >= len(sizes):
            break
    assert kills >= 3, "the runs finished before they could be killed"
    res = env.run()
    assert "failed 0, skipped 0" in res.stdout
    assert_mirrored(env.src, env.dst)
    st = env.status()
    assert st["done"] == len(sizes)
    assert (st["waiting"], st["queued"], st["in_flight"], st["failed"], st["skipped"]) == (
        0, 0, 0, 0, 0,
    )  # fmt: skip
    with env.db() as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 0
        states = {r[0] for r in db.execute("SELECT state FROM batches")}
        assert states <= {"succeeded", "failed"}, states
    assert part_files(env.dst) == []
    res = env.run()
    assert "sent 0" in res.stdout


def test_killed_while_copying_a_file_that_then_vanishes(env: CliEnv) -> None:
    """The half-written copy of a file deleted from the source is not left behind."""
    for i in range(12):
        env.write(f"d/{i:03}.tif", os.urandom(2 << 20))
    proc = env.popen("run")
    deadline = time.monotonic() + 30
    while not part_files(env.dst) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    parts = part_files(env.dst)
    if not parts:
        pytest.skip("the run finished before a copy could be caught in the middle")
    by_temp = {temp_name(p.name): p for p in (env.src / "d").iterdir()}
    torn = Path(parts[0]).name
    vanished = by_temp[torn]
    vanished.unlink()
    res = env.run(code=1)  # the file is counted: it was never sent
    assert "skipped 1" in res.stdout
    assert vanished.name in res.stderr
    assert part_files(env.dst) == []
    assert_mirrored(env.src, env.dst)
    env.run()
    st = env.status()
    assert (st["done"], st["skipped"], st["failed"]) == (11, 0, 0)


def test_sigkill_while_a_batch_is_copied_in_parallel(env: CliEnv) -> None:
    """Killed while several files of a batch are under way at once (copied, or fsynced behind
    the copying): what is under a final name is whole, and the next run repairs the rest."""
    rng = random.Random(13)
    data = {}
    for i in range(60):
        rel = f"scan_{i % 3}/frame_{i:05}.tif"
        data[rel] = rng.randbytes(rng.randint(200_000, 1 << 20))
        env.write(rel, data[rel])
    proc = env.popen("run")
    deadline = time.monotonic() + 30
    while len(part_files(env.dst)) < 3 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    if len(part_files(env.dst)) < 2:
        pytest.skip("the run finished before several copies could be caught under way")
    for rel, content in tree(env.dst).items():
        if not rel.rsplit("/", 1)[-1].startswith(".autosync-"):
            assert content == data[rel], f"{rel} is torn"
    res = env.run()
    assert "failed 0, skipped 0" in res.stdout
    assert_mirrored(env.src, env.dst)
    assert part_files(env.dst) == []
    st = env.status()
    assert (st["done"], st["queued"], st["in_flight"], st["failed"]) == (len(data), 0, 0, 0)
    assert "sent 0" in env.run().stdout

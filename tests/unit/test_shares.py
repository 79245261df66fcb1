"""What tells a network share from a local disk, a share that is not mounted from an empty
directory, and a hung cycle from a slow one: the mount table, /etc/fstab and the heartbeat."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from globus_autosync import config as config_mod
from globus_autosync.engine.mounts import fstab_mount
from globus_autosync.monitoring import health
from globus_autosync.sources.local.fstype import LOCAL_TYPES, kind_of, mount_of, statfs_type
from globus_autosync.store import Store
from globus_autosync.store.heartbeats import Pulse, beat, lock_held

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:52 / /data/det rw,relatime shared:20 - nfs4 server:/export rw
41 22 0:53 / /mnt/with\\040space rw - fuse.sshfs host: rw
"""


def test_the_mount_table_names_the_file_system_of_a_path(tmp_path: Path) -> None:
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTINFO)
    assert mount_of("/data/det/run1/x.tif", str(table)) == ("/data/det", "nfs4")
    assert mount_of("/data/detector", str(table)) == ("/", "ext4")  # a prefix is not a parent
    assert mount_of("/mnt/with space/a", str(table)) == ("/mnt/with space", "fuse.sshfs")


def test_a_local_disk_gets_notices_and_anything_else_is_polled(tmp_path: Path) -> None:
    here = kind_of(tmp_path)
    assert here.local == (statfs_type(tmp_path) in LOCAL_TYPES)
    assert kind_of("/proc").local is False and kind_of("/proc").mode == "polling: proc"
    assert kind_of(tmp_path / "missing").local is False  # cannot be read: treated as remote


def test_an_fstab_mount_point_with_nothing_mounted_is_found(tmp_path: Path) -> None:
    fstab = tmp_path / "fstab"
    nowhere = tmp_path / "share"
    fstab.write_text(
        "# comment\n/dev/sda1 / ext4 defaults 0 1\nswap none swap sw 0 0\n"
        f"server:/export {nowhere} nfs4 defaults 0 0\n"
    )
    assert fstab_mount(nowhere / "run1", str(fstab)) == str(nowhere)
    assert fstab_mount(nowhere, str(fstab)) == str(nowhere)
    assert fstab_mount(tmp_path / "elsewhere", str(fstab)) is None
    assert fstab_mount(Path("/"), str(fstab)) is None  # the root is always mounted
    assert fstab_mount(nowhere, str(tmp_path / "no-fstab")) is None


def test_a_hang_is_a_stale_heartbeat_while_the_jobs_lock_is_held(tmp_path: Path) -> None:
    cfg = config_mod.parse(
        tmp_path / "c.toml",
        {"job": [{"name": "det", "source": str(tmp_path / "src"),
                  "destination": str(tmp_path / "dst"), "hang_after": "2s"}]},
    )  # fmt: skip
    job = cfg.jobs[0]
    state = tmp_path / "state"
    store = Store.open(state)
    job_id = store.jobs.ensure("det")
    store.cycles.record(job_id, time.time(), time.time(), False, "ok", "fine")
    (state / "locks").mkdir()
    lock = os.open(state / "locks" / "det.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with Pulse(store.path, job_id) as pulse:
            beat("destination")
            assert store.heartbeats.current(job_id) is not None
            assert health.assess(store, job).state == "ok"  # beating: never a hang
            later = time.time() + 5
            assert health.assess(store, job, later).state == "ok"  # no lock held: a dead run
            fcntl.flock(lock, fcntl.LOCK_EX)
            assert lock_held(state, "det")
            found = health.assess(store, job, later)
            assert found.state == "failing" and found.key == "failing:hung"
            assert found.reason.startswith("its destination has not answered for 5 s")
            assert f"check the mount of {tmp_path / 'dst'}" in found.action
            pulse.beat("source")  # progress again
            assert health.assess(store, job).state == "ok"
        assert store.heartbeats.current(job_id) is None  # the cycle ended
        assert health.assess(store, job, later).state == "ok"
    finally:
        os.close(lock)
        store.close()

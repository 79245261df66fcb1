"""Single faults that always happen, one per defect the random campaign found: each must end
with its documented exit code and one line naming the file and the error."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from .harness import Campaign, assert_mirrors
from .injector import Fault, FaultPlan

pytestmark = pytest.mark.usefixtures("injector")


def always(*faults: tuple[str, int]) -> FaultPlan:
    return FaultPlan(tuple(Fault(point, 1, code) for point, code in faults), seed=1)


def test_a_lock_file_that_cannot_be_truncated_ends_the_job_with_exit_3(tmp_path: Path) -> None:
    c = Campaign(tmp_path, seed=1, files=3)
    res = c.cli(always(("posix/io/rw/ftruncate", errno.EINVAL)), "run", "--job", "detector")
    assert res.code == 3, res.stderr
    lock = c.state / "locks" / "detector.lock"
    assert f"cannot write the lock file {lock}: Invalid argument" in res.stderr
    assert not res.problems(), res.report()
    assert not list(c.dst.rglob("*"))
    assert c.cli(None, "run", "--job", "detector").code == 0
    assert_mirrors(c.src, c.dst)


def test_a_metrics_file_that_cannot_be_renamed_leaves_nothing_behind(tmp_path: Path) -> None:
    c = Campaign(tmp_path, seed=1, files=0)
    assert c.cli(None, "run").code == 0  # SQLite unlinks its journal as it creates the database
    faults = always(("posix/io/dir/rename", errno.EROFS), ("posix/io/dir/unlink", errno.EIO))
    res = c.cli(faults, "run", "--metrics-file", str(c.metrics))
    assert res.code == 1, res.stderr
    assert f"cannot write the metrics file {c.metrics}: Read-only file system" in res.stderr
    assert not res.problems(), res.report()
    assert not c.metrics.exists()
    assert c.cli(None, "run", "--metrics-file", str(c.metrics)).code == 0
    assert [p.name for p in c.metrics.parent.iterdir()] == [c.metrics.name]


def test_a_dry_run_that_cannot_write_its_scratch_copy_ends_with_exit_3(tmp_path: Path) -> None:
    c = Campaign(tmp_path, seed=1, files=3)
    assert c.cli(None, "run").code == 0
    c.add_file(c.src)
    for point in ("posix/io/rw/write", "posix/io/sync/fdatasync"):
        res = c.cli(always((point, errno.ENOSPC)), "run", "--dry-run")
        assert res.code == 3, res.stderr
        assert "dry run: cannot copy the state database to a scratch file" in res.stderr
        assert not res.problems(), res.report()

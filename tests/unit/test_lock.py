"""The job lock: an OSError on its file ends the job with one line naming the file (exit 3)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from globus_autosync.engine.lock import JobLock
from globus_autosync.errors import EXIT_JOB, JobError


def _fail(code: int) -> object:
    def call(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    return call


@pytest.mark.parametrize(("call", "code"), [("ftruncate", errno.EINVAL), ("write", errno.EBADF)])
def test_a_lock_file_that_cannot_be_written_is_a_job_error_and_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, code: int
) -> None:
    with monkeypatch.context() as m:
        m.setattr(os, call, _fail(code))  # only the lock calls it in between
        with pytest.raises(JobError) as caught, JobLock(tmp_path, "detector"):
            pass
    assert caught.value.exit_code == EXIT_JOB
    message = str(caught.value)
    assert str(tmp_path / "locks" / "detector.lock") in message
    assert os.strerror(code) in message and "\n" not in message
    with JobLock(tmp_path, "detector"):  # released: the next run takes it
        pass

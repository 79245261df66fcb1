"""I/O errors in the files the tool keeps beside the data (metrics file, lock, state): each is a
documented exit code and one line, never exit 70 or a traceback. (tests/faults drives the same
under random faults; these are the cases it found, one by one, without the injector.)"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile

import pytest

from globus_autosync import cli

from .helpers import CliEnv


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_metrics_temp_file_a_failed_run_left_is_removed_by_the_next(env: CliEnv) -> None:
    env.write("a.dat", "a")
    out = env.root / "metrics" / "autosync.prom"
    out.parent.mkdir()
    # what a run whose rename and unlink both failed (a failing disk) leaves behind
    stale = out.parent / f".autosync.prom.{_dead_pid()}.tmp"
    stale.write_text("half")
    busy = out.parent / f".autosync.prom.{os.getpid()}.tmp"  # a writer at work: left alone
    busy.write_text("being written")
    env.run("--metrics-file", str(out))
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["autosync.prom", busy.name])
    assert 'globus_autosync_files{job="detector",state="done"} 1.0' in out.read_text()


@pytest.mark.usefixtures("clean_logging")
def test_a_dry_run_without_room_for_its_scratch_copy_is_a_job_error(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.write("a.dat", "a")
    env.run()
    env.write("b.dat", "b")
    monkeypatch.setenv("GLOBUS_AUTOSYNC_STATE_DIR", str(env.state))
    monkeypatch.setenv("GLOBUS_AUTOSYNC_CONFIG", str(env.config))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "TemporaryDirectory", full)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--dry-run"])
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert "dry run: cannot copy the state database to a scratch file" in err
    assert "No space left on device" in err and "internal error" not in err
    assert not (env.dst / "b.dat").exists()

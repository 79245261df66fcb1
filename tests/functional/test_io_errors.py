"""I/O errors in the files the tool keeps beside the data (metrics file, lock, state): each is a
documented exit code and one line, never exit 70 or a traceback. (tests/faults drives the same
under random faults; these are the cases it found, one by one, without the injector.)"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from globus_autosync import cli, config
from globus_autosync.engine.lock import JobLock
from globus_autosync.engine.watch import Watcher
from globus_autosync.store import Store

from .helpers import CliEnv, assert_mirrored, job_toml


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
    assert 'globus_autosync_files{autosync_job="detector",state="done"} 1.0' in out.read_text()


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


def _main(env: CliEnv, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("GLOBUS_AUTOSYNC_STATE_DIR", str(env.state))
    monkeypatch.setenv("GLOBUS_AUTOSYNC_CONFIG", str(env.config))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    code = exit_info.value.code
    assert isinstance(code, int)
    return code


def _two_jobs_one_failing(env: CliEnv, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Jobs 'bad' and 'good'; an OSError no handler foresaw comes out of bad's own files."""
    (env.root / "src2").mkdir()
    (env.root / "dst2").mkdir()
    env.configure(
        job_toml("bad"), job_toml("good", source="src2", destination="dst2", batch_window="0s")
    )
    env.write("a.dat", "a")
    (env.root / "src2" / "b.dat").write_text("b")
    real = JobLock.__enter__
    where = env.state / "locks" / "bad.lock"

    def enter(self: JobLock) -> JobLock:
        if self.job == "bad" and type(self) is JobLock:  # the cycle's lock, not the service's
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(where))
        return real(self)

    monkeypatch.setattr(JobLock, "__enter__", enter)
    return where


@pytest.mark.usefixtures("clean_logging")
@pytest.mark.parametrize("command", ["run", "baseline"])
def test_an_unforeseen_os_error_in_a_jobs_files_ends_that_job_with_exit_3(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    where = _two_jobs_one_failing(env, monkeypatch)
    assert _main(env, monkeypatch, command) == 3
    err = capsys.readouterr().err
    assert f"job 'bad': {where}: Input/output error; check that disk" in err
    assert "internal error" not in err and "Traceback" not in err
    assert not (env.dst / "a.dat").exists()
    if command == "run":  # the other job ran
        assert_mirrored(env.root / "src2", env.root / "dst2")


@pytest.mark.usefixtures("clean_logging")
def test_an_os_error_outside_any_job_is_one_line_and_exit_3(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(env.state / "state.db"))

    monkeypatch.setattr(Store, "open", broken)
    assert _main(env, monkeypatch, "check") == 3
    err = capsys.readouterr().err
    assert f"error: {env.state / 'state.db'}: Read-only file system" in err
    assert "internal error" not in err


def test_watch_logs_an_os_error_in_a_jobs_files_as_one_line_and_goes_on(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    where = _two_jobs_one_failing(env, monkeypatch)
    watcher = Watcher(config.load(env.config), env.state, None)
    try:
        with caplog.at_level(logging.INFO):
            for state in watcher.jobs.values():
                watcher._cycle(state)
    finally:
        watcher.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert f"job 'bad': {where}: Input/output error" in errors[0].getMessage()
    assert watcher.jobs["bad"].failures == 1
    assert_mirrored(env.root / "src2", env.root / "dst2")


@pytest.mark.usefixtures("clean_logging")
@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_is_exit_70_with_or_without_debug_and_a_traceback_only_with_it(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], debug: bool
) -> None:
    def bug(*args: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(Store, "open", bug)
    assert _main(env, monkeypatch, *(["--debug"] if debug else []), "check") == 70
    err = capsys.readouterr().err
    assert "internal error: KeyError" in err
    assert ("Traceback" in err) == debug

"""The log file: written under the state dir, rotated past its size, at most BACKUPS kept."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path

import pytest

from globus_autosync.cli import logs


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _log_dir(state: Path) -> Path:
    return state / "log"


def test_a_full_log_is_rotated_before_a_run_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 100)
    log = _log_dir(tmp_path) / "globus-autosync.log"
    log.parent.mkdir()
    log.write_text("x" * 100)
    for n in range(1, logs.BACKUPS + 1):
        (log.parent / f"globus-autosync.log.{n}").write_text(f"backup {n}\n")

    assert logs.setup(tmp_path, debug=False, quiet=True) == log
    logging.getLogger("globus_autosync").warning("after rotation")

    assert "after rotation" in log.read_text()
    assert (log.parent / "globus-autosync.log.1").read_text() == "x" * 100
    for n in range(2, logs.BACKUPS + 1):
        assert (log.parent / f"globus-autosync.log.{n}").read_text() == f"backup {n - 1}\n"
    # the oldest backup is dropped: never more than BACKUPS besides the log itself
    assert len(list(log.parent.iterdir())) == logs.BACKUPS + 1


def test_a_log_below_the_limit_is_appended_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 100)
    log = _log_dir(tmp_path) / "globus-autosync.log"
    log.parent.mkdir()
    log.write_text("earlier line\n")

    logs.setup(tmp_path, debug=False, quiet=True)
    logging.getLogger("globus_autosync").warning("later line")

    assert log.read_text().startswith("earlier line\n")
    assert "later line" in log.read_text()
    assert sorted(p.name for p in log.parent.iterdir()) == ["globus-autosync.log"]


def test_watch_rotates_while_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 200)
    logs.setup(tmp_path, debug=False, quiet=True, resident=True)
    assert any(isinstance(h, RotatingFileHandler) for h in logging.getLogger().handlers)
    for n in range(20):
        logging.getLogger("globus_autosync").warning("line %d of a long-running watch", n)
    names = sorted(p.name for p in _log_dir(tmp_path).iterdir())
    assert "globus-autosync.log.1" in names
    assert all((_log_dir(tmp_path) / name).stat().st_size <= 200 for name in names)


class _FailingStream:
    """A log file's stream whose writes fail while ``failing`` is set (a full disk)."""

    def __init__(self, real: object) -> None:
        self.real, self.failing = real, True

    def write(self, text: str) -> int:
        if self.failing:
            raise OSError(28, "No space left on device")
        return self.real.write(text)  # type: ignore[attr-defined,no-any-return]

    def __getattr__(self, name: str) -> object:  # flush, seek, tell, close: the real file's
        return getattr(self.real, name)


@pytest.mark.parametrize("resident", [False, True])
def test_a_log_file_that_cannot_be_written_is_said_once_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], resident: bool
) -> None:
    path = logs.setup(tmp_path, debug=False, quiet=True, resident=resident)
    assert path is not None
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler))
    handler.stream = stream = _FailingStream(handler.stream)  # type: ignore[assignment]
    log = logging.getLogger("globus_autosync.test")
    for n in range(3):
        log.info("lost %d", n)
    err = capsys.readouterr().err
    assert err.count("cannot write the log file") == 1, err
    assert str(path) in err and "No space left on device" in err
    assert "Logging error" not in err and "Traceback" not in err
    stream.failing = False
    log.info("written")
    stream.failing = True
    log.info("lost again")  # a new outage is said again
    err = capsys.readouterr().err
    assert err.count("cannot write the log file") == 1, err
    assert "written" in path.read_text() and "lost" not in path.read_text()


def test_a_bad_format_is_still_reported_as_the_bug_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.setup(tmp_path, debug=False, quiet=True)
    logging.getLogger("globus_autosync.test").warning("%d", "not a number")
    assert "Logging error" in capsys.readouterr().err


def test_a_full_log_that_cannot_be_rotated_is_appended_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 100)
    log = _log_dir(tmp_path) / "globus-autosync.log"
    log.parent.mkdir()
    log.write_text("x" * 100 + "\n")

    def busy(*args: object) -> None:
        raise OSError(16, "Device or resource busy")

    with monkeypatch.context() as m:
        m.setattr("os.replace", busy)
        assert logs.setup(tmp_path, debug=False, quiet=True) == log
    logging.getLogger("globus_autosync").warning("still logged")
    assert "still logged" in log.read_text()
    assert "cannot rotate the log file" in capsys.readouterr().err

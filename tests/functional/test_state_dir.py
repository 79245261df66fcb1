"""A state directory that cannot be used is said, never read as "it has never run": `status`,
`tasks` and `retry-action` each answer one line naming the directory, with exit 3."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from .helpers import CliEnv, job_toml


def test_a_missing_state_directory_is_never_run_and_says_which_directory(env: CliEnv) -> None:
    assert not env.state.exists()
    assert f"never run (nothing recorded for it in {env.state})" in env.cli("status").stdout
    assert f"no batches yet (state directory {env.state})" in env.cli("tasks").stdout
    res = env.cli("retry-action", "1", code=3)
    assert f"nothing has run with the state directory {env.state}" in res.stderr
    assert not env.state.exists()  # reading made nothing


@pytest.mark.parametrize("command", [("status",), ("status", "--json"), ("tasks",)])
def test_a_state_directory_that_is_a_file_is_an_error(env: CliEnv, command: tuple[str]) -> None:
    env.state.write_text("not a directory")
    res = env.cli(*command, code=3)
    [line] = res.stderr.strip().splitlines()
    assert f"the state directory {env.state} is not a directory" in line
    assert "--state-dir" in line and "Traceback" not in res.stderr
    assert "never run" not in res.stdout


def test_a_corrupt_database_is_an_error_not_a_fresh_install(env: CliEnv) -> None:
    env.write("a.dat", b"x")
    env.run()
    for suffix in ("-wal", "-shm"):
        (env.state / f"state.db{suffix}").unlink(missing_ok=True)
    (env.state / "state.db").write_bytes(b"garbage " * 1000)
    for command in (("status",), ("tasks",)):
        res = env.cli(*command, code=3)
        assert "state.db" in res.stderr and "Traceback" not in res.stderr
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(env.state / "state.db").execute("SELECT 1 FROM jobs").fetchall()


def test_a_dry_run_checks_the_destination_as_run_does_and_names_the_job(env: CliEnv) -> None:
    env.write("a.dat", b"x")
    env.dst.rmdir()  # the destination is not there (not mounted)
    dry = env.cli("run", "--dry-run", code=3)
    real = env.cli("run", code=3)
    for res in (dry, real):
        [line] = [x for x in res.stderr.splitlines() if "is not a directory" in x]
        assert f"job 'detector': destination {env.dst} is not a directory" in line
        assert "would send" not in res.stdout
    assert not env.state.joinpath("state.db").exists() or env.status()["done"] == 0
    env.dst.mkdir()
    assert "would send a.dat" in env.cli("run", "--dry-run").stdout


def _umask(mask: int) -> list[str]:
    """A prefix that runs the command under this umask."""
    return ["sh", "-c", f'umask {mask:03o} && exec "$@"', "sh"]


def _modes(top: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(top.stat().st_mode)}
    for path in top.rglob("*"):
        if not path.is_symlink():
            out[str(path.relative_to(top))] = stat.S_IMODE(path.stat().st_mode)
    return out


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_the_state_directory_is_private_whatever_the_umask(env: CliEnv, mask: int) -> None:
    """Every directory 0700, every file the tool writes 0600 (database, -wal, -shm, log, audit
    log, locks, action manifests and output); the destination's files keep the umask's modes."""
    env.configure(job_toml(delete_after="0s", on_done="batch", command=["sh", "-c", "echo done"]))
    env.write("run1/a.tif", b"a")
    for _ in range(2):  # the second run deletes the sources: the audit log is written
        env.cli("run", prefix=_umask(mask))
    assert not (env.src / "run1" / "a.tif").exists()
    modes = _modes(env.state)
    kinds = {Path(p).name for p in modes}
    for name in ("state.db", "globus-autosync.log", "detector.lock", "manifest.json",
                 "output.log", "deletions.jsonl"):  # fmt: skip
        assert name in kinds, sorted(kinds)
    with env.db() as conn:  # while a process has it open: its -wal and -shm, as the database
        conn.execute("UPDATE jobs SET last_full_scan = last_full_scan")
        conn.commit()
        for extra in ("state.db-wal", "state.db-shm"):
            assert stat.S_IMODE((env.state / extra).stat().st_mode) == 0o600
    loose = {
        p: oct(m) for p, m in modes.items() if m != (0o700 if (env.state / p).is_dir() else 0o600)
    }
    assert not loose, loose
    # the destination is not the tool's: as the umask makes it
    assert stat.S_IMODE((env.dst / "run1" / "a.tif").stat().st_mode) == 0o644 & ~mask
    assert stat.S_IMODE((env.dst / "run1").stat().st_mode) == 0o777 & ~mask


def test_a_state_directory_open_to_others_is_made_private_with_one_line(env: CliEnv) -> None:
    env.write("a.tif", b"a")
    env.run()
    env.state.chmod(0o755)
    (env.state / "state.db").chmod(0o644)
    env.run()
    modes = _modes(env.state)
    assert modes["."] == 0o700 and modes["state.db"] == 0o600
    said = [x for x in env.log_lines() if "was open to other users (mode 755): made private" in x]
    assert len(said) == 1, said
    env.run()
    assert len([x for x in env.log_lines() if "made private" in x]) == 1  # once

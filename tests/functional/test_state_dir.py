"""A state directory that cannot be used is said, never read as "it has never run": `status`,
`tasks` and `retry-action` each answer one line naming the directory, with exit 3."""

from __future__ import annotations

import sqlite3

import pytest

from .helpers import CliEnv


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

"""Actions that run a local command, end to end through the console script: the command gets
the manifest in a clean environment, runs beside the sync, its exit code shows in ``tasks``, a
hanging one is killed at its timeout, and a crash never runs it twice."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .helpers import LONG_AGO, CliEnv, assert_mirrored, job_toml

# the command: records its environment and its manifest, then exits as told by its argument
RECORDER = """
import json, os, sys, time
out = sys.argv[1]
with open(os.environ["GLOBUS_AUTOSYNC_MANIFEST"], encoding="utf-8") as fh:
    manifest = json.load(fh)
with open(out, "a", encoding="utf-8") as fh:
    fh.write(json.dumps({"env": dict(os.environ), "manifest": manifest, "arg": sys.argv[2]}))
    fh.write("\\n")
print("analysed", len(manifest["files"]), "files")
sys.exit(int(sys.argv[3]))
"""


def recorder(env: CliEnv, code: int = 0) -> list[str]:
    script = env.root / "recorder.py"
    script.write_text(RECORDER)
    return [sys.executable, str(script), str(env.root / "calls.jsonl"), "{manifest}", str(code)]


def calls(env: CliEnv) -> list[dict[str, Any]]:
    path = env.root / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def actions(env: CliEnv) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(env.cli("tasks", "--json").stdout)["actions"]
    return sorted(rows, key=lambda a: a["action"])


def settle_actions(env: CliEnv, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run cycles until no action is pending or running (a later cycle records how a command
    ended)."""
    deadline = time.monotonic() + timeout
    while True:
        env.run(code=None)
        rows = actions(env)
        if rows and all(a["state"] in ("succeeded", "failed") for a in rows):
            return rows
        assert time.monotonic() < deadline, f"actions still open: {rows}"
        time.sleep(0.2)


def write(env: CliEnv, rels: list[str]) -> None:
    for i, rel in enumerate(rels):
        env.write(rel, f"frame {rel}\n" * (i + 1), mtime=LONG_AGO + i)


def test_a_command_gets_the_manifest_in_a_clean_environment(env: CliEnv) -> None:
    env.configure(job_toml(on_done="batch", command=recorder(env)))
    rels = ["scan1/a.tif", "scan1/b.tif", "scan2/c.tif"]
    write(env, rels)
    res = env.run()
    assert "actions started 1" in res.stdout
    [row] = settle_actions(env)
    [call] = calls(env)
    manifest_path = call["arg"]
    assert call["env"]["GLOBUS_AUTOSYNC_MANIFEST"] == manifest_path
    assert set(call["env"]) <= {"PATH", "LANG", "HOME", "GLOBUS_AUTOSYNC_MANIFEST", "PWD",
                                "LC_CTYPE"}  # fmt: skip
    assert "GLOBUS_AUTOSYNC_STATE_DIR" not in call["env"]  # nothing of ours leaks
    manifest = call["manifest"]
    assert json.loads(Path(manifest_path).read_text()) == manifest
    assert (manifest["job"], manifest["kind"], manifest["id"]) == ("detector", "batch",
                                                                   row["action"])  # fmt: skip
    assert manifest["source"] == {"collection": None, "root": str(env.src)}
    assert manifest["destination"] == {"collection": None, "root": str(env.dst)}
    assert {f["path"]: (f["source"], f["destination"], f["size"]) for f in manifest["files"]} == {
        rel: (str(env.src / rel), str(env.dst / rel), (env.src / rel).stat().st_size)
        for rel in rels
    }
    assert (row["state"], row["command_state"], row["exit_code"]) == ("succeeded", "succeeded", 0)
    assert "command succeeded (exit code 0)" in env.cli("tasks").stdout
    # its output is in the log
    assert any("| analysed 3 files" in line for line in env.log_lines())
    # nothing more to do: it never runs again
    env.run()
    assert len(calls(env)) == 1


def test_a_failing_command_shows_its_exit_code_and_runs_again_on_request(env: CliEnv) -> None:
    env.configure(job_toml(on_done="batch", command=recorder(env, code=3)))
    write(env, ["a.tif"])
    env.run()
    [row] = settle_actions(env)
    assert (row["state"], row["exit_code"]) == ("failed", 3)
    assert row["reason"] == "the command exited with code 3"
    assert "command failed (exit code 3)" in env.cli("tasks").stdout
    assert env.status()["actions"]["failed"] == 1
    prom = env.root / "autosync.prom"
    env.run("--metrics-file", str(prom), code=0)  # a failed action is not started again by itself
    assert len(calls(env)) == 1
    text = prom.read_text()
    assert 'globus_autosync_actions{autosync_job="detector",state="failed"} 1.0' in text
    assert 'globus_autosync_actions{autosync_job="detector",state="pending"} 0.0' in text
    env.configure(job_toml(on_done="batch", command=recorder(env, code=0)))  # the fix
    res = env.cli("retry-action", str(row["action"]))
    assert "attempt 2" in res.stdout
    [row] = settle_actions(env)
    assert (row["state"], row["exit_code"], row["attempt"]) == ("succeeded", 0, 2)
    assert len(calls(env)) == 2


def test_a_hanging_command_is_killed_at_its_timeout_while_files_keep_syncing(
    env: CliEnv,
) -> None:
    env.configure(job_toml(on_done="batch", command=["sleep", "600"], command_timeout="2s"))
    write(env, ["first.tif"])
    started = time.monotonic()
    env.run()
    [row] = actions(env)
    assert row["state"] == "running"
    # while it hangs, new files are sent, and a run takes no longer than its own work
    write(env, ["second.tif", "third.tif"])
    res = env.run()
    assert "confirmed 2" in res.stdout
    assert_mirrored(env.src, env.dst)
    assert actions(env)[0]["state"] == "running" or time.monotonic() - started > 2
    rows = settle_actions(env)
    first = rows[0]
    assert first["state"] == "failed"
    assert "command_timeout" in first["reason"] and "killed" in first["reason"]
    # the sleep is gone: its supervisor killed its process group
    top = env.state / "actions" / f"{first['action']}-1"
    done = json.loads((top / "exit.json").read_text())
    assert done["timed_out"] is True
    pid = int((top / "started").read_text())
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_a_crash_right_after_journaling_runs_the_command_once(env: CliEnv) -> None:
    env.configure(job_toml(on_done="batch", command=recorder(env)))
    write(env, ["a.tif", "b.tif"])
    killed = env.cli("run", code=None, env=env.environ() | {
        "GLOBUS_AUTOSYNC_CRASH_AT": "action-command-journaled"})  # fmt: skip
    assert killed.returncode == -9
    with env.db() as db:
        assert db.execute("SELECT cmd_state FROM actions").fetchall() == [("starting",)]
    [row] = settle_actions(env)
    assert row["state"] == "succeeded"
    env.run()
    assert len(calls(env)) == 1


def test_a_dataset_waits_for_its_failed_files_and_status_names_them(env: CliEnv) -> None:
    env.configure(job_toml(on_done="dataset", dataset_quiet="0s", command=recorder(env)))
    write(env, ["scan/a.tif", "scan/b.tif"])
    bad = env.src / "scan" / "b.tif"
    os.chmod(bad, 0)
    try:
        from .helpers import unprivileged_prefix

        prefix = unprivileged_prefix()
        if prefix is None:
            import pytest

            pytest.skip("file permissions cannot be made to bind here")
        env.cli("run", code=1, prefix=prefix)
        st = env.status()
        [waiting] = st["actions"]["datasets_waiting"]
        assert waiting["dataset"] == "scan"
        assert waiting["files"] == [{"path": "scan/b.tif", "state": "failed"}]
        assert "dataset scan (action" in env.cli("status").stdout
        assert "waits for: scan/b.tif (failed)" in env.cli("status").stdout
        assert calls(env) == []
    finally:
        os.chmod(bad, 0o644)
    [row] = settle_actions(env)
    [call] = calls(env)
    assert {f["path"] for f in call["manifest"]["files"]} == {"scan/a.tif", "scan/b.tif"}
    assert row["kind"] == "dataset"


def test_cleanup_keeps_a_source_file_until_its_action_has_ended(env: CliEnv) -> None:
    gate = env.root / "gate"  # the command runs until the test opens it
    wait = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.05)"
    env.configure(job_toml(on_done="batch", command=[sys.executable, "-c", wait, str(gate)],
                           delete_after="0s"))  # fmt: skip
    write(env, ["scan/a.tif"])
    try:
        env.run()
        env.run()  # cleanup is due, but the command may still read the file
        assert actions(env)[0]["state"] == "running"
        assert (env.src / "scan" / "a.tif").exists()
    finally:
        gate.write_text("")  # never leave the command behind
    [row] = settle_actions(env)
    assert row["state"] == "succeeded"
    env.run()
    assert not (env.src / "scan" / "a.tif").exists()
    assert (env.dst / "scan" / "a.tif").exists()


def test_a_command_that_cannot_start_is_one_failed_action_saying_why(env: CliEnv) -> None:
    env.configure(job_toml(on_done="batch", command=["no-such-analysis-program", "{manifest}"]))
    write(env, ["a.tif"])
    env.run()
    [row] = settle_actions(env)
    assert row["state"] == "failed" and row["exit_code"] == 127
    assert "cannot start 'no-such-analysis-program'" in row["reason"]
    assert env.status()["done"] == 1  # the file itself is confirmed all the same


def test_check_says_whether_the_command_can_run(env: CliEnv) -> None:
    env.configure(job_toml(on_done="batch", command=["sleep", "1"]))
    res = env.cli("check")
    assert "ok    detector: command: /usr/bin/sleep runs for each batch" in res.stdout or (
        "ok    detector: command: /bin/sleep runs for each batch" in res.stdout
    )
    env.configure(job_toml(on_done="batch", command=["no-such-analysis-program"]))
    res = env.cli("check", code=3)
    assert "FAIL  detector: command: 'no-such-analysis-program' is not an executable program" in (
        res.stdout
    )


def test_a_dataset_of_odd_names_is_shown_printable_and_handed_over_exactly(env: CliEnv) -> None:
    env.configure(job_toml(on_done="dataset", dataset_quiet="0s", command=recorder(env)))
    folder = os.fsencode(env.src) + b"/scan\xff"
    os.mkdir(folder)
    with open(folder + b"/a\nb.tif", "wb") as fh:
        fh.write(b"frame")
    [row] = settle_actions(env)
    assert row["state"] == "succeeded"
    assert row["dataset"] == "scan\\xff"  # tasks --json: printable
    [call] = calls(env)
    # the manifest is JSON: a byte that is not UTF-8 is the \udcXX of os.fsdecode, so that
    # os.fsencode gives the path back as the file system has it
    [entry] = call["manifest"]["files"]
    assert os.fsencode(entry["path"]) == b"scan\xff/a\nb.tif"
    assert os.path.exists(os.fsencode(entry["source"]))
    with open(os.fsencode(entry["destination"]), "rb") as fh:
        assert fh.read() == b"frame"

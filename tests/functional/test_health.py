"""A job's health through the CLI on real trees: `status` leads with it, `status --check` exits
0/1/2 with one line per job, and the metric says it."""

from __future__ import annotations

import shutil

from .helpers import LONG_AGO, CliEnv, job_toml


def check(env: CliEnv, code: int) -> list[str]:
    return env.cli("status", "--check", code=code).stdout.splitlines()


def block(env: CliEnv) -> None:
    """A file where the job needs a directory: files below it fail at the destination."""
    (env.dst / "sub").write_text("not a directory")


def test_a_job_that_never_ran_is_stopped_and_a_good_run_makes_it_ok(env: CliEnv) -> None:
    env.write("a.dat", "a", mtime=LONG_AGO)
    [line] = check(env, 2)
    assert line.startswith("detector: STOPPED: it has never run;") and "service cron" in line
    env.run()
    assert check(env, 0) == ["detector: OK"]
    st = env.status()
    assert st["health"] == {"state": "ok", "reason": "", "action": ""}
    assert env.cli("status").stdout.splitlines()[0] == "detector: ok"


def test_cycles_that_cannot_run_make_it_failing_after_alert_after(env: CliEnv) -> None:
    env.configure(job_toml(alert_after=2))
    env.write("a.dat", "a", mtime=LONG_AGO)
    env.run()
    shutil.rmtree(env.src)  # the instrument's disk is gone
    env.run(code=3)
    [line] = check(env, 0)  # one cycle could not run: not yet failing (alert_after = 2)
    env.run(code=3)
    [line] = check(env, 2)
    assert line.startswith("detector: FAILING: the last 2 cycles could not run: ")
    assert "is not a readable directory" in line and "next cycle carries on" in line
    text = env.cli("status").stdout.splitlines()
    assert text[0].startswith("detector: failing: the last 2 cycles could not run")
    env.src.mkdir()
    env.run()
    assert check(env, 0) == ["detector: OK"]


def test_files_that_keep_failing_make_it_failing(env: CliEnv) -> None:
    env.configure(job_toml(alert_after=1))
    env.write("sub/f.dat", "x", mtime=LONG_AGO)
    env.write("g.dat", "g", mtime=LONG_AGO)
    block(env)
    env.run(code=1)
    assert (env.dst / "g.dat").read_text() == "g"  # the rest is not held up
    [line] = check(env, 2)
    assert line.startswith("detector: FAILING: 1 file failed once or more (latest f.dat: ")
    (env.dst / "sub").unlink()
    env.run()
    assert check(env, 0) == ["detector: OK"]
    assert (env.dst / "sub" / "f.dat").read_text() == "x"


def test_no_good_cycle_for_alert_lag_is_stopped(env: CliEnv) -> None:
    env.configure(job_toml(alert_lag="30m"))
    env.write("a.dat", "a", mtime=LONG_AGO)
    env.run()
    with env.db() as db:  # 40 minutes without a cycle: cron or the service is not running it
        db.execute("UPDATE runs SET started = started - 2400, finished = finished - 2400")
        db.commit()
    [line] = check(env, 2)
    assert line.startswith("detector: STOPPED: no cycle has run to its end since ")
    assert "(40 min)" in line and "systemctl --user start globus-autosync" in line


def test_check_exits_with_the_worst_of_several_jobs_and_the_metric_says_each(
    env: CliEnv,
) -> None:
    env.configure(
        job_toml("good"), job_toml("late", source="src2", destination="dst2", alert_lag="10m")
    )
    (env.root / "src2").mkdir()
    (env.root / "dst2").mkdir()
    env.write("a.dat", "a", mtime=LONG_AGO)
    env.run()
    with env.db() as db:
        db.execute(
            "UPDATE runs SET finished = finished - 3600 WHERE job = (SELECT id FROM jobs "
            "WHERE name = 'late')"
        )
        db.commit()
    lines = check(env, 2)
    assert lines[0] == "good: OK" and lines[1].startswith("late: STOPPED: ")
    text = env.metrics("--job", "good")
    assert 'globus_autosync_health{autosync_job="good",state="ok"} 1.0' in text
    assert 'globus_autosync_health{autosync_job="good",state="stopped"} 0.0' in text
    assert 'globus_autosync_health{autosync_job="late",state="stopped"} 1.0' in text
    assert env.cli("status", "--check", "--job", "good", code=0).stdout == "good: OK\n"

"""One service per job: a second `watch` of a job, or a `run` of it while a `watch` serves it,
does nothing and says which process serves the job (exit 75)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

from .helpers import CliEnv, job_toml, wait_for


def _jobs(env: CliEnv) -> None:
    (env.root / "other").mkdir()
    env.configure(
        job_toml(settle="0s", interval="0.2s", batch_window="0s"),
        job_toml(
            name="other", destination="other", settle="0s", interval="0.2s", batch_window="0s"
        ),
    )


def test_a_second_watch_of_a_job_exits_75_naming_the_first(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    _jobs(env)
    first = watcher()
    for args in ((), ("--job", "detector")):
        res = env.cli("watch", *args, code=75, timeout=30)
        [line] = res.stderr.strip().splitlines()
        assert f"job 'detector' is already served by another 'watch' (pid {first.pid})" in line
    started = [x for x in env.log_lines() if "watch: started" in x]
    assert len(started) == 1  # the second never started
    env.write("a.dat", b"abc")
    wait_for("the first watch to send", lambda: (env.dst / "a.dat").exists())
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=30)
    second = watcher("--job", "other")  # another job is free to be served elsewhere
    assert second.poll() is None


def test_a_run_of_a_job_a_watch_serves_exits_75_and_the_other_jobs_run(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    _jobs(env)
    w = watcher("--job", "detector")
    res = env.cli("run", "--job", "detector", code=75)
    assert f"job 'detector' is served by 'watch' (pid {w.pid})" in res.stderr
    env.write("b.dat", b"xyz")
    res = env.cli("run", code=75)  # the most serious code wins; "other" ran
    assert "other:" in res.stdout
    assert "job 'detector' is served by 'watch'" in res.stderr
    w.send_signal(signal.SIGTERM)
    w.communicate(timeout=30)
    env.cli("run", "--job", "detector")  # free again once the watch is gone

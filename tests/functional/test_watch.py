"""`watch` as a service: files arrive without another command, signals, reload, metrics."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from .helpers import WAIT, CliEnv, assert_mirrored, free_port, job_toml, wait_for


def fast_job(**extra: object) -> str:
    return job_toml(settle="0s", interval="0.2s", batch_window="0s", **extra)


def test_files_arrive_without_another_command(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(fast_job())
    proc = watcher()
    for i in range(5):
        env.write(f"run1/frame_{i:05d}.tif", f"frame {i}" * 100)
    wait_for("files at the destination", lambda: len(list((env.dst / "run1").glob("*.tif"))) == 5)
    wait_for("the store to confirm them", lambda: env.status()["done"] == 5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert_mirrored(env.src, env.dst)
    st = env.status()
    assert (st["done"], st["queued"], st["in_flight"], st["failed"]) == (5, 0, 0, 0)
    assert any("watch: stopped" in line for line in env.log_lines())


def test_idle_cycles_log_nothing(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(fast_job())
    env.write("a.tif", "x")
    proc = watcher()
    wait_for("the file", lambda: (env.dst / "a.tif").exists())
    time.sleep(0.5)
    before = len(env.log_lines())
    time.sleep(2.0)  # about ten idle cycles
    assert len(env.log_lines()) == before
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=WAIT)
    assert proc.returncode == 0


def test_batch_window_makes_one_task_not_one_per_file(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(job_toml(settle="0s", interval="0.2s", batch_window="3s"))
    watcher()
    for i in range(6):
        env.write(f"f{i}.tif", str(i))
        time.sleep(0.2)  # files trickle in across several cycles
    wait_for("all files", lambda: env.status()["done"] == 6)
    tasks = json.loads(env.cli("tasks", "--json").stdout)["tasks"]
    assert [t["files"] for t in tasks] == [6]
    said = [x for x in env.log_lines() if "for the batch window; the batch goes at" in x]
    assert len(said) == 1, said  # once, however many cycles it waited
    assert "the batch goes at " in said[0] and "(batch_window 3 s)" in said[0]


def test_sigterm_mid_cycle_leaves_a_consistent_store_and_next_watch_carries_on(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(fast_job(max_files_per_task=20))
    proc = watcher()
    blob = b"\xab" * 200_000
    for i in range(300):
        env.write(f"d{i % 7}/f{i:04d}.bin", blob)
    wait_for("the first batch", lambda: env.db_path.exists() and any(env.dst.rglob("*.bin")))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=WAIT)
    assert proc.returncode == 0
    with env.db() as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM batches GROUP BY state").fetchall())
    assert set(states) <= {"succeeded"}, states  # nothing half-submitted
    # every confirmed file really is at the destination
    st = env.status()
    assert st["in_flight"] == 0
    arrived = sum(1 for _ in env.dst.rglob("*.bin"))
    assert arrived >= st["done"]
    proc2 = watcher()
    wait_for("the rest", lambda: env.status()["done"] == 300)
    proc2.send_signal(signal.SIGTERM)
    proc2.communicate(timeout=WAIT)
    assert_mirrored(env.src, env.dst)


def test_sighup_with_a_broken_config_keeps_the_old_one(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(fast_job())
    proc = watcher()
    env.config.write_text(fast_job() + "\n[[job]]\nname = 'broken'\nsettle = 'soon'\n")
    proc.send_signal(signal.SIGHUP)
    wait_for(
        "the reload to be refused",
        lambda: any("configuration not reloaded" in x for x in env.log_lines()),
    )
    env.write("after-hup.tif", "still running")
    wait_for("the file, on the old config", lambda: (env.dst / "after-hup.tif").exists())
    assert proc.poll() is None
    # a good config is taken: a second job appears
    other = env.root / "dst2"
    other.mkdir()
    env.config.write_text(
        fast_job()
        + job_toml(
            name="second", destination="dst2", settle="0s", interval="0.2s", batch_window="0s"
        )
    )
    proc.send_signal(signal.SIGHUP)
    wait_for("the reload", lambda: any("configuration reloaded" in x for x in env.log_lines()))
    wait_for("the second job's copy", lambda: (other / "after-hup.tif").exists())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=WAIT)
    assert proc.returncode == 0


def test_metrics_endpoint_answers_with_the_series(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(fast_job())
    env.write("m/a.tif", "12345")
    env.write("m/b.tif", "678")
    port = free_port()
    watcher("--metrics-port", str(port), "--metrics-address", "127.0.0.1")
    wait_for("the files", lambda: env.status()["done"] == 2)

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text: str = r.read().decode()
            return text

    text = scrape()
    assert 'globus_autosync_files{autosync_job="detector",state="done"} 2.0' in text
    for state in ("queued", "in_flight", "failed", "skipped", "waiting"):
        assert f'globus_autosync_files{{autosync_job="detector",state="{state}"}} 0.0' in text
    assert 'globus_autosync_bytes_done{autosync_job="detector"} 8.0' in text
    assert 'globus_autosync_lag_seconds{autosync_job="detector"}' in text
    assert 'globus_autosync_last_success_timestamp_seconds{autosync_job="detector"}' in text
    assert 'globus_autosync_cycle_duration_seconds{autosync_job="detector"}' in text


def test_the_metrics_server_listens_on_this_machine_only_by_default(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(fast_job())
    port = free_port()
    watcher("--metrics-port", str(port))
    wait_for("a cycle", lambda: env.status()["last_run"] is not None)

    def listening() -> set[str]:  # local addresses of the sockets listening on the port
        found = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(FileNotFoundError), open(table) as fh:
                for line in list(fh)[1:]:
                    local, state = line.split()[1], line.split()[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        found.add(local.rsplit(":", 1)[0])
        return found

    wait_for("the metrics server", lambda: bool(listening()))
    assert listening() == {"0100007F"}  # 127.0.0.1, not 0.0.0.0 (00000000) nor ::


def test_run_writes_a_metrics_textfile(env: CliEnv) -> None:
    env.write("a.tif", "abc")
    out = env.root / "metrics" / "autosync.prom"
    out.parent.mkdir()
    env.run("--metrics-file", str(out))
    text = out.read_text()
    assert 'globus_autosync_files{autosync_job="detector",state="done"} 1.0' in text
    assert 'globus_autosync_bytes_done{autosync_job="detector"} 3.0' in text


def test_run_and_watch_share_the_job_lock(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    import fcntl

    env.configure(fast_job())
    lock = env.state / "locks" / "detector.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # as a running `run` would
        watcher()
        env.write("x.tif", "x")
        time.sleep(1.5)
        assert not (env.dst / "x.tif").exists()  # watch waits for the lock
    wait_for("the file once the lock is free", lambda: (env.dst / "x.tif").exists())


def test_service_files_name_this_install(env: CliEnv) -> None:
    unit = env.cli("service", "systemd").stdout
    exec_line = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    assert exec_line.endswith(" watch")
    assert f"--config {env.config}" in exec_line
    assert f"--state-dir {env.state}" in exec_line
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    cron = env.cli("service", "cron").stdout.strip()
    assert cron.startswith("*/5 * * * * ")
    assert cron.endswith("--quiet run")
    assert f"--config {env.config}" in cron


def test_watch_keeps_syncing_while_a_command_hangs_and_kills_it_at_its_timeout(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(fast_job(on_done="batch", command=["sleep", "600"], command_timeout="8s"))
    proc = watcher()
    env.write("scan1/a.tif", "a" * 100)

    def first_action() -> dict[str, Any]:
        rows: list[dict[str, Any]] = json.loads(env.cli("tasks", "--json").stdout)["actions"]
        return min(rows, key=lambda a: int(a["action"])) if rows else {}

    wait_for("the command to start", lambda: first_action().get("state") == "running")
    for i in range(3):  # while it hangs, more files arrive and are sent
        env.write(f"scan2/frame_{i}.tif", f"frame {i}" * 50)
    wait_for("the new files", lambda: env.status()["done"] == 4)
    wait_for("the command to be killed", lambda: first_action().get("state") == "failed")
    killed = first_action()
    assert "command_timeout" in str(killed["reason"])
    # the new files' batch was sent and confirmed while the command ran (times to the second)
    batches = json.loads(env.cli("tasks", "--json").stdout)["tasks"]
    later = [b for b in batches if b["batch"] > 1]
    assert later
    assert all(str(killed["started"]) <= b["submitted"] for b in later)
    assert all(b["finished"] < str(killed["finished"]) for b in later)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert_mirrored(env.src, env.dst)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="change notices: inotify")
def test_a_change_notice_wakes_watch_long_before_its_interval(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    """With an interval of an hour, files arrive only because the kernel's notices wake watch;
    a directory replaced under it (renamed away, a new one made with its name) loses nothing."""
    env.configure(job_toml(settle="0s", interval="1h", batch_window="0s"))
    env.write("day/a.tif", "first a")
    proc = watcher()
    wait_for("the first file", lambda: (env.dst / "day" / "a.tif").exists())
    time.sleep(1.0)  # its confirmation's relisting is over
    env.write("day/b.tif", "b, noticed")
    wait_for("the noticed file", lambda: (env.dst / "day" / "b.tif").exists())
    (env.src / "day").rename(env.src / "day.old")
    env.write("day/a.tif", "second a, in a new day")
    env.write("day/c.tif", "c")
    wait_for(
        "the new day's files",
        lambda: (
            len(list((env.dst / "day").iterdir())) == 3
            and (env.dst / "day" / "a.tif").read_text() == "second a, in a new day"
        ),
    )
    wait_for(
        "the old day, under its new name",
        lambda: (
            sorted(p.name for p in (env.dst / "day.old").glob("*")) == ["a.tif", "b.tif"]
            if (env.dst / "day.old").is_dir()
            else False
        ),
    )
    env.write("day/d.tif", "d")
    wait_for("a file in the new day", lambda: (env.dst / "day" / "d.tif").exists())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=WAIT)
    assert proc.returncode == 0
    assert_mirrored(
        env.src, env.dst, ["day/a.tif", "day/c.tif", "day/d.tif", "day.old/a.tif", "day.old/b.tif"]
    )

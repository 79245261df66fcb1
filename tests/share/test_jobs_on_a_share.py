"""Jobs whose source (or destination) is a network share: the FUSE passthrough mount of
helpers.py, changed behind the mount as another machine would (its backing directory), hung (its
server SIGSTOPped) and unmounted. The tests' own process never touches the mount while it hangs:
the files another machine writes go into the backing directory, and every look at the tool's
state goes through the CLI, which reads the state directory only."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functional.helpers import CliEnv, job_toml, wait_for, watches

from .helpers import Share

WAIT = 30.0


@pytest.fixture
def env(tmp_path: Path) -> CliEnv:
    return CliEnv(tmp_path)


@pytest.fixture
def watcher(env: CliEnv) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `watch` (waiting until it has started); killed at the end if still there."""
    with watches(env) as start:
        yield start


def check_lines(env: CliEnv) -> tuple[int, str]:
    res = env.cli("status", "--check", code=None)
    return res.returncode, res.stdout + res.stderr


def share_job(share: Share, **keys: object) -> str:
    """A job whose source is the share, sent to ``dst_share``."""
    table = {"source": str(share.mountpoint), "destination": "dst_share", **keys}
    return job_toml("share", **table)


def test_another_machines_writes_to_a_share_reach_the_destination_under_watch(
    env: CliEnv, share: Share, watcher: Callable[[], subprocess.Popen[str]]
) -> None:
    (env.root / "dst_share").mkdir()
    env.configure(share_job(share, interval="2s", batch_window="0s"))
    out = env.cli("check").stdout
    assert "share: watch finds its changes by polling: fuse" in out, out
    (share.backing / "first.tif").write_bytes(b"first")
    proc = watcher()
    dst = env.root / "dst_share"
    wait_for("the first file", lambda: (dst / "first.tif").exists())
    assert any(f"source {share.mountpoint}: polling: fuse" in x for x in env.log_lines())
    time.sleep(1.5)  # the notices of its own cycle are over; what follows makes none
    (share.backing / "top.tif").write_bytes(b"top, from another machine")
    (share.backing / "run2").mkdir()
    (share.backing / "run2" / "deep.tif").write_bytes(b"deep, from another machine")
    # within interval + 2 s on a quiet machine; far less than the full walk's 24 h anyway
    wait_for(
        "another machine's files",
        lambda: (dst / "top.tif").exists() and (dst / "run2" / "deep.tif").exists(),
        timeout=15,
    )
    assert (dst / "run2" / "deep.tif").read_bytes() == b"deep, from another machine"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=WAIT)
    assert proc.returncode == 0


def test_a_hung_share_stalls_only_its_job_in_watch_is_said_from_outside_and_catches_up(
    env: CliEnv, share: Share, watcher: Callable[[], subprocess.Popen[str]]
) -> None:
    dst_share = env.root / "dst_share"
    dst_share.mkdir()
    env.configure(
        share_job(share, interval="0.5s", batch_window="0s", hang_after="3s"),
        job_toml("local", interval="0.5s", batch_window="0s"),
    )
    (share.backing / "a.tif").write_bytes(b"a")
    env.write("l1.tif", b"l1")
    proc = watcher()
    wait_for("both jobs' files", lambda: (dst_share / "a.tif").exists()
             and (env.dst / "l1.tif").exists())  # fmt: skip

    share.stop()
    (share.backing / "while_hung.tif").write_bytes(b"written while the server hung")
    env.write("l2.tif", b"l2")
    wait_for("the other job's file while the share hangs", lambda: (env.dst / "l2.tif").exists())
    wait_for("the hang said by status --check from another process",
             lambda: check_lines(env)[0] == 2, timeout=WAIT)  # fmt: skip
    code, out = check_lines(env)
    assert code == 2 and "share: FAILING: its source has not answered for" in out, out
    assert f"check the mount of {share.mountpoint}" in out
    assert "local: OK" in out
    env.write("l3.tif", b"l3")
    wait_for("the other job still going", lambda: (env.dst / "l3.tif").exists())
    assert not (dst_share / "while_hung.tif").exists()
    assert any("share: its source has not answered for" in x for x in env.log_lines())

    share.cont()
    wait_for("the share's job catching up", lambda: (dst_share / "while_hung.tif").exists())
    wait_for("health ok again", lambda: check_lines(env)[0] == 0, timeout=WAIT)
    assert any("share: answers again after" in x for x in env.log_lines())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=WAIT)
    assert proc.returncode == 0


def test_sigterm_stops_watch_within_10_s_while_a_share_hangs(
    env: CliEnv, share: Share, watcher: Callable[[], subprocess.Popen[str]]
) -> None:
    (env.root / "dst_share").mkdir()
    env.configure(share_job(share, interval="0.5s", batch_window="0s"))
    (share.backing / "a.tif").write_bytes(b"a")
    proc = watcher()
    wait_for("the first file", lambda: (env.root / "dst_share" / "a.tif").exists())
    share.stop()
    time.sleep(2.0)  # the next cycle is blocked on the mount by now
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert any("share: its cycle is still blocked" in x for x in env.log_lines())


def test_run_sends_the_other_jobs_while_a_share_hangs_and_exits_4_naming_it(
    env: CliEnv, share: Share
) -> None:
    (env.root / "dst_share").mkdir()
    env.configure(share_job(share, hang_after="2s"), job_toml("local"))
    (share.backing / "a.tif").write_bytes(b"a")
    env.write("l1.tif", b"l1")
    env.run()
    share.stop()
    (share.backing / "b.tif").write_bytes(b"b")
    env.write("l2.tif", b"l2")
    res = env.cli("run", code=4, timeout=WAIT)
    assert "job 'share': its source has not answered for" in res.stderr, res.stderr
    assert "this run goes on with the other jobs" in res.stderr
    assert (env.dst / "l2.tif").read_bytes() == b"l2"
    assert "Traceback" not in res.stderr
    out = check_lines(env)[1]  # the run is gone: its lock with it, so no hang is left
    assert "share: FAILING: its source" not in out

    # the next cron run, while it still hangs: the same, never piled up behind it
    env.write("l3.tif", b"l3")
    env.cli("run", code=4, timeout=WAIT)
    assert (env.dst / "l3.tif").exists()

    share.cont()
    env.run()
    assert (env.root / "dst_share" / "b.tif").read_bytes() == b"b"


@pytest.mark.parametrize("side", ["source", "destination"])
def test_an_unmounted_share_is_refused_not_synced_until_mounted_or_accepted(
    env: CliEnv, share: Share, side: str
) -> None:
    if side == "source":
        env.configure(job_toml(source=str(share.mountpoint), delete_after="1d"))
        (share.backing / "a.tif").write_bytes(b"a")
        root = share.mountpoint
    else:
        env.configure(job_toml(destination=str(share.mountpoint)))
        env.write("a.tif", b"a")
        root = share.mountpoint
    env.run()
    share.unmount()  # the mount point is left: an empty directory of the parent file system
    assert not share.mounted() and list(root.iterdir()) == []
    env.write("b.tif", b"b")
    res = env.cli("run", code=3)
    line = f"job 'detector': {side} {root} is not on the file system it was on"
    assert line in res.stderr and "not mounted?" in res.stderr, res.stderr
    assert "nothing was sent or deleted" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert list(root.iterdir()) == []  # nothing written into the bare mount point
    if side == "source":
        assert sorted(p.name for p in env.dst.iterdir()) == ["a.tif"]
        assert (share.backing / "a.tif").exists()
    code, out = check_lines(env)
    assert code == 2 and "detector: FAILING:" in out and "--accept-device" in out, out
    assert env.status()["health"]["state"] == "failing"

    accepted = env.cli("check", "--accept-device")
    assert f"detector: {side} {root} accepted on its file system" in accepted.stdout
    env.run(code=None)
    if side == "destination":
        assert (root / "b.tif").read_bytes() == b"b"  # a move made on purpose: sent there


def test_a_share_whose_server_died_is_one_line_and_exit_3_nothing_lost(
    env: CliEnv, share: Share
) -> None:
    env.configure(job_toml(source=str(share.mountpoint), delete_after="0s"))
    (share.backing / "a.tif").write_bytes(b"a")
    env.run()
    (share.backing / "b.tif").write_bytes(b"b")
    share.server.kill()  # the mount stays, and answers ENOTCONN to every call
    share.server.wait()
    res = env.cli("run", code=3)
    assert "source" in res.stderr and "Transport endpoint is not connected" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert (share.backing / "b.tif").exists()  # nothing deleted that was not sent

"""The network-share stand-in itself: what it shows, what inotify sees of it, how it hangs and
how it goes away."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import FUSE_SUPER_MAGIC, ROOT, Inotify, Nobody, Share, need_fuse, statfs_type

STAT = "import os, sys; os.stat(sys.argv[1]); print('answered')"
START = """import sys, time
from pathlib import Path
from tests.share.helpers import Share
share = Share(Path(sys.argv[1]), Path(sys.argv[2]))
print(share.pid, flush=True)
time.sleep(60)
"""


def wait_for(check: object, timeout: float) -> float:
    """Seconds until ``check()`` is true; fails after ``timeout``."""
    assert callable(check)
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not so after {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def test_a_fuse_mount_of_its_own(share: Share) -> None:
    assert statfs_type(share.mountpoint) == FUSE_SUPER_MAGIC
    assert statfs_type(share.mountpoint.parent) != FUSE_SUPER_MAGIC
    assert os.stat(share.mountpoint).st_dev != os.stat(share.mountpoint.parent).st_dev
    assert os.statvfs(share.mountpoint).f_blocks == os.statvfs(share.backing).f_blocks
    assert share.mounted() and share.server.poll() is None and share.pid == share.server.pid


def test_another_clients_writes_show_within_a_second(share: Share) -> None:
    seen = share.mountpoint / "old.dat"
    (share.backing / "old.dat").write_bytes(b"first")
    assert seen.read_bytes() == b"first"
    assert os.listdir(share.mountpoint) == ["old.dat"]  # the directory and the file now cached
    (share.backing / "new.dat").write_bytes(b"new")
    (share.backing / "old.dat").write_bytes(b"second, longer")
    (share.backing / "sub").mkdir()
    (share.backing / "sub" / "deep.dat").write_bytes(b"deep")
    waited = [
        wait_for(lambda: (share.mountpoint / "new.dat").exists(), 1.5),
        wait_for(lambda: seen.read_bytes() == b"second, longer", 1.5),
        wait_for(lambda: "sub" in os.listdir(share.mountpoint), 1.5),
    ]
    assert (share.mountpoint / "sub" / "deep.dat").read_bytes() == b"deep"
    assert max(waited) < 1.5
    (share.backing / "new.dat").unlink()
    wait_for(lambda: not (share.mountpoint / "new.dat").exists(), 1.5)


def test_writes_through_the_mount_land_in_the_backing_directory(share: Share) -> None:
    mnt, back = share.mountpoint, share.backing
    (mnt / "a.dat").write_bytes(b"hello world")
    assert (back / "a.dat").read_bytes() == b"hello world"
    with open(mnt / "a.dat", "r+b") as f:
        f.seek(6)
        f.write(b"share")
        f.flush()
        os.fsync(f.fileno())
    assert (back / "a.dat").read_bytes() == b"hello share"
    os.truncate(mnt / "a.dat", 5)
    os.chmod(mnt / "a.dat", 0o640)
    os.utime(mnt / "a.dat", ns=(1_500_000_000_000_000_000, 1_500_000_000_123_456_789))
    st = os.stat(back / "a.dat")
    assert (st.st_size, st.st_mode & 0o777, st.st_mtime_ns) == (5, 0o640, 1_500_000_000_123_456_789)
    assert os.stat(mnt / "a.dat").st_ino == st.st_ino  # inode numbers as the backing has them
    (mnt / "d").mkdir()
    os.rename(mnt / "a.dat", mnt / "d" / "b.dat")
    assert sorted(p.name for p in back.rglob("*")) == ["b.dat", "d"]
    os.symlink("b.dat", mnt / "d" / "link")
    assert os.readlink(back / "d" / "link") == "b.dat"
    (mnt / "d" / "b.dat").unlink()
    (mnt / "d" / "link").unlink()
    (mnt / "d").rmdir()
    assert os.listdir(back) == []


def test_inotify_sees_writes_through_the_mount_but_not_another_clients(share: Share) -> None:
    notices = Inotify()
    try:
        notices.add(share.mountpoint)
        (share.mountpoint / "local.dat").write_bytes(b"through the mount")
        events = notices.read(2.0)
        assert any(path.name == "local.dat" for path, _mask in events), events
        while notices.read(0.2):
            pass
        (share.backing / "remote.dat").write_bytes(b"another client")
        (share.backing / "local.dat").write_bytes(b"rewritten elsewhere")
        # the mount shows both changes, yet no notice of either comes
        wait_for(lambda: (share.mountpoint / "remote.dat").exists(), 1.5)
        wait_for(
            lambda: (share.mountpoint / "local.dat").read_bytes() == b"rewritten elsewhere", 1.5
        )
        assert notices.read(1.5) == []
    finally:
        notices.close()


def test_a_stopped_server_hangs_calls_until_continued(share: Share) -> None:
    (share.backing / "late.dat").write_bytes(b"x")
    share.stop()
    hung = share.child(STAT, str(share.mountpoint / "late.dat"))
    time.sleep(2.0)
    assert hung.poll() is None  # still in its stat
    share.cont()
    out, _err = hung.communicate(timeout=10)
    assert (hung.returncode, out) == (0, b"answered\n")


def test_a_stopped_server_is_continued_by_itself_after_at_most(share: Share) -> None:
    (share.backing / "late.dat").write_bytes(b"x")
    share.stop(at_most=1.0)
    hung = share.child(STAT, str(share.mountpoint / "late.dat"))
    out, _err = hung.communicate(timeout=10)
    assert (hung.returncode, out) == (0, b"answered\n")


def test_unmounted_while_stopped_the_calls_hung_end_when_continued(share: Share) -> None:
    (share.backing / "late.dat").write_bytes(b"x")
    share.stop()
    hung = share.child(STAT, str(share.mountpoint / "late.dat"))
    time.sleep(0.5)
    share.unmount()
    assert not share.mounted() and os.listdir(share.mountpoint) == []
    assert hung.poll() is None
    share.cont()
    assert hung.wait(timeout=10) == 0


def test_unmounted_leaves_an_empty_mount_point_on_the_parents_device(share: Share) -> None:
    (share.backing / "kept.dat").write_bytes(b"x")
    share.unmount()
    assert not share.mounted()
    assert os.stat(share.mountpoint).st_dev == os.stat(share.mountpoint.parent).st_dev
    assert os.listdir(share.mountpoint) == []
    assert statfs_type(share.mountpoint) != FUSE_SUPER_MAGIC
    assert (share.backing / "kept.dat").exists()
    assert share.server.wait(timeout=5) == 0  # the server ends with its mount


@pytest.mark.parametrize("trouble", ["stopped with a call hung", "killed"])
def test_the_end_removes_the_mount_whatever_the_server_went_through(
    tmp_path: Path, trouble: str
) -> None:
    need_fuse()
    mounted = Share(tmp_path / "b", tmp_path / "m")
    (mounted.backing / "f").write_bytes(b"x")
    hung = None
    if trouble == "killed":
        os.kill(mounted.pid, signal.SIGKILL)
        mounted.server.wait(timeout=5)
        gone = mounted.run(STAT, str(mounted.mountpoint / "f"))
        assert "Transport endpoint is not connected" in gone.stderr
    else:
        mounted.stop()
        hung = mounted.child(STAT, str(mounted.mountpoint / "f"))
        time.sleep(0.5)
        assert hung.poll() is None
    start = time.monotonic()
    mounted.close()
    assert time.monotonic() - start < 10
    assert not mounted.mounted() and os.listdir(mounted.mountpoint) == []
    assert mounted.server.poll() is not None
    assert hung is None or hung.poll() is not None
    mounted.close()  # twice does no harm


def test_as_nobody_is_bound_by_permissions_on_the_share_too(as_nobody: Nobody) -> None:
    assert as_nobody.run("id -u; id -g; id -G").stdout.split() == ["65534"] * 3
    need_fuse()
    mounted = Share(as_nobody.workdir / "b", as_nobody.workdir / "m")
    try:
        secret = mounted.backing / "secret"
        secret.mkdir(mode=0o700)
        (secret / "f").write_bytes(b"x")
        (mounted.backing / "open.dat").write_bytes(b"open")
        listing = as_nobody.run(["ls", str(mounted.mountpoint / "secret")])
        assert listing.returncode != 0 and "Permission denied" in listing.stderr
        assert as_nobody.run(["cat", str(mounted.mountpoint / "open.dat")]).stdout == "open"
        assert as_nobody.run(["cat", str(secret / "f")]).returncode != 0  # as on a local disk
        os.chmod(mounted.backing, 0o777)
        made = as_nobody.run(["touch", str(mounted.mountpoint / "mine")])
        assert made.returncode == 0, made.stderr
        assert os.stat(mounted.backing / "mine").st_uid == as_nobody.uid  # owned by its maker
    finally:
        mounted.close()


def test_the_server_dies_with_the_tests_process(tmp_path: Path) -> None:
    need_fuse()
    starter = subprocess.Popen(
        [sys.executable, "-c", START, str(tmp_path / "b"), str(tmp_path / "m")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert starter.stdout is not None
    server = int(starter.stdout.readline())
    try:
        starter.kill()  # no teardown: only the server's own end can help
        starter.wait(timeout=5)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{server}").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server, signal.SIGKILL)
        subprocess.run(
            ["fusermount3", "-u", "-z", str(tmp_path / "m")], check=False, capture_output=True
        )
        starter.stdout.close()

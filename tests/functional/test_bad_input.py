"""Files and trees that cannot be sent as they are: each is logged with its path and counted, the
rest of the run completes, the exit code is 1, and once the cause is gone the next run sends it."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from globus_autosync import cli
from globus_autosync.transports.base import Item
from globus_autosync.transports.local import filecopy
from globus_autosync.transports.local import transport as local

from .helpers import (
    CliEnv,
    assert_mirrored,
    mounted_tmpfs,
    part_files,
    tree,
    unprivileged_prefix,
)

TRANSFERS = (1, 4)  # each test that uses ``env`` runs with 1 and with 4 copy workers


def _unprivileged() -> list[str]:
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("running as root without setpriv able to drop CAP_DAC_OVERRIDE")
    return prefix


def _summary(res: subprocess.CompletedProcess[str]) -> str:
    return res.stdout.strip().splitlines()[-1]


def test_unreadable_file(env: CliEnv) -> None:
    prefix = _unprivileged()
    env.write("ok/a.dat", "a")
    secret = env.write("ok/secret.dat", "s")
    env.write("ok/z.dat", "z")
    secret.chmod(0)
    res = env.cli("run", prefix=prefix, code=1)
    assert "failed 1" in _summary(res) or "skipped 1" in _summary(res)
    assert "ok/secret.dat" in res.stderr
    assert "ok/secret.dat" in "\n".join(env.log_lines())
    assert sorted(tree(env.dst)) == ["ok/a.dat", "ok/z.dat"]
    assert part_files(env.dst) == []
    problems = env.status()["problems"]
    assert [p["path"] for p in problems] == ["ok/secret.dat"]
    assert "ermission denied" in problems[0]["reason"]
    secret.chmod(0o644)  # the cause is fixed: the next run sends it
    env.cli("run", prefix=prefix)
    assert_mirrored(env.src, env.dst)
    st = env.status()
    assert (st["done"], st["failed"], st["skipped"], st["problems"]) == (3, 0, 0, [])


def test_permission_failures_in_a_parallel_batch(env: CliEnv) -> None:
    """One unreadable source file and a destination directory that refuses writes, in one
    batch copied by several workers: those files fail with the reason, the others arrive."""
    prefix = _unprivileged()
    for i in range(30):
        env.write(f"frames/{i:03}.tif", os.urandom(20_000 + i))
    for i in range(4):
        env.write(f"locked/{i}.tif", os.urandom(1000))
    secret = env.src / "frames" / "013.tif"
    secret.chmod(0)
    (env.dst / "locked").mkdir()
    (env.dst / "locked").chmod(0o555)
    res = env.cli("run", prefix=prefix, code=1)
    assert "failed 5" in _summary(res)
    expected = sorted(f"frames/{i:03}.tif" for i in range(30) if i != 13)
    assert sorted(tree(env.dst)) == expected
    assert_mirrored(env.src, env.dst, expected)
    assert part_files(env.dst) == []
    problems = {p["path"]: p["reason"] for p in env.status()["problems"]}
    assert sorted(problems) == ["frames/013.tif"] + [f"locked/{i}.tif" for i in range(4)]
    assert all("ermission denied" in reason for reason in problems.values()), problems
    secret.chmod(0o644)  # both causes fixed: the next run sends them
    (env.dst / "locked").chmod(0o755)
    env.cli("run", prefix=prefix)
    assert_mirrored(env.src, env.dst)
    st = env.status()
    assert (st["done"], st["failed"], st["problems"]) == (34, 0, [])


def test_unreadable_directory(env: CliEnv) -> None:
    prefix = _unprivileged()
    env.write("a.dat", "a")
    env.write("locked/inside.dat", "i")
    env.write("open/b.dat", "b")
    (env.src / "locked").chmod(0)
    res = env.cli("run", prefix=prefix, code=1)
    assert "skipped 1" in _summary(res) or "failed 1" in _summary(res)
    assert "locked" in res.stderr
    assert "locked" in "\n".join(env.log_lines())
    assert sorted(tree(env.dst)) == ["a.dat", "open/b.dat"]
    (env.src / "locked").chmod(0o755)
    env.cli("run", prefix=prefix)
    assert_mirrored(env.src, env.dst)


def test_an_unlistable_directory_and_a_failed_file_are_said_for_as_long_as_they_last(
    env: CliEnv,
) -> None:
    """Not only in the first run's summary: in status, status --check and health, on every run
    until fixed; failing after alert_after walks (or attempts)."""
    prefix = _unprivileged()
    env.configure(env.job(alert_after=2))
    env.write("a.dat", "a")
    env.write("locked/inside.dat", "i")
    (env.src / "locked").chmod(0)
    env.cli("run", prefix=prefix, code=1)
    check = env.cli("status", "--check", code=1)
    assert "detector: WAITING: a source directory could not be listed, once" in check.stdout
    assert "(e.g. locked/: cannot list directory: Permission denied)" in check.stdout
    problems = {p["path"]: (p["state"], p["reason"]) for p in env.status()["problems"]}
    assert problems == {"locked/": ("unlistable", "cannot list directory: Permission denied")}
    assert "unlistable: locked/: cannot list directory" in env.cli("status").stdout
    env.cli("run", prefix=prefix, code=1)  # a second run: still said, now failing
    check = env.cli("status", "--check", code=2)
    assert "FAILING: a source directory could not be listed, 2 walks in a row" in check.stdout
    (env.src / "locked").chmod(0o755)
    env.cli("run", prefix=prefix)
    assert env.cli("status", "--check").stdout.strip() == "detector: OK"

    secret = env.write("secret.dat", "s")
    secret.chmod(0)
    env.cli("run", prefix=prefix, code=1)
    check = env.cli("status", "--check", code=1)
    assert "WAITING: 1 file failed (latest secret.dat: cannot read: Permission denied)" in (
        check.stdout
    )
    env.cli("run", prefix=prefix, code=1)
    check = env.cli("status", "--check", code=2)
    assert "FAILING: 1 file failed 2 times or more (latest secret.dat: cannot read" in check.stdout
    secret.chmod(0o644)
    with env.db() as conn:  # its next try is 30 s away: be there
        conn.execute("UPDATE files SET next_try = 0")
        conn.commit()
    env.cli("run", prefix=prefix)
    assert_mirrored(env.src, env.dst)
    assert env.cli("status", "--check").stdout.strip() == "detector: OK"
    assert env.status()["problems"] == []


def test_destination_not_writable_is_exit_3(env: CliEnv) -> None:
    prefix = _unprivileged()
    env.write("a.dat", "a")
    env.dst.chmod(0o555)
    try:
        res = env.cli("run", prefix=prefix, code=3)
        assert str(env.dst) in res.stderr
        res = env.cli("check", prefix=prefix, code=3)
        assert any(
            line.startswith("FAIL") and str(env.dst) in line for line in res.stdout.splitlines()
        )
    finally:
        env.dst.chmod(0o755)
    env.cli("run", prefix=prefix)
    assert_mirrored(env.src, env.dst)


def test_a_job_that_cannot_run_is_exit_3(env: CliEnv) -> None:
    env.write("a.dat", "a")
    env.dst.rmdir()
    res = env.run(code=3)
    assert str(env.dst) in res.stderr
    assert "Traceback" not in res.stderr
    env.dst.mkdir()
    shutil.rmtree(env.src)
    res = env.run(code=3)
    assert str(env.src) in res.stderr
    # with two jobs, the one that can run still runs
    (env.root / "src2").mkdir()
    (env.root / "src2" / "b.dat").write_text("b")
    env.configure(env.job(), env.job(name="fine", source="src2"))
    res = env.run(code=3)
    assert (env.dst / "b.dat").read_text() == "b"


def test_unusable_store_is_exit_3(env: CliEnv) -> None:
    env.write("a.dat", "a")
    env.state.mkdir()
    env.db_path.write_bytes(b"garbage, not SQLite " * 200)
    for args in (["run"], ["run", "--dry-run"], ["status"], ["tasks"], ["baseline"]):
        res = env.cli(*args, code=3)
        assert "state.db" in res.stderr, args
        assert "Traceback" not in res.stderr
    assert tree(env.dst) == {}
    # a state directory that cannot be created
    blocker = env.root / "a-file"
    blocker.write_text("")
    res = env.cli("--state-dir", str(blocker / "state"), "run", code=3)
    assert "Traceback" not in res.stderr
    assert tree(env.dst) == {}


ODD_NAMES = [
    b"caf\xe9.dat",  # Latin-1, not UTF-8
    b"two\nlines.dat",
    b"back\\slash.dat",
    b"looks\\xff.dat",  # a backslash that reads as an escape
    b"-dash.dat",
    b"tab\there.dat",
    b"dir\xffx/inside\xfe.dat",
]


def _bytes_tree(top: Path) -> dict[bytes, bytes]:
    """Every regular file below ``top`` by its path in bytes, as the file system holds it."""
    out: dict[bytes, bytes] = {}
    root = os.fsencode(top)
    for dirpath, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as fh:
                out[os.path.relpath(os.path.join(dirpath, name), root)] = fh.read()
    return out


def test_any_name_reaches_a_local_destination_byte_for_byte(env: CliEnv) -> None:
    src = os.fsencode(env.src)
    for i, rel in enumerate(ODD_NAMES):
        os.makedirs(os.path.dirname(src + b"/" + rel), exist_ok=True)
        with open(src + b"/" + rel, "wb") as fh:
            fh.write(b"file %d" % i)
    res = env.run()
    assert f"sent {len(ODD_NAMES)}" in _summary(res) and "skipped 0" in _summary(res)
    env.run()  # confirms (a second batch would show in "sent")
    assert _bytes_tree(env.dst) == _bytes_tree(env.src)  # the same names, the same bytes
    st = env.status()
    assert st["done"] == len(ODD_NAMES) and st["problems"] == []
    assert "sent 0" in _summary(env.run())  # nothing sent twice
    # the store keeps the directory's name printable, and the log is all UTF-8
    with env.db() as db:
        assert ("dir\\xffx",) in db.execute("SELECT name FROM dirs").fetchall()
    assert env.log_path.read_bytes().decode("utf-8")
    # changed: sent again, under its own name
    with open(src + b"/caf\xe9.dat", "wb") as fh:
        fh.write(b"changed")
    os.utime(src, (0, 0))
    assert "sent 1" in _summary(env.run("--full"))
    assert _bytes_tree(env.dst) == _bytes_tree(env.src)
    # one that cannot be written is shown as printable, in the log, status and tasks --json
    os.unlink(src + b"/two\nlines.dat")
    os.unlink(os.fsencode(env.dst) + b"/two\nlines.dat")
    env.write("two\nlines.dat", "again")
    os.makedirs(os.fsencode(env.dst) + b"/two\nlines.dat/in-the-way")
    res = env.run(code=1)
    assert "two\\nlines.dat" in res.stderr
    assert any("two\\nlines.dat" in line for line in env.log_lines())
    [problem] = env.status()["problems"]
    assert problem["path"] == "two\\nlines.dat" and problem["state"] == "failed"
    assert "two\\nlines.dat" in env.cli("status").stdout


def test_symlinks_skipped(env: CliEnv) -> None:
    env.write("real/a.dat", "a")
    (env.src / "link.dat").symlink_to(env.src / "real" / "a.dat")
    (env.src / "linkdir").symlink_to(env.src / "real")
    res = env.run(code=1)
    assert "skipped 2" in _summary(res)
    assert "link.dat" in res.stderr
    assert "symbolic link" in res.stderr
    assert sorted(tree(env.dst)) == ["real/a.dat"]
    assert not (env.dst / "link.dat").exists()
    assert not (env.dst / "linkdir").exists()


def test_symlinks_followed_with_loops_detected(env: CliEnv) -> None:
    env.configure(env.job(symlinks="follow"))
    env.write("real/a.dat", "a")
    (env.src / "link.dat").symlink_to(env.src / "real" / "a.dat")
    (env.src / "linkdir").symlink_to("real")
    (env.src / "real" / "loop").symlink_to("..")  # real/loop -> the source itself
    (env.src / "dangling.dat").symlink_to("nothing-here")
    res = env.run(code=1)
    assert "loop" in res.stderr
    assert "dangling.dat" in res.stderr
    got = tree(env.dst)
    assert got["link.dat"] == b"a"
    assert got["linkdir/a.dat"] == b"a"
    assert not (env.dst / "link.dat").is_symlink()  # the target's content, as a file
    assert all(k.count("loop") <= 1 for k in got)  # went round the loop at most once
    assert len(got) < 10


def test_special_files_are_skipped(env: CliEnv) -> None:
    env.write("a.dat", "a")
    os.mkfifo(env.src / "pipe")
    res = env.run(code=1)
    assert "pipe" in res.stderr
    assert "not a regular file" in res.stderr
    assert sorted(tree(env.dst)) == ["a.dat"]


def test_a_directory_replaced_by_a_file(env: CliEnv) -> None:
    env.write("sub/a.dat", "a")
    env.write("sub/deeper/b.dat", "b")
    env.write("other.dat", "o")
    env.run()
    shutil.rmtree(env.src / "sub")
    env.write("sub", "now a file")
    env.write("new.dat", "n")
    res = env.run(code=1)  # the destination still holds the directory: never deleted
    assert "failed 1" in _summary(res)
    assert "sub" in res.stderr
    assert (env.dst / "new.dat").read_text() == "n"
    assert (env.dst / "sub" / "a.dat").read_text() == "a"
    assert part_files(env.dst) == []
    # whoever owns the destination moves the old directory away: the file follows
    (env.dst / "sub").rename(env.root / "old-sub")
    env.run()
    assert (env.dst / "sub").read_text() == "now a file"
    st = env.status()
    assert (st["failed"], st["queued"], st["in_flight"]) == (0, 0, 0)
    # and back again: a directory where a file was sent
    (env.src / "sub").unlink()
    env.write("sub/c.dat", "c")
    env.run(code=1)
    (env.dst / "sub").unlink()
    env.run()
    assert (env.dst / "sub" / "c.dat").read_text() == "c"


# -- in-process: the faults a test cannot easily cause from outside ----------------------------


def _main(env: CliEnv, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the CLI in this process (so that a test can patch it); answers the exit code."""
    monkeypatch.setenv("GLOBUS_AUTOSYNC_STATE_DIR", str(env.state))
    monkeypatch.setenv("GLOBUS_AUTOSYNC_CONFIG", str(env.config))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    code = exit_info.value.code
    assert isinstance(code, int)
    return code


def _patch_send(
    monkeypatch: pytest.MonkeyPatch, before: Callable[[local.LocalTransport, Item], None]
) -> None:
    real = local.LocalTransport._stage

    def stage(self: local.LocalTransport, item: Item) -> object:
        before(self, item)
        return real(self, item)

    monkeypatch.setattr(local.LocalTransport, "_stage", stage)


@pytest.mark.usefixtures("clean_logging")
def test_a_file_that_vanishes_before_it_is_copied(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.write("d/a.dat", "a")
    env.write("d/gone.dat", "g")
    env.write("d/z.dat", "z")

    def vanish(t: local.LocalTransport, item: Item) -> None:
        if item.relpath == "d/gone.dat":
            (env.src / item.relpath).unlink()

    _patch_send(monkeypatch, vanish)
    assert _main(env, monkeypatch, "run") == 1
    out, err = capsys.readouterr()
    assert "skipped 1" in out
    assert "d/gone.dat" in err
    assert sorted(tree(env.dst)) == ["d/a.dat", "d/z.dat"]
    monkeypatch.undo()
    env.run()  # a vanished file is simply forgotten
    assert env.status()["skipped"] == 0
    env.write("d/gone.dat", "back")  # and sent if it comes back
    env.run()
    assert_mirrored(env.src, env.dst)


@pytest.mark.usefixtures("clean_logging")
def test_a_file_that_changes_while_it_is_copied(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.write("d/a.dat", "a")
    env.write("d/growing.dat", "first part")

    def append(t: local.LocalTransport, item: Item) -> None:
        if item.relpath == "d/growing.dat":
            with open(env.src / item.relpath, "a") as fh:
                fh.write(" and more")

    _patch_send(monkeypatch, append)
    assert _main(env, monkeypatch, "run") == 0
    assert not (env.dst / "d" / "growing.dat").exists()  # never a half-written file
    monkeypatch.undo()
    env.run()
    assert (env.dst / "d" / "growing.dat").read_text() == "first part and more"
    assert_mirrored(env.src, env.dst)


@pytest.mark.usefixtures("clean_logging")
def test_destination_full_in_process(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.write("a.dat", "a")
    env.write("big.dat", os.urandom(300_000))
    env.write("z.dat", "z")
    real = filecopy.copy_data

    def full_disk(src: int, dst: int, size: int) -> int:
        if size > 100_000:
            os.write(dst, b"x" * 1000)  # some of it got through
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, size)

    monkeypatch.setattr(filecopy, "copy_data", full_disk)
    assert _main(env, monkeypatch, "run") == 1
    out, err = capsys.readouterr()
    assert "failed 1" in out
    assert "big.dat" in err
    assert "No space left on device" in err
    assert sorted(tree(env.dst)) == ["a.dat", "z.dat"]  # no partial file, no temp file
    monkeypatch.undo()
    env.run()  # space freed: the next run sends it
    assert_mirrored(env.src, env.dst)
    st = env.status()
    assert (st["done"], st["failed"]) == (3, 0)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs (needs root and permission to mount; skipped otherwise)."""
    with mounted_tmpfs(tmp_path / "tiny", "1m") as where:
        yield where


@pytest.mark.parametrize("transfers", [1, 4])
def test_destination_full_on_a_real_filesystem(
    tmp_path: Path, tiny_tmpfs: Path, transfers: int
) -> None:
    (tmp_path / "job").mkdir()
    env = CliEnv(tmp_path / "job", transfers)
    dst = tiny_tmpfs / "dst"
    dst.mkdir()
    env.configure(env.job(source=str(env.src), destination=str(dst)))
    env.write("a.dat", os.urandom(100_000))
    env.write("huge.dat", os.urandom(2_000_000))
    env.write("z.dat", os.urandom(100_000))
    res = env.run(code=1)
    assert "huge.dat" in res.stderr
    assert "No space left on device" in res.stderr
    arrived = sorted(tree(dst))  # no temporary copy left, nothing torn
    if transfers == 1:
        assert arrived == ["a.dat", "z.dat"]  # one at a time: only the file too big fails
    else:  # copied beside the huge one while it filled the disk, the small ones may fail too
        assert set(arrived) <= {"a.dat", "z.dat"}
    assert f"confirmed {len(arrived)}, failed {3 - len(arrived)}" in _summary(res)
    if arrived:  # (with 4 workers all three may fail: the small ones too found the disk full)
        assert_mirrored(env.src, dst, arrived)
    subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_tmpfs)], check=True)
    env.run()
    assert_mirrored(env.src, dst)
    assert part_files(dst) == []


def test_a_full_state_disk_is_one_line_and_loses_nothing(tmp_path: Path, tiny_tmpfs: Path) -> None:
    """The state directory's file system fills up in the middle of a run (here a 1 MB tmpfs):
    the run says so in one line (exit 3, no traceback), the store stays as its last committed
    transaction left it, and once there is room the next run finishes the job, sending nothing
    twice."""
    (tmp_path / "job").mkdir()
    env = CliEnv(tmp_path / "job")
    env.state = tiny_tmpfs / "state"
    for i in range(3):
        env.write(f"first/f{i}.dat", b"x" * 10)
    env.run()
    assert sorted(tree(env.dst)) == [f"first/f{i}.dat" for i in range(3)]
    filler = tiny_tmpfs / "filler"
    # fill the state disk to the last block
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 4096)
    names = [f"second/run_{i:05d}_with_a_long_detector_file_name.tif" for i in range(300)]
    for name in names:
        env.write(name, b"y")
    res = env.run(code=3)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "state database" in lines[0] and "full" in lines[0]
    assert "free space" in lines[0] and "Traceback" not in res.stderr
    assert "move it aside" not in lines[0]  # nothing is wrong with the database itself
    filler.unlink()
    res = env.run()
    assert "sent 300" in res.stdout and "confirmed 300" in res.stdout
    assert "sent 0 " in env.run().stdout
    assert_mirrored(env.src, env.dst)
    with env.db() as db:
        done = db.execute("SELECT SUM(nfiles) FROM dirs").fetchone()[0]
        assert done == 303
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

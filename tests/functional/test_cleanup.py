"""Source cleanup end to end: a source file is deleted only once its copy is confirmed and
verified, never when it changed, never twice, and every deletion is in the audit log."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import (
    LONG_AGO,
    CliEnv,
    age_dirs,
    assert_mirrored,
    job_toml,
    mounted_tmpfs,
    tree,
    unprivileged_prefix,
)


def audit(env: CliEnv) -> list[dict[str, Any]]:
    path = env.state / "log" / "deletions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def write_frames(env: CliEnv, count: int, folder: str = "scan", size: int = 64) -> list[str]:
    rels = []
    for i in range(count):
        rel = f"{folder}/frame_{i:05}.tif"
        env.write(rel, os.urandom(size), mtime=LONG_AGO + i)
        rels.append(rel)
    return rels


def age_confirmations(env: CliEnv, seconds: float = 86400) -> None:
    """As if every candidate had been confirmed ``seconds`` earlier."""
    with env.db() as db:
        db.execute("UPDATE cleanup SET confirmed = confirmed - ?", (seconds,))
        db.commit()


def candidates(env: CliEnv) -> int:
    with env.db() as db:
        return int(db.execute("SELECT COUNT(*) FROM cleanup").fetchone()[0])


def test_deleted_after_delete_after_not_before(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="1h"))
    rels = write_frames(env, 5)
    res = env.run()
    assert "confirmed 5" in res.stdout and "deleted" not in res.stdout
    assert_mirrored(env.src, env.dst)
    env.run()  # the copies are confirmed, but not for an hour yet
    assert sorted(tree(env.src)) == rels
    assert candidates(env) == 5
    age_confirmations(env, 3601)
    res = env.run()
    assert "deleted 5 (320 B)" in res.stdout
    assert tree(env.src) == {}
    assert sorted(tree(env.dst)) == rels  # the copies stay
    assert not (env.src / "scan").exists()  # left empty by cleanup: removed
    assert env.src.is_dir()  # never the root
    lines = audit(env)
    assert [e["source"] for e in lines] == [str(env.src / r) for r in rels]
    first = lines[0]
    assert first["destination"] == str(env.dst / rels[0])
    assert (first["job"], first["size"], first["mtime_ns"]) == ("detector", 64, LONG_AGO * 10**9)
    with env.db() as db:
        task = db.execute("SELECT id, task_id FROM batches").fetchone()
    assert (first["batch"], first["task_id"]) == tuple(task)
    st = env.status()
    assert st["cleanup"]["deleted_files"] == 5
    assert st["cleanup"]["deleted_bytes"] == 320
    assert st["cleanup"]["waiting"] == 0
    assert st["cleanup"]["last_deleted"] is not None
    assert st["cleanup"]["source_free_bytes"] > 0
    assert candidates(env) == 0
    # what was confirmed never goes down: the life totals and the counters stay
    assert (st["confirmed_total"], st["confirmed_bytes_total"]) == (5, 320)
    human = env.cli("status").stdout
    assert "confirmed 5 (320 B) over its life, 5 of them since deleted from the source" in human
    text = env.metrics()
    assert 'globus_autosync_confirmed_files_total{autosync_job="detector"} 5.0' in text
    assert 'globus_autosync_confirmed_bytes_total{autosync_job="detector"} 320.0' in text
    assert 'globus_autosync_deleted_files_total{autosync_job="detector"} 5.0' in text


def test_zero_delete_after_waits_for_the_next_cycle(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s"))
    write_frames(env, 3)
    res = env.run()
    assert "confirmed 3" in res.stdout
    assert len(tree(env.src)) == 3  # not in the cycle that confirmed them
    res = env.run()
    assert "deleted 3" in res.stdout
    assert tree(env.src) == {}
    assert len(audit(env)) == 3


def test_cleanup_off_by_default_deletes_nothing(env: CliEnv) -> None:
    write_frames(env, 3)
    env.run()
    assert candidates(env) == 0
    env.run()
    assert len(tree(env.src)) == 3
    assert env.status()["cleanup"] is None
    assert audit(env) == []
    assert "cleanup: off" in env.cli("check").stdout


def test_dry_run_lists_and_deletes_nothing(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s"))
    rels = write_frames(env, 3)
    env.run()
    res = env.run("--dry-run")
    assert [line for line in res.stdout.splitlines() if line.startswith("would delete ")] == [
        f"would delete {r}" for r in rels
    ]
    assert sorted(tree(env.src)) == rels
    assert audit(env) == []
    assert candidates(env) == 3
    (env.src / rels[0]).write_bytes(b"changed since it was confirmed")
    res = env.run("--dry-run")
    assert "would delete " + rels[0] not in res.stdout
    assert "would delete " + rels[1] in res.stdout
    assert "deleted 2" in env.run().stdout


def test_max_deletes_per_cycle(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s", max_deletes=4, delete_empty_dirs=False))
    write_frames(env, 10)
    env.run()
    left = []
    for _ in range(3):
        res = env.run()
        left.append(len(tree(env.src)))
        assert "deleted" in res.stdout
    assert left == [6, 2, 0]
    assert (env.src / "scan").is_dir()  # delete_empty_dirs = false
    assert len(audit(env)) == 10


def test_a_file_modified_after_confirmation_is_sent_again_not_deleted(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="1h"))
    rels = write_frames(env, 3)
    env.run()
    age_dirs(env.src)
    env.run()  # the directories are known, and not listed again while their mtime stays
    changed = env.src / rels[1]
    changed.write_bytes(b"rewritten in place")  # the directory's mtime does not move
    os.utime(changed, (LONG_AGO + 99, LONG_AGO + 99))
    age_confirmations(env)
    res = env.run(code=None)
    assert "deleted 2" in res.stdout
    assert changed.read_bytes() == b"rewritten in place"
    env.run()
    assert (env.dst / rels[1]).read_bytes() == b"rewritten in place"
    assert [e["source"] for e in audit(env)] == [str(env.src / r) for r in (rels[0], rels[2])]
    age_confirmations(env)
    assert "deleted 1" in env.run().stdout  # the new version, once confirmed and due
    assert tree(env.src) == {}
    assert audit(env)[-1]["size"] == len(b"rewritten in place")


def test_a_file_replaced_with_the_same_size_and_mtime_is_not_deleted(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="1h"))
    rels = write_frames(env, 2)
    env.run()
    target = env.src / rels[0]
    replacement = env.root / "other.tif"
    replacement.write_bytes(b"x" * 64)
    os.utime(replacement, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns))
    os.replace(replacement, target)  # another inode, the same size and mtime
    age_confirmations(env)
    res = env.run()
    assert "deleted 1" in res.stdout
    assert target.read_bytes() == b"x" * 64
    res = env.run()
    assert "sent 1" in res.stdout  # sent again (the local transport finds the same size+mtime)
    with env.db() as db:
        (ino,) = db.execute("SELECT ino FROM cleanup WHERE name=?", (target.name,)).fetchone()
    assert ino == target.stat().st_ino  # a candidate again, as the file it is now
    age_confirmations(env)
    assert "deleted 1" in env.run().stdout
    assert audit(env)[-1]["ino"] == ino


@pytest.mark.parametrize("damage", ["removed", "truncated"])
def test_a_damaged_copy_is_sent_again_and_the_source_kept(env: CliEnv, damage: str) -> None:
    env.configure(job_toml(delete_after="1h"))
    rels = write_frames(env, 3, size=1000)
    env.run()
    copy = env.dst / rels[0]
    if damage == "removed":
        copy.unlink()
    else:
        with open(copy, "r+b") as fh:
            fh.truncate(10)
    age_confirmations(env)
    res = env.run()
    assert "deleted 2" in res.stdout
    assert (env.src / rels[0]).exists()
    assert any("sending it again" in line and rels[0] in line for line in env.log_lines())
    env.run()  # sent again
    assert_mirrored(env.src, env.dst, [rels[0]])
    age_confirmations(env)
    assert "deleted 1" in env.run().stdout
    assert tree(env.src) == {}


def test_a_new_file_under_a_deleted_name_is_sent(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s", delete_empty_dirs=False))
    (rel,) = write_frames(env, 1)
    env.run()
    env.run()
    assert tree(env.src) == {}
    env.write(rel, b"a new frame, same name, same mtime" * 2, mtime=LONG_AGO)
    (env.dst / rel).write_bytes(b"old")
    os.utime(env.dst / rel, (LONG_AGO, LONG_AGO))
    res = env.run()
    assert "sent 1" in res.stdout
    assert_mirrored(env.src, env.dst, [rel])


def test_excluded_young_and_unsettled_files_are_never_deleted(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s"))
    rels = write_frames(env, 3)
    env.write("scan/new.tif", b"modified just now")  # settle 0s: it is sent at once
    env.run()
    env.configure(job_toml(delete_after="0s", settle="1h", exclude=["frame_00000.tif"]))
    env.write("scan/unsettled.tif", b"still being written")
    res = env.run()
    assert "deleted 2" in res.stdout
    # excluded now; younger than settle now; not yet sent
    assert sorted(tree(env.src)) == sorted([rels[0], "scan/new.tif", "scan/unsettled.tif"])
    env.run()
    assert sorted(tree(env.src)) == sorted([rels[0], "scan/new.tif", "scan/unsettled.tif"])
    with env.db() as db:  # the young one waits for its time, not selected every cycle
        ((next_try,),) = db.execute("SELECT next_try FROM cleanup WHERE name='new.tif'")
    assert next_try > (env.src / "scan/new.tif").stat().st_mtime + 3500


def test_symlinks_and_what_they_reach_are_never_deleted(env: CliEnv) -> None:
    outside = env.root / "outside"
    outside.mkdir()
    (outside / "target.tif").write_bytes(b"t" * 10)
    (outside / "sub").mkdir()
    (outside / "sub" / "inner.tif").write_bytes(b"i" * 10)
    (env.src / "link.tif").symlink_to(outside / "target.tif")
    (env.src / "linked").symlink_to(outside / "sub")
    env.write("plain.tif", b"p" * 10, mtime=LONG_AGO)
    env.configure(job_toml(delete_after="0s", symlinks="follow"))
    env.run()
    assert (env.dst / "link.tif").read_bytes() == b"t" * 10
    assert (env.dst / "linked" / "inner.tif").read_bytes() == b"i" * 10
    res = env.run()
    assert "deleted 1" in res.stdout
    assert not (env.src / "plain.tif").exists()
    assert (env.src / "link.tif").is_symlink() and (outside / "target.tif").exists()
    assert (outside / "sub" / "inner.tif").exists()
    assert [e["source"] for e in audit(env)] == [str(env.src / "plain.tif")]


def test_a_failed_deletion_is_counted_retried_and_does_not_stop_the_rest(env: CliEnv) -> None:
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("no way to make permissions bind here")
    env.configure(job_toml(delete_after="0s"))
    locked = write_frames(env, 2, folder="locked")
    free = write_frames(env, 2, folder="free")
    env.cli("run", prefix=prefix)
    (env.src / "locked").chmod(0o555)  # its files cannot be unlinked
    try:
        res = env.cli("run", prefix=prefix, code=1)
        assert "deleted 2" in res.stdout
        assert "failed 2 (2 deletions)" in res.stdout
        assert "cannot clean up" in res.stderr and "Permission denied" in res.stderr
        assert sorted(tree(env.src)) == locked
        st = env.status()
        assert len(st["cleanup"]["failing"]) == 2
        assert st["cleanup"]["failing"][0]["reason"] == "cannot delete it: Permission denied"
        res = env.cli("run", prefix=prefix)  # the retry waits for its backoff
        assert "deleted" not in res.stdout
    finally:
        (env.src / "locked").chmod(0o755)
    with env.db() as db:
        db.execute("UPDATE cleanup SET next_try = 0")
        db.commit()
    assert "deleted 2" in env.cli("run", prefix=prefix).stdout
    assert tree(env.src) == {}
    assert sorted(e["source"] for e in audit(env)) == sorted(
        str(env.src / r) for r in locked + free
    )


def test_an_unreadable_directory_keeps_its_files(env: CliEnv) -> None:
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("no way to make permissions bind here")
    env.configure(job_toml(delete_after="0s"))
    rels = write_frames(env, 2, folder="shut")
    env.cli("run", prefix=prefix)
    shut = env.src / "shut"
    shut.chmod(0o311)  # it cannot be listed; its files can still be reached by name
    os.utime(shut)  # and it changed, so the next run lists it
    try:
        res = env.cli("run", prefix=prefix, code=1)
        assert "cannot list directory" in res.stderr
        assert "deleted" not in res.stdout
    finally:
        shut.chmod(0o755)
    assert sorted(tree(env.src)) == rels


def test_cleanup_never_acts_when_the_destination_is_gone(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s"))
    write_frames(env, 2)
    env.run()
    moved = env.root / "unmounted"
    env.dst.rename(moved)
    env.run(code=3)
    assert len(tree(env.src)) == 2
    moved.rename(env.dst)
    assert "deleted 2" in env.run().stdout


def test_turning_cleanup_on_later_takes_the_files_confirmed_before(env: CliEnv) -> None:
    rels = write_frames(env, 4)
    env.run()
    env.configure(job_toml(delete_after="1h"))
    env.run()
    assert candidates(env) == 4  # enrolled, as if confirmed now: not due for an hour
    assert sorted(tree(env.src)) == rels
    env.configure(job_toml())  # off again: the candidates are forgotten
    env.run()
    assert candidates(env) == 0
    age_confirmations(env)
    env.run()
    assert sorted(tree(env.src)) == rels
    env.configure(job_toml(delete_after="1h"))  # and on: enrolled anew
    env.run()
    assert candidates(env) == 4
    age_confirmations(env)
    assert "deleted 4" in env.run().stdout


def test_baseline_files_become_candidates(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s"))
    rels = write_frames(env, 3)
    for rel in rels:  # already at the destination, as baseline claims
        (env.dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (env.dst / rel).write_bytes((env.src / rel).read_bytes())
        os.utime(env.dst / rel, ns=(0, (env.src / rel).stat().st_mtime_ns))
    (env.dst / rels[2]).unlink()  # except one: it is sent, not deleted
    env.cli("baseline")
    env.run()  # enrolled now
    res = env.run()
    assert "deleted 2" in res.stdout
    assert sorted(tree(env.src)) == [rels[2]]
    env.run()
    assert_mirrored(env.src, env.dst, [rels[2]])


def test_check_and_status_describe_cleanup(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="7d", keep_free="10%", max_deletes=500))
    out = env.cli("check").stdout
    line = next(line for line in out.splitlines() if "cleanup" in line)
    assert line.startswith("ok")
    assert "delete source files 7 d after their copy is confirmed" in line
    assert "less than 10% is free" in line and "at most 500 a cycle" in line
    assert "free of" in line and "keeps" in line
    write_frames(env, 2)
    env.run()
    text = env.cli("status").stdout
    assert "cleanup: deleted 0 files (0 B), last never; 2 confirmed files wait" in text


def test_metrics(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s"))
    write_frames(env, 2)
    env.run()
    text = env.metrics()
    assert 'globus_autosync_deleted_files_total{autosync_job="detector"} 2.0' in text
    assert 'globus_autosync_deleted_bytes_total{autosync_job="detector"} 128.0' in text
    assert 'globus_autosync_source_free_bytes{autosync_job="detector"}' in text


# -- keep_free on a real small file system ------------------------------------------------------
@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (needs root and permission to mount; skipped otherwise)."""
    with mounted_tmpfs(tmp_path / "small", "4m") as where:
        yield where


def test_keep_free_deletes_oldest_confirmed_first_until_enough_is_free(
    tmp_path: Path, small_fs: Path
) -> None:
    (tmp_path / "job").mkdir()
    env = CliEnv(tmp_path / "job")
    src = small_fs / "src"
    src.mkdir()
    env.src = src
    job = job_toml(source=str(src), destination=str(env.dst), keep_free="40%")
    env.configure(job)
    order: list[str] = []
    for wave in range(2):  # two runs, so two confirmation times: 2 MiB of 4 MiB in use
        rels = write_frames(env, 4, folder=f"wave{wave}", size=256 * 1024)
        env.run()
        order += rels
    env.run()
    assert sorted(tree(src)) == sorted(order)  # nothing deleted while 40% or more is free
    order += write_frames(env, 4, folder="wave2", size=256 * 1024)
    st = os.statvfs(src)
    assert st.f_bavail * st.f_frsize < st.f_blocks * st.f_frsize * 0.4
    res = env.run()  # wave2 is sent; the disk is short of 40% free
    assert "deleted" in res.stdout
    deleted = [e["source"] for e in audit(env)]
    # the oldest confirmed first: a prefix of the order they were confirmed in
    assert deleted == [str(src / r) for r in order[: len(deleted)]]
    assert 0 < len(deleted) < len(order)
    st = os.statvfs(src)
    free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    assert free >= total * 0.4  # enough is free now
    assert free - 256 * 1024 < total * 0.4  # and not one file more was deleted than needed
    assert sorted(tree(env.dst)) == sorted(order)  # every copy stays
    res = env.run()
    assert "deleted" not in res.stdout


def test_audit_lines_are_json_whatever_the_name(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s"))
    names = ['quote "q" back\\slash.tif', "été, 温度 ✓.tif", "tab\tname.tif", "two\nlines.tif"]
    for name in names:
        env.write(f"odd/{name}", b"x", mtime=LONG_AGO)
    with open(os.fsencode(env.src) + b"/odd/caf\xe9.tif", "wb") as fh:
        fh.write(b"x")
    env.run()
    assert "deleted 5" in env.run().stdout
    # each line is one line of UTF-8 JSON, the name printable as status shows it
    shown = ['quote "q" back\\slash.tif', "été, 温度 ✓.tif", "tab\\x09name.tif"]
    shown += ["two\\nlines.tif", "caf\\xe9.tif"]
    assert sorted(e["source"] for e in audit(env)) == sorted(f"{env.src}/odd/{n}" for n in shown)
    assert {e["destination"] for e in audit(env)} == {f"{env.dst}/odd/{n}" for n in shown}

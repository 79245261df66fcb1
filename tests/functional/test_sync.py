"""What gets sent, when, and what the store, the log and the reports say about it afterwards."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime

from .helpers import (
    LONG_AGO,
    CliEnv,
    age_dirs,
    assert_mirrored,
    part_files,
    tree,
)

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: (DEBUG|INFO|WARNING|ERROR): .+")

TRANSFERS = (1, 4)  # each test that uses ``env`` runs with 1 and with 4 copy workers


def _populate(env: CliEnv) -> None:
    env.write("2018/run_Sep2018/YAG/YAG_00001.tif", os.urandom(5000))
    env.write("2018/run_Sep2018/YAG/YAG_00002.tif", os.urandom(7000))
    env.write("2018/notes.txt", "beam at 3 GeV\n")
    env.write("top.dat", b"")  # empty files too
    (env.src / "2018" / "empty" / "deeper").mkdir(parents=True)


def test_first_run_mirrors_the_tree(env: CliEnv) -> None:
    _populate(env)
    res = env.run()
    assert_mirrored(env.src, env.dst)
    assert (env.dst / "2018" / "empty" / "deeper").is_dir()  # empty directories are created
    assert part_files(env.dst) == []
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1  # one summary line per job
    assert lines[0].startswith("detector: ")
    assert "sent 4" in lines[0]
    assert "failed 0, skipped 0" in lines[0]


def test_unchanged_files_are_never_rewritten(env: CliEnv) -> None:
    _populate(env)
    env.run()
    before = {p: (env.dst / p).stat() for p in tree(env.dst)}
    res = env.run()
    assert "sent 0" in res.stdout
    env.run("--full")
    for path, st in before.items():
        now = (env.dst / path).stat()
        assert (now.st_ino, now.st_mtime_ns, now.st_ctime_ns) == (
            st.st_ino,
            st.st_mtime_ns,
            st.st_ctime_ns,
        ), path


def test_new_file_with_an_old_mtime_is_sent(env: CliEnv) -> None:
    env.write("a/first.dat", "first")
    env.run()
    age_dirs(env.src)
    env.run()  # records the aged directory times: the next run trusts them
    # copied in with `cp -p`: a new name, an mtime years old
    env.write("a/copied.dat", "old data", mtime=LONG_AGO)
    res = env.run()
    assert "sent 1" in res.stdout
    assert_mirrored(env.src, env.dst, ["a/copied.dat"])
    assert (env.dst / "a" / "copied.dat").stat().st_mtime_ns == LONG_AGO * 1_000_000_000


def test_a_file_replaced_after_it_was_sent_is_sent_again(env: CliEnv) -> None:
    env.write("d/f.dat", "version 1")
    env.run()
    age_dirs(env.src)
    env.run()
    # rewritten by a tool that writes a new file and renames it over the old one
    tmp = env.write("d/f.dat.new", "version 2, longer")
    os.replace(tmp, env.src / "d" / "f.dat")
    env.run()
    assert (env.dst / "d" / "f.dat").read_text() == "version 2, longer"
    assert_mirrored(env.src, env.dst)


def test_a_file_rewritten_in_place_is_sent_again(env: CliEnv) -> None:
    path = env.write("d/f.dat", "version 1")
    env.run()
    age_dirs(env.src)
    env.run()
    # same size, new mtime, same inode: the directory's mtime does not change
    path.write_text("version 2")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    env.run("--full")  # an incremental run may only see it at the next full scan
    assert (env.dst / "d" / "f.dat").read_text() == "version 2"
    assert_mirrored(env.src, env.dst)
    # and the same with a fresh file in the directory (which lists it again)
    path.write_text("version three")
    env.write("d/other.dat", "x")
    env.run()
    assert (env.dst / "d" / "f.dat").read_text() == "version three"


def test_settle_holds_fresh_files_back(env: CliEnv) -> None:
    env.configure(env.job(settle="1h"))
    path = env.write("a/fresh.dat", "being written")
    env.write("a/old.dat", "finished", mtime=LONG_AGO)
    res = env.run()
    assert "sent 1" in res.stdout
    assert not (env.dst / "a" / "fresh.dat").exists()
    assert (env.dst / "a" / "old.dat").exists()
    st = env.status()
    assert (st["waiting"], st["done"], st["queued"]) == (1, 1, 0)
    human = env.cli("status").stdout
    assert "waiting to settle 1" in human
    env.run()
    assert not (env.dst / "a" / "fresh.dat").exists()
    # an hour later (as far as its mtime says)
    old = time.time() - 3601
    os.utime(path, (old, old))
    env.run()
    assert_mirrored(env.src, env.dst)
    assert env.status()["waiting"] == 0


def test_settle_one_second(env: CliEnv) -> None:
    env.configure(env.job(settle="1s"))
    env.write("f.dat", "x")
    env.run()
    assert not (env.dst / "f.dat").exists()
    assert env.status()["waiting"] == 1
    time.sleep(1.2)
    env.run()
    assert_mirrored(env.src, env.dst)


def test_excluded_files_and_directories_are_never_sent(env: CliEnv) -> None:
    env.configure(env.job(exclude=["*.tmp", ".*", "raw/scratch", "logs/*.txt"]))
    env.write("keep.dat", "k")
    env.write("drop.tmp", "t")
    env.write(".hidden", "h")
    env.write(".cache/inside.dat", "c")  # excluded directory: not descended
    env.write("raw/scratch/a.dat", "s")  # excluded by its relative path
    env.write("raw/keep.dat", "k")
    env.write("logs/run.txt", "l")  # relative path pattern on a file
    env.write("logs/run.dat", "l")
    env.write("nested/deep/x.tmp", "t")  # name patterns apply at any depth
    for _ in range(2):
        env.run("--full")
    assert sorted(tree(env.dst)) == ["keep.dat", "logs/run.dat", "raw/keep.dat"]
    with env.db() as db:
        names = {r[0] for r in db.execute("SELECT name FROM dirs")}
    assert ".cache" not in names
    assert "scratch" not in names


def test_dry_run_lists_and_changes_nothing(env: CliEnv) -> None:
    env.write("a/one.dat", "1")
    env.write("b/two.dat", "2")
    (env.src / "c").mkdir()
    res = env.run("--dry-run")
    assert "would send a/one.dat" in res.stdout
    assert "would send b/two.dat" in res.stdout
    assert "dry run" in res.stdout.splitlines()[-1]
    assert "in flight" not in res.stdout
    assert tree(env.dst) == {}
    assert list(env.dst.iterdir()) == []
    assert not env.db_path.exists()
    # again with a store that has history
    env.run()
    env.write("a/three.dat", "3")
    (env.src / "d").mkdir()
    with env.db() as db:  # fold the WAL into the main file, so its bytes tell everything
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = sorted(p for p in env.state.iterdir() if p.name.startswith("state.db"))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    res = env.run("--dry-run")
    assert "would send a/three.dat" in res.stdout
    assert "would send d/" in res.stdout
    assert "a/one.dat" not in res.stdout
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    assert after == before
    assert not (env.dst / "a" / "three.dat").exists()
    assert not (env.dst / "d").exists()
    assert env.status()["done"] == 2
    res = env.run()
    assert "sent 1" in res.stdout


def test_baseline_records_without_sending(env: CliEnv) -> None:
    env.write("old/a.dat", "a", mtime=LONG_AGO)
    env.write("old/b.dat", "bb", mtime=LONG_AGO)
    res = env.cli("baseline")
    assert "recorded 2 files" in res.stdout
    assert tree(env.dst) == {}
    assert env.status()["done"] == 2
    env.write("new/c.dat", "c")
    res = env.run()
    assert sorted(tree(env.dst)) == ["new/c.dat"]


def test_baseline_before_leaves_newer_files_for_the_next_run(env: CliEnv) -> None:
    env.write("x/old.dat", "o", mtime=LONG_AGO)
    env.write("x/new.dat", "n")
    cut = datetime.fromtimestamp(LONG_AGO + 3600).isoformat()
    res = env.cli("baseline", "--before", cut)
    assert "recorded 1 files" in res.stdout
    assert "1 newer files left" in res.stdout
    env.run()
    assert sorted(tree(env.dst)) == ["x/new.dat"]


def test_status_and_tasks(env: CliEnv) -> None:
    st = env.status()
    assert st["done"] == 0
    assert st["last_run"] is None
    assert "never run" in env.cli("status").stdout
    assert "no batches yet" in env.cli("tasks").stdout
    env.write("a.dat", b"x" * 1000)
    env.write("b.dat", b"y" * 500)
    env.run()
    st = env.status()
    assert {k: st[k] for k in ("done", "waiting", "queued", "in_flight", "failed", "skipped")} == {
        "done": 2,
        "waiting": 0,
        "queued": 0,
        "in_flight": 0,
        "failed": 0,
        "skipped": 0,
    }
    assert st["bytes_done"] == 1500
    assert st["last_result"] == "ok"
    assert st["last_run"] is not None
    assert st["lag_seconds"] == 0
    human = env.cli("status").stdout
    for word in (
        "done 2",
        "waiting to settle 0",
        "queued 0",
        "in flight 0",
        "failed 0",
        "skipped 0",
        "lag",
        "last run",
    ):
        assert word in human, human
    env.write("c.dat", "z")
    env.run()
    tasks = json.loads(env.cli("tasks", "--json").stdout)["tasks"]
    assert [(t["files"], t["state"]) for t in tasks] == [(1, "succeeded"), (2, "succeeded")]
    assert tasks[1]["bytes"] == 1500
    limited = json.loads(env.cli("tasks", "--limit", "1", "--json").stdout)["tasks"]
    assert len(limited) == 1
    text = env.cli("tasks").stdout
    assert "2 files" in text
    assert "succeeded" in text


def test_store_layout(env: CliEnv) -> None:
    _populate(env)
    env.run()
    with env.db() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert version is not None
        assert int(version[0]) >= 1
        names = [r[0] for r in db.execute("SELECT name FROM dirs")]
        assert not any("/" in n for n in names)
        assert {"2018", "run_Sep2018", "YAG", "empty", "deeper"} <= set(names)
        # a trie: YAG's parent is run_Sep2018, whose parent is 2018
        parent = dict(db.execute("SELECT d.name, p.name FROM dirs d JOIN dirs p ON d.parent=p.id"))
        assert parent["YAG"] == "run_Sep2018"
        assert parent["run_Sep2018"] == "2018"
        # confirmed files are not rows: the files table holds work in progress only
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 0
    # one database file for every job (beside it only SQLite's own -wal and -shm)
    assert {p.name for p in env.state.glob("*.db")} == {"state.db"}


def test_log_file(env: CliEnv) -> None:
    env.write("a.dat", "a")
    env.run()
    lines = env.log_lines()
    assert lines
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert any("sent 1" in line for line in lines)
    env.run()  # finds nothing: exactly one more line
    again = env.log_lines()
    assert len(again) == len(lines) + 1
    assert "sent 0" in again[-1]
    assert ": INFO: " in again[-1]


def test_several_jobs_in_one_config_and_one_store(env: CliEnv) -> None:
    (env.root / "src2").mkdir()
    (env.root / "dst2").mkdir()
    env.configure(env.job(), env.job(name="second", source="src2", destination="dst2"))
    env.write("a.dat", "a")
    (env.root / "src2" / "b.dat").write_text("b")
    res = env.run()
    assert [line.split(":")[0] for line in res.stdout.splitlines()] == ["detector", "second"]
    assert (env.root / "dst2" / "b.dat").read_text() == "b"
    assert not (env.root / "dst2" / "a.dat").exists()
    res = env.run("--job", "second")
    assert res.stdout.startswith("second:")
    assert [r.name for r in env.state.iterdir() if r.suffix == ".db"] == ["state.db"]

"""The state database: opening, the directory trie, work in progress, batches, runs, counts."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from globus_autosync.errors import EXIT_JOB, StoreError
from globus_autosync.model.plan import FAILED, QUEUED, SEEN, SKIPPED, SUBMITTED, DirPlan, Pending
from globus_autosync.store import SCHEMA_VERSION, QueuedFile, Store, codec
from globus_autosync.store import connection as store_connection
from globus_autosync.store import schema as store_schema

NOW = 1_800_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "state")


def _row(name: str, state: str = QUEUED, size: int = 10, **kw: object) -> Pending:
    return Pending(name, size, 1000 + size, state, since=NOW - 100, queued_at=NOW - 50, **kw)  # type: ignore[arg-type]


def test_open_creates_a_wal_database_with_a_schema_version(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    Store.open(state).close()
    conn = sqlite3.connect(state / "state.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    conn.close()
    Store.open(state).close()  # and opens again


def test_garbage_is_refused_with_a_one_line_error(tmp_path: Path) -> None:
    tmp_path.joinpath("state.db").write_bytes(b"\x00garbage" * 1000)
    for opener in (Store.open, Store.open_readonly):
        with pytest.raises(StoreError) as info:
            opener(tmp_path)
        assert info.value.exit_code == EXIT_JOB
        assert "state.db" in str(info.value)
        assert "\n" not in str(info.value)


def test_another_schema_version_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    for opener in (Store.open, Store.open_readonly):
        with pytest.raises(StoreError, match="schema version 999"):
            opener(tmp_path)


def test_a_state_dir_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create the state directory"):
        Store.open(tmp_path / "file" / "state")


# the columns version 6 added (an older database has not got them)
CHUNKS = "".join(
    line + "\n"
    for line in store_schema.SCHEMA.splitlines()
    if line.lstrip().startswith(("chunks", "forgotten"))
)


def _version_1(state: Path) -> None:
    """A database as schema version 1 had it (no ``dirs.digest``), with one confirmed file."""
    schema = store_schema.SCHEMA
    v1 = "\n".join(
        line
        for line in schema.splitlines()
        if not line.lstrip().startswith(("digest", "chunks", "forgotten"))
    )
    assert v1 != schema
    state.mkdir(parents=True)
    conn = sqlite3.connect(state / "state.db")
    conn.executescript(v1)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("INSERT INTO jobs (id, name) VALUES (1, 'beamline')")
    conn.execute(
        "INSERT INTO dirs (id, job, parent, name, nfiles, nbytes, done) "
        "VALUES (1, 1, 0, '', 1, 5, ?)",
        (codec.encode({"a.tif": (5, 7)}),),
    )
    conn.commit()
    conn.close()


def test_a_version_1_database_is_upgraded_in_place_and_keeps_its_files(tmp_path: Path) -> None:
    _version_1(tmp_path / "state")
    ro = Store.open_readonly(tmp_path / "state")  # status may read it before any run upgrades it
    assert ro is not None
    assert ro.jobs.counts(1).done == 1
    ro.close()
    store = Store.open(tmp_path / "state")
    assert store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    assert store.dirs.state(1)[0] == {"a.tif": (5, 7)}
    assert store.dirs.raw_state(1)[1] is None  # no digest yet: the next full walk compares
    store.close()
    Store.open(tmp_path / "state").close()  # opens again, nothing left to upgrade


def test_open_readonly_never_creates(tmp_path: Path) -> None:
    assert Store.open_readonly(tmp_path / "state") is None
    assert not (tmp_path / "state").exists()
    Store.open(tmp_path).close()
    ro = Store.open_readonly(tmp_path)
    assert ro is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.conn.execute("INSERT INTO jobs (name) VALUES ('x')")
    ro.close()


def test_jobs_and_the_directory_trie(store: Store) -> None:
    a = store.jobs.ensure("a")
    assert store.jobs.ensure("a") == a
    b = store.jobs.ensure("b")
    assert a != b
    assert store.jobs.find("nope") is None
    root = store.dirs.add(a, 0, "")
    y2018 = store.dirs.add(a, root, "2018")
    run = store.dirs.add(a, y2018, "run_Sep2018")
    assert store.dirs.add(a, y2018, "run_Sep2018") == run  # idempotent
    other = store.dirs.add(b, 0, "")
    rows = store.dirs.rows(a)
    assert [(r.id, r.parent, r.name) for r in rows] == [
        (root, 0, ""), (y2018, root, "2018"), (run, y2018, "run_Sep2018"),
    ]  # fmt: skip
    assert all(not r.made and r.mtime_ns == -1 for r in rows)
    assert [r.id for r in store.dirs.rows(b)] == [other]


def test_apply_dir_and_dir_state(store: Store) -> None:
    job = store.jobs.ensure("j")
    d = store.dirs.add(job, 0, "")
    plan = DirPlan(upserts=[_row("a", SEEN), _row("b", QUEUED), _row("c", SKIPPED, reason="bad")])
    store.dirs.apply(job, d, plan, mtime_ns=123, ino=456, made=None)
    done, pending = store.dirs.state(d)
    assert done == {}
    assert sorted(pending) == ["a", "b", "c"]
    assert pending["c"].reason == "bad"
    assert pending["b"] == _row("b", QUEUED)
    assert store.files.busy_dirs(job) == {d}  # seen and queued files keep it under watch
    (row,) = store.dirs.rows(job)
    assert (row.mtime_ns, row.ino, row.made) == (123, 456, False)
    store.dirs.apply(job, d, DirPlan(deletes=["a", "b"]), mtime_ns=124, ino=456, made=True)
    assert list(store.dirs.state(d)[1]) == ["c"]
    assert store.files.busy_dirs(job) == set()  # a skipped file alone does not
    assert store.dirs.rows(job)[0].made


def test_a_batch_from_journal_to_confirmation(store: Store) -> None:
    job = store.jobs.ensure("j")
    d1 = store.dirs.add(job, 0, "")
    d2 = store.dirs.add(job, d1, "sub")
    store.dirs.apply(job, d1, DirPlan(upserts=[_row("a", size=1), _row("b", size=2)]), 5, 6, None)
    store.dirs.apply(job, d2, DirPlan(upserts=[_row("c", size=4), _row("w", SEEN)]), 5, 7, None)
    queued = store.batches.queued(job, limit=10)
    assert [(q.dir, q.row.name) for q in queued] == [(d1, "a"), (d1, "b"), (d2, "c")]
    assert len(store.batches.queued(job, limit=2)) == 2

    batch = store.batches.create(job, "sub-1", "label", queued, NOW)
    assert (batch.state, batch.files, batch.bytes, batch.task_id) == ("new", 3, 7, None)
    assert store.batches.queued(job, 10) == []
    assert [b.id for b in store.batches.unresolved(job)] == [batch.id]
    files = store.batches.files(batch.id)
    assert [f.row.state for f in files] == [SUBMITTED] * 3
    assert store.jobs.counts(job).submitted == 3

    store.batches.submitted(batch.id, "task-1", NOW + 1)
    (open_batch,) = store.batches.unresolved(job)
    assert (open_batch.task_id, open_batch.state) == ("task-1", "submitted")

    done = [f for f in files if f.row.name != "b"]
    (b,) = [f for f in files if f.row.name == "b"]
    again = Pending("b", b.row.size, b.row.mtime_ns, FAILED, b.row.since)
    failed = [(b.dir, again._replace(attempts=1, next_try=NOW + 30, reason="disk full"))]
    store.batches.resolve(job, batch.id, "failed", None, done, failed, NOW + 2)
    assert store.batches.unresolved(job) == []
    (recent,) = store.batches.recent(job, 5)
    assert (recent.state, recent.finished) == ("failed", NOW + 2)

    # confirmed files left the files table for their directory's compact listing
    done1, pending1 = store.dirs.state(d1)
    assert done1 == {"a": (1, 1001)}
    assert pending1["b"].state == FAILED
    done2, pending2 = store.dirs.state(d2)
    assert done2 == {"c": (4, 1004)}
    assert list(pending2) == ["w"]
    c = store.jobs.counts(job)
    assert (c.done, c.done_bytes, c.seen, c.queued, c.submitted, c.failed, c.skipped) == (
        2, 5, 1, 0, 0, 1, 0,
    )  # fmt: skip
    assert [(p.name, p.reason) for _, p in store.files.failures(job)] == [("b", "disk full")]
    # and the directories are listed again: a file may have changed while in flight
    assert all(r.mtime_ns == -1 for r in store.dirs.rows(job))


def test_a_confirmed_file_sent_again_replaces_its_old_record(store: Store) -> None:
    job = store.jobs.ensure("j")
    d = store.dirs.add(job, 0, "")
    for size in (10, 20):
        store.dirs.apply(job, d, DirPlan(upserts=[_row("f", size=size)]), 1, 1, None)
        q = store.batches.queued(job, 10)
        b = store.batches.create(job, None, "l", q, NOW)
        store.batches.resolve(job, b.id, "succeeded", None, q, [], NOW)
    assert store.dirs.state(d) == ({"f": (20, 1020)}, {})
    c = store.jobs.counts(job)
    assert (c.done, c.done_bytes) == (1, 20)


def test_baseline_confirms_without_a_batch(store: Store) -> None:
    job = store.jobs.ensure("j")
    d = store.dirs.add(job, 0, "")
    store.dirs.apply(job, d, DirPlan(upserts=[_row("x", SEEN), _row("y", QUEUED)]), 1, 1, None)
    store.dirs.confirm_baseline(d, {"x": (1, 2), "z": (3, 4)})
    done, pending = store.dirs.state(d)
    assert done == {"x": (1, 2), "z": (3, 4)}
    assert list(pending) == ["y"]
    assert store.batches.recent(job, 5) == []


def test_runs_are_kept_for_status_and_pruned(store: Store) -> None:
    job = store.jobs.ensure("j")
    assert store.jobs.counts(job).last_run is None
    for i in range(1010):
        store.cycles.record(job, NOW + i, NOW + i + 1, False, "ok", f"run {i}")
    assert store.jobs.counts(job).last_run == (NOW + 1010, "ok", "run 1009")
    n = store.conn.execute("SELECT COUNT(*) FROM runs WHERE job=?", (job,)).fetchone()[0]
    assert n <= 1001


def test_the_store_never_keeps_full_paths(store: Store) -> None:
    job = store.jobs.ensure("j")
    parent = store.dirs.add(job, 0, "")
    for name in ("2018", "run", "YAG"):
        parent = store.dirs.add(job, parent, name)
    names = [r[0] for r in store.conn.execute("SELECT name FROM dirs")]
    assert names == ["", "2018", "run", "YAG"]


def test_done_blob_is_the_codec_format(store: Store) -> None:
    job = store.jobs.ensure("j")
    d = store.dirs.add(job, 0, "")
    store.dirs.confirm_baseline(d, {"f": (1, 2)})
    blob = store.conn.execute("SELECT done, nfiles, nbytes FROM dirs WHERE id=?", (d,)).fetchone()
    assert codec.decode(blob[0]) == {"f": (1, 2)}
    assert blob[1:] == (1, 1)


def test_queued_file_carries_its_directory(store: Store) -> None:
    job = store.jobs.ensure("j")
    d = store.dirs.add(job, 0, "")
    store.dirs.apply(job, d, DirPlan(upserts=[_row("f")]), 1, 1, None)
    assert store.batches.queued(job, 1) == [QueuedFile(d, _row("f"))]


def test_a_failed_transaction_leaves_none_open(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError), store.tx():
        store.conn.execute("INSERT INTO jobs (name) VALUES ('a')")
        store.conn.execute("INSERT INTO jobs (name) VALUES ('a')")  # UNIQUE
    assert not store.conn.in_transaction
    assert store.jobs.find("a") is None  # rolled back whole
    assert store.jobs.ensure("b") > 0  # and the next transaction goes through


def test_a_database_another_process_holds_is_not_called_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _version_1(tmp_path / "state")  # opening it must write: it is upgraded
    monkeypatch.setattr(store_connection, "_TIMEOUT", 0.2)
    other = sqlite3.connect(tmp_path / "state" / "state.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer, holding on
    try:
        with pytest.raises(StoreError) as info:
            Store.open(tmp_path / "state")
    finally:
        other.execute("ROLLBACK")
        other.close()
    message = str(info.value)
    assert "database is locked" in message and "another process holds it" in message
    assert "move it aside" not in message and "\n" not in message
    assert info.value.exit_code == EXIT_JOB
    store = Store.open(tmp_path / "state")  # once it is let go, the upgrade goes through
    assert store.dirs.state(1)[0] == {"a.tif": (5, 7)}
    store.close()


def test_a_version_2_database_is_read_as_it_is_and_upgraded_with_the_health_tables(
    tmp_path: Path,
) -> None:
    from globus_autosync.config import Job
    from globus_autosync.monitoring import status as report

    state = tmp_path / "state"
    state.mkdir()
    v2 = store_schema.SCHEMA.replace(store_schema.HEALTH_TABLES, "").replace(CHUNKS, "")
    assert "alerts" not in v2
    conn = sqlite3.connect(state / "state.db")
    conn.executescript(v2)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    conn.execute("INSERT INTO jobs (id, name) VALUES (1, 'beamline')")
    conn.execute(
        "INSERT INTO runs (job, started, finished, full, result, summary) "
        "VALUES (1, 1, 2, 0, 'ok', 'fine')"
    )
    conn.commit()
    conn.close()
    job = Job(name="beamline", source=tmp_path, destination=str(tmp_path / "dst"))
    ro = Store.open_readonly(state)  # `status` before any run upgrades it
    assert ro is not None
    row = report.job_status(ro, job)
    assert row["collections"] == [] and row["health"]["state"] == "stopped"  # its run: long ago
    ro.close()
    store = Store.open(state)
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"alerts", "collections"} <= tables
    assert store.health.alert_row("beamline") is None and store.health.collections("beamline") == []
    store.close()


def test_a_version_7_database_gains_life_totals_seeded_from_its_batches(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    job = store.jobs.ensure("a")
    for state, files, nbytes in (("succeeded", 3, 300), ("succeeded", 2, 20), ("failed", 9, 9)):
        store.conn.execute(
            "INSERT INTO batches (job, submission_id, label, state, files, bytes, created) "
            "VALUES (?, 's', 'l', ?, ?, ?, 0)",
            (job, state, files, nbytes),
        )
    store.conn.executescript(
        "DROP TABLE job_totals; DROP TABLE heartbeats; DROP TABLE roots; DROP TABLE unlistable;"
        "DROP TABLE lost; DROP TABLE audits;"
        "UPDATE meta SET value='7' WHERE key='schema_version';"
    )
    store.close()
    ro = Store.open_readonly(tmp_path)  # status reads an older database as it is
    assert ro is not None and ro.jobs.life(job) == (0, 0)
    assert ro.heartbeats.current(job) is None and ro.unlistable.current(job) == []
    assert ro.lost.current(job) == [] and ro.audits.latest(job) is None
    ro.close()
    store = Store.open(tmp_path)
    assert store.jobs.life(job) == (5, 320)
    store.close()


def test_a_version_9_database_keeps_its_names_when_names_are_escaped(tmp_path: Path) -> None:
    """Version 10 keeps names printable (store.names); a name an older version kept as it is
    but that reads as an escape is escaped by the upgrade, so it is still the same name."""
    state = tmp_path / "state"
    state.mkdir()
    conn = sqlite3.connect(state / "state.db")
    conn.executescript(store_schema.SCHEMA)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '9')")
    conn.execute("INSERT INTO jobs (id, name) VALUES (1, 'beamline')")
    conn.execute("INSERT INTO dirs (id, job, parent, name) VALUES (1, 1, 0, '')")
    conn.execute("INSERT INTO dirs (id, job, parent, name) VALUES (2, 1, 1, 'C:\\new')")
    row = "INSERT INTO files (dir, name, job, size, mtime_ns, state, since, reason) VALUES "
    conn.execute(row + "(2, 'a\\x41.tif', 1, 1, 1, 'seen', 0, NULL)")  # a backslash, x, 4, 1
    conn.execute(row + "(2, 'plain.tif', 1, 1, 1, 'seen', 0, NULL)")
    # an older version kept a name it could not send printable already
    conn.execute(row + "(2, 'caf\\xe9.dat', 1, 1, 1, 'skipped', 0, 'name is not valid UTF-8')")
    conn.commit()
    conn.close()
    store = Store.open(state)
    try:
        assert [r.name for r in store.dirs.rows(1)] == ["", "C:\\new"]
        assert set(store.files.of_dir(2)) == {
            "a\\x41.tif",
            "plain.tif",
            os.fsdecode(b"caf\xe9.dat"),
        }
        stored = {r[0] for r in store.conn.execute("SELECT name FROM files")}
        assert stored == {"a\\\\x41.tif", "plain.tif", "caf\\xe9.dat"}
    finally:
        store.close()

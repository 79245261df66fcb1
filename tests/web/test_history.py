"""The page's history (schema version 7): a row per job per cycle, at most one per 5 minutes,
pruned after 30 days at most once a day; a version 6 database gains the table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from globus_autosync.store import Store, history, schema


def _rows(store: Store) -> list[tuple[float, int]]:
    return store.conn.execute("SELECT at, job FROM history ORDER BY at").fetchall()


def test_at_most_one_row_per_job_per_interval_and_pruned_after_30_days(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    a, b = store.jobs.ensure("a"), store.jobs.ensure("b")
    t0 = 1_700_000_000.0
    store.cycles.record(a, t0 - 1, t0, False, "ok", "nothing", free_bytes=123)
    store.cycles.record(a, t0, t0 + 60, False, "ok", "nothing")
    store.cycles.record(b, t0, t0 + 60, False, "ok", "nothing")
    assert _rows(store) == [(t0, a), (t0 + 60, b)]
    store.cycles.record(a, t0, t0 + history.INTERVAL, False, "ok", "nothing")
    assert len(_rows(store)) == 3
    (row, *_) = store.history.rows(a, 0)
    assert row.free_bytes == 123 and row.confirmed_files == 0 and row.lag == 0.0
    # a day later the rows older than 30 days go, and only once that day
    later = t0 + history.KEEP + 3600
    store.cycles.record(b, later, later, False, "ok", "nothing")
    assert [at for at, _ in _rows(store)] == [later]
    store.conn.execute(
        "INSERT INTO history (job, at, confirmed_files, confirmed_bytes, lag) "
        "VALUES (?, ?, 0, 0, 0)",
        (a, t0),
    )
    store.cycles.record(a, later + 10, later + 10, False, "ok", "nothing")
    assert len(_rows(store)) == 3  # the old row stays until the next day's prune
    store.close()


def test_a_version_6_database_gains_the_table_and_is_read_before(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    job = store.jobs.ensure("a")
    store.conn.executescript(
        "DROP TABLE history; UPDATE meta SET value='6' WHERE key='schema_version';"
    )
    store.close()
    ro = Store.open_readonly(tmp_path)
    assert ro is not None
    assert ro.history.rows(job, 0) == []  # status and the page read it as it is
    ro.close()
    store = Store.open(tmp_path)
    assert schema.version(store.conn) == schema.VERSION
    store.cycles.record(job, 1.0, 2.0, False, "ok", "nothing")
    assert len(store.history.rows(job, 0)) == 1
    store.close()
    conn = sqlite3.connect(tmp_path / "state.db")
    assert conn.execute("SELECT COUNT(*) FROM history").fetchone() == (1,)
    conn.close()

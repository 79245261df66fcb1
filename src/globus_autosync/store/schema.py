"""The state database's tables and the versions of its schema (kept in ``meta``): a new database
is created at this version; an older one is upgraded in place, in one transaction, by the first
command that opens it for writing; a newer one is refused.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from globus_autosync.errors import StoreError
from globus_autosync.store import names

log = logging.getLogger(__name__)

VERSION = 10
READABLE_FROM = 1  # the oldest version `status` and `tasks` read without upgrading it

# Source cleanup (version 3). `cleanup` holds the confirmed files of jobs with cleanup on, so
# that finding those due costs what is due, not the tree; `deleting` is the journal mark set
# before an unlink and cleared (with the row) after it. `cleanup_jobs` holds each job's totals.
CLEANUP = """
CREATE TABLE IF NOT EXISTS cleanup (
    dir INTEGER NOT NULL REFERENCES dirs(id),
    name TEXT NOT NULL,
    job INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,                    -- the source's inode when it was confirmed
    ctime_ns INTEGER NOT NULL,               -- and its ctime (an inode number can be reused)
    confirmed REAL NOT NULL,
    batch INTEGER,                           -- the batch that carried it (NULL: enrolled later)
    deleting INTEGER NOT NULL DEFAULT 0,     -- journaled: the unlink may have happened
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    reason TEXT,
    PRIMARY KEY (dir, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cleanup_due ON cleanup (job, confirmed);
CREATE INDEX IF NOT EXISTS cleanup_deleting ON cleanup (job) WHERE deleting = 1;
CREATE TABLE IF NOT EXISTS cleanup_jobs (
    job INTEGER PRIMARY KEY REFERENCES jobs(id),
    enrolled REAL,                           -- files confirmed before this were enrolled then
    files INTEGER NOT NULL DEFAULT 0,        -- deleted in all
    bytes INTEGER NOT NULL DEFAULT 0,
    last REAL                                -- the last deletion
);
"""

# Health and alerts (version 4): what was last said about a job's health, and the
# last known state of the collections of a Globus job
HEALTH_TABLES = """
CREATE TABLE IF NOT EXISTS alerts (
    job TEXT PRIMARY KEY,                    -- a job's name
    announced TEXT NOT NULL,                 -- the condition the last message announced ('ok'...)
    announced_at REAL NOT NULL DEFAULT 0,
    history TEXT NOT NULL DEFAULT '{}',      -- JSON: condition -> when it was last announced
    pending TEXT,                            -- JSON: a message not delivered yet, and to whom
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS collections (
    job TEXT NOT NULL,
    role TEXT NOT NULL,                      -- source, destination
    collection TEXT NOT NULL,                -- its id
    name TEXT,                               -- its display name
    gcp INTEGER NOT NULL DEFAULT 0,          -- a Globus Connect Personal collection
    doc_problem TEXT,                        -- what its document said: not connected, paused
    problem TEXT,                            -- shown: from the document or a task
    checked REAL NOT NULL DEFAULT 0,         -- when its document was last read
    PRIMARY KEY (job, role)
);
"""

# Actions (version 5): a flow run and/or a local command per finished batch or
# dataset. A row of `actions` is journaled before anything starts; `tag` is the unique tag its
# flow run carries (a crashed start is found again by it). `flow_state` and `cmd_state`: NULL
# (not configured), pending, starting (journaled: it may have started), running, succeeded,
# failed.
# `state`: collecting (a dataset still gathering files), then pending, running, succeeded, failed.
# `action_files` holds the confirmed files of each action: its manifest.
ACTIONS = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    job INTEGER NOT NULL REFERENCES jobs(id),
    kind TEXT NOT NULL,                      -- batch, dataset
    batch INTEGER,                           -- kind batch: the batch whose files it holds
    dir INTEGER,                             -- kind dataset: the dataset's directory
    dataset TEXT,                            -- and its path relative to the source
    part INTEGER NOT NULL DEFAULT 1,         -- a manifest too large for one flow run is split
    parts INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL,
    tag TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    changed REAL NOT NULL,                   -- a file was last added (datasets: quiet since)
    marker INTEGER NOT NULL DEFAULT 0,       -- a file matching dataset_marker is confirmed
    files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    flow_state TEXT,
    run_id TEXT,
    cmd_state TEXT,
    pid INTEGER,
    exit_code INTEGER,
    attempt INTEGER NOT NULL DEFAULT 1,      -- retry-action starts attempt n + 1
    tries INTEGER NOT NULL DEFAULT 0,        -- failed starts (a 5xx, the network), for backoff
    next_try REAL NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS actions_job_state ON actions (job, state);
CREATE TABLE IF NOT EXISTS action_files (
    action INTEGER NOT NULL REFERENCES actions(id),
    dir INTEGER NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,                      -- relative to the source (a directory may go)
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (action, dir, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS action_files_file ON action_files (dir, name);
"""

# History for the status page's pictures (version 7): at most a row per job per 5
# minutes, written with a cycle's run (store/history.py), pruned after 30 days.
HISTORY = """
CREATE TABLE IF NOT EXISTS history (
    job INTEGER NOT NULL REFERENCES jobs(id),
    at REAL NOT NULL,
    confirmed_files INTEGER NOT NULL,        -- the job's confirmed files then (status: done)
    confirmed_bytes INTEGER NOT NULL,
    lag REAL NOT NULL,                       -- age of the oldest settled file not done
    free_bytes INTEGER,                      -- the source's free space (jobs with cleanup)
    queued INTEGER NOT NULL DEFAULT 0,
    in_flight INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS history_job_at ON history (job, at);
"""

# A job's pulse, roots and unlistable directories (version 8). `heartbeats`: the cycle in
# hand leaves a sign of progress as it goes (a directory listed, a file copied, a request
# answered), so that another process tells a hung job from a slow one. `roots`: the file system
# a job's source (and local destination) root was on, so that a share that is not mounted is
# not read as an empty tree. `unlistable`: the directories the latest walk could not list, for
# as long as that lasts. `lost`: files `verify` found missing at the destination whose source is
# gone too. `job_totals`: the files and
# bytes the destination confirmed over the job's life (monotonic, whatever cleanup deletes
# later), seeded from the batches that succeeded.
SHARES = """
CREATE TABLE IF NOT EXISTS heartbeats (
    job INTEGER PRIMARY KEY REFERENCES jobs(id),
    started REAL,                            -- when the cycle in hand began (NULL: none)
    beat REAL NOT NULL,                      -- its last sign of progress
    side TEXT NOT NULL,                      -- what it last waited on: 'source', 'destination'
    pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS roots (
    job INTEGER NOT NULL REFERENCES jobs(id),
    side TEXT NOT NULL,                      -- 'source' or 'destination'
    path TEXT NOT NULL,
    device INTEGER NOT NULL,                 -- st_dev of the root when it was last accepted
    fstype TEXT NOT NULL,
    PRIMARY KEY (job, side)
);
CREATE TABLE IF NOT EXISTS unlistable (
    job INTEGER NOT NULL REFERENCES jobs(id),
    path TEXT NOT NULL,                      -- relative to the source, printable
    reason TEXT NOT NULL,
    since REAL NOT NULL,
    cycles INTEGER NOT NULL,                 -- walks in a row that could not list it
    PRIMARY KEY (job, path)
);
CREATE TABLE IF NOT EXISTS lost (
    job INTEGER NOT NULL REFERENCES jobs(id),
    path TEXT NOT NULL,                      -- relative, printable
    reason TEXT NOT NULL,                    -- what verify found, and the deletion's log line
    found REAL NOT NULL,
    PRIMARY KEY (job, path)
);
CREATE TABLE IF NOT EXISTS job_totals (
    job INTEGER PRIMARY KEY REFERENCES jobs(id),
    files INTEGER NOT NULL,                  -- confirmed over the job's life (sent by the tool)
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO job_totals (job, files, bytes)
    SELECT job, SUM(files), SUM(bytes) FROM batches WHERE state = 'succeeded' GROUP BY job;
"""

# The latest audit of each job's destination, by `verify` (version 9).
AUDITS = """
CREATE TABLE IF NOT EXISTS audits (
    job INTEGER PRIMARY KEY REFERENCES jobs(id),
    finished REAL NOT NULL,
    confirmed INTEGER NOT NULL,
    missing INTEGER NOT NULL,
    different INTEGER NOT NULL,
    error TEXT                               -- it could not list the destination
);
"""

# Names kept printable (version 10, store.names): a name an older version kept as it is but
# that now reads as an escape (a backslash before n, r, x, u or another backslash), or that
# holds a control character, is escaped. A row skipped for its name already holds the printable
# text (older versions kept it so), and a confirmed listing holds names as bytes: both stay.
NAMES = """
UPDATE dirs SET name = autosync_escape(name) WHERE name != autosync_escape(name);
UPDATE files SET name = autosync_escape(name) WHERE name != autosync_escape(name)
    AND NOT (state = 'skipped'
             AND reason IN ('name is not valid UTF-8', 'name contains a newline'));
UPDATE cleanup SET name = autosync_escape(name) WHERE name != autosync_escape(name);
UPDATE action_files SET name = autosync_escape(name), path = autosync_escape(path)
    WHERE name != autosync_escape(name) OR path != autosync_escape(path);
UPDATE actions SET dataset = autosync_escape(dataset) WHERE dataset != autosync_escape(dataset);
"""

# The scheduled audit in progress (version 10, ``verify_every``): the directory it has audited
# up to (directories are audited in the order of their id) and its counts so far, written
# after each directory, so that a restart (or kill -9) resumes it there.
AUDIT_PROGRESS = """
CREATE TABLE IF NOT EXISTS audit_progress (
    job INTEGER PRIMARY KEY REFERENCES jobs(id),
    started REAL NOT NULL,
    after_dir INTEGER NOT NULL,              -- every directory up to this id is audited
    dirs INTEGER NOT NULL,                   -- directories audited so far
    confirmed INTEGER NOT NULL,
    present INTEGER NOT NULL,
    missing INTEGER NOT NULL,                -- found and not repaired
    different INTEGER NOT NULL,
    unknown INTEGER NOT NULL
);
"""

# the statements that upgrade a database from version n to n + 1 (6: the runs of a large
# directory's confirmed names; 7: the status page's history; 8: pulse, roots, unlistable
# directories, lost files, life totals; 9: audits; 10: names kept printable)
UPGRADES = {
    1: "ALTER TABLE dirs ADD COLUMN digest BLOB;",
    2: CLEANUP,
    3: HEALTH_TABLES,
    4: ACTIONS,
    5: "ALTER TABLE dirs ADD COLUMN chunks BLOB; ALTER TABLE dirs ADD COLUMN forgotten BLOB;",
    6: HISTORY,
    7: SHARES,
    8: AUDITS,
    9: NAMES + AUDIT_PROGRESS,
}

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, last_full_scan REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dirs (
    id INTEGER PRIMARY KEY,
    job INTEGER NOT NULL REFERENCES jobs(id),
    parent INTEGER NOT NULL,                 -- 0 for a job's root
    name TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL DEFAULT -1,    -- at the last listing; -1: list it next time
    ino INTEGER NOT NULL DEFAULT 0,
    made INTEGER NOT NULL DEFAULT 0,         -- created at the destination as an empty directory
    nfiles INTEGER NOT NULL DEFAULT 0,       -- confirmed files, kept in `done`
    nbytes INTEGER NOT NULL DEFAULT 0,
    done BLOB,
    digest BLOB,                             -- of the last listing that needed nothing
    chunks BLOB,                             -- a large directory's runs of confirmed names
    forgotten BLOB,                          -- names cleanup took out since (NUL-separated)
    UNIQUE (job, parent, name)
);
CREATE TABLE IF NOT EXISTS files (
    dir INTEGER NOT NULL REFERENCES dirs(id),
    name TEXT NOT NULL,
    job INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    since REAL NOT NULL,
    queued_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    batch INTEGER,
    reason TEXT,
    PRIMARY KEY (dir, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_job_state ON files (job, state);
CREATE INDEX IF NOT EXISTS files_batch ON files (batch) WHERE batch IS NOT NULL;
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    job INTEGER NOT NULL REFERENCES jobs(id),
    submission_id TEXT NOT NULL,
    task_id TEXT,
    label TEXT NOT NULL,
    state TEXT NOT NULL,                     -- new, submitted, succeeded, failed
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL,
    submitted REAL,
    finished REAL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS batches_job_state ON batches (job, state);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    job INTEGER NOT NULL REFERENCES jobs(id),
    started REAL NOT NULL,
    finished REAL NOT NULL,
    full INTEGER NOT NULL,
    result TEXT NOT NULL,
    summary TEXT NOT NULL
);
"""
    + CLEANUP
    + HEALTH_TABLES
    + ACTIONS
    + HISTORY
    + SHARES
    + AUDITS
    + AUDIT_PROGRESS
)


def version(conn: sqlite3.Connection) -> int | None:
    """The database's schema version; None for a database without one (a new file)."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
    ).fetchone()
    if not has_meta:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(
        f"BEGIN IMMEDIATE; {SCHEMA} INSERT OR IGNORE INTO meta VALUES "
        f"('schema_version', '{VERSION}'); COMMIT;"
    )


def upgrade(conn: sqlite3.Connection, path: Path) -> None:
    """Bring an older database to this version, inside the caller's write transaction."""
    found = version(conn)  # again: another process may have upgraded it meanwhile
    if found is None or found >= VERSION or found not in UPGRADES:
        return
    log.info("upgrading the state database %s from schema version %d to %d", path, found, VERSION)
    conn.create_function("autosync_escape", 1, names.escape, deterministic=True)
    while found < VERSION:
        for statement in UPGRADES[found].split(";"):
            if statement.strip():
                conn.execute(statement)
        found += 1
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(VERSION),))


def check(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database of another version than this one."""
    found = version(conn)
    if found != VERSION:
        raise StoreError(
            f"state database {path} has schema version {found}, this globus-autosync "
            f"understands {VERSION}; upgrade globus-autosync or move the file aside"
        )

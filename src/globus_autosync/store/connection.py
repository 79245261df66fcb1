"""One connection to the state database: opening it (WAL, the schema checked or upgraded), its
write transactions and the one-line errors an SQLite failure becomes."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from globus_autosync.errors import StoreError
from globus_autosync.store import private, schema

FILE_NAME = "state.db"
_TIMEOUT = 60.0  # seconds to wait for another job's writer


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. Two processes creating the database at once: the switch answers
    "database is locked" at once instead of waiting for the busy timeout, so wait here."""
    deadline = time.monotonic() + _TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def store_error(path: Path, err: sqlite3.Error) -> StoreError:
    """One line for an SQLite error, with what to do: only a damaged file is to be moved aside
    (a full disk, a lock or a permission leaves the database as its last transaction did)."""
    name = getattr(err, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StoreError(
            f"state database {path} is damaged ({err}); move it aside to start afresh"
        )
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        what = "check that its file system has free space and is healthy"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        what = "another process holds it: let it finish, or find it with 'fuser'"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        what = "check the permissions of the state directory and the files in it"
    else:
        what = "fix the cause"
    return StoreError(
        f"state database {path}: {err}; {what}, then run again (what it held is intact)"
    )


def connect(state_dir: Path) -> tuple[sqlite3.Connection, Path]:
    """Open the database for writing, creating it (and the state directory) if needed, with
    its schema created or upgraded; a newer schema is refused."""
    path = state_dir / FILE_NAME
    try:
        private.tighten(state_dir)
        private.private_dir(state_dir)
        # made 0600 before SQLite opens it: its -wal and -shm take the database's mode
        os.close(private.create(path, os.O_RDWR | os.O_CLOEXEC))
        conn = sqlite3.connect(path, timeout=_TIMEOUT, isolation_level=None)
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        Connection(conn, path).ensure_schema()
    except sqlite3.Error as err:
        raise store_error(path, err) from None
    except OSError as err:
        raise StoreError(f"cannot create the state directory {state_dir}: {err.strerror}") from None
    return conn, path


def connect_readonly(state_dir: Path) -> tuple[sqlite3.Connection, Path] | None:
    """Open an existing database for reading; None if there is none yet (the state directory
    or its database does not exist). A state directory that is there but cannot be used (a
    file, unreadable) is a StoreError: never read as "nothing has run"."""
    path = state_dir / FILE_NAME
    usable(state_dir)
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_TIMEOUT)
        version = schema.version(conn)
        if version is None:
            conn.close()
            return None
        if not schema.READABLE_FROM <= version <= schema.VERSION:
            schema.check(conn, path)
    except sqlite3.Error as err:
        raise store_error(path, err) from None
    return conn, path


def usable(state_dir: Path) -> None:
    """Raise a StoreError naming the state directory when it exists but cannot be read."""
    advice = "point --state-dir (or GLOBUS_AUTOSYNC_STATE_DIR) at the tool's state directory"
    try:
        st = state_dir.stat()
    except FileNotFoundError:
        return
    except OSError as err:
        raise StoreError(f"cannot use the state directory {state_dir}: {err.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"the state directory {state_dir} is not a directory; {advice}")
    if not os.access(state_dir, os.R_OK | os.X_OK):
        raise StoreError(
            f"cannot read the state directory {state_dir}: permission denied; run as the user "
            f"that runs the jobs, or {advice}"
        )


class Connection:
    """The connection, the file it opened and its transactions: what every repository holds."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def ensure_schema(self) -> None:
        """Create the schema in a new database, upgrade an older one; refuse a newer one."""
        version = schema.version(self.conn)
        if version is None:
            schema.create(self.conn)
        elif version < schema.VERSION:
            with self.tx():
                schema.upgrade(self.conn, self.path)
        schema.check(self.conn, self.path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE: it waits for a writer of another job). Whatever
        fails inside, COMMIT included (a full disk), leaves no transaction open."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:  # SQLite may have rolled it back already
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def guard(self) -> Iterator[None]:
        """An SQLite error in what runs inside becomes one line saying what to do."""
        try:
            yield
        except sqlite3.Error as err:
            raise store_error(self.path, err) from None

    def has_table(self, table: str) -> bool:
        """Whether the database has this table (one of an older version, read by ``status``,
        may lack it)."""
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
        ).fetchone()
        return row is not None

"""The directories of each job, a trie of (parent, name), and each one's confirmed listing: its
confirmed files in one compressed column (see ``codec``), a few bytes a file, with the digest of
its last listing that needed nothing and the digests of its runs of confirmed names."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import NamedTuple

from globus_autosync.model.plan import SUBMITTED, DirPlan, Pending
from globus_autosync.store import codec
from globus_autosync.store.connection import Connection
from globus_autosync.store.files import WorkFiles
from globus_autosync.store.names import escape, unescape

LARGE = 10_000  # files from which a directory's listing is not decoded whole for a few names
_FORGOTTEN_MAX = 4 << 20  # bytes of names noted as forgotten, past which the digests go


class DirRow(NamedTuple):
    id: int
    parent: int
    name: str
    mtime_ns: int
    ino: int
    made: bool


class RawState(NamedTuple):
    """What a walk's lister needs of one directory (``Directories.raw_state``)."""

    confirmed: bytes | None  # the confirmed listing, encoded (codec)
    digest: bytes | None  # of its last listing that needed nothing
    pending: dict[str, Pending]  # its rows of work in progress, by name
    chunks: bytes | None  # the digests of its runs of confirmed names (runs.pack)
    forgotten: bytes | None  # names cleanup took out of its confirmed listing since (NUL-joined)


class Directories:
    """Every statement about the directories and their confirmed listings."""

    def __init__(self, db: Connection, files: WorkFiles) -> None:
        self.db = db
        self.conn = db.conn
        self.files = files

    # -- the trie -----------------------------------------------------------------------------
    def rows(self, job: int) -> list[DirRow]:
        """Every known directory of a job, parents before children."""
        rows = self.conn.execute(
            "SELECT id, parent, name, mtime_ns, ino, made FROM dirs WHERE job=? ORDER BY id", (job,)
        )
        return [DirRow(r[0], r[1], unescape(r[2]), r[3], r[4], bool(r[5])) for r in rows]

    def add(self, job: int, parent: int, name: str) -> int:
        name = escape(name)
        with self.db.tx():
            self.conn.execute(
                "INSERT OR IGNORE INTO dirs (job, parent, name) VALUES (?, ?, ?)",
                (job, parent, name),
            )
        row = self.conn.execute(
            "SELECT id FROM dirs WHERE job=? AND parent=? AND name=?", (job, parent, name)
        ).fetchone()
        return int(row[0])

    def mark_made(self, dir_ids: Iterable[int]) -> None:
        with self.db.tx():
            self.conn.executemany("UPDATE dirs SET made=1 WHERE id=?", ((d,) for d in dir_ids))

    def forget(self, dir_id: int) -> bool:
        """Drop a directory cleanup removed from the source, if the store holds nothing in it."""
        with self.db.tx():
            busy = self.conn.execute(
                "SELECT 1 FROM files WHERE dir=? UNION ALL SELECT 1 FROM cleanup WHERE dir=? "
                "UNION ALL SELECT 1 FROM dirs WHERE parent=? LIMIT 1",
                (dir_id, dir_id, dir_id),
            ).fetchone()
            if busy:
                return False
            self.conn.execute("DELETE FROM dirs WHERE id=?", (dir_id,))
        return True

    # -- reading a directory ------------------------------------------------------------------
    def state(self, dir_id: int) -> tuple[dict[str, tuple[int, int]], dict[str, Pending]]:
        """One directory's confirmed listing and its work in progress."""
        return self.confirmed(dir_id), self.files.of_dir(dir_id)

    def raw_state(self, dir_id: int, rows: bool = True) -> RawState:
        """``state`` with the confirmed listing still encoded (a worker process decodes it),
        the digest of the last listing that needed nothing and the digests of a large
        directory's runs of confirmed names; ``rows=False`` when the caller knows the directory
        has no row in ``files``."""
        row = self.conn.execute(
            "SELECT done, digest, chunks, forgotten FROM dirs WHERE id=?", (dir_id,)
        ).fetchone()
        confirmed, digest, chunks, forgotten = row if row else (None, None, None, None)
        found = self.files.of_dir(dir_id) if rows else {}
        return RawState(confirmed, digest, found, chunks, forgotten)

    def confirmed(self, dir_id: int) -> dict[str, tuple[int, int]]:
        """A directory's confirmed listing: name -> (size, mtime_ns)."""
        row = self.conn.execute("SELECT done FROM dirs WHERE id=?", (dir_id,)).fetchone()
        return codec.decode(row[0] if row else None)

    def confirmed_entries(self, dir_id: int, names: Iterable[str]) -> dict[str, tuple[int, int]]:
        """The confirmed (size, mtime_ns) of these names of a directory (without decoding the
        rest of a large directory's listing)."""
        row = self.conn.execute("SELECT done FROM dirs WHERE id=?", (dir_id,)).fetchone()
        blob, wanted = (row[0] if row else None), list(names)
        files = codec.count(blob)
        if len(wanted) * 32 < files or files >= LARGE:
            return codec.lookup(blob, wanted)  # a few names, or a large directory
        listing = codec.decode(blob)  # many names of a small one: decoding it whole costs less
        return {n: listing[n] for n in wanted if n in listing}

    def with_confirmed(self, job: int) -> Iterator[int]:
        """The directories of a job whose confirmed listing holds a file."""
        rows = self.conn.execute(
            "SELECT id FROM dirs WHERE job=? AND nfiles > 0 ORDER BY id", (job,)
        ).fetchall()
        return (r[0] for r in rows)

    def confirmed_count(self, job: int) -> int:
        """How many files of a job are confirmed: the size of its tree, for the walker."""
        row = self.conn.execute(
            "SELECT COALESCE(SUM(nfiles), 0) FROM dirs WHERE job=?", (job,)
        ).fetchone()
        return int(row[0])

    # -- writing ------------------------------------------------------------------------------
    def apply(
        self, job: int, dir_id: int, plan: DirPlan, mtime_ns: int, ino: int, made: bool | None
    ) -> None:
        """Record a directory's listing: its changes, the (mtime, inode) it was listed at, the
        digest of a listing that needed nothing (``plan.digest``) and a large directory's runs
        of confirmed names (``plan.chunks``, which clear its ``forgotten`` names)."""
        with self.db.tx():
            self.files.write(job, dir_id, plan.upserts)
            self.conn.executemany(
                "DELETE FROM files WHERE dir=? AND name=?",
                ((dir_id, escape(n)) for n in plan.deletes),
            )
            self.conn.execute(
                # new digests of the runs were made against the confirmed listing as it is now:
                # the names cleanup took out before are accounted for
                "UPDATE dirs SET mtime_ns=?, ino=?, made=COALESCE(?, made), "
                "digest=COALESCE(?, digest), chunks=COALESCE(?, chunks), "
                "forgotten=CASE WHEN ? THEN NULL ELSE forgotten END WHERE id=?",
                (mtime_ns, ino, made, plan.digest, plan.chunks, plan.chunks is not None, dir_id),
            )

    def confirm_baseline(self, dir_id: int, files: dict[str, tuple[int, int]]) -> None:
        """Record files as confirmed without sending them (``baseline``)."""
        with self.db.tx():
            self.add_confirmed(dir_id, files)
            if self.conn.execute("SELECT 1 FROM files WHERE dir=? LIMIT 1", (dir_id,)).fetchone():
                self.conn.executemany(
                    "DELETE FROM files WHERE dir=? AND name=? AND state!=?",
                    ((dir_id, escape(n), SUBMITTED) for n in files),
                )

    def add_confirmed(self, dir_id: int, files: dict[str, tuple[int, int]]) -> None:
        """Merge files into a directory's confirmed listing, in the caller's transaction."""
        row = self.conn.execute("SELECT done FROM dirs WHERE id=?", (dir_id,)).fetchone()
        # merged without decoding the files it keeps: a few bytes a file, whatever the directory
        blob, nfiles, added = codec.merge(row[0], files)
        self.conn.execute(
            # the digest vouched for a listing against the old confirmed listing: forget it
            "UPDATE dirs SET done=?, nfiles=?, nbytes=nbytes+?, digest=NULL WHERE id=?",
            (blob, nfiles, added, dir_id),
        )

    def requeue(self, dir_id: int, names: Collection[str]) -> None:
        """Files confirmed but no longer at the destination (``verify --repair``): out of the
        confirmed listing and of cleanup's candidates, the directory listed again next cycle,
        where they are new and sent."""
        with self.db.tx():
            self.take_out_confirmed(dir_id, names)
            self.conn.execute("UPDATE dirs SET mtime_ns=-1 WHERE id=?", (dir_id,))
            if self.db.has_table("cleanup"):
                self.conn.executemany(
                    "DELETE FROM cleanup WHERE dir=? AND name=?",
                    ((dir_id, escape(n)) for n in names),
                )

    def take_out_confirmed(self, dir_id: int, names: Collection[str]) -> None:
        """Take deleted files out of a directory's confirmed listing, in the caller's
        transaction (a new file of that name is new: the names are noted as ``forgotten``, so
        that no stored digest of a run of confirmed names vouches for them until the directory
        is listed again)."""
        row = self.conn.execute(
            "SELECT done, chunks, forgotten FROM dirs WHERE id=?", (dir_id,)
        ).fetchone()
        blob, chunks, forgotten = row if row else (None, None, None)
        if codec.count(blob) >= LARGE:  # taken out without decoding the files it keeps
            blob, files, added = codec.merge(blob, {}, names)
        else:  # decoded and coded again: faster, for a directory of a few thousand
            listing = codec.decode(blob)
            added = -sum(listing.pop(n, (0, 0))[0] for n in names)
            blob, files = codec.encode(listing), len(listing)
        if chunks is not None:  # the runs holding these names no longer vouch for them
            joined = "\0".join(sorted(names)).encode("utf-8", "surrogateescape")
            forgotten = forgotten + b"\0" + joined if forgotten else joined
            if len(forgotten) > _FORGOTTEN_MAX:
                chunks = forgotten = None  # too many: no run vouches for anything
        self.conn.execute(
            "UPDATE dirs SET done=?, nfiles=?, nbytes=MAX(nbytes+?, 0), digest=NULL, "
            "chunks=?, forgotten=? WHERE id=?",
            (blob, files, added, chunks, forgotten, dir_id),
        )

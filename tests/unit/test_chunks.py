"""A large directory relisted in chunks of names (``chunks``, ``listwork._by_chunks``): only what
changed is looked up, and a stored digest never vouches for a name that is not confirmed.

Each test makes one directory of ``FILES`` files, treated as large (``QUICK_FROM`` lowered) and
cut into chunks of about 8 names (``chunks.MASK`` lowered), and drives whole cycles in this process.
Every change dates the directory in the past (``touch``), so the racy rule never relists it and
each cycle lists it only because its names changed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from globus_autosync import config as config_mod
from globus_autosync.config import Config, Job
from globus_autosync.engine.baseline import baseline_job
from globus_autosync.engine.step import run_job
from globus_autosync.engine.summary import Summary
from globus_autosync.sources.local import chunks, listwork
from globus_autosync.store import codec

FILES = 600
PAST = int(time.time()) - 86400  # settled long ago, never racy


@dataclass
class Flat:
    root: Path
    cfg: Config
    job: Job
    tick: int = PAST
    looked_up: list[int] = field(default_factory=list)  # names of unsure chunks, per lookup

    @property
    def day(self) -> Path:
        return self.root / "source" / "day"

    @property
    def dest(self) -> Path:
        return Path(self.job.destination) / "day"

    def write(self, name: str, data: bytes) -> None:
        path = self.day / name
        path.write_bytes(data)
        self.tick += 10
        os.utime(path, (self.tick, self.tick))
        self.touch()

    def touch(self) -> None:
        """The directory's names changed: its mtime moves (to a time in the past)."""
        self.tick += 10
        os.utime(self.day, (self.tick, self.tick))

    def cycle(self, job: Job | None = None) -> Summary:
        return run_job(job or self.job, self.cfg, self.root / "state")

    def column(self, name: str) -> bytes | None:
        """A column of the directory's row in the store."""
        conn = sqlite3.connect(self.root / "state" / "state.db")
        try:
            row = conn.execute(f"SELECT {name} FROM dirs WHERE name='day'").fetchone()
        finally:
            conn.close()
        return row[0] if row else None

    def chunks(self) -> bytes | None:
        return self.column("chunks")


@pytest.fixture
def flat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flat]:
    monkeypatch.setattr(listwork, "QUICK_FROM", FILES // 2)
    monkeypatch.setattr(chunks, "MASK", 7)
    day = tmp_path / "source" / "day"
    day.mkdir(parents=True)
    for i in range(FILES):
        (day / f"frame_{i:05d}.tif").write_bytes(b"%d" % i)
        os.utime(day / f"frame_{i:05d}.tif", (PAST, PAST))
    shutil.copytree(day, tmp_path / "dest" / "day")  # baseline: the files are there already
    cfg = config_mod.parse(
        tmp_path / "config.toml",
        {
            "job": [
                {
                    "name": "flat",
                    "source": str(tmp_path / "source"),
                    "destination": str(tmp_path / "dest"),
                    "settle": "5s",
                    "full_scan_every": "3650d",
                    "exclude": ["*.tmp"],
                }
            ]
        },
    )
    f = Flat(tmp_path, cfg, cfg.jobs[0])
    f.touch()
    baseline_job(f.job, tmp_path / "state", None)
    real = codec.find

    def find(
        blob: bytes | None, values_of: Collection[str], names_of: Collection[str] = ()
    ) -> tuple[dict[str, tuple[int, int]], set[str]]:
        f.looked_up.append(len(names_of))
        return real(blob, values_of, names_of)

    monkeypatch.setattr(codec, "find", find)
    yield f


def test_a_new_file_costs_the_lookup_of_its_run_and_a_quiet_relist_none(flat: Flat) -> None:
    flat.write("new_1.tif", b"one")
    first = flat.cycle()  # no digests stored yet: every name is checked against the table
    assert (first.changed, first.sent_files, first.confirmed) == (1, 1, 1)
    assert (flat.dest / "new_1.tif").read_bytes() == b"one"
    assert flat.chunks() is not None
    flat.looked_up.clear()
    flat.write("new_2.tif", b"two")
    second = flat.cycle()
    assert (second.changed, second.sent_files, second.scanned) == (1, 1, FILES + 2)
    assert (flat.dest / "new_2.tif").read_bytes() == b"two"
    # the chunks of new_2 and of new_1 (confirmed since the last listing): a few dozen names
    assert 0 < sum(flat.looked_up) < 100
    for looked_up in (range(1, 60), range(1)):  # new_2's chunk (confirmed since), then none
        flat.looked_up.clear()
        flat.touch()  # relisted, nothing new
        quiet = flat.cycle()
        assert (quiet.changed, quiet.sent_files, quiet.scanned) == (0, 0, FILES + 2)
        assert sum(flat.looked_up) in looked_up
    assert len(os.listdir(flat.dest)) == FILES + 2


def test_a_new_file_under_a_name_cleanup_deleted_is_sent(flat: Flat) -> None:
    flat.touch()
    flat.cycle()
    flat.touch()
    flat.cycle()  # every chunk stored
    job = replace(flat.job, cleanup=replace(flat.job.cleanup, delete_after=0.0, max_deletes=1))
    for _ in range(3):
        if flat.cycle(job).deleted:
            break
    [name] = {f"frame_{i:05d}.tif" for i in range(FILES)} - set(os.listdir(flat.day))
    assert flat.column("forgotten") == name.encode()  # no stored digest vouches for it now
    assert flat.chunks() is not None  # the others still vouch for their names
    flat.write(name, b"a new scan")  # before any listing: the names of the chunks stored before
    flat.looked_up.clear()
    summary = flat.cycle()
    assert (summary.changed, summary.sent_files) == (1, 1)
    assert (flat.dest / name).read_bytes() == b"a new scan"
    assert 0 < sum(flat.looked_up) < 100  # its chunk, not every name
    assert flat.column("forgotten") is None  # listed again: the digests are made anew


def test_digests_made_under_other_exclude_patterns_are_not_trusted(flat: Flat) -> None:
    flat.write("notes.tmp", b"excluded")
    flat.write("a.tif", b"a")
    assert flat.cycle().sent_files == 1  # a.tif; notes.tmp is excluded
    flat.touch()
    flat.cycle()  # every chunk vouched for, the one holding notes.tmp too (it is excluded)
    flat.touch()
    summary = flat.cycle(replace(flat.job, exclude=()))
    assert (summary.changed, summary.sent_files) == (1, 1)
    assert (flat.dest / "notes.tmp").read_bytes() == b"excluded"


def test_a_listing_in_another_order_is_still_compared_right(
    flat: Flat, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat.write("a.tif", b"a")
    flat.cycle()
    flat.touch()
    flat.cycle()  # every chunk stored

    real = os.scandir

    class Reversed:
        """os.scandir, its entries in the reverse order (as another file system may list)."""

        def __init__(self, fd: int) -> None:
            with real(fd) as it:
                self.entries = list(it)[::-1]

        def __enter__(self) -> Iterator[os.DirEntry[str]]:
            return iter(self.entries)

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(os, "scandir", Reversed)  # the listing of every directory
    flat.write("b.tif", b"b")
    summary = flat.cycle()
    assert (summary.changed, summary.sent_files, summary.scanned) == (1, 1, FILES + 2)
    assert (flat.dest / "b.tif").read_bytes() == b"b"


def test_new_subdirectories_and_links_are_looked_at(flat: Flat) -> None:
    flat.touch()
    flat.cycle()
    flat.touch()
    flat.cycle()  # every chunk stored
    (flat.day / "sub").mkdir()
    (flat.day / "sub" / "inner.tif").write_bytes(b"inner")
    os.utime(flat.day / "sub" / "inner.tif", (PAST, PAST))
    (flat.day / "link.tif").symlink_to("frame_00001.tif")
    flat.touch()
    summary = flat.cycle()
    assert (summary.sent_files, summary.skipped) == (1, 1)  # the link: symlinks = "skip"
    assert (flat.dest / "sub" / "inner.tif").read_bytes() == b"inner"


def test_cleanup_in_a_large_directory_never_decodes_its_whole_listing(
    flat: Flat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted files are taken out of the confirmed listing by ``codec.merge``, their records
    read by ``codec.lookup``: a directory of a million files never becomes a million objects
    (the first cycle with cleanup on enrolls the files confirmed before: that one reads it)."""
    from globus_autosync.store import dirs as store_dirs

    monkeypatch.setattr(store_dirs, "LARGE", FILES // 2)
    decoded: list[int] = []
    real = codec.decode

    def decode(blob: bytes | None) -> dict[str, tuple[int, int]]:
        decoded.append(codec.count(blob))
        return real(blob)

    monkeypatch.setattr(codec, "decode", decode)
    job = replace(flat.job, cleanup=replace(flat.job.cleanup, delete_after=0.0, max_deletes=5))
    flat.cycle(job)  # enrolls every file (decoding the listing once)
    decoded.clear()
    deleted = 0
    for _ in range(3):
        flat.touch()
        deleted += flat.cycle(job).deleted
    assert deleted == 15
    assert len(os.listdir(flat.day)) == FILES - 15
    assert not [n for n in decoded if n >= FILES // 2]
    flat.touch()
    assert flat.cycle(flat.job).sent_files == 0  # what is left is still known, nothing re-sent

"""Listing one directory: what is a file, what is passed over and why, what is excluded."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from globus_autosync.sources.base import (
    DANGLING_SYMLINK,
    SKIPPED_SPECIAL,
    SKIPPED_SYMLINK,
    UNSENDABLE_NEWLINE,
    UNSENDABLE_UTF8,
    Excluder,
    printable,
    unsendable,
)
from globus_autosync.sources.local.listing import list_dir


def test_unsendable_and_printable() -> None:
    latin = os.fsdecode(b"caf\xe9")
    assert unsendable("café") is None
    assert unsendable(latin) == UNSENDABLE_UTF8
    assert unsendable("a\nb") == UNSENDABLE_NEWLINE
    assert unsendable("a\rb") == UNSENDABLE_NEWLINE
    assert printable(latin) == "caf\\xe9"
    assert printable("a\nb\rc") == "a\\nb\\rc"
    assert printable("café") == "café"


@pytest.mark.parametrize(
    ("patterns", "name", "rel", "want"),
    [
        (("*.tmp",), "x.tmp", "a/b/x.tmp", True),
        (("*.tmp",), "x.tif", "a/b/x.tif", False),
        ((".*",), ".hidden", "a/.hidden", True),
        (("a/b",), "b", "a/b", True),  # a relative path
        (("a/b",), "b", "c/b", False),
        (("raw/*.txt",), "n.txt", "raw/n.txt", True),
        (("raw/*.txt",), "n.txt", "other/n.txt", False),
        (("*.TMP",), "x.tmp", "x.tmp", False),  # case matters
        ((), "x", "x", False),
    ],
)
def test_excluder(patterns: tuple[str, ...], name: str, rel: str, want: bool) -> None:
    assert Excluder(patterns)(name, rel) is want


def test_list_dir(tmp_path: Path) -> None:
    (tmp_path / "f.dat").write_bytes(b"12345")
    os.utime(tmp_path / "f.dat", ns=(1, 1_600_000_000_000_000_001))
    (tmp_path / "sub").mkdir()
    (tmp_path / "skip.tmp").write_text("")
    (tmp_path / "link").symlink_to("f.dat")
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "dirlink").symlink_to("sub")
    os.mkfifo(tmp_path / "fifo")
    with open(os.fsencode(tmp_path) + b"/bad\xff", "wb"):
        pass
    (tmp_path / "two\nlines").write_text("")

    out = list_dir(str(tmp_path), "rel", Excluder(("*.tmp",)), follow_symlinks=False)
    assert out.files == {"f.dat": (5, 1_600_000_000_000_000_001)}
    assert [s.name for s in out.subdirs] == ["sub"]
    assert out.skipped == {
        "link": SKIPPED_SYMLINK,
        "dangling": SKIPPED_SYMLINK,
        "dirlink": SKIPPED_SYMLINK,
        "fifo": SKIPPED_SPECIAL,
        os.fsdecode(b"bad\xff"): UNSENDABLE_UTF8,
        "two\nlines": UNSENDABLE_NEWLINE,
    }
    # for a local transport any name is a name: listed as a file, byte for byte
    out = list_dir(str(tmp_path), "", Excluder((), check_names=False), follow_symlinks=False)
    assert {os.fsdecode(b"bad\xff"), "two\nlines"} <= set(out.files)

    out = list_dir(str(tmp_path), "", Excluder(()), follow_symlinks=True)
    assert set(out.files) == {"f.dat", "link", "skip.tmp"}
    assert out.files["link"] == out.files["f.dat"]
    assert sorted(s.name for s in out.subdirs) == ["dirlink", "sub"]
    assert out.skipped["dangling"] == DANGLING_SYMLINK


def test_list_dir_of_an_unreadable_or_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        list_dir(str(tmp_path / "missing"), "", Excluder(()), follow_symlinks=False)


def test_list_dir_skips_a_file_that_vanishes_while_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a.dat", "gone.dat", "gone_dir"):
        (tmp_path / name).write_text(name)
    real = os.lstat

    def lstat(path: str, *, dir_fd: int | None = None) -> os.stat_result:
        if path.startswith("gone"):
            raise FileNotFoundError(2, "No such file or directory")
        return real(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "lstat", lstat)
    out = list_dir(str(tmp_path), "", Excluder(()), follow_symlinks=False)
    assert (set(out.files), out.subdirs, out.skipped) == ({"a.dat"}, [], {})


def test_an_entry_that_cannot_be_looked_at_is_judged_by_its_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory that may be read but not searched: what its listing tells of each entry."""
    (tmp_path / "f.dat").write_text("x")
    (tmp_path / "link").symlink_to("f.dat")
    os.mkfifo(tmp_path / "fifo")

    def lstat(path: str, *, dir_fd: int | None = None) -> os.stat_result:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "lstat", lstat)
    out = list_dir(str(tmp_path), "", Excluder(()), follow_symlinks=False)
    assert out.skipped["link"] == SKIPPED_SYMLINK
    assert out.skipped["fifo"] == SKIPPED_SPECIAL


def _list_as_nobody(path: Path, follow: bool) -> tuple[Any, ...]:
    """list_dir in a child process without privileges (root may search any directory)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            out = list_dir(str(path), "", Excluder(()), follow)
            answer = repr((out.files, [s.name for s in out.subdirs], out.skipped))
            os.write(write, answer.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        text = fh.read()
    os.waitpid(pid, 0)
    return tuple(eval(text))  # our own repr of dicts and lists of strings


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_directory_that_can_be_read_but_not_searched() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(os.path.realpath(tmp))
        base.chmod(0o755)
        if any(os.stat(p).st_mode & 0o001 == 0 for p in base.parents):
            pytest.skip("the temporary directory is not reachable by another user")
        _not_searchable(base / "d")


def _not_searchable(d: Path) -> None:
    d.mkdir()
    (d / "f.dat").write_text("x")
    (d / "sub").mkdir()
    (d / "link").symlink_to("f.dat")
    (d / "dangling").symlink_to("nowhere")
    os.mkfifo(d / "fifo")
    d.chmod(0o644)
    try:
        files, subdirs, skipped = _list_as_nobody(d, follow=False)
        denied = "cannot stat: Permission denied"
        assert (files, subdirs) == ({}, [])
        assert skipped == {
            "f.dat": denied,
            "sub": denied,
            "link": SKIPPED_SYMLINK,
            "dangling": SKIPPED_SYMLINK,
            "fifo": SKIPPED_SPECIAL,
        }
        files, subdirs, skipped = _list_as_nobody(d, follow=True)
        assert skipped["link"] == skipped["dangling"] == denied
    finally:
        d.chmod(0o755)


def test_chunks_of_names_a_new_name_changes_its_own_chunk_only(tmp_path: Path) -> None:
    """``list_chunks``: regular files are cut into chunks (content-defined: a chunk ends after a
    name whose CRC-32 is a multiple of ``chunks.NAMES_PER_CHUNK``); a chunk found among the stored
    digests is not handed on, so after one new name only its chunk (two, if it ends one) is
    unsure."""
    from globus_autosync.sources.local import chunks
    from globus_autosync.sources.local.listing import list_chunks

    for i in range(2000):
        (tmp_path / f"frame_{i:05d}.tif").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to("frame_00001.tif")

    def listing(stored: set[bytes]) -> tuple[int, set[bytes], list[tuple[bytes, list[str]]]]:
        unsure: list[tuple[bytes, list[str]]] = []
        watched = {"frame_00007.tif"}
        out, nfiles, found = list_chunks(
            str(tmp_path),
            "",
            Excluder(()),
            False,
            watched,
            stored,
            lambda d, names: unsure.append((d, names)),
        )
        assert [s.name for s in out.subdirs] == ["sub"] and out.skipped == {"link": SKIPPED_SYMLINK}
        assert list(out.files) == ["frame_00007.tif"]  # work in progress: looked at
        return nfiles, found, unsure

    nfiles, found, first = listing(set())
    assert nfiles == 2000 and not found
    names = [n for _, chunk in first for n in chunk]
    assert sorted(names) == sorted(f"frame_{i:05d}.tif" for i in range(2000) if i != 7)
    assert len(first) > 2000 // chunks.NAMES_PER_CHUNK // 2  # about one chunk in NAMES_PER_CHUNK
    digests = {d for d, _ in first}
    (tmp_path / "new.tif").write_bytes(b"")
    nfiles, found, second = listing(digests)
    assert nfiles == 2001
    assert 1 <= len(second) <= 2 and "new.tif" in [n for _, chunk in second for n in chunk]
    assert len(found) >= len(digests) - 1
    nfiles, found, third = listing(found | {d for d, _ in second})
    assert (nfiles, third) == (2001, [])  # every chunk vouched for: nothing handed on

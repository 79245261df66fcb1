"""Listing one directory: what is a file, what is passed over and why, what is excluded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from globus_autosync.scan import (
    DANGLING_SYMLINK,
    SKIPPED_SPECIAL,
    SKIPPED_SYMLINK,
    UNSENDABLE_NEWLINE,
    UNSENDABLE_UTF8,
    Excluder,
    list_dir,
    printable,
    unsendable,
)


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
        "link": SKIPPED_SYMLINK, "dangling": SKIPPED_SYMLINK, "dirlink": SKIPPED_SYMLINK,
        "fifo": SKIPPED_SPECIAL, "bad\\xff": UNSENDABLE_UTF8, "two\\nlines": UNSENDABLE_NEWLINE,
    }  # fmt: skip

    out = list_dir(str(tmp_path), "", Excluder(()), follow_symlinks=True)
    assert set(out.files) == {"f.dat", "link", "skip.tmp"}
    assert out.files["link"] == out.files["f.dat"]
    assert sorted(s.name for s in out.subdirs) == ["dirlink", "sub"]
    assert out.skipped["dangling"] == DANGLING_SYMLINK


def test_list_dir_of_an_unreadable_or_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        list_dir(str(tmp_path / "missing"), "", Excluder(()), follow_symlinks=False)

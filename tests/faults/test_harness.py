"""The checks of the fault suite catch what they are for (no injector needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .harness import assert_holds, assert_nothing_lost, snapshot


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a.dat").write_bytes(b"a")
    (src / "b.dat").write_bytes(b"b")
    shutil.copytree(src, dst)
    return src, dst


def test_a_stray_part_file_a_missing_file_or_another_mtime_fails(tmp_path: Path) -> None:
    src, dst = _tree(tmp_path)
    assert_holds(dst, snapshot(src))
    (dst / "d" / ".autosync-0123.part").write_bytes(b"")
    with pytest.raises(AssertionError, match="stray"):
        assert_holds(dst, snapshot(src))
    (dst / "d" / ".autosync-0123.part").unlink()
    (dst / "b.dat").touch()
    with pytest.raises(AssertionError, match=r"differing \['b.dat'\]"):
        assert_holds(dst, snapshot(src))
    (dst / "b.dat").unlink()
    with pytest.raises(AssertionError, match=r"missing \['b.dat'\]"):
        assert_holds(dst, snapshot(src))


def test_a_source_file_deleted_before_it_was_delivered_is_lost(tmp_path: Path) -> None:
    src, dst = _tree(tmp_path)
    before = snapshot(src)
    (src / "b.dat").unlink()  # delivered, then cleaned up: fine
    assert_nothing_lost(before, src, dst)
    (src / "d" / "a.dat").unlink()
    (dst / "d" / "a.dat").write_bytes(b"torn")  # gone from the source, not intact at the dest
    with pytest.raises(AssertionError, match=r"d/a.dat"):
        assert_nothing_lost(before, src, dst)

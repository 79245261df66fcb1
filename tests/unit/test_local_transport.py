"""The local transport on its own: what each file's outcome is, and what reaches the disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from globus_autosync.config import Job
from globus_autosync.errors import TransportError
from globus_autosync.transports.base import DONE, FAIL, RETRY, SKIP, Item
from globus_autosync.transports.local import LocalTransport, temp_name


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "src"
    path.mkdir()
    return path


@pytest.fixture
def dst(tmp_path: Path) -> Path:
    path = tmp_path / "dst"
    path.mkdir()
    return path


@pytest.fixture
def transport(src: Path, dst: Path) -> LocalTransport:
    return LocalTransport(Job(name="j", source=src, destination=str(dst), settle=0.0))


def _file(src: Path, rel: str, data: bytes, mtime_ns: int = 1_500_000_000_123_456_789) -> Item:
    path = src / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return Item(rel, len(data), mtime_ns)


def _send(t: LocalTransport, *items: Item) -> dict[str, str]:
    task = t.submit(t.new_submission_id(), "label", items)
    report = t.poll(task, items, 0.0)
    assert report.finished
    return {rel: o.result for rel, o in report.outcomes.items()}


def _leftovers(top: Path) -> list[Path]:
    return [p for p in top.rglob(".autosync-*.part")]


def test_copies_bytes_and_mtime_atomically(transport: LocalTransport, src: Path, dst: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    items = [_file(src, "a/b/c.tif", data), _file(src, "empty.dat", b"")]
    assert _send(transport, *items) == {"a/b/c.tif": DONE, "empty.dat": DONE}
    out = dst / "a" / "b" / "c.tif"
    assert out.read_bytes() == data
    assert out.stat().st_mtime_ns == items[0].mtime_ns
    assert (dst / "empty.dat").read_bytes() == b""
    assert _leftovers(dst) == []


def test_a_file_already_there_is_left_alone(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    item = _file(src, "f", b"data")
    _send(transport, item)
    ino = (dst / "f").stat().st_ino
    assert _send(transport, item) == {"f": DONE}
    assert (dst / "f").stat().st_ino == ino


def test_a_different_file_at_the_destination_is_replaced(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    (dst / "f").write_bytes(b"stale content")
    item = _file(src, "f", b"new")
    assert _send(transport, item) == {"f": DONE}
    assert (dst / "f").read_bytes() == b"new"


def test_vanished_is_skipped(transport: LocalTransport, src: Path, dst: Path) -> None:
    item = _file(src, "gone", b"x")
    (src / "gone").unlink()
    ok = _file(src, "ok", b"y")
    task = transport.submit("s", "l", [item, ok])
    report = transport.poll(task, [item, ok], 0.0)
    assert report.outcomes["gone"].result == SKIP
    assert "vanished" in (report.outcomes["gone"].reason or "")
    assert report.outcomes["ok"].result == DONE
    assert not (dst / "gone").exists()


def test_the_torn_copy_of_a_vanished_file_is_removed(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    item = _file(src, "d/gone.tif", b"x" * 100)
    (src / "d" / "gone.tif").unlink()
    (dst / "d").mkdir()
    torn = dst / "d" / temp_name("gone.tif")
    torn.write_bytes(b"x" * 10)  # what a run killed while copying it left
    assert _send(transport, item) == {"d/gone.tif": SKIP}
    assert _leftovers(dst) == []


def test_changed_since_scanned_is_retried_and_not_written(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    item = _file(src, "f", b"first")
    _file(src, "f", b"first and more")  # grew after the scan
    assert _send(transport, item) == {"f": RETRY}
    assert not (dst / "f").exists()
    assert _leftovers(dst) == []


def test_replaced_by_a_directory_is_retried(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    item = _file(src, "f", b"x")
    (src / "f").unlink()
    (src / "f").mkdir()
    assert _send(transport, item) == {"f": RETRY}
    assert not (dst / "f").exists()


def test_a_directory_in_the_way_fails_and_is_kept(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    (dst / "f").mkdir()
    (dst / "f" / "precious").write_text("keep me")
    item = _file(src, "f", b"x")
    task = transport.submit("s", "l", [item])
    outcome = transport.poll(task, [item], 0.0).outcomes["f"]
    assert outcome.result == FAIL
    assert "directory" in (outcome.reason or "")
    assert (dst / "f" / "precious").read_text() == "keep me"
    assert _leftovers(dst) == []


def test_a_file_in_the_way_of_a_directory_fails(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    (dst / "d").write_text("a file")
    item = _file(src, "d/f", b"x")
    assert _send(transport, item) == {"d/f": FAIL}
    assert (dst / "d").read_text() == "a file"


def test_poll_after_a_crash_confirms_only_what_arrived_whole(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    items = [_file(src, "a", b"aaa"), _file(src, "b", b"bbb"), _file(src, "c", b"ccc")]
    _send(transport, items[0])
    (dst / "b").write_bytes(b"b")  # a torn copy under the real name (not ours, but still)
    fresh = LocalTransport(Job(name="j", source=src, destination=str(dst)))
    report = fresh.poll("task-of-a-killed-run", items, 0.0)
    assert report.finished
    assert {k: v.result for k, v in report.outcomes.items()} == {"a": DONE, "b": RETRY, "c": RETRY}
    assert report.reason == "interrupted"
    whole = fresh.poll("task-of-a-killed-run", items[:1], 0.0)
    assert whole.reason is None
    assert whole.outcomes["a"].result == DONE


def test_resubmission_after_a_crash_reuses_the_temporary_name(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    item = _file(src, "d/f.tif", b"x" * 1000)
    (dst / "d").mkdir()
    torn = dst / "d" / temp_name("f.tif")
    torn.write_bytes(b"x" * 10)  # what a killed copy left
    assert _send(transport, item) == {"d/f.tif": DONE}
    assert not torn.exists()
    assert temp_name("f.tif") == temp_name("f.tif")
    assert temp_name("f.tif").startswith(".autosync-")
    assert temp_name("f.tif").endswith(".part")


def test_mkdirs(transport: LocalTransport, dst: Path) -> None:
    (dst / "blocker").write_text("")
    errors = transport.mkdirs(["a/b/c", "a", "", "blocker/x"])
    assert (dst / "a" / "b" / "c").is_dir()
    assert list(errors) == ["blocker/x"]


def test_ready_and_checks(tmp_path: Path, src: Path, dst: Path) -> None:
    missing = LocalTransport(Job(name="j", source=src, destination=str(tmp_path / "nope")))
    with pytest.raises(TransportError, match="not a directory"):
        missing.ready()
    (check,) = missing.checks()
    assert not check.ok
    good = LocalTransport(Job(name="j", source=src, destination=str(dst)))
    good.ready()
    (check,) = good.checks()
    assert check.ok
    assert list(dst.iterdir()) == []  # the probe is cleaned up

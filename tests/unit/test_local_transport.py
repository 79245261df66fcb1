"""The local transport on its own: what each file's outcome is, and what reaches the disk."""

from __future__ import annotations

import errno
import os
import random
import stat
from pathlib import Path

import pytest

from globus_autosync.config import Job
from globus_autosync.errors import TransportError
from globus_autosync.transports.base import DONE, FAIL, RETRY, SKIP, Item
from globus_autosync.transports.local import filecopy
from globus_autosync.transports.local.transport import LocalTransport, temp_name


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


@pytest.fixture(params=[1, 4], ids=lambda n: f"transfers={n}")
def transfers(request: pytest.FixtureRequest) -> int:
    value: int = request.param
    return value


def _transport(src: Path, dst: Path, transfers: int) -> LocalTransport:
    return LocalTransport(
        Job(name="j", source=src, destination=str(dst), settle=0.0, transfers=transfers)
    )


@pytest.fixture
def transport(src: Path, dst: Path, transfers: int) -> LocalTransport:
    return _transport(src, dst, transfers)


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
    fresh = _transport(src, dst, transport.transfers)
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


def test_ready_and_checks(tmp_path: Path, src: Path, dst: Path, transfers: int) -> None:
    missing = _transport(src, tmp_path / "nope", transfers)
    with pytest.raises(TransportError, match="not a directory"):
        missing.ready()
    (check,) = missing.checks()
    assert not check.ok
    good = _transport(src, dst, transfers)
    good.ready()
    (check,) = good.checks()
    assert check.ok
    assert list(dst.iterdir()) == []  # the probe is cleaned up


def test_a_batch_longer_than_the_fsync_window(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    """More files than are ever copied and not yet fsynced at once (256), in new nested
    directories, of every size from empty to a few MB: each arrives whole with its mtime."""
    rng = random.Random(13)
    items = []
    for i in range(300):
        size = rng.choice([0, 1, 4096, 65536 + 3, 1 << 20])
        if i % 50 == 0:
            size = 3 * (1 << 20) + 1
        items.append(_file(src, f"run_{i % 3}/deep/{i:04}.tif", rng.randbytes(size), 10**18 + i))
    outcomes = _send(transport, *items)
    assert set(outcomes.values()) == {DONE}
    assert len(outcomes) == len(items)
    for item in items:
        out = dst / item.relpath
        assert out.read_bytes() == (src / item.relpath).read_bytes(), item.relpath
        assert out.stat().st_mtime_ns == item.mtime_ns
    assert _leftovers(dst) == []


def test_one_failure_in_a_batch_leaves_the_others_done(
    transport: LocalTransport, src: Path, dst: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [_file(src, f"d/{i:03}.dat", os.urandom(50_000)) for i in range(40)]
    real = filecopy.copy_data

    def broken_disk(fsrc: int, fdst: int, size: int) -> int:
        if os.fstat(fsrc).st_ino == (src / "d/017.dat").stat().st_ino:
            os.write(fdst, b"x" * 100)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(fsrc, fdst, size)

    monkeypatch.setattr(filecopy, "copy_data", broken_disk)
    task = transport.submit("s", "l", items)
    report = transport.poll(task, items, 0.0)
    bad = report.outcomes.pop("d/017.dat")
    assert bad.result == FAIL
    assert "Input/output error" in (bad.reason or "")
    assert {o.result for o in report.outcomes.values()} == {DONE}
    assert not (dst / "d/017.dat").exists()
    assert sorted(p.name for p in (dst / "d").iterdir()) == [
        f"{i:03}.dat" for i in range(40) if i != 17
    ]


def test_a_file_that_cannot_be_made_durable_is_not_renamed(
    transport: LocalTransport, src: Path, dst: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [_file(src, "a", b"aaa"), _file(src, "b", b"bbb")]

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    task = transport.submit("s", "l", items)
    report = transport.poll(task, items, 0.0)
    assert {o.result for o in report.outcomes.values()} == {FAIL}
    assert list(dst.iterdir()) == []  # neither a final name nor a temporary one
    monkeypatch.undo()
    assert _send(transport, *items) == {"a": DONE, "b": DONE}


@pytest.mark.parametrize("rel", ["bad/f", "bad/new/f"])  # in it, or in a directory made in it
def test_a_directory_that_cannot_be_made_durable_fails_its_files_until_it_can(
    transport: LocalTransport, src: Path, dst: Path, monkeypatch: pytest.MonkeyPatch, rel: str
) -> None:
    items = [_file(src, rel, b"f"), _file(src, "good/g", b"g")]
    real = filecopy.fsync_directory

    def fsync_directory(path: str) -> None:
        if path == str(dst / "bad"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(path)

    monkeypatch.setattr(filecopy, "fsync_directory", fsync_directory)
    task = transport.submit("s", "l", items)
    outcomes = transport.poll(task, items, 0.0).outcomes
    assert outcomes["good/g"].result == DONE
    assert outcomes[rel].result == FAIL
    assert "durable" in (outcomes[rel].reason or "")
    ino = (dst / rel).stat().st_ino
    monkeypatch.undo()
    assert _send(transport, items[0]) == {rel: DONE}  # retried: confirmed, not rewritten
    assert (dst / rel).stat().st_ino == ino


def test_a_directory_without_fsync_is_no_failure(
    transport: LocalTransport, src: Path, dst: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems answer EINVAL to an fsync of a directory: nothing more to be had."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    item = _file(src, "d/f", b"data")
    assert _send(transport, item) == {"d/f": DONE}
    assert (dst / "d" / "f").read_bytes() == b"data"


def test_a_torn_copy_of_a_changed_file_is_removed(
    transport: LocalTransport, src: Path, dst: Path
) -> None:
    item = _file(src, "f", b"first")
    torn = dst / temp_name("f")
    torn.write_bytes(b"fi")  # what a run killed while copying it left
    _file(src, "f", b"first and more")  # then it changed: sent later, under a new scan
    assert _send(transport, item) == {"f": RETRY}
    assert _leftovers(dst) == []


@pytest.mark.parametrize(
    "unsupported",
    [
        ["copy_file_range"],
        ["copy_file_range", "sendfile"],
    ],
)
def test_copy_falls_back_when_the_kernel_cannot_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unsupported: list[str]
) -> None:
    data = os.urandom(5 * (1 << 20) + 11)
    (tmp_path / "in").write_bytes(data)
    calls: list[str] = []
    for name in unsupported:

        def refuse(*args: object, _name: str = name) -> int:
            calls.append(_name)
            raise OSError(errno.EXDEV if _name == "copy_file_range" else errno.EINVAL, _name)

        monkeypatch.setattr(os, name, refuse)
    with open(tmp_path / "in", "rb") as fin, open(tmp_path / "out", "wb") as fout:
        assert filecopy.copy_data(fin.fileno(), fout.fileno(), len(data)) == len(data)
    assert (tmp_path / "out").read_bytes() == data
    assert calls == unsupported  # each tried once, then given up for this file


def test_a_full_disk_is_not_a_reason_to_fall_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "in").write_bytes(b"x" * 1000)

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "copy_file_range", full)
    monkeypatch.setattr(os, "sendfile", full)
    with (
        open(tmp_path / "in", "rb") as fin,
        open(tmp_path / "out", "wb") as fout,
        pytest.raises(OSError) as info,
    ):
        filecopy.copy_data(fin.fileno(), fout.fileno(), 1000)
    assert info.value.errno == errno.ENOSPC


def test_a_shorter_source_copies_what_there_is(tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"abc")
    with open(tmp_path / "in", "rb") as fin, open(tmp_path / "out", "wb") as fout:
        assert filecopy.copy_data(fin.fileno(), fout.fileno(), 10) == 3
    assert (tmp_path / "out").read_bytes() == b"abc"

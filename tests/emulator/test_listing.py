"""operation_ls of the emulator, as the real service answers it: whole-second times, paging,
``filter`` (clauses ANDed with ``/``, several filters ORed), invalid links, and a
Google-Drive-like collection."""

from __future__ import annotations

import os
from pathlib import Path

import globus_sdk
import pytest

from .fixtures import EmulatorHarness

T0 = 1_600_000_000  # 2020-09-13 12:26:40 UTC


def write(path: Path, data: bytes, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def names(doc: globus_sdk.GlobusHTTPResponse) -> list[str]:
    return [e["name"] for e in doc["DATA"]]


@pytest.fixture
def h(globus_emulator: EmulatorHarness) -> EmulatorHarness:
    d = globus_emulator.src_dir / "d"
    write(d / "a.tif", b"1", T0 + 0.75)
    write(d / "b.tif", b"22", T0 + 100)
    write(d / "c.txt", b"333", T0 + 200)
    (d / "sub").mkdir()
    os.symlink("nowhere", d / "z-dangling")
    return globus_emulator


def test_times_are_whole_seconds_and_a_dangling_link_is_invalid_symlink(
    h: EmulatorHarness,
) -> None:
    tc = h.transfer_client()
    doc = tc.operation_ls(h.src_id, path="/d")
    by_name = {e["name"]: e for e in doc["DATA"]}
    assert by_name["a.tif"]["last_modified"] == "2020-09-13 12:26:40+00:00"  # .75 s cut off
    assert by_name["z-dangling"]["type"] == "invalid_symlink"
    assert by_name["z-dangling"]["link_target"] == "nowhere"


def test_filters_and_within_one_or_across_several(h: EmulatorHarness) -> None:
    tc = h.transfer_client()
    assert names(tc.operation_ls(h.src_id, path="/d", filter="type:dir")) == ["sub"]
    assert names(tc.operation_ls(h.src_id, path="/d", filter="name:~*.tif")) == [
        "a.tif", "b.tif"
    ]  # fmt: skip
    assert names(tc.operation_ls(h.src_id, path="/d", filter="name:~*.tif/size:>1")) == ["b.tif"]
    both = tc.operation_ls(h.src_id, path="/d", filter=["name:=c.txt", "type:dir"])
    assert names(both) == ["c.txt", "sub"]
    since = "2020-09-13T12:29:00+00:00"  # after b.tif (12:28:20): c.txt and the new dir
    recent = tc.operation_ls(h.src_id, path="/d", filter=f"last_modified:{since},/type:file")
    assert names(recent) == ["c.txt"]
    upto = tc.operation_ls(h.src_id, path="/d", filter="last_modified:,2020-09-13T12:27:00")
    assert names(upto) == ["a.tif"]
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.operation_ls(h.src_id, path="/d", filter="colour:red")
    assert info.value.http_status == 400


def test_a_listing_pages_with_limit_and_offset(h: EmulatorHarness) -> None:
    h.emulator.ls_limit_cap = 2
    tc = h.transfer_client()
    first = tc.operation_ls(h.src_id, path="/d", limit=100)
    assert (first["length"], first["total"], names(first)) == (2, 5, ["a.tif", "b.tif"])
    assert "limit" not in first and "offset" not in first  # as the real answer
    assert names(tc.operation_ls(h.src_id, path="/d", limit=100, offset=4)) == ["z-dangling"]


def test_a_google_drive_collection(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    drive = h.emulator.google_drive(h.src_id)
    tc = h.transfer_client()
    assert names(tc.operation_ls(h.src_id, path="/")) == ["My Drive", "Shared With Me"]
    write(drive / "beam" / "one.dat", b"1", T0)
    folder = tc.operation_ls(h.src_id, path="/My Drive")["DATA"][0]
    write(drive / "beam" / "two.dat", b"2", T0)
    os.utime(drive / "beam", (T0 + 5000, T0 + 5000))  # the disk bumps it; Drive would not
    again = tc.operation_ls(h.src_id, path="/My Drive")["DATA"][0]
    assert again["last_modified"] == folder["last_modified"]
    write(drive / "beam" / "two.dat~dup1", b"other", T0)
    assert names(tc.operation_ls(h.src_id, path="/My Drive/beam")) == [
        "one.dat", "two.dat", "two.dat"
    ]  # fmt: skip
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.operation_stat(h.src_id, "/My Drive/beam/two.dat")
    assert "AMBIGUOUS_PATH" in str(info.value.code)
    assert tc.operation_stat(h.src_id, "/My Drive/beam/one.dat")["size"] == 1

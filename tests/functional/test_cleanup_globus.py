"""Source cleanup of a Globus job against the emulated Transfer service: the destination
directory is listed (operation_ls) before a source file is deleted, and a copy it does not
show is sent again instead."""

from __future__ import annotations

import json
import os

from tests.emulator.fixtures import DST_COLLECTION

from .globus_env import DST_PATH, Globus, populate
from .helpers import LONG_AGO


def _ls_requests(g: Globus, since: int = 0) -> list[tuple[str, int]]:
    return [(p, s) for (m, p, s) in g.emu.requests[since:] if m == "GET" and p.endswith("/ls")]


def _audit(g: Globus) -> list[dict[str, object]]:
    path = g.env.state / "log" / "deletions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_globus_cleanup_lists_the_destination_then_deletes(gx: Globus) -> None:
    gx.configure(delete_after="0s", delete_empty_dirs=False)
    files = populate(gx)
    gx.send()  # sent and confirmed
    assert all((gx.src / rel).exists() for rel in files)
    lost = "run_Sep2018/notes.txt"
    (gx.dst / lost).unlink()  # a copy vanishes at the destination behind the tool's back
    before = len(gx.emu.requests)
    res = gx.run()
    assert f"deleted {len(files) - 1}" in res.stdout
    assert [rel for rel in files if (gx.src / rel).exists()] == [lost]  # kept, sent again
    # one listing of each destination directory that held candidates
    dirs = {rel.rpartition("/")[0] for rel in files}
    listed = _ls_requests(gx, before)
    assert len(listed) == len(dirs), listed
    assert {status for _, status in listed} == {200}
    entry = next(e for e in _audit(gx) if str(e["source"]).endswith("_01791.tif"))
    assert entry["destination"] == f"{DST_PATH}/run_Sep2018/YAGline9test/YAGline9test_01791.tif"
    assert entry["destination_collection"] == DST_COLLECTION
    assert entry["task_id"] in gx.emu.tasks
    assert len(_audit(gx)) == len(files) - 1
    gx.send()  # the lost copy is sent again
    assert (gx.dst / lost).read_bytes() == files[lost]
    assert "deleted 1" in gx.run().stdout
    assert not (gx.src / lost).exists()
    assert sorted(str(e["source"]) for e in _audit(gx)) == sorted(str(gx.src / r) for r in files)


def test_a_directory_of_several_pages_is_listed_whole(gx: Globus) -> None:
    gx.configure(delete_after="0s")
    for i in range(30):
        gx.env.write(f"flat/f{i:03}.dat", f"frame {i}".encode(), mtime=LONG_AGO + i)
    gx.send()
    os.utime(gx.src / "flat", (LONG_AGO, LONG_AGO))  # older than settle: removed once empty
    gx.emu.ls_limit_cap = 7  # the service answers at most 7 entries a page
    gx.emu.ls_limit_key = True  # the code still ends a page from "limit" (not real)
    before = len(gx.emu.requests)
    res = gx.run()
    assert "deleted 30" in res.stdout
    assert len(_ls_requests(gx, before)) == 5  # 7 + 7 + 7 + 7 + 2
    assert not (gx.src / "flat").exists()


def test_globus_cleanup_needs_a_verified_copy(gx: Globus) -> None:
    gx.configure(delete_after="1d", verify_checksum=False)
    res = gx.run(code=2)
    assert "verify_checksum = true" in res.stderr and "'delete_after'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    gx.configure(keep_free="10%", verify_checksum=False, sync_level="checksum")
    gx.run()  # the checksum sync level verifies too: accepted


def test_a_destination_that_cannot_be_listed_deletes_nothing(gx: Globus) -> None:
    gx.configure(delete_after="0s")
    files = populate(gx)
    gx.send()
    # more 503s than the SDK retries, on the listing of the destination
    gx.emu.fail_requests(6, 503, f"/v0.10/operation/endpoint/{DST_COLLECTION}/ls", 1)
    res = gx.run(code=1)
    assert "cleanup stopped, the destination cannot be looked at" in res.stderr
    assert all((gx.src / rel).exists() for rel in files)
    assert _audit(gx) == []
    res = gx.run()
    assert f"deleted {len(files)}" in res.stdout

"""`verify`: the destination audited against what the store holds as confirmed, through the CLI,
with the local transport and the emulated Transfer service."""

from __future__ import annotations

import json
import os

import pytest

from globus_autosync import config
from globus_autosync.verify import audit

from .globus_env import Globus, populate
from .helpers import LONG_AGO, CliEnv, assert_mirrored, job_toml


def _frames(env: CliEnv, n: int = 6) -> list[str]:
    rels = [f"run1/f{i}.tif" for i in range(n)] + ["top.dat"]
    for i, rel in enumerate(rels):
        env.write(rel, os.urandom(100 + i))
    return rels


def test_removed_truncated_and_touched_copies_are_found_and_nothing_else(env: CliEnv) -> None:
    _frames(env)
    env.run()
    res = env.cli("verify")
    assert res.stdout.strip() == (
        "detector: 7 confirmed, 7 at the destination, 0 missing, 0 different (size or mtime), "
        "0 unknown there (not ours, counted only)"
    )
    (env.dst / "run1" / "f1.tif").unlink()
    with open(env.dst / "run1" / "f2.tif", "r+b") as fh:
        fh.truncate(10)
    os.utime(env.dst / "top.dat", (1, 1))
    (env.dst / "run1" / "someone_elses.txt").write_text("not ours")
    res = env.cli("verify", code=1)
    lines = res.stdout.strip().splitlines()
    assert sorted(lines[:-1]) == [
        "detector: run1/f1.tif: missing",
        "detector: run1/f2.tif: different: 10 bytes, confirmed 102",
        "detector: top.dat: different: 106 bytes, confirmed 106",
    ]
    assert lines[-1] == (
        "detector: 7 confirmed, 4 at the destination, 1 missing, 2 different (size or mtime), "
        "1 unknown there (not ours, counted only)"
    )
    doc = json.loads(env.cli("verify", "--json", code=1).stdout)["jobs"][0]
    assert (doc["missing"], doc["different"], doc["unknown"], doc["error"]) == (1, 2, 1, None)
    # remembered for status, the page and the metrics
    audit = env.status()["audit"]
    assert (audit["confirmed"], audit["missing"], audit["different"]) == (7, 1, 2)
    text = env.metrics()
    assert 'globus_autosync_destination_missing{autosync_job="detector"} 1.0' in text
    assert 'globus_autosync_destination_different{autosync_job="detector"} 2.0' in text
    assert 'globus_autosync_last_audit_timestamp_seconds{autosync_job="detector"}' in text


def test_repair_sends_them_again_once(env: CliEnv) -> None:
    _frames(env)
    env.run()
    (env.dst / "run1" / "f1.tif").unlink()
    (env.dst / "top.dat").write_bytes(b"damaged")
    res = env.cli("verify", "--repair", code=1)
    assert "2 queued to be sent again, 0 lost" in res.stdout
    again = env.cli("verify", "--repair")  # asked twice: queued once (no longer confirmed)
    assert "5 confirmed, 5 at the destination, 0 missing" in again.stdout
    res = env.run()
    assert "sent 2 " in res.stdout, res.stdout
    assert_mirrored(env.src, env.dst)
    assert env.cli("verify").returncode == 0
    with env.db() as db:
        assert db.execute("SELECT SUM(files) FROM batches").fetchone() == (9,)  # 7 + 2


def test_a_file_lost_at_both_ends_is_said_with_its_deletion_and_fails_the_job(
    env: CliEnv,
) -> None:
    env.configure(job_toml(delete_after="0s"))
    env.write("run1/a.tif", b"a" * 10)
    env.write("run1/b.tif", b"b" * 10)
    env.run()
    env.run()  # cleanup deletes the sources
    assert not (env.src / "run1" / "a.tif").exists()
    (env.dst / "run1" / "a.tif").unlink()  # and the destination loses one
    res = env.cli("verify", code=1)
    [lost] = [x for x in res.stdout.splitlines() if "a.tif" in x]
    assert lost.startswith(
        "detector: run1/a.tif: missing; its source was deleted from the source by cleanup at "
    )
    assert "(batch 1)" in lost and "b.tif" not in res.stdout
    assert "2 confirmed, 1 at the destination, 1 missing" in res.stdout
    said = env.cli("status", "--check", code=2).stdout  # never silent: failing until repaired
    assert "detector: FAILING: the destination no longer holds 1 of the files" in said
    res = env.cli("verify", "--repair", code=1)
    assert "0 queued to be sent again, 1 lost" in res.stdout
    check = env.cli("status", "--check", code=2)
    assert "detector: FAILING: the destination lost 1 file it had confirmed" in check.stdout
    assert "--forget-lost" in check.stdout
    env.cli("verify", "--forget-lost")
    assert env.cli("status", "--check").stdout.strip() == "detector: OK"


def test_a_destination_that_cannot_be_listed_is_a_failed_audit_not_a_list_of_losses(
    env: CliEnv,
) -> None:
    _frames(env)
    env.run()
    env.dst.rename(env.root / "elsewhere")  # the share is not there
    env.dst.mkdir()
    env.dst.rmdir()
    res = env.cli("verify", code=3)
    assert "missing" not in res.stdout.replace("0 missing", "")
    assert res.stdout.strip().startswith("detector: audit failed: destination")
    # said by status, its check and the metrics until an audit can list it
    check = env.cli("status", "--check", code=1).stdout
    assert "detector: WAITING: the destination could not be audited" in check
    text = env.metrics(code=None)
    assert 'globus_autosync_health{autosync_job="detector",state="waiting"} 1.0' in text


def test_verify_a_globus_destination(gx: Globus) -> None:
    files = populate(gx)
    gx.send()
    res = gx.cli("verify")
    assert f"{len(files)} confirmed, {len(files)} at the destination, 0 missing" in res.stdout
    (gx.dst / "run_Sep2018" / "notes.txt").unlink()
    deep = gx.dst / "run_Oct2018" / "a" / "b" / "c" / "deep.dat"
    with open(deep, "r+b") as fh:  # truncated: found by its size (Globus lists whole seconds)
        fh.truncate(10)
    (gx.dst / "run_Sep2018" / "theirs.txt").write_text("not ours")
    res = gx.cli("verify", code=1)
    assert "run_Sep2018/notes.txt: missing" in res.stdout
    assert "run_Oct2018/a/b/c/deep.dat: different: 10 bytes, confirmed 100" in res.stdout
    assert (
        f"{len(files)} confirmed, {len(files) - 2} at the destination, 1 missing, 1 different "
        "(size or mtime), 1 unknown there"
    ) in res.stdout


def test_a_copy_lost_whose_source_a_person_deleted_is_lost_and_one_still_there_is_resent(
    env: CliEnv,
) -> None:
    _frames(env, 2)
    env.run()
    (env.src / "run1" / "f0.tif").unlink()  # a person deleted it
    (env.dst / "run1" / "f0.tif").unlink()
    (env.dst / "run1" / "f1.tif").unlink()
    env.write("run1/f1.tif", b"rewritten since")  # still there, changed
    res = env.cli("verify", "--repair", code=1)
    assert "detector: run1/f0.tif: lost: gone from the source too (not by cleanup)" in res.stdout
    assert "1 queued to be sent again, 1 lost" in res.stdout
    env.run(code=None)
    assert (env.dst / "run1" / "f1.tif").read_bytes() == b"rewritten since"
    assert "FAILING: the destination lost 1 file" in env.cli("status", "--check", code=2).stdout


def test_odd_names_are_audited_and_repaired_by_their_own_names(env: CliEnv) -> None:
    env.configure(job_toml(delete_after="0s", exclude=["keep*"]))
    src, dst = os.fsencode(env.src), os.fsencode(env.dst)
    os.mkdir(src + b"/dir\xff")
    for rel in (b"dir\xff/caf\xe9.tif", b"dir\xff/two\nlines.tif"):
        with open(src + b"/" + rel, "wb") as fh:
            fh.write(b"frame")
    env.run()
    env.run()  # cleanup deletes both sources
    assert not os.path.exists(src + b"/dir\xff")  # and the directory left empty
    os.unlink(dst + b"/dir\xff/two\nlines.tif")  # and the destination loses one
    res = env.cli("verify", code=1)
    assert "detector: dir\\xff/two\\nlines.tif: missing; its source was deleted" in res.stdout
    assert "2 confirmed, 1 at the destination, 1 missing" in res.stdout
    # one still at the source is sent again, under its own name
    env.configure(job_toml())
    os.mkdir(src + b"/dir\xff")
    with open(src + b"/dir\xff/new\xfe.tif", "wb") as fh:
        fh.write(b"new")
    env.run()
    os.unlink(dst + b"/dir\xff/new\xfe.tif")
    res = env.cli("verify", "--repair", code=1)
    assert (
        "dir\\xff/new\\xfe.tif: missing" in res.stdout and "1 queued to be sent again" in res.stdout
    )
    env.run()
    with open(dst + b"/dir\xff/new\xfe.tif", "rb") as fh:
        assert fh.read() == b"new"


def test_a_large_local_destination_listed_by_worker_processes_finds_the_same(
    env: CliEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From PARALLEL_FROM confirmed files, worker processes list the destination ahead of the
    comparison: the same findings as one by one (here from 0 files, on a small tree)."""
    rels = _frames(env, 40)
    env.run()
    (env.dst / "run1" / "f3.tif").unlink()
    with open(env.dst / "run1" / "f7.tif", "r+b") as fh:
        fh.truncate(1)
    cfg = config.load(env.config)
    found = {}
    for parallel_from in (10**9, 0):
        monkeypatch.setattr(audit, "PARALLEL_FROM", parallel_from)
        result = audit.audit_job(cfg.jobs[0], cfg, env.state)
        found[parallel_from] = (result.confirmed, result.present, result.missing,
                                result.different, sorted(result.problems))  # fmt: skip
    assert found[0] == found[10**9]
    assert found[0][:4] == (len(rels), len(rels) - 2, 1, 1)


def test_a_file_in_flight_is_not_audited(gx: Globus) -> None:
    """A confirmed file changed at the source and sent again: while its task runs, the copy at
    the destination is the old one, which is neither missing nor different."""
    files = populate(gx)
    gx.send()
    gx.emu.hold_tasks()
    gx.env.write("run_Sep2018/notes.txt", b"beam at 6 GeV, longer\n", mtime=LONG_AGO + 99)
    (gx.dst / "run_Sep2018" / "notes.txt").unlink()  # (as if the new copy were being written)
    gx.cli("run", "--full", code=None)  # rewritten in place: a full walk sees it
    assert gx.status()["in_flight"] == 1
    res = gx.cli("verify")
    assert (
        f"{len(files) - 1} confirmed, {len(files) - 1} at the destination, 0 missing" in res.stdout
    )
    gx.emu.hold_tasks(False)
    gx.send()
    assert gx.cli("verify").returncode == 0

"""A source listed through the Globus Transfer API (scan = "globus"), end to end: the real
console script against the emulated Transfer service. The source collection is rooted at the
test's instrument directory and the job's source is ``/src`` on it, so the test writes the
"remote" files in ``gx.src``; nothing of the tool looks at that directory but the emulator."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

from tests.emulator.fixtures import SRC_COLLECTION

from .globus_env import JOB, Globus, populate, remote, stderr_lines
from .helpers import LONG_AGO, assert_mirrored, wait_for

LS = f"/v0.10/operation/endpoint/{SRC_COLLECTION}/ls"
# populate()'s directories: the top, run_Sep2018, YAGline9test, run_Oct2018, a, b, c, empty,
# deeper
DIRS = 9


def listings(g: Globus, since: int = 0) -> list[tuple[float, str]]:
    """(arrival, path) of each operation_ls of the source collection."""
    return [(t, q["path"][0]) for (t, m, p, q) in g.emu.arrivals[since:] if p == LS]


def sent_paths(g: Globus) -> Counter[str]:
    """How many times each source path was put in a transfer task."""
    return Counter(item.source_path for task in g.emu.tasks.values() for item in task.items)


def confirmed(g: Globus) -> int:
    return int(g.rows("SELECT COALESCE(SUM(nfiles), 0) FROM dirs")[0][0])


def test_a_remote_tree_is_sent_end_to_end_and_a_quiet_cycle_lists_each_directory(
    gx: Globus,
) -> None:
    remote(gx)
    files = populate(gx)
    gx.send()
    assert_mirrored(gx.src, gx.dst, sorted(files))  # bytes, and the mtime Globus preserved
    assert (gx.dst / "run_Oct2018" / "empty" / "deeper").is_dir()
    assert confirmed(gx) == len(files)
    assert gx.rows("SELECT COUNT(*) FROM files") == [(0,)]  # nothing pending
    assert sent_paths(gx) == Counter(f"/src/{rel}" for rel in files)  # each once, by its path
    [task] = gx.tasks_json()  # ``tasks`` shows the batch, with its Globus task
    assert task["task_id"] in gx.emu.tasks and task["files"] == len(files), task
    before = len(gx.emu.arrivals)
    tasks = len(gx.emu.tasks)
    prom = gx.env.root / "m.prom"
    res = gx.cli("run", "--metrics-file", str(prom))
    assert f"scanned {len(files)} files" in res.stdout and "0 new or changed" in res.stdout
    metrics = prom.read_text()
    assert f'globus_autosync_files{{autosync_job="{JOB}",state="done"}} {len(files)}' in metrics, (
        metrics
    )
    listed = listings(gx, before)
    assert len(listed) == DIRS  # one request per directory, every directory: no folder times
    assert len({p for _, p in listed}) == DIRS
    assert len(gx.emu.tasks) == tasks
    st = gx.status()
    assert st["done"] == len(files) and st["queued"] == 0


def test_new_and_modified_remote_files_are_found_in_the_next_cycle(gx: Globus) -> None:
    remote(gx)
    files = populate(gx)
    gx.send()
    deep = gx.src / "run_Oct2018" / "a" / "b" / "c"
    folder_time = deep.stat().st_mtime
    gx.env.write("run_Oct2018/a/b/c/new.dat", b"new frame", mtime=LONG_AGO)  # an old mtime
    os.utime(deep, (folder_time, folder_time))  # the folder's time says nothing changed
    gx.env.write("run_Sep2018/notes.txt", b"beam at 6 GeV\n", mtime=LONG_AGO + 10**6)  # same size
    res = gx.run()
    assert "2 new or changed" in res.stdout, res.stdout
    gx.send()
    assert (gx.dst / "run_Oct2018/a/b/c/new.dat").read_bytes() == b"new frame"
    assert (gx.dst / "run_Sep2018/notes.txt").read_bytes() == b"beam at 6 GeV\n"
    assert confirmed(gx) == len(files) + 1
    sent = sent_paths(gx)
    assert sent["/src/run_Sep2018/notes.txt"] == 2 and sent["/src/top.dat"] == 1


def test_a_file_growing_across_listings_is_not_sent_until_settled(gx: Globus) -> None:
    remote(gx, settle="2s")
    path = gx.env.write("run/frame.tif", b"x" * 1000, mtime=LONG_AGO)  # old: not trusted
    res = gx.run(code=None)
    assert "1 new or changed, 1 waiting to settle, sent 0" in res.stdout, res.stdout
    with path.open("ab") as fh:  # it grows
        fh.write(b"y" * 1000)
    os.utime(path, (LONG_AGO, LONG_AGO))
    time.sleep(2.2)
    res = gx.run(code=None)
    assert "sent 0" in res.stdout, res.stdout  # changed since the last listing: seen anew
    assert gx.rows("SELECT state, size FROM files") == [("seen", 2000)]
    assert gx.emu.tasks == {}
    time.sleep(2.2)  # unchanged across two listings 2 s apart: settled
    gx.send()
    assert (gx.dst / "run/frame.tif").read_bytes() == b"x" * 1000 + b"y" * 1000
    assert len(gx.emu.tasks) == 1


def test_a_directory_of_several_pages_is_listed_whole(gx: Globus) -> None:
    remote(gx)
    gx.emu.ls_limit_cap = 7  # the service gives 7 entries a page
    gx.emu.ls_limit_key = True  # the code still ends a page from "limit" (not real)
    for i in range(30):
        gx.env.write(f"flat/f{i:03}.dat", f"frame {i}".encode(), mtime=LONG_AGO + i)
    gx.send()
    assert sorted(os.listdir(gx.dst / "flat")) == [f"f{i:03}.dat" for i in range(30)]
    assert_mirrored(gx.src, gx.dst)
    before = len(gx.emu.arrivals)
    gx.run()
    flat = [p for _, p in listings(gx, before) if p.endswith("/flat")]
    assert len(flat) == 5  # 7 + 7 + 7 + 7 + 2
    offsets = [
        int(q["offset"][0])
        for (_t, _m, p, q) in gx.emu.arrivals[before:]
        if p == LS and q["path"][0].endswith("/flat")
    ]
    assert offsets == [0, 7, 14, 21, 28]


def test_duplicate_names_on_a_google_drive_are_skipped_with_the_reason(gx: Globus) -> None:
    drive = gx.emu.google_drive(SRC_COLLECTION)
    remote(gx, source="/My Drive/beamtime-2026")
    beam = drive / "beamtime-2026"
    for name, data in (
        ("a.dat", b"a"),
        ("twice.dat", b"one"),
        ("twice.dat~dup1", b"two"),
        ("run/b.dat", b"b"),
    ):
        (beam / name).parent.mkdir(parents=True, exist_ok=True)
        (beam / name).write_bytes(data)
    res = gx.run(code=1)  # the rest is sent; the run says something was skipped
    assert "skipped 1" in res.stdout
    assert any("twice.dat: AMBIGUOUS_PATH" in line for line in stderr_lines(res)), res.stderr
    gx.emu.wait_idle()
    res = gx.run()  # reported once; ``status`` keeps showing it
    assert "confirmed 2" in res.stdout and "skipped 0" in res.stdout
    assert (gx.dst / "a.dat").read_bytes() == b"a" and (gx.dst / "run/b.dat").read_bytes() == b"b"
    assert not (gx.dst / "twice.dat").exists()
    [(state, reason)] = gx.rows("SELECT state, reason FROM files WHERE name='twice.dat'")
    assert state == "skipped" and reason.startswith("AMBIGUOUS_PATH: 2 entries")
    [failure] = gx.status()["problems"]
    assert failure["path"] == "twice.dat" and "AMBIGUOUS_PATH" in failure["reason"]
    assert failure["state"] == "skipped"
    # a file added to the folder does not change the folder's time on Drive: found anyway
    (beam / "run" / "c.dat").write_bytes(b"c")
    gx.run()
    gx.emu.wait_idle()
    gx.run()
    assert (gx.dst / "run/c.dat").read_bytes() == b"c"
    # the duplicate renamed: sent
    (beam / "twice.dat~dup1").rename(beam / "twice-2.dat")
    gx.send()
    assert (gx.dst / "twice.dat").read_bytes() == b"one"
    assert (gx.dst / "twice-2.dat").read_bytes() == b"two"


def test_a_503_storm_in_the_middle_of_a_listing_is_survived(gx: Globus) -> None:
    remote(gx)
    files = populate(gx)
    # the 4th listing and every retry of it answer 503 (1 + 5 attempts: the SDK gives up)
    gx.emu.fail_requests(6, 503, LS, retry_after=1, skip=3)
    res = gx.run(code=1)
    assert "work left queued: transport unavailable" in res.stdout, res.stdout
    [line] = [line for line in stderr_lines(res) if "listing the source stopped at" in line]
    assert "Globus answered 503 ServiceUnavailable" in line and line.count(f"{JOB}:") == 1, line
    gx.emu.wait_idle()
    gx.send()
    assert_mirrored(gx.src, gx.dst, sorted(files))
    assert sent_paths(gx) == Counter(f"/src/{rel}" for rel in files)  # each once


def test_sigkill_during_a_listing_then_a_run_sends_each_file_once(gx: Globus) -> None:
    remote(gx)
    files = populate(gx)
    gx.send()
    for i in range(3):
        gx.env.write(f"run_Sep2018/later_{i}.dat", os.urandom(50), mtime=LONG_AGO)
        gx.env.write(f"run_Oct2018/a/later_{i}.dat", os.urandom(50), mtime=LONG_AGO)
    res = gx.cli("run", code=None, GLOBUS_AUTOSYNC_CRASH_AT="remote-listed:4")
    assert res.returncode == -signal.SIGKILL
    with gx.env.db() as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    gx.send()
    assert_mirrored(gx.src, gx.dst)
    sent = sent_paths(gx)
    assert set(sent.values()) == {1}, sent
    assert confirmed(gx) == len(files) + 6


def test_sigkill_during_a_submission_then_the_rerun_finds_the_same_task(gx: Globus) -> None:
    remote(gx)
    files = populate(gx)
    gx.emu.delay_replies(1, 60, "/v0.10/transfer", "POST")
    proc = gx.spawn("run")
    try:
        wait_for("the task to be created", lambda: len(gx.emu.tasks) == 1)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        gx.emu.release_replies()
    gx.emu.wait_idle()
    gx.send()
    assert len(gx.emu.tasks) == 1  # the resubmission found the task the killed run started
    assert_mirrored(gx.src, gx.dst, sorted(files))


def test_a_missing_consent_for_the_source_collection_names_the_login_command(
    gx: Globus,
) -> None:
    gx.service = False
    gx.seed_login()
    gx.emu.require_consent(SRC_COLLECTION)
    remote(gx)
    files = populate(gx)
    command = f"globus-autosync login --collection {SRC_COLLECTION}"
    res = gx.run(code=3)
    [line] = stderr_lines(res)
    assert line.endswith(
        f"Globus needs your consent to access collection {SRC_COLLECTION}; run: {command}"
    ), line
    assert gx.emu.tasks == {}
    res = gx.cli("check", code=3)
    assert (
        f"FAIL  {JOB}: consent: Globus needs your consent to access collection "
        f"{SRC_COLLECTION}; run: {command}" in res.stdout
    ), res.stdout
    gx.seed_login(consents=[SRC_COLLECTION])
    gx.send()
    assert_mirrored(gx.src, gx.dst, sorted(files))


def test_the_request_pace_is_held(gx: Globus) -> None:
    rate = 4
    remote(gx, requests_per_second=rate)
    for i in range(12):
        gx.env.write(f"d{i:02}/f.dat", b"x", mtime=LONG_AGO)
    gx.send()
    before = len(gx.emu.arrivals)
    gx.run()
    times = [t for t, _ in listings(gx, before)]
    assert len(times) == 13
    # measured where they arrive: `rate` a second, one more allowed in any one second for the
    # jitter of a loaded machine (unpaced, these 13 listings take a few hundredths of a second)
    for i in range(len(times) - rate - 1):
        assert times[i + rate + 1] - times[i] > 1.0, (i, times)
    assert times[-1] - times[0] >= (len(times) - 1) / rate - 0.1, times


def test_check_lists_the_source_and_counts_the_top_directory(gx: Globus) -> None:
    remote(gx)
    populate(gx)
    res = gx.cli("check")
    lines = res.stdout.splitlines()
    assert all(line.startswith("ok  ") for line in lines), res.stdout
    [src] = [line for line in lines if f"{JOB}: source path:" in line]
    assert "/src lists on the source collection: 3 entries in the top directory" in src
    for what in ("consent", "destination path", "source collection", "destination collection"):
        assert any(f"{JOB}: {what}:" in line for line in lines), (what, res.stdout)
    remote(gx, source="/nowhere")
    res = gx.cli("check", code=3)
    assert (
        f"FAIL  {JOB}: source path: /nowhere is not a directory on the source collection"
        in res.stdout
    ), res.stdout
    res = gx.run(code=3)
    assert "source /nowhere is not a directory on the source collection" in res.stderr


def test_dry_run_and_baseline_for_a_remote_source(gx: Globus) -> None:
    remote(gx)
    files = populate(gx)
    res = gx.cli("run", "--dry-run")
    for rel in files:
        assert rel in res.stdout
    assert gx.emu.tasks == {} and not gx.dst.exists()
    res = gx.cli("baseline")
    assert f"recorded {len(files)} files" in res.stdout
    assert confirmed(gx) == len(files)
    gx.env.write("run_Sep2018/after.dat", b"after", mtime=LONG_AGO)
    gx.send()
    assert sent_paths(gx) == Counter({"/src/run_Sep2018/after.dat": 1})


def test_a_vanished_directory_drops_its_pending_work_not_its_confirmed_state(
    gx: Globus, tmp_path: Path
) -> None:
    remote(gx, settle="1h")
    files = populate(gx)
    gx.run(code=None)  # every file seen, none settled (remote times are not trusted)
    remote(gx)
    gx.send()  # settle 0: sent
    remote(gx, settle="1h")
    gx.env.write("run_Sep2018/pending.dat", b"p", mtime=LONG_AGO)
    gx.run()
    assert gx.rows("SELECT name, state FROM files") == [("pending.dat", "seen")]
    keep = tmp_path / "kept"
    shutil.move(gx.src / "run_Sep2018", keep)
    gx.run()
    assert gx.rows("SELECT COUNT(*) FROM files") == [(0,)]
    assert confirmed(gx) == len(files)  # the confirmed state stays
    (keep / "pending.dat").unlink()
    shutil.move(keep, gx.src / "run_Sep2018")  # back as it was
    tasks = len(gx.emu.tasks)
    res = gx.run()
    assert "0 new or changed" in res.stdout, res.stdout
    assert len(gx.emu.tasks) == tasks


def test_watch_sends_remote_files_as_they_settle(gx: Globus) -> None:
    remote(gx, settle="1s", interval="0.3s", batch_window="0s")
    gx.env.write("run/a.dat", b"a" * 100, mtime=LONG_AGO)
    proc = gx.spawn("watch", piped=True)
    try:
        wait_for("a.dat at the destination", lambda: (gx.dst / "run/a.dat").exists(), 60)
        gx.env.write("run/b.dat", b"b" * 100, mtime=LONG_AGO)
        wait_for("b.dat at the destination", lambda: (gx.dst / "run/b.dat").exists(), 60)
        wait_for("both confirmed", lambda: gx.status()["done"] == 2, 60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert_mirrored(gx.src, gx.dst)
    assert set(sent_paths(gx).values()) == {1}


def test_a_directory_globus_refuses_to_list_does_not_stop_the_rest(gx: Globus) -> None:
    remote(gx)
    files = populate(gx)
    gx.emu.deny_listing(SRC_COLLECTION, "/src/run_Oct2018/a")
    res = gx.run(code=1)
    assert any(
        "run_Oct2018/a: cannot list directory: Globus answered 403 PermissionDenied" in line
        for line in stderr_lines(res)
    ), res.stderr
    gx.emu.wait_idle()
    gx.run(code=1)  # still refused: said again, the rest is sent
    others = sorted(rel for rel in files if not rel.startswith("run_Oct2018/a/"))
    assert_mirrored(gx.src, gx.dst, others)
    assert not (gx.dst / "run_Oct2018/a/b/c/deep.dat").exists()
    gx.emu.deny_listing(SRC_COLLECTION, "/src/run_Oct2018/a", denied=False)
    gx.send()
    assert_mirrored(gx.src, gx.dst, sorted(files))


def test_a_globus_connect_personal_source_that_is_off_leaves_the_work_for_later(
    gx: Globus,
) -> None:
    remote(gx)
    files = populate(gx)
    gx.emu.set_gcp(SRC_COLLECTION, connected=False)  # the instrument PC sleeps
    res = gx.run(code=1)  # not a configuration error: the next cycle tries again
    assert "work left queued: transport unavailable" in res.stdout, res.stdout
    assert "a collection is not connected" in res.stdout
    assert any("start Globus Connect Personal" in line for line in stderr_lines(res)), res.stderr
    assert gx.status()["last_result"] == "unavailable"
    gx.emu.set_gcp(SRC_COLLECTION, connected=True)
    gx.send()
    assert_mirrored(gx.src, gx.dst, sorted(files))


def test_a_directory_gone_between_its_parents_listing_and_its_own(gx: Globus) -> None:
    remote(gx)
    files = populate(gx)
    gx.send()
    remote(gx, settle="1h")
    gx.env.write("run_Oct2018/a/pending.dat", b"p", mtime=LONG_AGO)
    gx.run()
    assert gx.rows("SELECT name, state FROM files") == [("pending.dat", "seen")]
    # the top lists run_Oct2018; its own listing, next, answers 404 (gone in between)
    gx.emu.fail_requests(1, 404, LS, code="ClientError.NotFound", skip=1)
    res = gx.run()
    assert (
        "run_Oct2018 is gone from the source; 1 file not yet sent there is forgotten" in res.stderr
    ), res.stderr
    assert gx.rows("SELECT COUNT(*) FROM files") == [(0,)]
    assert confirmed(gx) == len(files)
    gx.run()  # it is back: the file is seen again, nothing confirmed is sent again
    assert gx.rows("SELECT name, state FROM files") == [("pending.dat", "seen")]
    assert set(sent_paths(gx).values()) == {1}

"""The Globus services as their documents say they behave, not as kindly as our emulator did at
first: the emulator's unkind switches turned on (tests/emulator/unkind.py), the real console
script against them. Each test fails on a tool that relied on the kinder behaviour."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.emulator.fixtures import SRC_COLLECTION

from .globus_env import Globus, populate, remote, stderr_lines
from .helpers import LONG_AGO, assert_mirrored, wait_for

HOUR = 3600.0


def write(gx: Globus, n: int, prefix: str = "run/f") -> list[str]:
    names = [f"{prefix}{i}.dat" for i in range(n)]
    for i, rel in enumerate(names):
        gx.env.write(rel, os.urandom(100 + i), mtime=LONG_AGO + i)
    return names


def check(gx: Globus) -> subprocess.CompletedProcess[str]:
    res: subprocess.CompletedProcess[str] = gx.cli("status", "--check", code=None)
    return res


# --------------------------------------------------------------------------------- deadlines


def test_a_task_that_progresses_past_24_hours_is_neither_canceled_nor_expired(
    gx: Globus,
) -> None:
    gx.configure(task_deadline=None)  # the default: no deadline given to Globus
    write(gx, 3)
    gx.emu.extend_deadlines = True  # as the Transfer docs say it does
    gx.emu.hold_tasks()
    gx.run()
    [task] = gx.emu.tasks.values()
    for _ in range(6):  # 30 hours of a slow link that keeps moving
        gx.emu.advance_clock(5 * HOUR)
        gx.emu.record_progress(task.task_id)
    with gx.env.db() as db:  # and 30 hours since the batch was submitted, as the store sees it
        db.execute("UPDATE batches SET submitted = submitted - 30 * 3600")
        db.commit()
    res = gx.run()
    assert task.status == "ACTIVE", task.fatal_error
    assert "cancel" not in res.stderr
    gx.emu.hold_tasks(False)
    gx.emu.wait_idle()
    assert "confirmed 3" in gx.run().stdout
    assert len(gx.emu.tasks) == 1  # never sent again
    assert_mirrored(gx.src, gx.dst)


def test_a_job_that_sets_task_deadline_gives_it_to_globus(gx: Globus) -> None:
    gx.configure(task_deadline="2h")
    write(gx, 2)
    gx.emu.hold_tasks()
    gx.run()
    [task] = gx.emu.tasks.values()
    assert task.user_deadline
    gx.emu.advance_clock(3 * HOUR)  # Globus ends it at its deadline; the files go again
    res = gx.run(code=1)
    assert "failed 2" in res.stdout and "EXPIRED" in res.stderr
    rows = gx.rows("SELECT state, attempts, reason FROM files")
    assert rows == [("failed", 1, "task failed: EXPIRED: deadline expired")] * 2


# --------------------------------------------------------------------------------- nice_status


def test_an_error_globus_retries_does_not_cancel_the_task(gx: Globus) -> None:
    write(gx, 3)
    gx.emu.transient_error_next_task("PERMISSION_DENIED", clears_after=900)
    gx.run()
    [task] = gx.emu.tasks.values()
    wait_for("the retried error", lambda: task.nice_status == "PERMISSION_DENIED")
    res = gx.run()  # the task shows a recent error it retries: left alone
    assert task.status == "ACTIVE" and "cancel" not in res.stderr
    assert gx.status()["health"]["state"] == "ok"
    gx.emu.advance_clock(1000)  # the error clears; the task carries on
    gx.emu.wait_idle()
    assert "confirmed 3" in gx.run().stdout
    assert len(gx.emu.tasks) == 1


def test_an_error_that_does_not_clear_is_said_with_what_to_do(gx: Globus) -> None:
    write(gx, 2)
    gx.emu.stick_next_task("NO_SPACE_LEFT")
    gx.run()
    [task] = gx.emu.tasks.values()
    res = gx.run(code=1)
    [line] = [x for x in stderr_lines(res) if "NO_SPACE_LEFT" in x]
    assert task.task_id in line and "free space" in line
    res = gx.run(code=1)  # said once, not every cycle
    assert "NO_SPACE_LEFT" not in res.stderr
    st = gx.status()
    assert st["health"]["state"] == "waiting"
    assert "NO_SPACE_LEFT" in st["health"]["reason"]
    res = check(gx)
    assert res.returncode == 1 and "NO_SPACE_LEFT" in res.stdout
    assert task.status == "ACTIVE"  # not canceled: Globus ends it at its deadline


def test_an_administrators_pause_is_said_and_the_task_resumes(gx: Globus) -> None:
    write(gx, 2)
    gx.emu.hold_tasks()
    gx.run()
    [task] = gx.emu.tasks.values()
    gx.emu.pause_task(task.task_id, "maintenance of the storage")
    res = gx.run(code=1)
    assert any("paused by an administrator" in x for x in stderr_lines(res)), res.stderr
    st = gx.status()
    assert st["health"]["state"] == "waiting" and "paused" in st["health"]["reason"]
    gx.emu.unpause_task(task.task_id)
    gx.emu.hold_tasks(False)
    gx.emu.wait_idle()
    assert "confirmed 2" in gx.run().stdout
    assert len(gx.emu.tasks) == 1


# --------------------------------------------------------------------------------- refusals


def test_a_job_name_of_130_characters_is_sent_with_a_label_globus_takes(gx: Globus) -> None:
    name = "beamline-" + "x" * 121
    assert len(name) == 130
    gx.configure(name=name)
    gx.emu.label_limit = 128
    write(gx, 2)
    gx.run()
    gx.emu.wait_idle()
    assert "confirmed 2" in gx.run().stdout
    [task] = gx.emu.tasks.values()
    label = task.label or ""
    assert len(label) <= 128 and label.startswith("AUTO_beamline-")
    assert_mirrored(gx.src, gx.dst)


def test_a_refused_batch_fails_and_the_next_batch_is_still_sent(gx: Globus) -> None:
    gx.configure(max_files_per_task=2)
    write(gx, 4)
    # the first submission is refused for good (a 400), the second is taken
    gx.emu.fail_requests(1, 400, path_prefix="/v0.10/transfer", code="ClientError.BadRequest")
    res = gx.run(code=1)
    assert "refused" in res.stderr
    assert len(gx.emu.tasks) == 1  # the batch after the refused one was submitted
    states = gx.rows("SELECT state, reason FROM batches ORDER BY id")
    assert states[0][0] == "failed" and "ClientError.BadRequest" in states[0][1]
    assert states[1][0] == "submitted"
    st = gx.status()
    assert st["health"]["state"] == "failing" and "refused" in st["health"]["reason"]
    assert check(gx).returncode == 2
    gx.emu.wait_idle()
    with gx.env.db() as db:  # the backoff waited out
        db.execute("UPDATE files SET next_try = 0")
        db.commit()
    gx.send()
    assert_mirrored(gx.src, gx.dst)
    assert gx.status()["health"]["state"] == "ok"


# --------------------------------------------------------------------------------- purges


def test_a_purged_task_ends_its_batch_and_the_files_are_sent_again(gx: Globus) -> None:
    write(gx, 2)
    gx.emu.hold_tasks()
    gx.run()
    [task] = gx.emu.tasks.values()
    gx.emu.purge_task(task.task_id)  # Globus forgot it
    res = gx.run(code=None)
    assert any("no longer knows task" in x for x in stderr_lines(res)), res.stderr
    assert gx.rows("SELECT state FROM batches ORDER BY id")[0] == ("failed",)
    gx.emu.hold_tasks(False)
    gx.send()
    assert_mirrored(gx.src, gx.dst)
    assert len(gx.emu.tasks) == 1  # the purged one is gone; one new task sent them


# --------------------------------------------------------------------------------- a failed task


def test_files_globus_found_up_to_date_in_a_failed_task_are_confirmed(gx: Globus) -> None:
    gx.configure(task_deadline="1h")
    names = write(gx, 3)
    held = names[0]  # already at the destination, as Globus would skip it
    target = gx.dst / held
    target.parent.mkdir(parents=True)
    target.write_bytes((gx.src / held).read_bytes())
    st = (gx.src / held).stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    blocked = gx.dst / names[2]  # a directory where the file goes: an error that never clears
    (blocked / "x").mkdir(parents=True)
    gx.run(code=None)
    [task] = gx.emu.tasks.values()
    wait_for("the task's first pass", lambda: task.files_skipped == 1 and task.faults > 0)
    gx.emu.advance_clock(2 * HOUR)  # its deadline: the task ends FAILED
    res = gx.run(code=1)
    assert task.status == "FAILED"
    assert "failed 1" in res.stdout
    done = {r[0] for r in gx.rows("SELECT name FROM files WHERE state='failed'")}
    assert done == {Path(names[2]).name}
    assert gx.status()["done"] == 2  # the one copied and the one found up to date


# --------------------------------------------------------------------------------- a remote source


def test_a_remote_directory_answering_invalid_path_does_not_stop_the_walk(gx: Globus) -> None:
    remote(gx)
    files = populate(gx)
    gx.emu.refuse_listing(SRC_COLLECTION, "/src/run_Oct2018/a")  # 400 ClientError.InvalidPath
    res = gx.run(code=1)
    [line] = [x for x in stderr_lines(res) if "cannot list directory" in x]
    assert "run_Oct2018/a" in line and "ClientError.InvalidPath" in line
    gx.emu.wait_idle()
    gx.run(code=1)
    others = sorted(rel for rel in files if not rel.startswith("run_Oct2018/a/"))
    assert_mirrored(gx.src, gx.dst, others)


def test_a_remote_directory_is_listed_to_its_last_page_without_a_limit_key(gx: Globus) -> None:
    remote(gx)
    gx.emu.ls_limit_cap = 3  # pages of 3 entries; the answers carry "total", not "limit"
    names = write(gx, 8, prefix="scan/frame_")
    gx.send()
    assert_mirrored(gx.src, gx.dst, names)
    assert gx.status()["done"] == 8

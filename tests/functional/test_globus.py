"""The Globus transport end to end: the real console script against the emulated Transfer and
Auth services (tests/emulator), which copy between local directories standing for collections.

The source collection is rooted at the instrument's directory (its job source is ``/src`` on it);
the destination collection stands for a cluster file system, the job writing below
``/clusterfs/xmas/xmas-storage/2018``. Each test checks what a user would: bytes at the
destination, rows in the store, the exit code and the message.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import uuid
from typing import Any

import pytest

from tests.emulator import DATA_ACCESS_SCOPE
from tests.emulator.fixtures import DST_COLLECTION, SRC_COLLECTION

from .globus_env import (
    DST_PATH,
    JOB,
    NATIVE_APP,
    SRC_PATH,
    Globus,
    log_in,
    login_links,
    populate,
    stderr_lines,
)
from .helpers import LONG_AGO, assert_mirrored, tree, wait_for

LABEL = re.compile(rf"^AUTO_{JOB}_\d{{4}}-\d\d-\d\d_\d{{6}}$")
TASK_LINK = "https://app.globus.org/activity/"


# --------------------------------------------------------------------------------------------
# 1. a tree end to end


def test_a_tree_is_sent_as_one_task_with_full_paths(gx: Globus) -> None:
    files = populate(gx)
    res = gx.run()
    assert f"sent {len(files)}" in res.stdout
    assert f"{len(files)} in flight" in res.stdout
    [task] = gx.emu.tasks.values()
    # the submission id was asked of the service first (and journaled), then used
    calls = [(m, p) for (m, p, _) in gx.emu.requests if p.endswith(("/submission_id", "/transfer"))]
    assert calls == [("GET", "/v0.10/submission_id"), ("POST", "/v0.10/transfer")]
    gx.emu.wait_idle()
    res = gx.run()
    assert f"confirmed {len(files)}" in res.stdout

    # the bytes, with their mtimes, under the destination path; the empty directory made
    assert_mirrored(gx.src, gx.dst)
    assert tree(gx.dst).keys() == files.keys()
    assert (gx.dst / "run_Oct2018" / "empty" / "deeper").is_dir()
    assert not any((gx.dst / "run_Oct2018" / "empty" / "deeper").iterdir())

    # the task: one item per file, full paths, the label, the options of the config
    assert {(i.source_path, i.destination_path, i.recursive) for i in task.items} == {
        (f"{SRC_PATH}/{rel}", f"{DST_PATH}/{rel}", False) for rel in files
    }
    assert len(task.items) == len(files)
    assert task.label is not None and LABEL.match(task.label), task.label
    assert task.skip_source_errors is True
    assert task.sync_level == 2
    assert task.verify_checksum is True
    assert task.preserve_timestamp is True
    assert task.source_endpoint_id == SRC_COLLECTION
    assert task.destination_endpoint_id == DST_COLLECTION
    assert task.owner == gx.emu.DEFAULT_CLIENT_ID
    assert not any(task.notify.values())
    assert 23 * 3600 < task.deadline - task.request_time <= 24 * 3600 + 60

    # the store and the reports
    st = gx.status()
    assert (st["done"], st["queued"], st["in_flight"], st["failed"], st["skipped"]) == (
        len(files),
        0,
        0,
        0,
        0,
    )
    assert gx.rows("SELECT submission_id, task_id, label, state, files FROM batches") == [
        (task.submission_id, task.task_id, task.label, "succeeded", len(files))
    ]
    assert gx.rows("SELECT COUNT(*) FROM files") == [(0,)]
    assert gx.rows("SELECT COUNT(*) FROM dirs WHERE made=1")[0][0] >= 1
    [row] = gx.tasks_json()
    assert row["task_id"] == task.task_id
    assert row["url"] == TASK_LINK + task.task_id
    text = gx.cli("tasks").stdout
    assert TASK_LINK + task.task_id in text

    # a new empty directory in one that exists: "already exists" answers are fine
    (gx.src / "run_Sep2018" / "later" / "empty").mkdir(parents=True)
    res = gx.run()
    assert "failed 0, skipped 0" in res.stdout
    assert (gx.dst / "run_Sep2018" / "later" / "empty").is_dir()
    mkdirs = [s for (m, p, s) in gx.emu.requests if m == "POST" and p.endswith("/mkdir")]
    assert 502 in mkdirs  # ExternalError.MkdirFailed.Exists for the directories already there
    assert len(gx.emu.tasks) == 1  # nothing sent twice


def test_names_globus_cannot_carry_are_unsendable_on_every_run(gx: Globus) -> None:
    """JSON carries only UTF-8: a name that is not, or holds a newline, waits in a state of its
    own, said on every run until it is renamed or excluded (a local transport sends it)."""
    gx.env.write("good.dat", b"good", mtime=LONG_AGO)
    with open(os.fsencode(gx.src) + b"/caf\xe9.dat", "wb") as fh:
        fh.write(b"latin")
    gx.env.write("two\nlines.dat", b"n", mtime=LONG_AGO)
    gx.send()
    assert tree(gx.dst) == {"good.dat": b"good"}
    prom = gx.env.root / "m.prom"
    for _ in range(2):  # said on every run, not only the first
        res = gx.cli("run", "--metrics-file", str(prom), code=None)
        assert res.returncode in (0, 1)
        st = gx.status()
        assert {(p["path"], p["state"]) for p in st["problems"]} == {
            ("caf\\xe9.dat", "unsendable"),
            ("two\\nlines.dat", "unsendable"),
        }
        check = gx.cli("status", "--check", code=1).stdout
        assert "2 file names cannot be sent" in check
        assert "rename them, or add them to the job's 'exclude'" in check
        assert f'globus_autosync_files{{autosync_job="{JOB}",state="unsendable"}} 2.0' in (
            prom.read_text()
        )
    gx.configure(exclude=["two*", "caf*"])
    gx.run(code=None)
    assert gx.status()["problems"] == []
    gx.cli("status", "--check")


# --------------------------------------------------------------------------------------------
# 8. client credentials


def test_whoami_with_client_credentials(gx: Globus) -> None:
    res = gx.cli("whoami")
    cid = gx.emu.DEFAULT_CLIENT_ID
    assert res.stdout.strip() == (
        f"{cid}@clients.auth.globus.org (service account, identity {cid})"
    )


@pytest.mark.parametrize("missing", ["GLOBUS_AUTOSYNC_CLIENT_ID", "GLOBUS_AUTOSYNC_CLIENT_SECRET"])
@pytest.mark.parametrize("command", ["whoami", "run"])
def test_one_client_credential_without_the_other_is_a_config_error(
    gx: Globus, missing: str, command: str
) -> None:
    gx.env.write("f.dat", b"x")
    res = gx.cli(command, code=2, **{missing: None})
    [line] = stderr_lines(res)
    assert f"{missing} is not set" in line
    assert "GLOBUS_AUTOSYNC_CLIENT_ID and GLOBUS_AUTOSYNC_CLIENT_SECRET go together" in line
    assert gx.emu.requests == []  # nothing was asked of Globus
    assert not gx.dst.exists()


# --------------------------------------------------------------------------------------------
# 2. a crash between the service creating the task and the tool recording it


def test_sigkill_after_submission_then_the_rerun_finds_the_same_task(gx: Globus) -> None:
    files = populate(gx)
    # the service makes the task at once, but its answer is held: the kill lands in between
    gx.emu.delay_replies(1, 60, "/v0.10/transfer", "POST")
    proc = gx.spawn("run")
    try:
        wait_for("the task to be created", lambda: len(gx.emu.tasks) == 1)
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        gx.emu.release_replies()
    [task] = gx.emu.tasks.values()

    # the journal: the batch with its submission id, no task id; its files in it
    [(batch, sub, task_id, state)] = gx.rows(
        "SELECT id, submission_id, task_id, state FROM batches"
    )
    assert (sub, task_id, state) == (task.submission_id, None, "new")
    assert gx.rows("SELECT COUNT(*) FROM files WHERE state='submitted' AND batch=?", batch) == [
        (len(files),)
    ]

    gx.emu.wait_idle()
    res = gx.run()  # resubmits the batch with the same id: Globus answers with the same task
    assert f"confirmed {len(files)}" in res.stdout
    assert len(gx.emu.tasks) == 1
    assert gx.emu.submissions == [sub]
    posts = [s for (m, p, s) in gx.emu.requests if (m, p) == ("POST", "/v0.10/transfer")]
    assert posts == [202, 200]  # Accepted, then Duplicate
    assert gx.rows("SELECT submission_id, task_id, state FROM batches") == [
        (sub, task.task_id, "succeeded")
    ]
    assert_mirrored(gx.src, gx.dst)
    assert gx.status()["done"] == len(files)


# --------------------------------------------------------------------------------------------
# 3., 4. tasks that fail or get stuck: their files are queued again and sent by a later run


def _retried(gx: Globus, n: int, why: str) -> None:
    """After a run that resolved a failed or canceled task: every file failed once, with the
    reason; then later runs send them."""
    rows = gx.rows("SELECT state, attempts, reason, batch FROM files")
    assert len(rows) == n
    for state, attempts, reason, batch in rows:
        assert (state, attempts, batch) == ("failed", 1, None)
        assert why in reason
    st = gx.status()
    assert (st["failed"], st["done"], st["in_flight"]) == (n, 0, 0)
    assert all(why in p["reason"] and p["attempts"] == 1 for p in st["problems"])
    [(state, reason)] = gx.rows("SELECT state, reason FROM batches")
    assert state == "failed" and why in reason
    # Waiting out the backoff: the first retry is due at once, later ones 30 s, doubling. Setting
    # next_try to 0 stands for that wait whatever the backoff is, so the test does not sleep.
    with gx.env.db() as db:
        db.execute("UPDATE files SET next_try=0")
        db.commit()
    res = gx.run()
    assert f"sent {n}" in res.stdout
    gx.emu.wait_idle()
    res = gx.run()
    assert f"confirmed {n}" in res.stdout
    assert_mirrored(gx.src, gx.dst)
    assert gx.rows("SELECT state FROM batches ORDER BY id") == [("failed",), ("succeeded",)]
    assert gx.status()["done"] == n


def test_a_failed_task_is_retried(gx: Globus) -> None:
    for i in range(4):
        gx.env.write(f"run/f{i}.dat", os.urandom(100), mtime=LONG_AGO)
    gx.emu.fail_next_task("ENDPOINT_ERROR", "the endpoint is broken")
    gx.run()
    gx.emu.wait_idle()
    res = gx.run(code=1)
    assert "failed 4" in res.stdout
    _retried(gx, 4, "ENDPOINT_ERROR")
    first, second = gx.emu.tasks.values()
    assert first.fatal_error == {"code": "ENDPOINT_ERROR", "description": "the endpoint is broken"}
    assert second.status == "SUCCEEDED"
    assert first.submission_id != second.submission_id
    assert {i.source_path for i in first.items} == {i.source_path for i in second.items}


def test_an_inactive_task_says_once_what_to_do_and_is_confirmed_when_it_resumes(
    gx: Globus,
) -> None:
    for i in range(2):
        gx.env.write(f"run/f{i}.dat", os.urandom(100), mtime=LONG_AGO)
    gx.emu.hold_tasks()
    gx.run()
    [task] = gx.emu.tasks.values()
    gx.emu.deactivate_task(task.task_id)  # a collection's credentials expired

    res = gx.run(code=1)  # not a failure of any file, but someone must act
    assert "1 task waiting for you (status)" in res.stdout
    told = [line for line in res.stderr.splitlines() if "INACTIVE" in line]
    assert len(told) == 1 and task.task_id in told[0]
    assert "globus-autosync login" in told[0] and "it resumes" in told[0]
    prom = gx.env.root / "autosync.prom"
    res = gx.cli("run", "--metrics-file", str(prom), code=1)  # still waiting: not said again
    assert "1 task waiting for you" in res.stdout and "INACTIVE" not in res.stderr
    assert f'globus_autosync_tasks_waiting{{autosync_job="{JOB}"}} 1.0' in prom.read_text()
    st = gx.status()
    assert (st["in_flight"], st["failed"], st["done"]) == (2, 0, 0)
    [waiting] = st["tasks_waiting"]
    assert waiting["task_id"] == task.task_id and "INACTIVE" in waiting["reason"]
    text = gx.cli("status").stdout
    assert f"waiting: batch {waiting['batch']}: task {task.task_id} is INACTIVE" in text
    [row] = gx.tasks_json()
    assert row["state"] == "submitted" and "INACTIVE" in row["reason"]

    gx.emu.reactivate_task(task.task_id)  # renewed
    gx.emu.hold_tasks(False)
    gx.emu.wait_idle()
    res = gx.cli("run", "--metrics-file", str(prom))
    assert "confirmed 2" in res.stdout and "waiting" not in res.stdout
    assert f'globus_autosync_tasks_waiting{{autosync_job="{JOB}"}} 0.0' in prom.read_text()
    assert_mirrored(gx.src, gx.dst)
    assert gx.status()["tasks_waiting"] == []
    assert gx.rows("SELECT state, reason FROM batches") == [("succeeded", None)]
    assert len(gx.emu.tasks) == 1  # the same task, never canceled nor sent again


# --------------------------------------------------------------------------------------------
# 5., 12. 503s: survived by the SDK's retries; beyond them, the work waits for the next run


def test_a_storm_of_503s_and_a_dropped_connection_are_survived(gx: Globus) -> None:
    files = populate(gx)
    # the SDK retries a dropped connection and a 503 itself (after Retry-After); the retried
    # submission keeps its id
    gx.emu.drop_connections(1, "/v0.10/submission_id")
    gx.emu.fail_requests(3, 503, "/v0.10/transfer", retry_after=1)
    res = gx.run()
    assert gx.emu.dropped == [("GET", "/v0.10/submission_id")]
    assert f"sent {len(files)}" in res.stdout
    posts = [s for (m, p, s) in gx.emu.requests if (m, p) == ("POST", "/v0.10/transfer")]
    assert posts == [503, 503, 503, 202]
    gx.emu.wait_idle()
    gx.run()
    assert len(gx.emu.tasks) == 1
    assert_mirrored(gx.src, gx.dst)
    assert gx.status()["done"] == len(files)


def test_503s_beyond_the_sdk_retries_leave_the_work_queued(gx: Globus) -> None:
    files = populate(gx)
    # the SDK makes 1 + 5 attempts: all answer 503 (with Retry-After: 1, to keep this quick)
    gx.emu.fail_requests(6, 503, "/v0.10/submission_id", retry_after=1)
    res = gx.run(code=1)
    assert "work left queued" in res.stdout
    assert [s for (_m, p, s) in gx.emu.requests if p == "/v0.10/submission_id"] == [503] * 6
    errors = [line for line in stderr_lines(res) if "Globus answered" in line]
    assert len(errors) == 1, res.stderr
    assert re.search(
        r"Globus answered 503 ServiceUnavailable \(request id [A-Za-z0-9]+\): Injected failure",
        errors[0],
    ), errors[0]
    st = gx.status()
    assert (st["queued"], st["in_flight"], st["done"]) == (len(files), 0, 0)
    assert gx.rows("SELECT COUNT(*) FROM batches") == [(0,)]
    assert gx.emu.tasks == {}

    res = gx.run()  # the next run carries on
    assert f"sent {len(files)}" in res.stdout
    gx.emu.wait_idle()
    gx.run()
    assert len(gx.emu.tasks) == 1
    assert_mirrored(gx.src, gx.dst)
    assert gx.status()["done"] == len(files)


# --------------------------------------------------------------------------------------------
# 6. more files than one task holds


def test_many_files_make_several_tasks_never_more_than_three_at_once(gx: Globus) -> None:
    gx.configure(max_files_per_task=5, max_active_tasks=3)
    names = [f"d{i % 4}/frame_{i:03}.tif" for i in range(23)]
    for i, rel in enumerate(names):
        gx.env.write(rel, os.urandom(50 + i), mtime=LONG_AGO + i)
    most_open = 0

    def run(code: int = 0) -> Any:
        nonlocal most_open
        res = gx.run(code=code)
        most_open = max(most_open, gx.open_batches())
        active = [t for t in gx.emu.tasks.values() if t.status == "ACTIVE"]
        assert len(active) <= 3
        return res

    gx.emu.hold_tasks()  # the emulator would run ten at once: the tool must hold back
    res = run()
    assert "sent 15" in res.stdout
    assert len(gx.emu.tasks) == 3
    res = run()  # three in flight: nothing more is sent, the rest waits in the store
    assert "sent 0" in res.stdout
    assert len(gx.emu.tasks) == 3
    st = gx.status()
    assert (st["queued"], st["in_flight"]) == (8, 15)
    gx.emu.hold_tasks(False)
    gx.emu.wait_idle()
    res = run()
    assert "confirmed 15" in res.stdout
    assert "sent 8" in res.stdout
    gx.emu.wait_idle()
    res = run()
    assert "confirmed 8" in res.stdout

    assert most_open == 3
    assert gx.emu.max_concurrent_active <= 3
    tasks = list(gx.emu.tasks.values())
    assert sorted(len(t.items) for t in tasks) == [3, 5, 5, 5, 5]
    sent = [i.source_path for t in tasks for i in t.items]
    assert sorted(sent) == sorted(f"{SRC_PATH}/{rel}" for rel in names)  # each once
    assert all(t.status == "SUCCEEDED" and t.label and LABEL.match(t.label) for t in tasks)
    assert len(gx.rows("SELECT DISTINCT submission_id FROM batches")) == 5
    assert gx.status()["done"] == 23
    assert_mirrored(gx.src, gx.dst)


# --------------------------------------------------------------------------------------------
# 7. consent


def test_missing_consent_names_the_login_command(gx: Globus) -> None:
    gx.service = False
    gx.seed_login()
    gx.emu.require_consent(DST_COLLECTION)
    files = populate(gx)
    command = f"globus-autosync login --collection {DST_COLLECTION}"
    res = gx.run(code=3)
    [line] = stderr_lines(res)
    assert line.endswith(
        f"Globus needs your consent to access collection {DST_COLLECTION}; run: {command}"
    ), line
    assert gx.emu.tasks == {}

    res = gx.cli("check", code=3)
    failed = [line for line in res.stdout.splitlines() if not line.startswith("ok  ")]
    assert failed == [
        f"FAIL  {JOB}: consent: Globus needs your consent to access collection {DST_COLLECTION}; "
        f"run: {command}"
    ], res.stdout

    # the user runs that login (here: a login with the consent is stored), and the next run
    # sends the batch that was journaled
    gx.seed_login(consents=[DST_COLLECTION])
    gx.send()
    assert len(gx.emu.tasks) == 1
    assert_mirrored(gx.src, gx.dst)
    assert gx.status()["done"] == len(files)


def test_a_service_account_asks_for_data_access_itself(gx: Globus) -> None:
    gx.emu.require_consent(DST_COLLECTION)
    files = populate(gx)
    res = gx.run()
    assert f"sent {len(files)}" in res.stdout
    assert f"asking for data access to {DST_COLLECTION}" in res.stderr
    gx.send()
    assert len(gx.emu.tasks) == 1
    # refused once; the token got with the consent is kept and serves the later runs
    assert [p for (_m, p, s) in gx.emu.requests if s == 403] == [
        f"/v0.10/operation/endpoint/{DST_COLLECTION}/mkdir"
    ]
    assert_mirrored(gx.src, gx.dst)
    assert (gx.dst / "run_Oct2018" / "empty" / "deeper").is_dir()


# --------------------------------------------------------------------------------------------
# 9. check


def test_check_passes_against_good_collections(gx: Globus) -> None:
    res = gx.cli("check")
    lines = res.stdout.splitlines()
    assert all(line.startswith("ok  ") for line in lines), res.stdout
    text = res.stdout
    for what in (
        "credentials",
        "source collection",
        "destination collection",
        "consent",
        "source path",
        "destination path",
    ):
        assert sum(f"{JOB}: {what}" in line for line in lines) == 1, (what, text)
    assert "probe made and deleted" in text
    assert not [p for p in gx.cluster.rglob("*") if "probe" in p.name]


def test_check_fails_on_an_unknown_collection(gx: Globus) -> None:
    unknown = str(uuid.uuid4())
    gx.configure(destination_collection=unknown)
    res = gx.cli("check", code=3)
    failed = [line for line in res.stdout.splitlines() if not line.startswith("ok  ")]
    assert len(failed) == 1, res.stdout
    assert failed[0].startswith(f"FAIL  {JOB}: destination collection")
    assert unknown in failed[0] and "404" in failed[0] and "EndpointNotFound" in failed[0]
    assert "Traceback" not in res.stderr


# --------------------------------------------------------------------------------------------
# 10. a user login that expired, was revoked, or never happened


@pytest.mark.parametrize("login", ["revoked", "expired", "never"])
def test_a_dead_login_says_to_run_login(gx: Globus, login: str) -> None:
    gx.service = False
    if login != "never":
        gx.seed_login(expired=login == "expired")
        gx.emu.expire_tokens()  # revoked (or expired) at Globus: refreshing is refused
    gx.env.write("f.dat", b"x", mtime=LONG_AGO)
    res = gx.run(code=3)
    lines = stderr_lines(res)
    assert len(lines) == 1, res.stderr
    assert "run: globus-autosync login" in lines[0]
    assert "Traceback" not in res.stderr
    assert gx.emu.tasks == {}


# --------------------------------------------------------------------------------------------
# 11. a file that vanished between the scan and the transfer


def test_a_file_deleted_before_the_task_ran_is_marked_skipped(gx: Globus) -> None:
    files = populate(gx)
    gone = "run_Sep2018/YAGline9test/YAGline9test_01792.tif"
    gx.emu.hold_tasks()  # the task is accepted but does not start: the file goes meanwhile
    gx.run()
    [task] = gx.emu.tasks.values()
    (gx.src / gone).unlink()
    gx.emu.hold_tasks(False)
    gx.emu.wait_idle()
    assert task.status == "SUCCEEDED" and len(task.skipped_errors) == 1
    res = gx.run(code=1)  # exit 1: a file was skipped
    assert f"confirmed {len(files) - 1}" in res.stdout
    assert "skipped 1" in res.stdout

    st = gx.status()
    assert (st["done"], st["skipped"], st["failed"], st["queued"]) == (len(files) - 1, 1, 0, 0)
    [problem] = st["problems"]
    assert (problem["path"], problem["state"]) == (gone, "skipped")
    assert problem["reason"].startswith("Globus skipped it: FILE_NOT_FOUND")
    assert f"{SRC_PATH}/{gone}" in problem["reason"]
    assert gx.rows("SELECT state, reason FROM files") == [("skipped", problem["reason"])]
    assert gx.rows("SELECT state FROM batches") == [("succeeded",)]
    text = gx.cli("status").stdout
    assert f"skipped: {gone}: Globus skipped it: FILE_NOT_FOUND" in text
    assert not (gx.dst / gone).exists()
    assert_mirrored(gx.src, gx.dst)


# --------------------------------------------------------------------------------------------
# 11. logging in once: the command-line flow a person follows (login --no-browser)


def test_login_once_and_every_run_ships_as_that_user(gx: Globus) -> None:
    gx.service = False
    res = log_in(gx, gx.emu.authorize)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert "Traceback" not in res.stderr
    # the first link asks for Transfer; the collections then need data access consent, which
    # the second link asks for (one more browser round trip, said as it happens)
    first, second = login_links(res)
    assert first["client_id"] == NATIVE_APP and "openid" in first["scope"].split()
    for collection in (SRC_COLLECTION, DST_COLLECTION):
        assert DATA_ACCESS_SCOPE.format(collection) not in first["scope"]
        assert DATA_ACCESS_SCOPE.format(collection) in second["scope"]
    assert "need your consent for data access; one more login grants it" in res.stdout
    tokens = gx.env.state / "tokens.db"
    assert f"logged in; tokens kept in {tokens}" in res.stdout
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert "researcher@example.org" in gx.cli("whoami").stdout
    files = populate(gx)
    gx.send()
    assert tree(gx.dst) == files
    assert {task.owner for task in gx.emu.tasks.values()} == {gx.emu.DEFAULT_USER_ID}


def test_a_code_that_is_not_the_one_shown_is_one_line_and_stores_nothing(gx: Globus) -> None:
    gx.service = False

    def mistyped(url: str) -> str:
        return gx.emu.authorize(url)[:-1] + "x"

    res = log_in(gx, mistyped)
    assert res.returncode == 3
    [line] = stderr_lines(res)
    assert line.startswith("globus-autosync: error: login: Globus Auth refused the login; ")
    assert "run 'globus-autosync login' again" in line and "INVALID_GRANT" in line
    res = gx.run(code=3)  # nothing was stored: still not logged in
    assert "not logged in to Globus" in res.stderr and "run: globus-autosync login" in res.stderr
    assert not gx.emu.tasks

"""Health of a Globus job against the emulated Transfer service: Globus Connect Personal not
connected (its collection document says so, or a task's nice_status does), an INACTIVE task,
a lag; said once in the log, shown by `status` and `check` until it clears, and in the metrics."""

from __future__ import annotations

import os

from tests.emulator.fixtures import SRC_COLLECTION

from .globus_env import JOB, Globus
from .helpers import LONG_AGO

NAME = "Emulated Collection 1"  # the source collection's display name in the emulator
TODO = f"start Globus Connect Personal on {NAME}"


def told(res: object, text: str) -> list[str]:
    return [line for line in str(getattr(res, "stderr", "")).splitlines() if text in line]


def test_globus_connect_personal_not_connected_is_said_once_and_shown_until_it_clears(
    gx: Globus,
) -> None:
    gx.emu.set_gcp(SRC_COLLECTION, connected=False)  # nobody started it on the instrument PC
    for i in range(2):
        gx.env.write(f"run/f{i}.dat", os.urandom(100), mtime=LONG_AGO)
    res = gx.run(code=1)
    [line] = told(res, TODO)
    assert f"'{NAME}' (source collection {SRC_COLLECTION}) is not connected" in line
    assert "a collection is not connected (status)" in res.stdout
    res = gx.run(code=1)  # the next cron run: still down, not said again
    assert told(res, "Globus Connect Personal") == []
    st = gx.status()
    assert st["health"]["state"] == "waiting" and st["health"]["action"] == TODO
    [src] = [c for c in st["collections"] if c["role"] == "source"]
    assert src["name"] == NAME and "not connected" in src["problem"]
    [line] = gx.cli("status", "--check", code=1).stdout.splitlines()
    assert line.startswith(f"{JOB}: WAITING: '{NAME}' (source collection") and line.endswith(TODO)
    assert gx.cli("status").stdout.splitlines()[0].startswith(f"{JOB}: waiting: '{NAME}'")
    res = gx.cli("check", code=3)
    assert any(x.startswith("FAIL") and TODO in x for x in res.stdout.splitlines())
    prom = gx.env.root / "m.prom"
    gx.cli("run", "--metrics-file", str(prom), code=1)
    text = prom.read_text()
    assert f'globus_autosync_collection_connected{{autosync_job="{JOB}",role="source"}} 0.0' in text
    assert (
        f'globus_autosync_collection_connected{{autosync_job="{JOB}",role="destination"}} 1.0'
        in text
    )
    assert f'globus_autosync_health{{autosync_job="{JOB}",state="waiting"}} 1.0' in text

    gx.emu.set_gcp(SRC_COLLECTION, connected=True)  # started
    with gx.env.db() as db:  # the documents are read again a few minutes later
        db.execute("UPDATE collections SET checked = checked - 600")
        db.commit()
    gx.emu.wait_idle()
    res = gx.run(code=None)
    assert len(told(res, "is connected again")) == 1
    gx.send()
    assert gx.status()["health"]["state"] == "ok"
    assert gx.cli("status", "--check").stdout == f"{JOB}: OK\n"


def test_a_task_that_shows_gc_not_connected_is_said_once(gx: Globus) -> None:
    gx.env.write("f.dat", b"data", mtime=LONG_AGO)
    gx.emu.stick_next_task("GC_NOT_CONNECTED")  # the documents say nothing; the task does
    res = gx.run(code=None)
    res = gx.run(code=1)
    [line] = told(res, "GC_NOT_CONNECTED")
    assert f"(source collection {SRC_COLLECTION}) is not connected" in line and TODO in line
    res = gx.run(code=1)
    assert told(res, "GC_NOT_CONNECTED") == []
    st = gx.status()
    assert st["health"]["state"] == "waiting" and "GC_NOT_CONNECTED" in st["health"]["reason"]
    gx.cli("status", "--check", code=1)
    res = gx.cli("check", code=3)
    [fail] = [x for x in res.stdout.splitlines() if x.startswith("FAIL")]
    assert "a task waits: GC_NOT_CONNECTED" in fail and TODO in fail


def test_an_inactive_task_makes_the_job_waiting_and_a_lag_makes_it_lagging(gx: Globus) -> None:
    gx.env.write("f.dat", b"data", mtime=LONG_AGO)
    gx.emu.hold_tasks()
    gx.run()
    [line] = gx.cli("status", "--check", code=0).stdout.splitlines()
    with gx.env.db() as db:  # two hours later, still not confirmed
        db.execute("UPDATE files SET queued_at = queued_at - 7200")
        db.commit()
    [line] = gx.cli("status", "--check", code=1).stdout.splitlines()
    assert line.startswith(f"{JOB}: LAGGING: the oldest file ready to send has waited 2.0 h")
    [task] = gx.emu.tasks.values()
    gx.emu.deactivate_task(task.task_id)
    gx.run(code=1)
    [line] = gx.cli("status", "--check", code=1).stdout.splitlines()
    assert line.startswith(f"{JOB}: WAITING: task {task.task_id} is INACTIVE")
    assert "globus-autosync login" in line


def test_globus_out_of_reach_for_alert_after_cycles_is_failing(gx: Globus) -> None:
    gx.configure(alert_after=2)
    gx.env.write("f.dat", b"data", mtime=LONG_AGO)
    for _ in range(2):  # every attempt the SDK makes answers 503 (Retry-After: 1, to be quick)
        gx.emu.fail_requests(6, 503, "/v0.10/submission_id", retry_after=1)
        res = gx.run(code=1)
        assert "work left queued: transport unavailable" in res.stdout
    [line] = gx.cli("status", "--check", code=2).stdout.splitlines()
    assert line.startswith(f"{JOB}: FAILING: the last 2 cycles could not run: ")
    assert "Globus answered 503" in line
    gx.run()  # Globus is back
    assert gx.cli("status", "--check").stdout == f"{JOB}: OK\n"


def test_a_login_that_expired_makes_the_job_waiting_with_the_command_to_run(gx: Globus) -> None:
    gx.service = False
    gx.seed_login(expired=True)
    gx.emu.expire_tokens()  # and refreshing it is refused
    gx.env.write("f.dat", b"data", mtime=LONG_AGO)
    gx.run(code=3)
    [line] = gx.cli("status", "--check", code=1).stdout.splitlines()
    assert line.startswith(f"{JOB}: WAITING: ") and "globus-autosync login" in line

"""The emulator's switches for what the real services do unkindly, each through globus-sdk over
HTTP: answers lost after acting, deadlines, retried and lasting errors, pauses, purges, the
label limit, list order, and one directory refused."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import globus_sdk
import pytest
from globus_sdk.transport import RequestsTransport

from tests.emulator._common import iso_time
from tests.emulator.fixtures import (
    FLOW,
    EmulatorHarness,
    fast_retry_config,
    flows_clients,
    submit,
    wait_for,
    write,
)

HOUR = 3600.0


def in_hours(hours: float) -> str:
    return (datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(hours=hours)).isoformat()


# --------------------------------------------------------------------------- a. lost answers


@pytest.mark.parametrize("status", [502, 504, None])
def test_a_run_started_then_its_answer_lost_is_started_again_by_the_sdk_retry(
    globus_emulator: EmulatorHarness, status: int | None
) -> None:
    h = globus_emulator
    specific, _flows = flows_clients(h)
    specific.run_flow({"warm": "up"})  # tokens first
    h.emulator.lose_replies(1, status=status)
    answer = specific.run_flow({"x": 1}, label="once")
    runs = [r for r in h.emulator.flow_runs.values() if r.label == "once"]
    assert len(runs) == 2  # the service acted on both POSTs: the run was started twice
    assert answer["run_id"] == runs[1].run_id
    assert h.emulator.lost == [("POST", f"/flows-api/flows/{FLOW}/run", 201)]
    if status is None:
        assert h.emulator.dropped == [("POST", f"/flows-api/flows/{FLOW}/run")]
    else:
        assert (("POST", f"/flows-api/flows/{FLOW}/run", status)) in h.emulator.requests


def test_a_run_answered_past_the_client_timeout_is_started_again(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    specific = globus_sdk.SpecificFlowClient(
        FLOW,
        app=h.client_app(),
        transport=RequestsTransport(http_timeout=0.5),
        retry_config=fast_retry_config(),
    )
    specific.run_flow({"warm": "up"})
    h.emulator.delay_replies(1, 5, "/flows-api/flows/", "POST")  # acts, answers after 5 s
    specific.run_flow({"x": 1}, label="late")
    h.emulator.release_replies()
    assert [r.label for r in h.emulator.flow_runs.values()].count("late") == 2
    specific.close()


def test_a_submission_whose_answer_is_lost_is_made_once(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    tc.get_submission_id()
    h.emulator.lose_replies(1, "/v0.10/transfer", status=504)
    task_id = submit(tc, h, [("/f", "/f")])  # TransferData carries a submission_id
    assert list(h.emulator.tasks) == [task_id]
    assert h.emulator.lost == [("POST", "/v0.10/transfer", 202)]


# --------------------------------------------------------------------------- b. deadlines


def test_without_the_switch_a_task_expires_24h_after_submission(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.hold_tasks()
    task_id = submit(tc, h, [("/f", "/f")])
    h.emulator.record_progress(task_id)
    h.emulator.advance_clock(23 * HOUR)
    assert tc.get_task(task_id)["status"] == "ACTIVE"
    h.emulator.advance_clock(2 * HOUR)
    task = tc.get_task(task_id)
    assert (task["status"], task["fatal_error"]["code"]) == ("FAILED", "EXPIRED")


def test_a_progressing_task_without_deadline_is_extended_72h_after_its_last_progress(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    h.emulator.extend_deadlines = True
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.hold_tasks()  # it runs (holds a slot) but does not finish
    task_id = submit(tc, h, [("/f", "/f")])
    h.emulator.advance_clock(20 * HOUR)
    h.emulator.record_progress(task_id, 1000)
    progressed = h.emulator.clock()
    h.emulator.advance_clock(20 * HOUR)  # 40 h after submission
    task = tc.get_task(task_id)
    assert task["status"] == "ACTIVE"
    assert task["bytes_transferred"] == 1000
    assert task["deadline"] == iso_time(progressed + 72 * HOUR)
    h.emulator.advance_clock(53 * HOUR)  # 73 h after the last progress
    task = tc.get_task(task_id)
    assert (task["status"], task["fatal_error"]["code"]) == ("FAILED", "EXPIRED")
    assert task["nice_status"] is None


def test_a_running_task_without_progress_still_expires_at_24h(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    h.emulator.extend_deadlines = True
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.hold_tasks()
    task_id = submit(tc, h, [("/f", "/f")])
    h.emulator.advance_clock(25 * HOUR)
    assert tc.get_task(task_id)["status"] == "FAILED"


def test_a_queued_task_without_errors_is_kept_24h_away(
    globus_emulator_factory: Callable[..., EmulatorHarness],
) -> None:
    h = globus_emulator_factory(max_active=1)
    h.emulator.extend_deadlines = True
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.hold_tasks()
    running = submit(tc, h, [("/f", "/f")])
    queued = submit(tc, h, [("/f", "/g")])
    # a new task reads "Queued" until scheduled: wait for the first to hold the slot
    wait_for(lambda: tc.get_task(running)["nice_status"] == "OK")
    assert tc.get_task(queued)["nice_status"] == "Queued"
    for _ in range(4):
        h.emulator.advance_clock(10 * HOUR)
    assert tc.get_task(running)["status"] == "FAILED"  # no progress: expired at 24 h
    assert tc.get_task(queued)["status"] == "ACTIVE"


@pytest.mark.parametrize("kind", ["transfer with a deadline", "delete"])
def test_a_task_given_a_deadline_and_a_delete_expire_at_it_despite_progress(
    globus_emulator: EmulatorHarness, kind: str
) -> None:
    h = globus_emulator
    h.emulator.extend_deadlines = True
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.hold_tasks()
    if kind == "delete":
        ddata = globus_sdk.DeleteData(h.src_id)
        ddata.add_item("/f")
        task_id = str(tc.submit_delete(ddata)["task_id"])
        hours = 24.0
    else:
        task_id = submit(tc, h, [("/f", "/f")], deadline=in_hours(2))
        hours = 2.0
    h.emulator.advance_clock((hours - 1.5) * HOUR)
    h.emulator.record_progress(task_id)
    h.emulator.advance_clock(HOUR)
    assert tc.get_task(task_id)["status"] == "ACTIVE"
    h.emulator.advance_clock(HOUR)
    task = tc.get_task(task_id)
    assert (task["status"], task["fatal_error"]["code"]) == ("FAILED", "EXPIRED")
    assert (task["nice_status"], task["nice_status_short_description"]) == (None, None)


# --------------------------------------------------------------------------- c. errors


@pytest.mark.parametrize("code", ["PERMISSION_DENIED", "FILE_NOT_FOUND"])
def test_a_retried_error_shows_in_nice_status_and_the_task_later_succeeds(
    globus_emulator: EmulatorHarness, code: str
) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"data")
    tc = h.transfer_client()
    h.emulator.transient_error_next_task(code, clears_after=900)
    task_id = submit(tc, h, [("/f", "/f")])
    wait_for(lambda: tc.get_task(task_id)["nice_status"] == code)
    task = tc.get_task(task_id)
    assert (task["status"], task["is_ok"], task["faults"]) == ("ACTIVE", False, 1)
    assert task["nice_status_short_description"]
    h.emulator.wait_idle()  # backing off: not busy
    assert not (h.dst_dir / "f").exists()
    h.emulator.advance_clock(901)
    wait_for(lambda: tc.get_task(task_id)["status"] != "ACTIVE")
    task = tc.get_task(task_id)
    assert (task["status"], task["nice_status"], task["fatal_error"]) == ("SUCCEEDED", None, None)
    assert (h.dst_dir / "f").read_bytes() == b"data"
    events = list(tc.paginated.task_event_list(task_id).items())
    assert any(e["code"] == code and e["is_error"] for e in events)


@pytest.mark.parametrize(
    "code", ["NO_SPACE_LEFT", "QUOTA_EXCEEDED", "INVALID_PATH_NAME", "NOT_A_DIRECTORY"]
)
def test_an_error_that_never_clears_waits_until_the_deadline(
    globus_emulator: EmulatorHarness, code: str
) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.stick_next_task(code)
    task_id = submit(tc, h, [("/f", "/f")], deadline=in_hours(6))
    h.emulator.advance_clock(5 * HOUR)
    task = tc.get_task(task_id)
    assert (task["status"], task["nice_status"], task["is_ok"]) == ("ACTIVE", code, False)
    assert task["nice_status_short_description"] not in (None, code)
    h.emulator.advance_clock(2 * HOUR)
    task = tc.get_task(task_id)
    assert (task["status"], task["fatal_error"]["code"]) == ("FAILED", "EXPIRED")


# --------------------------------------------------------------------------- d. pauses


def test_an_administrator_pause_stops_the_task_until_lifted(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    h.emulator.extend_deadlines = True
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.hold_tasks()
    task_id = submit(tc, h, [("/f", "/f")])
    h.emulator.pause_task(task_id, "storage maintenance")
    paused_at = h.emulator.clock()
    h.emulator.hold_tasks(False)
    h.emulator.wait_idle()  # a paused task is not busy
    task = tc.get_task(task_id)
    assert (task["status"], task["is_paused"]) == ("ACTIVE", True)
    assert task["deadline"] == iso_time(paused_at + 90 * 86400)
    info = tc.task_pause_info(task_id)
    assert [r["message"] for r in info["pause_rules"]] == ["storage maintenance"]
    assert not (h.dst_dir / "f").exists()
    h.emulator.unpause_task(task_id)
    h.emulator.wait_idle()
    task = tc.get_task(task_id)
    assert (task["status"], task["is_paused"]) == ("SUCCEEDED", False)
    assert tc.task_pause_info(task_id)["pause_rules"] == []


# --------------------------------------------------------------------------- e. purges


def test_a_purged_task_and_a_purged_run_answer_404(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    task_id = submit(tc, h, [("/f", "/f")])
    h.emulator.wait_idle()
    h.emulator.purge_task(task_id)
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.get_task(task_id)
    assert (info.value.http_status, info.value.code) == (404, "ClientError.NotFound")
    assert tc.task_list()["DATA"] == []

    specific, flows = flows_clients(h)
    run_id = specific.run_flow({"x": 1})["run_id"]
    h.emulator.purge_flow_run(run_id)
    with pytest.raises(globus_sdk.FlowsAPIError) as flows_info:
        flows.get_run(run_id)
    assert (flows_info.value.http_status, flows_info.value.code) == (404, "NOT_FOUND")
    assert list(flows.list_runs()) == []


# --------------------------------------------------------------------------- f. label limit


def test_a_label_over_128_characters_is_refused(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    assert submit(tc, h, [("/f", "/f")], label="x" * 200)  # off: accepted
    h.emulator.label_limit = 128
    assert submit(tc, h, [("/f", "/g")], label="x" * 128)
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        submit(tc, h, [("/f", "/h")], label="x" * 129)
    assert (info.value.http_status, info.value.code) == (400, "ClientError.BadRequest")
    assert info.value.message and info.value.request_id
    assert len(h.emulator.tasks) == 2


# --------------------------------------------------------------------------- g. list order


def test_runs_and_tasks_are_listed_in_an_order_not_promised(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    specific, flows = flows_clients(h)
    # 8 runs: a shuffle that happens to equal either order has odds of 1 in 20,160
    started = [specific.run_flow({"i": i})["run_id"] for i in range(8)]

    def listed() -> list[str]:
        return [r["run_id"] for r in flows.paginated.list_runs().items()]

    assert listed() == started[::-1]  # off: newest first, as before
    h.emulator.set_list_order("oldest")
    assert listed() == started
    h.emulator.set_list_order("shuffled")
    shuffled = listed()
    assert sorted(shuffled) == sorted(started) and shuffled == listed()
    assert shuffled not in (started, started[::-1])

    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    tasks = [submit(tc, h, [("/f", f"/{i}")]) for i in range(3)]
    h.emulator.set_list_order("oldest")
    assert [t["task_id"] for t in tc.task_list()["DATA"]] == tasks
    newest = tc.task_list(orderby="request_time DESC")["DATA"]  # asked for: honoured
    assert newest[0]["task_id"] == tasks[-1]
    with pytest.raises(ValueError, match="order"):
        h.emulator.set_list_order("alphabetical")


# --------------------------------------------------------------------------- h. listings


def test_one_directory_refused_with_invalid_path(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "top" / "bad" / "f", b"f")
    write(h.src_dir / "top" / "good" / "g", b"g")
    tc = h.transfer_client()
    h.emulator.refuse_listing(h.src_id, "/top/bad")
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.operation_ls(h.src_id, path="/top/bad")
    assert (info.value.http_status, info.value.code) == (400, "ClientError.InvalidPath")
    top = tc.operation_ls(h.src_id, path="/top")
    assert sorted(e["name"] for e in top["DATA"]) == ["bad", "good"]
    assert [e["name"] for e in tc.operation_ls(h.src_id, path="/top/good")["DATA"]] == ["g"]
    h.emulator.refuse_listing(h.src_id, "/top/bad", refused=False)
    assert [e["name"] for e in tc.operation_ls(h.src_id, path="/top/bad")["DATA"]] == ["f"]


def test_ls_answers_carry_limit_only_with_the_switch(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "d" / "f", b"f")
    tc = h.transfer_client()
    plain = tc.operation_ls(h.src_id, path="/d")
    assert (plain["length"], plain["total"]) == (1, 1)
    assert "limit" not in plain and "offset" not in plain
    h.emulator.ls_limit_key = True
    legacy = tc.operation_ls(h.src_id, path="/d", limit=10)
    assert (legacy["limit"], legacy["offset"]) == (10, 0)

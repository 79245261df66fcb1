"""Actions that start a Globus Flow, end to end: the real console script against the emulated
Transfer, Auth and Flows services (tests/emulator). Each test checks what a user would: the runs
the Flows service got (their input, label and tags), the store, ``status``/``tasks`` and the
exit code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import TRANSFER_SCOPE, TransferEmulator
from tests.emulator.fixtures import DST_COLLECTION, SRC_COLLECTION
from tests.emulator.flows import EmulatedRun

from .globus_env import DST_PATH, JOB, SRC_PATH, Globus, log_in, login_links
from .helpers import LONG_AGO, CliEnv

FLOW = "3a1f2e4d-5c6b-4a7e-8f9d-0e1f2a3b4c5d"
SCAN = "run_Sep2018/YAGline9test"


@pytest.fixture
def fx(tmp_path: Path) -> Iterator[Globus]:
    instrument = tmp_path / "instrument"
    instrument.mkdir()
    cluster = tmp_path / "cluster"
    (cluster / "clusterfs" / "xmas" / "xmas-storage").mkdir(parents=True)
    emu = TransferEmulator({SRC_COLLECTION: instrument, DST_COLLECTION: cluster}, max_active=10)
    emu.start()
    g = Globus(CliEnv(instrument), emu, cluster)
    try:
        yield g
    finally:
        emu.stop()
    assert not emu.server_errors, "emulator internal errors:\n" + "\n".join(emu.server_errors)


def configure(g: Globus, flow_input: str | None = None, **keys: Any) -> None:
    """The job of test_globus with a flow; ``flow_input``: a TOML inline table."""
    g.configure(**({"on_done": "batch", "flow": FLOW} | keys))
    if flow_input is not None:
        with open(g.env.config, "a", encoding="utf-8") as fh:
            fh.write(f"flow_input = {flow_input}\n")


def write(g: Globus, files: dict[str, bytes]) -> None:
    for i, (rel, data) in enumerate(sorted(files.items())):
        g.env.write(rel, data, mtime=LONG_AGO + i * 100 + 0.5)


def frames(n: int, start: int = 0, scan: str = SCAN) -> dict[str, bytes]:
    return {f"{scan}/frame_{i:05}.tif": os.urandom(100 + i) for i in range(start, start + n)}


def actions(g: Globus) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(g.cli("tasks", "--json").stdout)["actions"]
    return sorted(rows, key=lambda a: a["action"])


def runs(g: Globus) -> list[Any]:
    return list(g.emu.flow_runs.values())


# --------------------------------------------------------------------------------------------


def test_one_flow_run_per_batch_with_the_right_manifest(fx: Globus) -> None:
    configure(fx, '{ analysis = "xpcs", nodes = 2 }')
    files = frames(3) | {"run_Sep2018/notes.txt": b"beam at 3 GeV\n"}
    write(fx, files)
    fx.send()
    [run] = runs(fx)
    [batch] = fx.tasks_json()
    [action] = actions(fx)
    assert run.label == f"AUTO_{JOB}_batch_{action['action']}"
    assert "globus-autosync" in run.tags and f"job:{JOB}" in run.tags
    # flow_input beside the manifest, which is the input's `autosync` key
    assert run.body["analysis"] == "xpcs" and run.body["nodes"] == 2
    manifest = run.body["autosync"]
    assert (manifest["job"], manifest["kind"], manifest["id"], manifest["batch"]) == (
        JOB,
        "batch",
        action["action"],
        batch["batch"],
    )
    assert manifest["source"] == {"collection": SRC_COLLECTION, "root": SRC_PATH}
    assert manifest["destination"] == {"collection": DST_COLLECTION, "root": DST_PATH}
    assert {f["path"]: (f["source"], f["destination"], f["size"]) for f in manifest["files"]} == {
        rel: (f"{SRC_PATH}/{rel}", f"{DST_PATH}/{rel}", len(data)) for rel, data in files.items()
    }
    for f in manifest["files"]:
        assert f["mtime_ns"] == (fx.src / f["path"]).stat().st_mtime_ns
    # the next run sees it succeeded; tasks and status say so, with the web link
    fx.run()
    [action] = actions(fx)
    assert (action["state"], action["flow_state"], action["run_id"]) == (
        "succeeded",
        "succeeded",
        run.run_id,
    )
    assert action["url"] == f"https://app.globus.org/runs/{run.run_id}"
    text = fx.cli("tasks").stdout
    assert f"flow run {run.run_id} succeeded" in text
    assert f"https://app.globus.org/runs/{run.run_id}" in text
    acts = fx.status()["actions"]
    assert (acts["pending"], acts["running"], acts["succeeded"], acts["failed"]) == (0, 0, 1, 0)
    # more files: one more batch, one more run with only them
    more = frames(2, start=10)
    write(fx, more)
    fx.send()
    fx.run()
    assert len(runs(fx)) == 2
    second = runs(fx)[1].body["autosync"]
    assert {f["path"] for f in second["files"]} == set(more)
    assert [a["state"] for a in actions(fx)] == ["succeeded", "succeeded"]


def test_sigkill_right_after_the_flow_started_then_still_one_run(fx: Globus) -> None:
    configure(fx)
    write(fx, frames(2))
    fx.run(code=None)
    fx.emu.wait_idle()
    # this run confirms the files, journals the action, starts the run and is killed at once
    res = fx.cli("run", code=None, GLOBUS_AUTOSYNC_CRASH_AT="action-flow-started")
    assert res.returncode == -9
    [run] = runs(fx)
    assert fx.rows("SELECT flow_state, run_id FROM actions") == [("starting", None)]
    # the next run looks for the run by its tag before starting one: it finds it
    fx.run()
    assert len(runs(fx)) == 1
    [action] = actions(fx)
    assert action["run_id"] == run.run_id
    fx.run()
    assert len(runs(fx)) == 1
    assert actions(fx)[0]["state"] == "succeeded"
    assert f"found run {run.run_id} started before" in "\n".join(fx.env.log_lines())


def test_sigkill_after_journaling_before_the_start_then_one_run(fx: Globus) -> None:
    configure(fx)
    write(fx, frames(2))
    fx.run(code=None)
    fx.emu.wait_idle()
    res = fx.cli("run", code=None, GLOBUS_AUTOSYNC_CRASH_AT="action-flow-journaled")
    assert res.returncode == -9
    assert runs(fx) == []
    fx.run()
    fx.run()
    [run] = runs(fx)
    assert [a["run_id"] for a in actions(fx)] == [run.run_id]


def test_a_failed_run_is_reported_and_started_again_on_request(fx: Globus) -> None:
    configure(fx)
    fx.emu.next_flow_runs("FAILED")
    write(fx, frames(2))
    fx.send()
    res = fx.run(code=1)
    assert "actions started 0, failed 1" in res.stdout
    [action] = actions(fx)
    assert action["state"] == "failed"
    assert "the analysis step failed" in action["reason"]
    st = fx.status()
    assert st["actions"]["failed"] == 1
    assert st["actions"]["failed_actions"][0]["action"] == action["action"]
    text = fx.cli("status").stdout
    assert f"retry-action {action['action']}" in text
    # it is not started again by itself
    fx.run()
    assert len(runs(fx)) == 1
    # a wrong id, a not failed action: one line, exit 2
    res = fx.cli("retry-action", "999", code=2)
    assert "no action 999" in res.stderr
    res = fx.cli("retry-action", str(action["action"]))
    assert "will start again (attempt 2)" in res.stdout
    fx.run()
    assert len(runs(fx)) == 2
    first, second = runs(fx)
    assert second.label == first.label
    assert set(second.tags) != set(first.tags)  # a new unique tag for the new attempt
    fx.run()
    [action] = actions(fx)
    assert (action["state"], action["attempt"], action["run_id"]) == (
        "succeeded",
        2,
        second.run_id,
    )
    res = fx.cli("retry-action", str(action["action"]), code=2)
    assert "only a failed action is started again" in res.stderr


def test_an_inactive_run_is_said_once_and_confirmed_when_it_resumes(fx: Globus) -> None:
    configure(fx)
    fx.emu.next_flow_runs("INACTIVE")
    write(fx, frames(1))
    fx.send()
    fx.run(code=1)
    fx.run(code=1)
    [run] = runs(fx)
    said = [line for line in fx.env.log_lines() if "is INACTIVE" in line]
    assert len(said) == 1
    assert f"https://app.globus.org/runs/{run.run_id}" in said[0]
    assert fx.status()["actions"]["waiting_for_you"][0]["reason"].startswith(
        f"flow run {run.run_id} is INACTIVE"
    )
    fx.emu.resume_flow_run(run.run_id)
    fx.run()
    assert actions(fx)[0]["state"] == "succeeded"
    assert fx.status()["actions"]["waiting_for_you"] == []


def test_a_dataset_action_waits_until_the_dataset_is_quiet(fx: Globus) -> None:
    configure(fx, on_done="dataset", dataset_quiet="1h")
    write(fx, frames(3))
    fx.send()
    fx.run()
    assert runs(fx) == []  # confirmed, but the dataset is not quiet yet
    assert fx.status()["actions"]["collecting"] == 1
    configure(fx, on_done="dataset", dataset_quiet="0s")  # as if the hour had passed
    fx.run()
    [run] = runs(fx)
    manifest = run.body["autosync"]
    assert (manifest["kind"], manifest["dataset"]) == ("dataset", SCAN)
    assert len(manifest["files"]) == 3
    assert run.label == f"AUTO_{JOB}_dataset_{manifest['id']}"


def test_a_dataset_spread_over_batches_starts_once_its_marker_is_confirmed(fx: Globus) -> None:
    configure(
        fx, on_done="dataset", dataset_quiet="1h", dataset_marker="*.done", max_files_per_task=2
    )
    scan = frames(5)
    other = frames(2, scan="run_Sep2018/other")
    write(fx, scan | other)
    fx.send()
    assert len(fx.tasks_json()) >= 3  # the dataset's files came in several batches
    fx.run()
    assert runs(fx) == []  # no marker yet, and not quiet for an hour
    fx.env.write(f"{SCAN}/scan.done", b"", mtime=LONG_AGO + 10_000)
    fx.send()
    fx.run()
    [run] = runs(fx)  # only the dataset with its marker
    manifest = run.body["autosync"]
    assert manifest["dataset"] == SCAN
    assert {f["path"] for f in manifest["files"]} == set(scan) | {f"{SCAN}/scan.done"}
    assert fx.status()["actions"]["collecting"] == 1  # the other dataset still gathers


def test_a_missing_flow_consent_names_the_login_command(fx: Globus) -> None:
    fx.service = False
    configure(fx)
    fx.seed_login()  # a login from before the flow was configured: no consent to start it
    write(fx, frames(1))
    fx.run(code=None)
    fx.emu.wait_idle()
    res = fx.run(code=3)
    line = res.stderr.strip().splitlines()[-1]
    assert line.endswith(
        f"Globus needs your consent to start flow {FLOW}; run: globus-autosync login"
    ), res.stderr
    assert runs(fx) == []
    res = fx.cli("check", code=3)
    assert f"FAIL  {JOB}: flow: " in res.stdout
    assert "run: globus-autosync login" in res.stdout
    # the files were confirmed all the same, and the action waits for the consent
    assert fx.status()["done"] == 1
    assert actions(fx)[0]["state"] == "pending"


def test_a_service_account_asks_for_the_flow_scope_itself(fx: Globus) -> None:
    configure(fx)
    fx.emu.require_flow_consent(FLOW, DST_COLLECTION)
    write(fx, frames(1))
    fx.send()
    fx.run()
    assert len(runs(fx)) == 1
    assert actions(fx)[0]["state"] == "succeeded"
    assert "asking for the scopes flow" in "\n".join(fx.env.log_lines())
    res = fx.cli("check")
    assert f"ok    {JOB}: flow: flow {FLOW}: the consent to start its runs is granted" in res.stdout


def test_login_asks_for_the_flow_and_its_runs_start_as_that_user(fx: Globus) -> None:
    fx.service = False
    configure(fx)
    res = log_in(fx, fx.emu.authorize)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert f"asking also for the consent to start flow {FLOW}" in res.stdout
    links = login_links(res)
    flow_scope = f"https://auth.globus.org/scopes/{FLOW}/flow_{FLOW.replace('-', '_')}_user"
    run_status = "https://auth.globus.org/scopes/eec9b274-0c81-4334-bdc2-54e90e689b9a/run_status"
    assert flow_scope in links[0]["scope"] and run_status in links[0]["scope"]
    # the collections need data access: the second link asks for it under the flow's scope too
    assert f"{flow_scope}[{TRANSFER_SCOPE}[" in links[-1]["scope"]
    assert "ok    xmas: flow: " in fx.cli("check").stdout
    write(fx, frames(2))
    fx.send()
    [run] = runs(fx)
    assert run.owner == fx.emu.DEFAULT_USER_ID


def test_a_failed_start_is_tried_again_and_never_doubles(fx: Globus) -> None:
    configure(fx)
    write(fx, frames(2))
    fx.run(code=None)
    fx.emu.wait_idle()
    # more 503s than the SDK retries by itself: this run cannot start the flow
    fx.emu.fail_requests(10, 503, path_prefix=f"/flows-api/flows/{FLOW}/run")
    res = fx.run(code=1)
    assert "confirmed 2" in res.stdout
    assert runs(fx) == []
    assert fx.rows("SELECT flow_state, tries FROM actions") == [("starting", 1)]
    fx.emu.clear_faults()
    fx.run()
    fx.run()
    [run] = runs(fx)
    assert actions(fx)[0]["run_id"] == run.run_id
    assert actions(fx)[0]["state"] == "succeeded"


@pytest.mark.usefixtures("clean_logging")
def test_a_manifest_larger_than_a_flow_run_takes_is_split_into_runs(
    fx: Globus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from globus_autosync import cli
    from globus_autosync.globus import flows

    configure(fx)
    files = frames(40)
    write(fx, files)
    for key, value in fx.environ().items():  # the CLI runs in this process: its limit patched
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(flows, "INPUT_LIMIT", 3000)

    def main(*args: str) -> int:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(list(args))
        code = exit_info.value.code
        assert isinstance(code, int)
        return code

    assert main("run") == 0
    fx.emu.wait_idle()
    assert main("run") == 0
    got = runs(fx)
    assert len(got) >= 3
    parts = [r.body["autosync"] for r in got]
    assert all(len(json.dumps(r.body)) <= 3000 for r in got)
    assert sorted(f["path"] for p in parts for f in p["files"]) == sorted(files)  # each once
    n = len(got)
    assert {(p["part"], p["parts"]) for p in parts} == {(k, n) for k in range(1, n + 1)}
    assert len({r.label for r in got}) == len(got)  # each part is an action of its own
    assert main("run") == 0
    assert [a["state"] for a in actions(fx)] == ["succeeded"] * len(got)


def test_a_flow_that_needs_more_consent_is_asked_for_it_by_the_next_login(fx: Globus) -> None:
    fx.service = False
    elsewhere = "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b"  # a collection only the flow touches
    fx.emu.require_flow_consent(FLOW, elsewhere)
    configure(fx)
    assert log_in(fx, fx.emu.authorize).returncode == 0
    write(fx, frames(1))
    fx.run(code=None)
    fx.emu.wait_idle()
    res = fx.run(code=3)
    assert (
        res.stderr.strip()
        .splitlines()[-1]
        .endswith(f"Globus needs your consent to start flow {FLOW}; run: globus-autosync login")
    )
    assert runs(fx) == []
    # that login asks for what the flow asked for, under the flow's scope
    res = log_in(fx, fx.emu.authorize)
    assert res.returncode == 0, res.stderr
    assert any(
        "data_access" in link["scope"] and elsewhere in link["scope"] for link in login_links(res)
    )
    fx.run()
    [run] = runs(fx)
    assert run.owner == fx.emu.DEFAULT_USER_ID


def test_a_flow_and_a_command_both_run_with_the_same_manifest(fx: Globus) -> None:
    out = fx.env.root / "got.json"
    copy = (
        "import os, shutil, sys\nshutil.copy(os.environ['GLOBUS_AUTOSYNC_MANIFEST'], sys.argv[1])"
    )
    configure(fx, command=[sys.executable, "-c", copy, str(out)])
    write(fx, frames(2))
    fx.send()
    deadline = time.monotonic() + 60
    while actions(fx)[0]["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, actions(fx)
        time.sleep(0.2)
        fx.run()
    [action] = actions(fx)
    legs = (action["state"], action["flow_state"], action["command_state"], action["exit_code"])
    assert legs == ("succeeded", "succeeded", "succeeded", 0)
    [run] = runs(fx)
    assert json.loads(out.read_text()) == run.body["autosync"]


def test_a_dataset_quiet_for_dataset_quiet_starts_its_run(fx: Globus) -> None:
    configure(fx, on_done="dataset", dataset_quiet="2s")
    write(fx, frames(2))
    fx.send()  # the cycle that confirms the files finds the dataset changed just now
    assert runs(fx) == []
    time.sleep(2.2)
    fx.run()
    [run] = runs(fx)
    assert run.body["autosync"]["dataset"] == SCAN
    assert "finished (it is quiet)" in "\n".join(fx.env.log_lines())


def test_a_start_whose_answer_is_lost_after_the_run_began_starts_one_run(fx: Globus) -> None:
    configure(fx)
    write(fx, frames(2))
    fx.run(code=None)
    fx.emu.wait_idle()
    # the service starts the run, then its answer is lost (a 502 from a proxy after it acted)
    fx.emu.lose_replies(1, f"/flows-api/flows/{FLOW}/run", status=502)
    res = fx.run(code=1)
    assert "confirmed 2" in res.stdout
    [run] = runs(fx)  # not started a second time by a retry of the POST
    assert fx.rows("SELECT flow_state, run_id FROM actions") == [("starting", None)]
    with fx.env.db() as db:  # the backoff waited out
        db.execute("UPDATE actions SET next_try = 0")
        db.commit()
    fx.run()  # looks for the run by its tag before starting one: finds it
    fx.run()
    assert runs(fx) == [run]
    [action] = actions(fx)
    assert (action["run_id"], action["state"]) == (run.run_id, "succeeded")


def test_a_run_is_found_after_a_crash_whatever_the_list_order_and_length(fx: Globus) -> None:
    configure(fx)
    write(fx, frames(2))
    fx.send()
    fx.run()
    [first] = runs(fx)
    # a long history of earlier runs of the flow, listed oldest first (2 a page)
    for i in range(60):
        old = EmulatedRun(
            f"00000000-0000-4000-8000-{i:012}",
            FLOW,
            f"earlier {i}",
            ["earlier"],
            {},
            first.owner,
            first.started - 10_000 + i,
            "SUCCEEDED",
            0.0,
        )
        fx.emu.flow_runs[old.run_id] = old
    fx.emu.set_list_order("oldest")
    write(fx, frames(2, start=10))
    fx.run(code=None)
    fx.emu.wait_idle()
    res = fx.cli("run", code=None, GLOBUS_AUTOSYNC_CRASH_AT="action-flow-started")
    assert res.returncode == -9
    started = [r for r in runs(fx) if "earlier" not in r.tags and r is not first]
    assert len(started) == 1
    fx.run()  # its run is the newest: on the last of 32 pages
    fx.run()
    again = [r for r in runs(fx) if "earlier" not in r.tags and r is not first]
    assert again == started
    assert [a["run_id"] for a in actions(fx)] == [first.run_id, started[0].run_id]


def test_a_run_flows_has_deleted_ends_its_action_instead_of_asking_forever(fx: Globus) -> None:
    configure(fx)
    write(fx, frames(2))
    fx.emu.set_flow_run_delay(3600)  # still running when it is looked at
    fx.send()
    [run] = runs(fx)
    fx.emu.purge_flow_run(run.run_id)  # deleted by the service
    res = fx.run(code=1)
    assert f"Globus Flows no longer has run {run.run_id}" in res.stderr
    [action] = actions(fx)
    assert action["state"] == "failed"
    assert f"retry-action {action['action']}" in res.stderr

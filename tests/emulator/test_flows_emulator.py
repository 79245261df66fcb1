"""The emulated Flows service, driven by globus-sdk's own FlowsClient and SpecificFlowClient."""

from __future__ import annotations

import globus_sdk
import pytest
from globus_sdk.scopes import FlowsScopes, SpecificFlowScopes

from tests.emulator.fixtures import DST_COLLECTION, EmulatorHarness

FLOW = "3a1f2e4d-5c6b-4a7e-8f9d-0e1f2a3b4c5d"


def clients(h: EmulatorHarness) -> tuple[globus_sdk.SpecificFlowClient, globus_sdk.FlowsClient]:
    app = h.client_app()
    specific = globus_sdk.SpecificFlowClient(FLOW, app=app)
    flows = globus_sdk.FlowsClient(app=app, app_scopes=[FlowsScopes.run_status])
    return specific, flows


def test_a_run_is_started_looked_at_and_listed_with_its_tags(
    globus_emulator: EmulatorHarness,
) -> None:
    specific, flows = clients(globus_emulator)
    started = specific.run_flow({"x": 1}, label="AUTO_a_batch_1", tags=["t1", " two  words "])
    run_id = started["run_id"]
    assert started["status"] == "ACTIVE"
    run = flows.get_run(run_id)
    assert (run["status"], run["label"], run["tags"]) == (
        "SUCCEEDED", "AUTO_a_batch_1", ["t1", "two words"],
    )  # fmt: skip
    assert globus_emulator.emulator.flow_runs[run_id].body == {"x": 1}
    for i in range(4):
        specific.run_flow({"i": i}, tags=[f"n{i}"])
    listed = [r for page in flows.paginated.list_runs(filter_flow_id=FLOW).pages()
              for r in page]  # fmt: skip
    assert len(listed) == 5  # in pages of two: the paginator follows the markers
    assert listed[0]["tags"] == ["n3"] and listed[-1]["run_id"] == run_id
    assert list(flows.list_runs(filter_flow_id="another-flow")) == []


def test_runs_that_fail_or_wait_and_resume(globus_emulator: EmulatorHarness) -> None:
    emu = globus_emulator.emulator
    emu.next_flow_runs("FAILED", "INACTIVE")
    specific, flows = clients(globus_emulator)
    failed = flows.get_run(specific.run_flow({})["run_id"])
    assert failed["status"] == "FAILED" and failed["details"]["description"]
    waiting = flows.get_run(specific.run_flow({})["run_id"])
    assert waiting["status"] == "INACTIVE"
    emu.resume_flow_run(waiting["run_id"])
    assert flows.get_run(waiting["run_id"])["status"] == "SUCCEEDED"


def test_a_flow_may_need_a_consent_and_tokens_must_fit(globus_emulator: EmulatorHarness) -> None:
    emu = globus_emulator.emulator
    emu.require_flow_consent(FLOW, DST_COLLECTION)
    specific, flows = clients(globus_emulator)
    with pytest.raises(globus_sdk.FlowsAPIError) as info:
        specific.run_flow({})
    assert info.value.http_status == 403
    [required] = info.value.info.consent_required.required_scopes or []
    assert required.startswith(str(SpecificFlowScopes(FLOW).user) + "[")
    assert DST_COLLECTION in required
    # a Flows service token does not start runs of a flow
    other = globus_sdk.FlowsClient(app=globus_emulator.client_app(), app_scopes=[
        FlowsScopes.run_status])  # fmt: skip
    with pytest.raises(globus_sdk.FlowsAPIError) as info:
        other.post(f"/flows/{FLOW}/run", data={"body": {}})
    assert info.value.http_status == 403
    with pytest.raises(globus_sdk.FlowsAPIError) as info:
        flows.get_run("no-such-run")
    assert info.value.http_status == 404

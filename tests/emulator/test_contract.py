"""The emulator held to the real payloads: for every Transfer, Flows and Auth call the tool makes,
the emulator's answer (through globus-sdk, over HTTP) has the keys, the value types, the paging
markers and the error document shape of the answer Globus publishes for the same call:
globus-sdk's recorded responses (``globus_sdk.testing``) and, where the SDK has none, globus-cli's
API fixtures, copied into ``recorded/`` with their source named in each file.

Where the emulator differs, the difference is named below with why, key by key; a named
difference that no longer occurs fails too, so the list stays true.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from globus_sdk.testing import get_response_set
from globus_sdk.testing.models import ResponseList

from tests.emulator.fixtures import (
    FLOW,
    EmulatorHarness,
    fast_retry_config,
    flows_clients,
    submit,
    write,
)

RECORDED = Path(__file__).parent / "recorded"

JSONDoc = dict[str, Any]


def from_cli(name: str) -> JSONDoc:
    """A globus-cli fixture copied into recorded/ (its "source" names the file and commit)."""
    doc: JSONDoc = json.loads((RECORDED / name).read_text())["json"]
    return doc


def from_sdk(method: Callable[..., Any], case: str = "default") -> JSONDoc:
    """The response globus_sdk.testing records for ``method`` (the first of a list)."""
    found = get_response_set(method).lookup(case)
    if isinstance(found, ResponseList):
        found = found.responses[0]
    doc = found.json
    assert isinstance(doc, dict)
    return doc


def json_type(value: Any) -> str:
    for name, kind in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, kind):
            return name
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


def differences(emulated: Any, recorded: Any, where: str = "") -> list[str]:
    """Every key present on one side only, and every value whose JSON type differs (null
    against a value counts), nested objects and the first item of lists included."""
    found: list[str] = []
    if isinstance(emulated, Mapping) and isinstance(recorded, Mapping):
        for key in sorted(set(emulated) | set(recorded)):
            path = f"{where}.{key}" if where else key
            if key not in recorded:
                found.append(f"{path}: only in the emulator")
            elif key not in emulated:
                found.append(f"{path}: only in the recording")
            else:
                found.extend(differences(emulated[key], recorded[key], path))
        return found
    kinds = (json_type(emulated), json_type(recorded))
    if kinds[0] != kinds[1]:
        return [f"{where}: {kinds[0]} here, {kinds[1]} recorded"]
    if isinstance(emulated, list) and emulated and recorded:
        return differences(emulated[0], recorded[0], f"{where}[0]")
    return []


def assert_contract(emulated: Any, recorded: Any, allowed: Mapping[str, str] | None = None) -> None:
    """The shapes match, except for the differences ``allowed`` names (difference -> why);
    each of those must still occur."""
    allowed = allowed or {}
    if isinstance(emulated, globus_sdk.GlobusHTTPResponse):
        emulated = emulated.data
    found = differences(emulated, recorded)
    unexplained = [d for d in found if d not in allowed]
    stale = [d for d in allowed if d not in found]
    assert not unexplained, "emulator differs from the recording:\n" + "\n".join(unexplained)
    assert not stale, "named differences that no longer occur:\n" + "\n".join(stale)


def api_error(call: Callable[[], Any]) -> globus_sdk.GlobusAPIError:
    with pytest.raises(globus_sdk.GlobusAPIError) as info:
        call()
    return info.value


# Differences of a task document, named once: the emulated task is a transfer, so keys only a
# transfer document carries are compared with globus-cli's delete task documents as extra.
TASK_KEEPS = {
    "DATA_TYPE: only in the emulator": "the SDK's endpoint_manager_task_list recording gives "
    "each task DATA_TYPE 'task'; its task_list and globus-cli's GET /task recordings do not: "
    "kept, nothing reads it",
    "source_base_path: only in the emulator": "documented task field (task#task_fields); "
    "not in the 2021 recordings",
    "destination_base_path: only in the emulator": "as source_base_path",
    "source_local_user: only in the emulator": "documented task field; not in the recordings",
    "source_local_user_status: only in the emulator": "as source_local_user",
    "destination_local_user: only in the emulator": "as source_local_user",
    "destination_local_user_status: only in the emulator": "as source_local_user",
}
DELETE_TASK_KEEPS = {
    **TASK_KEEPS,
    "key: only in the recording": "an internal paging key the 2021 service leaked; "
    "not a documented task field, nothing reads it",
    "fail_on_quota_errors: only in the emulator": "documented task field, added to the "
    "service after the 2021 recording (the SDK's task_list recording has it)",
    "filter_rules: only in the emulator": "as fail_on_quota_errors",
    "skip_source_errors: only in the emulator": "as fail_on_quota_errors",
    "subtasks_skipped_errors: only in the emulator": "as fail_on_quota_errors",
    "recursive_symlinks: str here, null recorded": "the emulator says 'ignore' for deletes "
    "too, as the SDK's task_list recording says for a transfer",
}


# --------------------------------------------------------------------------- Transfer


def test_submission_id_and_submit_transfer_and_delete(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    submission_keeps = {
        "DATA_TYPE: only in the emulator": "the Transfer docs' submission_id document has "
        "DATA_TYPE 'submission_id'; the SDK's (hand-written, one-key) recording leaves it out",
    }
    recorded_id = from_sdk(globus_sdk.TransferClient.get_submission_id)
    assert_contract(tc.get_submission_id(), recorded_id, submission_keeps)
    tdata = globus_sdk.TransferData(h.src_id, h.dst_id, label="contract")
    tdata.add_item("/f", "/f")
    assert_contract(tc.submit_transfer(tdata), from_sdk(globus_sdk.TransferClient.submit_transfer))
    ddata = globus_sdk.DeleteData(h.dst_id)
    ddata.add_item("/nothing")
    assert_contract(tc.submit_delete(ddata), from_sdk(globus_sdk.TransferClient.submit_delete))
    no_items = {
        "DATA_TYPE": "transfer",
        "source_endpoint": h.src_id,
        "destination_endpoint": h.dst_id,
        "DATA": [],
    }
    err = api_error(lambda: tc.post("/v0.10/transfer", data=no_items))
    recorded = from_sdk(globus_sdk.TransferClient.submit_transfer, "failure")
    assert err.code == recorded["code"]
    assert_contract(err.raw_json or {}, recorded)


def test_get_task_and_task_list(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    task_id = submit(tc, h, [("/f", "/f")], verify_checksum=True)
    h.emulator.wait_idle()
    recorded_list = from_sdk(globus_sdk.TransferClient.task_list)
    listed = tc.task_list(limit=1000)
    # paging markers: length, limit, offset, total
    assert_contract(listed, recorded_list, {f"DATA[0].{k}": why for k, why in TASK_KEEPS.items()})
    # the task_list item is the task document of a finished transfer, as GET /task/<id> is
    assert_contract(tc.get_task(task_id), recorded_list["DATA"][0], TASK_KEEPS)


def test_delete_task_documents_succeeded_queued_failed(
    globus_emulator_factory: Callable[..., EmulatorHarness],
) -> None:
    h = globus_emulator_factory(max_active=0)  # nothing runs: a task stays "Queued"
    tc = h.transfer_client()
    ddata = globus_sdk.DeleteData(h.src_id)
    ddata.add_item("/gone")
    queued = str(tc.submit_delete(ddata)["task_id"])
    assert tc.get_task(queued)["nice_status"] == "Queued"
    assert_contract(tc.get_task(queued), from_cli("task_delete_queued.json"), DELETE_TASK_KEEPS)
    tc.cancel_task(queued)

    h = globus_emulator_factory()
    tc = h.transfer_client()
    write(h.src_dir / "f", b"f")
    ddata = globus_sdk.DeleteData(h.src_id)
    ddata.add_item("/f")
    done = str(tc.submit_delete(ddata)["task_id"])
    h.emulator.fail_next_task("FILE_NOT_FOUND", "file not found")
    ddata = globus_sdk.DeleteData(h.src_id)
    ddata.add_item("/missing")
    failed = str(tc.submit_delete(ddata)["task_id"])
    h.emulator.wait_idle()
    assert_contract(tc.get_task(done), from_cli("task_delete_succeeded.json"), DELETE_TASK_KEEPS)
    failed_doc = tc.get_task(failed)
    assert failed_doc["fatal_error"] == {"code": "FILE_NOT_FOUND", "description": "file not found"}
    assert_contract(failed_doc, from_cli("task_delete_failed.json"), DELETE_TASK_KEEPS)


def test_task_successful_transfers_skipped_errors_event_list(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    h.emulator.marker_page_size = 1  # a next_marker on the first page
    write(h.src_dir / "d" / "a", b"a")
    write(h.src_dir / "d" / "b", b"b")
    tc = h.transfer_client()
    task_id = submit(tc, h, [("/d", "/d")], recursive=True)
    skipping = submit(tc, h, [("/gone", "/gone"), ("/nope", "/nope")], skip_source_errors=True)
    h.emulator.wait_idle()
    assert_contract(
        tc.task_successful_transfers(task_id),
        # the SDK records it for the endpoint_manager variant only: the same document type
        from_sdk(globus_sdk.TransferClient.endpoint_manager_task_successful_transfers),
    )
    why = (
        "globus-cli's skipped_errors fixture has only DATA; the document is of the marker-paged "
        "family whose SDK recording (successful_transfers) carries DATA_TYPE, marker and "
        "next_marker: kept, whether the service sends them here is not established"
    )
    assert_contract(
        tc.task_skipped_errors(skipping),
        from_cli("skipped_errors.json"),
        {f"{k}: only in the emulator": why for k in ("DATA_TYPE", "marker", "next_marker")},
    )
    assert_contract(tc.task_event_list(task_id), from_cli("task_event_list.json"))


def test_cancel_task(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.hold_tasks()
    task_id = submit(tc, h, [("/f", "/f")])
    assert_contract(tc.cancel_task(task_id), from_sdk(globus_sdk.TransferClient.cancel_task))


def test_file_operations_ls_mkdir_stat(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "share" / "f", b"f")
    (h.src_dir / "share" / "godata").mkdir()
    tc = h.transfer_client()
    assert_contract(
        tc.operation_ls(h.src_id, path="/share"),
        from_cli("ls_results.json"),
        {
            "absolute_path: str here, null recorded": "documented as the path with ~ expanded; the "
            "recorded collection left it null, a local directory always has one",
        },
    )
    assert_contract(
        tc.operation_mkdir(h.src_id, "/share/new"),
        from_sdk(globus_sdk.TransferClient.operation_mkdir),
    )
    assert_contract(
        tc.operation_stat(h.src_id, "/share/f"),
        from_sdk(globus_sdk.TransferClient.operation_stat),
    )
    err = api_error(lambda: tc.operation_stat(h.src_id, "/share/nothing"))
    recorded = from_sdk(globus_sdk.TransferClient.operation_stat, "not_found")
    assert (err.http_status, err.code) == (404, recorded["code"])
    assert_contract(err.raw_json or {}, recorded)


def test_get_endpoint(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    tc = h.transfer_client()
    emulated = tc.get_endpoint(h.src_id)
    recorded = from_sdk(globus_sdk.TransferClient.get_endpoint)
    assert_contract(emulated, recorded, ENDPOINT_KEEPS)


# The SDK's get_endpoint recording is a GCSv4-era endpoint; the emulator serves GCSv5 mapped
# collections. The tool reads entity_type (compared) and high_assurance (not in the recording).
_GCS5 = "a GCSv5 collection field of the current endpoint document (transfer/endpoints_and_"
_GCS5 += "collections); absent from the SDK's older GCSv4 recording"
_GCS4 = "a GCSv4 endpoint field of the SDK's recording; the emulated GCSv5 collection leaves "
_GCS4 += "it out (not established whether the service still sends it, as null, there)"
ENDPOINT_KEEPS: dict[str, str] = {
    **{
        f"{k}: only in the emulator": _GCS5
        for k in (
            "authentication_assurance_timeout",
            "canonical_name",
            "contact_email",
            "department",
            "entity_type_description",
            "gcs_manager_url",
            "gcs_version",
            "high_assurance",
            "host_endpoint",
            "https_server",
            "keywords",
            "local_user_info_available",
            "mapped_collection_display_name",
            "mapped_collection_id",
            "owner_id",
            "owner_string",
            "subscription_id",
            "tlsftp_server",
            "user_message",
            "user_message_link",
        )
    },
    **{
        f"{k}: only in the recording": _GCS4
        for k in (
            "expire_time",
            "french_english_bilingual",
            "in_use",
            "mfa_required",
            "myproxy_dn",
            "myproxy_server",
            "oauth_server",
            "s3_owner_activated",
            "s3_url",
        )
    },
    "default_directory: str here, null recorded": "the emulated collection's is '/'",
}


# --------------------------------------------------------------------------- Flows


def test_run_flow_get_run_list_runs(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    specific, flows = flows_clients(h)
    h.emulator.set_flow_run_delay(60)  # ACTIVE, as the recorded run_flow answer
    started = specific.run_flow({"x": 1}, label="contract", tags=["a"])
    assert_contract(started, from_sdk(globus_sdk.SpecificFlowClient.run_flow), RUN_FLOW_KEEPS)
    h.emulator.set_flow_run_delay(0)  # SUCCEEDED, as the recorded get_run and list_runs
    done = specific.run_flow({"x": 2}, label="contract", tags=["a"])
    assert_contract(
        flows.get_run(done["run_id"]), from_sdk(globus_sdk.FlowsClient.get_run), RUN_KEEPS
    )
    listed = flows.list_runs(filter_flow_id=FLOW)
    recorded = from_sdk(globus_sdk.FlowsClient.list_runs)
    assert_contract(listed, recorded, {f"runs[0].{k}": why for k, why in RUN_KEEPS.items()})
    err = api_error(lambda: flows.get_run("7d2ad0b7-0000-4000-8000-000000000000"))
    assert err.http_status == 404
    conflict = from_sdk(globus_sdk.FlowsClient.delete_run, "conflict")
    assert_contract(err.raw_json or {}, conflict)  # {"error": {code, detail}, "debug_id"}


RUN_KEEPS: dict[str, str] = {
    "details.output.HelloResult: only in the recording": "a run's output is its flow's own "
    "(the recorded flow has a HelloResult step and echoes its input; the emulated one neither)",
    "details.output.input: only in the recording": "as details.output.HelloResult",
}
_NEWER = "in the SDK's get_run recording (a newer run document), not in its older run_flow one"
_INPUT = "the run's input is the flow's own (a two-hop transfer there, the tool's batch here)"
RUN_FLOW_KEEPS: dict[str, str] = {
    "action_id: only in the emulator": _NEWER,
    "completion_time: only in the emulator": _NEWER + " (null while ACTIVE)",
    "created_by: only in the emulator": _NEWER,
    "manage_by: only in the emulator": _NEWER,
    "monitor_by: only in the emulator": _NEWER,
    "search: only in the recording": "search-index data of the run; nothing reads it, and the "
    "get_run recording has none",
    "details.details.input.x: only in the emulator": _INPUT,
    **{
        f"details.details.input.{k}: only in the recording": _INPUT
        for k in (
            "destination_endpoint_id",
            "destination_path",
            "source_endpoint_id",
            "source_path",
            "staging_endpoint_id",
            "staging_path",
        )
    },
}


# --------------------------------------------------------------------------- Auth


def test_client_credentials_tokens_and_userinfo(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    auth = globus_sdk.ConfidentialAppAuthClient(
        h.emulator.DEFAULT_CLIENT_ID,
        h.emulator.DEFAULT_CLIENT_SECRET,
        retry_config=fast_retry_config(),
    )
    tokens = auth.oauth2_client_credentials_tokens(requested_scopes=h.emulator.TRANSFER_SCOPE)
    assert_contract(
        tokens.data,
        from_sdk(globus_sdk.ConfidentialAppAuthClient.oauth2_client_credentials_tokens),
        TOKEN_KEEPS,
    )
    auth.close()
    info = globus_sdk.AuthClient(app=h.client_app()).userinfo()
    assert_contract(info, from_cli("userinfo.json"), USERINFO_KEEPS)
    err = api_error(
        lambda: globus_sdk.AuthClient(
            authorizer=globus_sdk.AccessTokenAuthorizer("not-a-token")
        ).userinfo()
    )
    assert err.http_status == 401
    unauthorized = from_sdk(globus_sdk.AuthClient.userinfo, "unauthorized")
    assert_contract(err.raw_json or {}, unauthorized)


TOKEN_KEEPS: dict[str, str] = {}
_CLAIM = "a userinfo claim of the Globus Auth docs (auth/reference, userinfo) that "
_CLAIM += "globus-cli's mock leaves out; not checked against a recording"
USERINFO_KEEPS: dict[str, str] = {
    "email: null here, str recorded": "the emulated identity is a client (a service account), "
    "which has no email; the mock is a person's",
    "identity_set[0].email: null here, str recorded": "as email",
    "identity_provider: only in the emulator": _CLAIM,
    "identity_provider_display_name: only in the emulator": _CLAIM,
    "organization: only in the emulator": _CLAIM,
    "last_authentication: only in the emulator": _CLAIM,
    "identity_set[0].last_authentication: only in the emulator": _CLAIM,
}


# --------------------------------------------------------------------------- the contract itself


def test_the_contract_fails_on_an_emulator_that_drifts(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    (h.src_dir / "share").mkdir()
    tc = h.transfer_client()
    h.emulator.ls_limit_key = True  # today's old shape: "limit" and "offset", not real
    drifted = tc.operation_ls(h.src_id, path="/share")
    keeps = {"absolute_path: str here, null recorded": "as in test_file_operations_ls_mkdir_stat"}
    with pytest.raises(AssertionError, match="limit: only in the emulator"):
        assert_contract(drifted, from_cli("ls_results.json"), keeps)
    with pytest.raises(AssertionError, match="no longer occur"):
        assert_contract({"value": "x"}, {"value": "y"}, {"value: gone": "a stale reason"})
    with pytest.raises(AssertionError, match="next_marker: str here, int recorded"):
        assert_contract({"next_marker": "1"}, {"next_marker": 1})


def test_native_app_code_exchange_refresh_and_a_used_code(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    login = globus_sdk.NativeAppAuthClient(h.emulator.DEFAULT_CLIENT_ID)
    login.oauth2_start_flow(requested_scopes=h.emulator.TRANSFER_SCOPE, refresh_tokens=True)
    code = h.emulator.authorize(login.oauth2_get_authorize_url())
    tokens = login.oauth2_exchange_code_for_tokens(code)
    recorded = from_sdk(globus_sdk.NativeAppAuthClient.oauth2_exchange_code_for_tokens)
    assert_contract(tokens.data, recorded, CODE_TOKEN_KEEPS)
    refresh_token = tokens.by_resource_server["transfer.api.globus.org"]["refresh_token"]
    refreshed = login.oauth2_refresh_token(refresh_token)
    # the SDK records no refresh answer: it is the same token response document
    assert_contract(refreshed.data, recorded, REFRESH_TOKEN_KEEPS)
    err = api_error(lambda: login.oauth2_exchange_code_for_tokens(code))  # a code is good once
    invalid = from_sdk(
        globus_sdk.NativeAppAuthClient.oauth2_exchange_code_for_tokens, "invalid_grant"
    )
    assert err.raw_json is not None and err.raw_json["error"] == invalid["error"]
    assert_contract(err.raw_json, invalid, AUTH_ERROR_KEEPS)
    login.close()


CODE_TOKEN_KEEPS: dict[str, str] = {
    "refresh_token: only in the emulator": "asked for here (refresh_tokens=True, access_type="
    "offline); the recorded exchange did not ask",
}
REFRESH_TOKEN_KEEPS: dict[str, str] = {
    "refresh_token: only in the emulator": "a refresh answer names the refresh token (the SDK's "
    "RefreshTokenAuthorizer reads it back when present)",
    "state: only in the recording": "state echoes an authorize request; a refresh has none",
}
_AUTH_ERR = "Globus Auth's other recorded errors (userinfo's 401 in globus_sdk.testing) carry "
_AUTH_ERR += "error_description and errors; this recording is the bare OAuth form: which one the "
_AUTH_ERR += "token endpoint sends is not established (nor its status: 401 recorded, 400 here as "
_AUTH_ERR += "RFC 6749 section 5.2 says)"
AUTH_ERROR_KEEPS: dict[str, str] = {
    "error_description: only in the emulator": _AUTH_ERR,
    "errors: only in the emulator": _AUTH_ERR,
}

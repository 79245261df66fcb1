"""The emulator driven by the real globus-sdk (and globus-cli) over HTTP."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import globus_sdk
import pytest
from globus_sdk.gare import to_gare
from globus_sdk.token_storage import MemoryTokenStorage, TokenStorageData

from tests.emulator import TRANSFER_SCOPE, TransferEmulator, parse_scopes
from tests.emulator.fixtures import EmulatorHarness, submit, wait_for, write

REPO = Path(__file__).resolve().parents[2]
FIXED_MTIME_NS = 1_600_000_000_123_456_789


# --------------------------------------------------------------------------- transfers


def test_transfer_copies_bytes_and_preserves_mtime(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "run1" / "a.tif", b"A" * 1000, FIXED_MTIME_NS)
    write(h.src_dir / "run1" / "sub" / "b.tif", b"B" * 10, FIXED_MTIME_NS + 5)
    write(h.src_dir / "single.txt", b"single", FIXED_MTIME_NS)
    tc = h.transfer_client()
    tdata = globus_sdk.TransferData(
        h.src_id, h.dst_id, label="first", preserve_timestamp=True, verify_checksum=True
    )
    tdata.add_item("/run1/", "/archive/run1/", recursive=True)
    tdata.add_item("/single.txt", "/archive/single.txt")
    result = tc.submit_transfer(tdata)
    assert result.http_status == 202
    assert result["DATA_TYPE"] == "transfer_result"
    assert result["code"] == "Accepted"
    task_id = result["task_id"]

    h.emulator.wait_idle()
    task = tc.get_task(task_id)
    assert task["DATA_TYPE"] == "task"
    assert task["type"] == "TRANSFER"
    assert task["status"] == "SUCCEEDED"
    assert task["label"] == "first"
    assert task["nice_status"] is None
    assert task["fatal_error"] is None
    assert task["files"] == 3
    assert task["directories"] == 2
    assert task["files_transferred"] == 3
    assert task["bytes_transferred"] == 1016
    assert task["subtasks_total"] == task["subtasks_succeeded"] == 2 + 3 + 2
    assert task["subtasks_pending"] == 0
    assert task["owner_id"] == h.emulator.DEFAULT_CLIENT_ID
    assert task["source_endpoint_id"] == h.src_id
    assert task["destination_endpoint_id"] == h.dst_id
    assert task["preserve_timestamp"] is True
    assert task["verify_checksum"] is True
    assert task["completion_time"] is not None

    copied = h.dst_dir / "archive" / "run1" / "sub" / "b.tif"
    assert copied.read_bytes() == b"B" * 10
    assert copied.stat().st_mtime_ns == FIXED_MTIME_NS + 5
    assert (h.dst_dir / "archive" / "single.txt").stat().st_mtime_ns == FIXED_MTIME_NS
    assert not list(h.dst_dir.rglob("*.part"))

    transferred = {
        (item["source_path"], item["destination_path"])
        for item in tc.paginated.task_successful_transfers(task_id).items()
    }
    assert transferred == {
        ("/run1/a.tif", "/archive/run1/a.tif"),
        ("/run1/sub/b.tif", "/archive/run1/sub/b.tif"),
        ("/single.txt", "/archive/single.txt"),
    }
    emulated = h.emulator.tasks[task_id]
    assert emulated.status == "SUCCEEDED"
    assert emulated.items[0].recursive is True


def test_sync_level_skips_files_already_in_place(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "d" / "same.bin", b"x" * 50, FIXED_MTIME_NS)
    write(h.src_dir / "d" / "changed.bin", b"new content", FIXED_MTIME_NS)
    write(h.dst_dir / "d" / "same.bin", b"x" * 50, FIXED_MTIME_NS)
    write(h.dst_dir / "d" / "changed.bin", b"old content", FIXED_MTIME_NS)
    tc = h.transfer_client()
    task_id = submit(tc, h, [("/d", "/d")], recursive=True, sync_level="checksum")
    h.emulator.wait_idle()
    task = tc.get_task(task_id)
    assert task["status"] == "SUCCEEDED"
    assert task["sync_level"] == 3
    assert (task["files"], task["files_skipped"], task["files_transferred"]) == (2, 1, 1)
    assert (h.dst_dir / "d" / "changed.bin").read_bytes() == b"new content"


def test_duplicate_submission_id_returns_the_same_task(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f.txt", b"data")
    tc = h.transfer_client()
    submission_id = tc.get_submission_id()["value"]
    tdata = globus_sdk.TransferData(h.src_id, h.dst_id, submission_id=submission_id)
    tdata.add_item("/f.txt", "/f.txt")
    first = tc.submit_transfer(tdata)
    tdata = globus_sdk.TransferData(h.src_id, h.dst_id, submission_id=submission_id)
    tdata.add_item("/f.txt", "/other.txt")
    second = tc.submit_transfer(tdata)
    assert first["code"] == "Accepted"
    assert second.http_status == 200
    assert second["code"] == "Duplicate"
    assert second["task_id"] == first["task_id"]
    assert h.emulator.submissions == [submission_id]
    assert list(h.emulator.tasks) == [first["task_id"]]
    # an id the emulator never issued is accepted too
    tdata = globus_sdk.TransferData(h.src_id, h.dst_id, submission_id=str(uuid.uuid4()))
    tdata.add_item("/f.txt", "/third.txt")
    assert tc.submit_transfer(tdata)["code"] == "Accepted"
    h.emulator.wait_idle()
    assert not (h.dst_dir / "other.txt").exists()
    assert (h.dst_dir / "third.txt").read_bytes() == b"data"


def test_no_more_than_three_tasks_of_one_owner_run_at_once(
    globus_emulator_factory: Callable[..., EmulatorHarness],
) -> None:
    h = globus_emulator_factory(task_delay=0.3)
    tc = h.transfer_client()
    task_ids = []
    for index in range(5):
        write(h.src_dir / f"f{index}", b"%d" % index)
        task_ids.append(submit(tc, h, [(f"/f{index}", f"/out/f{index}")], label=f"t{index}"))

    def statuses() -> list[str | None]:
        return [tc.get_task(task_id)["nice_status"] for task_id in task_ids]

    wait_for(lambda: sorted(map(str, statuses())) == ["OK"] * 3 + ["Queued"] * 2)
    assert all(tc.get_task(t)["status"] == "ACTIVE" for t in task_ids)
    h.emulator.wait_idle()
    assert [tc.get_task(t)["status"] for t in task_ids] == ["SUCCEEDED"] * 5
    assert h.emulator.max_concurrent_active == 3
    assert sorted(p.name for p in (h.dst_dir / "out").iterdir()) == [f"f{i}" for i in range(5)]


def test_skip_source_errors_records_skipped_errors(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "present.txt", b"here")
    tc = h.transfer_client()
    task_id = submit(
        tc,
        h,
        [("/present.txt", "/present.txt"), ("/missing.txt", "/missing.txt")],
        skip_source_errors=True,
    )
    h.emulator.wait_idle()
    task = tc.get_task(task_id)
    assert task["status"] == "SUCCEEDED"
    assert task["subtasks_skipped_errors"] == 1
    assert task["files_transferred"] == 1
    skipped = list(tc.paginated.task_skipped_errors(task_id).items())
    assert len(skipped) == 1
    assert skipped[0]["DATA_TYPE"] == "skipped_error"
    assert skipped[0]["error_code"] == "FILE_NOT_FOUND"
    assert skipped[0]["source_path"] == "/missing.txt"
    assert skipped[0]["destination_path"] == "/missing.txt"
    assert skipped[0]["is_directory"] is False


def test_missing_source_retries_until_the_deadline(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    h.emulator.retry_interval = 0.05
    tc = h.transfer_client()
    deadline = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(seconds=1.5)
    task_id = submit(tc, h, [("/nope.txt", "/nope.txt")], deadline=deadline)
    wait_for(lambda: tc.get_task(task_id)["nice_status"] == "FILE_NOT_FOUND")
    task = tc.get_task(task_id)
    assert task["status"] == "ACTIVE"
    assert task["is_ok"] is False
    h.emulator.wait_idle()  # a task backing off from an error does not count as busy
    wait_for(lambda: tc.get_task(task_id)["status"] == "FAILED")
    task = tc.get_task(task_id)
    assert task["fatal_error"] == {"code": "EXPIRED", "description": "deadline expired"}
    assert task["subtasks_expired"] == 1
    assert task["nice_status"] is None
    assert task["faults"] >= 1
    events = list(tc.paginated.task_event_list(task_id).items())
    assert events[0]["code"] == "EXPIRED"
    assert any(e["code"] == "FILE_NOT_FOUND" and e["is_error"] for e in events)


def test_deadline_in_the_past_fails_the_task(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    task_id = submit(tc, h, [("/f", "/f")], deadline="2020-01-01T00:00:00+00:00")
    h.emulator.wait_idle()
    task = tc.get_task(task_id)
    assert task["status"] == "FAILED"
    assert task["fatal_error"]["code"] == "EXPIRED"
    assert task["subtasks_expired"] == 1
    assert not (h.dst_dir / "f").exists()


# --------------------------------------------------------------------------- faults


def test_transient_errors_are_survived_by_sdk_retries(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    tc = h.transfer_client()
    h.emulator.fail_requests(3, 503)
    assert tc.get_submission_id()["DATA_TYPE"] == "submission_id"
    statuses = [s for (_m, p, s) in h.emulator.requests if p == "/v0.10/submission_id"]
    assert statuses == [503, 503, 503, 200]

    h.emulator.fail_requests(10, 500)
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        h.transfer_client(max_retries=1).get_submission_id()
    assert info.value.http_status == 500
    assert info.value.code == "InternalError"
    assert info.value.request_id


def test_rate_limit_with_retry_after_is_honoured(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    tc = h.transfer_client()
    tc.get_submission_id()  # get a token first
    h.emulator.fail_requests(1, 429, retry_after=1)
    started = time.monotonic()
    tc.get_submission_id()
    assert time.monotonic() - started >= 0.95
    assert [s for (_m, _p, s) in h.emulator.requests[-2:]] == [429, 200]


def test_dropped_connections_are_retried(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    tc = h.transfer_client()
    h.emulator.drop_connections(2)
    assert tc.get_endpoint(h.src_id)["id"] == h.src_id
    assert h.emulator.dropped == [("GET", f"/v0.10/endpoint/{h.src_id}")] * 2


def test_delayed_reply_acts_at_once_and_answers_late(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    tc.get_submission_id()  # a token first: only the submission is held
    h.emulator.delay_replies(1, 30, "/v0.10/transfer", "POST")
    answers: list[str] = []
    caller = threading.Thread(target=lambda: answers.append(submit(tc, h, [("/f", "/f")])))
    caller.start()
    # the task exists, its id not yet told (the reply is held once it is made: wait for both,
    # the test reads them without the emulator's lock)
    wait_for(lambda: len(h.emulator.tasks) == 1 and bool(h.emulator.delayed))
    assert answers == []
    assert h.emulator.delayed == [("POST", "/v0.10/transfer", 202)]
    h.emulator.release_replies()
    caller.join(10)
    assert answers == list(h.emulator.tasks)
    assert tc.get_submission_id()["DATA_TYPE"] == "submission_id"  # later requests answer at once
    h.emulator.fail_requests(5, 503, "/v0.10/endpoint")
    h.emulator.clear_faults()
    assert tc.get_endpoint(h.src_id)["id"] == h.src_id


def test_held_tasks_wait_until_let_go(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.hold_tasks()
    assert h.emulator.tasks_held
    task_id = submit(tc, h, [("/f", "/f")])
    with pytest.raises(TimeoutError):
        h.emulator.wait_idle(timeout=0.3)
    assert tc.get_task(task_id)["status"] == "ACTIVE"
    assert not (h.dst_dir / "f").exists()
    h.emulator.hold_tasks(False)
    h.emulator.wait_idle()
    assert tc.get_task(task_id)["status"] == "SUCCEEDED"
    assert (h.dst_dir / "f").read_bytes() == b"f"


def test_consent_required_is_parsed_by_the_sdk(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    h.emulator.require_consent(h.dst_id)
    tc = h.transfer_client()
    assert tc.get_endpoint(h.dst_id)["entity_type"] == "GCSv5_mapped_collection"
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.operation_ls(h.dst_id, path="/")
    err = info.value
    assert err.http_status == 403
    assert err.code == "ConsentRequired"
    assert err.info.consent_required
    expected = f"{TRANSFER_SCOPE}[*https://auth.globus.org/scopes/{h.dst_id}/data_access]"
    assert err.info.consent_required.required_scopes == [expected]
    gare = to_gare(err)
    assert gare is not None
    assert gare.authorization_parameters.required_scopes == [expected]
    write(h.src_dir / "f", b"f")
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        submit(tc, h, [("/f", "/f")])
    assert info.value.code == "ConsentRequired"

    # a client asking for the dependent data_access scope is let through
    consented = h.transfer_client().add_app_data_access_scope(h.dst_id)
    assert consented.operation_ls(h.dst_id, path="/")["DATA_TYPE"] == "file_list"
    submit(consented, h, [("/f", "/f")])
    h.emulator.wait_idle()
    assert (h.dst_dir / "f").exists()


def test_expired_tokens_answer_401(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    tokens = h.emulator.issue_token()
    assert tokens["resource_server"] == "transfer.api.globus.org"
    raw = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(tokens["access_token"])
    )
    assert raw.get_endpoint(h.src_id)["id"] == h.src_id
    h.emulator.expire_tokens()
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        raw.get_endpoint(h.src_id)
    assert info.value.http_status == 401
    assert info.value.code == "AuthenticationFailed"
    raw.close()

    unauthenticated = globus_sdk.TransferClient()
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        unauthenticated.get_submission_id()
    assert info.value.http_status == 401
    unauthenticated.close()

    # a ClientApp gets a new token by itself after a 401
    tc = h.transfer_client()
    tc.get_submission_id()
    h.emulator.expire_tokens()
    tc.get_submission_id()
    assert [s for (_m, _p, s) in h.emulator.requests[-3:]] == [401, 200, 200]


def test_refresh_tokens_and_revocation(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    tokens = h.emulator.issue_token(identity="alice@example.org")
    assert tokens["identity_id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "alice@example.org"))
    login = globus_sdk.NativeAppAuthClient(str(uuid.uuid4()))
    authorizer = globus_sdk.RefreshTokenAuthorizer(
        tokens["refresh_token"], login, access_token="not-a-valid-token", expires_at=1
    )
    tc = globus_sdk.TransferClient(authorizer=authorizer)
    assert tc.get_endpoint(h.src_id)["id"] == h.src_id
    assert authorizer.access_token != "not-a-valid-token"

    h.emulator.expire_tokens()
    with pytest.raises(globus_sdk.AuthAPIError) as info:
        login.oauth2_refresh_token(tokens["refresh_token"])
    assert info.value.http_status == 400
    assert info.value.code == "invalid_grant" or "invalid_grant" in info.value.text
    tc.close()
    login.close()


def test_the_native_app_code_grant_with_pkce_and_a_signed_id_token(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    client_id = str(uuid.uuid4())
    login = globus_sdk.NativeAppAuthClient(client_id)
    login.oauth2_start_flow(requested_scopes=f"openid profile {TRANSFER_SCOPE}")
    url = login.oauth2_get_authorize_url()
    with pytest.raises(ValueError, match="not an authorize URL"):
        h.emulator.authorize("http://127.0.0.1/elsewhere")

    code = h.emulator.authorize(url, identity="alice@example.org")
    other = globus_sdk.NativeAppAuthClient(client_id)  # a verifier of its own: not the flow's
    other.oauth2_start_flow(requested_scopes=TRANSFER_SCOPE)
    with pytest.raises(globus_sdk.AuthAPIError, match="code_verifier does not match"):
        other.oauth2_exchange_code_for_tokens(code)

    code = h.emulator.authorize(url, identity="alice@example.org")
    tokens = login.oauth2_exchange_code_for_tokens(code)
    alice = str(uuid.uuid5(uuid.NAMESPACE_URL, "alice@example.org"))
    claims = tokens.decode_id_token()  # checked against the JWK of the OpenID configuration
    assert (claims["sub"], claims["aud"]) == (alice, client_id)
    assert claims["preferred_username"] == "alice@example.org"
    assert set(tokens.by_resource_server) == {"auth.globus.org", "transfer.api.globus.org"}
    transfer = tokens.by_resource_server["transfer.api.globus.org"]
    assert transfer["refresh_token"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(transfer["access_token"])
    )
    assert tc.get_endpoint(h.src_id)["id"] == h.src_id
    with pytest.raises(globus_sdk.AuthAPIError, match="invalid or used"):
        login.oauth2_exchange_code_for_tokens(code)  # a code is good once
    tc.close()
    other.close()
    login.close()


def test_user_app_with_a_preseeded_login(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    tokens = h.emulator.issue_token(identity=TransferEmulator.DEFAULT_USER_ID)
    storage = MemoryTokenStorage()
    storage.store_token_data_by_resource_server(
        {
            "transfer.api.globus.org": TokenStorageData(
                resource_server="transfer.api.globus.org",
                identity_id=tokens["identity_id"],
                scope=tokens["scope"],
                access_token=tokens["access_token"],
                refresh_token=tokens["refresh_token"],
                expires_at_seconds=int(time.time()) - 10,  # forces a refresh
                token_type="Bearer",
            )
        }
    )
    app = globus_sdk.UserApp(
        "emulator-user-app",
        client_id=str(uuid.uuid4()),
        config=globus_sdk.GlobusAppConfig(token_storage=storage, request_refresh_tokens=True),
    )
    tc = globus_sdk.TransferClient(app=app)
    write(h.src_dir / "u.txt", b"user")
    task_id = submit(tc, h, [("/u.txt", "/u.txt")])
    h.emulator.wait_idle()
    task = tc.get_task(task_id)
    assert task["owner_id"] == TransferEmulator.DEFAULT_USER_ID
    assert task["status"] == "SUCCEEDED"
    assert ("POST", "/auth/v2/oauth2/token", 200) in h.emulator.requests
    tc.close()
    app.close()


def test_auth_endpoints(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    emu = h.emulator
    confidential = globus_sdk.ConfidentialAppAuthClient(
        emu.DEFAULT_CLIENT_ID, emu.DEFAULT_CLIENT_SECRET
    )
    response = confidential.oauth2_client_credentials_tokens(
        requested_scopes=f"openid {TRANSFER_SCOPE}"
    )
    assert set(response.by_resource_server) == {"auth.globus.org", "transfer.api.globus.org"}
    transfer_token = response.by_resource_server["transfer.api.globus.org"]
    assert transfer_token["scope"] == TRANSFER_SCOPE
    assert transfer_token["token_type"] == "Bearer"

    info = confidential.oauth2_token_introspect(transfer_token["access_token"])
    assert info["active"] is True
    assert info["sub"] == emu.DEFAULT_CLIENT_ID
    assert info["scope"] == TRANSFER_SCOPE

    user = emu.issue_token(f"openid email profile {TRANSFER_SCOPE}", username="bob@example.org")
    assert user["resource_server"] == "auth.globus.org"
    auth = globus_sdk.AuthClient(authorizer=globus_sdk.AccessTokenAuthorizer(user["access_token"]))
    userinfo = auth.userinfo()
    assert userinfo["sub"] == emu.DEFAULT_USER_ID
    assert userinfo["preferred_username"] == "bob@example.org"
    identities = auth.get_identities(ids=[emu.DEFAULT_USER_ID])
    assert identities["identities"][0]["username"] == "bob@example.org"

    confidential.oauth2_revoke_token(transfer_token["access_token"])
    assert confidential.oauth2_token_introspect(transfer_token["access_token"])["active"] is False

    wrong = globus_sdk.ConfidentialAppAuthClient(emu.DEFAULT_CLIENT_ID, "wrong secret")
    with pytest.raises(globus_sdk.AuthAPIError) as err:
        wrong.oauth2_client_credentials_tokens(requested_scopes=TRANSFER_SCOPE)
    assert err.value.http_status == 401
    assert "invalid_client" in err.value.text
    for client in (confidential, auth, wrong):
        client.close()


# --------------------------------------------------------------------------- operations


def test_mkdir_ls_stat(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    tc = h.transfer_client()
    created = tc.operation_mkdir(h.dst_id, "/new")
    assert created["code"] == "DirectoryCreated"
    assert (h.dst_dir / "new").is_dir()
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.operation_mkdir(h.dst_id, "/new")
    assert info.value.http_status == 502
    assert info.value.code == "ExternalError.MkdirFailed.Exists"
    mkdir_statuses = [
        s for (m, p, s) in h.emulator.requests if m == "POST" and p.endswith("/mkdir")
    ]
    assert mkdir_statuses == [202, 502]  # ExternalErrors are not retried by the SDK
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.operation_mkdir(h.dst_id, "/absent/child")
    assert info.value.http_status == 404

    write(h.dst_dir / "new" / "file.dat", b"12345", FIXED_MTIME_NS)
    listing = tc.operation_ls(h.dst_id, path="/new/")
    assert listing["path"] == "/new/"
    [entry] = listing["DATA"]
    assert (entry["name"], entry["type"], entry["size"]) == ("file.dat", "file", 5)
    assert entry["last_modified"] == "2020-09-13 12:26:40+00:00"
    stat = tc.operation_stat(h.dst_id, "/new/file.dat")
    assert (stat["name"], stat["type"], stat["size"]) == ("file.dat", "file", 5)
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.operation_stat(h.dst_id, "/new/missing")
    assert info.value.http_status == 404
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.operation_ls(h.dst_id, path="/missing/")
    assert (info.value.http_status, info.value.code) == (404, "ClientError.NotFound")
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.operation_ls(h.dst_id, path="/new/file.dat")
    assert info.value.code == "ExternalError.DirListingFailed.NotDirectory"
    assert tc.operation_rename(h.dst_id, "/new/file.dat", "/new/renamed.dat")["code"] == (
        "FileRenamed"
    )
    assert [e["name"] for e in tc.operation_ls(h.dst_id, path="/~/new")] == ["renamed.dat"]


def test_unknown_collection(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    tc = h.transfer_client()
    unknown = str(uuid.uuid4())
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.get_endpoint(unknown)
    assert (info.value.http_status, info.value.code) == (404, "EndpointNotFound")
    tdata = globus_sdk.TransferData(h.src_id, unknown)
    tdata.add_item("/a", "/a")
    with pytest.raises(globus_sdk.TransferAPIError) as info:
        tc.submit_transfer(tdata)
    assert (info.value.http_status, info.value.code) == (404, "EndpointNotFound")
    assert h.emulator.tasks == {}


def test_delete_task(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.dst_dir / "probe" / "inner" / "x", b"x")
    tc = h.transfer_client()
    ddata = globus_sdk.DeleteData(h.dst_id, recursive=True, label="cleanup")
    ddata.add_item("/probe")
    result = tc.submit_delete(ddata)
    assert result["DATA_TYPE"] == "delete_result"
    h.emulator.wait_idle()
    task = tc.get_task(result["task_id"])
    assert (task["type"], task["status"]) == ("DELETE", "SUCCEEDED")
    assert not (h.dst_dir / "probe").exists()


# --------------------------------------------------------------------------- task control


def test_cancel(globus_emulator_factory: Callable[..., EmulatorHarness]) -> None:
    h = globus_emulator_factory(task_delay=30)
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    task_id = submit(tc, h, [("/f", "/f")])
    canceled = tc.cancel_task(task_id)
    assert canceled["code"] == "Canceled"
    task = tc.get_task(task_id)
    assert task["status"] == "FAILED"
    assert task["fatal_error"] == {"code": "CANCELED", "description": "canceled"}
    assert task["subtasks_canceled"] == 1
    assert tc.cancel_task(task_id)["code"] == "TaskComplete"
    h.emulator.wait_idle()
    assert not (h.dst_dir / "f").exists()


def test_stuck_and_failed_tasks(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    write(h.src_dir / "f", b"f")
    tc = h.transfer_client()
    h.emulator.stick_next_task("PERMISSION_DENIED")
    stuck = submit(tc, h, [("/f", "/stuck")])
    h.emulator.fail_next_task("ENDPOINT_ERROR", "the endpoint is broken")
    failed = submit(tc, h, [("/f", "/failed")])
    fine = submit(tc, h, [("/f", "/fine")])
    h.emulator.wait_idle()
    stuck_doc = tc.get_task(stuck)
    assert (stuck_doc["status"], stuck_doc["nice_status"]) == ("ACTIVE", "PERMISSION_DENIED")
    assert stuck_doc["is_ok"] is False
    failed_doc = tc.get_task(failed)
    assert failed_doc["status"] == "FAILED"
    assert failed_doc["nice_status"] is None
    assert failed_doc["fatal_error"] == {
        "code": "ENDPOINT_ERROR",
        "description": "the endpoint is broken",
    }
    assert tc.get_task(fine)["status"] == "SUCCEEDED"
    assert sorted(p.name for p in h.dst_dir.iterdir()) == ["fine"]
    tc.cancel_task(stuck)
    assert tc.get_task(stuck)["status"] == "FAILED"


def test_a_globus_connect_personal_collection_down_holds_its_tasks(
    globus_emulator: EmulatorHarness,
) -> None:
    h = globus_emulator
    tc = h.transfer_client()
    (h.src_dir / "f").write_bytes(b"data")
    h.emulator.set_gcp(h.src_id, connected=False)
    doc = tc.get_endpoint(h.src_id)
    assert (doc["is_globus_connect"], doc["gcp_connected"], doc["gcp_paused"]) == (
        True, False, False,
    )  # fmt: skip
    task = submit(tc, h, [("/f", "/f")])
    h.emulator.wait_idle()  # a task waiting for its collection counts as stuck
    got = tc.get_task(task)
    assert (got["status"], got["nice_status"], got["is_ok"]) == (
        "ACTIVE",
        "GC_NOT_CONNECTED",
        False,
    )
    assert not (h.dst_dir / "f").exists()
    h.emulator.set_gcp(h.src_id, connected=True, paused=True)
    deadline = time.monotonic() + 10
    while tc.get_task(task)["nice_status"] != "GC_PAUSED" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tc.get_task(task)["nice_status"] == "GC_PAUSED"
    h.emulator.set_gcp(h.src_id, connected=True)
    h.emulator.wait_idle()
    assert tc.get_task(task)["status"] == "SUCCEEDED"
    assert (h.dst_dir / "f").read_bytes() == b"data"


def test_paging_with_the_sdk_paginators(globus_emulator: EmulatorHarness) -> None:
    h = globus_emulator
    h.emulator.page_limit_cap = 2
    h.emulator.marker_page_size = 2
    tc = h.transfer_client()
    for index in range(5):
        write(h.src_dir / "many" / f"f{index}", b"x")
    task_ids = [
        submit(tc, h, [("/many", f"/copy{i}")], recursive=True, label=f"batch-{i}")
        for i in range(3)
    ]
    write(h.src_dir / "x", b"x")
    skipper = submit(
        tc,
        h,
        [("/x", "/x"), ("/gone1", "/gone1"), ("/gone2", "/gone2"), ("/gone3", "/gone3")],
        skip_source_errors=True,
        label="other",
    )
    h.emulator.wait_idle()

    all_tasks = list(tc.paginated.task_list().items())
    assert len(all_tasks) == 4
    assert [t["task_id"] for t in all_tasks][:3] == [skipper, *reversed(task_ids)][:3]
    assert len([p for p in h.emulator.requests if p[1] == "/v0.10/task_list"]) == 2
    batch = list(tc.paginated.task_list(filter="label:batch-*/status:SUCCEEDED").items())
    assert sorted(t["task_id"] for t in batch) == sorted(task_ids)

    pages = list(tc.paginated.task_successful_transfers(task_ids[0]).pages())
    assert [len(p["DATA"]) for p in pages] == [2, 2, 1]
    assert {item["destination_path"] for page in pages for item in page} == {
        f"/copy0/f{i}" for i in range(5)
    }
    skipped = list(tc.paginated.task_skipped_errors(skipper).items())
    assert sorted(s["source_path"] for s in skipped) == ["/gone1", "/gone2", "/gone3"]
    events = list(tc.paginated.task_event_list(task_ids[0]).items())
    assert [e["code"] for e in events] == ["SUCCEEDED", "STARTED"]


def test_scope_parser() -> None:
    [root] = parse_scopes(f"{TRANSFER_SCOPE}[*https://auth.globus.org/scopes/a/data_access b[c]]")
    assert root.name == TRANSFER_SCOPE
    assert [d.name for d in root.descendants()] == [
        "https://auth.globus.org/scopes/a/data_access",
        "b",
        "c",
    ]
    assert root.dependencies[0].optional
    assert str(root) == f"{TRANSFER_SCOPE}[*https://auth.globus.org/scopes/a/data_access b[c]]"
    assert [n.name for n in parse_scopes(" openid  email ")] == ["openid", "email"]


# --------------------------------------------------------------------------- globus-cli


def _globus_cli() -> str:
    configured = os.environ.get("GLOBUS_AUTOSYNC_TEST_GLOBUS_CLI")
    candidate = configured or str(REPO / ".venv-cli" / "bin" / "globus")
    if Path(candidate).is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(candidate) if configured else None
    if found:
        return found
    message = (
        f"globus-cli not found at {candidate}; install it with "
        "`python3 -m venv .venv-cli && .venv-cli/bin/pip install globus-cli==3.44.0`"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def test_globus_cli_transfer_and_task_show(
    globus_emulator: EmulatorHarness, tmp_path: Path
) -> None:
    globus = _globus_cli()
    h = globus_emulator
    write(h.src_dir / "cli" / "data.bin", b"from the cli" * 100, FIXED_MTIME_NS)
    home = tmp_path / "cli-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLOBUS_")}
    env.update(h.emulator.env())
    env.update(
        HOME=str(home),
        GLOBUS_CLI_CLIENT_ID=h.emulator.DEFAULT_CLIENT_ID,
        GLOBUS_CLI_CLIENT_SECRET=h.emulator.DEFAULT_CLIENT_SECRET,
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [globus, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"globus {' '.join(args)} failed:\n{done.stderr}"
        return done

    submitted = run(
        "transfer",
        f"{h.src_id}:/cli/data.bin",
        f"{h.dst_id}:/landing/data.bin",
        "--preserve-timestamp",
        "--label",
        "from-globus-cli",
        "--format",
        "json",
    )
    result = json.loads(submitted.stdout)
    assert result["code"] == "Accepted"
    task_id = result["task_id"]
    h.emulator.wait_idle()

    shown = run("task", "show", task_id)
    assert "SUCCEEDED" in shown.stdout
    assert "from-globus-cli" in shown.stdout
    assert task_id in shown.stdout
    shown_json = json.loads(run("task", "show", task_id, "--format", "json").stdout)
    assert shown_json["status"] == "SUCCEEDED"
    assert shown_json["bytes_transferred"] == 1200
    landed = h.dst_dir / "landing" / "data.bin"
    assert landed.read_bytes() == b"from the cli" * 100
    assert landed.stat().st_mtime_ns == FIXED_MTIME_NS
    assert h.emulator.tasks[task_id].owner == h.emulator.DEFAULT_CLIENT_ID

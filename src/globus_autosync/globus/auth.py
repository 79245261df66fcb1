"""Globus credentials: a user's login (native app, refresh tokens) or a service account.

Tokens live in ``<state dir>/tokens.db`` (mode 0600) through the SDK's SQLite token storage;
they are never printed or logged. With ``GLOBUS_AUTOSYNC_CLIENT_ID`` and
``GLOBUS_AUTOSYNC_CLIENT_SECRET`` set, a ClientApp (client credentials, a service account) is used
instead of a user's login.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import globus_sdk
from globus_sdk.scopes import (
    AuthScopes,
    FlowsScopes,
    GCSCollectionScopes,
    Scope,
    SpecificFlowScopes,
    TransferScopes,
)
from globus_sdk.token_storage import SQLiteTokenStorage, TokenValidationError

from globus_autosync.config import Config
from globus_autosync.errors import AuthError, ConfigError
from globus_autosync.store import private

log = logging.getLogger(__name__)

APP_NAME = "globus-autosync"
TOKEN_FILE = "tokens.db"
ENV_ID = "GLOBUS_AUTOSYNC_CLIENT_ID"
ENV_SECRET = "GLOBUS_AUTOSYNC_CLIENT_SECRET"


def client_credentials() -> tuple[str, str] | None:
    """The service account from the environment, if one is set (both variables, or neither)."""
    cid, secret = os.environ.get(ENV_ID), os.environ.get(ENV_SECRET)
    if cid and secret:
        return cid, secret
    if cid or secret:
        missing = ENV_SECRET if cid else ENV_ID
        raise ConfigError(
            f"{ENV_ID} and {ENV_SECRET} go together; {missing} is not set "
            "(set both for a service account, or neither to use 'globus-autosync login')"
        )
    return None


def transfer_scope(collections: Iterable[str] = ()) -> Scope:
    """Transfer's scope, with the data_access consent of each collection that needs one."""
    deps = [GCSCollectionScopes(c).data_access for c in sorted(set(collections))]
    return TransferScopes.all.with_dependencies(deps) if deps else TransferScopes.all


def flow_scope(flow_id: str, collections: Iterable[str] = ()) -> Scope:
    """The scope that lets the tool start a flow: ``flow_<id with _>_user`` on the flow's own
    resource server; with the data_access consents the flow needs through Transfer."""
    scope = SpecificFlowScopes(flow_id).user
    deps = [GCSCollectionScopes(c).data_access for c in sorted(set(collections))]
    if deps:
        scope = scope.with_dependency(TransferScopes.all.with_dependencies(deps))
    return scope


FLOW_NEEDS = "flow-consents.json"  # what a flow's ConsentRequired answer asked for, for `login`


def flow_needs(state_dir: Path) -> dict[str, list[str]]:
    """The scopes each flow asked for when a run could not start (noted by ``note_flow_needs``)."""
    try:
        doc = json.loads((state_dir / FLOW_NEEDS).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {k: [s for s in v if isinstance(s, str)] for k, v in doc.items() if isinstance(v, list)}


def note_flow_needs(state_dir: Path, flow_id: str, scopes: Iterable[str]) -> None:
    """Keep the scopes a flow asked for (those of its own scope), so that `login` asks for them."""
    own = str(flow_scope(flow_id))
    mine = [s for s in scopes if s == own or s.startswith(own + "[")]
    if not mine:
        return
    needs = flow_needs(state_dir) | {flow_id: mine}
    tmp = state_dir / (FLOW_NEEDS + ".tmp")
    try:
        private.write_text(tmp, json.dumps(needs))
        os.replace(tmp, state_dir / FLOW_NEEDS)
    except OSError as err:
        log.warning("cannot note the consent flow %s needs in %s: %s", flow_id, tmp, err.strerror)


def flow_scopes(
    flows: Iterable[str], collections: Iterable[str] = (), needs: dict[str, list[str]] | None = None
) -> dict[str, list[Scope]]:
    """Scope requirements for the configured flows: each flow's own scope (with what the flow
    asked for when a run could not start, ``needs``), and the Flows service's ``run_status``
    (to look at and list runs)."""
    wanted = sorted(set(flows))
    if not wanted:
        return {}
    needs = needs or {}
    out: dict[str, list[Scope]] = {
        f: [Scope.parse(s) for s in needs[f]] if needs.get(f) else [flow_scope(f, collections)]
        for f in wanted
    }
    out[FlowsScopes.resource_server] = [FlowsScopes.run_status]
    return out


def token_storage(state_dir: Path, namespace: str) -> SQLiteTokenStorage:
    private.private_dir(state_dir)
    path = state_dir / TOKEN_FILE
    # the SDK makes its tables only in a file it creates: made here, it is chmod'ed after (the
    # directory, 0700, lets no one else reach it meanwhile)
    storage = SQLiteTokenStorage(path, namespace=namespace)
    os.chmod(path, 0o600)
    return storage


def make_app(
    config: Config,
    state_dir: Path,
    *,
    interactive: bool = False,
    no_browser: bool = False,
    consents: Iterable[str] = (),
    flows: Iterable[str] = (),
) -> globus_sdk.GlobusApp:
    """The GlobusApp for this install. Not interactive: a missing login raises instead of
    starting a browser flow (a cron job has no one to answer it). ``flows``: also ask for
    what starting these flows needs (the flow scopes get the ``consents`` as dependencies)."""
    consents = list(consents)
    scopes = {TransferScopes.resource_server: [transfer_scope(consents)]}
    flows = list(flows)
    if flows:
        scopes.update(flow_scopes(flows, consents, flow_needs(state_dir)))
    creds = client_credentials()
    if creds is not None:
        cid, secret = creds
        return globus_sdk.ClientApp(
            APP_NAME,
            client_id=cid,
            client_secret=secret,
            scope_requirements=scopes,
            config=globus_sdk.GlobusAppConfig(token_storage=token_storage(state_dir, f"c-{cid}")),
        )
    user_cid = config.globus.client_id
    if not user_cid:
        raise ConfigError(
            f"{config.path}: [globus], key 'client_id': needed for a Globus job; register a "
            f"native app (docs/globus.md) or set {ENV_ID} and {ENV_SECRET} for a service account"
        )
    # a person's login also grants what `whoami` asks Auth for (an AuthClient requires these)
    scopes[AuthScopes.resource_server] = [AuthScopes.openid, AuthScopes.profile, AuthScopes.email]
    app_config = globus_sdk.GlobusAppConfig(
        token_storage=token_storage(state_dir, f"u-{user_cid}"),
        request_refresh_tokens=True,
        login_flow_manager="command-line" if no_browser else "local-server",
        token_validation_error_handler=None if not interactive else _login_again,
    )
    return globus_sdk.UserApp(
        APP_NAME, client_id=user_cid, scope_requirements=scopes, config=app_config
    )


def _login_again(app: globus_sdk.GlobusApp, error: TokenValidationError) -> None:
    app.login(force=True)


NOT_LOGGED_IN = "not logged in to Globus (or the login expired); run: globus-autosync login"


def is_service_account() -> bool:
    return client_credentials() is not None


def login_hint() -> str:
    if is_service_account():
        return f"the service account's credentials were refused; check {ENV_ID} and {ENV_SECRET}"
    return NOT_LOGGED_IN


def require_login(app: globus_sdk.GlobusApp) -> None:
    """Fail with one line when a user has never logged in (a service account logs in itself)."""
    if is_service_account():
        return
    try:
        if app.login_required():
            raise AuthError(NOT_LOGGED_IN)
    except globus_sdk.GlobusError as err:
        raise AuthError(f"{NOT_LOGGED_IN} ({type(err).__name__})") from None

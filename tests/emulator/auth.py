"""Emulation of the Globus Auth endpoints the SDK uses (token grants, revoke, introspect...).

Paths are relative to the Auth base URL (the emulator serves them under ``/auth/``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from ._common import HTTPError, JSONDict, Reply, Request, iso_time, new_request_id

AUTH_RS = "auth.globus.org"
TRANSFER_RS = "transfer.api.globus.org"
TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
DATA_ACCESS_SCOPE = "https://auth.globus.org/scopes/{}/data_access"
FLOWS_RS = "flows.globus.org"
FLOWS_CLIENT_ID = "eec9b274-0c81-4334-bdc2-54e90e689b9a"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})

DEFAULT_USER_ID = "6b3a4c5e-2f1d-4e7a-9c8b-0d1e2f3a4b5c"
DEFAULT_USERNAME = "researcher@example.org"
DEFAULT_TOKEN_LIFETIME = 172800
ISSUER = "https://auth.globus.org"


# --------------------------------------------------------------------------- scopes


@dataclass(frozen=True)
class ScopeNode:
    """A parsed scope: ``name`` with optional marker and dependent scopes."""

    name: str
    optional: bool = False
    dependencies: tuple[ScopeNode, ...] = ()

    def __str__(self) -> str:
        text = ("*" if self.optional else "") + self.name
        if self.dependencies:
            text += "[" + " ".join(str(dep) for dep in self.dependencies) + "]"
        return text

    def descendants(self) -> Iterator[ScopeNode]:
        for dep in self.dependencies:
            yield dep
            yield from dep.descendants()


class ScopeSyntaxError(ValueError):
    pass


def parse_scopes(text: str) -> list[ScopeNode]:
    """Parse a space separated scope string with ``[...]`` dependencies."""
    nodes, pos = _parse_scope_list(text, 0, nested=False)
    if pos != len(text):
        raise ScopeSyntaxError(f"unexpected ']' at {pos} in {text!r}")
    return nodes


def _parse_scope_list(text: str, pos: int, *, nested: bool) -> tuple[list[ScopeNode], int]:
    nodes: list[ScopeNode] = []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            if nested:
                raise ScopeSyntaxError(f"unclosed '[' in {text!r}")
            return nodes, pos
        if text[pos] == "]":
            if not nested:
                return nodes, pos
            return nodes, pos + 1
        optional = text[pos] == "*"
        if optional:
            pos += 1
        start = pos
        while pos < len(text) and not text[pos].isspace() and text[pos] not in "[]*":
            pos += 1
        name = text[start:pos]
        if not name:
            raise ScopeSyntaxError(f"empty scope name at {start} in {text!r}")
        deps: list[ScopeNode] = []
        if pos < len(text) and text[pos] == "[":
            deps, pos = _parse_scope_list(text, pos + 1, nested=True)
        nodes.append(ScopeNode(name, optional, tuple(deps)))


def resource_server_of(scope_name: str) -> str | None:
    """The resource server a scope belongs to, or None when it is not recognisable."""
    if scope_name in OIDC_SCOPES:
        return AUTH_RS
    urn_prefix = "urn:globus:auth:scope:"
    if scope_name.startswith(urn_prefix):
        rest = scope_name[len(urn_prefix) :]
        server, sep, _name = rest.rpartition(":")
        return server if sep and server else None
    url_prefix = "https://auth.globus.org/scopes/"
    if scope_name.startswith(url_prefix):
        server, sep, name = scope_name[len(url_prefix) :].partition("/")
        if server == FLOWS_CLIENT_ID:  # the Flows service names its resource server apart
            return FLOWS_RS
        return server if sep and server and name else None
    return None


# --------------------------------------------------------------------------- tokens


@dataclass
class TokenRecord:
    """An access or refresh token minted by the emulator."""

    value: str
    kind: str  # "access" | "refresh"
    resource_server: str
    roots: tuple[ScopeNode, ...]
    identity_id: str
    username: str
    client_id: str | None
    issued_at: float
    expires_at: float | None  # None: refresh tokens do not expire
    parent: str | None = None  # the refresh token an access token came from
    revoked: bool = False

    @property
    def scope(self) -> str:
        return " ".join(node.name for node in self.roots)

    @property
    def dependencies(self) -> frozenset[str]:
        """Every dependent scope name consented under this token's root scopes."""
        return frozenset(dep.name for root in self.roots for dep in root.descendants())

    def active(self, now: float | None = None) -> bool:
        if self.revoked:
            return False
        if self.expires_at is None:
            return True
        return (time.time() if now is None else now) < self.expires_at


@dataclass
class Identity:
    identity_id: str
    username: str
    name: str
    email: str | None
    consents: list[ScopeNode] = field(default_factory=list)


@dataclass(frozen=True)
class CodeGrant:
    """An authorization code handed out by a (simulated) browser login, not yet exchanged."""

    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    identity_id: str
    state: str | None = None  # echoed in the token response, as recorded by the SDK


def _auth_error(status: int, error: str, description: str = "") -> HTTPError:
    body: JSONDict = {"error": error}
    if description:
        body["error_description"] = description
    body["errors"] = [
        {
            "id": new_request_id(),
            "code": error.upper(),
            "status": str(status),
            "title": error.replace("_", " "),
            "detail": description or error,
        }
    ]
    return HTTPError(status, body)


def _base_url(req: Request) -> str:
    """The Auth base URL this request came to (the emulator serves Auth under ``/auth/``)."""
    return f"http://{req.header('host') or '127.0.0.1'}/auth/"


class AuthService:
    """Token issuance and validation; not thread-safe on its own (the emulator locks)."""

    def __init__(
        self, clients: dict[str, str], *, token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    ) -> None:
        self.clients = dict(clients)
        self.token_lifetime = token_lifetime
        self.tokens: dict[str, TokenRecord] = {}
        self.identities: dict[str, Identity] = {}
        self._consent_ids = itertools.count(100000)
        self.codes: dict[str, CodeGrant] = {}
        self._signing_key: rsa.RSAPrivateKey | None = None

    # ----------------------------------------------------------------- identities

    def identity(self, identity_id: str, username: str | None = None) -> Identity:
        known = self.identities.get(identity_id)
        if known is not None:
            return known
        if username is None:
            if identity_id in self.clients:
                username = f"{identity_id}@clients.auth.globus.org"
            elif identity_id == DEFAULT_USER_ID:
                username = DEFAULT_USERNAME
            else:
                username = f"user-{identity_id[:8]}@example.org"
        is_client = username.endswith("@clients.auth.globus.org")
        ident = Identity(
            identity_id=identity_id,
            username=username,
            name=username if is_client else username.split("@")[0].title(),
            email=None if is_client else username,
        )
        self.identities[identity_id] = ident
        return ident

    def _record_consents(self, ident: Identity, roots: Iterable[ScopeNode]) -> None:
        for root in roots:
            if root not in ident.consents:
                ident.consents.append(root)

    # ----------------------------------------------------------------- minting

    def mint(
        self,
        roots: list[ScopeNode],
        ident: Identity,
        *,
        client_id: str | None,
        refresh: bool,
    ) -> JSONDict:
        """Mint tokens for ``roots`` (grouped by resource server): a token response."""
        groups: dict[str, list[ScopeNode]] = {}
        for node in roots:
            server = resource_server_of(node.name)
            if server is None:
                raise _auth_error(400, "invalid_scope", f"Unknown scope {node.name!r}")
            groups.setdefault(server, []).append(node)
        if not groups:
            raise _auth_error(400, "invalid_scope", "No scopes were requested")
        self._record_consents(ident, roots)
        entries = [
            self._mint_one(server, nodes, ident, client_id=client_id, refresh=refresh)
            for server, nodes in groups.items()
        ]
        # like Globus Auth: the Auth token (if any) is the top level one
        entries.sort(key=lambda entry: entry["resource_server"] != AUTH_RS)
        top = dict(entries[0])
        top["other_tokens"] = entries[1:]
        return top

    def _mint_one(
        self,
        server: str,
        nodes: list[ScopeNode],
        ident: Identity,
        *,
        client_id: str | None,
        refresh: bool,
        parent: str | None = None,
    ) -> JSONDict:
        now = time.time()
        access = TokenRecord(
            value="emu-at-" + secrets.token_urlsafe(24),
            kind="access",
            resource_server=server,
            roots=tuple(nodes),
            identity_id=ident.identity_id,
            username=ident.username,
            client_id=client_id,
            issued_at=now,
            expires_at=now + self.token_lifetime,
            parent=parent,
        )
        self.tokens[access.value] = access
        entry: JSONDict = {
            "access_token": access.value,
            "expires_in": self.token_lifetime,
            "resource_server": server,
            "token_type": "Bearer",
            "scope": access.scope,
        }
        if refresh:
            refresh_record = TokenRecord(
                value="emu-rt-" + secrets.token_urlsafe(24),
                kind="refresh",
                resource_server=server,
                roots=tuple(nodes),
                identity_id=ident.identity_id,
                username=ident.username,
                client_id=client_id,
                issued_at=now,
                expires_at=None,
            )
            self.tokens[refresh_record.value] = refresh_record
            access.parent = refresh_record.value
            entry["refresh_token"] = refresh_record.value
        return entry

    def issue_user_tokens(
        self,
        scope: str,
        identity_id: str,
        *,
        username: str | None = None,
        client_id: str | None = None,
    ) -> JSONDict:
        if "@" in identity_id and username is None:  # a username was given
            username = identity_id
            identity_id = str(uuid.uuid5(uuid.NAMESPACE_URL, username))
        ident = self.identity(identity_id, username)
        try:
            roots = parse_scopes(scope)
        except ScopeSyntaxError as err:
            raise ValueError(str(err)) from err
        response = self.mint(roots, ident, client_id=client_id, refresh=True)
        now = time.time()
        for entry in [response, *response["other_tokens"]]:
            entry["expires_at_seconds"] = int(now + entry["expires_in"])
        response["identity_id"] = identity_id
        return response

    # ----------------------------------------------------------------- the login flow

    def authorize(self, url: str, identity_id: str) -> str:
        """What a browser does with the authorize URL a native app printed: the user logs in
        as ``identity_id`` and consents to the scopes; answers the code to paste back."""
        parts = urllib.parse.urlsplit(url)
        if not parts.path.endswith("/v2/oauth2/authorize"):
            raise ValueError(f"not an authorize URL: {url}")
        query = dict(urllib.parse.parse_qsl(parts.query))
        for key in ("client_id", "redirect_uri", "scope", "code_challenge"):
            if not query.get(key):
                raise ValueError(f"the authorize URL has no {key}: {url}")
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            raise ValueError(f"not a PKCE authorization-code request: {url}")
        parse_scopes(query["scope"])
        code = "emu-code-" + secrets.token_urlsafe(16)
        self.codes[code] = CodeGrant(
            query["client_id"], query["redirect_uri"], query["scope"], query["code_challenge"],
            identity_id, query.get("state"),
        )  # fmt: skip
        return code

    def _exchange_code(self, form: dict[str, str]) -> Reply:
        grant = self.codes.pop(form.get("code", ""), None)  # a code is good for one exchange
        if grant is None:
            raise _auth_error(400, "invalid_grant", "Authorization code is invalid or used")
        if form.get("client_id") != grant.client_id:
            raise _auth_error(400, "invalid_grant", "Authorization code issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise _auth_error(400, "invalid_grant", "redirect_uri does not match")
        digest = hashlib.sha256(form.get("code_verifier", "").encode("ascii")).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") != grant.code_challenge:
            raise _auth_error(400, "invalid_grant", "code_verifier does not match")
        response = self.issue_user_tokens(grant.scope, grant.identity_id, client_id=grant.client_id)
        identity_id = response.pop("identity_id")
        for entry in [response, *response["other_tokens"]]:
            del entry["expires_at_seconds"]  # the SDK computes it; the service does not send it
        if grant.state is not None:
            response["state"] = grant.state
        if "openid" in grant.scope.split():
            ident = self.identity(identity_id)
            now = int(time.time())
            claims = {
                "iss": ISSUER, "sub": identity_id, "aud": grant.client_id, "iat": now,
                "exp": now + self.token_lifetime, "preferred_username": ident.username,
                "name": ident.name, "email": ident.email,
            }  # fmt: skip
            response["id_token"] = jwt.encode(
                claims, self._key(), algorithm="RS256", headers={"kid": "emulator"}
            )
        return Reply(200, response)

    def _key(self) -> rsa.RSAPrivateKey:
        if self._signing_key is None:
            self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._signing_key

    def _openid_configuration(self, req: Request) -> Reply:
        base = _base_url(req)
        return Reply(
            200,
            {
                "issuer": ISSUER,
                "authorization_endpoint": base + "v2/oauth2/authorize",
                "token_endpoint": base + "v2/oauth2/token",
                "userinfo_endpoint": base + "v2/oauth2/userinfo",
                "revocation_endpoint": base + "v2/oauth2/token/revoke",
                "jwks_uri": base + "jwk.json",
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                ],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": sorted(OIDC_SCOPES),
                "code_challenge_methods_supported": ["S256"],
            },
        )

    def _jwks(self, req: Request) -> Reply:
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self._key().public_key())
        )
        jwk.update(kid="emulator", use="sig", alg="RS256")
        return Reply(200, {"keys": [jwk]})

    def expire_all(self) -> None:
        for record in self.tokens.values():
            record.revoked = True

    def lookup_access(self, value: str) -> TokenRecord | None:
        record = self.tokens.get(value)
        if record is None or record.kind != "access" or not record.active():
            return None
        return record

    # ----------------------------------------------------------------- HTTP

    def handle(self, req: Request, path: str) -> Reply:
        routes = {
            ("POST", "/v2/oauth2/token"): self._token,
            ("POST", "/v2/oauth2/token/revoke"): self._revoke,
            ("POST", "/v2/oauth2/token/introspect"): self._introspect,
            ("POST", "/v2/oauth2/token/validate"): self._validate,
            ("GET", "/v2/oauth2/userinfo"): self._userinfo,
            ("POST", "/v2/oauth2/userinfo"): self._userinfo,
            ("GET", "/v2/api/identities"): self._identities,
            ("GET", "/.well-known/openid-configuration"): self._openid_configuration,
            ("GET", "/jwk.json"): self._jwks,
        }
        handler = routes.get((req.method, path.rstrip("/") or "/"))
        if handler is not None:
            return handler(req)
        parts = path.strip("/").split("/")
        if req.method == "GET" and parts[:3] == ["v2", "api", "identities"]:
            if len(parts) == 5 and parts[4] == "consents":
                return self._consents(req, parts[3])
            if len(parts) == 4:
                return self._identity(req, parts[3])
        raise _auth_error(404, "not_found", f"No such Auth resource: {req.method} {path}")

    def _client_from_basic(self, req: Request) -> str | None:
        """The authenticated confidential client, None if no credentials were sent."""
        header = req.header("Authorization") or ""
        form = req.form()
        client_id: str | None = None
        secret: str | None = None
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as err:
                raise _auth_error(401, "invalid_client", "Malformed basic auth") from err
            client_id, _, secret = decoded.partition(":")
        elif "client_secret" in form:
            client_id, secret = form.get("client_id"), form["client_secret"]
        if client_id is None:
            return None
        if self.clients.get(client_id) != secret:
            raise _auth_error(401, "invalid_client", "Unknown client or wrong secret")
        return client_id

    def _token(self, req: Request) -> Reply:
        form = req.form()
        client = self._client_from_basic(req)
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if client is None:
                raise _auth_error(401, "invalid_client", "Client credentials are required")
            try:
                roots = parse_scopes(form.get("scope", ""))
            except ScopeSyntaxError as err:
                raise _auth_error(400, "invalid_scope", str(err)) from err
            ident = self.identity(client)
            return Reply(200, self.mint(roots, ident, client_id=client, refresh=False))
        if grant == "authorization_code":
            return self._exchange_code(form)
        if grant == "refresh_token":
            caller = client or form.get("client_id")
            record = self.tokens.get(form.get("refresh_token", ""))
            if record is None or record.kind != "refresh" or not record.active():
                raise _auth_error(400, "invalid_grant", "Refresh token is invalid or revoked")
            if record.client_id is not None and caller != record.client_id:
                raise _auth_error(400, "invalid_grant", "Refresh token issued to another client")
            ident = self.identity(record.identity_id, record.username)
            entry = self._mint_one(
                record.resource_server,
                list(record.roots),
                ident,
                client_id=record.client_id,
                refresh=False,
                parent=record.value,
            )
            entry["refresh_token"] = record.value
            entry["other_tokens"] = []
            return Reply(200, entry)
        raise _auth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _revoke(self, req: Request) -> Reply:
        self._client_from_basic(req)
        value = req.form().get("token", "")
        record = self.tokens.get(value)
        if record is not None:
            record.revoked = True
            if record.kind == "refresh":
                for other in self.tokens.values():
                    if other.parent == value:
                        other.revoked = True
        return Reply(200, {"active": False})

    def _introspect(self, req: Request) -> Reply:
        client = self._client_from_basic(req)
        if client is None:
            raise _auth_error(401, "invalid_client", "Client credentials are required")
        form = req.form()
        record = self.tokens.get(form.get("token", ""))
        if record is None or not record.active():
            return Reply(200, {"active": False})
        ident = self.identity(record.identity_id, record.username)
        doc: JSONDict = {
            "active": True,
            "scope": record.scope,
            "client_id": record.client_id or client,
            "sub": record.identity_id,
            "username": record.username,
            "name": ident.name,
            "email": ident.email,
            "aud": [record.resource_server, client],
            "iss": "https://auth.globus.org",
            "token_type": "Bearer",
            "iat": int(record.issued_at),
            "nbf": int(record.issued_at),
            "exp": int(record.expires_at) if record.expires_at is not None else None,
        }
        if "identity_set" in form.get("include", ""):
            doc["identity_set"] = [record.identity_id]
        return Reply(200, doc)

    def _validate(self, req: Request) -> Reply:
        record = self.tokens.get(req.form().get("token", ""))
        return Reply(200, {"active": bool(record is not None and record.active())})

    def _bearer(self, req: Request) -> TokenRecord:
        header = req.header("Authorization") or ""
        if not header.lower().startswith("bearer "):
            raise _auth_error(401, "unauthorized", "A bearer token is required")
        record = self.lookup_access(header[7:].strip())
        if record is None:
            raise _auth_error(401, "unauthorized", "The token is not active")
        return record

    def _identity_doc(self, ident: Identity) -> JSONDict:
        is_client = ident.username.endswith("@clients.auth.globus.org")
        return {
            "id": ident.identity_id,
            "username": ident.username,
            "name": ident.name,
            "email": ident.email,
            "status": "used",
            "identity_provider": (
                "b31a4d5a-1dfe-4e3c-a4e1-2d5b9d0cd8b1"
                if not is_client
                else "9c22f1e0-4e67-4e0f-9b62-3b1a51c4bf3b"
            ),
            "identity_type": "client" if is_client else "login",
            "organization": None if is_client else "Emulated University",
        }

    def _userinfo(self, req: Request) -> Reply:
        record = self._bearer(req)
        ident = self.identity(record.identity_id, record.username)
        return Reply(
            200,
            {
                "sub": ident.identity_id,
                "preferred_username": ident.username,
                "name": ident.name,
                "email": ident.email,
                "identity_provider": self._identity_doc(ident)["identity_provider"],
                "identity_provider_display_name": "Emulated IdP",
                "organization": "Emulated University",
                "last_authentication": int(record.issued_at),
                "identity_set": [
                    {
                        "sub": ident.identity_id,
                        "username": ident.username,
                        "name": ident.name,
                        "email": ident.email,
                        "identity_provider": self._identity_doc(ident)["identity_provider"],
                        "identity_provider_display_name": "Emulated IdP",
                        "organization": "Emulated University",
                        "status": "used",
                        "last_authentication": int(record.issued_at),
                    }
                ],
            },
        )

    def _identities(self, req: Request) -> Reply:
        self._bearer(req)
        ids = [i for value in req.query.get("ids", []) for i in value.split(",") if i]
        names = [n for value in req.query.get("usernames", []) for n in value.split(",") if n]
        docs: list[JSONDict] = []
        for identity_id in ids:
            known = self.identities.get(identity_id)
            if known is not None:
                docs.append(self._identity_doc(known))
            else:
                docs.append(
                    {
                        "id": identity_id,
                        "username": None,
                        "name": None,
                        "email": None,
                        "status": "unused",
                        "identity_provider": None,
                        "organization": None,
                    }
                )
        for username in names:
            found = next((i for i in self.identities.values() if i.username == username), None)
            if found is None:
                found = self.identity(str(uuid.uuid5(uuid.NAMESPACE_URL, username)), username)
            docs.append(self._identity_doc(found))
        return Reply(200, {"identities": docs})

    def _identity(self, req: Request, identity_id: str) -> Reply:
        self._bearer(req)
        known = self.identities.get(identity_id)
        if known is None:
            raise _auth_error(404, "not_found", f"No identity {identity_id}")
        return Reply(200, {"identity": self._identity_doc(known)})

    def _consents(self, req: Request, identity_id: str) -> Reply:
        self._bearer(req)
        ident = self.identities.get(identity_id)
        docs: list[JSONDict] = []
        if ident is not None:
            for root in ident.consents:
                self._consent_docs(root, ident, [], docs)
        return Reply(200, {"consents": docs})

    def _consent_docs(
        self, node: ScopeNode, ident: Identity, path: list[int], out: list[JSONDict]
    ) -> None:
        consent_id = next(self._consent_ids)
        dependency_path = [*path, consent_id]
        now = iso_time(time.time())
        out.append(
            {
                "id": consent_id,
                "status": "approved",
                "created": now,
                "updated": now,
                "last_used": now,
                "allows_refresh": True,
                "atomically_revocable": bool(path),
                "auto_approved": False,
                "dependency_path": dependency_path,
                "scope_name": node.name,
                "scope": str(uuid.uuid5(uuid.NAMESPACE_URL, node.name)),
                "effective_identity": ident.identity_id,
                "client": str(uuid.uuid5(uuid.NAMESPACE_URL, "client:" + node.name)),
            }
        )
        for dep in node.dependencies:
            self._consent_docs(dep, ident, dependency_path, out)

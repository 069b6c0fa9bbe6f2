#!/usr/bin/env python3
"""gcemu as identity provider, driven by the official Python libraries: azure-identity and msgraph-sdk
against gcemu in strict auth mode over https.

Usage: REQUESTS_CA_BUNDLE=ca.pem SSL_CERT_FILE=ca.pem strict_identity.py https://127.0.0.1:PORT
(run_strict.sh starts `gcemu serve --in-memory --auth strict --tls`, fetches its CA and runs this.)

azure-identity's ClientSecretCredential (authority gcemu over https, instance discovery disabled,
gcemu's CA trusted through REQUESTS_CA_BUNDLE and SSL_CERT_FILE) gets an app-only token from gcemu's
token endpoint; msgraph-sdk uses it in strict mode to create a connection, register a schema and put
items. Two directory users get delegated tokens through UsernamePasswordCredential (the password
grant) and search; each sees exactly the items their ACLs grant. A wrong secret raises
azure-identity's own ClientAuthenticationError (AADSTS7000215), and a Graph request without a token
gets 401 InvalidAuthenticationToken with a WWW-Authenticate challenge. Only the control plane
(`/_emulator/*`) and the raw protocol checks use httpx directly. Prints one line per step; exits 1
on the first failure (after deleting what it created).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import sys
import time
import uuid
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import urlparse

import httpx
import jwt
import msal.authority
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, UsernamePasswordCredential
from azure.identity.aio import ClientSecretCredential as AioClientSecretCredential
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.entity_type import EntityType
from msgraph.generated.models.external_connectors.access_type import AccessType
from msgraph.generated.models.external_connectors.acl import Acl
from msgraph.generated.models.external_connectors.acl_type import AclType
from msgraph.generated.models.external_connectors.connection_operation_status import ConnectionOperationStatus
from msgraph.generated.models.external_connectors.connection_state import ConnectionState
from msgraph.generated.models.external_connectors.external_connection import ExternalConnection
from msgraph.generated.models.external_connectors.external_item import ExternalItem
from msgraph.generated.models.external_connectors.external_item_content import ExternalItemContent
from msgraph.generated.models.external_connectors.external_item_content_type import ExternalItemContentType
from msgraph.generated.models.external_connectors.label import Label
from msgraph.generated.models.external_connectors.properties import Properties
from msgraph.generated.models.external_connectors.property_ import Property_
from msgraph.generated.models.external_connectors.property_type import PropertyType
from msgraph.generated.models.external_connectors.schema import Schema
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.search_query import SearchQuery
from msgraph.generated.models.search_request import SearchRequest
from msgraph.generated.models.user import User
from msgraph.generated.search.query.query_post_request_body import QueryPostRequestBody

from harness import GRAPH_AUDIENCES, CheckFailed, Run, check, eq, print_cleanup, quiet_azure_identity, run_to_summary

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# a GUID tenant that no other test uses; gcemu creates it when the application is declared
TENANT = "6f1e3b7a-0c4d-4e2a-9b1f-2d3c4e5f6a7b"
# every tenant's default application (Directory.ReadWrite.All among its roles): it creates the users
DEFAULT_APP_ID = "00000000-0000-0000-0000-0000000000a1"
DEFAULT_APP_SECRET = "gcemu-default-secret"
APP_ROLES = ["ExternalConnection.ReadWrite.OwnedBy", "ExternalItem.ReadWrite.OwnedBy"]
APP_SCOPES = ["ExternalItem.Read.All"]
POLL_LIMIT_SECONDS = 20.0

# The expected failures below are reported by the steps, not logged; the deprecated password grant is the point here.
quiet_azure_identity()


# --------------------------------------------------------------------------------------------------
# JWT claims and typed errors (checks and steps: harness.py)


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the signature is checked once, against gcemu's JWKS)."""
    parts = token.split(".")
    check(len(parts) == 3, f"the access token is not a JWT (it has {len(parts)} part(s))")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


async def expect_auth_error(call: Callable[[], Awaitable[Any]], aadsts: str, status: Optional[int]) -> ClientAuthenticationError:
    """`call` must raise azure-identity's ClientAuthenticationError naming `aadsts` (and the HTTP status)."""
    try:
        result = await call()
    except ClientAuthenticationError as e:
        check(aadsts in str(e.message), f"ClientAuthenticationError message {e.message!r} does not contain {aadsts}")
        if status is not None:
            check(e.response is not None, f"ClientAuthenticationError carries no HTTP response (message {e.message!r})")
            eq(e.response.status_code, status, "HTTP status of the token endpoint's answer")
        return e
    except Exception as e:  # any other exception is a failure of the contract
        raise CheckFailed(f"expected ClientAuthenticationError ({aadsts}), got {type(e).__name__}: {e}") from e
    raise CheckFailed(f"expected ClientAuthenticationError ({aadsts}), but the call succeeded: {result!r}")


async def expect_odata_error(call: Callable[[], Awaitable[Any]], status: int, code: str | tuple[str, ...]) -> ODataError:
    try:
        result = await call()
    except ODataError as e:
        eq(e.response_status_code, status, "typed error status")
        check(e.error is not None, "typed error has no .error (MainError)")
        if isinstance(code, tuple):
            check(e.error.code in code, f"typed error code: expected one of {code!r}, got {e.error.code!r}")
        else:
            eq(e.error.code, code, "typed error code")
        check(bool(e.error.message), "typed error has an empty message")
        return e
    except Exception as e:
        raise CheckFailed(f"expected ODataError {status} {code}, got {type(e).__name__}: {e}") from e
    raise CheckFailed(f"expected ODataError {status} {code}, but the call succeeded: {result!r}")


# --------------------------------------------------------------------------------------------------
# the test


class StrictIdentity:
    def __init__(self, base: str, ca_file: str) -> None:
        self.base = base.rstrip("/")
        self.ca_file = ca_file
        self.host = urlparse(self.base).hostname or "127.0.0.1"
        self.port = urlparse(self.base).port
        suffix = uuid.uuid4().hex[:10]
        self.suffix = suffix
        self.conn_id = f"strict{suffix}"
        self.app_id = str(uuid.uuid4())
        self.app_secret = f"s3cret-{uuid.uuid4().hex}"
        self.adele_upn = f"adele.{suffix}@contoso.com"
        self.bob_upn = f"bob.{suffix}@contoso.com"
        self.adele_password = f"Adele!{suffix}"
        self.adele_id: Optional[str] = None
        self.bob_id: Optional[str] = None
        self.connection_created = False
        # Only gcemu's CA: the server's certificate must chain to it (no certifi fallback).
        self.tls = ssl.create_default_context(cafile=ca_file)
        self.http = httpx.AsyncClient(base_url=self.base, timeout=15, verify=self.tls)
        self.run = Run()
        self.app_credential: Optional[ClientSecretCredential] = None
        self.directory_credential: Optional[ClientSecretCredential] = None
        self.openid: dict[str, Any] = {}
        self.jwks: Optional[jwt.PyJWKSet] = None

    def graph(self, credential: Any) -> GraphServiceClient:
        """msgraph-sdk as a connector builds it: credentials and scopes, then gcemu's base URL."""
        client = GraphServiceClient(credentials=credential, scopes=[GRAPH_SCOPE])
        client.request_adapter.base_url = f"{self.base}/v1.0"
        return client

    def conn(self, client: GraphServiceClient):
        return client.external.connections.by_external_connection_id(self.conn_id)

    def verified_claims(self, token: str, what: str) -> dict[str, Any]:
        """Claims of `token` after checking its RS256 signature against gcemu's published keys."""
        unverified = jwt_claims(token)
        header = jwt.get_unverified_header(token)
        check(self.jwks is not None, "no JWKS fetched")
        kid = header.get("kid")
        check(bool(kid), f"{what}: JWT header has no kid: {header!r}")
        try:
            key = self.jwks[kid]
        except KeyError:
            raise CheckFailed(f"{what}: kid {kid!r} is not among the keys at {self.openid.get('jwks_uri')}")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[header.get("alg", "RS256")],
                options={"verify_aud": False, "verify_iss": False},
            )
        except jwt.PyJWTError as e:
            raise CheckFailed(f"{what}: signature/lifetime check with gcemu's JWKS failed: {e}") from e
        eq(claims, unverified, f"{what}: verified claims")
        check(claims.get("aud") in GRAPH_AUDIENCES, f"{what}: aud {claims.get('aud')!r} is not Graph")
        eq(claims.get("tid"), TENANT, f"{what}: tid")
        return claims

    # --- the steps

    async def main(self) -> None:
        step = self.run.step
        try:
            await self.steps(step)
        finally:
            await self.cleanup()
            await self.http.aclose()
            for credential in (self.app_credential, self.directory_credential):
                if credential is not None:
                    credential.close()

    async def steps(self, step) -> None:
        async def tls_certificate():
            # The certificate the server presents: issued by gcemu's CA, for localhost, 127.0.0.1 and ::1.
            with open(self.ca_file, "rb") as f:
                ca = x509.load_pem_x509_certificate(f.read())
            loop = asyncio.get_running_loop()
            pem = await loop.run_in_executor(
                None, lambda: ssl.get_server_certificate((self.host, self.port), ca_certs=self.ca_file)
            )
            leaf = x509.load_pem_x509_certificate(pem.encode())
            eq(leaf.issuer, ca.subject, "server certificate issuer (gcemu's CA subject)")
            san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
            names = {str(n) for n in san.get_values_for_type(x509.DNSName)}
            ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
            check("localhost" in names, f"certificate SAN DNS names {sorted(names)} lack localhost")
            check({"127.0.0.1", "::1"} <= ips, f"certificate SAN IPs {sorted(ips)} lack 127.0.0.1 or ::1")
            # Both protocols over TLS: HTTP/1.1 and h2 (kiota's httpx client asks for h2 through ALPN).
            versions = []
            for http2 in (False, True):
                # http2=True offers both through ALPN; the server must pick h2.
                async with httpx.AsyncClient(verify=self.tls, http2=http2, timeout=15) as c:
                    r = await c.get(f"{self.base}/_emulator/ca.pem")
                    eq(r.status_code, 200, f"GET /_emulator/ca.pem over {'h2' if http2 else 'HTTP/1.1'}")
                    check("BEGIN CERTIFICATE" in r.text, "GET /_emulator/ca.pem is not a PEM certificate")
                    versions.append(r.http_version)
            eq(versions, ["HTTP/1.1", "HTTP/2"], "negotiated HTTP versions (HTTP/1.1 offered alone, then h2 and HTTP/1.1 offered through ALPN)")
            return f"issued by {ca.subject.rfc4514_string()}; SAN {sorted(names)} {sorted(ips)}; HTTP/1.1 and h2"

        await step("TLS: the server's certificate chains to gcemu's CA (ca.pem only)", tls_certificate)

        async def no_token():
            found = []
            for headers, what in (({}, "no Authorization"), ({"Authorization": "Bearer not-a-token"}, "a malformed token")):
                for http2 in (False, True):
                    async with httpx.AsyncClient(verify=self.tls, http2=http2, timeout=15) as c:
                        r = await c.get(f"{self.base}/v1.0/external/connections", headers=headers)
                    label = f"GET /v1.0/external/connections with {what} over {r.http_version}"
                    eq(r.status_code, 401, f"{label}: status")
                    try:
                        body = r.json()
                    except ValueError:
                        raise CheckFailed(f"{label}: body is not JSON: {r.text[:300]!r}")
                    error = body.get("error") if isinstance(body, dict) else None
                    check(isinstance(error, dict), f"{label}: no Graph error envelope: {body!r}")
                    eq(error.get("code"), "InvalidAuthenticationToken", f"{label}: error.code")
                    check(bool(error.get("message")), f"{label}: error.message is empty")
                    challenge = r.headers.get("www-authenticate", "")
                    check(challenge.lower().startswith("bearer"), f"{label}: WWW-Authenticate {challenge!r} is not a Bearer challenge")
                    found.append(error.get("message"))
            return f"401 InvalidAuthenticationToken + WWW-Authenticate ({found[0]!r}; {found[2]!r})"

        await step("strict mode: Graph without a valid token answers 401 with a challenge", no_token)

        async def discovery():
            r = await self.http.get(f"/{TENANT}/v2.0/.well-known/openid-configuration")
            eq(r.status_code, 200, f"GET /{TENANT}/v2.0/.well-known/openid-configuration status")
            self.openid = r.json()
            for member in ("token_endpoint", "authorization_endpoint", "issuer", "jwks_uri"):
                check(isinstance(self.openid.get(member), str) and self.openid[member],
                      f"openid-configuration lacks {member}: {self.openid!r}")
            eq(self.openid["token_endpoint"], f"{self.base}/{TENANT}/oauth2/v2.0/token", "openid-configuration token_endpoint")
            check(self.openid["jwks_uri"].startswith(self.base + "/"),
                  f"jwks_uri {self.openid['jwks_uri']!r} is not on gcemu ({self.base})")
            r = await self.http.get(self.openid["jwks_uri"])
            eq(r.status_code, 200, f"GET {self.openid['jwks_uri']} status")
            self.jwks = jwt.PyJWKSet.from_dict(r.json())
            kids = [k.key_id for k in self.jwks.keys]
            check(kids, "the JWKS has no usable key")
            return f"token_endpoint on gcemu, {len(kids)} signing key(s) {kids}"

        await step("OpenID discovery and signing keys for the tenant", discovery)

        async def declare_app():
            r = await self.http.post("/_emulator/applications", json={
                "tenant": TENANT,
                "appId": self.app_id,
                "displayName": "Strict identity connector (python)",
                "secrets": [self.app_secret],
                "roles": APP_ROLES,
                "scopes": APP_SCOPES,
            })
            eq(r.status_code, 201, f"POST /_emulator/applications status (body {r.text[:300]!r})")
            return f"appId {self.app_id}, roles {', '.join(APP_ROLES)}"

        await step("declare an application (POST /_emulator/applications)", declare_app)

        async def client_secret_token():
            # The sync credential goes through MSAL: openid-configuration, then the token POST.
            self.app_credential = ClientSecretCredential(
                TENANT, self.app_id, self.app_secret, authority=self.base, disable_instance_discovery=True
            )
            token = self.app_credential.get_token(GRAPH_SCOPE)
            check(isinstance(token, AccessToken) and token.token, f"get_token returned {token!r}")
            check(token.expires_on > time.time() + 60, f"token expires_on {token.expires_on} is not in the future")
            claims = self.verified_claims(token.token, "app-only token")
            check(claims.get("appid") == self.app_id or claims.get("azp") == self.app_id,
                  f"app-only token: appid/azp {claims.get('appid')!r}/{claims.get('azp')!r}, expected {self.app_id}")
            eq(sorted(claims.get("roles") or []), sorted(APP_ROLES), "app-only token: roles")
            check("scp" not in claims, f"app-only token carries scp {claims.get('scp')!r}")
            return f"RS256 JWT verified with gcemu's JWKS; roles {claims['roles']}, expires in {token.expires_on - int(time.time())} s"

        await step("azure-identity ClientSecretCredential gets a token from gcemu", client_secret_token)
        app = self.graph(self.app_credential)
        conn = self.conn(app)

        async def create_connection():
            created = await app.external.connections.post(
                ExternalConnection(id=self.conn_id, name="Strict identity tickets", description="Created by strict_identity.py")
            )
            self.connection_created = True
            check(isinstance(created, ExternalConnection), f"connections.post returned {type(created).__name__}")
            eq((created.id, created.state), (self.conn_id, ConnectionState.Draft), "created connection id/state")
            return f"{self.conn_id} (draft), with the OwnedBy application's token"

        await step("msgraph-sdk creates a connection (POST /external/connections)", create_connection)

        async def register_schema():
            inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
            schema = Schema(
                base_type="microsoft.graph.externalItem",
                properties=[
                    Property_(name="title", type=PropertyType.String, labels=[Label.Title], is_searchable=True, is_retrievable=True),
                    Property_(name="status", type=PropertyType.String, is_queryable=True, is_retrievable=True),
                    Property_(name="priority", type=PropertyType.Int64, is_queryable=True, is_retrievable=True),
                ],
            )
            result = await conn.schema.patch(schema, request_configuration=RequestConfiguration(options=[inspect]))
            check(result is None, f"schema.patch returned {result!r}; an empty 202 body gives None")
            locations = inspect.response_headers.get("location") or set()
            eq(len(locations), 1, "number of Location headers on the schema PATCH")
            location = next(iter(locations))
            prefix = f"{self.base}/v1.0/external/connections/{self.conn_id}/operations/"
            check(location.startswith(prefix), f"Location {location!r} is not absolute under {prefix!r}")
            op_id = location[len(prefix):]
            check(op_id and "/" not in op_id, f"operation id {op_id!r} from Location")
            deadline = time.monotonic() + POLL_LIMIT_SECONDS
            polls = 0
            while True:
                polls += 1
                op = await conn.operations.by_connection_operation_id(op_id).get()
                eq(op.id, op_id, "operation id")
                check(op.status is not None, "operation status did not parse (None)")
                check(op.status != ConnectionOperationStatus.Failed, f"schema operation failed: {op.error}")
                if op.status == ConnectionOperationStatus.Completed:
                    break
                check(time.monotonic() < deadline, f"operation still {op.status} after {POLL_LIMIT_SECONDS}s")
                await asyncio.sleep(0.2)
            got = await conn.get()
            eq(got.state, ConnectionState.Ready, "connection state after the schema completed")
            return f"operation {op_id} completed after {polls} poll(s); connection ready"

        await step("msgraph-sdk registers a schema and polls the operation until completed", register_schema)

        async def aio_credential():
            # azure-identity's async credential does not use MSAL: it POSTs to the token endpoint itself.
            async with AioClientSecretCredential(
                TENANT, self.app_id, self.app_secret, authority=self.base, disable_instance_discovery=True
            ) as credential:
                client = self.graph(credential)
                got = await self.conn(client).get()
                eq((got.id, got.state), (self.conn_id, ConnectionState.Ready), "GET connection with the aio credential")
                token = await credential.get_token(GRAPH_SCOPE)
                claims = self.verified_claims(token.token, "aio app-only token")
                eq(sorted(claims.get("roles") or []), sorted(APP_ROLES), "aio app-only token: roles")
            return "azure.identity.aio.ClientSecretCredential: GET connection -> ready"

        await step("the aio ClientSecretCredential works too", aio_credential)

        async def create_users():
            # The default application of the tenant holds Directory.ReadWrite.All; the OwnedBy one does not.
            self.directory_credential = ClientSecretCredential(
                TENANT, DEFAULT_APP_ID, DEFAULT_APP_SECRET, authority=self.base, disable_instance_discovery=True
            )
            directory = self.graph(self.directory_credential)
            adele = await directory.users.post(User(
                account_enabled=True, display_name="Adele Vance", mail_nickname=f"adele{self.suffix}",
                user_principal_name=self.adele_upn,
                password_profile=PasswordProfile(password=self.adele_password, force_change_password_next_sign_in=False),
            ))
            check(isinstance(adele, User) and bool(adele.id), f"users.post returned {adele!r}")
            self.adele_id = adele.id
            bob = await directory.users.post(User(
                account_enabled=True, display_name="Bob Builder", mail_nickname=f"bob{self.suffix}",
                user_principal_name=self.bob_upn,
            ))
            check(isinstance(bob, User) and bool(bob.id), f"users.post returned {bob!r}")
            self.bob_id = bob.id
            return f"adele={self.adele_id} (with a password), bob={self.bob_id} (none), as the default application"

        await step("create directory users (POST /users, default application's token)", create_users)

        items = {
            "S1": [Acl(type=AclType.User, value=None, access_type=AccessType.Grant)],  # adele only (value set below)
            "S2": [Acl(type=AclType.Everyone, value=TENANT, access_type=AccessType.Grant)],  # both
            "S3": [Acl(type=AclType.User, value=None, access_type=AccessType.Grant)],  # bob only
            "S4": [  # everyone but adele: bob only
                Acl(type=AclType.Everyone, value=TENANT, access_type=AccessType.Grant),
                Acl(type=AclType.User, value=None, access_type=AccessType.Deny),
            ],
        }

        async def put_items():
            items["S1"][0].value = self.adele_id
            items["S3"][0].value = self.bob_id
            items["S4"][1].value = self.adele_id
            for n, (item_id, acl) in enumerate(items.items(), start=1):
                item = await conn.items.by_external_item_id(item_id).put(ExternalItem(
                    id=item_id,
                    acl=acl,
                    properties=Properties(additional_data={"title": f"Printer ticket {n}", "status": "open", "priority": n}),
                    content=ExternalItemContent(type=ExternalItemContentType.Text, value=f"The printer on floor {n} jams."),
                ))
                check(isinstance(item, ExternalItem), f"PUT {item_id} returned {type(item).__name__}")
                eq(item.id, item_id, f"PUT {item_id} id")
            got = await conn.items.by_external_item_id("S4").get()
            eq([(a.type, a.value, a.access_type) for a in got.acl],
               [(a.type, a.value, a.access_type) for a in items["S4"]], "GET S4 acl")
            return "S1 adele; S2 everyone; S3 bob; S4 everyone but adele"

        await step("msgraph-sdk PUTs items with ACLs", put_items)

        def search_body(query: str) -> QueryPostRequestBody:
            return QueryPostRequestBody(requests=[SearchRequest(
                entity_types=[EntityType.ExternalItem],
                content_sources=[f"/external/connections/{self.conn_id}"],
                query=SearchQuery(query_string=query),
                from_=0,
                size=25,
                fields=["title", "priority"],
            )])

        async def search_hits(client: GraphServiceClient, who: str) -> list[str]:
            res = await client.search.query.post(search_body("printer"))
            check(res is not None and res.value is not None and len(res.value) == 1, f"{who}'s search response value: {res!r}")
            containers = res.value[0].hits_containers or []
            if not containers:  # no hit at all: Graph may send an empty hitsContainers
                return []
            eq(len(containers), 1, f"{who}'s number of hitsContainers")
            hits = containers[0].hits or []
            for h in hits:
                check(isinstance(h.resource, ExternalItem), f"{who}'s hit {h.hit_id} is {type(h.resource).__name__}, not ExternalItem")
            ids = sorted(h.hit_id for h in hits)
            eq(containers[0].total, len(ids), f"{who}'s total")
            return ids

        delegated: dict[str, GraphServiceClient] = {}

        # MSAL's password grant first asks https://{host}/common/userrealm/{upn} whether the user is
        # federated, and builds that URL from the authority's host without its port (msal/authority.py
        # user_realm_discovery uses Authority.instance, a hostname; MSAL #484 kept the port for the
        # openid-configuration only, see MSAL #259). Against https://127.0.0.1:PORT that lookup goes to
        # port 443, which nothing serves. MSAL skips the lookup for hosts it has already seen answer 404
        # (a managed, not federated, realm): record gcemu's host there, as a 404 from it would.
        msal.authority.Authority._domains_without_user_realm_discovery.add(self.host)

        async def user_tokens():
            details = []
            for who, upn, password, user_id in (
                ("adele", self.adele_upn, self.adele_password, self.adele_id),
                ("bob", self.bob_upn, "any password at all", self.bob_id),
            ):
                credential = UsernamePasswordCredential(
                    self.app_id, upn, password, tenant_id=TENANT, authority=self.base, disable_instance_discovery=True
                )
                token = credential.get_token(GRAPH_SCOPE)
                claims = self.verified_claims(token.token, f"{who}'s delegated token")
                scopes = (claims.get("scp") or "").split()
                check("ExternalItem.Read.All" in scopes, f"{who}'s delegated token: scp {claims.get('scp')!r} lacks ExternalItem.Read.All")
                eq(claims.get("oid"), user_id, f"{who}'s delegated token: oid")
                check((claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username") or "").lower() == upn.lower(),
                      f"{who}'s delegated token names {claims.get('upn')!r}, not {upn}")
                delegated[who] = self.graph(credential)
                details.append(f"{who}: scp {claims['scp']!r}")
            return "; ".join(details)

        await step("UsernamePasswordCredential (password grant) gets delegated tokens", user_tokens)

        async def wrong_password():
            credential = UsernamePasswordCredential(
                self.app_id, self.adele_upn, "not adele's password", tenant_id=TENANT, authority=self.base,
                disable_instance_discovery=True,
            )
            e = await expect_auth_error(lambda: asyncio.to_thread(credential.get_token, GRAPH_SCOPE), "AADSTS50126", None)
            return f"ClientAuthenticationError: {e.message[:110]}"

        await step("a wrong password raises ClientAuthenticationError (AADSTS50126)", wrong_password)

        async def search_as_users():
            adele_hits = await search_hits(delegated["adele"], "adele")
            eq(adele_hits, ["S1", "S2"], "adele's hit ids")
            bob_hits = await search_hits(delegated["bob"], "bob")
            eq(bob_hits, ["S2", "S3", "S4"], "bob's hit ids")
            return f"adele {adele_hits}, bob {bob_hits}"

        await step("msgraph-sdk searches with the delegated tokens: exactly the granted items", search_as_users)

        async def app_only_search():
            # The token has roles and no scp: Graph's missing-permission code (Authorization_RequestDenied),
            # or the search-specific refusal lenient mode gives (Forbidden, "... delegated ...").
            e = await expect_odata_error(
                lambda: app.search.query.post(search_body("printer")), 403, ("Authorization_RequestDenied", "Forbidden")
            )
            return f"{e.error.code}: {e.error.message}"

        await step("an app-only search is refused (403, typed ODataError)", app_only_search)

        async def wrong_secret():
            wrong = ClientSecretCredential(
                TENANT, self.app_id, "not-the-secret", authority=self.base, disable_instance_discovery=True
            )
            try:
                # The sync credential (MSAL) raises it with the message only, no HTTP response attached.
                e = await expect_auth_error(lambda: asyncio.to_thread(wrong.get_token, GRAPH_SCOPE), "AADSTS7000215", None)
                # The same error surfaces from msgraph-sdk, unwrapped, before any Graph request is sent.
                await expect_auth_error(lambda: self.conn(self.graph(wrong)).get(), "AADSTS7000215", None)
            finally:
                wrong.close()
            async with AioClientSecretCredential(
                TENANT, self.app_id, "not-the-secret", authority=self.base, disable_instance_discovery=True
            ) as aio_wrong:
                # azure-identity's own (aio) client attaches the token endpoint's response: 401.
                await expect_auth_error(lambda: aio_wrong.get_token(GRAPH_SCOPE), "AADSTS7000215", 401)
            # The token endpoint's answer itself, as Entra writes it.
            r = await self.http.post(f"/{TENANT}/oauth2/v2.0/token", data={
                "client_id": self.app_id, "client_secret": "not-the-secret",
                "grant_type": "client_credentials", "scope": GRAPH_SCOPE,
            })
            eq(r.status_code, 401, "raw token POST with a wrong secret: status")
            body = r.json()
            eq(body.get("error"), "invalid_client", "raw token POST: error")
            check(str(body.get("error_description", "")).startswith("AADSTS7000215:"),
                  f"raw token POST: error_description {body.get('error_description')!r}")
            eq(body.get("error_codes"), [7000215], "raw token POST: error_codes")
            for member in ("timestamp", "trace_id", "correlation_id"):
                check(bool(body.get(member)), f"raw token POST: {member} missing in {body!r}")
            return f"ClientAuthenticationError (sync, through msgraph-sdk, aio): {e.message[:100]}"

        await step("a wrong secret raises ClientAuthenticationError (AADSTS7000215, 401)", wrong_secret)

        async def unknown_app():
            stranger = ClientSecretCredential(
                TENANT, str(uuid.uuid4()), "whatever", authority=self.base, disable_instance_discovery=True
            )
            try:
                e = await expect_auth_error(lambda: asyncio.to_thread(stranger.get_token, GRAPH_SCOPE), "AADSTS700016", None)
            finally:
                stranger.close()
            return f"ClientAuthenticationError: {e.message[:100]}"

        await step("an application gcemu does not know raises ClientAuthenticationError (AADSTS700016)", unknown_app)

        async def delete_connection():
            await conn.delete()
            self.connection_created = False
            await expect_odata_error(lambda: conn.get(), 404, "ItemNotFound")
            return "GET answers a typed 404"

        await step("msgraph-sdk deletes the connection", delete_connection)

    async def cleanup(self) -> None:
        problems = []
        if self.connection_created and self.app_credential is not None:
            try:
                await self.conn(self.graph(self.app_credential)).delete()
            except Exception as e:  # noqa: BLE001 - cleanup reports, never masks the real failure
                problems.append(f"connection: {type(e).__name__}: {e}")
        if self.directory_credential is not None:
            directory = self.graph(self.directory_credential)
            for uid in (self.adele_id, self.bob_id):
                if uid:
                    try:
                        await directory.users.by_user_id(uid).delete()
                    except Exception as e:  # noqa: BLE001
                        problems.append(f"user {uid}: {type(e).__name__}: {e}")
        print_cleanup(problems)


def main() -> int:
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GCEMU_URL", "")
    if not base or len(sys.argv) > 2:
        print("usage: strict_identity.py https://127.0.0.1:PORT   (or set GCEMU_URL)", file=sys.stderr)
        return 2
    if not base.startswith("https://"):
        print(f"strict_identity.py: {base} is not https; azure-identity only accepts an https authority", file=sys.stderr)
        return 2
    ca_file = os.environ.get("REQUESTS_CA_BUNDLE", "")
    if not ca_file or os.environ.get("SSL_CERT_FILE") != ca_file or not os.path.isfile(ca_file):
        print("strict_identity.py: set REQUESTS_CA_BUNDLE and SSL_CERT_FILE to gcemu's CA certificate "
              "(GET /_emulator/ca.pem); run_strict.sh does", file=sys.stderr)
        return 2
    test = StrictIdentity(base, ca_file)
    return run_to_summary(test.main, test.run)


if __name__ == "__main__":
    sys.exit(main())

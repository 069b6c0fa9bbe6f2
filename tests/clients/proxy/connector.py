#!/usr/bin/env python3
"""A Microsoft Graph connector in Python, built the way the SDK's README and Microsoft's Python sample
build it, run unchanged through an HTTPS proxy (gcemu serve --proxy, in the way Dev Proxy is used).

Usage (run.sh does all of it):
  HTTPS_PROXY=http://127.0.0.1:PROXY REQUESTS_CA_BUNDLE=ca.pem SSL_CERT_FILE=ca.pem \\
  AZURE_TENANT_ID=contoso.onmicrosoft.com AZURE_CLIENT_ID=<guid> AZURE_CLIENT_SECRET=<secret> \\
  connector.py [--listener http://127.0.0.1:PORT]

The connector code names neither gcemu nor a port: azure-identity's ClientSecretCredential(tenant,
client_id, secret) with its default options (authority login.microsoftonline.com, instance discovery
on) and GraphServiceClient(credentials=..., scopes=[...]) with its default base URL
(https://graph.microsoft.com/v1.0). The proxy comes from HTTPS_PROXY, which every HTTP stack involved
reads by itself (httpx under kiota, requests under MSAL, aiohttp under azure.identity.aio), and the
trust from REQUESTS_CA_BUNDLE (requests) and SSL_CERT_FILE (httpx, aiohttp).

Steps: an app token; a connection; a schema whose operation Location is followed until `completed`;
two directory users; items with ACLs; a search as each user (UsernamePasswordCredential, the password
grant, default options) that must return exactly the items each may see; the refusals (app-only
search 403, a wrong password); the connection's deletion. With --listener, one more check: a host
that is not Microsoft's (here gcemu's own plain listener) is tunnelled untouched. Prints one line per
step and `proxy-python: N passed, N failed` last; exits 1 on the first failure (after cleanup).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import ssl
import sys
import time
import uuid
from typing import Any, Awaitable, Optional
from urllib.parse import urlparse

# harness.py (checks, steps, cleanup line) lives in ../python, shared with the Python client tests there.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import certifi
import httpx
from azure.identity import ClientSecretCredential, UsernamePasswordCredential
from azure.identity.aio import ClientSecretCredential as AioClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.external.connections.item.operations.item.connection_operation_item_request_builder import (
    ConnectionOperationItemRequestBuilder,
)
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

from harness import GRAPH_AUDIENCES, CheckFailed, Run, check, eq, print_cleanup, quiet_azure_identity

GRAPH = "https://graph.microsoft.com"
LOGIN = "https://login.microsoftonline.com"
SCOPES = ["https://graph.microsoft.com/.default"]
POLL_DELAY_SECONDS = 0.5
POLL_LIMIT_SECONDS = 30.0

# The expected failure below is reported by its step, not logged; the deprecated password grant signs users in.
quiet_azure_identity()


def is_guid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def claims_of(token: str) -> dict[str, Any]:
    parts = token.split(".")
    check(len(parts) == 3, f"the access token is not a JWT ({len(parts)} part(s))")
    return json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))


def describe(e: BaseException) -> str:
    if isinstance(e, ODataError):
        err = e.error
        return (f"ODataError {e.response_status_code} {getattr(err, 'code', None)}: {getattr(err, 'message', None)}"
                f" (headers {dict(e.response_headers or {})})")
    text = f"{type(e).__name__}: {e}"
    cause = e.__cause__ or e.__context__
    while cause is not None:
        text += f"; caused by {type(cause).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    return text


async def expect_odata_error(call: Awaitable[Any], status: int) -> ODataError:
    try:
        result = await call
    except ODataError as e:
        eq(e.response_status_code, status, f"typed error status ({describe(e)})")
        return e
    except Exception as e:
        raise CheckFailed(f"expected ODataError {status}, got {describe(e)}") from e
    raise CheckFailed(f"expected ODataError {status}, but the call succeeded: {result!r}")


class ProxyConnector:
    def __init__(self, tenant: str, client_id: str, secret: str, listener: Optional[str]) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.secret = secret
        self.listener = listener
        suffix = uuid.uuid4().hex[:10]
        self.suffix = suffix
        self.conn_id = f"proxypy{suffix}"
        self.adele_upn = f"adele.{suffix}@contoso.com"
        self.bob_upn = f"bob.{suffix}@contoso.com"
        self.adele_password = f"Adele!{suffix}"
        self.adele_id: Optional[str] = None
        self.bob_id: Optional[str] = None
        self.tid: Optional[str] = None
        self.connection_created = False
        self.run = Run(describe)
        # --- the connector, as production code builds it
        self.credential = ClientSecretCredential(tenant, client_id, secret)
        self.graph = GraphServiceClient(credentials=self.credential, scopes=SCOPES)
        self.user_credentials: list[Any] = []

    def conn(self, client: GraphServiceClient):
        return client.external.connections.by_external_connection_id(self.conn_id)

    def check_tid(self, claims: dict[str, Any], what: str) -> None:
        """Every token of the run names one tenant: the authority's, which gcemu takes as its tenant."""
        check(claims.get("aud") in GRAPH_AUDIENCES, f"{what}: aud {claims.get('aud')!r} is not Graph")
        if self.tid is None:
            self.tid = claims.get("tid")
            check(bool(self.tid), f"{what}: no tid in {claims!r}")
            if is_guid(self.tenant):
                eq(self.tid, self.tenant, f"{what}: tid of a tenant named by its id")
        eq(claims.get("tid"), self.tid, f"{what}: tid")

    async def main(self) -> None:
        try:
            await self.steps()
        finally:
            await self.cleanup()
            self.credential.close()
            for credential in self.user_credentials:
                credential.close()

    async def steps(self) -> None:
        step = self.run.step
        graph = self.graph
        conn = self.conn(graph)

        async def defaults():
            adapter = graph.request_adapter

            # httpx reads HTTPS_PROXY when a client is built with trust_env (its default) and no
            # transport: kiota's client has a mount for https:// whose transport goes through the proxy.
            http_client: httpx.AsyncClient = adapter._http_client
            check(http_client.trust_env, "kiota's httpx client was built with trust_env=False")
            patterns = sorted(p.pattern for p in http_client._mounts)
            check("https://" in patterns, f"kiota's httpx client has no mount for https:// (mounts {patterns!r}); HTTPS_PROXY unread?")
            return f"base URL {adapter.base_url}; httpx mounts {patterns}"

        await step("GraphServiceClient keeps its default base URL; its httpx client took HTTPS_PROXY", defaults)

        async def untrusted():
            # The trust comes from gcemu's CA and nothing else: with only the public roots
            # (certifi) the intercepted graph.microsoft.com is refused.
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=certifi.where()), timeout=15) as raw:
                try:
                    r = await raw.get(f"{GRAPH}/v1.0/")
                except httpx.ConnectError as e:
                    check("CERTIFICATE_VERIFY_FAILED" in str(e), f"expected a certificate failure, got {describe(e)}")
                    return "certificate verify failed with public roots only"
            raise CheckFailed(f"an untrusted client reached {GRAPH} through the proxy: {r.status_code}")

        await step("through the proxy, graph.microsoft.com is served with a certificate only gcemu's CA vouches for", untrusted)

        async def app_token():
            # MSAL: openid-configuration of the tenant (and instance discovery), then the token endpoint.
            token = await asyncio.to_thread(self.credential.get_token, *SCOPES)
            claims = claims_of(token.token)
            self.check_tid(claims, "app-only token")
            return f"tid {claims.get('tid')}, appid {claims.get('appid') or claims.get('azp')}, roles {claims.get('roles')}"

        await step("ClientSecretCredential (default options) gets a token through the proxy", app_token)

        async def create_connection():
            created = await graph.external.connections.post(ExternalConnection(
                id=self.conn_id, name="Proxy tickets (Python)", description="Created by connector.py through the proxy",
            ))
            self.connection_created = True
            check(isinstance(created, ExternalConnection), f"connections.post returned {type(created).__name__}")
            eq((created.id, created.state), (self.conn_id, ConnectionState.Draft), "created connection id/state")
            return f"{self.conn_id} (draft)"

        await step("msgraph-sdk creates a connection", create_connection)

        async def register_schema():
            inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
            result = await conn.schema.patch(Schema(
                base_type="microsoft.graph.externalItem",
                properties=[
                    Property_(name="title", type=PropertyType.String, labels=[Label.Title], is_searchable=True, is_retrievable=True),
                    Property_(name="status", type=PropertyType.String, is_queryable=True, is_retrievable=True),
                    Property_(name="priority", type=PropertyType.Int64, is_queryable=True, is_retrievable=True),
                ],
            ), request_configuration=RequestConfiguration(options=[inspect]))
            check(result is None, f"schema.patch returned {result!r}; an empty 202 body gives None")
            locations = inspect.response_headers.get("location") or set()
            eq(len(locations), 1, "number of Location headers")
            location = next(iter(locations))
            prefix = f"{GRAPH}/v1.0/external/connections/{self.conn_id}/operations/"
            check(location.startswith(prefix), f"Location {location!r} is not under {prefix!r}")
            # Follow the Location itself, as the samples do: a request builder on the raw absolute URL.
            operation = ConnectionOperationItemRequestBuilder(graph.request_adapter, location)
            deadline = time.monotonic() + POLL_LIMIT_SECONDS
            polls = 0
            while True:
                await asyncio.sleep(POLL_DELAY_SECONDS)
                polls += 1
                op = await operation.get()
                check(op is not None and op.status is not None, f"operation did not parse: {op!r}")
                check(op.status != ConnectionOperationStatus.Failed, f"schema operation failed: {op.error}")
                if op.status == ConnectionOperationStatus.Completed:
                    break
                check(time.monotonic() < deadline, f"operation still {op.status} after {POLL_LIMIT_SECONDS}s")
            got = await conn.get()
            eq(got.state, ConnectionState.Ready, "connection state after the schema completed")
            return f"Location {location}; completed after {polls} poll(s); connection ready"

        await step("msgraph-sdk registers a schema and follows the operation Location until completed", register_schema)

        async def aio_credential():
            # The msgraph-sdk README's credential: azure.identity.aio (aiohttp, no MSAL).
            async with AioClientSecretCredential(self.tenant, self.client_id, self.secret) as credential:
                got = await self.conn(GraphServiceClient(credentials=credential, scopes=SCOPES)).get()
                eq((got.id, got.state), (self.conn_id, ConnectionState.Ready), "GET connection with the aio credential")
                token = await credential.get_token(*SCOPES)
                self.check_tid(claims_of(token.token), "aio app-only token")
            return "GET connection -> ready"

        await step("azure.identity.aio.ClientSecretCredential (default options) works through the proxy too", aio_credential)

        async def create_users():
            adele = await graph.users.post(User(
                account_enabled=True, display_name="Adele Vance", mail_nickname=f"adele{self.suffix}",
                user_principal_name=self.adele_upn,
                password_profile=PasswordProfile(password=self.adele_password, force_change_password_next_sign_in=False),
            ))
            check(isinstance(adele, User) and bool(adele.id), f"users.post returned {adele!r}")
            self.adele_id = adele.id
            bob = await graph.users.post(User(
                account_enabled=True, display_name="Bob Builder", mail_nickname=f"bob{self.suffix}",
                user_principal_name=self.bob_upn,
            ))
            check(isinstance(bob, User) and bool(bob.id), f"users.post returned {bob!r}")
            self.bob_id = bob.id
            return f"adele {self.adele_id} (with a password), bob {self.bob_id} (none)"

        await step("msgraph-sdk creates directory users (POST /users as the application)", create_users)

        async def put_items():
            items = {
                "P1": [Acl(type=AclType.User, value=self.adele_id, access_type=AccessType.Grant)],
                "P2": [Acl(type=AclType.Everyone, value="everyone", access_type=AccessType.Grant)],
                "P3": [Acl(type=AclType.User, value=self.bob_id, access_type=AccessType.Grant)],
                "P4": [
                    Acl(type=AclType.Everyone, value="everyone", access_type=AccessType.Grant),
                    Acl(type=AclType.User, value=self.adele_id, access_type=AccessType.Deny),
                ],
            }
            for n, (item_id, acl) in enumerate(items.items(), start=1):
                item = await conn.items.by_external_item_id(item_id).put(ExternalItem(
                    id=item_id,
                    acl=acl,
                    properties=Properties(additional_data={"title": f"Printer ticket {n}", "status": "open", "priority": n}),
                    content=ExternalItemContent(type=ExternalItemContentType.Text, value=f"The printer on floor {n} jams."),
                ))
                check(isinstance(item, ExternalItem), f"PUT {item_id} returned {type(item).__name__}")
            got = await conn.items.by_external_item_id("P4").get()
            eq([(a.type, a.access_type) for a in got.acl],
               [(AclType.Everyone, AccessType.Grant), (AclType.User, AccessType.Deny)], "GET P4 acl")
            return "P1 adele; P2 everyone; P3 bob; P4 everyone but adele"

        await step("msgraph-sdk PUTs items with ACLs", put_items)

        def search_body() -> QueryPostRequestBody:
            return QueryPostRequestBody(requests=[SearchRequest(
                entity_types=[EntityType.ExternalItem],
                content_sources=[f"/external/connections/{self.conn_id}"],
                query=SearchQuery(query_string="printer"),
                from_=0,
                size=25,
                fields=["title", "priority"],
            )])

        async def search_hits(client: GraphServiceClient, who: str) -> list[str]:
            res = await client.search.query.post(search_body())
            check(res is not None and res.value is not None and len(res.value) == 1, f"{who}'s search response: {res!r}")
            containers = res.value[0].hits_containers or []
            if not containers:
                return []
            eq(len(containers), 1, f"{who}'s number of hitsContainers")
            hits = containers[0].hits or []
            for h in hits:
                check(isinstance(h.resource, ExternalItem), f"{who}'s hit {h.hit_id} is {type(h.resource).__name__}")
            ids = sorted(h.hit_id for h in hits)
            eq(containers[0].total, len(ids), f"{who}'s total")
            return ids

        async def user_realm():
            # What MSAL's password grant asks first (msal/authority.py user_realm_discovery). MSAL
            # would also accept a 404 (it then assumes a managed user), so the answer is checked here.
            async with httpx.AsyncClient(timeout=15) as raw:  # HTTPS_PROXY and SSL_CERT_FILE from the environment
                r = await raw.get(f"{LOGIN}/common/userrealm/{self.adele_upn}", params={"api-version": "1.0"},
                                  headers={"Accept": "application/json"})
            eq(r.status_code, 200, f"GET /common/userrealm/{{upn}} status (body {r.text[:200]!r})")
            body = r.json()
            eq(body.get("account_type"), "Managed", "userrealm account_type")
            return f"account_type {body['account_type']}, domain_name {body.get('domain_name')!r}"

        await step("the proxy answers MSAL's user realm discovery (login.microsoftonline.com/common/userrealm)", user_realm)

        async def search_as_users():
            details = []
            for who, upn, password, user_id, expected in (
                ("adele", self.adele_upn, self.adele_password, self.adele_id, ["P1", "P2"]),
                ("bob", self.bob_upn, "any password at all", self.bob_id, ["P2", "P3", "P4"]),
            ):
                credential = UsernamePasswordCredential(self.client_id, upn, password, tenant_id=self.tenant)
                self.user_credentials.append(credential)
                token = await asyncio.to_thread(credential.get_token, *SCOPES)
                claims = claims_of(token.token)
                self.check_tid(claims, f"{who}'s delegated token")
                eq(claims.get("oid"), user_id, f"{who}'s delegated token: oid")
                ids = await search_hits(GraphServiceClient(credentials=credential, scopes=SCOPES), who)
                eq(ids, expected, f"{who}'s hit ids")
                details.append(f"{who} {ids}")
            return ", ".join(details)

        await step("UsernamePasswordCredential (default options) signs each user in; each search returns exactly the granted items", search_as_users)

        async def wrong_password():
            from azure.core.exceptions import ClientAuthenticationError

            credential = UsernamePasswordCredential(self.client_id, self.adele_upn, "not adele's password", tenant_id=self.tenant)
            self.user_credentials.append(credential)
            try:
                await asyncio.to_thread(credential.get_token, *SCOPES)
            except ClientAuthenticationError as e:
                check("AADSTS50126" in str(e.message), f"message {e.message!r} lacks AADSTS50126")
                return f"ClientAuthenticationError: {str(e.message)[:90]}"
            raise CheckFailed("a wrong password got a token")

        await step("a wrong password raises ClientAuthenticationError (AADSTS50126)", wrong_password)

        async def app_only_search():
            e = await expect_odata_error(graph.search.query.post(search_body()), 403)
            return f"{e.error.code}: {e.error.message}"

        await step("an app-only search is refused (403, typed ODataError)", app_only_search)

        async def delete_connection():
            await conn.delete()
            self.connection_created = False
            e = await expect_odata_error(conn.get(), 404)
            return f"then GET: 404 {e.error.code}"

        await step("msgraph-sdk deletes the connection", delete_connection)

        if self.listener:
            async def tunnel():
                # A host the proxy does not intercept is tunnelled untouched. The only such host this
                # test may reach is on 127.0.0.1: gcemu's own plain-http listener, spoken to in the tunnel.
                listen = urlparse(self.listener)
                proxy = urlparse(os.environ["HTTPS_PROXY"])
                expected = open(os.environ["SSL_CERT_FILE"], "rb").read()

                def exchange() -> tuple[bytes, bytes]:
                    with socket.create_connection((proxy.hostname, proxy.port), timeout=15) as s:
                        s.sendall(f"CONNECT {listen.hostname}:{listen.port} HTTP/1.1\r\nHost: {listen.hostname}:{listen.port}\r\n\r\n".encode())
                        reply = b""
                        while b"\r\n\r\n" not in reply:
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            reply += chunk
                        head, _, rest = reply.partition(b"\r\n\r\n")
                        if not head.split(b" ")[1:2] == [b"200"]:
                            return head, rest
                        s.sendall(f"GET /_emulator/ca.pem HTTP/1.1\r\nHost: {listen.hostname}:{listen.port}\r\nConnection: close\r\n\r\n".encode())
                        while chunk := s.recv(65536):
                            rest += chunk
                        return head, rest

                head, answer = await asyncio.to_thread(exchange)
                first = head.split(b"\r\n")[0].decode(errors="replace")
                check(first.split(" ")[1:2] == ["200"], f"CONNECT {listen.netloc}: {first!r}")
                status_line = answer.split(b"\r\n")[0].decode(errors="replace")
                check(" 200 " in f"{status_line} ", f"GET /_emulator/ca.pem in the tunnel: {status_line!r}")
                check(answer.partition(b"\r\n\r\n")[2].strip() == expected.strip(),
                      "the tunnelled answer is not the CA certificate run.sh downloaded")
                return f"CONNECT {listen.netloc}: {first}; GET /_emulator/ca.pem inside: {status_line}"

            await step("a host that is not Graph's or Entra's is tunnelled untouched (CONNECT 127.0.0.1:listener)", tunnel)

    async def cleanup(self) -> None:
        problems = []
        if self.connection_created:
            try:
                await self.conn(self.graph).delete()
            except Exception as e:  # noqa: BLE001 - cleanup reports, never masks the first failure
                problems.append(f"connection: {describe(e)}")
        for uid in (self.adele_id, self.bob_id):
            if uid:
                try:
                    await self.graph.users.by_user_id(uid).delete()
                except Exception as e:  # noqa: BLE001
                    problems.append(f"user {uid}: {describe(e)}")
        print_cleanup(problems)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listener", help="gcemu's plain listener (http://127.0.0.1:PORT), for the tunnel check")
    args = parser.parse_args()
    env = {name: os.environ.get(name, "") for name in
           ("HTTPS_PROXY", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")}
    missing = [name for name, value in env.items() if not value]
    if missing:
        print(f"connector.py: set {', '.join(missing)} (run.sh does)", file=sys.stderr)
        return 2
    if urlparse(env["HTTPS_PROXY"]).hostname not in ("127.0.0.1", "localhost", "::1"):
        print(f"connector.py: HTTPS_PROXY {env['HTTPS_PROXY']} is not on this machine; refusing to run", file=sys.stderr)
        return 2
    if os.environ.get("https_proxy", env["HTTPS_PROXY"]) != env["HTTPS_PROXY"]:
        print("connector.py: https_proxy and HTTPS_PROXY differ; HTTP stacks disagree on which one wins", file=sys.stderr)
        return 2
    if os.environ.get("AZURE_AUTHORITY_HOST"):
        print("connector.py: unset AZURE_AUTHORITY_HOST; the point is the default authority", file=sys.stderr)
        return 2
    print(f"proxy {env['HTTPS_PROXY']}, CA {env['SSL_CERT_FILE']}, tenant {env['AZURE_TENANT_ID']}, app {env['AZURE_CLIENT_ID']}", flush=True)
    test = ProxyConnector(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"], args.listener)
    status = 0
    try:
        asyncio.run(test.main())
    except Exception:
        status = 1
    print(f"proxy-python: {test.run.passed} passed, {test.run.failed} failed", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

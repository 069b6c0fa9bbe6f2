#!/usr/bin/env python3
"""A connector's whole life driven through the typed Python Graph SDKs against gcemu.

Usage: connector_life.py BASE_URL   (or GCEMU_URL=http://127.0.0.1:5080 connector_life.py)

msgraph-sdk (v1.0) does the connector work, including items sent through JSON batching (msgraph-core's
BatchRequestContent and `client.batch`); msgraph-beta-sdk (beta) reads the same connection back, its
quota and a typed error. Every call goes through the SDK's typed request builders and models, with
a custom kiota AccessTokenProvider that sends tokens minted by `POST /_emulator/token`; only that
control-plane call uses httpx directly. Prints one line per step; exits 1 on the first failure (after
cleaning up the connection, the users and the group it created).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import time
import uuid
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import urlparse

import httpx
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.external.connections.item.items.item.microsoft_graph_external_connectors_add_activities.add_activities_post_request_body import (
    AddActivitiesPostRequestBody,
)
from msgraph.generated.models.entity_type import EntityType
from msgraph.generated.models.external_connectors.access_type import AccessType
from msgraph.generated.models.external_connectors.acl import Acl
from msgraph.generated.models.external_connectors.acl_type import AclType
from msgraph.generated.models.external_connectors.connection_operation_status import ConnectionOperationStatus
from msgraph.generated.models.external_connectors.connection_state import ConnectionState
from msgraph.generated.models.external_connectors.external_activity import ExternalActivity
from msgraph.generated.models.external_connectors.external_activity_type import ExternalActivityType
from msgraph.generated.models.external_connectors.external_connection import ExternalConnection
from msgraph.generated.models.external_connectors.external_group import ExternalGroup
from msgraph.generated.models.external_connectors.external_item import ExternalItem
from msgraph.generated.models.external_connectors.external_item_content import ExternalItemContent
from msgraph.generated.models.external_connectors.external_item_content_type import ExternalItemContentType
from msgraph.generated.models.external_connectors.identity import Identity
from msgraph.generated.models.external_connectors.identity_type import IdentityType
from msgraph.generated.models.external_connectors.label import Label
from msgraph.generated.models.external_connectors.properties import Properties
from msgraph.generated.models.external_connectors.property_ import Property_
from msgraph.generated.models.external_connectors.property_type import PropertyType
from msgraph.generated.models.external_connectors.schema import Schema
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.search_query import SearchQuery
from msgraph.generated.models.search_request import SearchRequest
from msgraph.generated.models.user import User
from msgraph.generated.search.query.query_post_request_body import QueryPostRequestBody
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.requests.batch_response_content import BatchResponseContent
from msgraph_beta import GraphRequestAdapter as BetaGraphRequestAdapter
from msgraph_beta import GraphServiceClient as BetaGraphServiceClient
from msgraph_beta.generated.models.external_connectors.connection_state import (
    ConnectionState as BetaConnectionState,
)
from msgraph_beta.generated.models.external_connectors.external_item import ExternalItem as BetaExternalItem
from msgraph_beta.generated.models.external_connectors.property_type import PropertyType as BetaPropertyType
from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError as BetaODataError

from harness import CheckFailed, EmulatorTokenProvider, Run, check, eq, print_cleanup, run_to_summary, utc

POLL_LIMIT_SECONDS = 20.0


# --------------------------------------------------------------------------------------------------
# plumbing: times, additional_data and typed errors (checks, steps and the token provider: harness.py)


def same_instant(actual: Any, expected_iso: str) -> bool:
    """kiota turns ISO strings in additional_data into datetimes; compare instants, not spellings."""
    if isinstance(actual, str):
        try:
            actual = utc(actual)
        except ValueError:
            return False
    return isinstance(actual, dt.datetime) and actual.tzinfo is not None and actual == utc(expected_iso)


def normalize(value: Any) -> Any:
    """Parsed additional_data back to plain JSON values (datetimes to UTC ISO, UUIDs to str)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


async def expect_odata_error(
    call: Callable[[], Awaitable[Any]],
    error_type: type,
    status: int,
    code: str | tuple[str, ...],
    message: Optional[str] = None,
    message_contains: tuple[str, ...] = (),
) -> Any:
    """Runs `call`, which must raise the SDK's typed Graph error with this status, code and message."""
    try:
        result = await call()
    except error_type as e:
        eq(e.response_status_code, status, "typed error status")
        check(e.error is not None, "typed error has no .error (MainError)")
        if isinstance(code, tuple):
            check(e.error.code in code, f"typed error code: expected one of {code!r}, got {e.error.code!r}")
        else:
            eq(e.error.code, code, "typed error code")
        check(bool(e.error.message), "typed error has an empty message")
        if message is not None:
            eq(e.error.message, message, "typed error message")
        for part in message_contains:
            check(part in e.error.message, f"typed error message {e.error.message!r} does not mention {part!r}")
        inner = e.error.inner_error
        check(inner is not None and bool(inner.request_id), "typed error has no innerError.request-id")
        return e
    except Exception as e:  # a parsing failure or any other exception is a failure of the contract
        raise CheckFailed(f"expected {error_type.__name__} {status} {code}, got {type(e).__name__}: {e}") from e
    raise CheckFailed(f"expected {error_type.__name__} {status} {code}, but the call succeeded: {result!r}")


# --------------------------------------------------------------------------------------------------
# the connector life


class ConnectorLife:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.host = urlparse(self.base).hostname or "127.0.0.1"
        suffix = uuid.uuid4().hex[:10]
        self.conn_id = f"pylife{suffix}"
        self.domain = "contoso.com"
        self.adele_upn = f"adele.{suffix}@{self.domain}"
        self.bob_upn = f"bob.{suffix}@{self.domain}"
        self.adele_id: Optional[str] = None
        self.bob_id: Optional[str] = None
        self.group_id: Optional[str] = None
        self.connection_created = False
        self.http = httpx.AsyncClient(base_url=self.base, timeout=15)
        self.run = Run()

    # --- clients

    async def token(self, user: Optional[str] = None) -> str:
        body = {"user": user} if user else {}
        r = await self.http.post("/_emulator/token", json=body)
        eq(r.status_code, 200, f"POST /_emulator/token {body} status")
        data = r.json()
        eq(data.get("token_type"), "Bearer", "token_type")
        check(isinstance(data.get("access_token"), str) and data["access_token"], "access_token missing")
        return data["access_token"]

    def v1(self, token: str) -> GraphServiceClient:
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(EmulatorTokenProvider(token, self.host)))
        adapter.base_url = f"{self.base}/v1.0"
        return GraphServiceClient(request_adapter=adapter)

    def beta(self, token: str) -> BetaGraphServiceClient:
        adapter = BetaGraphRequestAdapter(
            BaseBearerTokenAuthenticationProvider(EmulatorTokenProvider(token, self.host))
        )
        adapter.base_url = f"{self.base}/beta"
        return BetaGraphServiceClient(request_adapter=adapter)

    def conn(self, client: GraphServiceClient):
        return client.external.connections.by_external_connection_id(self.conn_id)

    # --- data

    def schema(self) -> Schema:
        def p(name: str, type_: PropertyType, labels: Optional[list[Label]] = None, **flags: bool) -> Property_:
            return Property_(name=name, type=type_, labels=labels, is_retrievable=True, **flags)

        return Schema(
            base_type="microsoft.graph.externalItem",
            properties=[
                p("title", PropertyType.String, [Label.Title], is_searchable=True),
                p("ticketUrl", PropertyType.String, [Label.Url]),
                p("status", PropertyType.String, is_queryable=True, is_refinable=True),
                p("priority", PropertyType.Int64, is_queryable=True, is_refinable=True),
                p("score", PropertyType.Double, is_queryable=True),
                p("created", PropertyType.DateTime, [Label.CreatedDateTime], is_queryable=True),
                p("resolved", PropertyType.Boolean, is_queryable=True),
                p("tags", PropertyType.StringCollection, is_searchable=True),
                p("counts", PropertyType.Int64Collection, is_queryable=True),
                p("weights", PropertyType.DoubleCollection, is_queryable=True),
                p("milestones", PropertyType.DateTimeCollection, is_queryable=True),
                p("owner", PropertyType.Principal),
                p("watchers", PropertyType.PrincipalCollection),
            ],
        )

    def full_properties(self, n: int) -> dict[str, Any]:
        """Values for every property type; the wire shape (with the collection annotations) the docs use."""
        return {
            "title": f"Printer ticket {n}",
            "ticketUrl": f"https://tickets.contoso.com/T{n}",
            "status": "open" if n % 2 else "closed",
            "priority": n,
            "score": n + 0.25,
            "created": f"2024-05-0{n}T10:00:00Z",
            "resolved": n % 2 == 0,
            "tags@odata.type": "Collection(String)",
            "tags": ["hardware", f"floor{n}"],
            "counts@odata.type": "Collection(Int64)",
            "counts": [n, 10 * n, 9007199254740993],
            "weights@odata.type": "Collection(Double)",
            "weights": [0.5, 1.75 * n],
            "milestones@odata.type": "Collection(DateTimeOffset)",
            "milestones": ["2024-06-01T08:30:00Z", "2024-07-15T17:45:00Z"],
            "owner": {"upn": self.adele_upn, "entraId": self.adele_id, "externalName": "Adele V."},
            "watchers": {"principals": [{"upn": self.bob_upn, "entraId": self.bob_id}, {"externalId": "ext-42"}]},
        }

    # --- the life

    async def main(self) -> None:
        step = self.run.step
        tokens: dict[str, str] = {}

        async def app_token():
            tokens["app"] = await self.token()
            return "POST /_emulator/token {} (app-only)"

        try:
            await step("mint an app token", app_token)
        except Exception:
            await self.http.aclose()
            raise
        app = self.v1(tokens["app"])
        beta = self.beta(tokens["app"])
        try:
            await self.life(step, app, beta)
        finally:
            await self.cleanup(app)
            await self.http.aclose()

    async def life(self, step, app: GraphServiceClient, beta: BetaGraphServiceClient) -> None:
        conn = self.conn(app)

        # directory: two users and an Entra group holding only adele ----------------------------
        async def create_users():
            for upn, name in ((self.adele_upn, "Adele Vance"), (self.bob_upn, "Bob Builder")):
                user = await app.users.post(
                    User(
                        account_enabled=True,
                        display_name=name,
                        mail_nickname=upn.split("@")[0].replace(".", ""),
                        user_principal_name=upn,
                        password_profile=PasswordProfile(password="Emulat0r!Pass", force_change_password_next_sign_in=False),
                    )
                )
                check(isinstance(user, User), f"users.post returned {type(user).__name__}, not User")
                eq(user.user_principal_name, upn, "created user's userPrincipalName")
                eq(user.display_name, name, "created user's displayName")
                check(bool(user.id), "created user has no id")
                if upn == self.adele_upn:
                    self.adele_id = user.id
                else:
                    self.bob_id = user.id
            got = await app.users.by_user_id(self.bob_id).get()
            eq((got.id, got.user_principal_name), (self.bob_id, self.bob_upn), "GET /users/{bob}")
            return f"adele={self.adele_id} bob={self.bob_id}"

        await step("create users adele and bob (POST /users)", create_users)

        async def create_group():
            group = await app.groups.post(
                Group(
                    display_name="Printer admins",
                    description="Sees the printer fleet tickets",
                    mail_enabled=False,
                    mail_nickname=f"printeradmins{self.conn_id[-6:]}",
                    security_enabled=True,
                )
            )
            check(isinstance(group, Group) and bool(group.id), "groups.post did not return a Group with an id")
            eq(group.display_name, "Printer admins", "created group's displayName")
            self.group_id = group.id
            await app.groups.by_group_id(self.group_id).members.ref.post(
                ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{self.adele_id}")
            )
            members = await app.groups.by_group_id(self.group_id).members.get()
            ids = sorted(m.id for m in members.value)
            eq(ids, [self.adele_id], "group members after members/$ref")
            check(isinstance(members.value[0], User), f"member typed as {type(members.value[0]).__name__}, not User")
            return f"group={self.group_id}"

        await step("create Entra group with adele (POST /groups, members/$ref)", create_group)

        # connection ---------------------------------------------------------------------------
        async def create_connection():
            created = await app.external.connections.post(
                ExternalConnection(id=self.conn_id, name="Python SDK tickets", description="Created by connector_life.py")
            )
            self.connection_created = True
            check(isinstance(created, ExternalConnection), "connections.post did not return ExternalConnection")
            eq(created.id, self.conn_id, "created connection id")
            eq(created.name, "Python SDK tickets", "created connection name")
            eq(created.state, ConnectionState.Draft, "created connection state")
            got = await conn.get()
            eq((got.id, got.description, got.state), (self.conn_id, "Created by connector_life.py", ConnectionState.Draft), "GET connection")
            return self.conn_id

        await step("create connection (POST /external/connections)", create_connection)

        # schema + operation polling -----------------------------------------------------------
        async def register_schema():
            inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
            result = await conn.schema.patch(self.schema(), request_configuration=RequestConfiguration(options=[inspect]))
            check(result is None, f"schema.patch returned {result!r}; an empty 202 body gives None")
            locations = inspect.response_headers.get("location") or set()
            eq(len(locations), 1, "number of Location headers on the schema PATCH")
            location = next(iter(locations))
            prefix = f"{self.base}/v1.0/external/connections/{self.conn_id}/operations/"
            check(location.startswith(prefix), f"Location {location!r} is not absolute under {prefix!r}")
            op_id = location[len(prefix):]
            check(op_id and "/" not in op_id, f"operation id {op_id!r} from Location")
            # Follow the Location through the SDK until the operation completes.
            deadline = time.monotonic() + POLL_LIMIT_SECONDS
            polls = 0
            while True:
                polls += 1
                op = await conn.operations.by_connection_operation_id(op_id).get()
                eq(op.id, op_id, "operation id")
                check(op.status is not None, "operation status did not parse (None): must be inprogress/completed/failed")
                check(op.status != ConnectionOperationStatus.Failed, f"schema operation failed: {op.error}")
                if op.status == ConnectionOperationStatus.Completed:
                    break
                eq(op.status, ConnectionOperationStatus.Inprogress, "operation status while pending")
                check(time.monotonic() < deadline, f"operation still {op.status} after {POLL_LIMIT_SECONDS}s")
                await asyncio.sleep(0.2)
            check(op.error is None, f"completed operation carries an error: {op.error}")
            got = await conn.get()
            eq(got.state, ConnectionState.Ready, "connection state after the schema completed")
            return f"operation {op_id} completed after {polls} poll(s)"

        await step("PATCH schema, follow Location until completed", register_schema)

        def prefer_unknown_enum_members() -> RequestConfiguration:
            config = RequestConfiguration()
            config.headers.add("Prefer", "include-unknown-enum-members")
            return config

        async def read_schema():
            # principal/principalCollection come after unknownFutureValue in the propertyType enum (evolvable
            # members): Graph only spells them out for clients that send Prefer: include-unknown-enum-members.
            plain = await conn.schema.get()
            plain_types = {p.name: p.type for p in plain.properties}
            eq((plain_types["owner"], plain_types["watchers"]),
               (PropertyType.UnknownFutureValue, PropertyType.UnknownFutureValue),
               "principal types without Prefer: include-unknown-enum-members")
            eq(plain_types["milestones"], PropertyType.DateTimeCollection, "milestones type without Prefer")
            schema = await conn.schema.get(request_configuration=prefer_unknown_enum_members())
            eq(schema.base_type, "microsoft.graph.externalItem", "schema baseType")
            got = {p.name: p for p in schema.properties}
            want = {p.name: p for p in self.schema().properties}
            eq(sorted(got), sorted(want), "schema property names")
            for name, w in want.items():
                g = got[name]
                eq(g.type, w.type, f"schema property {name} type")
                eq(bool(g.is_searchable), bool(w.is_searchable), f"schema property {name} isSearchable")
                eq(bool(g.is_queryable), bool(w.is_queryable), f"schema property {name} isQueryable")
                eq(bool(g.is_refinable), bool(w.is_refinable), f"schema property {name} isRefinable")
                eq(g.is_retrievable, True, f"schema property {name} isRetrievable")
                eq(g.labels or [], w.labels or [], f"schema property {name} labels")
            return f"{len(got)} properties, every propertyType; principal types only with Prefer"

        await step("GET schema round-trips every property type", read_schema)

        # external groups ----------------------------------------------------------------------
        async def external_groups():
            for gid, name in (("escalation", "Escalation team"), ("oncall", "On-call rota")):
                g = await conn.groups.post(ExternalGroup(id=gid, display_name=name, description=f"{name} (python)"))
                check(isinstance(g, ExternalGroup), "groups.post did not return ExternalGroup")
                eq((g.id, g.display_name), (gid, name), "created external group")
            # escalation -> oncall (external group) -> bob (user)
            m1 = await conn.groups.by_external_group_id("escalation").members.post(
                Identity(id="oncall", type=IdentityType.ExternalGroup)
            )
            eq((m1.id, m1.type), ("oncall", IdentityType.ExternalGroup), "external group member (group)")
            m2 = await conn.groups.by_external_group_id("oncall").members.post(Identity(id=self.bob_id, type=IdentityType.User))
            eq((m2.id, m2.type), (self.bob_id, IdentityType.User), "external group member (user)")
            got = await conn.groups.by_external_group_id("escalation").get()
            eq((got.id, got.display_name, got.description), ("escalation", "Escalation team", "Escalation team (python)"), "GET external group")
            return "escalation > oncall > bob"

        await step("create external groups and members", external_groups)

        # items --------------------------------------------------------------------------------
        everyone = Acl(type=AclType.Everyone, value="everyone", access_type=AccessType.Grant)
        self.items = {
            # seen by both users
            "T1": [everyone],
            # adele only: granted to the Entra group she is in
            "T2": [Acl(type=AclType.Group, value=self.group_id, access_type=AccessType.Grant)],
            # bob only: granted to an external group he reaches through a nested external group
            "T3": [Acl(type=AclType.ExternalGroup, value="escalation", access_type=AccessType.Grant)],
            # bob only: everyone but adele (deny wins)
            "T4": [everyone, Acl(type=AclType.User, value=self.adele_id, access_type=AccessType.Deny)],
        }

        async def put_items():
            for n, (item_id, acl) in enumerate(self.items.items(), start=1):
                item = await conn.items.by_external_item_id(item_id).put(
                    ExternalItem(
                        id=item_id,
                        acl=acl,
                        properties=Properties(additional_data=self.full_properties(n)),
                        content=ExternalItemContent(
                            type=ExternalItemContentType.Text, value=f"The printer on floor {n} jams on duplex jobs."
                        ),
                    )
                )
                check(isinstance(item, ExternalItem), f"PUT {item_id} returned {type(item).__name__}")
                eq(item.id, item_id, f"PUT {item_id} id")
            # one item that does not match the query, visible to everyone
            other = await conn.items.by_external_item_id("T5").put(
                ExternalItem(
                    acl=[everyone],
                    properties=Properties(additional_data={"title": "Scanner ticket", "priority": 9}),
                    content=ExternalItemContent(type=ExternalItemContentType.Html, value="<p>The <b>scanner</b> is slow.</p>"),
                )
            )
            eq(other.id, "T5", "PUT T5 id")
            return "T1..T5 (T1-T4: 13 properties covering all 11 property types)"

        await step("PUT items with every property type", put_items)

        async def get_item_roundtrip():
            for n, item_id in enumerate(self.items, start=1):
                item = await conn.items.by_external_item_id(item_id).get()
                check(isinstance(item, ExternalItem), f"GET {item_id} is {type(item).__name__}")
                eq(item.id, item_id, "GET item id")
                sent = self.full_properties(n)
                props = item.properties.additional_data if item.properties else {}
                for name, value in sent.items():
                    if "@" in name:
                        continue
                    check(name in props, f"GET {item_id}: property {name} missing")
                    got = props[name]
                    if name == "created":
                        check(same_instant(got, value), f"GET {item_id} created: {got!r} != {value}")
                    elif name in ("score", "weights"):
                        eq([float(x) for x in (got if isinstance(got, list) else [got])],
                           [float(x) for x in (value if isinstance(value, list) else [value])], f"GET {item_id} {name}")
                    elif name == "resolved":
                        check(got is value, f"GET {item_id} resolved: {got!r} is not the boolean {value!r}")
                    else:
                        eq(normalize(got), value, f"GET {item_id} {name}")
                eq(type(props["priority"]), int, f"GET {item_id} priority JSON type")
                eq(props["counts"][2], 9007199254740993, f"GET {item_id} int64 beyond 2^53")
                eq(len(item.acl), len(self.items[item_id]), f"GET {item_id} acl length")
                for got_acl, want_acl in zip(item.acl, self.items[item_id]):
                    eq((got_acl.type, got_acl.value, got_acl.access_type),
                       (want_acl.type, want_acl.value, want_acl.access_type), f"GET {item_id} acl entry")
                eq((item.content.type, item.content.value),
                   (ExternalItemContentType.Text, f"The printer on floor {n} jams on duplex jobs."), f"GET {item_id} content")
            return "properties, ACLs and content equal what was sent"

        await step("GET items back: every value round-trips", get_item_roundtrip)

        # items through JSON batching: msgraph-core's BatchRequestContent + client.batch --------
        self.batched = [f"B{n}" for n in range(1, 8)]

        def batched_item(n: int, item_id: str) -> ExternalItem:
            return ExternalItem(
                id=item_id,
                acl=[everyone],
                properties=Properties(additional_data={"title": f"Toner batch {n}", "status": "open", "priority": 100 + n}),
                content=ExternalItemContent(
                    type=ExternalItemContentType.Text, value=f"Cartridge order {n}, sent in a JSON batch."
                ),
            )

        version_base = f"{self.base}/v1.0"

        def batch_item(request_id: str, info) -> BatchRequestItem:
            item = BatchRequestItem(request_information=info, id=request_id)
            # msgraph-core 1.5.2 copies the request's absolute URL into the batch once the request builder
            # has sent anything (msgraph-sdk-python#1015, msgraph-sdk-python-core#1116), and Graph does not
            # run absolute batch URLs; connectors make them relative, as #1015's workaround does.
            check(item.url.startswith(version_base), f"the SDK's batch url {item.url!r} (expected absolute)")
            item.url = item.url[len(version_base):]
            return item

        async def batch_items():
            content = BatchRequestContent()
            for n, item_id in enumerate(self.batched, start=1):
                # The SDK's own request builder makes each sub-request (method, url, headers, JSON body).
                info = conn.items.by_external_item_id(item_id).to_put_request_information(batched_item(n, item_id))
                content.add_request(f"put-{item_id}", batch_item(f"put-{item_id}", info))
            # One item the schema refuses: it gets its own 400, the others are stored.
            refused = conn.items.by_external_item_id("BX").to_put_request_information(
                ExternalItem(acl=[everyone], properties=Properties(additional_data={"priority": "high"}))
            )
            content.add_request("put-BX", batch_item("put-BX", refused))
            # One sub-request left with the SDK's absolute URL: answered 400 on its own, as Graph does.
            absolute = conn.items.by_external_item_id("BY").to_put_request_information(batched_item(99, "BY"))
            content.add_request("put-BY", BatchRequestItem(request_information=absolute, id="put-BY"))
            result = await app.batch.post(batch_request_content=content)
            check(isinstance(result, BatchResponseContent), f"batch.post returned {type(result).__name__}")
            want = {f"put-{item_id}": 200 for item_id in self.batched}
            want["put-BX"] = 400
            want["put-BY"] = 400
            eq(result.get_response_status_codes(), want, "batch sub-response statuses")
            for request_id, response in (result.responses or {}).items():
                content_type = response.content_type or ""
                check(content_type.startswith("application/json"), f"{request_id}: Content-Type {content_type!r}")
            return f"{len(self.batched)} PUTs answered 200, a schema mismatch and an absolute url 400, in one POST /v1.0/$batch"

        await step("PUT items through the SDK's batch support (BatchRequestContent, client.batch)", batch_items)

        async def batch_items_readable():
            for n, item_id in enumerate(self.batched, start=1):
                item = await conn.items.by_external_item_id(item_id).get()
                check(isinstance(item, ExternalItem), f"GET {item_id} is {type(item).__name__}")
                props = item.properties.additional_data if item.properties else {}
                eq((item.id, props.get("title"), props.get("priority")), (item_id, f"Toner batch {n}", 100 + n),
                   f"GET batched {item_id}")
            for refused_id in ("BX", "BY"):
                await expect_odata_error(
                    lambda: conn.items.by_external_item_id(refused_id).get(), ODataError, 404, "ItemNotFound"
                )
            return f"{', '.join(self.batched)} readable; BX and BY were not stored"

        await step("GET the batched items back", batch_items_readable)

        async def add_activities():
            res = await conn.items.by_external_item_id("T1").microsoft_graph_external_connectors_add_activities.post(
                AddActivitiesPostRequestBody(
                    activities=[
                        ExternalActivity(
                            odata_type="#microsoft.graph.externalConnectors.externalActivity",
                            type=ExternalActivityType.Created,
                            start_date_time=utc("2024-05-01T10:00:00Z"),
                            performed_by=Identity(id=self.adele_id, type=IdentityType.User),
                        ),
                        ExternalActivity(
                            type=ExternalActivityType.Modified,
                            start_date_time=utc("2024-05-02T11:30:00Z"),
                            performed_by=Identity(id=self.bob_id, type=IdentityType.User),
                        ),
                    ]
                )
            )
            check(res is not None and res.value is not None, "addActivities returned no value[]")
            eq(len(res.value), 2, "addActivities result count")
            got = [(r.type, r.start_date_time, r.performed_by.id, r.performed_by.type, r.error) for r in res.value]
            eq(got, [
                (ExternalActivityType.Created, utc("2024-05-01T10:00:00Z"), self.adele_id, IdentityType.User, None),
                (ExternalActivityType.Modified, utc("2024-05-02T11:30:00Z"), self.bob_id, IdentityType.User, None),
            ], "addActivities results")
            return "created + modified, no per-activity error"

        await step("add activities (microsoft.graph.externalConnectors.addActivities)", add_activities)

        # beta SDK reads the same connection ---------------------------------------------------
        async def beta_reads():
            bconn = beta.external.connections.by_external_connection_id(self.conn_id)
            got = await bconn.get()
            eq((got.id, got.state), (self.conn_id, BetaConnectionState.Ready), "beta GET connection")
            schema = await bconn.schema.get(request_configuration=prefer_unknown_enum_members())
            types = {p.name: p.type for p in schema.properties}
            eq(types["milestones"], BetaPropertyType.DateTimeCollection, "beta schema milestones type")
            eq(types["watchers"], BetaPropertyType.PrincipalCollection, "beta schema watchers type")
            item = await bconn.items.by_external_item_id("T1").get()
            check(isinstance(item, BetaExternalItem), "beta GET item is not ExternalItem")
            eq(item.properties.additional_data.get("title"), "Printer ticket 1", "beta GET item title")
            quota = await bconn.quota.get()
            check(quota is not None and isinstance(quota.items_remaining, int), f"beta quota: {quota!r}")
            check(quota.items_remaining > 0, f"beta quota itemsRemaining {quota.items_remaining}")
            return f"state ready, quota itemsRemaining={quota.items_remaining}"

        await step("beta SDK: GET connection, schema, item, quota", beta_reads)

        # search as two users -------------------------------------------------------------------
        users: dict[str, GraphServiceClient] = {}

        async def user_tokens():
            # Each user's SDK client sends that user's token through its own access-token provider.
            users["adele"] = self.v1(await self.token(self.adele_upn))
            users["bob"] = self.v1(await self.token(self.bob_upn))
            r = await self.http.post("/_emulator/token", json={"user": f"ghost.{self.adele_upn}"})
            eq(r.status_code, 404, "POST /_emulator/token for a user not in the directory")
            return "POST /_emulator/token {user: adele|bob}; unknown user -> 404"

        await step("mint user tokens for adele and bob", user_tokens)
        adele, bob = users["adele"], users["bob"]

        def search_body(query: str, size: int = 25, from_: int = 0) -> QueryPostRequestBody:
            return QueryPostRequestBody(
                requests=[
                    SearchRequest(
                        entity_types=[EntityType.ExternalItem],
                        content_sources=[f"/external/connections/{self.conn_id}"],
                        query=SearchQuery(query_string=query),
                        from_=from_,
                        size=size,
                        fields=["title", "priority", "tags", "created"],
                    )
                ]
            )

        async def search(client: GraphServiceClient, query: str, size: int = 25, from_: int = 0):
            res = await client.search.query.post(search_body(query, size, from_))
            check(res is not None and res.value is not None and len(res.value) == 1, f"search response value: {res!r}")
            containers = res.value[0].hits_containers
            check(containers is not None and len(containers) == 1, f"hitsContainers: {containers!r}")
            return containers[0]

        def check_hits(who: str, container, want_ids: list[str], total: int, more: bool) -> None:
            hits = container.hits or []
            ids = sorted(h.hit_id for h in hits)
            eq(ids, sorted(want_ids), f"{who}'s hit ids")
            eq(container.total, total, f"{who}'s total")
            eq(container.more_results_available, more, f"{who}'s moreResultsAvailable")
            for h in hits:
                check(isinstance(h.resource, ExternalItem),
                      f"{who}'s hit {h.hit_id} resource is {type(h.resource).__name__}, not a typed ExternalItem")
                n = int(h.hit_id[1:])
                props = h.resource.properties.additional_data
                eq(props.get("title"), f"Printer ticket {n}", f"{who}'s hit {h.hit_id} title")
                eq(props.get("priority"), n, f"{who}'s hit {h.hit_id} priority")
                eq(props.get("tags"), ["hardware", f"floor{n}"], f"{who}'s hit {h.hit_id} tags")
                check(same_instant(props.get("created"), f"2024-05-0{n}T10:00:00Z"), f"{who}'s hit {h.hit_id} created")
                check(h.rank is not None and h.rank >= 1, f"{who}'s hit {h.hit_id} rank {h.rank!r}")
                eq(h.content_source, self.conn_id, f"{who}'s hit {h.hit_id} contentSource")

        async def search_adele():
            c = await search(adele, "printer")
            check_hits("adele", c, ["T1", "T2"], 2, False)
            return "T1 T2, total 2"

        async def search_bob():
            c = await search(bob, "printer")
            check_hits("bob", c, ["T1", "T3", "T4"], 3, False)
            return "T1 T3 T4, total 3"

        async def search_paging_and_kql():
            c = await search(bob, "printer", size=1)
            eq(len(c.hits or []), 1, "bob's page of size 1")
            eq((c.total, c.more_results_available), (3, True), "bob's total/moreResultsAvailable on a page of 1")
            c = await search(adele, "printer status:open")
            check_hits("adele (status:open)", c, ["T1"], 1, False)
            c = await search(bob, "scanner")
            eq([h.hit_id for h in c.hits or []], ["T5"], "bob's hits for 'scanner'")
            return "size=1 -> total 3, more=true; status:open -> T1; scanner -> T5"

        await step("search as adele (Entra group grant, user deny)", search_adele)
        await step("search as bob (nested external group grant)", search_bob)
        await step("search paging and a KQL property restriction", search_paging_and_kql)

        async def search_batched():
            c = await search(bob, "cartridge")
            eq(sorted(h.hit_id for h in c.hits or []), sorted(self.batched), "bob's hits for 'cartridge' (the batched items)")
            eq((c.total, c.more_results_available), (len(self.batched), False), "total for the batched items")
            for h in c.hits or []:
                check(isinstance(h.resource, ExternalItem), f"hit {h.hit_id} is not a typed ExternalItem")
                eq(h.resource.properties.additional_data.get("title"), f"Toner batch {h.hit_id[1:]}", f"hit {h.hit_id} title")
            return f"cartridge -> {len(self.batched)} batched items"

        await step("search finds the items ingested through $batch", search_batched)

        async def membership_change():
            # Take adele out of the Entra group: T2 disappears from her very next search.
            await app.groups.by_group_id(self.group_id).members.by_directory_object_id(self.adele_id).ref.delete()
            c = await search(adele, "printer")
            check_hits("adele (after leaving the group)", c, ["T1"], 1, False)
            return "adele now sees T1 only"

        await step("remove adele from the group; her next search loses T2", membership_change)

        # typed errors ---------------------------------------------------------------------------
        async def refused_app_search():
            e = await expect_odata_error(
                lambda: app.search.query.post(search_body("printer")), ODataError, 403, "Forbidden",
                message_contains=("delegated",),
            )
            return f"{e.error.code}: {e.error.message}"

        await step("app-only search is refused as a typed ODataError", refused_app_search)

        async def bad_input_errors():
            e1 = await expect_odata_error(
                lambda: app.external.connections.post(ExternalConnection(id="py-bad", name="Bad id")),
                ODataError, 400, "InvalidRequest",
                message="Connection id 'py-bad' may contain only letters and digits, not '-'.",
            )
            e2 = await expect_odata_error(
                lambda: conn.items.by_external_item_id("T9").put(
                    ExternalItem(acl=[everyone], properties=Properties(additional_data={"priority": "high"}))
                ),
                ODataError, 400, "BadRequest",
                message_contains=("Property priority in payload has a value that does not match schema.",),
            )
            # A property the schema does not declare: Graph's exact code here is undocumented (spec/items.md
            # recommends BadRequest); require a 400 typed error naming the property, with either 400 code.
            e3 = await expect_odata_error(
                lambda: conn.items.by_external_item_id("T9").put(
                    ExternalItem(acl=[everyone], properties=Properties(additional_data={"nosuchprop": "x"}))
                ),
                ODataError, 400, ("BadRequest", "InvalidRequest"), message_contains=("nosuchprop",),
            )
            e4 = await expect_odata_error(
                lambda: beta.external.connections.by_external_connection_id(self.conn_id).items.by_external_item_id("nope").get(),
                BetaODataError, 404, "ItemNotFound", message="The requested resource does not exist.",
            )
            return "; ".join(f"{e.response_status_code} {e.error.code}" for e in (e1, e2, e3, e4))

        await step("bad input surfaces as typed ODataError (v1.0 and beta)", bad_input_errors)

        # deletes --------------------------------------------------------------------------------
        async def delete_item():
            await conn.items.by_external_item_id("T1").delete()
            await expect_odata_error(lambda: conn.items.by_external_item_id("T1").get(), ODataError, 404, "ItemNotFound")
            c = await search(bob, "printer")
            check_hits("bob (after deleting T1)", c, ["T3", "T4"], 2, False)
            return "GET 404, bob's next search has T3 T4"

        await step("delete an item", delete_item)

        async def delete_connection():
            await conn.delete()
            self.connection_created = False
            e = await expect_odata_error(
                lambda: conn.get(), ODataError, 404, "ItemNotFound", message="The requested resource does not exist."
            )
            inner = e.error.inner_error.additional_data
            eq((inner.get("code"), inner.get("source")), ("ResourceNotFound", "Connection"), "404 innerError code/source")
            listed = await app.external.connections.get()
            check(self.conn_id not in [c.id for c in listed.value or []], "deleted connection still listed")
            return "GET answers a typed 404"

        await step("delete the connection", delete_connection)

    async def cleanup(self, app: GraphServiceClient) -> None:
        problems = []
        if self.connection_created:
            try:
                await self.conn(app).delete()
            except Exception as e:  # noqa: BLE001 - cleanup reports, never masks the real failure
                problems.append(f"connection: {e}")
        if self.group_id:
            try:
                await app.groups.by_group_id(self.group_id).delete()
            except Exception as e:  # noqa: BLE001
                problems.append(f"group: {e}")
        for uid in (self.adele_id, self.bob_id):
            if uid:
                try:
                    await app.users.by_user_id(uid).delete()
                except Exception as e:  # noqa: BLE001
                    problems.append(f"user {uid}: {e}")
        print_cleanup(problems)


def main() -> int:
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GCEMU_URL", "")
    if not base or len(sys.argv) > 2:
        print("usage: connector_life.py BASE_URL   (or set GCEMU_URL)", file=sys.stderr)
        return 2
    life = ConnectorLife(base)
    return run_to_summary(life.main, life.run)


if __name__ == "__main__":
    sys.exit(main())

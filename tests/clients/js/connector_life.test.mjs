// A connector's whole life, driven through the official JS client @microsoft/microsoft-graph-client
// against a running gcemu: connection, schema (following Location until `completed`), items with
// every property type, items sent through JSON batching (BatchRequestContent, POST /$batch), activities,
// directory users and groups, external groups, ACL-trimmed search as two different users, a refused
// request read as GraphError, and deleting the connection.
//
// GCEMU_URL is the emulator's root, for example http://127.0.0.1:5080 (a trailing /v1.0 is accepted).
//
// Over plain http the client's AuthenticationHandler sends no Authorization header: it only adds one
// for https URLs (graph.microsoft.com or a custom host) and deletes any other. So the clients built
// here add the bearer token themselves in a small middleware placed after that handler, which is the
// documented way to extend the client's middleware chain (Client.initWithMiddleware).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  AuthenticationHandler,
  BatchRequestContent,
  BatchResponseContent,
  Client,
  GraphError,
  HTTPMessageHandler,
  RedirectHandler,
  RedirectHandlerOptions,
  ResponseType,
  RetryHandler,
  RetryHandlerOptions,
  TelemetryHandler,
} from "@microsoft/microsoft-graph-client";

const rawUrl = process.env.GCEMU_URL;
if (!rawUrl) {
  throw new Error("GCEMU_URL is not set (the emulator's root, for example http://127.0.0.1:5080)");
}
const root = new URL(rawUrl.replace(/\/+$/, "").replace(/\/v1\.0$/, "") + "/");
const GRAPH_VERSION = "v1.0";

// Unique per run, so runs can share one emulator (CI runs the Python clients against the same one).
const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, "0")}`;
const connectionId = `jslife${runId}`;
const adeleUpn = `adele.${runId}@contoso.com`;
const bobUpn = `bob.${runId}@contoso.com`;

// ---------------------------------------------------------------------------------------------
// Clients

/** Sets `Authorization: Bearer <token>` on every request, whatever the URL's scheme. */
class BearerHeaderHandler {
  constructor(authProvider) {
    this.authProvider = authProvider;
  }
  async execute(context) {
    const token = await this.authProvider.getAccessToken();
    const value = `Bearer ${token}`;
    context.options ??= {};
    const headers = context.options.headers;
    if (typeof Headers !== "undefined" && headers instanceof Headers) {
      headers.set("Authorization", value);
    } else if (Array.isArray(headers)) {
      context.options.headers = [...headers.filter(([k]) => k.toLowerCase() !== "authorization"), ["Authorization", value]];
    } else {
      context.options.headers = { ...(headers ?? {}), Authorization: value };
    }
    return this.nextMiddleware.execute(context);
  }
  setNext(next) {
    this.nextMiddleware = next;
  }
}

/** A graph client that sends `token` as the bearer token, over http as over https. */
function clientWithToken(token) {
  const authProvider = { getAccessToken: async () => token };
  return Client.initWithMiddleware({
    baseUrl: root.href,
    defaultVersion: GRAPH_VERSION,
    customHosts: new Set([root.hostname]),
    // The client's default chain, plus the bearer header right before the request leaves.
    middleware: [
      new AuthenticationHandler(authProvider),
      new RetryHandler(new RetryHandlerOptions()),
      new RedirectHandler(new RedirectHandlerOptions()),
      new TelemetryHandler(),
      new BearerHeaderHandler(authProvider),
      new HTTPMessageHandler(),
    ],
  });
}

/** The client exactly as clients.md's recipe builds it: over http it sends no Authorization. */
function plainClient() {
  return Client.init({
    baseUrl: root.href,
    defaultVersion: GRAPH_VERSION,
    customHosts: new Set([root.hostname]),
    authProvider: (done) => done(null, "unused-over-http"),
  });
}

/** POST /_emulator/token (control plane, not Graph: plain fetch). */
async function emulatorToken(body) {
  const response = await fetch(new URL("_emulator/token", root), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `POST /_emulator/token ${JSON.stringify(body)} answered ${response.status}: ${text}`);
  const json = JSON.parse(text);
  assert.equal(typeof json.access_token, "string");
  assert.ok(json.access_token.length > 0);
  assert.equal(json.token_type, "Bearer");
  assert.equal(typeof json.expires_in, "number");
  return json.access_token;
}

/** Runs `promise`, expects it to reject with a GraphError, and returns that error. */
async function graphErrorOf(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GraphError, `expected a GraphError, got ${error?.stack ?? error}`);
    return error;
  }
  assert.fail("the request succeeded but should have been refused");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const sorted = (values) => [...values].sort();

// ---------------------------------------------------------------------------------------------
// What the connector sends

const schema = {
  baseType: "microsoft.graph.externalItem",
  properties: [
    // String booleans, as the Graph docs examples (and connectors copied from them) send.
    { name: "title", type: "String", isSearchable: "true", isRetrievable: "true", labels: ["title"] },
    { name: "status", type: "String", isQueryable: true, isRetrievable: true, isRefinable: true },
    { name: "priority", type: "Int64", isQueryable: true, isRetrievable: true, isRefinable: true },
    { name: "score", type: "Double", isQueryable: true, isRetrievable: true },
    { name: "createdAt", type: "DateTime", isQueryable: true, isRetrievable: true, isRefinable: true, labels: ["createdDateTime"] },
    { name: "isEscalated", type: "Boolean", isQueryable: true, isRetrievable: true },
    { name: "tags", type: "StringCollection", isSearchable: true, isRetrievable: true },
    { name: "relatedIds", type: "Int64Collection", isQueryable: true, isRetrievable: true },
    { name: "ratings", type: "DoubleCollection", isRetrievable: true },
    { name: "reviewDates", type: "DateTimeCollection", isRetrievable: true },
  ],
};

const expectedSchemaTypes = {
  title: "string",
  status: "string",
  priority: "int64",
  score: "double",
  createdAt: "dateTime",
  isEscalated: "boolean",
  tags: "stringCollection",
  relatedIds: "int64Collection",
  ratings: "doubleCollection",
  reviewDates: "dateTimeCollection",
};

function itemProperties(n, status, title) {
  return {
    title,
    status,
    priority: n,
    score: n + 0.25,
    createdAt: `2024-05-0${n}T10:00:00Z`,
    isEscalated: n % 2 === 0,
    "tags@odata.type": "Collection(String)",
    tags: ["hardware", `floor${n}`],
    "relatedIds@odata.type": "Collection(Int64)",
    relatedIds: [1000 + n, 2000 + n],
    "ratings@odata.type": "Collection(Double)",
    ratings: [n + 0.5, 1.5],
    "reviewDates@odata.type": "Collection(DateTimeOffset)",
    reviewDates: [`2024-06-0${n}T08:30:00Z`, "2024-07-01T00:00:00Z"],
  };
}

/** Compares stored properties with what was sent (annotations dropped, dates compared as instants). */
function assertPropertiesRoundTrip(actual, sent, context) {
  const expected = Object.fromEntries(Object.entries(sent).filter(([k]) => !k.includes("@odata.type")));
  // OData instance annotations (`tags@odata.type`) may be echoed; the properties themselves must match.
  const actualNames = Object.keys(actual).filter((k) => !k.includes("@"));
  assert.deepEqual(sorted(actualNames), sorted(Object.keys(expected)), `${context}: property names`);
  for (const [key, value] of Object.entries(expected)) {
    const got = actual[key];
    if (key === "createdAt") {
      assert.equal(typeof got, "string", `${context}: ${key}`);
      assert.equal(Date.parse(got), Date.parse(value), `${context}: ${key} is ${got}, sent ${value}`);
    } else if (key === "reviewDates") {
      assert.ok(Array.isArray(got), `${context}: ${key} is ${JSON.stringify(got)}`);
      assert.deepEqual(got.map(Date.parse), value.map(Date.parse), `${context}: ${key} is ${JSON.stringify(got)}`);
    } else {
      assert.deepEqual(got, value, `${context}: ${key}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The life

describe(`a connector's life through @microsoft/microsoft-graph-client (connection ${connectionId})`, () => {
  let connector; // the connector's own client, with an app token
  const created = { connection: false, userIds: [], groupIds: [] };
  let adele;
  let bob;
  let helpdeskGroup;
  let items; // itemId -> { acl, properties, content }
  let broken = false;

  // Each step skips once an earlier one failed, so the first failure is the one reported.
  const step = (name, fn) =>
    it(name, { timeout: 30_000 }, async (t) => {
      if (broken) {
        t.skip("an earlier step failed");
        return;
      }
      try {
        await fn(t);
      } catch (error) {
        broken = true;
        throw error;
      }
    });

  before(async () => {
    const health = await fetch(new URL("_emulator/health", root));
    assert.equal(health.status, 200, `gcemu at ${root.href} is not healthy`);
    assert.deepEqual(await health.json(), { status: "ok" });
    const appToken = await emulatorToken({
      roles: ["ExternalConnection.ReadWrite.OwnedBy", "ExternalItem.ReadWrite.OwnedBy", "User.ReadWrite.All", "Group.ReadWrite.All"],
    });
    connector = clientWithToken(appToken);
  });

  after(async () => {
    // Clean up whatever this run created, even when a step failed. Missing resources are fine.
    const problems = [];
    const remove = async (path) => {
      try {
        await connector.api(path).delete();
      } catch (error) {
        if (!(error instanceof GraphError && error.statusCode === 404)) {
          problems.push(`DELETE ${path}: ${error?.statusCode ?? ""} ${error?.message ?? error}`);
        }
      }
    };
    if (connector) {
      if (created.connection) await remove(`/external/connections/${connectionId}`);
      for (const id of created.groupIds) await remove(`/groups/${id}`);
      for (const id of created.userIds) await remove(`/users/${id}`);
    }
    if (problems.length > 0) throw new Error(`cleanup failed:\n${problems.join("\n")}`);
  });

  step("creates the connection (201, draft, the calling app authorized)", async () => {
    const body = await connector.api("/external/connections").post({
      id: connectionId,
      name: "JS client life",
      description: "Created by tests/clients/js through @microsoft/microsoft-graph-client",
    });
    created.connection = true;
    assert.equal(body.id, connectionId);
    assert.equal(body.name, "JS client life");
    assert.equal(body.description, "Created by tests/clients/js through @microsoft/microsoft-graph-client");
    assert.equal(body.state, "draft");

    const read = await connector.api(`/external/connections/${connectionId}`).select(["id", "state"]).get();
    assert.equal(read.id, connectionId);
    assert.equal(read.state, "draft");

    const list = await connector.api("/external/connections").get();
    assert.ok(Array.isArray(list.value));
    assert.ok(list.value.some((c) => c.id === connectionId), "the new connection is listed");
  });

  step("patches the schema and follows Location until the operation is completed", async () => {
    const raw = await connector
      .api(`/external/connections/${connectionId}/schema`)
      .responseType(ResponseType.RAW)
      .patch(schema);
    assert.equal(raw.status, 202);
    assert.equal(await raw.text(), "", "a 202 on the schema has an empty body");

    const location = raw.headers.get("location");
    assert.ok(location, "the 202 carries a Location header");
    const operationUrl = new URL(location); // throws on a relative Location
    assert.equal(operationUrl.origin, root.origin, `Location ${location} points at this emulator`);
    const prefix = `/${GRAPH_VERSION}/external/connections/${connectionId}/operations/`;
    assert.ok(operationUrl.pathname.startsWith(prefix), `Location ${location} starts with ${prefix}`);

    // graph-client 3.x mangles absolute http:// URLs passed to api() (it only strips https://),
    // so the Location is followed by its path below the version.
    const operationPath = operationUrl.pathname.slice(GRAPH_VERSION.length + 1) + operationUrl.search;
    let operation;
    for (let attempt = 0; attempt < 100; attempt++) {
      operation = await connector.api(operationPath).get();
      assert.ok(["inprogress", "completed"].includes(operation.status), `operation status ${JSON.stringify(operation)}`);
      if (operation.status === "completed") break;
      await sleep(100);
    }
    assert.equal(operation.status, "completed");
    assert.equal(operation.id, decodeURIComponent(operationUrl.pathname.slice(prefix.length)));
    assert.equal(operation.error ?? null, null);

    const connection = await connector.api(`/external/connections/${connectionId}`).get();
    assert.equal(connection.state, "ready");

    const stored = await connector.api(`/external/connections/${connectionId}/schema`).get();
    assert.equal(stored.baseType, "microsoft.graph.externalItem");
    const byName = Object.fromEntries(stored.properties.map((p) => [p.name, p]));
    assert.deepEqual(sorted(Object.keys(byName)), sorted(Object.keys(expectedSchemaTypes)));
    for (const [name, type] of Object.entries(expectedSchemaTypes)) {
      assert.equal(byName[name].type, type, `schema type of ${name}`);
    }
    assert.equal(byName.title.isSearchable, true, "the string \"true\" is stored as a JSON boolean");
    assert.equal(byName.title.isRetrievable, true);
    assert.deepEqual(byName.title.labels, ["title"]);
    assert.equal(byName.status.isRefinable, true);
    assert.equal(byName.createdAt.isQueryable, true);
    assert.deepEqual(byName.createdAt.labels, ["createdDateTime"]);
  });

  step("creates directory users and a security group with adele as a member", async () => {
    adele = await connector.api("/users").post({
      accountEnabled: true,
      displayName: "Adele Vance",
      mailNickname: `adele${runId}`,
      userPrincipalName: adeleUpn,
      passwordProfile: { forceChangePasswordNextSignIn: false, password: "xWwvJ]6NMw+bWH-d" },
    });
    created.userIds.push(adele.id);
    bob = await connector.api("/users").post({
      accountEnabled: true,
      displayName: "Bob Kelly",
      mailNickname: `bob${runId}`,
      userPrincipalName: bobUpn,
      passwordProfile: { forceChangePasswordNextSignIn: false, password: "xWwvJ]6NMw+bWH-d" },
    });
    created.userIds.push(bob.id);
    for (const [user, upn, name] of [[adele, adeleUpn, "Adele Vance"], [bob, bobUpn, "Bob Kelly"]]) {
      assert.equal(typeof user.id, "string");
      assert.ok(user.id.length > 0);
      assert.equal(user.userPrincipalName, upn);
      assert.equal(user.displayName, name);
    }
    assert.notEqual(adele.id, bob.id);

    const byUpn = await connector.api(`/users/${adeleUpn}`).get();
    assert.equal(byUpn.id, adele.id);

    helpdeskGroup = await connector.api("/groups").post({
      displayName: `Helpdesk ${runId}`,
      description: "Entra group granted on helpdesk items",
      mailEnabled: false,
      mailNickname: `helpdesk${runId}`,
      securityEnabled: true,
    });
    created.groupIds.push(helpdeskGroup.id);
    assert.equal(typeof helpdeskGroup.id, "string");
    assert.equal(helpdeskGroup.displayName, `Helpdesk ${runId}`);

    const added = await connector
      .api(`/groups/${helpdeskGroup.id}/members/$ref`)
      .responseType(ResponseType.RAW)
      .post({ "@odata.id": `https://graph.microsoft.com/v1.0/directoryObjects/${adele.id}` });
    assert.equal(added.status, 204);

    const members = await connector.api(`/groups/${helpdeskGroup.id}/members`).get();
    assert.deepEqual(members.value.map((m) => m.id), [adele.id]);
  });

  step("creates an external group with bob as a member", async () => {
    const group = await connector.api(`/external/connections/${connectionId}/groups`).post({
      id: "escalations",
      displayName: "Escalations",
      description: "People who handle escalated tickets",
    });
    assert.equal(group.id, "escalations");
    assert.equal(group.displayName, "Escalations");
    assert.equal(group.description, "People who handle escalated tickets");

    const member = await connector
      .api(`/external/connections/${connectionId}/groups/escalations/members`)
      .post({ id: bob.id, type: "user" });
    assert.equal(member.id, bob.id);
    assert.equal(member.type, "user");

    const read = await connector.api(`/external/connections/${connectionId}/groups/escalations`).get();
    assert.equal(read.id, "escalations");
    assert.equal(read.displayName, "Escalations");
  });

  step("puts items with every property type and reads them back", async () => {
    const everyone = { type: "everyone", value: "everyone", accessType: "grant" };
    items = {
      T1: {
        acl: [everyone],
        properties: itemProperties(1, "open", "Printer manual"),
        content: { type: "text", value: "How to load paper into the printer on floor 1." },
      },
      T2: {
        acl: [{ type: "group", value: helpdeskGroup.id, accessType: "grant" }],
        properties: itemProperties(2, "open", "Printer jam"),
        content: { type: "html", value: "<p>The <b>printer</b> on floor 2 jams on duplex jobs.</p>" },
      },
      T3: {
        acl: [{ type: "externalGroup", value: "escalations", accessType: "grant" }],
        properties: itemProperties(3, "closed", "Printer escalation"),
        content: { type: "text", value: "Escalated printer fault, vendor called." },
      },
      T4: {
        acl: [{ type: "user", value: adele.id, accessType: "grant" }],
        properties: itemProperties(4, "pending", "Printer toner for Adele"),
        content: { type: "text", value: "Order toner for the printer in Adele's office." },
      },
      T5: {
        acl: [everyone, { type: "user", value: bob.id, accessType: "deny" }],
        properties: itemProperties(5, "open", "Printer budget"),
        content: { type: "text", value: "Printer budget for next year, not for Bob." },
      },
    };

    for (const [itemId, item] of Object.entries(items)) {
      const path = `/external/connections/${connectionId}/items/${itemId}`;
      const stored = await connector.api(path).put({ id: itemId, ...item });
      // The spec leaves the PUT's 200 body open; when there is one, it is the stored item.
      if (stored && Object.keys(stored).length > 0) {
        assert.equal(stored.id, itemId);
        assertPropertiesRoundTrip(stored.properties, item.properties, `PUT ${itemId}`);
      }

      const read = await connector.api(path).get();
      assert.equal(read.id, itemId);
      assert.deepEqual(read.acl, item.acl, `acl of ${itemId}`);
      assert.deepEqual(read.content, item.content, `content of ${itemId}`);
      assertPropertiesRoundTrip(read.properties, item.properties, `GET ${itemId}`);
      const props = read.properties;
      assert.equal(typeof props.priority, "number");
      assert.ok(Number.isInteger(props.priority));
      assert.equal(typeof props.score, "number");
      assert.equal(typeof props.isEscalated, "boolean");
    }
  });

  // ------------------------------------------------------------------------------------------
  // JSON batching with the client's own helpers: BatchRequestContent builds the body from fetch
  // Requests, BatchResponseContent turns each sub-response back into a fetch Response.

  const batchedIds = ["B1", "B2", "B3", "B4", "B5", "B6"];
  const batchedItem = (n) => ({
    acl: [{ type: "everyone", value: "everyone", accessType: "grant" }],
    properties: { title: `Ink batch ${n}`, status: "open", priority: 100 + n },
    content: { type: "text", value: `Cartridge order ${n}, sent in a JSON batch.` },
  });

  /** A batch step for an item. graph-client 3.0.7 keeps each Request URL's path after the host
   *  as the batch url, so the URL leaves out the version ("/v1.0" there would reach the service as
   *  an unknown segment). */
  function itemRequest(itemId, method, body) {
    const init = { method };
    if (body !== undefined) {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    return new Request(new URL(`external/connections/${connectionId}/items/${itemId}`, root), init);
  }

  async function sendBatch(steps) {
    const content = new BatchRequestContent(steps);
    const body = await content.getContent();
    assert.equal(body.requests.length, steps.length);
    const raw = await connector.api("/$batch").post(body);
    assert.ok(Array.isArray(raw.responses), `$batch answered ${JSON.stringify(raw)}`);
    assert.deepEqual(
      raw.responses.map((r) => r.id),
      steps.map((s) => s.id),
      "one response per request (gcemu answers in request order)",
    );
    return new BatchResponseContent(raw);
  }

  step("ingests items through BatchRequestContent and checks each response", async () => {
    const steps = batchedIds.map((itemId, i) => ({
      id: `put-${itemId}`,
      request: itemRequest(itemId, "PUT", { id: itemId, ...batchedItem(i + 1) }),
    }));
    // One item the schema refuses: its own 400, the others are stored.
    steps.push({
      id: "put-BX",
      request: itemRequest("BX", "PUT", { acl: batchedItem(0).acl, properties: { priority: "high" } }),
    });
    const responses = await sendBatch(steps);
    for (const [i, itemId] of batchedIds.entries()) {
      const response = responses.getResponseById(`put-${itemId}`);
      assert.ok(response, `a response for put-${itemId}`);
      assert.equal(response.status, 200, `put-${itemId}`);
      assert.match(response.headers.get("content-type"), /^application\/json/);
      const stored = await response.json();
      assert.equal(stored.id, itemId);
      assert.equal(stored.properties.title, `Ink batch ${i + 1}`);
    }
    const refused = responses.getResponseById("put-BX");
    assert.equal(refused.status, 400);
    const error = (await refused.json()).error;
    assert.equal(error.code, "BadRequest");
    assert.match(error.message, /priority/);
    assert.equal(typeof error.innerError["request-id"], "string");

    for (const [i, itemId] of batchedIds.entries()) {
      const read = await connector.api(`/external/connections/${connectionId}/items/${itemId}`).get();
      assert.equal(read.properties.title, `Ink batch ${i + 1}`);
    }
    const missing = await graphErrorOf(connector.api(`/external/connections/${connectionId}/items/BX`).get());
    assert.equal(missing.statusCode, 404);
  });

  step("runs a serial batch (dependsOn) and a failed head's dependents get 424", async () => {
    const serial = await sendBatch([
      { id: "put", request: itemRequest("B7", "PUT", batchedItem(7)) },
      { id: "get", request: itemRequest("B7", "GET"), dependsOn: ["put"] },
      { id: "delete", request: itemRequest("B7", "DELETE"), dependsOn: ["get"] },
      { id: "gone", request: itemRequest("B7", "GET"), dependsOn: ["delete"] },
    ]);
    assert.equal(serial.getResponseById("put").status, 200);
    const read = serial.getResponseById("get");
    assert.equal(read.status, 200);
    assert.equal((await read.json()).properties.title, "Ink batch 7", "the GET ran after the PUT");
    assert.equal(serial.getResponseById("delete").status, 204);
    assert.equal(serial.getResponseById("gone").status, 404, "the last GET ran after the DELETE");

    // All on one, whose head fails: every dependent gets 424 Failed Dependency.
    const failed = await sendBatch([
      { id: "head", request: itemRequest("nosuchitem", "GET") },
      { id: "d1", request: itemRequest("B1", "GET"), dependsOn: ["head"] },
      { id: "d2", request: itemRequest("B2", "GET"), dependsOn: ["head"] },
    ]);
    assert.equal(failed.getResponseById("head").status, 404);
    for (const id of ["d1", "d2"]) {
      const response = failed.getResponseById(id);
      assert.equal(response.status, 424, id);
      assert.equal((await response.json()).error.code, "FailedDependency");
    }
  });

  step("adds activities to an item", async () => {
    const activities = [
      {
        "@odata.type": "#microsoft.graph.externalConnectors.externalActivity",
        type: "created",
        startDateTime: "2024-05-02T10:00:00Z",
        performedBy: { id: adele.id, type: "user" },
      },
      {
        "@odata.type": "#microsoft.graph.externalConnectors.externalActivity",
        type: "modified",
        startDateTime: "2024-05-03T11:30:00Z",
        performedBy: { id: bob.id, type: "user" },
      },
    ];
    const raw = await connector
      .api(`/external/connections/${connectionId}/items/T2/microsoft.graph.externalConnectors.addActivities`)
      .responseType(ResponseType.RAW)
      .post({ activities });
    assert.equal(raw.status, 200);
    const body = await raw.json();
    assert.ok(Array.isArray(body.value), `addActivities answered ${JSON.stringify(body)}`);
    assert.equal(body.value.length, 2);
    body.value.forEach((result, i) => {
      assert.equal(result["@odata.type"], "#microsoft.graph.externalConnectors.externalActivityResult");
      assert.equal(result.type, activities[i].type);
      assert.deepEqual(result.performedBy, activities[i].performedBy);
      assert.equal(Date.parse(result.startDateTime), Date.parse(activities[i].startDateTime));
      assert.equal(result.error ?? null, null, `activity ${i} error`);
    });

    // The short form from the docs works as well.
    const short = await connector.api(`/external/connections/${connectionId}/items/T1/addActivities`).post({
      activities: [{ ...activities[0], type: "viewed", startDateTime: "2024-05-04T09:00:00Z" }],
    });
    assert.equal(short.value.length, 1);
    assert.equal(short.value[0].type, "viewed");
    assert.equal(short.value[0].error ?? null, null);
  });

  // ------------------------------------------------------------------------------------------
  // Search as users: adele (in the Entra group, granted T4 by name) and bob (in the external
  // group, denied T5) see different items.

  const fields = ["title", "status", "priority", "score", "createdAt", "isEscalated", "tags", "relatedIds", "ratings", "reviewDates"];
  const searchBody = (queryString, extra = {}) => ({
    requests: [
      {
        entityTypes: ["externalItem"],
        contentSources: [`/external/connections/${connectionId}`],
        query: { queryString },
        from: 0,
        size: 25,
        fields,
        ...extra,
      },
    ],
  });

  async function searchAs(upn, queryString, extra) {
    const token = await emulatorToken({ user: upn });
    const body = await clientWithToken(token).api("/search/query").post(searchBody(queryString, extra));
    assert.ok(Array.isArray(body.value), `search answered ${JSON.stringify(body)}`);
    assert.equal(body.value.length, 1, "one searchResponse per request");
    if (!queryString.includes(":")) {
      assert.deepEqual(body.value[0].searchTerms, queryString.split(" "), "searchTerms");
    }
    const containers = body.value[0].hitsContainers;
    assert.ok(Array.isArray(containers));
    assert.equal(containers.length, 1, "one hitsContainer for the one entity type");
    return containers[0];
  }

  function assertHits(container, expectedIds, who, highlighted = "printer") {
    const hits = container.hits ?? [];
    assert.deepEqual(sorted(hits.map((h) => h.hitId)), sorted(expectedIds), `${who}'s hits`);
    assert.equal(container.total, expectedIds.length, `${who}'s total`);
    assert.equal(container.moreResultsAvailable, false, `${who}'s moreResultsAvailable`);
    assert.deepEqual(sorted(hits.map((h) => h.rank)), expectedIds.map((_, i) => i + 1).sort(), `${who}'s ranks`);
    for (const hit of hits) {
      assert.equal(hit.contentSource, connectionId, `contentSource of ${hit.hitId}`);
      assert.equal(typeof hit.summary, "string");
      assert.match(hit.summary, new RegExp(`<c0>${highlighted}</c0>`, "i"), `summary of ${hit.hitId}`);
      assert.equal(hit.resource["@odata.type"], "#microsoft.graph.externalConnectors.externalItem");
      const sent = items[hit.hitId].properties;
      assertPropertiesRoundTrip(
        Object.fromEntries(Object.entries(hit.resource.properties).filter(([k]) => fields.includes(k))),
        sent,
        `${who}'s hit ${hit.hitId}`,
      );
    }
  }

  step("searches as adele: the everyone items, her group's item and her own", async () => {
    const container = await searchAs(adeleUpn, "printer", {
      aggregations: [{ field: "status", size: 10, bucketDefinition: { sortBy: "count", isDescending: true, minimumCount: 0 } }],
    });
    assertHits(container, ["T1", "T2", "T4", "T5"], "adele");
    assert.equal(container.aggregations.length, 1);
    assert.equal(container.aggregations[0].field, "status");
    const buckets = Object.fromEntries(container.aggregations[0].buckets.map((b) => [b.key, b.count]));
    assert.deepEqual(buckets, { open: 3, pending: 1 });
    assert.equal(container.aggregations[0].buckets[0].key, "open", "buckets sorted by count, descending");
    for (const bucket of container.aggregations[0].buckets) {
      assert.equal(typeof bucket.aggregationFilterToken, "string");
    }

    const open = await searchAs(adeleUpn, "printer status:open");
    assertHits(open, ["T1", "T2", "T5"], "adele (status:open)");
  });

  step("searches as bob: the everyone item he is not denied and his external group's item", async () => {
    const container = await searchAs(bobUpn, "printer");
    assertHits(container, ["T1", "T3"], "bob");

    const nothing = await searchAs(bobUpn, "toner");
    assertHits(nothing, [], "bob (toner)");
  });

  step("finds the items ingested through $batch by search", async () => {
    const container = await searchAs(bobUpn, "cartridge");
    const hits = container.hits ?? [];
    assert.deepEqual(sorted(hits.map((h) => h.hitId)), sorted(batchedIds), "bob's hits for 'cartridge'");
    assert.equal(container.total, batchedIds.length);
    for (const hit of hits) {
      assert.equal(hit.resource.properties.title, `Ink batch ${hit.hitId.slice(1)}`);
    }
  });

  step("applies a membership change to the very next search", async () => {
    const removed = await connector
      .api(`/external/connections/${connectionId}/groups/escalations/members/${bob.id}`)
      .responseType(ResponseType.RAW)
      .delete();
    assert.equal(removed.status, 204);
    assertHits(await searchAs(bobUpn, "printer"), ["T1"], "bob (after leaving escalations)");

    const unref = await connector
      .api(`/groups/${helpdeskGroup.id}/members/${adele.id}/$ref`)
      .responseType(ResponseType.RAW)
      .delete();
    assert.equal(unref.status, 204);
    assertHits(await searchAs(adeleUpn, "printer"), ["T1", "T4", "T5"], "adele (after leaving helpdesk)");
  });

  // ------------------------------------------------------------------------------------------
  // Refusals, read the way connectors read them: GraphError's statusCode, code and message.

  step("reads a 404 as a GraphError", async () => {
    const error = await graphErrorOf(connector.api(`/external/connections/${connectionId}/items/nosuchitem`).get());
    assert.equal(error.statusCode, 404);
    assert.equal(error.code, "ItemNotFound");
    assert.equal(error.message, "The requested resource does not exist.");
    assert.equal(typeof error.requestId, "string");
    assert.ok(error.requestId.length > 0);
    assert.ok(!Number.isNaN(error.date.getTime()), "innerError.date parses as a date");
    const body = JSON.parse(error.body);
    assert.equal(body.code, "ItemNotFound");
    assert.equal(body.innerError["request-id"], error.requestId);
  });

  step("reads an invalid connection id as a 400 GraphError", async () => {
    const error = await graphErrorOf(connector.api("/external/connections").post({ id: "has-dash", name: "x" }));
    assert.equal(error.statusCode, 400);
    assert.equal(error.code, "InvalidRequest");
    assert.equal(typeof error.message, "string");
    assert.match(error.message, /has-dash/);
  });

  step("refuses search without a user token (what Client.init sends over http) with 403", async () => {
    const error = await graphErrorOf(plainClient().api("/search/query").post(searchBody("printer")));
    assert.equal(error.statusCode, 403);
    assert.equal(error.code, "Forbidden");
    assert.match(error.message, /delegated/i);
  });

  step("deletes the connection (202), after which it is gone", async () => {
    const raw = await connector.api(`/external/connections/${connectionId}`).responseType(ResponseType.RAW).delete();
    assert.equal(raw.status, 202, "DELETE connection answers 202 Accepted");
    const error = await graphErrorOf(connector.api(`/external/connections/${connectionId}`).get());
    assert.equal(error.statusCode, 404);
    assert.equal(error.code, "ItemNotFound");
    created.connection = false;

    const list = await connector.api("/external/connections").get();
    assert.ok(!list.value.some((c) => c.id === connectionId), "the deleted connection is not listed");
  });
});

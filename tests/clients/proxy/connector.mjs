// A Microsoft Graph connector written the way Microsoft's Node samples are, run unchanged through an
// HTTPS proxy (gcemu serve --proxy, in the way Dev Proxy is used):
//
//   https_proxy=http://127.0.0.1:PROXY HTTPS_PROXY=http://127.0.0.1:PROXY \
//   NODE_EXTRA_CA_CERTS=ca.pem \
//   AZURE_TENANT_ID=<guid> AZURE_CLIENT_ID=<guid> AZURE_CLIENT_SECRET=<secret> node connector.mjs
//
// (or NODE_TLS_REJECT_UNAUTHORIZED=0 instead of NODE_EXTRA_CA_CERTS, as the samples' `:proxy` scripts
// do). run.sh starts gcemu and does all of that.
//
// The connector (graphClient.mjs, completeJobWithDelayMiddleware.mjs) talks to
// https://graph.microsoft.com and https://login.microsoftonline.com like any production connector. This
// file drives it and checks every answer: it creates a connection, registers a schema and waits for
// `completed`, creates two directory users, ingests items with ACLs, and searches as each user
// (UsernamePasswordCredential, default options), asserting exactly the items each may see. Prints one
// line per step and `proxy-js: N passed, N failed` last; exits 1 on the first failure (after cleanup).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

const GRAPH = 'https://graph.microsoft.com';
const LOGIN = 'https://login.microsoftonline.com';

for (const name of ['https_proxy', 'AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET']) {
  if (!process.env[name]) {
    console.error(`connector.mjs: set ${name} (run.sh does); without a proxy this connector would call Microsoft itself`);
    process.exit(2);
  }
}
const proxyHost = new URL(process.env.https_proxy).hostname;
if (!['127.0.0.1', 'localhost', '[::1]'].includes(proxyHost)) {
  console.error(`connector.mjs: https_proxy ${process.env.https_proxy} is not on this machine; refusing to run`);
  process.exit(2);
}
// @azure/identity reads HTTPS_PROXY before https_proxy: both must name the same proxy
if (process.env.HTTPS_PROXY && process.env.HTTPS_PROXY !== process.env.https_proxy) {
  console.error(`connector.mjs: HTTPS_PROXY (${process.env.HTTPS_PROXY}) differs from https_proxy (${process.env.https_proxy})`);
  process.exit(2);
}

// imported only now: graphClient.mjs builds the ProxyAgent from https_proxy as it loads
const { UsernamePasswordCredential } = await import('@azure/identity');
const { GraphError } = await import('@microsoft/microsoft-graph-client');
const { ProxyAgent } = await import('undici');
const { appInfo, credential, createClient, graphScopes } = await import('./graphClient.mjs');

const tenant = appInfo.tenantId;
const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
const connectionId = `proxyjs${suffix}`;
const adele = { upn: `adele.${suffix}@contoso.com`, password: `Adele!${suffix}`, id: undefined };
const bob = { upn: `bob.${suffix}@contoso.com`, password: 'any password at all', id: undefined };
const locations = [];
const client = createClient(credential, { onLocation: (location) => locations.push(location) });
const trust = process.env.NODE_TLS_REJECT_UNAUTHORIZED === '0'
  ? 'NODE_TLS_REJECT_UNAUTHORIZED=0'
  : `NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS ?? '(unset)'}`;

// --- steps

let passed = 0;
let failed = 0;
async function step(name, body) {
  const started = performance.now();
  try {
    const detail = await body();
    passed += 1;
    const ms = Math.round(performance.now() - started);
    console.log(`ok   ${passed + failed} ${name}${detail ? ` (${detail})` : ''} [${ms} ms]`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${passed + failed} ${name}: ${describe(e)}`);
    throw e;
  }
}

function describe(e) {
  if (e instanceof GraphError) {
    return `GraphError ${e.statusCode} ${e.code}: ${e.message} body=${typeof e.body === 'string' ? e.body : JSON.stringify(e.body)}`;
  }
  const parts = [`${e?.name}: ${e?.message}`];
  if (e?.statusCode) parts.push(`statusCode=${e.statusCode}`);
  if (e?.errorResponse) parts.push(`errorResponse=${JSON.stringify(e.errorResponse)}`);
  let cause = e?.cause;
  while (cause) {
    parts.push(`cause: ${cause.name ?? ''} ${cause.code ?? ''} ${cause.message ?? cause}`);
    cause = cause.cause;
  }
  if (!(e instanceof assert.AssertionError) && e?.stack) parts.push(`\n${e.stack}`);
  return parts.join('; ');
}

function claimsOf(token) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'the access token is not a JWT');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

async function expectGraphError(promise, statusCode) {
  try {
    const got = await promise;
    assert.fail(`expected a GraphError ${statusCode}, but the call succeeded: ${JSON.stringify(got)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.ok(e instanceof GraphError, `expected a GraphError ${statusCode}, got ${describe(e)}`);
    assert.equal(e.statusCode, statusCode, `GraphError status (${e.code}: ${e.message})`);
    return e;
  }
}

const items = {
  J1: () => [{ type: 'user', value: adele.id, accessType: 'grant' }], // adele only
  J2: () => [{ type: 'everyone', value: 'everyone', accessType: 'grant' }], // both
  J3: () => [{ type: 'user', value: bob.id, accessType: 'grant' }], // bob only
  J4: () => [ // everyone but adele: bob only
    { type: 'everyone', value: 'everyone', accessType: 'grant' },
    { type: 'user', value: adele.id, accessType: 'deny' },
  ],
};

async function searchHitIds(graph, who) {
  const res = await graph.api('/search/query').post({
    requests: [{
      entityTypes: ['externalItem'],
      contentSources: [`/external/connections/${connectionId}`],
      query: { queryString: 'printer' },
      from: 0,
      size: 25,
      fields: ['title', 'priority'],
    }],
  });
  assert.equal(res?.value?.length, 1, `${who}'s search: value ${JSON.stringify(res)}`);
  const containers = res.value[0].hitsContainers ?? [];
  if (containers.length === 0) return [];
  assert.equal(containers.length, 1, `${who}'s number of hitsContainers`);
  const hits = containers[0].hits ?? [];
  const ids = hits.map((h) => h.hitId).sort();
  assert.equal(containers[0].total, ids.length, `${who}'s total`);
  for (const h of hits) {
    assert.ok(String(h.resource?.properties?.title ?? '').startsWith('Printer ticket'), `${who}'s hit ${h.hitId}: title ${JSON.stringify(h.resource)}`);
  }
  return ids;
}

async function main() {
  console.log(`proxy ${process.env.https_proxy}, trust ${trust}, tenant ${tenant}, app ${appInfo.appId}`);

  await step('the proxy serves the identity host (openid-configuration of login.microsoftonline.com)', async () => {
    // Not something a connector does itself: it tells an interception problem apart from a library one.
    const res = await fetch(`${LOGIN}/${tenant}/v2.0/.well-known/openid-configuration`, {
      dispatcher: new ProxyAgent(process.env.https_proxy),
    });
    assert.equal(res.status, 200, 'GET openid-configuration status');
    const config = await res.json();
    assert.equal(config.token_endpoint, `${LOGIN}/${tenant}/oauth2/v2.0/token`, 'token_endpoint');
    return `token_endpoint ${config.token_endpoint}`;
  });

  await step('ClientSecretCredential (default options) gets a token through the proxy', async () => {
    const token = await credential.getToken(graphScopes);
    assert.ok(token?.token, 'getToken returned no token');
    const claims = claimsOf(token.token);
    assert.equal(claims.tid, tenant, 'tid');
    assert.ok(['https://graph.microsoft.com', '00000003-0000-0000-c000-000000000000'].includes(claims.aud), `aud ${claims.aud}`);
    return `appid ${claims.appid ?? claims.azp}, roles ${JSON.stringify(claims.roles ?? [])}`;
  });

  await step('create the connection (POST /external/connections)', async () => {
    const created = await client.api('/external/connections').post({
      id: connectionId,
      name: 'Proxy tickets',
      description: 'Tickets ingested by connector.mjs through the proxy',
    });
    assert.equal(created.id, connectionId, 'created connection id');
    assert.equal(created.state, 'draft', 'created connection state');
    return `${connectionId} (${created.state})`;
  });
  connectionCreated = true;

  await step('register the schema; the middleware follows Location until the operation completes', async () => {
    const operation = await client
      .api(`/external/connections/${connectionId}/schema`)
      .header('content-type', 'application/json')
      .patch({
        baseType: 'microsoft.graph.externalItem',
        properties: [
          { name: 'title', type: 'String', isQueryable: true, isSearchable: true, isRetrievable: true, labels: ['title'] },
          { name: 'status', type: 'String', isQueryable: true, isRetrievable: true },
          { name: 'priority', type: 'Int64', isQueryable: true, isRetrievable: true },
          { name: 'date', type: 'DateTime', isQueryable: true, isRetrievable: true, isRefinable: true, labels: ['lastModifiedDateTime'] },
          { name: 'tags', type: 'StringCollection', isQueryable: true, isRetrievable: true, isRefinable: true },
        ],
      });
    const jobs = locations.filter((location) => location.includes('/operations/'));
    assert.equal(jobs.length, 1, `operation Locations seen: ${JSON.stringify(locations)}`);
    const prefix = `${GRAPH}/v1.0/external/connections/${connectionId}/operations/`;
    assert.ok(jobs[0].startsWith(prefix), `Location ${jobs[0]} is not under ${prefix}`);
    assert.equal(operation?.status, 'completed', `the schema operation: ${JSON.stringify(operation)}`);
    const connection = await client.api(`/external/connections/${connectionId}`).get();
    assert.equal(connection.state, 'ready', 'connection state after the schema completed');
    return `Location ${jobs[0]}; operation ${operation.id} completed; connection ready`;
  });

  await step('create directory users (POST /users as the application)', async () => {
    const a = await client.api('/users').post({
      accountEnabled: true,
      displayName: 'Adele Vance',
      mailNickname: `adele${suffix}`,
      userPrincipalName: adele.upn,
      passwordProfile: { password: adele.password, forceChangePasswordNextSignIn: false },
    });
    assert.ok(a?.id, `POST /users returned ${JSON.stringify(a)}`);
    adele.id = a.id;
    const b = await client.api('/users').post({
      accountEnabled: true,
      displayName: 'Bob Builder',
      mailNickname: `bob${suffix}`,
      userPrincipalName: bob.upn,
    });
    assert.ok(b?.id, `POST /users returned ${JSON.stringify(b)}`);
    bob.id = b.id;
    return `adele ${adele.id} (with a password), bob ${bob.id} (none)`;
  });

  await step('ingest items with ACLs (PUT /external/connections/{id}/items/{itemId})', async () => {
    let n = 0;
    for (const [itemId, acl] of Object.entries(items)) {
      n += 1;
      await client
        .api(`/external/connections/${connectionId}/items/${itemId}`)
        .header('content-type', 'application/json')
        .put({
          id: itemId,
          properties: {
            title: `Printer ticket ${n}`,
            status: 'open',
            priority: n,
            date: new Date(Date.UTC(2024, 0, n, 9, 30)).toISOString(),
            'tags@odata.type': 'Collection(String)',
            tags: ['printer', `floor-${n}`],
          },
          content: { value: `The printer on floor ${n} jams.`, type: 'text' },
          acl: acl(),
        });
    }
    const j4 = await client.api(`/external/connections/${connectionId}/items/J4`).get();
    assert.deepEqual(j4.acl.map((a) => [a.type, a.accessType]), [['everyone', 'grant'], ['user', 'deny']], 'J4 acl');
    return 'J1 adele; J2 everyone; J3 bob; J4 everyone but adele';
  });

  await step('search as each user (UsernamePasswordCredential, default options): exactly the granted items', async () => {
    const details = [];
    for (const [who, user, expected] of [['adele', adele, ['J1', 'J2']], ['bob', bob, ['J2', 'J3', 'J4']]]) {
      const userCredential = new UsernamePasswordCredential(tenant, appInfo.appId, user.upn, user.password);
      const token = await userCredential.getToken(graphScopes);
      const claims = claimsOf(token.token);
      assert.equal(claims.tid, tenant, `${who}'s token tid`);
      assert.equal(claims.oid, user.id, `${who}'s token oid`);
      const ids = await searchHitIds(createClient(userCredential), who);
      assert.deepEqual(ids, expected, `${who}'s hit ids`);
      details.push(`${who} ${JSON.stringify(ids)} (scp ${JSON.stringify(claims.scp)})`);
    }
    return details.join(', ');
  });

  await step('a wrong password is refused by the token endpoint (AADSTS50126)', async () => {
    const wrong = new UsernamePasswordCredential(tenant, appInfo.appId, adele.upn, 'not adele\'s password');
    let error;
    await assert.rejects(wrong.getToken(graphScopes), (e) => {
      // @azure/identity wraps every MSAL ServerError (here invalid_grant) in AuthenticationRequiredError
      assert.equal(e.name, 'AuthenticationRequiredError', describe(e));
      assert.match(e.message, /invalid_grant.*AADSTS50126/s);
      error = e;
      return true;
    });
    return `${error.name}: ${error.message.slice(0, 90)}`;
  });

  await step('an app-only search is refused (GraphError 403)', async () => {
    const e = await expectGraphError(searchHitIds(client, 'the application'), 403);
    return `${e.code}: ${e.message}`;
  });

  await step('delete the connection; it is gone', async () => {
    await client.api(`/external/connections/${connectionId}`).delete();
    connectionCreated = false;
    const e = await expectGraphError(client.api(`/external/connections/${connectionId}`).get(), 404);
    return `then GET: ${e.statusCode} ${e.code}`;
  });
}

let connectionCreated = false;

async function cleanup() {
  const problems = [];
  if (connectionCreated) {
    await client.api(`/external/connections/${connectionId}`).delete().catch((e) => problems.push(`connection: ${describe(e)}`));
  }
  for (const user of [adele, bob]) {
    if (user.id) {
      await client.api(`/users/${user.id}`).delete().catch((e) => problems.push(`user ${user.id}: ${describe(e)}`));
    }
  }
  console.log(`cleanup: ${problems.length ? `problems: ${problems.join('; ')}` : 'ok'}`);
}

let status = 0;
try {
  await main();
} catch {
  status = 1;
} finally {
  await cleanup();
}
console.log(`proxy-js: ${passed} passed, ${failed} failed`);
process.exit(status);

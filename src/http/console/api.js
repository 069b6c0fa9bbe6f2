// Calls to gcemu. Control-plane calls carry ?tenant= of the viewed tenant; an answer that arrives
// after the viewed tenant changed is dropped (StaleError), so it never shows under another tenant.

export const DEFAULT_TENANT = "00000000-0000-0000-0000-000000000001";

/** An error answer from gcemu: its Graph envelope's code and message. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** Thrown instead of an answer that arrived after the viewed tenant changed. */
export class StaleError extends Error {
  constructor() {
    super("The tenant changed while the request was in flight.");
    this.name = "StaleError";
  }
}

let session = { tenant: DEFAULT_TENANT, generation: 0 };

export function tenant() {
  return session.tenant;
}

/** Switches the viewed tenant; answers to requests made before are dropped. */
export function setTenant(id) {
  session = { tenant: id, generation: session.generation + 1 };
}

function url(path, query) {
  const u = new URL(path, window.location.origin);
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      u.searchParams.set(k, String(v));
    }
  }
  return u.pathname + u.search;
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function errorFrom(response, body) {
  const envelope = body && typeof body === "object" ? body.error : null;
  const code = envelope && envelope.code ? String(envelope.code) : `http${response.status}`;
  let message = envelope && envelope.message ? String(envelope.message) : "";
  const inner = envelope && envelope.innerError && envelope.innerError.message;
  if (inner && !message.includes(inner)) message += ` ${inner}`;
  if (!message) {
    message = typeof body === "string" && body.trim() ? body.trim().slice(0, 300) : `${response.status} ${response.statusText || "error"}`;
  }
  return new ApiError(response.status, code, message, body);
}

/**
 * One request. `scoped` (default true) adds ?tenant=; `body` is sent as JSON unless it is a string.
 */
export async function call(method, path, { query, body, headers, scoped = true, raw = false } = {}) {
  const mine = session;
  const q = scoped ? { ...(query || {}), tenant: mine.tenant } : query;
  const init = { method, headers: { Accept: "application/json", ...(headers || {}) }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, q), init);
  } catch (err) {
    if (mine !== session) throw new StaleError();
    throw new ApiError(0, "networkError", `gcemu did not answer (${err && err.message ? err.message : "network error"}).`, null);
  }
  if (raw && response.ok) {
    const text = await response.text();
    if (mine !== session) throw new StaleError();
    return text;
  }
  const data = await readBody(response);
  if (mine !== session) throw new StaleError();
  if (!response.ok) throw errorFrom(response, data);
  return data;
}

const enc = encodeURIComponent;

export const api = {
  tenants: () => call("GET", "/_emulator/tenants"),
  overview: () => call("GET", "/_emulator/overview"),
  items: (connectionId, { filter, top, skip }) =>
    call("GET", `/_emulator/connections/${enc(connectionId)}/items`, { query: { filter, top, skip } }),
  item: (connectionId, itemId) => call("GET", `/_emulator/connections/${enc(connectionId)}/items/${enc(itemId)}`),
  groups: (user) => call("GET", "/_emulator/groups", { query: { user } }),
  hidden: (body) => call("POST", "/_emulator/search/hidden", { body }),
  access: (connectionId, itemId, user) =>
    call("GET", `/_emulator/connections/${enc(connectionId)}/items/${enc(itemId)}/access`, { query: { user } }),
  requests: (after, filters = {}) => call("GET", "/_emulator/requests", { query: { after, ...filters } }),
  /** Clears the viewed tenant's journal entries only (?tenant= like every scoped call). */
  clearRequests: () => call("DELETE", "/_emulator/requests"),
  report: () => call("GET", "/_emulator/report"),
  reset: () => call("POST", "/_emulator/reset"),
  sampleDocument: () => call("GET", "/_emulator/ui/sample-tenant.json", { scoped: false, raw: true }),
  loadFixtures: (documentText) => call("POST", "/_emulator/fixtures", { body: documentText }),
  clock: () => call("GET", "/_emulator/clock"),
  advanceClock: (seconds) => call("POST", "/_emulator/clock/advance", { body: { seconds } }),
  faults: () => call("GET", "/_emulator/faults"),
  addFault: (rule) => call("POST", "/_emulator/faults", { body: rule }),
  deleteFault: (id) => call("DELETE", `/_emulator/faults/${enc(id)}`),
  clearFaults: () => call("DELETE", "/_emulator/faults"),
  token: (user, scopes) => call("POST", "/_emulator/token", { body: { tenant: session.tenant, user, scopes } }),
  /** A Graph call as the token's user: no ?tenant=, the token names it. */
  search: (accessToken, body) =>
    call("POST", "/v1.0/search/query", { body, scoped: false, headers: { Authorization: `Bearer ${accessToken}` } }),
};

// Tenant overview: the tenants, and the viewed tenant's connections (state, schema, operations,
// item counts and quota).

import { h, replace, clear, table, badge, button, formatTime, valueText, viewHeading, arr, muted } from "./dom.js";

const STATE_KIND = { ready: "ok", draft: "info", obsolete: "warn", limitExceeded: "bad" };
const OPERATION_KIND = { completed: "ok", failed: "bad" };

function attributeBadges(p) {
  const flags = [
    ["isSearchable", "searchable"],
    ["isQueryable", "queryable"],
    ["isRetrievable", "retrievable"],
    ["isRefinable", "refinable"],
    ["isExactMatchRequired", "exact match"],
  ];
  const on = flags.filter(([key]) => p[key] === true);
  if (on.length === 0) return muted("none");
  return h("span", { class: "badges" }, on.map(([, label]) => badge(label, "flag")));
}

function list(values) {
  if (!Array.isArray(values) || values.length === 0) return muted("—");
  return h("span", { class: "badges" }, values.map((v) => badge(String(v), "label")));
}

function quota(connection) {
  const count = Number(connection.itemCount ?? 0);
  const remaining = connection.itemsRemaining;
  const parts = [h("span", { class: "stat" }, h("strong", null, String(count)), " items")];
  if (remaining !== undefined && remaining !== null) {
    const total = count + Number(remaining);
    parts.push(h("span", { class: "stat" }, h("strong", null, String(remaining)), " remaining in quota"));
    if (total > 0) {
      const meter = h("meter", {
        min: "0",
        max: String(total),
        value: String(count),
        "aria-label": `Quota used: ${count} of ${total} items`,
        title: `${count} of ${total} items used`,
      });
      parts.push(meter);
    }
  }
  return h("div", { class: "stats" }, parts);
}

function connectionCard(connection) {
  const schema = connection.schema;
  const properties = arr(schema && schema.properties);
  const operations = arr(connection.operations);
  const schemaBlock = schema
    ? h(
        "details",
        { class: "block", open: true },
        h("summary", null, `Schema: ${properties.length} properties`, schema.baseType ? ` (${schema.baseType})` : ""),
        table({
          caption: `Schema of ${connection.id}`,
          testid: "schema-table",
          rows: properties,
          columns: [
            { label: "Property", render: (p) => h("code", null, p.name) },
            { label: "Type", render: (p) => p.type },
            { label: "Attributes", render: attributeBadges },
            { label: "Labels", render: (p) => list(p.labels) },
            { label: "Aliases", render: (p) => list(p.aliases) },
          ],
        }),
      )
    : muted("No schema registered yet.", true);
  const operationsBlock = h(
    "details",
    { class: "block", open: operations.length > 0 && operations.length <= 5 },
    h("summary", null, `Operations: ${operations.length}`),
    table({
      caption: `Operations of ${connection.id}`,
      rows: operations,
      empty: "No operations.",
      columns: [
        { label: "Id", render: (o) => h("code", null, o.id) },
        { label: "Status", render: (o) => badge(String(o.status ?? ""), OPERATION_KIND[o.status] || "info") },
        { label: "Created", render: (o) => formatTime(o.createdDateTime) },
        {
          label: "Error",
          render: (o) => (o.error ? h("span", { class: "error-text" }, o.error.message ? `${o.error.code ? `${o.error.code}: ` : ""}${o.error.message}` : valueText(o.error)) : ""),
        },
      ],
    }),
  );
  return h(
    "article",
    { class: "card", testid: "connection-card", data: { connectionId: connection.id } },
    h(
      "header",
      { class: "card-head" },
      h("h3", null, connection.name || connection.id, " ", h("code", { class: "muted" }, connection.id)),
      badge(String(connection.state ?? "unknown"), STATE_KIND[connection.state] || "info"),
    ),
    connection.description ? muted(connection.description, true) : null,
    quota(connection),
    h(
      "p",
      { class: "links" },
      h("a", { href: `#/items?connection=${encodeURIComponent(connection.id)}` }, "Browse items"),
      h("a", { href: `#/search?connection=${encodeURIComponent(connection.id)}` }, "Search as a person"),
    ),
    schemaBlock,
    operationsBlock,
  );
}

export function createOverview(ctx) {
  const el = h("section", { "aria-labelledby": "overview-title" });
  const heading = viewHeading("Overview", "overview-title");
  const lede = h("p", { class: "lede" });
  const tenantsBox = h("div");
  const body = h("div", { class: "stack" });
  const reload = button("Reload", () => load(true), { class: "btn-quiet", testid: "overview-reload" });
  el.append(h("div", { class: "view-head" }, heading, reload), lede, body, tenantsBox);

  let tenants = [];
  let loaded = false;
  let visible = false;
  let seq = 0; // bumped by every load and reset: only the latest load may render

  function renderTenants() {
    clear(tenantsBox);
    if (tenants.length === 0) return;
    tenantsBox.append(
      h("h3", null, "Tenants"),
      table({
        caption: "Tenants",
        testid: "tenants-table",
        rows: tenants,
        rowProps: (t) => ({ class: t.id === ctx.tenant() ? "current" : null }),
        columns: [
          { label: "Tenant", render: (t) => h("code", null, t.id) },
          { label: "Users", render: (t) => String(t.users ?? 0), class: "num" },
          { label: "Groups", render: (t) => String(t.groups ?? 0), class: "num" },
          { label: "Connections", render: (t) => String(t.connections ?? 0), class: "num" },
          { label: "Items", render: (t) => String(t.items ?? 0), class: "num" },
          {
            label: "",
            render: (t) =>
              t.id === ctx.tenant()
                ? muted("viewing")
                : button("View", () => ctx.switchTenant(t.id), { class: "btn-small", "aria-label": `View tenant ${t.id}` }),
          },
        ],
      }),
    );
  }

  function render(data) {
    const connections = arr(data.connections);
    const users = arr(data.users);
    const groups = arr(data.groups);
    lede.textContent = `Tenant ${data.tenant || ctx.tenant()}: ${connections.length} connections, ${users.length} users, ${groups.length} groups.`;
    const parts = [h("h3", null, "Connections")];
    if (connections.length === 0) {
      parts.push(
        h("p", { class: "notice", testid: "overview-empty" }, "This tenant has no connections. ", h("a", { href: "#/actions" }, "Load the sample fixtures"), " or drive a connector against gcemu."),
      );
    } else {
      parts.push(h("div", { class: "cards" }, connections.map(connectionCard)));
    }
    replace(body, ...parts);
  }

  async function load(force = false) {
    const mine = ++seq;
    replace(body, muted("Loading the overview…", true));
    const data = await ctx.run(() => ctx.overview(force), "Overview");
    if (mine !== seq) return;
    if (!data) {
      replace(body, muted("The overview could not be loaded.", true));
      return;
    }
    loaded = true;
    render(data);
    if (force) ctx.status("Overview reloaded.", "ok");
  }

  return {
    el,
    title: "Overview",
    show() {
      visible = true;
      renderTenants();
      if (!loaded) load();
    },
    hide() {
      visible = false;
    },
    reset() {
      seq += 1;
      loaded = false;
      lede.textContent = "";
      clear(body);
      clear(tenantsBox);
    },
    tenantsChanged(list) {
      tenants = list;
      if (visible) renderTenants();
    },
  };
}

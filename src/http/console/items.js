// Items: a paged, filterable table per connection, and an item's properties, content and ACL
// (each entry resolved to who it names) in a side panel.

import { h, replace, clear, table, badge, button, field, options, valueText, truncate, dl, debounce, viewHeading, titleKey, propsLine, arr, muted } from "./dom.js";
import { aclTable } from "./explain.js";

const PAGE_SIZES = [25, 50, 100, 200];

export function createItems(ctx) {
  const el = h("section", { "aria-labelledby": "items-title" });
  const heading = viewHeading("Items", "items-title");

  const connectionSelect = h("select", { testid: "items-connection" });
  const filterInput = h("input", { type: "search", testid: "items-filter", placeholder: "id or property text", autocomplete: "off" });
  const sizeSelect = h("select", { testid: "items-page-size" });
  options(sizeSelect, PAGE_SIZES.map((n) => ({ value: String(n), label: String(n) })), "25");
  const apply = h("button", { type: "submit", class: "btn btn-primary", testid: "items-apply" }, "Show");
  const form = h(
    "form",
    { class: "toolbar", "aria-label": "Item filters" },
    field("Connection", connectionSelect),
    field("Filter", filterInput),
    field("Per page", sizeSelect),
    h("div", { class: "field field-button" }, apply),
  );
  const summary = h("p", { class: "summary", testid: "items-summary", "aria-live": "polite" });
  const prev = button("Previous", () => page(-1), { testid: "items-prev", class: "btn-small" });
  const next = button("Next", () => page(1), { testid: "items-next", class: "btn-small" });
  const pager = h("div", { class: "pager" }, prev, next);
  const results = h("div");
  el.append(h("div", { class: "view-head" }, heading), form, h("div", { class: "result-head" }, summary, pager), results);

  let connections = [];
  let state = { connectionId: "", filter: "", top: 25, skip: 0 };
  let total = 0;
  let seq = 0;
  let ready = false;
  // One items request at a time: a load asked for meanwhile waits, and only the latest runs.
  let inFlight = false;
  let queued = false;

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    readForm();
    state.skip = 0;
    load();
  });
  connectionSelect.addEventListener("change", () => {
    readForm();
    state.skip = 0;
    load();
  });
  sizeSelect.addEventListener("change", () => {
    readForm();
    state.skip = 0;
    load();
  });
  filterInput.addEventListener(
    "input",
    debounce(() => {
      readForm();
      state.skip = 0;
      load();
    }, 400),
  );

  function readForm() {
    state.connectionId = connectionSelect.value;
    state.filter = filterInput.value.trim();
    state.top = Number(sizeSelect.value) || 25;
  }

  function page(delta) {
    const skip = state.skip + delta * state.top;
    if (skip < 0 || (delta > 0 && skip >= total)) return;
    state.skip = skip;
    load();
  }

  async function init(params) {
    const mine = ++seq;
    replace(results, muted("Loading…", true));
    const data = await ctx.run(() => ctx.overview(), "Items");
    if (mine !== seq) return;
    if (!data) {
      replace(results, muted("The tenant's connections could not be loaded.", true));
      return;
    }
    connections = arr(data.connections);
    ready = true;
    options(
      connectionSelect,
      connections.map((c) => ({ value: c.id, label: `${c.name || c.id} (${c.id})` })),
      null,
    );
    const wanted = params && params.get("connection");
    const pick = connections.find((c) => c.id === wanted) || connections.find((c) => c.id === state.connectionId) || connections[0];
    if (!pick) {
      clear(summary);
      replace(results, h("p", { class: "notice" }, "This tenant has no connections."));
      prev.disabled = true;
      next.disabled = true;
      return;
    }
    connectionSelect.value = pick.id;
    readForm();
    load();
  }

  async function load() {
    if (!state.connectionId) return;
    summary.textContent = "Loading…";
    if (inFlight) {
      queued = true;
      return;
    }
    inFlight = true;
    const mine = ++seq;
    const { connectionId, filter, top, skip } = state;
    let data;
    try {
      data = await ctx.run(() => ctx.api.items(connectionId, { filter, top, skip }), `Items of ${connectionId}`);
    } finally {
      inFlight = false;
    }
    if (queued) {
      queued = false;
      load();
      return;
    }
    if (mine !== seq) return;
    if (!data) {
      summary.textContent = "The items could not be loaded.";
      clear(results);
      return;
    }
    render(data, connectionId);
  }

  function render(data, connectionId) {
    const rows = arr(data.value);
    total = Number(data.total ?? rows.length);
    const skip = Number(data.skip ?? state.skip);
    const from = rows.length ? skip + 1 : 0;
    summary.textContent = rows.length ? `${from}–${skip + rows.length} of ${total} items in ${connectionId}` : `No items in ${connectionId}${state.filter ? ` match "${state.filter}"` : ""}.`;
    summary.dataset.total = String(total);
    prev.disabled = skip <= 0;
    next.disabled = skip + rows.length >= total;
    const connection = connections.find((c) => c.id === connectionId);
    const tkey = titleKey(connection);
    replace(
      results,
      table({
        caption: `Items of ${connectionId}`,
        testid: "items-table",
        rows,
        rowProps: (item) => ({ "data-testid": "item-row", "data-item-id": item.id }),
        columns: [
          {
            label: "Id",
            render: (item) =>
              h(
                "button",
                { type: "button", class: "link-button", testid: "item-open", on: { click: (e) => openItem(connectionId, item.id, e.currentTarget) } },
                String(item.id),
              ),
          },
          { label: "Title", render: (item) => truncate(valueText(item.properties && item.properties[tkey]), 80) },
          { label: "Properties", render: (item) => propsLine(item.properties, tkey) },
          { label: "ACL", class: "num", render: (item) => String(item.aclEntries ?? "") },
          { label: "Content", render: (item) => h("span", { class: "preview" }, truncate(item.contentPreview ?? "", 90)) },
        ],
      }),
    );
  }

  async function openItem(connectionId, itemId, opener) {
    const handle = ctx.panels.item.open(`Item ${itemId}`, opener);
    const data = await ctx.run(() => ctx.api.item(connectionId, itemId), `Item ${itemId}`);
    if (!data) {
      handle.fill(h("p", { class: "error-text" }, "The item could not be loaded."));
      return;
    }
    const props = Object.entries(data.properties || {}).filter(([k]) => !k.includes("@odata"));
    const content = data.content;
    const contentBlock = content
      ? h(
          "div",
          { class: "content-block" },
          h("p", null, badge(String(content.type ?? "text"), "label"), content.type === "html" ? muted(" shown as source text, not rendered") : ""),
          h("pre", { class: "content", testid: "item-content", tabindex: "0" }, String(content.value ?? "")),
        )
      : muted("No content.", true);
    handle.fill(
      h("p", { class: "muted" }, "Connection ", h("code", null, connectionId)),
      h("h3", null, "Properties"),
      dl(props.map(([k, v]) => [k, typeof v === "object" && v !== null && !Array.isArray(v) ? JSON.stringify(v) : valueText(v)])),
      h("h3", null, "Content"),
      contentBlock,
      h("h3", null, "Access control list"),
      aclTable(data.acl, `ACL of ${itemId}`, "item-acl"),
    );
  }

  return {
    el,
    title: "Items",
    show(params) {
      const wanted = params && params.get("connection");
      if (!ready) {
        init(params);
      } else if (wanted && wanted !== state.connectionId && connections.some((c) => c.id === wanted)) {
        connectionSelect.value = wanted;
        readForm();
        state.skip = 0;
        load();
      }
    },
    hide() {},
    reset() {
      seq += 1;
      queued = false;
      ready = false;
      connections = [];
      total = 0;
      state = { connectionId: "", filter: "", top: Number(sizeSelect.value) || 25, skip: 0 };
      filterInput.value = "";
      clear(connectionSelect);
      clear(summary);
      clear(results);
    },
  };
}

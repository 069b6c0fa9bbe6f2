// The console's shell: tenant picker, hash routing between views, the status line and side panels.

import { api, ApiError, StaleError, DEFAULT_TENANT, setTenant, tenant } from "./api.js";
import { h, clear, replace, button, nextId, arr, muted } from "./dom.js";
import { createOverview } from "./overview.js";
import { createItems } from "./items.js";
import { createGroups } from "./groups.js";
import { createSearch } from "./search.js";
import { createRequests } from "./requests.js";
import { createActions } from "./actions.js";

const main = document.getElementById("main");
const statusLine = document.getElementById("status");
const picker = document.getElementById("tenant-picker");
const refreshTenants = document.getElementById("tenants-refresh");

// Status line (aria-live)

function setStatus(text, kind = "info") {
  statusLine.textContent = text;
  statusLine.dataset.kind = kind;
}

// Side panels: one open at a time; Escape or the close button closes it and focus goes back to
// the control that opened it.

const panels = [];

function createPanel(testid, label) {
  const titleId = nextId("panel-title");
  const title = h("h2", { id: titleId, class: "panel-title", tabindex: "-1" }, label);
  const body = h("div", { class: "panel-body" });
  const closeButton = button("Close", () => panel.close(), {
    class: "btn-quiet",
    testid: "panel-close",
    "aria-label": `Close ${label.toLowerCase()}`,
  });
  const el = h(
    "aside",
    { class: "panel", testid, role: "dialog", "aria-modal": "false", "aria-labelledby": titleId, hidden: true },
    h("div", { class: "panel-head" }, title, closeButton),
    body,
  );
  document.body.appendChild(el);
  let opener = null;
  let token = 0;
  const panel = {
    el,
    get isOpen() {
      return !el.hidden;
    },
    /** Opens with a title and a "Loading" body; returns a handle to fill it later. */
    open(heading, opening) {
      for (const other of panels) if (other !== panel && other.isOpen) other.close(false);
      token += 1;
      const mine = token;
      opener = opening || (document.activeElement instanceof HTMLElement ? document.activeElement : null);
      title.textContent = heading;
      replace(body, muted("Loading…", true));
      el.hidden = false;
      document.body.classList.add("panel-open");
      title.focus();
      return {
        fill: (...nodes) => {
          if (mine === token && !el.hidden) replace(body, ...nodes);
        },
        get current() {
          return mine === token && !el.hidden;
        },
      };
    },
    close(restoreFocus = true) {
      if (el.hidden) return;
      token += 1;
      el.hidden = true;
      clear(body);
      if (!panels.some((p) => p.isOpen)) document.body.classList.remove("panel-open");
      if (restoreFocus && opener && opener.isConnected) opener.focus();
      opener = null;
    },
  };
  panels.push(panel);
  return panel;
}

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = panels.find((p) => p.isOpen);
  if (open) {
    event.preventDefault();
    open.close();
  }
});

// Shared by the views

let overviewPromise = null;

const ctx = {
  api,
  tenant,
  status: setStatus,
  panels: {
    explain: createPanel("explain-panel", "Access explanation"),
    item: createPanel("item-panel", "Item"),
  },
  /** The overview of the viewed tenant, fetched once per tenant (and again after changes). */
  overview(force = false) {
    if (force || !overviewPromise) {
      const p = api.overview();
      overviewPromise = p;
      p.catch(() => {
        if (overviewPromise === p) overviewPromise = null;
      });
    }
    return overviewPromise;
  },
  /** Runs an async task; errors become the status line, stale answers are dropped silently. */
  async run(task, what) {
    try {
      return await task();
    } catch (err) {
      if (err instanceof StaleError) return undefined;
      const message = err instanceof ApiError ? err.message : err && err.message ? err.message : String(err);
      const code = err instanceof ApiError && err.code ? ` (${err.code})` : "";
      const details = arr(err instanceof ApiError && err.body && err.body.error && err.body.error.details);
      const more = details
        .slice(0, 3)
        .map((d) => (d && typeof d === "object" ? `${d.target ? `${d.target}: ` : ""}${d.message ?? ""}` : String(d)))
        .filter(Boolean);
      const tail = more.length ? ` — ${more.join("; ")}${details.length > more.length ? ` (+${details.length - more.length} more)` : ""}` : "";
      setStatus(`${what ? `${what}: ` : ""}${message}${code}${tail}`, "error");
      return undefined;
    }
  },
  /** After a change to the tenant's data (fixtures loaded, reset): drop every cache and view. */
  dataChanged() {
    startTenant(tenant());
    loadTenants();
  },
  switchTenant(id) {
    if (id && id !== tenant()) {
      startTenant(id);
      setStatus(`Viewing tenant ${id}.`, "info");
    }
  },
};

// Views and routing

const views = {
  overview: createOverview(ctx),
  items: createItems(ctx),
  groups: createGroups(ctx),
  search: createSearch(ctx),
  requests: createRequests(ctx),
  actions: createActions(ctx),
};

for (const [name, view] of Object.entries(views)) {
  view.el.classList.add("view");
  view.el.dataset.view = name;
  view.el.setAttribute("data-testid", `view-${name}`);
  view.el.hidden = true;
  main.appendChild(view.el);
}

let current = null;
let firstRoute = true;

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, qs] = raw.split("?");
  const name = Object.prototype.hasOwnProperty.call(views, path) ? path : "overview";
  return { name, params: new URLSearchParams(qs || "") };
}

function route() {
  const { name, params } = parseHash();
  if (current && current !== name) {
    views[current].hide();
    views[current].el.hidden = true;
  }
  const view = views[name];
  view.el.hidden = false;
  const changed = current !== name;
  current = name;
  for (const link of document.querySelectorAll(".app-nav a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${view.title} · gcemu console`;
  view.show(params);
  if (changed && !firstRoute) {
    const heading = view.el.querySelector(".view-title");
    if (heading) heading.focus({ preventScroll: false });
  }
  firstRoute = false;
}

window.addEventListener("hashchange", route);

// Tenants

/** Makes `id` the viewed tenant: every cached answer and every view is dropped. */
function startTenant(id) {
  setTenant(id);
  overviewPromise = null;
  for (const p of panels) p.close(false);
  for (const view of Object.values(views)) view.reset();
  if (picker.value !== id) selectTenantOption(id);
  if (current) {
    views[current].hide();
    route();
  }
}

function selectTenantOption(id) {
  if (![...picker.options].some((o) => o.value === id)) {
    picker.appendChild(h("option", { value: id }, id));
  }
  picker.value = id;
}

async function loadTenants() {
  const answer = await ctx.run(() => api.tenants(), "Listing tenants");
  if (!answer) return false;
  const list = arr(answer.value);
  const viewed = tenant();
  clear(picker);
  for (const t of list) {
    const label = `${t.id} · ${t.items ?? 0} item${t.items === 1 ? "" : "s"}`;
    picker.appendChild(h("option", { value: t.id }, label));
  }
  selectTenantOption(viewed);
  views.overview.tenantsChanged(list);
  return true;
}

picker.addEventListener("change", () => ctx.switchTenant(picker.value));
refreshTenants.addEventListener("click", () => {
  loadTenants().then((ok) => {
    if (ok) setStatus("Tenant list refreshed.", "ok");
  });
});


selectTenantOption(DEFAULT_TENANT);
setStatus("Ready.", "info");
route();
loadTenants();

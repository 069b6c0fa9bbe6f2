// Search as a person: mint a token for a directory user, run POST /v1.0/search/query with their
// trimming, refine with aggregation buckets, explain why a hit is visible, and list what matches
// but stays hidden from them (with "why not").

import { h, replace, clear, button, field, options, badge, valueText, highlighted, viewHeading, titleKey, propsLine, arr, personLabel, muted } from "./dom.js";
import { renderExplanation, namesFrom } from "./explain.js";
import { ApiError } from "./api.js";

const PAGE = 25;
const MAX_AGGREGATIONS = 20;
const HIDDEN_SIZE = 100;

function schemaProps(connection) {
  return arr(connection && connection.schema && connection.schema.properties);
}

/** The connection id a hit came from: `contentSource` ("helpdesk" or "/external/connections/helpdesk"). */
function hitConnection(hit, selected) {
  const src = hit.contentSource ?? (hit.resource && hit.resource.contentSource);
  if (typeof src === "string" && src.trim()) {
    return src.trim().replace(/^\/?external\/connections\//i, "");
  }
  return selected.length === 1 ? selected[0] : "";
}

export function createSearch(ctx) {
  const el = h("section", { "aria-labelledby": "search-title" });
  const heading = viewHeading("Search as a person", "search-title");

  const personaSelect = h("select", { testid: "persona-picker", required: true });
  const queryInput = h("input", { type: "search", testid: "query-input", placeholder: 'kestrel, "exact phrase", status:open, a AND NOT b', autocomplete: "off", spellcheck: "false" });
  const sourcesBox = h("div", { class: "checks" });
  const sources = h("fieldset", { class: "field sources", testid: "search-connections" }, h("legend", null, "Connections"), sourcesBox);
  const searchButton = h("button", { type: "submit", class: "btn btn-primary", testid: "search-button" }, "Search");
  const form = h(
    "form",
    { class: "toolbar search-form", "aria-label": "Search as a person" },
    field("Person", personaSelect),
    field("Query", queryInput, "KQL: terms, \"phrases\", AND / OR / NOT, property:value; empty means *."),
    sources,
    h("div", { class: "field field-button" }, searchButton),
  );

  const chips = h("div", { class: "chips", testid: "filter-chips" });
  const refiners = h("div", { class: "refiner-groups" });
  const refinerPane = h("aside", { class: "refiners", testid: "refiners", "aria-label": "Refiners" }, h("h3", null, "Refiners"), chips, refiners);
  const totalLine = h("p", { class: "summary", testid: "search-total" });
  const hitsList = h("ol", { class: "hits", testid: "hits" });
  const prev = button("Previous", () => page(-1), { class: "btn-small", testid: "search-prev" });
  const next = button("Next", () => page(1), { class: "btn-small", testid: "search-next" });
  const pager = h("div", { class: "pager" }, prev, next);
  const resultsPane = h("section", { class: "results", testid: "search-results", "aria-label": "Results", "aria-busy": "false" }, totalLine, hitsList, pager);
  const hiddenTitle = h("h3", null, "Hidden from this person");
  const hiddenSummary = h("p", { class: "summary", testid: "hidden-total" });
  const hiddenList = h("ul", { class: "hidden-items" });
  // The hidden list takes no aggregation filters: with a refiner applied, it says so.
  const hiddenNote = h("p", { class: "notice", testid: "hidden-unrefined", hidden: true }, "Refiners do not apply here: this lists what the query matches without them.");
  const hiddenPane = h("section", { class: "hidden-pane", testid: "hidden-list", "aria-label": "Hidden from this person", "aria-busy": "false" }, hiddenTitle, hiddenNote, hiddenSummary, hiddenList);
  el.append(h("div", { class: "view-head" }, heading), form, h("div", { class: "search-layout" }, refinerPane, resultsPane, hiddenPane));

  let ready = false;
  let initSeq = 0;
  let searchSeq = 0;
  let hiddenSeq = 0;
  let overview = null;
  let users = [];
  let connections = [];
  let shown = null; // the search shown: {persona, query, connectionIds, filters, from}
  let filters = [];

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    filters = [];
    run({ from: 0, withHidden: true });
  });

  function selectedConnections() {
    return [...sourcesBox.querySelectorAll("input[type=checkbox]")].filter((c) => c.checked).map((c) => c.value);
  }

  function personName(upn) {
    const u = users.find((x) => (x.userPrincipalName || x.id) === upn);
    return u ? u.displayName || upn : upn;
  }

  async function init(params) {
    const mine = ++initSeq;
    replace(hitsList);
    totalLine.textContent = "Loading…";
    const data = await ctx.run(() => ctx.overview(), "Search");
    if (mine !== initSeq) return;
    if (!data) {
      totalLine.textContent = "The overview could not be loaded.";
      return;
    }
    overview = data;
    users = arr(data.users);
    connections = arr(data.connections);
    options(personaSelect, users.map((u) => ({ value: u.userPrincipalName || u.id, label: personLabel(u) })), null);
    clear(sourcesBox);
    const only = params && params.get("connection");
    for (const c of connections) {
      const box = h("input", { type: "checkbox", value: c.id, testid: "search-connection", data: { connectionId: c.id } });
      box.checked = only ? c.id === only : true;
      sourcesBox.appendChild(h("label", { class: "check" }, box, ` ${c.name || c.id}`, muted(` (${c.id})`)));
    }
    if (connections.length === 0) sourcesBox.appendChild(muted("No connections in this tenant.", true));
    ready = true;
    totalLine.textContent = users.length ? "Choose a person and a query, then Search." : "This tenant has no directory users to search as.";
    hiddenSummary.textContent = "";
    prev.disabled = true;
    next.disabled = true;
  }

  function refinableFields(connectionIds) {
    const fields = [];
    for (const id of connectionIds) {
      const c = connections.find((x) => x.id === id);
      for (const p of schemaProps(c)) {
        if (p.isRefinable && !fields.includes(p.name)) fields.push(p.name);
      }
    }
    return fields.slice(0, MAX_AGGREGATIONS);
  }

  function page(delta) {
    if (!shown) return;
    const from = shown.from + delta * PAGE;
    if (from < 0) return;
    run({ from, reuse: true });
  }

  /** Runs a search (and, for a new search, the hidden list). `reuse` keeps the shown search's inputs. */
  async function run({ from, withHidden = false, reuse = false }) {
    if (!ready) return;
    const base = reuse && shown ? shown : null;
    const persona = base ? base.persona : personaSelect.value;
    const query = base ? base.query : queryInput.value.trim() || "*";
    const connectionIds = base ? base.connectionIds : selectedConnections();
    if (!persona) {
      ctx.status("Choose a person to search as.", "error");
      personaSelect.focus();
      return;
    }
    if (connectionIds.length === 0) {
      ctx.status("Choose at least one connection to search.", "error");
      return;
    }
    const request = { persona, query, connectionIds, filters: filters.slice(), from };
    const mine = ++searchSeq;
    resultsPane.setAttribute("aria-busy", "true");
    resultsPane.dataset.state = "loading";
    searchButton.disabled = true;
    ctx.status(`Searching "${query}" as ${personName(persona)}…`, "info");
    if (withHidden) loadHidden(request);
    const answer = await ctx.run(async () => {
      const token = await ctx.api.token(persona, ["ExternalItem.Read.All"]);
      const fields = refinableFields(connectionIds);
      const searchRequest = {
        entityTypes: ["externalItem"],
        contentSources: connectionIds.map((id) => `/external/connections/${id}`),
        query: { queryString: query },
        from,
        size: PAGE,
      };
      if (fields.length) {
        searchRequest.aggregations = fields.map((f) => ({ field: f, size: 10, bucketDefinition: { sortBy: "count", isDescending: true, minimumCount: 1 } }));
      }
      if (request.filters.length) searchRequest.aggregationFilters = request.filters.map((f) => `${f.field}:${f.token}`);
      return ctx.api.search(token.access_token, { requests: [searchRequest] });
    }, "Search");
    if (mine !== searchSeq) return;
    searchButton.disabled = false;
    resultsPane.setAttribute("aria-busy", "false");
    if (!answer) {
      resultsPane.dataset.state = "error";
      return;
    }
    shown = request;
    renderResults(answer, request);
    resultsPane.dataset.persona = persona;
    resultsPane.dataset.query = query;
    resultsPane.dataset.run = String(mine);
    resultsPane.dataset.state = "done";
  }

  function renderResults(answer, request) {
    const responses = arr(answer && answer.value);
    const containers = responses.flatMap((r) => arr(r.hitsContainers));
    const hits = containers.flatMap((c) => arr(c.hits));
    const total = containers.length && typeof containers[0].total === "number" ? containers.reduce((a, c) => a + (Number(c.total) || 0), 0) : hits.length;
    const more = containers.some((c) => c.moreResultsAvailable === true);
    const aggregations = containers.flatMap((c) => arr(c.aggregations));
    const who = personName(request.persona);
    totalLine.textContent = `${total} result${total === 1 ? "" : "s"} for "${request.query}" as ${who} in ${request.connectionIds.join(", ")}${hits.length ? ` (showing ${request.from + 1}–${request.from + hits.length})` : ""}.`;
    totalLine.dataset.total = String(total);
    prev.disabled = request.from <= 0;
    next.disabled = !(more || request.from + hits.length < total);
    replace(hitsList, ...hits.map((hit, i) => hitElement(hit, i, request)));
    if (hits.length === 0) hitsList.appendChild(h("li", { class: "empty muted" }, "No results this person may see."));
    renderRefiners(aggregations);
    hiddenNote.hidden = request.filters.length === 0;
    ctx.status(`Search as ${who}: ${total} result${total === 1 ? "" : "s"}.`, "ok");
  }

  function hitElement(hit, i, request) {
    const resource = hit.resource || {};
    const props = resource.properties || {};
    const itemId = String(hit.hitId ?? resource.id ?? "");
    const connectionId = hitConnection(hit, request.connectionIds);
    const connection = connections.find((c) => c.id === connectionId);
    const tkey = titleKey(connection);
    const title = props[tkey] ?? props.title;
    const why = button("Why visible?", (e) => explain(connectionId, itemId, request, e.currentTarget, true), {
      class: "btn-small",
      testid: "why-visible",
      "aria-label": `Why is ${itemId} visible to ${personName(request.persona)}?`,
    });
    return h(
      "li",
      { class: "hit", testid: "hit", data: { itemId, connectionId } },
      h(
        "div",
        { class: "hit-head" },
        h("span", { class: "rank", title: "Rank" }, String(hit.rank ?? request.from + i + 1)),
        h("strong", { class: "hit-title" }, title !== undefined && title !== null ? valueText(title) : itemId),
        " ",
        connectionId ? badge(connectionId, "label") : badge("unknown connection", "warn"),
        " ",
        h("code", { class: "muted" }, itemId),
      ),
      hit.summary ? h("p", { class: "hit-summary" }, highlighted(hit.summary)) : null,
      propsLine(props, tkey, 5),
      h("div", { class: "hit-actions" }, why),
    );
  }

  function renderRefiners(aggregations) {
    clear(chips);
    for (const f of filters) {
      chips.appendChild(
        h(
          "span",
          { class: "chip", testid: "filter-chip" },
          `${f.field}: ${f.key}`,
          button("×", () => toggleFilter(f), { class: "chip-remove", testid: "filter-chip-remove", "aria-label": `Remove filter ${f.field}: ${f.key}` }),
        ),
      );
    }
    if (filters.length === 0) chips.appendChild(muted("No filter applied. Click a bucket to refine.", true));
    clear(refiners);
    const withBuckets = aggregations.filter((a) => Array.isArray(a.buckets) && a.buckets.length > 0);
    if (withBuckets.length === 0) {
      refiners.appendChild(muted("No refiners for these results.", true));
      return;
    }
    for (const agg of withBuckets) {
      refiners.appendChild(
        h(
          "div",
          { class: "refiner", testid: "refiner", data: { field: agg.field } },
          h("h4", null, String(agg.field)),
          h(
            "ul",
            null,
            agg.buckets.map((b) => {
              const active = filters.some((f) => f.field === agg.field && f.token === b.aggregationFilterToken);
              return h(
                "li",
                null,
                h(
                  "button",
                  {
                    type: "button",
                    class: ["bucket", active ? "bucket-active" : null],
                    testid: "refiner-bucket",
                    "aria-pressed": active ? "true" : "false",
                    data: { field: agg.field, key: valueText(b.key) },
                    on: { click: () => toggleFilter({ field: agg.field, key: valueText(b.key), token: b.aggregationFilterToken }) },
                  },
                  h("span", { class: "bucket-key" }, valueText(b.key)),
                  h("span", { class: "bucket-count" }, String(b.count ?? "")),
                ),
              );
            }),
          ),
        ),
      );
    }
  }

  function toggleFilter(filter) {
    if (!shown || filter.token === undefined || filter.token === null) return;
    const at = filters.findIndex((f) => f.field === filter.field && f.token === filter.token);
    if (at >= 0) filters.splice(at, 1);
    else filters.push(filter);
    run({ from: 0, reuse: true });
  }

  async function loadHidden(request) {
    const mine = ++hiddenSeq;
    hiddenPane.setAttribute("aria-busy", "true");
    hiddenPane.dataset.state = "loading";
    hiddenSummary.textContent = "Looking for matching items this person may not see…";
    clear(hiddenList);
    const answer = await ctx.run(
      () => ctx.api.hidden({ user: request.persona, queryString: request.query, connectionIds: request.connectionIds, size: HIDDEN_SIZE }),
      "Hidden items",
    );
    if (mine !== hiddenSeq) return;
    hiddenPane.setAttribute("aria-busy", "false");
    if (!answer) {
      hiddenPane.dataset.state = "error";
      hiddenSummary.textContent = "The hidden items could not be listed.";
      return;
    }
    const rows = arr(answer.value);
    const total = Number(answer.total ?? rows.length);
    hiddenSummary.textContent =
      total === 0
        ? `Nothing matching "${request.query}" is hidden from ${personName(request.persona)}.`
        : `${total} matching item${total === 1 ? " is" : "s are"} hidden from ${personName(request.persona)}${rows.length < total ? ` (first ${rows.length} listed)` : ""}.`;
    hiddenSummary.dataset.total = String(total);
    for (const row of rows) {
      const connectionId = String(row.connectionId ?? (request.connectionIds.length === 1 ? request.connectionIds[0] : ""));
      const itemId = String(row.itemId ?? "");
      hiddenList.appendChild(
        h(
          "li",
          { class: "hidden-item", testid: "hidden-item", data: { itemId, connectionId } },
          h("div", { class: "hit-head" }, h("strong", null, row.title ? String(row.title) : itemId), " ", connectionId ? badge(connectionId, "label") : null, " ", h("code", { class: "muted" }, itemId)),
          row.reason ? h("p", { class: "reason muted" }, String(row.reason)) : null,
          h(
            "div",
            { class: "hit-actions" },
            button("Why not?", (e) => explain(connectionId, itemId, request, e.currentTarget, false), {
              class: "btn-small",
              testid: "why-not",
              "aria-label": `Why is ${itemId} hidden from ${personName(request.persona)}?`,
            }),
          ),
        ),
      );
    }
    hiddenPane.dataset.persona = request.persona;
    hiddenPane.dataset.query = request.query;
    hiddenPane.dataset.run = String(mine);
    hiddenPane.dataset.state = "done";
  }

  async function explain(connectionId, itemId, request, opener, visible) {
    const who = personName(request.persona);
    const handle = ctx.panels.explain.open(visible ? `Why ${who} sees ${itemId}` : `Why ${who} does not see ${itemId}`, opener);
    const candidates = connectionId ? [connectionId] : request.connectionIds;
    let data = null;
    let used = null;
    for (const c of candidates) {
      try {
        data = await ctx.api.access(c, itemId, request.persona);
        used = c;
        break;
      } catch (err) {
        if (err instanceof ApiError && err.status === 404 && candidates.length > 1) continue;
        await ctx.run(() => Promise.reject(err), "Access explanation");
        handle.fill(h("p", { class: "error-text" }, "The explanation could not be loaded."));
        return;
      }
    }
    if (!data) {
      handle.fill(h("p", { class: "error-text" }, `No connection holds ${itemId}.`));
      return;
    }
    handle.fill(renderExplanation(data, { who, itemId, connectionId: used, names: namesFrom(overview) }));
  }

  return {
    el,
    title: "Search as a person",
    show(params) {
      const only = params && params.get("connection");
      if (!ready) init(params);
      else if (only) for (const box of sourcesBox.querySelectorAll("input")) box.checked = box.value === only;
    },
    hide() {},
    reset() {
      initSeq += 1;
      searchSeq += 1;
      hiddenSeq += 1;
      ready = false;
      overview = null;
      users = [];
      connections = [];
      shown = null;
      filters = [];
      searchButton.disabled = false;
      queryInput.value = "";
      clear(personaSelect);
      clear(sourcesBox);
      clear(chips);
      clear(refiners);
      clear(hitsList);
      clear(hiddenList);
      totalLine.textContent = "";
      hiddenSummary.textContent = "";
      hiddenNote.hidden = true;
      delete resultsPane.dataset.state;
      delete hiddenPane.dataset.state;
      resultsPane.setAttribute("aria-busy", "false");
      hiddenPane.setAttribute("aria-busy", "false");
    },
  };
}

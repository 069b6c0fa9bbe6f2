// Requests: the request journal, polled live with ?after= while the view is shown, filtered by
// method, status and path; and the connector conformance report's findings.

import { h, replace, clear, table, badge, button, field, options, statusBadge, formatTime, valueText, truncate, dl, viewHeading, arr, muted } from "./dom.js";

const POLL_MS = 2000;
const KEEP = 2000;
const SHOW = 500;
const METHODS = ["", "GET", "POST", "PUT", "PATCH", "DELETE"];
const SEVERITY_KIND = { error: "bad", critical: "bad", high: "bad", warning: "warn", medium: "warn", info: "info", low: "info", notice: "info" };

export function createRequests(ctx) {
  const el = h("section", { "aria-labelledby": "requests-title" });
  const heading = viewHeading("Requests", "requests-title");

  const live = h("input", { type: "checkbox", testid: "requests-live", id: "requests-live" });
  live.checked = true;
  const methodSelect = h("select", { testid: "requests-method" });
  options(methodSelect, METHODS.map((m) => ({ value: m, label: m || "any" })), "");
  const statusInput = h("input", { type: "text", inputmode: "numeric", testid: "requests-status", placeholder: "e.g. 429 or 4xx", autocomplete: "off", size: "8" });
  const pathInput = h("input", { type: "search", testid: "requests-path", placeholder: "path contains", autocomplete: "off" });
  const clearButton = button("Clear this tenant's journal", () => clearJournal(), { testid: "requests-clear", class: "btn-danger-quiet" });
  const refreshButton = button("Refresh", () => schedule(0), { testid: "requests-refresh", class: "btn-quiet" });
  const form = h(
    "form",
    { class: "toolbar", "aria-label": "Journal filters" },
    h("div", { class: "field field-check" }, h("label", { class: "check", htmlFor: "requests-live" }, live, " Live (every 2 s)")),
    field("Method", methodSelect),
    field("Status", statusInput),
    field("Path contains", pathInput),
    h("div", { class: "field field-button" }, refreshButton, " ", clearButton),
  );
  const summary = h("p", { class: "summary", testid: "requests-summary", "aria-live": "off" });
  const journalBox = h("div");
  const reportHead = h("div", { class: "view-head" }, h("h3", null, "Connector report"), button("Refresh report", () => loadReport(), { class: "btn-quiet", testid: "report-refresh" }));
  const reportBox = h("div", { testid: "report" });
  el.append(h("div", { class: "view-head" }, heading), form, summary, journalBox, reportHead, reportBox);

  let entries = [];
  let after = 0;
  let dropped = 0;
  let capacity = null;
  let visible = false;
  let timer = null;
  let polling = false;
  let seq = 0;
  let reportSeq = 0;
  let reportLoaded = false;

  form.addEventListener("submit", (e) => e.preventDefault());
  for (const control of [methodSelect, statusInput, pathInput]) control.addEventListener("input", () => render());
  methodSelect.addEventListener("change", () => render());
  live.addEventListener("change", () => {
    if (live.checked) schedule(0);
    else stop();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) stop();
    else if (visible && live.checked) schedule(0);
  });

  function statusMatches(status, wanted) {
    const w = wanted.trim().toLowerCase();
    if (!w) return true;
    const text = String(status);
    if (/^[1-5]xx$/.test(w)) return text[0] === w[0];
    return text === w;
  }

  function filtered() {
    const method = methodSelect.value;
    const path = pathInput.value.trim().toLowerCase();
    const status = statusInput.value;
    return entries.filter(
      (e) => (!method || e.method === method) && (!path || String(e.path || "").toLowerCase().includes(path)) && statusMatches(e.status, status),
    );
  }

  function render() {
    const rows = filtered();
    const newest = rows.slice(-SHOW).reverse();
    const shared = [dropped ? `${dropped} dropped` : "", capacity ? `capacity ${capacity}` : ""].filter(Boolean).join(", ");
    summary.textContent = `${entries.length} requests of this tenant in the view${rows.length !== entries.length ? `, ${rows.length} match the filters` : ""}${rows.length > SHOW ? `, newest ${SHOW} shown` : ""}.${shared ? ` The journal is shared by all tenants: ${shared}.` : ""}`;
    replace(
      journalBox,
      table({
        caption: "Request journal, newest first",
        testid: "requests-table",
        rows: newest,
        empty: entries.length ? "No request matches the filters." : "No request yet. Graph calls to this tenant appear here.",
        rowProps: (e) => ({ "data-testid": "request-row", "data-sequence": String(e.sequence) }),
        columns: [
          { label: "#", class: "num", render: (e) => String(e.sequence ?? "") },
          { label: "Time", render: (e) => formatTime(e.time) },
          { label: "Method", render: (e) => h("code", null, String(e.method ?? "")) },
          { label: "Path", render: (e) => h("code", { class: "path" }, String(e.path ?? "")) },
          { label: "Status", render: (e) => statusBadge(e.status) },
          { label: "ms", class: "num", render: (e) => String(e.durationMs ?? "") },
          { label: "Caller", render: (e) => truncate(String(e.caller ?? ""), 40) },
          { label: "client-request-id", render: (e) => h("code", { class: "muted" }, truncate(String(e.clientRequestId ?? ""), 40)) },
          {
            label: "Notes",
            render: (e) => {
              const notes = [];
              if (e.errorCode || e.errorMessage) notes.push(h("span", { class: "error-text" }, `${e.errorCode ? `${e.errorCode}: ` : ""}${truncate(String(e.errorMessage ?? ""), 160)}`));
              if (e.fault) notes.push(badge(`fault ${valueText(e.fault)}`, "warn"));
              if (e.throttled) notes.push(badge("throttled", "warn"));
              if (e.retryAfterSeconds !== undefined && e.retryAfterSeconds !== null) notes.push(badge(`retry after ${e.retryAfterSeconds}s`, "info"));
              if (e.batch) notes.push(badge(`batch ${valueText(e.batch)}`, "info"));
              return h("span", { class: "notes" }, notes);
            },
          },
        ],
      }),
    );
  }

  async function poll() {
    timer = null;
    if (!visible || polling) return;
    polling = true;
    const mine = seq;
    const answer = await ctx.run(() => ctx.api.requests(after), "Request journal");
    if (mine !== seq) return;
    polling = false;
    if (answer) {
      const fresh = arr(answer.value);
      dropped = Number(answer.dropped ?? 0);
      capacity = answer.capacity ?? null;
      if (fresh.length) {
        for (const e of fresh) {
          const n = Number(e.sequence);
          if (Number.isFinite(n) && n > after) after = n;
        }
        entries = entries.concat(fresh.filter((e) => !(Number(e.sequence) <= 0)));
        if (entries.length > KEEP) entries = entries.slice(-KEEP);
      }
      if (fresh.length || !journalBox.firstChild) render();
      else summary.dataset.polled = String(Date.now());
    }
    if (visible && live.checked && !document.hidden) schedule(POLL_MS);
  }

  function schedule(ms) {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function stop() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  async function clearJournal() {
    const mine = seq;
    const ok = await ctx.run(() => ctx.api.clearRequests().then(() => true), "Clearing the tenant's journal");
    if (!ok || mine !== seq) return;
    entries = [];
    render();
    ctx.status(`The journal of tenant ${ctx.tenant()} was cleared.`, "ok");
  }

  async function loadReport() {
    const mine = ++reportSeq;
    replace(reportBox, muted("Building the report…", true));
    const report = await ctx.run(() => ctx.api.report(), "Connector report");
    if (mine !== reportSeq) return;
    if (!report) {
      replace(reportBox, muted("The report could not be built.", true));
      return;
    }
    reportLoaded = true;
    renderReport(report);
  }

  function renderValue(value) {
    if (Array.isArray(value)) {
      if (value.length === 0) return muted("none");
      const shown = value.slice(0, 12);
      return h(
        "span",
        { class: "badges" },
        shown.map((v) => h("code", { class: "sample" }, truncate(typeof v === "object" ? JSON.stringify(v) : String(v), 80))),
        value.length > shown.length ? muted(` +${value.length - shown.length} more`) : null,
      );
    }
    if (value && typeof value === "object") return h("code", null, truncate(JSON.stringify(value), 300));
    return String(value ?? "");
  }

  function renderReport(report) {
    const findings = arr(report.findings);
    const parts = [];
    const top = Object.entries(report).filter(([k]) => k !== "findings");
    if (top.length) {
      parts.push(
        dl(
          top.map(([k, v]) => [k, v && typeof v === "object" && !Array.isArray(v) ? Object.entries(v).map(([a, b]) => `${a}: ${valueText(b)}`).join(" · ") || "—" : renderValue(v)]),
          "kv-inline",
        ),
      );
    }
    if (findings.length === 0) {
      parts.push(h("p", { class: "notice", testid: "report-clean" }, "No findings: nothing the connector did would hurt it against the real service."));
    } else {
      parts.push(
        h(
          "ul",
          { class: "findings", testid: "report-findings" },
          findings.map((f) => {
            const finding = f && typeof f === "object" ? f : { message: String(f) };
            const sev = String(finding.severity ?? "info");
            const message = finding.message ?? finding.summary ?? finding.title ?? "";
            const rest = Object.entries(finding).filter(([k]) => !["code", "severity", "message", "summary", "title"].includes(k));
            return h(
              "li",
              { class: ["finding", `finding-${sev.toLowerCase()}`], testid: "report-finding", data: { code: finding.code ?? "" } },
              h("div", { class: "finding-head" }, badge(sev, SEVERITY_KIND[sev.toLowerCase()] || "info"), " ", h("code", null, String(finding.code ?? "")), finding.title && finding.message ? h("strong", null, ` ${finding.title}`) : null),
              message ? h("p", null, String(message)) : null,
              rest.length ? dl(rest.map(([k, v]) => [k, renderValue(v)]), "kv-compact") : null,
            );
          }),
        ),
      );
    }
    replace(reportBox, ...parts);
  }

  return {
    el,
    title: "Requests",
    show() {
      visible = true;
      if (!journalBox.firstChild) render();
      if (live.checked) schedule(0);
      else if (!polling && entries.length === 0) schedule(0);
      if (!reportLoaded) loadReport();
    },
    hide() {
      visible = false;
      stop();
    },
    reset() {
      seq += 1;
      reportSeq += 1;
      stop();
      polling = false;
      entries = [];
      after = 0;
      dropped = 0;
      capacity = null;
      reportLoaded = false;
      clear(journalBox);
      clear(reportBox);
      summary.textContent = "";
    },
  };
}

// Actions: reset the tenant (after a confirm step), load the sample fixtures, advance the
// emulator clock, and add, list and delete fault rules.

import { h, replace, clear, table, badge, button, field, options, valueText, formatTime, viewHeading, arr, muted } from "./dom.js";

const METHODS = ["", "GET", "POST", "PUT", "PATCH", "DELETE"];

function numberOrUndefined(input) {
  const raw = input.value.trim();
  if (raw === "") return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : NaN;
}

export function createActions(ctx) {
  const el = h("section", { "aria-labelledby": "actions-title" });
  const heading = viewHeading("Actions", "actions-title");

  // Tenant data
  const loadSampleButton = button("Load the sample fixtures", () => loadSample(), { class: "btn-primary", testid: "load-sample" });
  const resetButton = button("Reset tenant…", () => askReset(), { class: "btn-danger", testid: "reset-tenant" });
  const confirmBox = h("div", { class: "confirm", testid: "reset-confirm-box", hidden: true, role: "group", "aria-label": "Confirm reset" });
  const tenantCard = h(
    "article",
    { class: "card" },
    h("h3", null, "Tenant data"),
    muted("The sample (fixtures/sample-tenant.json) replaces the tenant it names: its users, groups, connections, schemas, external groups and items.", true),
    h("div", { class: "button-row" }, loadSampleButton, resetButton),
    confirmBox,
  );

  // Clock
  const clockNow = h("p", { class: "clock", testid: "clock-now" }, "…");
  const secondsInput = h("input", { type: "number", min: "0", step: "1", value: "3600", testid: "clock-seconds", inputmode: "numeric" });
  const advanceButton = h("button", { type: "submit", class: "btn", testid: "clock-advance" }, "Advance");
  const clockForm = h("form", { class: "toolbar", "aria-label": "Advance the clock" }, field("Seconds", secondsInput, "Operations that come due are settled."), h("div", { class: "field field-button" }, advanceButton));
  const clockCard = h(
    "article",
    { class: "card" },
    h("h3", null, "Emulator clock"),
    clockNow,
    clockForm,
  );

  // Faults
  const fMethod = h("select", { testid: "fault-method" });
  options(fMethod, METHODS.map((m) => ({ value: m, label: m || "any" })), "");
  const input = (testid, type, extra) => h("input", { type, testid, autocomplete: "off", ...extra });
  const fPath = input("fault-path", "text", { class: "wide", required: true, placeholder: "/v1.0/external/connections/*/items/*", spellcheck: "false" });
  const fStatus = input("fault-status", "number", { min: "100", max: "599", value: "503" });
  const fCode = input("fault-code", "text", { placeholder: "serviceNotAvailable" });
  const fMessage = input("fault-message", "text", { placeholder: "optional" });
  const fRetry = input("fault-retry-after", "number", { min: "0", placeholder: "optional" });
  const fCount = input("fault-count", "number", { min: "1", placeholder: "every time" });
  const faultForm = h(
    "form",
    { class: "toolbar fault-form", "aria-label": "Add a fault rule", testid: "fault-form" },
    field("Method", fMethod),
    field("Path pattern", fPath, "* matches one path segment."),
    field("Status", fStatus),
    field("Code", fCode),
    field("Message", fMessage),
    field("Retry-After (s)", fRetry),
    field("Count", fCount, "Fire this many times, then stop."),
    h("div", { class: "field field-button" }, h("button", { type: "submit", class: "btn btn-primary", testid: "fault-add" }, "Add rule")),
  );
  const faultsBox = h("div", { testid: "faults" });
  const faultsCard = h(
    "article",
    { class: "card card-wide" },
    h(
      "div",
      { class: "card-head" },
      h("h3", null, "Fault rules"),
      h("span", { class: "button-row" }, button("Refresh", () => loadFaults(), { class: "btn-quiet btn-small", testid: "faults-refresh" }), button("Delete all", () => clearFaults(), { class: "btn-danger-quiet btn-small", testid: "faults-clear" })),
    ),
    muted("A rule answers matching Graph requests with an error instead of serving them (for every tenant).", true),
    faultForm,
    faultsBox,
  );

  el.append(h("div", { class: "view-head" }, heading), h("div", { class: "cards" }, tenantCard, clockCard, faultsCard));

  let loaded = false;
  let seq = 0;

  // Reset with a confirm step
  function askReset() {
    const t = ctx.tenant();
    const yes = button(`Yes, empty tenant ${t}`, () => doReset(t), { class: "btn-danger", testid: "reset-confirm" });
    const no = button("Cancel", () => closeConfirm(), { testid: "reset-cancel" });
    replace(
      confirmBox,
      h("p", null, h("strong", null, "Empty tenant "), h("code", null, t), h("strong", null, "?"), " Its users, groups, applications, connections and items are deleted. This cannot be undone."),
      h("div", { class: "button-row" }, yes, no),
    );
    confirmBox.hidden = false;
    no.focus();
  }

  function closeConfirm(focusReset = true) {
    confirmBox.hidden = true;
    clear(confirmBox);
    if (focusReset) resetButton.focus();
  }

  confirmBox.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      closeConfirm();
    }
  });

  async function doReset(t) {
    if (t !== ctx.tenant()) {
      closeConfirm();
      ctx.status("The tenant changed; nothing was reset.", "error");
      return;
    }
    closeConfirm(false);
    resetButton.disabled = true;
    ctx.status(`Resetting tenant ${t}…`, "info");
    const ok = await ctx.run(() => ctx.api.reset().then(() => true), "Reset");
    resetButton.disabled = false;
    resetButton.focus();
    if (!ok) return;
    ctx.dataChanged();
    ctx.status(`Tenant ${t} was reset: it is empty now.`, "ok");
  }

  // Sample fixtures
  async function loadSample() {
    loadSampleButton.disabled = true;
    loadSampleButton.setAttribute("aria-busy", "true");
    ctx.status("Loading the sample fixtures…", "info");
    const viewed = ctx.tenant();
    const result = await ctx.run(async () => {
      const text = await ctx.api.sampleDocument();
      return ctx.api.loadFixtures(text);
    }, "Loading the sample fixtures");
    loadSampleButton.disabled = false;
    loadSampleButton.removeAttribute("aria-busy");
    if (!result) return;
    const tenants = Array.isArray(result.tenants) ? result.tenants.map(String) : [];
    const created = result.created && typeof result.created === "object" ? result.created : {};
    const counts = ["users", "groups", "connections", "externalGroups", "items"]
      .filter((k) => created[k] !== undefined)
      .map((k) => `${valueText(created[k])} ${k === "externalGroups" ? "external groups" : k}`)
      .join(", ");
    ctx.dataChanged();
    const elsewhere = tenants.length && !tenants.includes(viewed) ? ` Switch the tenant picker to ${tenants[0]} to see it.` : "";
    ctx.status(
      `Loaded the sample fixtures into ${tenants.length ? `tenant ${tenants.join(", ")}` : "gcemu"}${counts ? `: ${counts}` : ""}${result.durationMs !== undefined ? ` (${result.durationMs} ms)` : ""}.${elsewhere}`,
      "ok",
    );
  }

  // Clock
  function renderClock(answer) {
    if (!answer || typeof answer !== "object") {
      clockNow.textContent = valueText(answer);
      return;
    }
    const now = answer.now ?? answer.time ?? answer.utc;
    clockNow.textContent = now ? `Now: ${formatTime(now)} (${now})` : JSON.stringify(answer);
  }

  async function loadClock() {
    const mine = seq;
    const answer = await ctx.run(() => ctx.api.clock(), "Clock");
    if (mine !== seq || !answer) return;
    renderClock(answer);
  }

  clockForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const seconds = numberOrUndefined(secondsInput);
    if (seconds === undefined || Number.isNaN(seconds) || seconds < 0 || !Number.isInteger(seconds)) {
      ctx.status("Enter a whole, non-negative number of seconds.", "error");
      secondsInput.focus();
      return;
    }
    const mine = seq;
    advanceButton.disabled = true;
    const answer = await ctx.run(() => ctx.api.advanceClock(seconds), "Advancing the clock");
    advanceButton.disabled = false;
    if (!answer || mine !== seq) return;
    renderClock(answer);
    ctx.status(`Clock advanced by ${seconds} s${answer.now ? `: now ${formatTime(answer.now)}` : ""}.`, "ok");
  });

  // Faults
  function renderFaults(answer) {
    const rules = Array.isArray(answer) ? answer : arr(answer && answer.value);
    replace(
      faultsBox,
      table({
        caption: "Fault rules",
        testid: "faults-table",
        rows: rules,
        empty: "No fault rules.",
        rowProps: (r) => ({ "data-testid": "fault-row", "data-fault-id": String(r.id ?? "") }),
        columns: [
          { label: "Id", render: (r) => h("code", null, String(r.id ?? "")) },
          { label: "Request", render: (r) => h("code", null, `${r.method || "any"} ${r.path ?? ""}`) },
          {
            label: "Answer",
            render: (r) =>
              [r.status, r.code, r.message, r.retryAfterSeconds != null ? `Retry-After ${r.retryAfterSeconds}s` : null].filter((x) => x != null && x !== "").join(" · "),
          },
          { label: "Fired", render: (r) => `${r.fired ?? 0} of ${r.count ?? "∞"}${r.remaining === 0 ? " (used up)" : ""}` },
          { label: "", render: (r) => button("Delete", () => deleteFault(r.id), { class: "btn-small btn-danger-quiet", testid: "fault-delete", "aria-label": `Delete fault rule ${r.id}` }) },
        ],
      }),
    );
  }

  async function loadFaults() {
    const mine = seq;
    const answer = await ctx.run(() => ctx.api.faults(), "Fault rules");
    if (mine !== seq || !answer) return;
    renderFaults(answer);
  }

  faultForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const path = fPath.value.trim();
    if (!path) {
      ctx.status("A fault rule needs a path pattern.", "error");
      fPath.focus();
      return;
    }
    const rule = { path };
    if (fMethod.value) rule.method = fMethod.value;
    const numbers = [
      ["status", fStatus],
      ["retryAfterSeconds", fRetry],
      ["count", fCount],
    ];
    for (const [name, input] of numbers) {
      const n = numberOrUndefined(input);
      if (Number.isNaN(n) || (n !== undefined && (!Number.isInteger(n) || n < 0))) {
        ctx.status(`${name} must be a whole, non-negative number.`, "error");
        input.focus();
        return;
      }
      if (n !== undefined) rule[name] = n;
    }
    if (fCode.value.trim()) rule.code = fCode.value.trim();
    if (fMessage.value.trim()) rule.message = fMessage.value.trim();
    const mine = seq;
    const added = await ctx.run(() => ctx.api.addFault(rule), "Adding the fault rule");
    if (!added || mine !== seq) return;
    ctx.status(`Fault rule ${added.id ?? ""} added: ${rule.method || "any method"} ${path} → ${rule.status ?? "default status"}.`, "ok");
    loadFaults();
  });

  async function deleteFault(id) {
    const mine = seq;
    const ok = await ctx.run(() => ctx.api.deleteFault(String(id)).then(() => true), `Deleting fault rule ${id}`);
    if (!ok || mine !== seq) return;
    ctx.status(`Fault rule ${id} deleted.`, "ok");
    await loadFaults();
    const first = faultsBox.querySelector("button");
    (first || fPath).focus();
  }

  async function clearFaults() {
    const mine = seq;
    const ok = await ctx.run(() => ctx.api.clearFaults().then(() => true), "Deleting the fault rules");
    if (!ok || mine !== seq) return;
    ctx.status("Every fault rule was deleted.", "ok");
    loadFaults();
  }

  return {
    el,
    title: "Actions",
    show() {
      if (!loaded) {
        loaded = true;
        loadClock();
        loadFaults();
      }
    },
    hide() {
      if (!confirmBox.hidden) closeConfirm(false);
    },
    reset() {
      seq += 1;
      loaded = false;
      if (!confirmBox.hidden) closeConfirm(false);
      clockNow.textContent = "…";
      clear(faultsBox);
    },
  };
}

// Renders the access explanation (why a person may or may not see an item) and ACL entries.

import { h, table, badge, valueText, arr, muted } from "./dom.js";

/** Directory ids to display names, from the overview: for chains written with ids. */
export function namesFrom(overview) {
  const names = new Map();
  for (const u of (overview && overview.users) || []) if (u.id) names.set(u.id, u.displayName || u.userPrincipalName || u.id);
  for (const g of (overview && overview.groups) || []) if (g.id) names.set(g.id, g.displayName || g.id);
  return names;
}

/** One chain step: "user:<id>" is shown as "user <name>" when the id is known. */
function stepText(step, names) {
  const text = String(step);
  const m = /^([A-Za-z]+):(.+)$/.exec(text);
  if (names && m && names.has(m[2])) return `${m[1]} ${names.get(m[2])}`;
  return text;
}

/** A membership chain ["user a", "group B", ...] as "user a → group B → ...". */
export function chain(path, names) {
  const steps = arr(path);
  const out = h("span", { class: "chain" });
  const texts = steps.map((step) => stepText(step, names));
  steps.forEach((step, i) => {
    if (i > 0) out.appendChild(h("span", { class: "chain-arrow", "aria-hidden": "true" }, " → "));
    out.appendChild(h("span", { class: "chain-step", title: texts[i] !== String(step) ? String(step) : null }, texts[i]));
  });
  if (steps.length > 1) out.setAttribute("aria-label", texts.join(", member of "));
  return out;
}

export function accessBadge(accessType) {
  return badge(String(accessType ?? ""), accessType === "deny" ? "bad" : "ok");
}

function resolvedCell(resolved) {
  if (!resolved || typeof resolved !== "object") return muted("—");
  const parts = [];
  if (resolved.found === false) parts.push(badge("not found", "warn"), " ");
  if (resolved.displayName) parts.push(h("strong", null, resolved.displayName), " ");
  if (resolved.userPrincipalName) parts.push(h("code", null, resolved.userPrincipalName), " ");
  if (resolved.members !== undefined && resolved.members !== null) parts.push(muted(`${resolved.members} members`), " ");
  if (resolved.description) parts.push(h("div", { class: "resolved-text" }, resolved.description));
  return h("div", { class: "resolved" }, parts);
}

/** A table of ACL entries; entries that carry `resolved` get a "Names" column. */
export function aclTable(entries, caption, testid) {
  const rows = arr(entries);
  const columns = [
    { label: "Access", render: (e) => accessBadge(e.accessType) },
    { label: "Type", render: (e) => String(e.type ?? "") },
    { label: "Value", render: (e) => h("code", null, valueText(e.value)) },
  ];
  if (rows.some((e) => e && e.identitySource)) columns.push({ label: "Identity source", render: (e) => String(e.identitySource ?? "") });
  if (rows.some((e) => e && e.resolved)) columns.push({ label: "Names", render: (e) => resolvedCell(e.resolved) });
  return table({ caption, testid, rows, columns, empty: "No entries.", rowProps: () => ({ "data-testid": "acl-entry" }) });
}

function ruleList(rules) {
  const list = arr(rules);
  if (list.length === 0) return muted("No rules.", true);
  return h(
    "ul",
    null,
    list.map((r) =>
      h(
        "li",
        null,
        r.holds ? badge("holds", "ok") : badge("fails", "warn"),
        " ",
        h("code", null, `${r.property ?? ""} ${r.operation ?? ""} ${valueText(r.values)}`),
        ` (item: ${valueText(r.itemValue) || "none"})`,
        r.reason ? muted(` ${r.reason}`) : null,
      ),
    ),
  );
}

function resultTemplateBlock(rt) {
  if (!rt || typeof rt !== "object") return null;
  const tried = arr(rt.tried);
  if (!rt.id && tried.length === 0) return null;
  return h(
    "details",
    { class: "block" },
    h("summary", null, rt.id ? `Result template: ${rt.id}` : "Result template: none chosen"),
    tried.map((t) =>
      h(
        "div",
        { class: "template" },
        h("p", null, h("code", null, String(t.id ?? "")), t.priority !== undefined ? ` priority ${t.priority}` : "", " ", t.chosen ? badge("chosen", "ok") : badge("not chosen", "info")),
        ruleList(t.rules),
      ),
    ),
  );
}

/** The answer of GET .../items/{id}/access rendered for a person. */
export function renderExplanation(data, { who, itemId, connectionId, names }) {
  const allowed = data && data.allowed === true;
  const verdict = h(
    "p",
    { class: ["verdict", allowed ? "verdict-allowed" : "verdict-denied"], testid: "explain-verdict", data: { allowed: String(allowed) } },
    h("span", { class: "verdict-mark", "aria-hidden": "true" }, allowed ? "✓" : "✕"),
    " ",
    allowed ? `Visible: ${who} is allowed to see ` : `Not visible: ${who} is not allowed to see `,
    h("code", null, itemId),
    connectionId ? ` (${connectionId})` : "",
    ".",
  );
  const reason = h("p", { class: "reason", testid: "explain-reason" }, String(data && data.reason ? data.reason : "No reason given."));
  const paths = arr(data && data.paths);
  const parts = [verdict, h("h3", null, "Reason"), reason];
  parts.push(h("h3", null, "Matched ACL entries"), aclTable(data && data.matchedEntries, "Matched ACL entries", "explain-entries"));
  parts.push(h("h3", null, "Membership paths"));
  if (paths.length === 0) parts.push(muted("No membership path: no group entry matched through nesting.", true));
  else parts.push(h("ol", { class: "paths", testid: "explain-paths" }, paths.map((p) => h("li", null, chain(p, names)))));
  const rt = resultTemplateBlock(data && data.resultTemplate);
  if (rt) parts.push(rt);
  return h("div", { class: "explanation" }, parts);
}

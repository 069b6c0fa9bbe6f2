// DOM helpers. Every piece of data reaches the page through textContent or an attribute set with
// setAttribute: nothing here parses HTML, so item content and names cannot inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
    return;
  }
  if (child instanceof Node) {
    parent.appendChild(child);
    return;
  }
  parent.appendChild(document.createTextNode(String(child)));
}

// Set as element properties; any other key becomes an attribute.
const PROPS = new Set(["value", "checked", "disabled", "selected", "hidden", "type", "id", "htmlFor", "name", "placeholder", "title", "href", "min", "max", "step", "required", "open"]);

function applyProps(el, props) {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    switch (key) {
      case "class":
        el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
        break;
      case "text":
        el.textContent = String(value);
        break;
      case "testid":
        el.setAttribute("data-testid", value);
        break;
      case "data":
        for (const [k, v] of Object.entries(value)) {
          if (v !== undefined && v !== null) el.dataset[k] = String(v);
        }
        break;
      case "on":
        for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
        break;
      case "attrs":
        for (const [k, v] of Object.entries(value)) {
          if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : String(v));
        }
        break;
      default:
        if (PROPS.has(key)) el[key] = value;
        else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

/** Builds an HTML element: h("button", {class: "btn", on: {click}}, "Label"). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  applyProps(el, props);
  append(el, children);
  return el;
}

/** Builds an SVG element; attributes are set verbatim with setAttribute. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k === "on") for (const [event, handler] of Object.entries(v)) el.addEventListener(event, handler);
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

export const arr = (value) => (Array.isArray(value) ? value : []);

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

let uid = 0;
export function nextId(prefix = "id") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form control (and its hint) in a wrapper. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = nextId("f");
  const label = h("label", { htmlFor: control.id }, labelText);
  const parts = [label, control];
  if (hint) {
    const hintId = nextId("hint");
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("span", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function button(label, onClick, props = {}) {
  const cls = ["btn", props.class].filter(Boolean).join(" ");
  return h("button", { ...props, type: props.type || "button", class: cls, on: { click: onClick, ...(props.on || {}) } }, label);
}

export function badge(text, kind) {
  return h("span", { class: ["badge", kind ? `badge-${kind}` : null] }, text);
}

/** A horizontally scrollable table: columns [{label, render(row, i) -> node|string, class}]. */
export function table({ columns, rows, testid, caption, rowProps, empty }) {
  const thead = h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label))));
  const tbody = h("tbody");
  if (rows.length === 0 && empty) {
    tbody.appendChild(h("tr", null, h("td", { colspan: String(columns.length), class: "empty" }, empty)));
  }
  rows.forEach((row, i) => {
    const tr = h("tr", rowProps ? rowProps(row, i) : null);
    for (const c of columns) {
      const value = c.render(row, i);
      tr.appendChild(h("td", { class: c.class }, value === undefined || value === null ? "" : value));
    }
    tbody.appendChild(tr);
  });
  const tbl = h("table", { class: "data", testid }, caption ? h("caption", null, caption) : null, thead, tbody);
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption || "Table" }, tbl);
}

export function dl(pairs, cls) {
  const list = h("dl", { class: ["kv", cls] });
  for (const [k, v] of pairs) {
    list.appendChild(h("dt", null, k));
    list.appendChild(h("dd", null, v === undefined || v === null || v === "" ? muted("—") : v));
  }
  return list;
}

export function valueText(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(valueText).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function truncate(text, n) {
  const t = String(text ?? "");
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

export function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC");
}

/**
 * A search summary with Graph's highlight markup: <c0>term</c0> becomes <mark>, <ddd/> an ellipsis.
 * The text is split on those exact tags; every piece is added as text, never parsed.
 */
export function highlighted(summary) {
  const frag = document.createDocumentFragment();
  if (!summary) return frag;
  const parts = String(summary).split(/(<c0>|<\/c0>|<ddd\/>)/);
  let inMark = false;
  for (const part of parts) {
    if (part === "<c0>") inMark = true;
    else if (part === "</c0>") inMark = false;
    else if (part === "<ddd/>") frag.appendChild(document.createTextNode("…"));
    else if (part) frag.appendChild(inMark ? h("mark", null, part) : document.createTextNode(part));
  }
  return frag;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function viewHeading(text, id) {
  return h("h2", { class: "view-title", tabindex: "-1", id }, text);
}

export function options(select, items, selected) {
  clear(select);
  for (const item of items) {
    const opt = h("option", { value: item.value }, item.label);
    if (item.value === selected) opt.selected = true;
    select.appendChild(opt);
  }
  return select;
}

export function statusBadge(status) {
  const n = Number(status);
  const kind = n >= 500 ? "bad" : n >= 400 ? "warn" : n >= 300 ? "info" : "ok";
  return badge(String(status), kind);
}

/** The property a connection's schema labels `title` (or one named title or name). */
export function titleKey(connection) {
  const props = (connection && connection.schema && connection.schema.properties) || [];
  const p = props.find((x) => (x.labels || []).includes("title")) || props.find((x) => /^(title|name)$/i.test(x.name));
  return p ? p.name : "title";
}

/** A few item properties as "key: value": no annotations, URLs or long text fields. */
export function propsLine(properties, skip, max = 4) {
  const entries = Object.entries(properties || {}).filter(
    ([k, v]) => k !== skip && !k.includes("@odata") && k !== "description" && k !== "summary" && !/^https?:/.test(String(v)),
  );
  return h(
    "p",
    { class: "props" },
    entries.slice(0, max).map(([k, v]) => h("span", null, h("span", { class: "prop-key" }, `${k}: `), truncate(valueText(v), 40))),
    entries.length > max ? muted(`+${entries.length - max} more`) : null,
  );
}

/** "Name (upn)", with guest and disabled accounts marked. */
export function personLabel(u) {
  const notes = [];
  if (u.userType && u.userType !== "Member") notes.push(String(u.userType).toLowerCase());
  if (u.accountEnabled === false) notes.push("disabled");
  return `${u.displayName || u.userPrincipalName} (${u.userPrincipalName || u.id})${notes.length ? ` [${notes.join(", ")}]` : ""}`;
}

/** Secondary text: a <span>, or a <p> with block = true. */
export function muted(text, block = false) {
  return h(block ? "p" : "span", { class: "muted" }, text);
}

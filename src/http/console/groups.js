// Groups: directory and external groups drawn as a layered graph (an arrow goes from a group to a
// group it contains; a table instead above MAX_DRAWN groups), groups that contain each other (the
// server's strongly connected components) highlighted and listed, members, and for a chosen user
// the membership chains that reach each group.

import { h, s, replace, clear, table, badge, field, options, truncate, viewHeading, arr, personLabel, muted } from "./dom.js";
import { chain } from "./explain.js";

const BOX_W = 172;
const BOX_H = 46;
const GAP_X = 18;
const GAP_Y = 62;
const PAD = 16;
const LOOP = 56;
const MAX_DRAWN = 300;
const MAX_LISTED = 200;

/** Edges between group nodes (container -> contained), unique, only to nodes that exist. */
function edgesOf(nodes) {
  const known = new Set(nodes.map((n) => n.id));
  const edges = [];
  const seen = new Set();
  for (const n of nodes) {
    for (const m of arr(n.members)) {
      if (!m || !m.node || !known.has(m.node)) continue;
      const key = `${n.id}\u0000${m.node}`;
      if (seen.has(key)) continue;
      seen.add(key);
      edges.push({ from: n.id, to: m.node });
    }
  }
  return edges;
}

/**
 * Places the nodes: back edges found by a depth-first walk from the roots, longest-path layers
 * over the remaining edges, a barycentre pass to reduce crossings, and rows of at most `perRow`
 * boxes. Nodes with no group edge at all are set apart in a grid below.
 */
function layout(nodes, edges, perRow) {
  const ids = nodes.map((n) => n.id);
  const out = new Map(ids.map((id) => [id, []]));
  const indeg = new Map(ids.map((id) => [id, 0]));
  for (const e of edges) {
    out.get(e.from).push(e.to);
    indeg.set(e.to, indeg.get(e.to) + 1);
  }
  const linked = new Set();
  for (const e of edges) {
    linked.add(e.from);
    linked.add(e.to);
  }
  // Back edges: a walk from the roots first, then from whatever is left (nodes only on cycles).
  const mark = new Map();
  const back = new Set();
  const order = [...ids.filter((id) => indeg.get(id) === 0), ...ids.filter((id) => indeg.get(id) !== 0)];
  for (const start of order) {
    if (mark.has(start) || !linked.has(start)) continue;
    const work = [[start, 0]];
    mark.set(start, 1);
    while (work.length) {
      const frame = work[work.length - 1];
      const [v, i] = frame;
      const next = out.get(v);
      if (i < next.length) {
        frame[1] += 1;
        const w = next[i];
        if (mark.get(w) === 1) back.add(`${v}\u0000${w}`);
        else if (!mark.has(w)) {
          mark.set(w, 1);
          work.push([w, 0]);
        }
      } else {
        mark.set(v, 2);
        work.pop();
      }
    }
  }
  // Longest-path layers over forward edges (Kahn).
  const forward = edges.filter((e) => !back.has(`${e.from}\u0000${e.to}`));
  const fin = new Map(ids.map((id) => [id, 0]));
  const fout = new Map(ids.map((id) => [id, []]));
  const fparents = new Map(ids.map((id) => [id, []]));
  for (const e of forward) {
    fin.set(e.to, fin.get(e.to) + 1);
    fout.get(e.from).push(e.to);
    fparents.get(e.to).push(e.from);
  }
  const layer = new Map();
  const queue = ids.filter((id) => linked.has(id) && fin.get(id) === 0);
  for (const id of queue) layer.set(id, 0);
  for (let qi = 0; qi < queue.length; qi += 1) {
    const v = queue[qi];
    for (const w of fout.get(v)) {
      layer.set(w, Math.max(layer.get(w) ?? 0, layer.get(v) + 1));
      fin.set(w, fin.get(w) - 1);
      if (fin.get(w) === 0) queue.push(w);
    }
  }
  const layers = [];
  for (const id of ids) {
    if (!linked.has(id)) continue;
    const l = layer.get(id) ?? 0;
    (layers[l] ||= []).push(id);
  }
  // Barycentre ordering, two sweeps down.
  for (let pass = 0; pass < 2; pass += 1) {
    for (let l = 1; l < layers.length; l += 1) {
      const above = new Map((layers[l - 1] || []).map((id, i) => [id, i]));
      const current = layers[l] || [];
      const weight = new Map(
        current.map((id, i) => {
          const ps = fparents.get(id).filter((p) => above.has(p));
          return [id, ps.length ? ps.reduce((a, p) => a + above.get(p), 0) / ps.length : i];
        }),
      );
      current.sort((a, b) => weight.get(a) - weight.get(b));
    }
  }
  // Coordinates: each layer is cut into rows of perRow boxes, centred.
  const pos = new Map();
  const rowWidth = (n) => n * BOX_W + (n - 1) * GAP_X;
  let widest = rowWidth(Math.min(perRow, Math.max(1, ...layers.map((l) => (l ? l.length : 0)))));
  const isolated = ids.filter((id) => !linked.has(id));
  if (isolated.length) widest = Math.max(widest, rowWidth(Math.min(perRow, isolated.length)));
  let y = PAD;
  for (const ids2 of layers) {
    if (!ids2) continue;
    for (let start = 0; start < ids2.length; start += perRow) {
      const row = ids2.slice(start, start + perRow);
      let x = PAD + (widest - rowWidth(row.length)) / 2;
      for (const id of row) {
        pos.set(id, { x, y });
        x += BOX_W + GAP_X;
      }
      y += BOX_H + (start + perRow < ids2.length ? GAP_Y / 2 : GAP_Y);
    }
  }
  let isolatedTop = null;
  if (isolated.length) {
    if (layers.length) y += 8;
    isolatedTop = y;
    y += 22;
    for (let start = 0; start < isolated.length; start += perRow) {
      const row = isolated.slice(start, start + perRow);
      let x = PAD;
      for (const id of row) {
        pos.set(id, { x, y });
        x += BOX_W + GAP_X;
      }
      y += BOX_H + GAP_Y / 3;
    }
  }
  return { pos, back, width: widest + 2 * PAD + LOOP, height: y + PAD, isolatedTop };
}

function nodeLabel(node) {
  return node.displayName || node.groupId || node.id;
}

function memberCounts(node) {
  const members = arr(node.members);
  const users = members.filter((m) => m.kind === "user").length;
  const groups = members.length - users;
  const parts = [];
  if (users) parts.push(`${users} user${users === 1 ? "" : "s"}`);
  if (groups) parts.push(`${groups} group${groups === 1 ? "" : "s"}`);
  return parts.join(", ") || "no members";
}

function kindText(node) {
  return node.kind === "externalGroup" ? `external · ${node.connectionId ?? ""}` : "directory";
}

export function createGroups(ctx) {
  const el = h("section", { "aria-labelledby": "groups-title" });
  const heading = viewHeading("Groups", "groups-title");
  const userSelect = h("select", { testid: "groups-user" });
  const form = h("form", { class: "toolbar", "aria-label": "Membership chains" }, field("Chains for user", userSelect, "Highlights every group the user is in, directly or through nesting."));
  const legend = h(
    "p",
    { class: "legend" },
    [["directory", "directory group"], ["external", "external group"], ["reached", "reached by the chosen user"], ["cycle", "in a cycle (groups that contain each other)"]].map(([k, text]) =>
      h("span", { class: "legend-item" }, h("span", { class: `swatch swatch-${k}`, "aria-hidden": "true" }), text),
    ),
    h("span", { class: "legend-item muted", testid: "groups-arrow-legend" }, "Arrow: group → a group it contains."),
  );
  const graphBox = h("div", { class: "graph-wrap", testid: "groups-graph", tabindex: "-1" });
  const details = h("div", { class: "node-details", testid: "group-details", "aria-live": "polite" });
  const cyclesBox = h("div");
  const chainsBox = h("div");
  el.append(
    h("div", { class: "view-head" }, heading),
    form,
    legend,
    graphBox,
    h("div", { class: "split" }, h("div", null, chainsBox, cyclesBox), details),
  );

  let seq = 0;
  let ready = false;
  let users = [];
  let data = null;
  let selected = null;
  let chosenUser = "";
  let listFilter = "";
  const nodeEls = new Map();

  form.addEventListener("submit", (e) => e.preventDefault());
  userSelect.addEventListener("change", () => {
    chosenUser = userSelect.value;
    load();
  });

  async function init() {
    const mine = ++seq;
    replace(graphBox, muted("Loading…", true));
    const overview = await ctx.run(() => ctx.overview(), "Groups");
    if (mine !== seq) return;
    users = arr(overview && overview.users);
    options(
      userSelect,
      [{ value: "", label: "(nobody)" }, ...users.map((u) => ({ value: u.userPrincipalName || u.id, label: personLabel(u) }))],
      chosenUser,
    );
    ready = true;
    load();
  }

  async function load() {
    const mine = ++seq;
    const user = chosenUser;
    const answer = await ctx.run(() => ctx.api.groups(user || undefined), "Groups");
    if (mine !== seq) return;
    if (!answer) {
      replace(graphBox, muted("The groups could not be loaded.", true));
      return;
    }
    data = answer;
    render();
  }

  function byId() {
    return new Map((data.nodes || []).map((n) => [n.id, n]));
  }

  function render() {
    const nodes = arr(data.nodes);
    const cycles = arr(data.cycles);
    const chains = arr(data.chains);
    const index = byId();
    const edges = edgesOf(nodes);
    // A cycle is a strongly connected component (a set, not a walk): an edge is on a cycle when
    // both its ends are in the same component.
    const component = new Map();
    cycles.forEach((c, i) => {
      for (const id of arr(c)) component.set(id, i);
    });
    const onCycle = (e) => e.from === e.to || (component.has(e.from) && component.get(e.from) === component.get(e.to));
    const cycleNodes = new Set(component.keys());
    const reached = new Set(chains.map((c) => c.node));

    // Graph
    nodeEls.clear();
    if (nodes.length === 0) {
      replace(graphBox, h("p", { class: "notice" }, "This tenant has no groups."));
    } else if (nodes.length > MAX_DRAWN) {
      renderList(nodes, reached, cycleNodes);
    } else {
      legend.lastChild.hidden = false;
      const avail = graphBox.clientWidth || el.clientWidth || 1000;
      const perRow = Math.max(4, Math.min(10, Math.floor((avail - 2 * PAD - LOOP + GAP_X) / (BOX_W + GAP_X))));
      const { pos, back, width, height, isolatedTop } = layout(nodes, edges, perRow);
      const svg = s(
        "svg",
        { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": `Group graph: ${nodes.length} groups, ${edges.length} nesting edges, ${cycles.length} cycles` },
        s(
          "defs",
          null,
          s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" })),
          s("marker", { id: "arrow-cycle", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head arrow-head-cycle" })),
        ),
      );
      const edgeLayer = s("g", { class: "edges" });
      for (const e of edges) {
        const a = pos.get(e.from);
        const b = pos.get(e.to);
        if (!a || !b) continue;
        let d;
        if (e.from === e.to) {
          d = `M${a.x + BOX_W},${a.y + BOX_H * 0.3} C${a.x + BOX_W + 40},${a.y - 14} ${a.x + BOX_W + 40},${a.y + BOX_H + 14} ${a.x + BOX_W},${a.y + BOX_H * 0.7}`;
        } else if (back.has(`${e.from}\u0000${e.to}`) || b.y <= a.y) {
          const bulge = LOOP - 6;
          d = `M${a.x + BOX_W},${a.y + BOX_H / 2} C${Math.max(a.x, b.x) + BOX_W + bulge},${a.y + BOX_H / 2} ${Math.max(a.x, b.x) + BOX_W + bulge},${b.y + BOX_H / 2} ${b.x + BOX_W},${b.y + BOX_H / 2}`;
        } else {
          const x1 = a.x + BOX_W / 2;
          const y1 = a.y + BOX_H;
          const x2 = b.x + BOX_W / 2;
          const y2 = b.y;
          const dy = (y2 - y1) / 2;
          d = `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2}`;
        }
        const cyc = onCycle(e);
        const from = index.get(e.from);
        const to = index.get(e.to);
        edgeLayer.appendChild(
          s(
            "path",
            { d, class: cyc ? "edge edge-cycle" : "edge", "marker-end": cyc ? "url(#arrow-cycle)" : "url(#arrow)", "data-testid": cyc ? "cycle-edge" : "group-edge", "data-from": e.from, "data-to": e.to },
            s("title", { text: `${nodeLabel(from)} contains ${nodeLabel(to)}${cyc ? " (in a cycle)" : ""}` }),
          ),
        );
      }
      svg.appendChild(edgeLayer);
      if (isolatedTop !== null) {
        svg.appendChild(s("text", { x: PAD, y: isolatedTop + 12, class: "graph-caption", text: "Groups with no nesting" }));
      }
      const nodeLayer = s("g", { class: "nodes" });
      for (const n of nodes) {
        const p = pos.get(n.id);
        if (!p) continue;
        const cls = ["node", n.kind === "externalGroup" ? "node-external" : "node-directory"];
        if (reached.has(n.id)) cls.push("node-reached");
        if (cycleNodes.has(n.id)) cls.push("node-cycle");
        if (selected === n.id) cls.push("node-selected");
        const label = nodeLabel(n);
        const g = s(
          "g",
          {
            class: cls.join(" "),
            transform: `translate(${p.x},${p.y})`,
            tabindex: "0",
            role: "button",
            "aria-label": `${label}, ${kindText(n)}, ${memberCounts(n)}${reached.has(n.id) ? ", reached by the chosen user" : ""}${cycleNodes.has(n.id) ? ", in a cycle" : ""}`,
            "data-testid": "group-node",
            "data-node-id": n.id,
            on: {
              click: () => select(n.id),
              keydown: (event) => {
                if (event.key === "Enter" || event.key === " ") {
                  event.preventDefault();
                  select(n.id);
                }
              },
            },
          },
          s("title", { text: `${label} (${n.id})` }),
          s("rect", { width: BOX_W, height: BOX_H, rx: 6, ry: 6 }),
          s("text", { x: 10, y: 19, class: "node-name", text: truncate(label, 22) }),
          s("text", { x: 10, y: 36, class: "node-meta", text: truncate(`${kindText(n)} · ${memberCounts(n)}`, 28) }),
        );
        nodeEls.set(n.id, g);
        nodeLayer.appendChild(g);
      }
      svg.appendChild(nodeLayer);
      replace(graphBox, svg);
    }

    // Cycles
    replace(
      cyclesBox,
      h("h3", null, `Cycles (${cycles.length})`),
      cycles.length === 0
        ? h("p", { class: "muted", testid: "group-cycles-none" }, "No group nesting cycles.")
        : h(
            "ul",
            { class: "cycles", testid: "group-cycles" },
            cycles.map((c) =>
              h(
                "li",
                { testid: "group-cycle" },
                "Groups that contain each other: ",
                arr(c).map((id, i) => [i ? ", " : "", nodeLink(id, index)]),
              ),
            ),
          ),
    );

    // Chains
    if (!chosenUser) {
      replace(chainsBox, h("h3", null, "Membership chains"), muted("Choose a user to see the chains from the user to each group they are in.", true));
    } else {
      const person = users.find((u) => (u.userPrincipalName || u.id) === chosenUser);
      replace(
        chainsBox,
        h("h3", null, `Membership chains of ${person ? person.displayName || chosenUser : chosenUser} (${chains.length})`),
        chains.length ? muted("An arrow here reads “is a member of”.", true) : null,
        data.chainsTruncated === true
          ? h("p", { class: "notice", testid: "group-chains-truncated" }, "The chains were too long to list in full: some show only the group one step before (“via”). Follow those links to walk the chain.")
          : null,
        chains.length === 0
          ? h("p", { class: "muted", testid: "group-chains-none" }, "This user is in no group.")
          : h(
              "ul",
              { class: "chains", testid: "group-chains" },
              chains.map((c) => {
                const node = index.get(c.node);
                return h(
                  "li",
                  { testid: "group-chain", data: { nodeId: c.node } },
                  h("button", { type: "button", class: "link-button", on: { click: () => select(c.node, true) } }, node ? nodeLabel(node) : String(c.node)),
                  c.connectionId ? muted(` (${c.connectionId})`) : "",
                  ": ",
                  chainOf(c, index),
                );
              }),
            ),
      );
    }

    if (selected && index.has(selected)) renderDetails(selected);
    else {
      selected = null;
      replace(details, muted("Select a group (click, or Tab and Enter) to see its members.", true));
    }
  }

  /** A button that selects a group, or its id as text when it is not a node. */
  function nodeLink(id, index) {
    const n = index.get(id);
    if (!n) return String(id);
    return h("button", { type: "button", class: "link-button", on: { click: () => select(id, true) } }, nodeLabel(n));
  }

  /** A chain: its path when the server sent one, else the group one step before ("via"). */
  function chainOf(c, index) {
    if (Array.isArray(c.path)) return chain(c.path);
    if (c.via === null || c.via === undefined) return h("span", { class: "chain" }, "direct member");
    return h("span", { class: "chain", testid: "group-chain-via" }, "via ", nodeLink(c.via, index));
  }

  /** Too many groups to draw: a filterable table (reached and cyclic groups first). */
  function renderList(nodes, reached, cycleNodes) {
    const rank = (n) => (reached.has(n.id) ? 0 : 2) + (cycleNodes.has(n.id) ? 0 : 1);
    const sorted = nodes.map((n, i) => [rank(n), i, n]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
    const index = byId();
    const input = h("input", { type: "search", testid: "groups-filter", placeholder: "name or id", autocomplete: "off", value: listFilter });
    const box = h("div");
    const draw = () => {
      listFilter = input.value;
      const q = listFilter.trim().toLowerCase();
      const match = q ? sorted.filter((n) => nodeLabel(n).toLowerCase().includes(q) || String(n.id).toLowerCase().includes(q)) : sorted;
      replace(
        box,
        table({
          caption: "Groups",
          testid: "groups-table",
          rows: match.slice(0, MAX_LISTED),
          empty: "No group matches.",
          rowProps: (n) => ({ "data-testid": "group-row", "data-node-id": n.id }),
          columns: [
            { label: "Group", render: (n) => nodeLink(n.id, index) },
            { label: "Kind", render: kindText },
            { label: "Members", render: memberCounts },
            { label: "Notes", render: (n) => [reached.has(n.id) ? badge("reached", "ok") : null, " ", cycleNodes.has(n.id) ? badge("in a cycle", "bad") : null] },
          ],
        }),
        match.length > MAX_LISTED ? muted(`The first ${MAX_LISTED} of ${match.length} are listed; type to narrow.`, true) : null,
      );
    };
    input.addEventListener("input", draw);
    draw();
    legend.lastChild.hidden = true;
    replace(graphBox, h("p", { class: "notice", testid: "groups-too-large" }, `${nodes.length} groups are too many to draw; they are listed instead.`), h("div", { class: "toolbar" }, field("Find a group", input)), box);
  }

  function select(id, focusNode = false) {
    if (!data) return;
    selected = id;
    for (const [nid, g] of nodeEls) g.classList.toggle("node-selected", nid === id);
    renderDetails(id);
    const g = nodeEls.get(id);
    if (focusNode && g) {
      g.focus();
    }
  }

  function renderDetails(id) {
    const index = byId();
    const n = index.get(id);
    if (!n) return;
    const members = arr(n.members);
    const chains = arr(data.chains).filter((c) => c.node === id);
    replace(
      details,
      h("h3", null, nodeLabel(n)),
      h(
        "p",
        null,
        n.kind === "externalGroup" ? badge("external group", "external") : badge("directory group", "directory"),
        " ",
        h("code", null, n.groupId ?? n.id),
        n.connectionId ? muted(` in connection ${n.connectionId}`) : "",
      ),
      chains.length ? h("div", null, h("h4", null, "How the chosen user reaches it"), h("ul", { class: "chains" }, chains.map((c) => h("li", null, chainOf(c, index))))) : null,
      h("h4", null, `Members (${members.length})`),
      table({
        caption: `Members of ${nodeLabel(n)}`,
        testid: "group-members",
        rows: members,
        empty: "No members.",
        columns: [
          { label: "Kind", render: (m) => String(m.kind ?? "") },
          {
            label: "Member",
            render: (m) =>
              m.node && index.has(m.node)
                ? h("button", { type: "button", class: "link-button", on: { click: () => select(m.node, true) } }, m.displayName || nodeLabel(index.get(m.node)))
                : m.displayName || muted("unknown"),
          },
          { label: "Id", render: (m) => h("code", { class: "muted" }, String(m.id ?? "")) },
        ],
      }),
    );
  }

  return {
    el,
    title: "Groups",
    show() {
      if (!ready) init();
    },
    hide() {},
    reset() {
      seq += 1;
      ready = false;
      data = null;
      users = [];
      selected = null;
      chosenUser = "";
      nodeEls.clear();
      clear(userSelect);
      clear(graphBox);
      clear(details);
      clear(cyclesBox);
      clear(chainsBox);
    },
  };
}

// End-to-end test of gcemu's web console in headless Chromium (playwright-core, no downloaded
// browser): loads the sample fixtures, searches as two personas and checks the hits against
// fixtures/sample-expectations.json, opens "why visible" and "why not", checks the journal and
// report, the group cycles and chains, the clock and fault rules, that hostile item text stays
// text, drives the nav with the keyboard, renders a narrow window, switches tenants, and fails on
// any page error, console error, dialog or content-security-policy violation.
//
//   node console.test.mjs http://127.0.0.1:PORT
// Environment: CHROMIUM (default /usr/bin/chromium), GCEMU_ARTIFACTS (screenshots; default
// ../../target/ci-artifacts).

import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const base = (process.argv[2] || process.env.GCEMU_URL || "").replace(/\/+$/, "");
if (!base) {
  console.error("usage: node console.test.mjs GCEMU_URL   (for example http://127.0.0.1:5080)");
  process.exit(2);
}
const ui = `${base}/_emulator/ui/`;
const artifacts = path.resolve(process.env.GCEMU_ARTIFACTS || path.join(here, "../../target/ci-artifacts"));
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const OVERALL_MS = 120_000;
const OTHER_TENANT = "00000000-0000-0000-0000-0000000000c2";

const expectations = JSON.parse(await readFile(path.join(here, "../../fixtures/sample-expectations.json"), "utf8"));
const personaOf = (user) => {
  const p = expectations.personas.find((x) => x.user === user);
  assert.ok(p, `sample-expectations.json has no persona ${user}`);
  return p;
};
const amara = personaOf("amara.okafor@contoso.com");
const amaraKestrel = amara.queries.find((q) => q.query === "kestrel" && (q.connections || []).join() === "helpdesk");
assert.ok(amaraKestrel, "sample-expectations.json has no kestrel/helpdesk query for amara");
const bruno = personaOf("bruno.castillo@contoso.com");
const brunoFirst = bruno.queries[0];

const watchdog = setTimeout(() => {
  console.error(`FAIL: the console test did not finish within ${OVERALL_MS / 1000} s`);
  process.exit(1);
}, OVERALL_MS);
watchdog.unref();

let step = "start";
function begin(name) {
  step = name;
  console.log(`- ${name}`);
}

const problems = [];

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
let failed = false;
try {
  await run();
} catch (err) {
  failed = true;
  console.error(`FAIL in step "${step}": ${err && err.stack ? err.stack : err}`);
} finally {
  await browser.close().catch(() => {});
}
if (failed) process.exit(1);
console.log("ok: the console test passed");
process.exit(0);

// -------------------------------------------------------------------------------------------

async function run() {
  await mkdir(artifacts, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // Collect CSP violations the browser reports to the page (init scripts are not subject to CSP).
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile || ""}:${e.lineNumber || 0})`);
    });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure() ? r.failure().errorText : ""}`));
  page.on("dialog", (d) => {
    problems.push(`dialog (${d.type()}): ${d.message()}`);
    d.dismiss().catch(() => {});
  });

  const status = page.getByTestId("status");

  // 1 ------------------------------------------------------------------------------------------
  begin("1. open the console and load the sample fixtures");
  const response = await page.goto(ui);
  assert.ok(response && response.ok(), `GET ${ui} answered ${response && response.status()}`);
  const csp = response.headers()["content-security-policy"] || "";
  assert.match(csp, /script-src 'self'/, `the page's Content-Security-Policy is "${csp}"`);
  await page.getByTestId("tenant-picker").waitFor();
  await page.getByTestId("nav-actions").click();
  await page.getByTestId("load-sample").click();
  await waitText(page, status, /Loaded the sample fixtures/i, 60_000, "the status line never said the sample loaded");

  // 2 ------------------------------------------------------------------------------------------
  begin(`2. search as amara: "${amaraKestrel.query}" in ${amaraKestrel.connections.join(", ")}`);
  await page.getByTestId("nav-search").click();
  const amaraHits = await search(page, amara.user, amaraKestrel);
  checkHits("amara", amaraKestrel, amaraHits);

  // 3 ------------------------------------------------------------------------------------------
  begin(`3. search as bruno: "${brunoFirst.query}" in ${(brunoFirst.connections || ["all"]).join(", ")}`);
  const brunoHits = await search(page, bruno.user, brunoFirst);
  checkHits("bruno", brunoFirst, brunoHits);
  assert.notDeepEqual(
    [...brunoHits.ids].sort(),
    [...amaraHits.ids].sort(),
    "amara's and bruno's hit lists are the same",
  );

  // 4 ------------------------------------------------------------------------------------------
  begin("4. why visible: one of amara's hits");
  await search(page, amara.user, amaraKestrel);
  const visibleId = amaraKestrel.mustSee[0];
  const hit = page.locator(`[data-testid="hit"][data-item-id="${visibleId}"]`);
  await hit.getByTestId("why-visible").click();
  const panel = page.getByTestId("explain-panel");
  await panel.waitFor({ state: "visible" });
  const verdict = panel.getByTestId("explain-verdict");
  await verdict.waitFor();
  assert.equal(await verdict.getAttribute("data-allowed"), "true", `the explanation for ${visibleId} does not say allowed`);
  assert.match(await verdict.innerText(), /visible|allowed/i);
  const reason = (await panel.getByTestId("explain-reason").innerText()).trim();
  assert.ok(reason.length > 0 && !/^No reason given/.test(reason), `the explanation of ${visibleId} has no reason`);
  await page.screenshot({ path: path.join(artifacts, "console-search.png") });
  await page.keyboard.press("Escape");
  await panel.waitFor({ state: "hidden" });
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute("data-testid"));
  assert.equal(focused, "why-visible", "Escape did not return the focus to the why-visible button");

  // 5 ------------------------------------------------------------------------------------------
  begin("5. hidden from amara: the mustNotSee items, and why not");
  const hiddenPane = page.getByTestId("hidden-list");
  await page.waitForFunction(
    ([user, query]) => {
      const el = document.querySelector('[data-testid="hidden-list"]');
      return el && (el.dataset.state === "error" || (el.dataset.state === "done" && el.dataset.persona === user && el.dataset.query === query));
    },
    [amara.user, amaraKestrel.query],
  );
  assert.equal(await hiddenPane.getAttribute("data-state"), "done", `the hidden list failed: ${await status.innerText()}`);
  const hiddenIds = await page.locator('[data-testid="hidden-item"]').evaluateAll((els) => els.map((e) => e.dataset.itemId));
  for (const id of amaraKestrel.mustNotSee) {
    assert.ok(hiddenIds.includes(bare(id)), `${id} is not in amara's hidden list (${hiddenIds.join(", ")})`);
  }
  for (const id of amaraKestrel.mustSee) {
    assert.ok(!hiddenIds.includes(bare(id)), `${id} is both a hit and hidden for amara`);
  }
  const hiddenId = bare(amaraKestrel.mustNotSee[0]);
  await page.locator(`[data-testid="hidden-item"][data-item-id="${hiddenId}"]`).getByTestId("why-not").click();
  await panel.waitFor({ state: "visible" });
  await page.waitForFunction((id) => {
    const v = document.querySelector('[data-testid="explain-panel"] [data-testid="explain-verdict"]');
    return v && v.textContent.includes(id);
  }, hiddenId);
  assert.equal(await verdict.getAttribute("data-allowed"), "false", `the explanation for ${hiddenId} does not say not allowed`);
  assert.match(await verdict.innerText(), /not/i);
  const whyNot = (await panel.getByTestId("explain-reason").innerText()).trim();
  assert.ok(whyNot.length > 0 && !/^No reason given/.test(whyNot), `the explanation of ${hiddenId} has no reason`);
  await panel.getByTestId("panel-close").click();
  await panel.waitFor({ state: "hidden" });

  // 5b -----------------------------------------------------------------------------------------
  begin("5b. requests: the searches are in this tenant's journal; the report renders");
  await page.getByTestId("nav-requests").click();
  await page.waitForFunction(() =>
    [...document.querySelectorAll('[data-testid="request-row"]')].some((r) => {
      const cells = [...r.cells].map((c) => c.textContent.trim());
      return cells.includes("POST") && cells.includes("/v1.0/search/query");
    }),
  );
  assert.match(await page.getByTestId("requests-clear").innerText(), /Clear this tenant's journal/);
  await page.waitForFunction(() => {
    const r = document.querySelector('[data-testid="report"]');
    return r && r.querySelector('[data-testid="report-findings"] [data-testid="report-finding"], [data-testid="report-clean"]');
  });
  const report = page.getByTestId("report");
  if ((await report.getByTestId("report-clean").count()) > 0) {
    assert.match(await report.getByTestId("report-clean").innerText(), /no findings/i);
  } else {
    assert.ok((await report.getByTestId("report-finding").count()) > 0, "the report shows neither findings nor 'no findings'");
  }

  // 5c -----------------------------------------------------------------------------------------
  begin("5c. groups: amara's chains and the Incident Response / Security Champions cycle");
  await page.getByTestId("nav-groups").click();
  await page.waitForFunction((u) => [...document.querySelectorAll('[data-testid="groups-user"] option')].some((o) => o.value === u), amara.user);
  await page.getByTestId("groups-user").selectOption(amara.user);
  const cycles = page.getByTestId("group-cycle");
  await cycles.first().waitFor();
  const cycleTexts = await cycles.allInnerTexts();
  assert.ok(
    cycleTexts.some((t) => /contain each other/.test(t) && t.includes("Incident Response") && t.includes("Security Champions")),
    `no cycle lists Incident Response and Security Champions: ${JSON.stringify(cycleTexts)}`,
  );
  assert.ok(!cycleTexts.some((t) => t.includes("→")), "a cycle is drawn as a walk with arrows");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="group-chain"]').length > 0);
  const chainTexts = await page.getByTestId("group-chain").allInnerTexts();
  const toEngineering = chainTexts.find((t) => /^Engineering\s*:/.test(t.trim()));
  assert.ok(toEngineering, `no chain ends at Engineering: ${JSON.stringify(chainTexts)}`);
  assert.ok(toEngineering.includes("Platform Team"), `the chain to Engineering does not go through Platform Team: ${toEngineering}`);
  assert.ok((await page.locator('[data-testid="cycle-edge"]').count()) >= 2, "the graph draws no cycle edges");
  await page.screenshot({ path: path.join(artifacts, "console-groups.png"), fullPage: true });

  // 5d -----------------------------------------------------------------------------------------
  begin("5d. actions: advance the clock by 60 s; add and delete a fault rule");
  await page.getByTestId("nav-actions").click();
  const clockNow = page.getByTestId("clock-now");
  const clockOf = async () => {
    const m = /\((\d{4}-[^)]+)\)/.exec(await clockNow.innerText());
    return m ? Date.parse(m[1]) : NaN;
  };
  await page.waitForFunction(() => /\(\d{4}-/.test(document.querySelector('[data-testid="clock-now"]').textContent));
  const clockBefore = await clockOf();
  assert.ok(Number.isFinite(clockBefore), `the clock shows no time: ${await clockNow.innerText()}`);
  await page.getByTestId("clock-seconds").fill("60");
  await page.getByTestId("clock-advance").click();
  await page.waitForFunction((before) => {
    const m = /\((\d{4}-[^)]+)\)/.exec(document.querySelector('[data-testid="clock-now"]').textContent);
    return m && Date.parse(m[1]) !== before;
  }, clockBefore);
  const moved = ((await clockOf()) - clockBefore) / 1000;
  assert.ok(moved >= 59.5 && moved < 75, `the clock moved by ${moved} s, expected about 60`);
  const faultPath = "/v1.0/external/connections/*/items/*";
  await page.getByTestId("fault-path").fill(faultPath);
  await page.getByTestId("fault-status").fill("503");
  await page.getByTestId("fault-count").fill("1");
  await page.getByTestId("fault-add").click();
  const faultRow = page.getByTestId("fault-row").filter({ hasText: faultPath });
  await faultRow.first().waitFor();
  assert.match(await faultRow.first().innerText(), /503/);
  await faultRow.first().getByTestId("fault-delete").click();
  await page.waitForFunction((p) => ![...document.querySelectorAll('[data-testid="fault-row"]')].some((r) => r.textContent.includes(p)), faultPath);
  const rules = await page.evaluate(async () => (await fetch("/_emulator/faults")).json());
  assert.deepEqual(rules.value, [], `fault rules are left over: ${JSON.stringify(rules)}`);

  // 5e -----------------------------------------------------------------------------------------
  begin("5e. hostile markup in an item stays text (Items view and search)");
  const schema = await (await fetch(`${base}/v1.0/external/connections/helpdesk/schema`)).json();
  const titleProp = (schema.properties || []).find((p) => p.name === "title");
  assert.ok(titleProp && /^string$/i.test(titleProp.type), `helpdesk has no string title property: ${JSON.stringify(titleProp)}`);
  const hostileTitle = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
  const put = await fetch(`${base}/v1.0/external/connections/helpdesk/items/xss1`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      acl: [{ type: "everyone", value: "everyone", accessType: "grant" }],
      properties: { title: hostileTitle },
      content: { type: "html", value: '<img src=x onerror="window.__xss=3">hello' },
    }),
  });
  assert.ok(put.ok, `PUT xss1 answered ${put.status}: ${await put.text()}`);
  await page.getByTestId("nav-items").click();
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="items-connection"] option')].some((o) => o.value === "helpdesk"));
  await page.getByTestId("items-connection").selectOption("helpdesk");
  await page.getByTestId("items-filter").fill("xss1");
  const xssRow = page.locator('[data-testid="item-row"][data-item-id="xss1"]');
  await xssRow.waitFor();
  assert.ok((await xssRow.innerText()).includes("<img"), `the title is not shown as text: ${await xssRow.innerText()}`);
  await xssRow.getByTestId("item-open").click();
  const xssContent = page.getByTestId("item-panel").getByTestId("item-content");
  await xssContent.waitFor();
  assert.ok((await xssContent.innerText()).includes('<img src=x onerror="window.__xss=3">hello'), "the content is not shown as source text");
  await page.keyboard.press("Escape");
  await page.getByTestId("nav-search").click();
  const xssHits = await search(page, amara.user, { query: "hello", connections: ["helpdesk"] });
  assert.ok(xssHits.ids.includes("helpdesk/xss1"), `searching "hello" as amara does not find xss1 (${xssHits.ids.join(", ")})`);
  const hitTitle = await page.locator('[data-testid="hit"][data-item-id="xss1"] .hit-title').innerText();
  assert.equal(hitTitle, hostileTitle, "the hit's title is not shown literally");
  assert.equal(await page.evaluate(() => typeof window.__xss), "undefined", "hostile item text ran a script");
  assert.equal(await page.locator("main img, main script, aside img").count(), 0, "item text became elements");

  // 6 ------------------------------------------------------------------------------------------
  begin("6. keyboard: Tab to the nav, Enter on Items");
  await page.goto(`${ui}#/overview`);
  await page.getByTestId("view-overview").waitFor({ state: "visible" });
  let reached = false;
  for (let i = 0; i < 30 && !reached; i += 1) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute("data-testid") === "nav-items");
  }
  assert.ok(reached, "Tab never reached the Items tab of the nav");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none", "the focused nav link shows no focus outline");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => window.location.hash.startsWith("#/items"));
  await page.getByRole("heading", { name: "Items", level: 2 }).waitFor({ state: "visible" });
  const rows = page.getByTestId("item-row");
  await rows.first().waitFor();
  assert.ok((await rows.count()) > 0, "the Items view shows no rows for the sample");
  await rows.first().getByTestId("item-open").click();
  const itemPanel = page.getByTestId("item-panel");
  await itemPanel.getByTestId("acl-entry").first().waitFor();
  await page.keyboard.press("Escape");
  await itemPanel.waitFor({ state: "hidden" });

  // 7 ------------------------------------------------------------------------------------------
  begin("7. narrow window: the overview renders the tenant's connections");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${ui}#/overview`);
  const cards = page.getByTestId("connection-card");
  await cards.first().waitFor();
  const connectionIds = await cards.evaluateAll((els) => els.map((e) => e.dataset.connectionId));
  for (const id of ["helpdesk", "wiki"]) assert.ok(connectionIds.includes(id), `the overview does not show connection ${id} (${connectionIds.join(", ")})`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the narrow page scrolls sideways by ${overflow}px`);
  await page.screenshot({ path: path.join(artifacts, "console-narrow.png") });
  await page.setViewportSize({ width: 1280, height: 800 });

  // 7b -----------------------------------------------------------------------------------------
  begin("7b. switching tenant shows only that tenant's data");
  const loaded = await page.evaluate(async (tenantId) => {
    const doc = {
      tenants: [
        {
          id: tenantId,
          users: [{ id: "7f7c2c9e-4b1e-4c55-9a55-0a4c2b7d0c01", userPrincipalName: "solo@other.example", displayName: "Solo Other" }],
          connections: [{ id: "othertenantconn", name: "Other tenant connection", description: "Only in the second tenant." }],
        },
      ],
    };
    const r = await fetch("/_emulator/fixtures", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc) });
    return { status: r.status, body: await r.text() };
  }, OTHER_TENANT);
  assert.equal(loaded.status, 200, `loading a second tenant answered ${loaded.status}: ${loaded.body}`);
  await page.getByTestId("tenants-refresh").click();
  await page.waitForFunction((id) => [...document.querySelectorAll('[data-testid="tenant-picker"] option')].some((o) => o.value === id), OTHER_TENANT);
  await page.getByTestId("tenant-picker").selectOption(OTHER_TENANT);
  await page.waitForFunction(() => {
    const ids = [...document.querySelectorAll('[data-testid="connection-card"]')].map((e) => e.dataset.connectionId);
    return ids.length === 1 && ids[0] === "othertenantconn";
  });
  await page.getByTestId("nav-search").click();
  await page.waitForFunction(() => {
    const boxes = [...document.querySelectorAll('[data-testid="search-connection"]')].map((e) => e.value);
    return boxes.length === 1 && boxes[0] === "othertenantconn";
  });
  const personas = await page.getByTestId("persona-picker").locator("option").evaluateAll((os) => os.map((o) => o.value));
  assert.deepEqual(personas, ["solo@other.example"], "the persona picker of the second tenant lists other people");
  assert.equal(await page.getByTestId("hit").count(), 0, "hits of the first tenant are still shown after switching tenant");
  await page.getByTestId("tenant-picker").selectOption("00000000-0000-0000-0000-000000000001");
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="search-connection"]')].length === 2);

  // 8 ------------------------------------------------------------------------------------------
  begin("8. no page errors, console errors, dialogs or CSP violations");
  assert.equal(await page.evaluate(() => typeof window.__xss), "undefined", "hostile item text ran a script");
  const violations = await page.evaluate(() => window.__cspViolations || []);
  assert.deepEqual(violations, [], `CSP violations: ${violations.join("; ")}`);
  assert.deepEqual(problems, [], `problems in the page:\n  ${problems.join("\n  ")}`);
  await context.close();
}

/** An expectations id ("INC1" or "helpdesk/INC1") without its connection. */
function bare(id) {
  const at = id.indexOf("/");
  return at < 0 ? id : id.slice(at + 1);
}

async function waitText(page, locator, pattern, timeout, message) {
  try {
    await page.waitForFunction(
      ([selector, source, flags]) => {
        const el = document.querySelector(selector);
        return el && new RegExp(source, flags).test(el.textContent || "");
      },
      ['[data-testid="status"]', pattern.source, pattern.flags],
      { timeout },
    );
  } catch {
    throw new Error(`${message}; it says: "${await locator.innerText()}"`);
  }
}

/** Runs one search in the Search view and returns {ids: ["conn/id"...], total}. */
async function search(page, user, query) {
  const results = page.locator('[data-testid="search-results"]');
  await page.waitForFunction((u) => [...document.querySelectorAll('[data-testid="persona-picker"] option')].some((o) => o.value === u), user);
  await page.getByTestId("persona-picker").selectOption(user);
  await page.getByTestId("query-input").fill(query.query);
  const boxes = page.getByTestId("search-connection");
  const count = await boxes.count();
  assert.ok(count > 0, "the search view lists no connections");
  for (let i = 0; i < count; i += 1) {
    const box = boxes.nth(i);
    const value = await box.getAttribute("value");
    await box.setChecked(!query.connections || query.connections.includes(value));
  }
  const before = Number((await results.getAttribute("data-run")) || 0);
  await page.getByTestId("search-button").click();
  const ids = [];
  let total = null;
  let run = before;
  for (let pageNo = 0; pageNo < 20; pageNo += 1) {
    await page.waitForFunction(
      (prev) => {
        const el = document.querySelector('[data-testid="search-results"]');
        return el && (el.dataset.state === "error" || (el.dataset.state === "done" && Number(el.dataset.run || 0) > prev));
      },
      run,
    );
    assert.equal(await results.getAttribute("data-state"), "done", `the search failed: ${await page.getByTestId("status").innerText()}`);
    assert.equal(await results.getAttribute("data-persona"), user);
    run = Number(await results.getAttribute("data-run"));
    total = Number(await page.getByTestId("search-total").getAttribute("data-total"));
    const hits = await page.getByTestId("hit").evaluateAll((els) => els.map((e) => `${e.dataset.connectionId}/${e.dataset.itemId}`));
    ids.push(...hits);
    const next = page.getByTestId("search-next");
    if (await next.isDisabled()) break;
    await next.click();
  }
  return { ids, total };
}

function checkHits(who, query, { ids, total }) {
  const full = new Set(ids);
  const plain = new Set(ids.map(bare));
  const has = (id) => (id.includes("/") ? full.has(id) : plain.has(id));
  const missing = query.mustSee.filter((id) => !has(id));
  assert.deepEqual(missing, [], `${who} "${query.query}": expected hits missing (got ${ids.join(", ")})`);
  const leaked = (query.mustNotSee || []).filter(has);
  assert.deepEqual(leaked, [], `${who} "${query.query}": items ${who} must not see were found`);
  if (query.total !== undefined) {
    assert.equal(total, query.total, `${who} "${query.query}": the total shown is ${total}, expected ${query.total}`);
    assert.equal(ids.length, query.total, `${who} "${query.query}": ${ids.length} hits listed, expected ${query.total}`);
  }
  if (query.exactly) assert.equal(ids.length, query.mustSee.length, `${who} "${query.query}": expected exactly the mustSee items`);
  console.log(`  ${who}: ${ids.length} hits, total ${total}`);
}

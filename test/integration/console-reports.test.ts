// The console's reports (relay/src/console/reports/, relay/console/src/components/reports/) on a real relay:
// alarms through the real ingest, confirmed, dispatched and marked false alarms through the console's own API
// while the relay's clock is moved by hand, so every time to confirmation is known to the millisecond. On
// SQLite and PostgreSQL: exact counts, medians and 90th percentiles per type, false alarms per home (masked)
// and per device model, the period's bounds, a street-limited account's view, and the refusals. Then the page
// in Debian's chromium: the false alarm under its home and model, the counts and a time per type, charts drawn,
// and no Content-Security-Policy violation.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { maskAddress } from "../../relay/src/households/mask.js";
import { getIncident } from "../../relay/src/incidents/repo.js";
import { browserSkipReason, launchBrowser, screenshot } from "../support/browser.js";
import { carePlan } from "../support/care-plan-fixture.js";
import { ConsoleClient } from "../support/console-client.js";
import { addAccount, alarm, CONSOLE_PASSWORD, incidentOf, provisionHub, signInPage, startConsoleRelay, type TestHub } from "../support/console-rig.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";

type Cleanup = () => Promise<unknown>;
const S = 1000;

function cleanupsOf(t: TestContext): Cleanup[] {
  const list: Cleanup[] = [];
  t.after(async () => {
    for (const c of list.reverse()) await c().catch(() => undefined);
  });
  return list;
}

/** The relay's clock, moved only by the test: a whole second near the real time (the sign-in's accounts use that). */
function handClock() {
  const c = { t: Math.floor(Date.now() / S) * S, now: () => c.t };
  return c;
}

/** Wang Lan's care plan with the devices the alarms name (`<type>-1`), so incidents carry a device model. */
async function withDevices(relay: RunningRelay, hub: string, devices: Record<string, { model: string }>): Promise<void> {
  await setCarePlan(relay.db, hub, parseCarePlan(carePlan({ devices }), "test"), { actor: "test", purpose: "setup", at: Date.now() });
}

const DEVICES = { "gas-1": { model: "PT495" }, "smoke-1": { model: "JTY-GD-G3" } };

async function act(c: ConsoleClient, id: string, action: string, body: unknown = {}): Promise<void> {
  const r = await c.request("POST", `/console/api/v1/incidents/${encodeURIComponent(id)}/${action}`, { body });
  assert.equal(r.status, 200, `${action}: ${JSON.stringify(r.body)}`);
}

/** An alarm through the real ingest at the clock's current time; the incident it opened. */
async function raise(relay: RunningRelay, h: TestHub, type: string, clock: { t: number }) {
  await alarm(relay, h, type, "critical");
  const inc = await incidentOf(relay, h.hub);
  const row = await getIncident(relay.db, inc.id);
  assert.equal(row?.openedAt, clock.t, "the incident is opened at the relay's clock");
  return inc;
}

type Backend = { name: string; store?: (cleanups: Cleanup[]) => Record<string, unknown> };
const BACKENDS: Backend[] = [
  { name: "SQLite" },
  {
    name: "PostgreSQL",
    store: (cleanups) => {
      const { url, schema } = tempPgSchema("anxin_reports", (f) => cleanups.push(f));
      return { kind: "postgres", url, schema, poolSize: 4 };
    },
  },
];

const A_ADDRESS = "幸福路12弄3号401室";

for (const b of BACKENDS) {
  test(`reports: counts, time to confirmation per type, false alarms per home and model, periods and streets [${b.name}]`, async (t) => {
    if (b.store && !PG_URL) return t.skip(pgSkipReason("the console reports on PostgreSQL"));
    const cleanups = cleanupsOf(t);
    // Pushed first, so the schema is dropped last, after the relay let go of it.
    const store = b.store?.(cleanups);
    const clock = handClock();
    const rig = await startConsoleRelay({ now: clock.now, ...(store ? { config: { store } } : {}) });
    cleanups.push(() => rig.stop());
    const { relay } = rig;
    await addAccount(relay, "wang", "王芳", "operator");
    await addAccount(relay, "root", "管理员", "admin");
    await addAccount(relay, "sun", "孙街道", "operator", ["Street A"]);
    await addAccount(relay, "zhao", "赵装", "installer");
    const hA = await provisionHub(relay, "hub-rep-a", { address: A_ADDRESS, street: "Street A" });
    const hB = await provisionHub(relay, "hub-rep-b", { address: "Room 302, No. 17 Lane 1130", street: "Street B" });
    const hC = await provisionHub(relay, "hub-rep-c"); // no household: shown by its hub id, on no street
    const hD = await provisionHub(relay, "hub-rep-d", { address: "长寿路88号5号楼202室", street: "Street B" });
    for (const h of [hA, hB, hD]) await withDevices(relay, h.hub, DEVICES);
    const T0 = clock.t;
    const wang = new ConsoleClient(rig.httpUrl);
    assert.equal((await wang.signIn("wang", CONSOLE_PASSWORD)).status, 200);

    // Received at T0 + 0, 10, 20, 30 s (gas) and 40, 50 s (smoke).
    const at = (s: number) => (clock.t = T0 + s * S);
    at(0);
    const gA = await raise(relay, hA, "gas", clock);
    at(10);
    const gB = await raise(relay, hB, "gas", clock);
    at(20);
    const gC = await raise(relay, hC, "gas", clock);
    at(30);
    const gD = await raise(relay, hD, "gas", clock);
    at(40);
    const sA = await raise(relay, hA, "smoke", clock);
    at(50);
    const sB = await raise(relay, hB, "smoke", clock);

    at(60);
    await act(wang, gA.id, "confirm"); // 60 s
    at(120);
    await act(wang, sA.id, "false-alarm", { reason: "cooking_smoke" }); // never confirmed
    at(190);
    await act(wang, gB.id, "confirm"); // 180 s
    at(320);
    await act(wang, gC.id, "dispatches", { service: "fire_119" }); // 300 s: a dispatch confirms
    at(630);
    await act(wang, gD.id, "confirm"); // 600 s
    at(650);
    await act(wang, sB.id, "confirm"); // 600 s
    at(700);
    await act(wang, sB.id, "false-alarm", { reason: "device_fault" }); // found false after confirming
    at(720);

    // The whole of it, with the default period (the 30 days up to the relay's now).
    const all = await wang.request("GET", "/console/api/reports");
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.until, clock.t);
    assert.equal(all.body.since, clock.t - 30 * 86_400_000);
    assert.equal(all.body.streets, null);
    assert.deepEqual(all.body.byType, [
      // 60, 180, 300, 600 s: the median between the middle two, the 90th percentile 70 % of the way from 300 to 600.
      { type: "gas", incidents: 4, falseAlarms: 0, confirmed: 4, medianMs: 240 * S, p90Ms: 510 * S },
      { type: "smoke", incidents: 2, falseAlarms: 2, confirmed: 1, medianMs: 600 * S, p90Ms: 600 * S },
    ]);
    assert.deepEqual(all.body.falseAlarms.perHome, [
      { hub: hA.hub, home: maskAddress(A_ADDRESS), incidents: 2, falseAlarms: 1, rate: 0.5, reasons: { cooking_smoke: 1 } },
      { hub: hB.hub, home: maskAddress("Room 302, No. 17 Lane 1130"), incidents: 2, falseAlarms: 1, rate: 0.5, reasons: { device_fault: 1 } },
      { hub: hC.hub, home: hC.hub, incidents: 1, falseAlarms: 0, rate: 0, reasons: {} },
      { hub: hD.hub, home: "长寿路88号*号楼***室", incidents: 1, falseAlarms: 0, rate: 0, reasons: {} },
    ]);
    assert.equal(all.body.falseAlarms.perHome[0].home, "幸福路12弄*号***室");
    assert.ok(!JSON.stringify(all.body).includes("Wang Lan"), "no names in the report");
    assert.deepEqual(all.body.falseAlarms.perDeviceModel, [
      { model: "JTY-GD-G3", incidents: 2, falseAlarms: 2, rate: 1, reasons: { cooking_smoke: 1, device_fault: 1 } },
      { model: "PT495", incidents: 3, falseAlarms: 0, rate: 0, reasons: {} },
      { model: null, incidents: 1, falseAlarms: 0, rate: 0, reasons: {} },
    ]);

    // A period counts the incidents received within it [since, until): here gD (30 s) and sA (40 s) only.
    const part = await wang.request("GET", `/console/api/reports?since=${T0 + 25 * S}&until=${T0 + 45 * S}`);
    assert.equal(part.status, 200);
    assert.deepEqual(part.body.byType, [
      { type: "gas", incidents: 1, falseAlarms: 0, confirmed: 1, medianMs: 600 * S, p90Ms: 600 * S },
      { type: "smoke", incidents: 1, falseAlarms: 1, confirmed: 0, medianMs: null, p90Ms: null },
    ]);
    assert.deepEqual(part.body.falseAlarms.perHome.map((r: { hub: string }) => r.hub), [hA.hub, hD.hub]);
    const edge = await wang.request("GET", `/console/api/reports?since=${T0}&until=${T0 + 10 * S}`);
    assert.deepEqual(edge.body.byType.map((r: { incidents: number }) => r.incidents), [1], "since is inclusive, until exclusive");
    const empty = await wang.request("GET", `/console/api/reports?since=${T0 + 800 * S}&until=${T0 + 900 * S}`);
    assert.deepEqual(empty.body, { since: T0 + 800 * S, until: T0 + 900 * S, streets: null, falseAlarms: { perHome: [], perDeviceModel: [] }, byType: [] });

    // A street-limited account counts only its streets' homes (hub C has no household, so no street), and is told which.
    const sun = new ConsoleClient(rig.httpUrl);
    assert.equal((await sun.signIn("sun", CONSOLE_PASSWORD)).status, 200);
    const limited = await sun.request("GET", "/console/api/reports");
    assert.equal(limited.status, 200);
    assert.deepEqual(limited.body.streets, ["Street A"]);
    assert.deepEqual(limited.body.byType, [
      { type: "gas", incidents: 1, falseAlarms: 0, confirmed: 1, medianMs: 60 * S, p90Ms: 60 * S },
      { type: "smoke", incidents: 1, falseAlarms: 1, confirmed: 0, medianMs: null, p90Ms: null },
    ]);
    assert.deepEqual(limited.body.falseAlarms.perHome.map((r: { hub: string }) => r.hub), [hA.hub]);
    assert.deepEqual(limited.body.falseAlarms.perDeviceModel.map((r: { model: string; incidents: number }) => [r.model, r.incidents]), [["JTY-GD-G3", 1], ["PT495", 1]]);

    // Admins see it whole; installers and strangers not at all; a period that ends before it starts is refused.
    const root = new ConsoleClient(rig.httpUrl);
    assert.equal((await root.signIn("root", CONSOLE_PASSWORD)).status, 200);
    assert.deepEqual((await root.request("GET", "/console/api/reports")).body.byType, all.body.byType);
    const zhao = new ConsoleClient(rig.httpUrl);
    assert.equal((await zhao.signIn("zhao", CONSOLE_PASSWORD)).status, 200);
    const refused = await zhao.request("GET", "/console/api/reports");
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error, "forbidden");
    assert.equal((await new ConsoleClient(rig.httpUrl).request("GET", "/console/api/reports")).status, 401);
    const backwards = await wang.request("GET", `/console/api/reports?since=${T0 + 10 * S}&until=${T0}`);
    assert.equal(backwards.status, 400);
    assert.equal(backwards.body.error, "bad_query");
    const garbage = await wang.request("GET", "/console/api/reports?since=yesterday");
    assert.equal(garbage.status, 400);
    assert.equal(garbage.body.error, "bad_query");
  });
}

test("the reports page in chromium: the false alarm under its home and model, counts and times per type, charts drawn, no CSP violation", { skip: browserSkipReason(), timeout: 120_000 }, async (t) => {
  const cleanups = cleanupsOf(t);
  const clock = handClock();
  const rig = await startConsoleRelay({ now: clock.now });
  cleanups.push(() => rig.stop());
  const { relay } = rig;
  await addAccount(relay, "wang", "王芳", "operator");
  const kitchen = await provisionHub(relay, "hub-rep-page-a", { address: A_ADDRESS, street: "Street A" });
  const other = await provisionHub(relay, "hub-rep-page-b", { address: "长寿路88号5号楼202室", street: "Street B" });
  for (const h of [kitchen, other]) await withDevices(relay, h.hub, DEVICES);

  const T0 = clock.t;
  const smoke = await raise(relay, kitchen, "smoke", clock);
  const gas = await raise(relay, other, "gas", clock);
  const wang = new ConsoleClient(rig.httpUrl);
  assert.equal((await wang.signIn("wang", CONSOLE_PASSWORD)).status, 200);
  clock.t = T0 + 45 * S;
  await act(wang, smoke.id, "false-alarm", { reason: "cooking_smoke", note: "toast" });
  clock.t = T0 + 90 * S;
  await act(wang, gas.id, "confirm");

  const browser = await launchBrowser();
  cleanups.push(() => browser.close());
  const page = await browser.newPage({ width: 1440, height: 1100 });
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // The sign-in page's first look for a session is answered 401, which the browser logs: expected.
    if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });

  await signInPage(page, `${rig.httpUrl}/console/`, "wang");
  await page.locator('nav a[data-nav="reports"]').click();
  await page.getByRole("heading", { name: "报表", exact: true }).waitFor();
  const report = page.getByTestId("report");
  await report.waitFor();

  // Per type: counts, and the gas alarm's 90 s to confirmation.
  const types = page.getByTestId("report-types");
  const gasRow = types.locator('tr[data-type="gas"]');
  assert.equal(await gasRow.locator('[data-col="type"]').innerText(), "燃气泄漏");
  assert.equal(await gasRow.locator('[data-col="incidents"]').innerText(), "1");
  assert.equal(await gasRow.locator('[data-col="confirmed"]').innerText(), "1");
  assert.equal(await gasRow.locator('[data-col="median"]').innerText(), "1 分 30 秒");
  assert.equal(await gasRow.locator('[data-col="p90"]').innerText(), "1 分 30 秒");
  const smokeRow = types.locator('tr[data-type="smoke"]');
  assert.equal(await smokeRow.locator('[data-col="falseAlarms"]').innerText(), "1");
  assert.equal(await smokeRow.locator('[data-col="median"]').innerText(), "—");

  // The false alarm under its home (masked, never the name) and its device model, with its reason.
  const home = page.getByTestId("report-homes").locator(`tr[data-key="${kitchen.hub}"]`);
  assert.match(await home.locator('[data-col="name"]').innerText(), /^幸福路12弄\*号\*\*\*室/);
  assert.equal(await home.locator('[data-col="falseAlarms"]').innerText(), "1");
  assert.equal(await home.locator('[data-col="rate"]').innerText(), "100%");
  assert.equal(await home.locator('[data-col="reasons"]').innerText(), "烹饪油烟 × 1");
  const model = page.getByTestId("report-models").locator('tr[data-key="JTY-GD-G3"]');
  assert.equal(await model.locator('[data-col="falseAlarms"]').innerText(), "1");
  assert.equal(await model.locator('[data-col="reasons"]').innerText(), "烹饪油烟 × 1");
  assert.ok(!(await report.innerText()).includes("Wang Lan"));

  // Every chart is drawn: a sized canvas with painted pixels.
  const charts = ["chart-type-counts", "chart-type-times", "chart-homes", "chart-models"];
  for (const id of charts) assert.ok(await paintedPixels(page, id) > 0, `${id} has something drawn`);

  // In English, the same figures in other words, and the charts drawn again.
  await page.locator('button[data-lang="en"]').click();
  await page.getByRole("heading", { name: "Reports", exact: true }).waitFor();
  assert.equal(await gasRow.locator('[data-col="median"]').innerText(), "1 min 30 s");
  assert.equal(await home.locator('[data-col="reasons"]').innerText(), "Cooking smoke × 1");
  assert.equal(await page.getByTestId("chart-homes").locator("figcaption").innerText(), "Homes with the most false alarms (up to 10)");
  for (const id of charts) assert.ok(await paintedPixels(page, id) > 0, `${id} drawn in English`);
  await screenshot(page, "console-reports");

  // A period without these incidents: from–to dates in the past.
  await page.getByTestId("period-from").fill("2020-01-01");
  await page.getByTestId("period-to").fill("2020-01-31");
  await page.getByRole("button", { name: "Show", exact: true }).click();
  await page.getByText("No incidents in this period.").waitFor();
  assert.equal(await page.getByTestId("report-types").count(), 0);
  // Back to the last 7 days: the figures return.
  await page.locator('button[data-days="7"]').click();
  await page.getByTestId("report-types").waitFor();

  assert.deepEqual(problems, [], "no errors and no CSP violations in the page");
});

/** How many pixels of the chart's canvas are painted (alpha > 0); 0 for a missing or empty canvas. */
async function paintedPixels(page: Page, testId: string): Promise<number> {
  return page.getByTestId(testId).locator("canvas").evaluate((c: HTMLCanvasElement) => {
    if (c.width === 0 || c.height === 0) return 0;
    const data = c.getContext("2d")?.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    if (data) for (let i = 3; i < data.length; i += 4) if ((data[i] ?? 0) > 0) n++;
    return n;
  });
}

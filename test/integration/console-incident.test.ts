// The console's incident page on a real relay: its routes over HTTP (the call tree from the frozen plan with
// masked contacts and what the state allows now, the masked care plan, the audited reveal, streets and
// roles), then in Debian's chromium an operator drives a gas incident from received to closed through the
// page alone — confirm, dispatch 119, a ticket to the street operations centre, resolve, the follow-up visit,
// close — and the relay's timeline holds each step under the operator's name; a second incident is marked a
// false alarm with its reason; a close refused because another operator closed it first shows the relay's
// refusal in words; an installer gets nothing but a plain refusal. ANXIN_SCREENSHOTS=1 saves the page.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { revealPurpose } from "../../relay/src/console/incident/plugin.js";
import { getTimeline } from "../../relay/src/incidents/repo.js";
import { browserSkipReason, launchBrowser, screenshot, type TestBrowser } from "../support/browser.js";
import { carePlan, personalData, PHONES } from "../support/care-plan-fixture.js";
import { ConsoleClient } from "../support/console-client.js";
import { addAccount, alarm, CONSOLE_PASSWORD, incidentOf, provisionHub, signInPage, startConsoleRelay, type TestHub } from "../support/console-rig.js";
import type { RelayRig } from "../support/relay-rig.js";
import { waitFor } from "../support/wait.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
const skip = browserSkipReason();
const STREET = "Dinghai Street";
const HOME = { address: "Room 302, 12 Lane 88, Dinghai Road", street: STREET };
/** What the masked views must never show: names, the address, every number (without +86). */
const SECRETS = personalData(carePlan());

let rig: RelayRig;
let hubs = 0;
const newHub = (): Promise<TestHub> => provisionHub(rig.relay, `hub-console-inc-${++hubs}`, HOME);

before(async () => {
  rig = await startConsoleRelay();
  cleanups.push(() => rig.stop());
  await addAccount(rig.relay, "wang", "王芳", "operator");
  await addAccount(rig.relay, "li", "李明", "operator");
  await addAccount(rig.relay, "zhao", "赵装", "installer");
  await addAccount(rig.relay, "sun", "孙强", "operator", ["Another Street"]);
});

async function client(username: string): Promise<ConsoleClient> {
  const c = new ConsoleClient(rig.httpUrl);
  assert.equal((await c.signIn(username, CONSOLE_PASSWORD)).status, 200);
  return c;
}

const revealRows = async (hub: string, id: string) => (await listAudit(rig.relay.db, { subject: hub })).filter((a) => a.purpose === revealPurpose(id));

test("the incident page's routes: the call tree masked, the actions the state allows, the masked care plan unaudited, the reveal audited; streets and roles", async () => {
  const h = await newHub();
  await alarm(rig.relay, h, "gas", "critical");
  const inc = await incidentOf(rig.relay, h.hub);
  const wang = await client("wang");

  // The first step's calls go out (and are never answered): the tree stands there, with its next step due.
  const tree = await waitFor("the first step running with its next step due", async () => {
    const r = await wang.request("GET", `/console/api/incidents/${inc.id}/call-tree`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.tree.current?.nextAt !== undefined && r.body.tree.steps[0].targets.every((t: any) => t.attempts.length > 0) ? r.body : undefined;
  });
  assert.equal(tree.incident.id, inc.id);
  assert.equal(tree.incident.homeMasked.includes("Room 302"), true);
  assert.equal(tree.tree.current.index, 1);
  assert.ok(tree.tree.current.nextAt > tree.serverNow - 1000, "the next step is still to come");
  assert.equal(tree.tree.steps[0].status, "current");
  assert.equal(tree.tree.steps[1].status, "next");
  const elder = tree.tree.steps[0].targets.find((t: any) => t.ref === "elder");
  assert.equal(elder.role, "elder");
  assert.equal(elder.who.phone, "+86*******0000", "the elder's number masked to its last four digits");
  assert.equal(elder.who.name, "W**");
  assert.deepEqual(new Set(tree.tree.steps[0].targets.map((t: any) => t.role)), new Set(["elder", "neighbourhood_committee", "property_fire_station"]));
  assert.deepEqual(tree.allowedActions, ["acknowledge", "confirm", "false_alarm", "dispatch"]);
  const treeText = JSON.stringify(tree);
  for (const s of SECRETS) assert.ok(!treeText.includes(s), `the call tree does not carry ${s}`);

  // The masked care plan: roles, initials, last four digits; no read in the audit log.
  const before = (await listAudit(rig.relay.db, { subject: h.hub })).length;
  const masked = await wang.request("GET", `/console/api/incidents/${inc.id}/care-plan`);
  assert.equal(masked.status, 200);
  assert.equal(masked.body.plan.contacts.length, 6);
  assert.equal(masked.body.plan.contacts[0].phone, "+86*******0001");
  assert.equal(masked.body.plan.dispatch.fire, "119", "the public services' numbers are not personal data");
  const maskedText = JSON.stringify(masked.body);
  for (const s of SECRETS) assert.ok(!maskedText.includes(s), `the masked plan does not carry ${s}`);
  assert.equal((await listAudit(rig.relay.db, { subject: h.hub })).length, before, "the masked view writes nothing to the audit log");

  // The reveal: the full plan, and the read recorded under the person's name for this incident.
  const noToken = await wang.request("POST", `/console/api/incidents/${inc.id}/care-plan/reveal`, { body: {}, csrf: false });
  assert.equal(noToken.status, 403);
  assert.equal((await revealRows(h.hub, inc.id)).length, 0);
  const revealed = await wang.request("POST", `/console/api/incidents/${inc.id}/care-plan/reveal`, { body: {} });
  assert.equal(revealed.status, 200, JSON.stringify(revealed.body));
  assert.equal(revealed.body.plan.elder.phone, PHONES.elder);
  assert.equal(revealed.body.revealed.by, "user:wang");
  const rows = await revealRows(h.hub, inc.id);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.actor, "user:wang");
  assert.equal(rows[0]?.action, "careplan.read");

  // A street-limited operator from another street: as if there were no such incident.
  const sun = await client("sun");
  for (const [m, p] of [["GET", "call-tree"], ["GET", "care-plan"], ["POST", "care-plan/reveal"]] as const) {
    const r = await sun.request(m, `/console/api/incidents/${inc.id}/${p}`, m === "POST" ? { body: {} } : {});
    assert.equal(r.status, 404, `${p} for another street`);
    assert.equal(r.body.error, "not_found");
  }
  // An installer: refused; no session: refused; nothing revealed or recorded.
  const zhao = await client("zhao");
  for (const [m, p] of [["GET", "call-tree"], ["GET", "care-plan"], ["POST", "care-plan/reveal"]] as const) {
    const r = await zhao.request(m, `/console/api/incidents/${inc.id}/${p}`, m === "POST" ? { body: {} } : {});
    assert.equal(r.status, 403, `${p} as an installer`);
    assert.equal(r.body.error, "forbidden");
  }
  assert.equal((await new ConsoleClient(rig.httpUrl).request("GET", `/console/api/incidents/${inc.id}/call-tree`)).status, 401);
  assert.equal((await revealRows(h.hub, inc.id)).length, 1, "only wang's reveal is recorded");
  assert.equal((await wang.request("GET", "/console/api/incidents/no-such-incident/call-tree")).status, 404);

  // After confirming, the actions follow the state.
  assert.equal((await wang.request("POST", `/console/api/v1/incidents/${inc.id}/confirm`, { body: {} })).status, 200);
  const confirmed = await wang.request("GET", `/console/api/incidents/${inc.id}/call-tree`);
  assert.deepEqual(confirmed.body.allowedActions, ["false_alarm", "dispatch", "ticket", "resolve"]);
  assert.equal(confirmed.body.tree.current, null, "confirming stopped the calls");
  assert.equal(confirmed.body.tree.steps[0].status, "done");
});

// ---- the page --------------------------------------------------------------------------------------------

/** A page in a browser of its own (its own cookies: its own sign-in). */
async function page(): Promise<Page> {
  const b: TestBrowser = await launchBrowser();
  cleanups.push(() => b.close());
  return b.newPage();
}

const state = (p: Page) => p.getByTestId("incident-page").getAttribute("data-state");
const waitState = (p: Page, s: string) => p.locator(`[data-testid=incident-page][data-state="${s}"]`).waitFor({ timeout: 10_000 });
const actions = async (p: Page) => (await p.getByTestId("actions").locator("button[data-action]").evaluateAll((bs) => bs.map((b) => b.getAttribute("data-action")))).sort();

/** Opens an action's dialog, fills it (select fields by value), sends it and waits for the result. */
async function act(p: Page, action: string, fields: Record<string, string> = {}, expectState?: string): Promise<void> {
  await p.getByTestId(`action-${action}`).click();
  const dialog = p.getByTestId("action-dialog");
  await dialog.waitFor();
  for (const [name, value] of Object.entries(fields)) {
    const field = dialog.locator(`#incident-field-${name}`);
    if ((await field.evaluate((e) => e.tagName)) === "SELECT") await field.selectOption(value);
    else await field.fill(value);
  }
  await dialog.getByTestId("action-submit").click();
  await p.getByTestId("action-result").waitFor();
  await dialog.waitFor({ state: "detached" });
  if (expectState) await waitState(p, expectState);
}

test("in the browser: a gas incident from received to closed through the page alone, each step in the timeline under the operator's name", { skip, timeout: 120_000 }, async () => {
  const h = await newHub();
  await alarm(rig.relay, h, "gas", "critical");
  const inc = await incidentOf(rig.relay, h.hub);
  const p = await page();
  await signInPage(p, `${rig.httpUrl}/console/`, "wang");

  // Opened from the queue with a double click.
  const row = p.locator(`tr.incident[data-id="${inc.id}"]`);
  await row.waitFor();
  await row.dblclick();
  await p.getByTestId("incident-page").waitFor();
  assert.equal(new URL(p.url()).hash, `#/incidents/${encodeURIComponent(inc.id)}`);
  assert.equal(await p.getByTestId("incident-type").innerText(), "燃气泄漏");
  assert.match(await p.getByTestId("incident-page").locator(".sev").innerText(), /紧急/, "severity in words, not colour alone");

  // The call tree: its steps, whom each calls (masked), and a countdown that runs.
  const countdown = p.getByTestId("countdown");
  await countdown.waitFor({ timeout: 15_000 });
  assert.ok(Number(await countdown.getAttribute("data-next-at")) > 0, "the next step's time is on the page");
  const first = await countdown.innerText();
  assert.match(first, /后进入下一步/);
  await waitFor("the countdown to move", async () => (await countdown.innerText()) !== first, 10_000);
  assert.equal(await p.getByTestId("tree-step").count(), (await rig.relay.db.selectFrom("incidents").select("plan").where("id", "=", inc.id).executeTakeFirstOrThrow().then((r) => JSON.parse(r.plan).steps.length)) as number);
  assert.equal(await p.locator("[data-testid=tree-step][data-status=current]").count(), 1);
  assert.match(await p.locator('[data-testid=tree-target][data-ref="elder"]').innerText(), /老人本人.*\+86\*{7}0000/s);

  // The care plan masked: no name, address or number anywhere on the page.
  await p.locator("[data-testid=care-plan][data-view=masked] [data-testid=care-contact]").first().waitFor();
  let text = await p.locator("body").innerText();
  for (const s of SECRETS) assert.ok(!text.includes(s), `the page does not show ${s} before the reveal`);

  // Only what the state allows: nothing that needs a confirmed emergency yet.
  assert.deepEqual(await actions(p), ["acknowledge", "confirm", "dispatch", "false_alarm"]);

  // Confirm with its key (c), with a note.
  await p.keyboard.press("c");
  await p.getByTestId("action-dialog").waitFor();
  await p.locator("#incident-field-note").fill("燃气味明显，电话中确认");
  await p.getByTestId("action-submit").click();
  await waitState(p, "confirmed");
  assert.match(await p.getByTestId("action-result").innerText(), /确认险情/);
  assert.deepEqual(await actions(p), ["dispatch", "false_alarm", "resolve", "ticket"]);

  await act(p, "dispatch", { service: "fire_119", ref: "119-2026-0042" }, "responding");
  await p.locator('[data-testid=timeline-entry] dd[data-field="serviceRef"]', { hasText: "119-2026-0042" }).waitFor();
  await screenshot(p, "console-incident");

  // The reveal: one click, the details, and the page saying it was recorded.
  assert.equal((await revealRows(h.hub, inc.id)).length, 0);
  await p.getByTestId("reveal").click();
  const notice = p.getByTestId("revealed-notice");
  await notice.waitFor();
  assert.match(await notice.innerText(), /您于 .* 查看了完整信息，已记入审计日志/);
  text = await p.getByTestId("care-plan").innerText();
  assert.ok(text.includes(PHONES.son) && text.includes("Wang Wei") && text.includes(HOME.address), "the full details are shown");
  const audit = await revealRows(h.hub, inc.id);
  assert.equal(audit.length, 1, "the reveal is in the audit log");
  assert.equal(audit[0]?.actor, "user:wang");
  await p.getByTestId("hide").click();
  await p.locator("[data-testid=care-plan][data-view=masked]").waitFor();

  await act(p, "ticket", { centre: "street", ref: "JD-7781" }, "coordinated");

  // Resolve: the summary is required; the page says so before anything is sent.
  await p.getByTestId("action-resolve").click();
  await p.getByTestId("action-submit").click();
  assert.match(await p.getByTestId("field-error").innerText(), /处置摘要/);
  await p.locator("#incident-field-summary").fill("消防到场关闭燃气总阀，通风后浓度正常，老人无恙");
  await p.getByTestId("action-submit").click();
  await waitState(p, "resolved");
  assert.deepEqual(await actions(p), ["follow_up"], "closing waits for the follow-up visit");

  await act(p, "follow_up", { visitedBy: "李明（社区）", outcome: "well" }, "follow_up_due");
  assert.deepEqual(await actions(p), ["close", "follow_up"]);
  await act(p, "close", {}, "closed");
  assert.deepEqual(await actions(p), [], "nothing left to do on a closed incident");
  await p.getByTestId("actions").getByText("此状态下无需操作。").waitFor();

  // The relay's own record, through the API: every step, by wang.
  const wang = await client("wang");
  const detail = await wang.request("GET", `/console/api/v1/incidents/${inc.id}`);
  assert.equal(detail.status, 200);
  assert.equal(detail.body.incident.state, "closed");
  const tl = detail.body.timeline as any[];
  const to = (s: string) => tl.find((e) => e.to === s && e.from !== s);
  assert.equal(to("confirmed")?.actor, "user:wang");
  assert.equal(to("confirmed")?.detail?.note, "燃气味明显，电话中确认");
  assert.equal(to("responding")?.actor, "user:wang");
  assert.deepEqual([to("responding")?.detail?.service, to("responding")?.detail?.serviceRef], ["fire_119", "119-2026-0042"]);
  assert.equal(to("coordinated")?.actor, "user:wang");
  assert.deepEqual([to("coordinated")?.detail?.centre, to("coordinated")?.detail?.ref], ["street", "JD-7781"]);
  assert.equal(to("resolved")?.actor, "user:wang");
  assert.match(to("resolved")?.detail?.summary ?? "", /燃气总阀/);
  assert.equal(to("follow_up_due")?.actor, "user:wang");
  assert.deepEqual([to("follow_up_due")?.detail?.visitedBy, to("follow_up_due")?.detail?.outcome], ["李明（社区）", "well"]);
  assert.equal(to("closed")?.actor, "user:wang");
  // The same steps on the page's timeline, by "you".
  for (const s of ["已确认", "处置中", "已协调", "已解决", "待回访", "已关闭"]) await p.locator("[data-testid=timeline-entry] .entry-states", { hasText: s }).first().waitFor();
  assert.ok((await p.locator('[data-testid=timeline-entry][data-actor="user:wang"]').count()) >= 6);

  // The same page in English.
  await p.getByRole("button", { name: "English" }).click();
  await p.getByRole("heading", { name: "Call tree" }).waitFor();
  assert.equal(await p.getByTestId("incident-state").innerText(), "Closed");
  assert.equal(await p.getByTestId("incident-type").innerText(), "Gas leak");
  await p.getByRole("button", { name: "中文" }).click();
});

test("in the browser: a false alarm with its reason; a close refused because someone else closed it first; buttons only for the state; an installer refused", { skip, timeout: 120_000 }, async () => {
  const h = await newHub();
  await alarm(rig.relay, h, "smoke", "critical");
  const inc = await incidentOf(rig.relay, h.hub);
  const p = await page();
  await signInPage(p, `${rig.httpUrl}/console/`, "wang");
  await p.getByTestId("live").waitFor();
  await p.goto(`${rig.httpUrl}/console/#/incidents/${encodeURIComponent(inc.id)}`);
  await p.getByTestId("call-tree").waitFor();

  // The reason is required, then recorded and shown in words.
  await p.getByTestId("action-false_alarm").click();
  await p.getByTestId("action-submit").click();
  assert.match(await p.getByTestId("field-error").innerText(), /原因/);
  await p.locator("#incident-field-reason").selectOption("cooking_smoke");
  await p.locator("#incident-field-note").fill("老人在煎鱼，油烟触发");
  await p.getByTestId("action-submit").click();
  await waitState(p, "false_alarm");
  await p.locator('[data-testid=timeline-entry] dd[data-field="reason"]', { hasText: "烹饪油烟" }).waitFor();
  await p.locator('[data-testid=timeline-entry] dd[data-field="note"]', { hasText: "老人在煎鱼" }).waitFor();
  assert.deepEqual(await actions(p), ["close"], "a false alarm can only be closed");
  assert.equal(await p.getByTestId("action-confirm").count(), 0);
  const fa = (await getTimeline(rig.relay.db, inc.id)).find((e) => e.to === "false_alarm");
  assert.equal(fa?.actor, "user:wang");
  assert.equal(fa?.detail?.reason, "cooking_smoke");

  // Li closes it through the API while Wang's dialog is open: Wang's close is refused, in words.
  await p.getByTestId("action-close").click();
  await p.getByTestId("action-dialog").waitFor();
  const li = await client("li");
  assert.equal((await li.request("POST", `/console/api/v1/incidents/${inc.id}/close`, { body: {} })).status, 200);
  await p.getByTestId("action-submit").click();
  assert.equal(await p.getByTestId("action-error").innerText(), "该警情当前状态不允许此操作。");
  await p.getByTestId("action-cancel").click();
  await waitState(p, "closed");
  assert.deepEqual(await actions(p), []);
  const closed = (await getTimeline(rig.relay.db, inc.id)).filter((e) => e.to === "closed");
  assert.deepEqual(closed.map((e) => e.actor), ["user:li"], "closed once, by li");

  // Tablet width and the desk size: nothing runs off the side.
  for (const viewport of [{ width: 800, height: 1100 }, { width: 1366, height: 768 }]) {
    await p.setViewportSize(viewport);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at ${viewport.width}px (${overflow}px over)`);
  }

  // An installer: the page says plainly that the role may not, and shows nothing of the incident.
  const z = await page();
  await signInPage(z, `${rig.httpUrl}/console/`, "zhao");
  await z.getByTestId("who").waitFor();
  await z.goto(`${rig.httpUrl}/console/#/incidents/${encodeURIComponent(inc.id)}`);
  const refused = z.locator("[data-testid=incident-page] [data-testid=error]");
  await refused.waitFor();
  assert.equal(await refused.innerText(), "您的角色无权执行此操作。");
  assert.equal(await z.getByTestId("timeline").count(), 0);
  assert.equal(await z.getByTestId("care-plan").count(), 0);
  assert.equal(await state(z), "unloaded");
});

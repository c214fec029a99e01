// Session expiry in the real browser against the real relay, on a relay clock the test moves: a console
// left alone past the idle timeout is signed out by itself (its live stream ends, the page says the
// session expired, the relay records it), while a person using the page keeps it signed in even though the
// stream alone would not. The page's changes carry the CSRF token; the same request without it is refused.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { browserSkipReason, launchBrowser } from "../support/browser.js";
import { ConsoleClient } from "../support/console-client.js";
import { addAccount, alarm, CONSOLE_PASSWORD, incidentOf, provisionHub, signInPage, startConsoleRelay } from "../support/console-rig.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
const skip = browserSkipReason();
const MINUTE = 60_000;

test("idle past the timeout: the page signs itself out and says why; a person using it stays signed in", { skip, timeout: 120_000 }, async () => {
  let offset = 0;
  const rig = await startConsoleRelay({ now: () => Date.now() + offset });
  cleanups.push(() => rig.stop());
  const { relay } = rig;
  await addAccount(relay, "wang", "王芳", "operator");
  const h = await provisionHub(relay, "hub-console-session-1");
  await alarm(relay, h, "smoke", "critical");
  const inc = await incidentOf(relay, h.hub);

  const browser = await launchBrowser();
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  await signInPage(page, `${rig.httpUrl}/console/`, "wang");
  await page.locator(`tr[data-id="${inc.id}"]`).waitFor();

  // Someone at the desk: 20 minutes pass, a key is pressed, 20 more pass. 40 minutes since sign-in, but
  // never 30 without use: still signed in, and the stream still delivers.
  offset += 20 * MINUTE;
  await page.keyboard.press("Shift");
  await page.waitForTimeout(1000);
  offset += 20 * MINUTE;
  await page.waitForTimeout(7000); // longer than the stream's session check
  assert.equal(await page.getByRole("heading", { name: "值班人员登录" }).count(), 0, "still signed in");
  await page.locator(`tr[data-id="${inc.id}"]`).waitFor();

  // Nobody at the desk for 31 minutes: the stream ends, the page goes back to sign-in and says why.
  offset += 31 * MINUTE;
  await page.getByRole("heading", { name: "值班人员登录" }).waitFor({ timeout: 20_000 });
  await page.getByText("会话已过期，请重新登录。").first().waitFor();
  assert.equal(await page.locator(`tr[data-id="${inc.id}"]`).count(), 0, "no incident left on the screen");
  const audit = await listAudit(relay.db, { subject: "user:wang" });
  assert.ok(audit.some((a) => a.action === "console.session_expired" && /idle/.test(a.purpose)), JSON.stringify(audit.map((a) => [a.action, a.purpose])));

  // The cookie the browser still holds opens nothing any more.
  const cookies = await browser.context.cookies(rig.httpUrl);
  const client = new ConsoleClient(rig.httpUrl);
  for (const c of cookies) client.jar.set(c.name, c.value);
  assert.equal((await client.request("GET", "/console/api/incidents")).status, 401);

  // Signing in again works, and the page's own changes carry the CSRF token while a bare request does not get through.
  await page.getByLabel("用户名").fill("wang");
  await page.getByLabel("密码").fill(CONSOLE_PASSWORD);
  await page.getByRole("button", { name: "登录" }).click();
  await page.locator(`tr[data-id="${inc.id}"]`).waitFor();
  const fresh = new ConsoleClient(rig.httpUrl);
  for (const c of await browser.context.cookies(rig.httpUrl)) fresh.jar.set(c.name, c.value);
  const forged = await fresh.request("POST", `/console/api/incidents/${inc.id}/take`, { body: {}, csrf: false });
  assert.equal(forged.status, 403);
  assert.equal(forged.body.error, "csrf");
  await page.locator(`tr[data-id="${inc.id}"] [data-testid="take"]`).click();
  await page.locator(`tr[data-id="${inc.id}"] td[data-col="takenBy"]`, { hasText: "由您接警" }).waitFor();
});

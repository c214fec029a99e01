// The duty console in a real browser (the machine's Chromium): the bundle as `npm run build` makes it, served
// with a small stand-in for the console API (/console/api: session, incidents, the event stream, take) that
// keeps to the same contract. Sign-in in Chinese by default, translated errors, the language switch, the
// queue's order and words, a live critical incident flashing and sounding, take and take-over, the
// keyboard, sign-out. ANXIN_SCREENSHOTS=1 saves the pages to docs/screenshots/.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { buildConsole } from "../../relay/console/build.js";
import { waitFor } from "../support/wait.js";
import { browserSkipReason, launchBrowser, screenshot, type TestBrowser } from "../support/browser.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const LOCALES = path.resolve(HERE, "../../relay/console/locales");

// ---- the stand-in console API ------------------------------------------------------------------------

interface User {
  username: string;
  displayName: string;
  role: string;
}
interface Row {
  id: string;
  type: string;
  severity: string;
  hub: string;
  homeMasked: string;
  receivedAt: number;
  state: string;
  step: { label: string; index: number; of: number; nextAt?: number } | null;
  takenBy: { username: string; displayName: string; at: number } | null;
}
interface Seen {
  method: string;
  path: string;
  csrf: string | undefined;
  body: any;
}

const WANG: User = { username: "wang", displayName: "王芳", role: "operator" };
const LI = { username: "li", displayName: "李明" };
const PASSWORD = "correct horse battery";
const LOCKED_UNTIL = Date.parse("2026-12-06T09:30:00Z");

class StandIn {
  readonly rows = new Map<string, Row>();
  readonly seen: Seen[] = [];
  private readonly sessions = new Map<string, { user: User; csrfToken: string; expired: boolean }>();
  private readonly streams = new Set<http.ServerResponse>();
  private readonly server: http.Server;
  url = "";

  constructor(private readonly distDir: string) {
    this.server = http.createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        res.writeHead(500).end(String(err));
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.end();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** One server-sent event to every open stream. */
  push(event: string, data: unknown): void {
    for (const s of this.streams) s.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  streamCount(): number {
    return this.streams.size;
  }

  expireSessions(): void {
    for (const s of this.sessions.values()) s.expired = true;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const p = url.pathname;
    if (req.method === "GET" && (p === "/console/" || p === "/console/index.html")) return this.file(res, "index.html", "text/html; charset=utf-8");
    if (req.method === "GET" && p === "/console/app.js") return this.file(res, "app.js", "text/javascript; charset=utf-8");
    if (req.method === "GET" && p === "/console/app.css") return this.file(res, "app.css", "text/css; charset=utf-8");
    const chunk = /^\/console\/(chunks\/[\w-]+\.js)$/.exec(p);
    if (req.method === "GET" && chunk?.[1]) return this.file(res, chunk[1], "text/javascript; charset=utf-8");
    if (!p.startsWith("/console/api/")) return json(res, 404, { error: "not_found" });

    const raw = await readBody(req);
    const body = raw ? JSON.parse(raw) : undefined;
    const csrf = header(req, "x-csrf-token");
    this.seen.push({ method: req.method ?? "", path: p, csrf, body });
    const sid = /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
    const session = sid ? this.sessions.get(sid) : undefined;

    if (p === "/console/api/session" && req.method === "POST") return this.signIn(res, body);
    if (!session) return json(res, 401, { error: "no_session" });
    if (session.expired) return json(res, 401, { error: "session_expired" });
    if (req.method !== "GET" && csrf !== session.csrfToken) return json(res, 403, { error: "csrf" });

    if (p === "/console/api/session" && req.method === "GET") return json(res, 200, { user: session.user, csrfToken: session.csrfToken });
    if (p === "/console/api/session" && req.method === "DELETE") {
      this.sessions.delete(sid!);
      res.setHeader("set-cookie", "sid=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict");
      return json(res, 200, {});
    }
    if (p === "/console/api/incidents" && req.method === "GET") return json(res, 200, { incidents: [...this.rows.values()] });
    if (p === "/console/api/stream" && req.method === "GET") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write(": connected\n\n");
      this.streams.add(res);
      res.on("close", () => this.streams.delete(res));
      return;
    }
    const take = /^\/console\/api\/incidents\/([^/]+)\/take$/.exec(p);
    if (take && req.method === "POST") {
      const row = this.rows.get(decodeURIComponent(take[1]!));
      if (!row) return json(res, 404, { error: "not_found" });
      if (row.takenBy && row.takenBy.username !== session.user.username && body?.force !== true) return json(res, 409, { error: "taken", takenBy: row.takenBy });
      row.takenBy = { username: session.user.username, displayName: session.user.displayName, at: Date.now() };
      this.push("incident", row);
      return json(res, 200, row);
    }
    return json(res, 404, { error: "not_found" });
  }

  private signIn(res: http.ServerResponse, body: any): void {
    if (body?.username === "zhao") return json(res, 423, { error: "locked", until: LOCKED_UNTIL });
    if (body?.username === "sun") return json(res, 403, { error: "disabled" });
    if (body?.username !== WANG.username || body?.password !== PASSWORD) return json(res, 401, { error: "bad_credentials" });
    const sid = randomBytes(16).toString("hex");
    const csrfToken = randomBytes(16).toString("hex");
    this.sessions.set(sid, { user: WANG, csrfToken, expired: false });
    res.setHeader("set-cookie", `sid=${sid}; Path=/console; HttpOnly; SameSite=Strict`);
    json(res, 200, { user: WANG, csrfToken });
  }

  private async file(res: http.ServerResponse, name: string, type: string): Promise<void> {
    res.writeHead(200, { "content-type": type, "cache-control": "no-cache" }).end(await readFile(path.join(this.distDir, name)));
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

// ---- the page ---------------------------------------------------------------------------------------------

const rowIds = (page: Page) => page.$$eval("tr.incident", (trs) => trs.map((tr) => (tr as HTMLElement).dataset.id));
const rowText = (page: Page, id: string, col: string) => page.locator(`tr[data-id="${id}"] td[data-col="${col}"]`).innerText();
const selectedId = (page: Page) => page.$eval("tr.incident[aria-selected=true]", (tr) => (tr as HTMLElement).dataset.id).catch(() => undefined);
const alarm = (page: Page) => page.evaluate(() => (window as any).__anxinAlarm);

/** True when nothing sticks out sideways: readable without scrolling the page horizontally. */
const fitsWidth = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);

/** Every key path of a catalogue, "queue.col.age" style. */
function keys(obj: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(obj).flatMap(([k, v]) => (typeof v === "object" && v !== null ? keys(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

test("the zh-CN and en catalogues have the same keys", async () => {
  const zh = JSON.parse(await readFile(path.join(LOCALES, "zh-CN.json"), "utf8"));
  const en = JSON.parse(await readFile(path.join(LOCALES, "en.json"), "utf8"));
  assert.deepEqual(keys(en).sort(), keys(zh).sort());
});

const skip = browserSkipReason();
let api: StandIn;
let browser: TestBrowser;
let out: string | undefined;

before(async () => {
  if (skip) return;
  out = await mkdtemp(path.join(os.tmpdir(), "anxin-console-"));
  const { files } = await buildConsole({ outDir: out });
  assert.ok(files["app.js"]! > 10_000 && files["app.css"]! > 1000, "the bundle was written");
  api = new StandIn(out);
  await api.listen();
  browser = await launchBrowser({ locale: "en-US" });
});

after(async () => {
  await browser?.close();
  await api?.close();
  if (out) await rm(out, { recursive: true, force: true });
});

test("the duty console: sign-in, languages, the live queue, take and take-over, keys, sign-out", { skip, timeout: 120_000 }, async (t) => {
  const now = Date.now();
  const seed: Row[] = [
    { id: "inc-w1", type: "inactivity", severity: "warning", hub: "hub-0007", homeMasked: "幸福里 3 号楼 *** 室", receivedAt: now - 20 * 60_000, state: "confirming", step: { label: "邻居 张*", index: 2, of: 4, nextAt: now + 45_000 }, takenBy: null },
    { id: "inc-i1", type: "hub_offline", severity: "info", hub: "hub-0012", homeMasked: "和平路 ** 号", receivedAt: now - 60 * 60_000, state: "received", step: null, takenBy: null },
    { id: "inc-c1", type: "smoke", severity: "critical", hub: "hub-0001", homeMasked: "长安街 1** 号", receivedAt: now - 3 * 60_000, state: "confirmed", step: null, takenBy: { ...LI, at: now - 60_000 } },
    { id: "inc-w2", type: "fall", severity: "warning", hub: "hub-0003", homeMasked: "新华路 5* 号", receivedAt: now - 2 * 60_000, state: "received", step: { label: "本人", index: 1, of: 3 }, takenBy: null },
  ];
  for (const r of seed) api.rows.set(r.id, r);

  const page = await browser.newPage();
  const foreign: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(api.url) && !r.url().startsWith("data:")) foreign.push(r.url());
  });
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));

  await t.test("the sign-in page is in Chinese by default, whatever the browser's language", async () => {
    await page.goto(`${api.url}/console/`);
    await page.getByRole("heading", { name: "值班人员登录" }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), "zh-CN");
    assert.equal(await page.title(), "安心 Anxin 值班台");
    await screenshot(page, "console-sign-in");
  });

  await t.test("a wrong password, a locked and a disabled account get translated errors", async () => {
    const attempt = async (username: string, password: string) => {
      await page.getByLabel("用户名").fill(username);
      await page.getByLabel("密码").fill(password);
      await page.getByRole("button", { name: "登录" }).click();
      return page.getByTestId("error").innerText();
    };
    assert.equal(await attempt("wang", "wrong"), "用户名或密码错误。");
    assert.match(await attempt("zhao", "x"), /^登录失败次数过多，账号已锁定至 .*\d/);
    assert.equal(await attempt("sun", "x"), "该账号已停用，请联系管理员。");
    assert.equal(await page.getByLabel("密码").inputValue(), "", "the password is typed again, not corrected");
  });

  await t.test("signing in shows who is on duty and the queue, most severe first, with the severity's word", async () => {
    await page.getByLabel("用户名").fill("wang");
    await page.getByLabel("密码").fill(PASSWORD);
    await page.getByRole("button", { name: "登录" }).click();
    await page.getByTestId("queue").waitFor();
    assert.equal(await page.getByTestId("who").innerText(), "当前值班：王芳（值班员）");
    await page.waitForFunction(() => document.querySelectorAll("tr.incident").length === 4);
    // critical, then the two warnings oldest first, then info
    assert.deepEqual(await rowIds(page), ["inc-c1", "inc-w1", "inc-w2", "inc-i1"]);
    assert.deepEqual(await page.getByTestId("severity").allInnerTexts(), ["紧急", "警告", "警告", "提示"]);
    assert.equal(await rowText(page, "inc-w1", "type"), "长时间无活动");
    assert.equal(await rowText(page, "inc-i1", "type"), "网关离线");
    assert.equal(await rowText(page, "inc-c1", "takenBy"), "李明 已接警");
    assert.match(await rowText(page, "inc-w1", "step"), /^第 2\/4 步：邻居 张\*\n?\d+ 秒后下一步$/);
    assert.match(await rowText(page, "inc-w1", "age"), /^20 分 \d+ 秒$/);
    assert.equal(await page.locator('tr[data-alarm="on"]').count(), 0, "the only critical one is taken: no flashing");
    assert.equal((await alarm(page))?.playing ?? false, false);
  });

  await t.test("the time since receipt ticks", async () => {
    const first = await rowText(page, "inc-w2", "age");
    await page.waitForFunction((before) => document.querySelector('tr[data-id="inc-w2"] td[data-col="age"]')?.textContent !== before, first, { timeout: 5000 });
  });

  await t.test("English and back, remembered across a reload", async () => {
    await page.locator("button[data-lang=en]").click();
    await page.getByRole("heading", { name: "Incident queue" }).waitFor();
    assert.equal(await page.getByTestId("who").innerText(), "On duty: 王芳 (operator)");
    assert.deepEqual(await page.getByTestId("severity").allInnerTexts(), ["Critical", "Warning", "Warning", "Info"]);
    assert.equal(await rowText(page, "inc-c1", "takenBy"), "Taken by 李明");
    assert.equal(await page.evaluate(() => document.documentElement.lang), "en");
    await page.reload();
    await page.getByRole("heading", { name: "Incident queue" }).waitFor();
    assert.equal(await page.locator("nav a[data-nav=homes]").innerText(), "Homes");
    await page.locator("button[data-lang=zh-CN]").click();
    await page.getByRole("heading", { name: "警情队列" }).waitFor();
    assert.equal(await page.locator("nav a[data-nav=reports]").innerText(), "报表");
    assert.equal(await page.evaluate(() => localStorage.getItem("anxin.console.language")), "zh-CN");
  });

  await t.test("the navigation leads to the homes board and back (the board itself: console-homes.test.ts)", async () => {
    await page.locator("nav a[data-nav=homes]").click();
    // The link is marked once the board has rendered, which can be a moment after the click on a busy machine.
    await page.locator("nav a[data-nav=homes][aria-current=page]").waitFor();
    assert.equal(new URL(page.url()).hash, "#/homes");
    await page.locator("nav a[data-nav=queue]").click();
    await page.getByTestId("queue").waitFor();
  });

  await t.test("a critical incident from the stream appears within 1 s, flashes and sounds", async (st) => {
    await page.getByTestId("live").filter({ hasText: "实时更新中" }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll("tr.incident").length === 4);
    // The page's own clock, from before the event is sent to the row being in the DOM: an upper bound.
    // (No named functions in here: tsx would wrap them in a helper the page does not have.)
    await page.evaluate(() => {
      (window as any).__sentAt = performance.now();
      new MutationObserver((_, obs) => {
        if (!document.querySelector('tr[data-id="inc-c2"]')) return;
        (window as any).__rowAt = performance.now();
        obs.disconnect();
      }).observe(document.body, { childList: true, subtree: true });
    });
    const c2: Row = { id: "inc-c2", type: "gas", severity: "critical", hub: "hub-0020", homeMasked: "民生路 2** 号", receivedAt: Date.now(), state: "received", step: { label: "本人", index: 1, of: 3 }, takenBy: null };
    api.rows.set(c2.id, c2);
    api.push("incident", c2);
    await page.waitForFunction(() => (window as any).__rowAt !== undefined, undefined, { timeout: 10_000 });
    const ms = await page.evaluate(() => (window as any).__rowAt - (window as any).__sentAt);
    st.diagnostic(`the row appeared within ${ms.toFixed(0)} ms of the page's clock`);
    assert.ok(ms < 1000, `the row appeared ${ms.toFixed(0)} ms after the page was about to be sent the event`);

    const row = page.locator('tr[data-id="inc-c2"]');
    assert.equal(await row.getAttribute("data-alarm"), "on");
    assert.match((await row.getAttribute("class")) ?? "", /\balarm\b/);
    assert.equal(await row.evaluate((el) => getComputedStyle(el).animationName), "alarm-flash");
    assert.deepEqual(await rowIds(page), ["inc-c1", "inc-c2", "inc-w1", "inc-w2", "inc-i1"]);
    assert.equal(await rowText(page, "inc-c2", "type"), "燃气泄漏");
    const sound = await alarm(page);
    assert.equal(sound.playing, true, "the oscillators run");
    assert.equal(sound.contextState, "running", "the browser lets them be heard (the sign-in was a gesture)");
    assert.equal(await page.getByTestId("alarm-blocked").count(), 0);
    await screenshot(page, "console-queue");
  });

  await t.test("Take: the row shows who took it, the flashing and the sound stop", async () => {
    const before = api.seen.length;
    await page.locator('tr[data-id="inc-c2"] [data-testid=take]').click();
    await page.locator('tr[data-id="inc-c2"] td[data-col="takenBy"]', { hasText: "由您接警" }).waitFor();
    assert.equal(await page.locator('tr[data-id="inc-c2"]').getAttribute("data-alarm"), "off");
    assert.equal((await alarm(page)).playing, false);
    const req = api.seen.slice(before).find((s) => s.path.endsWith("/inc-c2/take"));
    assert.deepEqual(req?.body, {});
    assert.ok(req?.csrf, "the CSRF token went with it");
  });

  await t.test("taken meanwhile by someone else: asked, cancelled, asked again, taken over with force", async () => {
    api.rows.get("inc-w2")!.takenBy = { ...LI, at: Date.now() }; // not pushed: this page does not know yet
    const takeW2 = page.locator('tr[data-id="inc-w2"] [data-testid=take]');
    await takeW2.click();
    const dialog = page.getByTestId("take-over");
    await dialog.waitFor();
    assert.equal(await dialog.locator("p").innerText(), "该警情已由 李明 接警，是否由您接手？");
    await page.getByTestId("take-over-cancel").click();
    await dialog.waitFor({ state: "detached" });
    assert.equal(await rowText(page, "inc-w2", "takenBy"), "无人接警");

    await takeW2.click();
    await dialog.waitFor();
    await page.getByTestId("take-over-confirm").click();
    await page.locator('tr[data-id="inc-w2"] td[data-col="takenBy"]', { hasText: "由您接警" }).waitFor();
    const takes = api.seen.filter((s) => s.path.endsWith("/inc-w2/take")).map((s) => s.body);
    assert.deepEqual(takes, [{}, {}, { force: true }]);
  });

  await t.test("keys: j and k move the selection, t takes, Enter opens", async () => {
    await page.locator('tr[data-id="inc-c1"] td[data-col="type"]').click(); // select with the mouse, focus off the buttons
    assert.equal(await selectedId(page), "inc-c1");
    await page.keyboard.press("j");
    await page.keyboard.press("j");
    assert.equal(await selectedId(page), "inc-w1");
    await page.keyboard.press("k");
    assert.equal(await selectedId(page), "inc-c2");
    await page.keyboard.press("j");
    await page.keyboard.press("t");
    await page.locator('tr[data-id="inc-w1"] td[data-col="takenBy"]', { hasText: "由您接警" }).waitFor();
    await page.keyboard.press("Enter");
    // The page itself is tested against the real relay (console-incident.test.ts); this stand-in has no incident API.
    await page.getByTestId("incident-page").waitFor();
    assert.equal(new URL(page.url()).hash, "#/incidents/inc-w1");
    await page.goBack();
    await page.getByTestId("queue").waitFor();
  });

  await t.test("a removed incident leaves the queue", async () => {
    api.rows.delete("inc-i1");
    api.push("removed", { id: "inc-i1" });
    await page.locator('tr[data-id="inc-i1"]').waitFor({ state: "detached" });
  });

  await t.test("readable on 1366×768 and on a tablet", async () => {
    assert.ok(await fitsWidth(page), "1366×768: no sideways scrolling");
    await page.setViewportSize({ width: 768, height: 1024 });
    assert.ok(await fitsWidth(page), "768×1024: no sideways scrolling");
    assert.equal(await page.locator("table.queue thead").isVisible(), false, "cards on a tablet");
    await screenshot(page, "console-queue-tablet");
    await page.setViewportSize({ width: 1366, height: 768 });
  });

  await t.test("signing out returns to the sign-in page; an expired session says so", async () => {
    const token = api.seen.find((s) => s.method === "POST" && s.path.endsWith("/take"))?.csrf;
    await page.getByRole("button", { name: "退出登录" }).click();
    await page.getByRole("heading", { name: "值班人员登录" }).waitFor();
    assert.equal(await page.getByTestId("notice").innerText(), "已退出登录。");
    const out = api.seen.find((s) => s.method === "DELETE");
    assert.equal(out?.csrf, token, "sign-out carried the session's CSRF token");
    await waitFor("the event stream to be closed", () => api.streamCount() === 0);

    await page.getByLabel("用户名").fill("wang");
    await page.getByLabel("密码").fill(PASSWORD);
    await page.getByRole("button", { name: "登录" }).click();
    await page.getByTestId("queue").waitFor();
    api.expireSessions();
    await page.reload();
    await page.getByTestId("notice").filter({ hasText: "会话已过期，请重新登录。" }).waitFor();
  });

  await t.test("every change carried the CSRF token, and nothing was fetched from elsewhere", () => {
    const changes = api.seen.filter((s) => s.method !== "GET" && !(s.method === "POST" && s.path === "/console/api/session"));
    assert.ok(changes.length >= 6);
    assert.deepEqual(changes.filter((s) => !s.csrf), []);
    assert.deepEqual(foreign, []);
    assert.deepEqual(pageErrors, []);
  });
});

// Unit files (systemd-analyze verify / security), the sysusers file, and the sd_notify client against a fake
// NOTIFY_SOCKET. The systemd-analyze parts skip with a reason where the tool is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unixDgramSocket } from "../../lib/daemon/unix-dgram.js";
import { createNotifier, watchdogIntervalMs } from "../../lib/daemon/sd-notify.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const UNITS = ["anxin-hub.service", "anxin-relay.service"].map((u) => join(ROOT, "systemd", u));
const SYSUSERS = join(ROOT, "systemd", "anxin-hub.sysusers.conf");
const MAX_EXPOSURE = 2.5;

function toolMissing(tool: string): string | false {
  const r = spawnSync(tool, ["--version"], { encoding: "utf8" });
  return r.error ? `${tool} not available (${r.error.message})` : false;
}
const noAnalyze = toolMissing("systemd-analyze");
const noSysusers = toolMissing("systemd-sysusers");
if (noAnalyze) console.log(`skipping unit checks: ${noAnalyze}`);

function tempDir(t: { after(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * verify fails with "Command … is not executable" when ExecStart's program is absent, and node is not at
 * /usr/bin/node everywhere (nvm, CI images). So the check runs on a copy whose ExecStart points at the node
 * running this test when /usr/bin/node is missing; the rest of the unit is checked as shipped.
 */
function unitForVerify(unit: string, dir: string): string {
  const copy = join(dir, basename(unit));
  let text = readFileSync(unit, "utf8");
  const exec = /^ExecStart=(\S+)/m.exec(text)?.[1];
  assert.ok(exec, `${basename(unit)} has an ExecStart=`);
  let executable = true;
  try {
    accessSync(exec, constants.X_OK);
  } catch {
    executable = false;
  }
  if (!executable) text = text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`);
  writeFileSync(copy, text);
  return copy;
}

for (const unit of UNITS) {
  const name = basename(unit);

  test(`${name}: systemd-analyze verify is clean`, { skip: noAnalyze }, (t) => {
    const copy = unitForVerify(unit, tempDir(t, "anxin-unit-"));
    const r = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
    // verify exits 0 even for "Unknown key … ignoring", so its output is checked too.
    const about = `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => l.includes(name));
    assert.deepEqual(about, [], `systemd-analyze verify reported:\n${about.join("\n")}`);
    assert.equal(r.status, 0, r.stderr);
  });

  test(`${name}: systemd-analyze security --offline=yes <= ${MAX_EXPOSURE}`, { skip: noAnalyze }, (t) => {
    const r = spawnSync("systemd-analyze", ["security", "--offline=yes", unit], { encoding: "utf8" });
    const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout);
    assert.ok(m, `no "Overall exposure level" line in:\n${r.stdout}\n${r.stderr}`);
    const score = Number(m[1]);
    t.diagnostic(`${name} exposure ${score}`);
    assert.ok(score <= MAX_EXPOSURE, `${name} exposure ${score} > ${MAX_EXPOSURE}`);
  });

  test(`${name}: never MemoryDenyWriteExecute (V8 JIT), always Type=notify with a watchdog`, () => {
    const text = readFileSync(unit, "utf8");
    assert.doesNotMatch(text, /^MemoryDenyWriteExecute=(yes|true|1|on)/im);
    assert.match(text, /^Type=notify$/m);
    assert.match(text, /^NotifyAccess=main$/m);
    assert.match(text, /^WatchdogSec=30$/m);
    assert.match(text, /^UMask=0077$/m);
  });
}

test("anxin-hub.service runs node with V8 set for memory over speed (resident memory target, docs/benchmarks.md)", () => {
  const hub = readFileSync(UNITS[0]!, "utf8");
  assert.match(hub, /^ExecStart=\/usr\/bin\/node --max-semi-space-size=1 --optimize-for-size --no-opt --no-sparkplug \/opt\/anxin\/dist\/gateway\/src\/cli\/main\.js run /m);
  assert.match(hub, /^Environment=MALLOC_ARENA_MAX=2$/m);
  // A heap limit would turn growth into a crash of the safety daemon; the unit's MemoryMax bounds it instead.
  assert.doesNotMatch(/^ExecStart=.*$/m.exec(hub)![0], /--max-old-space-size/);
  assert.match(hub, /^MemoryMax=\d+M$/m);
});

test("anxin-hub.service reaches the serial adapters; anxin-relay.service reaches no device", () => {
  const hub = readFileSync(UNITS[0]!, "utf8");
  for (const group of ["ttyUSB", "ttyACM", "ttyAMA", "ttyS"]) assert.match(hub, new RegExp(`^DeviceAllow=char-${group} rw$`, "m"));
  assert.match(hub, /^SupplementaryGroups=dialout$/m);
  assert.match(hub, /^PrivateDevices=no$/m);
  const relay = readFileSync(UNITS[1]!, "utf8");
  assert.match(relay, /^PrivateDevices=yes$/m);
  assert.doesNotMatch(relay, /^DeviceAllow=/m);
  assert.doesNotMatch(relay, /^SupplementaryGroups=/m);
});

test("anxin-hub.sysusers.conf creates user anxin in group anxin and in dialout", { skip: noSysusers }, (t) => {
  const root = tempDir(t, "anxin-sysroot-");
  mkdirSync(join(root, "etc"));
  const r = spawnSync("systemd-sysusers", [`--root=${root}`, SYSUSERS], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const passwd = readFileSync(join(root, "etc/passwd"), "utf8");
  const group = readFileSync(join(root, "etc/group"), "utf8");
  const user = /^anxin:x:(\d+):(\d+):[^:\n]*:([^:\n]*):([^:\n]*)$/m.exec(passwd);
  assert.ok(user, passwd);
  assert.ok(Number(user[1]) < 1000, "a system uid");
  assert.match(group, new RegExp(`^anxin:x:${user[2]}:`, "m"));
  assert.match(group, /^dialout:x:\d+:(.*,)?anxin(,.*)?$/m);
  assert.equal(user[4], "/usr/sbin/nologin");
});

// ---- sd_notify ----

interface FakeSystemd {
  path: string;
  messages: string[];
  count(m: string): number;
  close(): void;
}

function fakeNotifySocket(t: { after(fn: () => void): void }): FakeSystemd {
  const path = join(tempDir(t, "anxin-notify-"), "notify.sock");
  const messages: string[] = [];
  const server = unixDgramSocket((buf: Buffer) => messages.push(buf.toString("utf8")));
  server.bind(path);
  let closed = false;
  const close = (): void => {
    if (!closed) server.close();
    closed = true;
  };
  // An open datagram socket keeps the test process alive.
  t.after(close);
  return { path, messages, count: (m) => messages.filter((x) => x === m).length, close };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(10);
  }
}

test("watchdog interval is WATCHDOG_USEC/3, only for the watched PID", () => {
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "30000000" }, 42), 10_000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "300000" }, 42), 100);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "42" }, 42), 10_000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "41" }, 42), undefined);
  assert.equal(watchdogIntervalMs({}, 42), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "abc" }, 42), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "0" }, 42), undefined);
  // Absurdly small values are floored instead of spinning.
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "3" }, 42), 10);
});

test("without NOTIFY_SOCKET every call is a harmless no-op", () => {
  const n = createNotifier({ healthy: () => true, env: {} });
  assert.equal(n.watchdogIntervalMs, undefined);
  n.ready();
  n.status("x");
  n.stopping();
  n.close();
  n.ready();
});

test("READY, STATUS, health-gated WATCHDOG and STOPPING reach the notify socket", async (t) => {
  const sd = fakeNotifySocket(t);
  let healthy = true;
  const logs: string[] = [];
  const n = createNotifier({
    healthy: () => healthy,
    env: { NOTIFY_SOCKET: sd.path, WATCHDOG_USEC: "300000" },
    log: (msg) => logs.push(msg),
  });
  t.after(() => n.close());
  assert.equal(n.watchdogIntervalMs, 100);

  n.ready();
  await until(() => sd.count("READY=1") === 1);

  n.status("polling 3 devices\non 1 bus");
  await until(() => sd.messages.includes("STATUS=polling 3 devices on 1 bus"));

  await until(() => sd.count("WATCHDOG=1") >= 2, 2000);

  healthy = false;
  await sleep(150); // a ping already decided on may still land
  const before = sd.count("WATCHDOG=1");
  await sleep(450);
  assert.equal(sd.count("WATCHDOG=1"), before, "no pings while unhealthy");
  assert.ok(logs.some((l) => l.includes("withholding")), logs.join("\n"));

  healthy = true;
  await until(() => sd.count("WATCHDOG=1") > before, 2000);
  assert.ok(logs.some((l) => l.includes("resumed")), logs.join("\n"));

  n.stopping();
  await until(() => sd.count("STOPPING=1") === 1);

  n.close();
  await sleep(50);
  const after = sd.messages.length;
  await sleep(300);
  assert.equal(sd.messages.length, after, "nothing after close()");
});

test("a throwing health callback counts as unhealthy and does not escape", async (t) => {
  const sd = fakeNotifySocket(t);
  const n = createNotifier({
    healthy: () => {
      throw new Error("broken check");
    },
    env: { NOTIFY_SOCKET: sd.path, WATCHDOG_USEC: "150000" },
    log: () => {},
  });
  t.after(() => n.close());
  await sleep(300);
  assert.equal(sd.count("WATCHDOG=1"), 0);
});

test("no pings when WATCHDOG_PID names another process", async (t) => {
  const sd = fakeNotifySocket(t);
  const n = createNotifier({
    healthy: () => true,
    env: { NOTIFY_SOCKET: sd.path, WATCHDOG_USEC: "150000", WATCHDOG_PID: String(process.pid + 1) },
    log: () => {},
  });
  t.after(() => n.close());
  assert.equal(n.watchdogIntervalMs, undefined);
  n.ready();
  await until(() => sd.count("READY=1") === 1);
  await sleep(250);
  assert.equal(sd.count("WATCHDOG=1"), 0);
});

test("an unreachable NOTIFY_SOCKET is logged once and never throws", async (t) => {
  const dir = tempDir(t, "anxin-notify-");
  const logs: Array<[string, unknown]> = [];
  const n = createNotifier({
    healthy: () => true,
    env: { NOTIFY_SOCKET: join(dir, "missing.sock"), WATCHDOG_USEC: "60000" },
    log: (msg, err) => logs.push([msg, err]),
  });
  t.after(() => n.close());
  n.ready();
  n.status("x");
  await sleep(200); // several failed pings
  n.stopping();
  n.close();
  const failures = logs.filter(([m]) => m.startsWith("cannot send"));
  assert.equal(failures.length, 1, JSON.stringify(logs));
});

test("an abstract NOTIFY_SOCKET falls back to the notify command for READY/STOPPING, without pings", async (t) => {
  const dir = tempDir(t, "anxin-notify-");
  const out = join(dir, "calls.txt");
  const script = join(dir, "fake-systemd-notify");
  writeFileSync(script, `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> '${out}'\n`);
  chmodSync(script, 0o755);
  const logs: string[] = [];
  const n = createNotifier({
    healthy: () => true,
    env: { NOTIFY_SOCKET: "@anxin-test", WATCHDOG_USEC: "150000", PATH: process.env.PATH },
    notifyCommand: script,
    log: (msg) => logs.push(msg),
  });
  t.after(() => n.close());
  assert.equal(n.watchdogIntervalMs, undefined);
  assert.equal(logs.filter((l) => l.includes("abstract")).length, 1, logs.join("\n"));
  n.ready();
  await until(() => existsSync(out) && readFileSync(out, "utf8").includes("READY=1"));
  n.stopping();
  await until(() => readFileSync(out, "utf8").includes("STOPPING=1"));
  await sleep(200);
  const calls = readFileSync(out, "utf8").trim().split("\n");
  assert.deepEqual(calls, ["@anxin-test READY=1", "@anxin-test STOPPING=1"]);
});

test("without the optional unix-dgram addon a path NOTIFY_SOCKET still gets READY/STOPPING through the notify command, without pings", async (t) => {
  const dir = tempDir(t, "anxin-notify-");
  const out = join(dir, "calls.txt");
  const script = join(dir, "fake-systemd-notify");
  writeFileSync(script, `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> '${out}'\n`);
  chmodSync(script, 0o755);
  const logs: string[] = [];
  const n = createNotifier({
    healthy: () => true,
    env: { NOTIFY_SOCKET: join(dir, "notify.sock"), WATCHDOG_USEC: "150000", PATH: process.env.PATH },
    notifyCommand: script,
    datagrams: false,
    log: (msg) => logs.push(msg),
  });
  t.after(() => n.close());
  assert.equal(n.watchdogIntervalMs, undefined, "no watchdog without datagrams");
  assert.equal(logs.filter((l) => l.includes("no watchdog pings")).length, 1, logs.join("\n"));
  n.ready();
  await until(() => existsSync(out) && readFileSync(out, "utf8").includes("READY=1"));
  n.stopping();
  await until(() => readFileSync(out, "utf8").includes("STOPPING=1"));
});

test("unit files are copied for verify only when ExecStart's program is missing", (t) => {
  // Guards the helper itself: the shipped ExecStart must stay /usr/bin/node.
  for (const unit of UNITS) assert.match(readFileSync(unit, "utf8"), /^ExecStart=\/usr\/bin\/node (--[\w-]+(=\S+)? )*\/opt\/anxin\/dist\//m);
  const dir = tempDir(t, "anxin-unit-");
  const fake = join(dir, "x.service");
  copyFileSync(UNITS[0]!, fake);
  writeFileSync(fake, readFileSync(fake, "utf8").replace(/^ExecStart=\S+/m, "ExecStart=/nonexistent/node"));
  const copyDir = join(dir, "copy");
  mkdirSync(copyDir);
  const copy = unitForVerify(fake, copyDir);
  assert.match(readFileSync(copy, "utf8"), new RegExp(`^ExecStart=${process.execPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} `, "m"));
});

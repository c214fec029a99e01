// The daemon logger (syslog priority prefix, removal of secrets and personal data) and Health.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, redactFields, REDACTED_KEYS, type Logger } from "../../lib/daemon/logger.js";
import { EVENT_LOOP_CHECK, Health } from "../../lib/daemon/health.js";

/** A logger writing to a temp file; read() returns the raw lines written so far. */
function fileLogger(
  t: { after(fn: () => void): void },
  opts: { syslogPrefix?: boolean; level?: string; env?: NodeJS.ProcessEnv } = {},
): { log: Logger; read: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), "anxin-log-"));
  const file = join(dir, "out.log");
  const fd = openSync(file, "w");
  t.after(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  const log = createLogger({ name: "test", destination: fd, level: opts.level ?? "trace", ...opts });
  return { log, read: () => readFileSync(file, "utf8").split("\n").filter((l) => l !== "") };
}

function parse(line: string): Record<string, unknown> {
  return JSON.parse(line.replace(/^<\d>/, "")) as Record<string, unknown>;
}

test("each level carries its syslog priority prefix", (t) => {
  const { log, read } = fileLogger(t, { syslogPrefix: true });
  log.trace("t");
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  log.fatal("f");
  const lines = read();
  assert.deepEqual(
    lines.map((l) => /^<(\d)>\{/.exec(l)?.[1]),
    ["7", "7", "6", "4", "3", "2"],
    lines.join("\n"),
  );
  // The rest of the line is plain JSON.
  assert.deepEqual(lines.map((l) => parse(l).msg), ["t", "d", "i", "w", "e", "f"]);
  assert.equal(parse(lines[2]!).name, "test");
});

test("the prefix is on by default only under systemd (JOURNAL_STREAM or INVOCATION_ID)", (t) => {
  const plain = fileLogger(t, { env: {} });
  plain.log.warn("x");
  assert.match(plain.read()[0]!, /^\{/);

  const journal = fileLogger(t, { env: { JOURNAL_STREAM: "8:12345" } });
  journal.log.warn("x");
  assert.match(journal.read()[0]!, /^<4>\{/);

  const invoked = fileLogger(t, { env: { INVOCATION_ID: "0123456789abcdef" } });
  invoked.log.error("x");
  assert.match(invoked.read()[0]!, /^<3>\{/);

  const forcedOff = fileLogger(t, { env: { INVOCATION_ID: "x" }, syslogPrefix: false });
  forcedOff.log.info("x");
  assert.match(forcedOff.read()[0]!, /^\{/);
});

test("secrets and personal data are removed at the top level of the logged object", (t) => {
  const { log, read } = fileLogger(t, { syslogPrefix: true });
  log.info(
    { password: "hunter2", networkKey: "01:03:05", token: "t", key: "k", phone: "13800000000", elderName: "Wang", address: "Bldg 3", device: "gas-1" },
    "paired",
  );
  const rec = parse(read()[0]!);
  for (const k of ["password", "networkKey", "token", "key", "phone", "elderName", "address"]) assert.equal(k in rec, false, k);
  assert.equal(rec.device, "gas-1");
  assert.equal(rec.msg, "paired");
  const raw = read()[0]!;
  for (const secret of ["hunter2", "01:03:05", "13800000000", "Wang", "Bldg 3"]) assert.equal(raw.includes(secret), false, secret);
});

test("secrets and personal data are removed one and two levels deep, including inside arrays", (t) => {
  const { log, read } = fileLogger(t);
  const input = {
    zigbee: { channel: 15, networkKey: "01:03:05:07", panId: 6754 },
    uplink: { mqtt: { url: "mqtts://relay", password: "pw", clientId: "hub-1" } },
    contacts: [{ contactName: "Li", phone: "139", relation: "son" }],
    elder: { elderName: "Wang", home: { address: "Room 301", floor: 3 } },
  };
  log.info(input, "config loaded");
  const rec = parse(read()[0]!);
  assert.deepEqual(rec.zigbee, { channel: 15, panId: 6754 });
  assert.deepEqual(rec.uplink, { mqtt: { url: "mqtts://relay", clientId: "hub-1" } });
  assert.deepEqual(rec.contacts, [{ relation: "son" }]);
  assert.deepEqual(rec.elder, { home: { floor: 3 } });
  // The caller's object is left untouched.
  assert.equal(input.zigbee.networkKey, "01:03:05:07");
  assert.equal(input.uplink.mqtt.password, "pw");
  assert.equal(input.contacts[0]!.phone, "139");
});

test("child-logger bindings, error fields and other letter cases are covered too", (t) => {
  const { log, read } = fileLogger(t);
  const child = log.child({ module: "uplink", token: "abc" }).child({ unit: 2, contactName: "Li" });
  child.info("hello");
  const err = Object.assign(new Error("auth failed"), { password: "pw", host: "relay" });
  log.error({ err }, "connect failed");
  log.info({ headers: { Authorization: "Bearer x", accept: "json" } }, "req");
  const [a, b, c] = read().map(parse);
  assert.equal(a!.module, "uplink");
  assert.equal(a!.unit, 2);
  assert.equal("token" in a!, false);
  assert.equal("contactName" in a!, false);
  const e = b!.err as Record<string, unknown>;
  assert.equal(e.message, "auth failed");
  assert.equal(e.host, "relay");
  assert.equal("password" in e, false);
  assert.deepEqual(c!.headers, { accept: "json" });
});

test("a database error's quoted row (detail, where, hint …) is not logged; its message and code are", (t) => {
  const { log, read } = fileLogger(t);
  const err = Object.assign(new Error('duplicate key value violates unique constraint "care_plans_pkey"'), {
    code: "23505",
    detail: "Key (hub)=(hub-1) already exists with address 5 Long Street",
    where: "SQL statement quoting a row",
    hint: "row 5 Long Street",
    table: "care_plans",
  });
  log.error({ err }, "insert failed");
  const e = parse(read()[0]!).err as Record<string, unknown>;
  assert.match(String(e.message), /duplicate key/);
  assert.equal(e.code, "23505");
  assert.equal(e.table, "care_plans");
  for (const k of ["detail", "where", "hint"]) assert.equal(k in e, false, k);
  assert.doesNotMatch(read()[0]!, /Long Street/);
});

test("redactFields leaves clean objects as they are and documents its key list", () => {
  const clean = { a: 1, b: { c: [1, 2, { d: "x" }] } };
  assert.equal(redactFields(clean), clean);
  for (const k of ["password", "secret", "key", "token", "networkKey", "phone", "elderName", "contactName", "address"])
    assert.ok(REDACTED_KEYS.includes(k), k);
});

// ---- Health ----

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // block the event loop on purpose
  }
}

test("Health: named checks decide ok(); a throwing check fails; names are unique", (t) => {
  const h = new Health();
  t.after(() => h.close());
  let journalOk = true;
  h.register("journal", () => ({ ok: journalOk, detail: journalOk ? undefined : "2 failed appends" }));
  h.register("bus:rs485-0", () => ({ ok: true, detail: "up" }));
  assert.equal(h.ok(), true);
  const s = h.snapshot();
  assert.deepEqual(Object.keys(s.checks).sort(), ["bus:rs485-0", EVENT_LOOP_CHECK, "journal"].sort());
  assert.deepEqual(s.checks["journal"], { ok: true });

  journalOk = false;
  assert.equal(h.ok(), false);
  assert.deepEqual(h.snapshot().checks["journal"], { ok: false, detail: "2 failed appends" });
  journalOk = true;

  const remove = h.register("broken", () => {
    throw new Error("boom");
  });
  const broken = h.snapshot();
  assert.equal(broken.ok, false);
  assert.equal(broken.checks["broken"]?.ok, false);
  assert.match(broken.checks["broken"]?.detail ?? "", /boom/);
  remove();
  assert.equal(h.ok(), true);

  assert.throws(() => h.register("journal", () => ({ ok: true })), /already registered/);
  assert.throws(() => h.register(EVENT_LOOP_CHECK, () => ({ ok: true })), /reserved/);
});

test("Health: a 1.2 s event-loop block turns the snapshot unhealthy, and it recovers after the window", async (t) => {
  const h = new Health({ lagWindowMs: 400 });
  t.after(() => h.close());
  await new Promise((r) => setTimeout(r, 300)); // let the probe run a few times
  assert.equal(h.ok(), true);

  busyWait(1200);
  // Right after the stall, before the probe had a turn: still seen.
  const during = h.snapshot();
  assert.equal(during.ok, false);
  assert.ok(during.eventLoopLagMs >= 1000, String(during.eventLoopLagMs));
  assert.equal(during.checks[EVENT_LOOP_CHECK]?.ok, false);

  // After the probe ran: remembered for the window.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.ok(), false);

  // Then forgotten once the window has passed without another stall.
  await new Promise((r) => setTimeout(r, 1000));
  const later = h.snapshot();
  assert.equal(later.ok, true, JSON.stringify(later));
  assert.ok(later.eventLoopLagMs < 1000);
});

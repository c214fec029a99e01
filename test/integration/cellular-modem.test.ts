// The cellular driver (gateway/src/cellular) against the modem emulator over a real PTY pair: init, status in
// each emulated state, an alarm's compact SMS arriving byte for byte, and how failures come back — no SIM,
// no network, a module gone silent, text the alphabet cannot carry.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AtModem } from "../../gateway/src/cellular/at-modem.js";
import { AtCommandError, AtTimeoutError } from "../../gateway/src/cellular/at-channel.js";
import { Gsm7Error, encodeGsm7Text } from "../../gateway/src/cellular/gsm7.js";
import { openSerialLink } from "../../gateway/src/cellular/serial-link.js";
import { cellularStatusEvent } from "../../gateway/src/cellular/status.js";
import { encodeCompactAlarm } from "../../protocol/sms-compact.js";
import type { Envelope } from "../../protocol/envelope.js";
import { startPtyPair, type PtyPair } from "../support/pty-pair.js";
import { startModemEmulator, type ModemEmulator } from "../support/modem-emulator.js";
import { sleep, waitFor } from "../support/wait.js";

const skip = spawnSync("socat", ["-V"], { stdio: "ignore" }).status === 0 ? false : "socat not found: apt-get install socat";
const RELAY_NUMBER = "+8613800000200";

let dir = "";
let pair: PtyPair | undefined;
let emu: ModemEmulator | undefined;
let modem: AtModem | undefined;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(os.tmpdir(), "anxin-cellular-"));
  pair = await startPtyPair(path.join(dir, "modem-hub"), path.join(dir, "modem-device"));
  emu = await startModemEmulator(pair.deviceEnd);
  // Generous: the PTY is local, but a loaded test machine must not fail a test by slowness.
  modem = new AtModem(await openSerialLink(pair.hubEnd), { commandTimeoutMs: 10_000, smsTimeoutMs: 20_000, now: () => 1_800_000_000_000 });
});

after(async () => {
  await modem?.close().catch(() => {});
  await emu?.stop().catch(() => {});
  await pair?.stop().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

const m = () => modem!;
const e = () => emu!;
function reset(): void {
  Object.assign(e().state, { sim: "ready", stat: 1, lte: true, rssi: 20, operator: "CHINA MOBILE", silent: false, failNextSend: null });
}

test("init turns echo off and asks for numeric errors", { skip }, async () => {
  await m().init();
  assert.deepEqual(e().commands.slice(-3), ["AT", "ATE0", "AT+CMEE=1"]);
  // Echo is off now: the next answer is read with nothing of our own in front of it.
  assert.equal((await m().signal()).rssi, 20);
});

test("unsolicited codes from the module come out as events, not answers", { skip }, async () => {
  reset();
  const seen: string[] = [];
  m().onUrc((l) => seen.push(l));
  e().urc("+CREG: 0");
  e().urc('+CMTI: "SM",3');
  assert.equal(await m().registration(), "home");
  await waitFor("the unsolicited codes", () => seen.length >= 2);
  assert.deepEqual(seen, ["+CREG: 0", '+CMTI: "SM",3']);
});

test("status in each emulated state", { skip }, async () => {
  reset();
  assert.deepEqual(await m().status(), { sim: "ready", registration: "home", rssiDbm: -73, operator: "CHINA MOBILE", checkedAt: 1_800_000_000_000 });
  assert.ok(e().commands.includes("AT+COPS=3,0"), "long alphanumeric operator format asked for");

  Object.assign(e().state, { stat: 5, rssi: 31 });
  assert.deepEqual(await m().status(), { sim: "ready", registration: "roaming", rssiDbm: -51, operator: "CHINA MOBILE", checkedAt: 1_800_000_000_000 });

  Object.assign(e().state, { stat: 2, rssi: 99 });
  const searching = await m().status();
  assert.equal(searching.registration, "searching");
  assert.equal(searching.rssiDbm, null, "99 is 'not known'");
  assert.equal(searching.operator, null);

  Object.assign(e().state, { stat: 3, rssi: 5 });
  assert.equal((await m().status()).registration, "denied");

  Object.assign(e().state, { stat: 0 });
  assert.equal((await m().status()).registration, "not_registered");

  // A 2G/3G module refuses AT+CEREG?; CS registration alone decides.
  Object.assign(e().state, { stat: 1, lte: false });
  assert.equal((await m().registration()), "home");

  Object.assign(e().state, { sim: "pin" });
  assert.equal(await m().sim(), "pin");
  reset();
});

test("an alarm's compact SMS arrives at the module byte for byte", { skip }, async () => {
  reset();
  const alarm: Envelope = { v: 1, hub: "hub-0042-shanghai", boot: 3, seq: 17, id: "01JF3Z8Y7XWV6T5S4R3Q2P1N0M", ts: 1_796_000_000_123, kind: "alarm", type: "vital_absent", severity: "critical", device: "radar_bed", room: "bedroom" };
  const text = encodeCompactAlarm(alarm, randomBytes(32));
  const before = e().sent.length;
  const { mr } = await m().sendSms(RELAY_NUMBER, text);
  const got = e().sent.slice(before);
  assert.equal(got.length, 1);
  assert.equal(got[0]!.number, RELAY_NUMBER);
  assert.equal(got[0]!.text, text);
  // `_` travels as its GSM code 0x11, not ASCII 0x5F (which a module reads as `§`).
  assert.deepEqual(got[0]!.raw, encodeGsm7Text(text));
  assert.ok(got[0]!.raw.includes(0x11));
  assert.equal(mr, got[0]!.mr);
  assert.deepEqual(e().commands.slice(-3), ["AT+CMGF=1", 'AT+CSCS="GSM"', `AT+CMGS="${RELAY_NUMBER}"`]);
});

test("no SIM: a clear error and the cellular_no_sim maintenance event", { skip }, async () => {
  reset();
  const ok = await m().status();
  Object.assign(e().state, { sim: "absent" });
  const status = await m().status();
  assert.equal(status.sim, "absent");
  assert.deepEqual(cellularStatusEvent(ok, status), {
    kind: "device", type: "cellular_no_sim", severity: "warning", device: "cellular-modem",
    data: { sim: "absent", registration: "not_registered", rssiDbm: -73, operator: null, checkedAt: 1_800_000_000_000, was: "ok" },
  });
  await assert.rejects(m().sendSms(RELAY_NUMBER, "AX1 test"), (err: unknown) => err instanceof AtCommandError && err.code === 310 && /SIM not inserted/.test(err.message));
  reset();
  assert.equal(cellularStatusEvent(status, await m().status())?.type, "cellular_ok");
});

test("not registered: +CMS ERROR: 331 comes back as 'no network service'", { skip }, async () => {
  reset();
  Object.assign(e().state, { stat: 2 });
  const before = e().sent.length;
  await assert.rejects(m().sendSms(RELAY_NUMBER, "AX1 test"), (err: unknown) => err instanceof AtCommandError && err.code === 331 && /no network service/.test(err.message));
  assert.equal(e().sent.length, before, "nothing recorded as sent");
  reset();
  e().state.failNextSend = 330;
  await assert.rejects(m().sendSms(RELAY_NUMBER, "AX1 test"), (err: unknown) => err instanceof AtCommandError && err.code === 330 && /SMSC address unknown/.test(err.message));
  // And the next one goes.
  await m().sendSms(RELAY_NUMBER, "AX1 test");
  assert.equal(e().sent.at(-1)!.text, "AX1 test");
});

test("a silent module: the command times out and the queue recovers for the next one", { skip }, async () => {
  // A line of its own: the main driver holds the first port's lock.
  const line = await startPtyPair(path.join(dir, "silent-hub"), path.join(dir, "silent-device"));
  const quiet = await startModemEmulator(line.deviceEnd);
  // Short only while the module is silent, where no answer can come however fast the machine is.
  const driver = new AtModem(await openSerialLink(line.hubEnd), { commandTimeoutMs: 300 });
  try {
    quiet.state.silent = true;
    await assert.rejects(driver.signal(), (err: unknown) => err instanceof AtTimeoutError && /AT\+CSQ/.test(err.message));
    // Queued behind a command that will time out: it waits its turn, then times out too.
    const [a, b] = await Promise.allSettled([driver.sim(), driver.signal()]);
    assert.ok(a.status === "rejected" && a.reason instanceof AtTimeoutError);
    assert.ok(b.status === "rejected" && b.reason instanceof AtTimeoutError);
    // A send that gets no prompt times out too.
    await assert.rejects(driver.sendSms(RELAY_NUMBER, "AX1 test"), (err: unknown) => err instanceof AtTimeoutError);
    quiet.state.silent = false;
    driver.channel.defaultTimeoutMs = 10_000;
    await driver.init();
    assert.equal((await driver.signal()).dbm, -73);
    assert.equal(await driver.sim(), "ready");
  } finally {
    await driver.close();
    await quiet.stop();
    await line.stop();
  }
});

test("text outside the GSM-7 default alphabet or over 160 characters is refused before anything is sent", { skip }, async () => {
  reset();
  const count = e().commands.length;
  await assert.rejects(m().sendSms(RELAY_NUMBER, "跌倒 alarm"), (err: unknown) => err instanceof Gsm7Error && err.reason === "outside_alphabet");
  await assert.rejects(m().sendSms(RELAY_NUMBER, "a{b}"), (err: unknown) => err instanceof Gsm7Error && err.reason === "control_collision");
  await assert.rejects(m().sendSms(RELAY_NUMBER, "x".repeat(161)), (err: unknown) => err instanceof Gsm7Error && err.reason === "too_long");
  await assert.rejects(m().sendSms('+86138",1', "AX1"), /not a phone number/);
  await sleep(50);
  assert.equal(e().commands.length, count, "the module saw no command");
});

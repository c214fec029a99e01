// The second path's benchmarks (issue 13):
//  1. SMS size: the compact text of every alarm type and path notice, with 24-character hub and device ids and
//     the largest boot and sequence numbers, against one SMS (160 GSM-7 characters).
//  2. Loss → SMS handed to the module: the real hub daemon (simulated devices) reaching the relay's broker
//     through a proxy standing for the broadband, its cellular module an emulator on a socat PTY pair. The clock
//     stops when the module has the whole text (Ctrl-Z received), the moment the hub can do no more. Three cases:
//       - "alarm while down": the broadband already counted down; an alarm is journaled → time to the module;
//       - "cut, then alarm": the line is cut (the hub sees the connection drop) and an alarm follows at once →
//         time to the module minus downAfterS (the documented detection time);
//       - "no acks": the link stays open but carries nothing (a frozen line) and an alarm is journaled → time to
//         the module minus ackTimeoutS.
//     The target is p99 ≤ 5 s after the detection time. Detection times are shortened here (downAfterS 1,
//     ackTimeoutS 2) so the runs take minutes; they only shift the start, not what follows.
// Run: node --import tsx bench/cellular-path.bench.ts   Knobs: BENCH_CELL_RUNS (20 per case).
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { ulid } from "ulid";
import { pino } from "pino";
import { ALARM_TYPES, type Envelope } from "../protocol/envelope.js";
import { encodeCompactAlarm, longestCompactLength, SMS_DEVICE_TYPES, SMS_MAX_CHARS } from "../protocol/sms-compact.js";
import { startHub, type RunningHub } from "../gateway/src/daemon/run.js";
import { provision } from "../gateway/src/uplink/provision.js";
import { startRelayForTest } from "../test/support/relay-rig.js";
import { startPtyPair } from "../test/support/pty-pair.js";
import { startModemEmulator, type ModemEmulator } from "../test/support/modem-emulator.js";
import { startBroadbandProxy, type BroadbandProxy } from "../test/support/broadband-proxy.js";
import { machineInfo, pct, r2 } from "./support.js";

const RUNS = Number(process.env.BENCH_CELL_RUNS ?? 20);
const TARGET_P99_MS = 5000;
const DOWN_AFTER_S = 1;
const ACK_TIMEOUT_S = 2;
const m = machineInfo();
console.log(`machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}, ${m.os}; load ${m.loadStart.join(" ")}`);

// --- 1. SMS size ---------------------------------------------------------------------------------------
const key = Buffer.alloc(32, 1);
const hubId = `hub-${"x".repeat(20)}`;
const device = `dev-${"y".repeat(20)}`;
const sizes: Array<{ kind: string; type: string; chars: number }> = [];
for (const [kind, types] of [["alarm", ALARM_TYPES], ["alarm_cleared", ALARM_TYPES], ["device", SMS_DEVICE_TYPES]] as const) {
  for (const type of types) {
    const env: Envelope = { v: 1, hub: hubId, boot: 4_294_967_295, seq: 4_294_967_295, id: ulid(), ts: Date.now(), kind, type, severity: "critical", device, room: "living_room" };
    sizes.push({ kind, type, chars: encodeCompactAlarm(env, key).length });
  }
}
const bound = longestCompactLength(hubId, [device]); // rooms give way in a text that would not fit with them
console.log(`\nSMS size, 24-character hub and device ids, largest boot and seq (limit ${SMS_MAX_CHARS}; commissioning's bound ${bound}):`);
console.log("kind            type               chars");
for (const s of sizes) console.log(`${s.kind.padEnd(15)} ${s.type.padEnd(18)} ${String(s.chars).padStart(5)}`);
const maxChars = Math.max(...sizes.map((s) => s.chars));

// --- 2. loss → SMS handed to the module ------------------------------------------------------------------
const socat = spawnSync("socat", ["-V"], { stdio: "ignore" }).status === 0;
interface CaseResult { name: string; runs: number; p50: number; p99: number; max: number; afterDetection: boolean }
const cases: CaseResult[] = [];
if (!socat) console.log("\nsocat not found (apt-get install socat): the loss → SMS case is skipped");
else {
  const log = pino({ level: "silent" });
  const relay = await startRelayForTest({ log });
  const dir = await mkdtemp(path.join(tmpdir(), "anxin-bench-cell-"));
  const pty = await startPtyPair(path.join(dir, "ttyModem"), path.join(dir, "ttyModemDevice"));
  const modem: ModemEmulator = await startModemEmulator(pty.deviceEnd);
  const handed: Array<{ at: number; text: string }> = [];
  modem.onSms((s) => handed.push({ at: performance.timeOrigin + performance.now(), text: s.text }));
  const broker = new URL(relay.mqttUrl);
  const proxy: BroadbandProxy = await startBroadbandProxy({ host: broker.hostname, port: Number(broker.port) });
  let hub: RunningHub | undefined;
  try {
  const hubName = "hub-bench-cell";
  const { code } = await relay.relay.registry.createClaim(hubName);
  await provision({ relay: relay.httpUrl, hub: hubName, code, dataDir: path.join(dir, "data"), secretsFile: path.join(dir, "data", "secrets.json") });
  const file = path.join(dir, "hub.yaml");
  await writeFile(file, `hub: { id: ${hubName}, dataDir: ./data }
uplink: { url: "${proxy.url}", reconnectMinMs: 100, reconnectMaxMs: 1000 }
cellular:
  port: ${pty.hubEnd}
  relayNumber: "+8610690000001"
  primary: { downAfterS: ${DOWN_AFTER_S}, ackTimeoutS: ${ACK_TIMEOUT_S}, noticeAfterS: 86400 }
  data: { enabled: false }
  test: { firstAfterS: 86400 }
`);
  hub = await startHub(file, { log });
  const h = hub;
  const now = () => performance.timeOrigin + performance.now();
  const until = async (what: string, ok: () => boolean, ms = 20_000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const mode = () => h.cellular!.status().path!.mode;
  const alarm = () => {
    const before = handed.length;
    h.hub.record({ kind: "alarm", type: "sos", severity: "critical", device: "bench-sos" });
    return before;
  };
  const backToBroadband = async () => {
    proxy.restore();
    await until("broadband back", () => mode() === "primary" && h.uplink!.status().state === "connected");
    await until("journal drained", () => h.uplink!.status().inFlight === 0);
    await new Promise((r) => setTimeout(r, 300));
  };
  const measure = async (name: string, run: () => Promise<number>, afterDetection: boolean) => {
    const xs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await backToBroadband();
      xs.push(await run());
    }
    xs.sort((a, b) => a - b);
    cases.push({ name, runs: xs.length, p50: r2(pct(xs, 50)), p99: r2(pct(xs, 99)), max: r2(xs.at(-1)!), afterDetection });
  };
  await until("uplink connected", () => h.uplink?.status().state === "connected");

  await measure("alarm while down", async () => {
    proxy.cut();
    await until("down", () => mode() === "down");
    const t = now();
    const before = alarm();
    await until("the SMS", () => handed.length > before);
    return handed.at(-1)!.at - t;
  }, false);
  await measure("cut, then alarm", async () => {
    const t = now();
    proxy.cut();
    const before = alarm();
    await until("the SMS", () => handed.length > before);
    return handed.at(-1)!.at - t - DOWN_AFTER_S * 1000;
  }, true);
  await measure("no acks (frozen line), alarm", async () => {
    proxy.freeze();
    const t = now();
    const before = alarm();
    await until("the SMS", () => handed.length > before);
    return handed.at(-1)!.at - t - ACK_TIMEOUT_S * 1000;
  }, true);

  } finally {
    await hub?.stop();
    await proxy.close();
    await modem.stop();
    await pty.stop();
    await relay.stop();
    await rm(dir, { recursive: true, force: true });
  }

  console.log(`\nloss → alarm SMS handed to the module (${RUNS} runs each; downAfterS ${DOWN_AFTER_S}, ackTimeoutS ${ACK_TIMEOUT_S}; ms):`);
  console.log("case                              p50      p99      max");
  for (const c of cases) console.log(`${`${c.name}${c.afterDetection ? " (after detection)" : ""}`.padEnd(32)} ${String(c.p50).padStart(7)}  ${String(c.p99).padStart(7)}  ${String(c.max).padStart(7)}`);
}
const loadEnd = loadavg().map(r2);
const worstP99 = cases.length ? Math.max(...cases.map((c) => c.p99)) : null;
console.log(`load average at end: ${loadEnd.join(" ")}; longest SMS ${maxChars}/${SMS_MAX_CHARS}; worst p99 after detection ${worstP99 ?? "-"} ms vs target ${TARGET_P99_MS} ms`);
console.log(
  JSON.stringify({
    bench: "cellular-path",
    machine: { ...m, loadEnd },
    smsSizes: sizes,
    smsMaxChars: maxChars,
    smsBound: bound,
    fitsOneSms: maxChars <= SMS_MAX_CHARS,
    cases,
    target: { p99Ms: TARGET_P99_MS },
    meetsTarget: worstP99 === null ? null : worstP99 <= TARGET_P99_MS,
  }),
);
process.exit(0);

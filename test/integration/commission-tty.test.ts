// What the installer sees: `anxin-hub commission` run on a real pseudo-terminal (standard input, output and error
// are a PTY, as in an SSH session) against a real hub daemon with its gas detector and valve on the built-in
// simulated RS-485 bus, and once with its output piped. The test reads the terminal as the installer would,
// acts when it is asked to (test gas on the detector, Enter at the valve step) and then judges the screen: a
// model of an 80-column terminal replays everything the terminal received.
import { test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub, type RunningHub } from "../../gateway/src/daemon/run.js";
import { provision } from "../../gateway/src/uplink/provision.js";
import type { SimLelDetector } from "../../gateway/src/sim/devices.js";
import type { Envelope } from "../../protocol/envelope.js";
import { startRelayForTest, type RelayRig } from "../support/relay-rig.js";
import { waitFor } from "../support/hub-rig.js";
import { renderScreen, runOnPty, type PtyProcess } from "../support/pty-run.js";

const cleanups: Array<() => Promise<unknown>> = [];
const done = async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
};
afterEach(done);
after(done);
const log = () => createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" });
const CLI = path.resolve("gateway/src/cli/main.ts");
const COLS = 80;

// What the CLI prints, as the installer reads it.
const GAS = "燃气探测器 / gas detector @ kitchen";
const VALVE = "燃气阀 / gas valve @ kitchen";
const SOS = "一键呼叫按钮 / one-key call button @ bedroom";
const GAS_ZH = "请按下燃气探测器的测试按钮（或通入测试气体）；燃气阀会按真实报警关闭";
const GAS_EN = "Press the gas detector's test button (or apply test gas); the gas valve closes as for a real alarm";
const RECOVER_ZH = "正在等待探测器恢复（报警解除）：请移开测试气体或烟雾";
const RECOVER_EN = "Waiting for the detector to recover (its alarm to clear): remove any test gas or smoke";
const VALVE_ZH = "请关闭燃气阀（燃气测试已关闭则跳过），确认关到位后运行 `anxin-hub valve reopen` 或在此按回车重新打开";
const VALVE_EN = "Close the gas valve (already closed by the gas test: skip), then reopen it: press Enter here or run `anxin-hub valve reopen`";
const FIND_EN = "Finding devices: power any device not yet online; press the pairing button of Zigbee devices";
const NO_UPLINK = "this hub has no uplink: the path to the relay cannot be proven";
const ERASE = "\r\x1b[2K";

interface Home {
  hub: RunningHub;
  hubId: string;
  dir: string;
  sock: string;
  lel: SimLelDetector;
  rig?: RelayRig;
  /** Every event the hub journaled, in order. */
  events(): Promise<Envelope[]>;
}

/** A hub with a gas detector and a gas valve in the kitchen on the simulated bus; with an uplink to a relay, or none. */
async function startHome(hubId: string, o: { uplink: boolean }): Promise<Home> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-commission-tty-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  let rig: RelayRig | undefined;
  if (o.uplink) {
    const r = (rig = await startRelayForTest());
    cleanups.push(() => r.stop());
    const { code } = await r.relay.registry.createClaim(hubId);
    await provision({ relay: r.httpUrl, hub: hubId, code, dataDir: path.join(dir, "data"), secretsFile: path.join(dir, "data", "secrets.json") });
  }
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: ${hubId}, dataDir: ./data }
buses:
  - { name: line1, path: sim }
devices:
  - { id: kitchen-gas, profile: pemtech-pt495-lel, bus: line1, unit: 2, room: kitchen, pollMs: 200 }
  - { id: gas-valve, profile: rotork-iq-modbus, bus: line1, unit: 3, room: kitchen, pollMs: 300, ratedCloseMs: 4000 }
rules:
  gas: { clearHoldMs: 300 }
${o.uplink ? "uplink: { reconnectMaxMs: 2000 }\n" : ""}`,
  );
  const hub = await startHub(file, { log: log() });
  cleanups.push(() => hub.stop());
  if (o.uplink) await waitFor("the uplink connected", () => hub.uplink?.status().state === "connected", 15_000);
  await waitFor("the detector and the valve online", () => hub.hub.health("kitchen-gas")?.status === "online" && hub.hub.health("gas-valve")?.status === "online", 10_000);
  const lel = hub.sim.get("line1")!.devices.get(2) as SimLelDetector;
  // The hub keeps what the relay has not acknowledged; the relay stores it before it acknowledges.
  const events = async () => {
    const all = new Map<string, Envelope>();
    for (const r of rig ? await rig.relay.store.listEvents({ hub: hubId, limit: 100_000 }) : []) {
      const e = JSON.parse(r.payload) as Envelope;
      all.set(e.id, e);
    }
    for (const e of await hub.journal.pending(100_000, Number.MAX_SAFE_INTEGER)) all.set(e.envelope.id, e.envelope);
    return [...all.values()].sort((a, b) => a.boot - b.boot || a.seq - b.seq);
  };
  return { hub, hubId, dir, sock: hub.config.hub.controlSocket!, lel, rig, events };
}

/** The relay's household plan, saved to a file as an installer takes it offline. */
async function planFile(h: Home, items: Array<{ kind: string; room: string; count?: number }>): Promise<string> {
  const file = path.join(h.dir, "plan.json");
  await writeFile(file, JSON.stringify({ version: 3, level: "low", items: items.map((i) => ({ count: 1, why: "assessed", ...i })) }, null, 2));
  return file;
}

function commissionArgs(h: Home, plan: string, extra: string[]): string[] {
  return ["--import", "tsx", CLI, "commission", "--socket", h.sock, "--plan-file", plan, "--installer", "Ivan", ...extra];
}

function onTerminal(h: Home, plan: string, extra: string[]): PtyProcess {
  const p = runOnPty(process.execPath, commissionArgs(h, plan, extra), { rows: 24, cols: COLS });
  cleanups.push(async () => p.kill());
  return p;
}

/** Every in-place redraw of a step's countdown line: the seconds shown, in order. */
function countdowns(raw: string, stepHead: string): number[] {
  const out: number[] = [];
  for (const seg of raw.split(ERASE)) {
    const m = new RegExp(`^${escape(stepHead)} — (\\d+)s$`).exec(seg);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const hasDistinct = (n: number) => (xs: number[]) => new Set(xs).size >= n;
const setFault = (lel: SimLelDetector, on: boolean) => lel.bank.set("hr", 1, (0x02 << 8) | (on ? 0x04 : 0));

test("on a terminal: countdowns redrawn in place, each step's instruction in Chinese and English, Enter at the valve step reopens the valve, the report and exit 0", async () => {
  const h = await startHome("hub-tty-1", { uplink: true });
  const plan = await planFile(h, [
    { kind: "gas_detector", room: "kitchen" },
    { kind: "gas_valve", room: "kitchen" },
    { kind: "camera", room: "living" },
  ]);
  const p = onTerminal(h, plan, ["--timeout-per-step", "90", "--waive", "camera=no consent given"]);
  const gasHead = `▶ ${GAS} [kitchen-gas]: waiting`;

  // The gas detector's step: the installer reads the instruction and watches the countdown run.
  await p.waitFor("the gas detector's instruction", (o) => o.includes(GAS_ZH) && o.includes(GAS_EN));
  await p.waitFor("the countdown redrawn at least three times with two values", (o) => countdowns(o, gasHead).length >= 3 && hasDistinct(2)(countdowns(o, gasHead)));
  // A stray Enter before the valve step is asked for does nothing (and does not wait to act at the valve step).
  const beforeEnter = p.output;
  p.type("\r");
  await new Promise((r) => setTimeout(r, 500));
  await p.waitFor("one more redraw after the stray Enter", (o) => o.lastIndexOf(`${ERASE}${gasHead}`) > o.lastIndexOf("\r\n"));
  h.lel.setLel(35);
  // The detector must recover: the gas stays until the terminal asks for it to be removed.
  await p.waitFor("the recovery instruction", (o) => o.includes(RECOVER_ZH) && o.includes(RECOVER_EN));
  h.lel.setLel(0);

  // The valve step: closed by the gas test (read-back), reopened by Enter at this terminal.
  await p.waitFor("the valve's instruction", (o) => o.includes(VALVE_ZH) && o.includes(VALVE_EN));
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(!(await h.events()).some((e) => e.type === "valve_reopen" || e.type === "valve_reopen_refused"), "the Enter typed during the detector's step reopened nothing at the valve step");
  await waitFor("the valve closed by the gas test", () => h.hub.hub.rule.valves["gas-valve"]?.closed === true, 15_000);
  // First while the detector reports a fault: the hub refuses, and the terminal says why.
  setFault(h.lel, true);
  await waitFor("the detector's fault seen", () => h.hub.hub.rule.detectors["kitchen-gas"]?.fault === true, 10_000);
  p.type("\r");
  await p.waitFor("the refusal", (o) => /valve reopen refused/.test(o) && o.includes("detector kitchen-gas reports a fault"));
  assert.equal(h.hub.hub.rule.valves["gas-valve"]?.closed, true, "still closed after the refusal");
  setFault(h.lel, false);
  await waitFor("the fault cleared", () => h.hub.hub.rule.detectors["kitchen-gas"]?.fault === false, 10_000);
  p.type("\r");
  await p.waitFor("the reopen sent", (o) => o.includes("valve reopen sent / 已发送开阀"));

  const { code, output } = await p.exited;
  const screen = renderScreen(output, COLS);
  const shown = screen.lines.join("\n");
  assert.equal(code, 0, shown);

  // (1) The countdown is redrawn in place: erase the line, draw it again, seconds going down, never a new line.
  const ticks = countdowns(output, gasHead);
  assert.ok(ticks.length >= 3, `countdown redraws: ${ticks.join(",")}`);
  assert.deepEqual([...ticks].sort((a, b) => b - a), ticks, `seconds only go down: ${ticks.join(",")}`);
  assert.ok(ticks[0]! > ticks.at(-1)!, `seconds went down: ${ticks.join(",")}`);
  assert.ok(ticks[0]! <= 90);
  assert.doesNotMatch(beforeEnter, new RegExp(`${escape(gasHead)} — \\d+s\\r\\n`), "a countdown is never ended by a new line (until the terminal echoes an Enter)");
  // Nothing of a countdown is left on the screen once its step has moved on, and no line was drawn twice.
  assert.deepEqual(screen.lines.filter((l) => / — \d+s$/.test(l)), [], shown);
  assert.equal(screen.lines.filter((l) => l === gasHead).length, 2, `the detector's waiting line, once for the test and once for its recovery:\n${shown}`);
  assert.equal(screen.lines.filter((l) => l === `▶ ${VALVE} [gas-valve]: waiting`).length, 1, shown);
  assert.equal(screen.lines.filter((l) => l.startsWith("⇡ ")).length, 2, `one proving line a step:\n${shown}`);

  // (2) Each waiting step's instruction in Chinese and English, each on its own line under its step.
  for (const [head, zh, en] of [
    [gasHead, GAS_ZH, GAS_EN],
    [`▶ ${VALVE} [gas-valve]: waiting`, VALVE_ZH, VALVE_EN],
  ] as const) {
    const at = screen.lines.indexOf(head);
    assert.ok(at >= 0, `${head}:\n${shown}`);
    assert.deepEqual(screen.lines.slice(at + 1, at + 3), [`    ${zh}`, `    ${en}`], shown);
  }
  const rec = screen.lines.indexOf(`    ${RECOVER_ZH}`);
  assert.ok(rec > 0 && screen.lines[rec - 1] === gasHead && screen.lines[rec + 1] === `    ${RECOVER_EN}`, shown);

  // (3) Enter at the valve step: refused while the detector was faulty, then sent; each reply a line of its own.
  const refused = screen.lines.find((l) => l.includes("refused"));
  assert.match(refused ?? "", /^valve reopen refused \/ 开阀被拒绝: detector kitchen-gas reports a fault$/, shown);
  assert.ok(screen.lines.includes("valve reopen sent / 已发送开阀"), shown);
  const ev = await h.events();
  const reopens = ev.filter((e) => e.type === "valve_reopen" || e.type === "valve_reopen_refused");
  assert.deepEqual(reopens.map((e) => e.type), ["valve_reopen_refused", "valve_reopen"], "two Enters at the valve step, nothing else");
  assert.deepEqual((reopens[1]!.data as { by: string }).by, "Ivan");
  assert.ok(screen.lines.indexOf(`✔ ${VALVE} [gas-valve]: passed`) > screen.lines.indexOf("valve reopen sent / 已发送开阀"), shown);

  // (4) The report, with its state line, after the live progress.
  assert.ok(screen.lines.includes(`✔ ${GAS} [kitchen-gas]: passed`), shown);
  assert.ok(screen.lines.includes("~ 摄像头 / camera @ living [(none)]: waived"), shown);
  const head = screen.lines.findIndex((l) => l.startsWith("Commissioning report — hub hub-tty-1"));
  assert.ok(head > 0, shown);
  assert.match(screen.lines[head]!, /plan v3 \(low\), installer Ivan$/);
  assert.equal(screen.lines[head + 1], "State: COMMISSIONED 已完成调试");
  assert.match(screen.lines[head + 2]!, /^ {2}✔ gas_detector kitchen-gas PT495 .* rs485:line1#2 @ kitchen: passed acked \d{4}-/);
  assert.match(screen.lines[head + 3]!, /^ {2}✔ gas_valve gas-valve .* @ kitchen: passed acked /);
  assert.match(screen.lines[head + 4]!, /^ {2}~ camera \(none\) @ living: waived — waived by Ivan: no consent given$/);
  assert.match(screen.lines[head + 5]!, /^report event [0-9A-Z]{26}: stored at the relay 已送达平台$/);
  assert.ok(!shown.includes("Blocking"), shown);
});

test("on a terminal: a planned device that is not there blocks, named with how to waive it; the search's countdown, wider than the terminal, is redrawn in place; exit 1", async () => {
  const h = await startHome("hub-tty-2", { uplink: false });
  const plan = await planFile(h, [
    { kind: "gas_detector", room: "kitchen" },
    { kind: "sos_button", room: "bedroom" },
  ]);
  const p = onTerminal(h, plan, ["--timeout-per-step", "3"]);
  const { code, output } = await p.exited;
  const screen = renderScreen(output, COLS);
  const shown = screen.lines.join("\n");
  assert.equal(code, 1, shown);

  // The search for the button: its line (wider than the terminal) redrawn in place while the seconds run down.
  const finds = output.split(ERASE).flatMap((seg) => /… 正在查找设备：.* — 1 waiting, (\d+)s$/.exec(seg)?.[1] ?? []).map(Number);
  assert.ok(finds.length >= 2 && finds[0]! > finds.at(-1)!, `the search's countdown: ${finds.join(",")}`);
  assert.deepEqual(screen.lines.filter((l) => l.includes(FIND_EN)), [], `the search's line is gone once the search is over, none of its copies left behind:\n${shown}`);
  assert.deepEqual(screen.lines.filter((l) => / — \d+s$/.test(l)), [], shown);

  // The states, one line each.
  assert.deepEqual(screen.lines.filter((l) => l.includes(SOS)), [`… ${SOS} [(none)]: finding`, `✘ ${SOS} [(none)]: missing (no one-key call button configured or paired on this hub)`], shown);
  assert.deepEqual(
    screen.lines.filter((l) => l.includes(GAS)),
    [`… ${GAS} [(none)]: finding`, `▶ ${GAS} [kitchen-gas]: waiting`, `✘ ${GAS} [kitchen-gas]: failed (no trigger seen from kitchen-gas within 3 s)`],
    shown,
  );
  const head = screen.lines.findIndex((l) => l.startsWith("Commissioning report — hub hub-tty-2"));
  assert.ok(head > 0, shown);
  assert.equal(screen.lines[head + 1], "State: BLOCKED 未完成调试");
  const blocking = screen.lines.findIndex((l) => l.startsWith("Blocking"));
  assert.ok(blocking > head, shown);
  assert.equal(screen.lines[blocking], "Blocking (fix and run again, or waive with --waive <device-or-kind>=<reason>) / 阻止完成（修复后重试，或用 --waive 豁免并写明原因）:");
  assert.deepEqual(screen.lines.slice(blocking + 1, blocking + 3), [
    "  - kitchen-gas (gas_detector @ kitchen): failed: no trigger seen from kitchen-gas within 3 s",
    "  - sos_button (sos_button @ bedroom): missing: no one-key call button configured or paired on this hub",
  ]);
  assert.match(screen.lines[blocking + 3]!, /^report event [0-9A-Z]{26}: journaled on the hub; this hub has no uplink, so it reaches no relay 本网关未连接平台$/);
});

test("output piped: no terminal control sequences, each state change one line; a hub without an uplink cannot prove a test, and the installer is told so", async () => {
  const h = await startHome("hub-tty-3", { uplink: false });
  const plan = await planFile(h, [{ kind: "gas_detector", room: "kitchen" }]);
  const child = spawn(process.execPath, commissionArgs(h, plan, ["--timeout-per-step", "30"]), { stdio: ["ignore", "pipe", "pipe"] });
  cleanups.push(async () => void (child.exitCode === null && child.kill()));
  let stdout = "";
  let stderr = "";
  const seen: Array<() => void> = [];
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    stdout += c;
    for (const s of seen) s();
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  const read = (what: string, text: string) => waitFor(what, () => stdout.includes(text), 30_000);

  await read("the gas detector's instruction", GAS_EN);
  h.lel.setLel(35);
  await read("the recovery instruction", RECOVER_EN);
  h.lel.setLel(0);
  const code = await exited;
  assert.equal(code, 1, `${stdout}\n${stderr}`);
  assert.doesNotMatch(stderr, /anxin-hub:/, "no error");
  assert.ok(!stdout.includes("\x1b") && !stdout.includes("\r"), `no control sequence, no carriage return:\n${JSON.stringify(stdout)}`);
  const lines = stdout.split("\n");
  // The test alarm seen, the step fails at once for want of an uplink; the detector must still recover.
  assert.deepEqual(
    lines.filter((l) => l.includes(GAS)).slice(0, 4),
    [`… ${GAS} [(none)]: finding`, `▶ ${GAS} [kitchen-gas]: waiting`, `✘ ${GAS} [kitchen-gas]: failed (${NO_UPLINK})`, `▶ ${GAS} [kitchen-gas]: waiting`],
    stdout,
  );
  const w = lines.indexOf(`▶ ${GAS} [kitchen-gas]: waiting`);
  assert.deepEqual(lines.slice(w + 1, w + 3), [`    ${GAS_ZH}`, `    ${GAS_EN}`]);
  const r = lines.lastIndexOf(`▶ ${GAS} [kitchen-gas]: waiting`);
  assert.deepEqual(lines.slice(r + 1, r + 3), [`    ${RECOVER_ZH}`, `    ${RECOVER_EN}`]);
  assert.ok(!lines.some((l) => / — \d+s/.test(l)), "no countdown off a terminal");
  assert.match(stdout, /^report journaled as event [0-9A-Z]{26}$/m);
  assert.match(stdout, /^State: BLOCKED 未完成调试$/m);
  assert.match(stdout, new RegExp(`^ {2}- kitchen-gas \\(gas_detector @ kitchen\\): failed: ${escape(NO_UPLINK)}$`, "m"));
  // The test alarm itself was real to the hub: the valve closed on it.
  await waitFor("the valve closed by the test alarm", () => h.hub.hub.rule.valves["gas-valve"]?.closed === true, 10_000);
  const alarm = (await h.events()).find((e) => e.kind === "alarm" && e.type === "gas");
  assert.equal(alarm?.test, true);
  assert.ok(alarm?.actions?.some((a) => a.action === "valve_close"));
});

test("a second terminal follows the session with commission-watch; when the installer's command goes away the session ends at once and its report says why", { timeout: 90_000 }, async () => {
  const h = await startHome("hub-tty-watch", { uplink: false });
  const plan = await planFile(h, [{ kind: "gas_detector", room: "kitchen" }, { kind: "gas_valve", room: "kitchen" }]);
  const installer = spawn(process.execPath, commissionArgs(h, plan, ["--timeout-per-step", "60"]), { stdio: ["ignore", "pipe", "pipe"] });
  let installerOut = "";
  installer.stdout.on("data", (c: Buffer) => (installerOut += c.toString()));
  await waitFor("the gas step waiting for the installer", () => installerOut.includes(GAS_EN), 20_000);

  const watcher = spawn(process.execPath, ["--import", "tsx", CLI, "commission-watch", "--socket", h.sock], { stdio: ["ignore", "pipe", "pipe"] });
  cleanups.push(async () => watcher.kill());
  let watched = "";
  watcher.stdout.on("data", (c: Buffer) => (watched += c.toString()));
  const watcherExit = new Promise<number | null>((r) => watcher.on("close", (code) => r(code)));
  await new Promise((r) => setTimeout(r, 3000)); // the watcher is following by now (its own tsx start included)

  // The installer's command dies (a dropped SSH session): no Enter, no report read.
  const t0 = Date.now();
  installer.kill("SIGKILL");
  assert.equal(await watcherExit, 1, watched);
  assert.ok(Date.now() - t0 < 20_000, "ended at once, not after the step's 60 s");
  assert.match(watched, /State: BLOCKED 未完成调试/);
  assert.match(watched, /not tested: the installer's command disconnected/);
  const report = (await h.events()).find((e) => e.type === "commissioning_report");
  assert.ok(report, "the report is journaled all the same");
  assert.equal((report.data as { state: string }).state, "blocked");

  // With no session running the watcher says so.
  const idle = spawn(process.execPath, ["--import", "tsx", CLI, "commission-watch", "--socket", h.sock], { stdio: ["ignore", "pipe", "pipe"] });
  let idleErr = "";
  idle.stderr.on("data", (c: Buffer) => (idleErr += c.toString()));
  assert.equal(await new Promise((r) => idle.on("close", r)), 1);
  assert.match(idleErr, /no commissioning session is running on this hub/);
});

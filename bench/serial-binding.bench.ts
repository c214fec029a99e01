// Serial I/O on the main thread against serialport's own binding (libuv's thread pool), side by side on the
// same PTY line to Debian's pymodbus: CPU and context switches per Modbus transaction (the input flush the
// bus does before each request, the request, the reply), its latency, and whether a valve close still goes
// out while every pool thread is held.
// Then the idle hub's case: one transaction a second for SERIAL_BENCH_PACED_S seconds (default 15), CPU a
// second including the wake-ups (each binding twice, in the order A B B A, so leftover garbage from the
// rounds before weighs on both).
// Run: node --import tsx bench/serial-binding.bench.ts   (SERIAL_BENCH_N=2000 transactions a round, 2 rounds)
import modbusSerial from "modbus-serial";
import { mainThreadBinding } from "../gateway/src/transports/serial/main-thread-binding.js";
import { benchAvailable, startBench } from "../test/support/modbus-bench.js";
import { holdThreadPool } from "../test/support/thread-pool.js";
import { machineInfo, pct, r2 } from "./support.js";

const ModbusRTU = modbusSerial as unknown as typeof modbusSerial.default;
type Client = InstanceType<typeof modbusSerial.default>;
type Variant = "serialport" | "main-thread";

const N = Number(process.env.SERIAL_BENCH_N ?? 2000);
const ROUNDS = 2;
const HELD_DEADLINE_MS = 5000;
const PACED_S = Number(process.env.SERIAL_BENCH_PACED_S ?? 15);
const SERIAL = { baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 } as const;

const avail = benchAvailable();
if (!avail.ok) {
  console.error(`serial-binding bench needs the Modbus bench: ${avail.reason}`);
  process.exit(1);
}
const m = machineInfo();
console.log(`machine: ${m.cpu} x${m.cores}, node ${m.node}, ${m.os}, load ${m.loadStart.join(" ")}`);
const bench = await startBench({ devices: { co: 1, valve: 3 } });

async function open(variant: Variant): Promise<Client> {
  const c = new ModbusRTU();
  c.on("error", () => {});
  const options = variant === "main-thread" ? { ...SERIAL, binding: mainThreadBinding } : { ...SERIAL };
  await c.connectRTUBuffered(bench.path, options);
  c.setTimeout(1000);
  return c;
}

/** What SerialLink does per request: drop unread input, then the transaction. */
async function transaction(c: Client, write = false): Promise<void> {
  const port = (c as unknown as { _port: { _buffer: Buffer; _client: { flush(cb: () => void): void } } })._port;
  port._buffer = Buffer.alloc(0);
  await new Promise<void>((r) => port._client.flush(() => r()));
  if (write) {
    c.setID(3);
    await c.writeCoil(1, true);
  } else {
    c.setID(1);
    await c.readHoldingRegisters(0, 8);
  }
}

interface Round {
  cpuUsPerTx: number;
  switchesPerTx: number;
  p50Ms: number;
  p99Ms: number;
}

async function round(variant: Variant): Promise<Round> {
  const c = await open(variant);
  for (let i = 0; i < 50; i++) await transaction(c); // warm-up
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  const ru0 = process.resourceUsage();
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await transaction(c);
    lat.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  const ru = process.resourceUsage();
  await new Promise<void>((r) => c.close(() => r()));
  lat.sort((a, b) => a - b);
  return {
    cpuUsPerTx: r2((cpu.user + cpu.system) / N),
    switchesPerTx: r2((ru.voluntaryContextSwitches - ru0.voluntaryContextSwitches + ru.involuntaryContextSwitches - ru0.involuntaryContextSwitches) / N),
    p50Ms: r2(pct(lat, 50)),
    p99Ms: r2(pct(lat, 99)),
  };
}

/** One transaction a second, as the idle hub polls a detector: CPU µs a second and context switches a second. */
async function paced(variant: Variant): Promise<{ cpuUsPerS: number; switchesPerS: number }> {
  const c = await open(variant);
  for (let i = 0; i < 20; i++) await transaction(c);
  const cpu0 = process.cpuUsage();
  const ru0 = process.resourceUsage();
  for (let i = 0; i < PACED_S; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    await transaction(c);
  }
  const cpu = process.cpuUsage(cpu0);
  const ru = process.resourceUsage();
  await new Promise<void>((r) => c.close(() => r()));
  const switches = ru.voluntaryContextSwitches - ru0.voluntaryContextSwitches + ru.involuntaryContextSwitches - ru0.involuntaryContextSwitches;
  return { cpuUsPerS: r2((cpu.user + cpu.system) / PACED_S), switchesPerS: r2(switches / PACED_S) };
}

/** Five detector reads and a valve close with every pool thread held: ms to finish, or null past the deadline. */
async function whilePoolHeld(variant: Variant): Promise<number | null> {
  const c = await open(variant);
  await transaction(c);
  const pool = await holdThreadPool();
  const t0 = performance.now();
  const work = (async () => {
    for (let i = 0; i < 5; i++) await transaction(c);
    await transaction(c, true);
    return performance.now() - t0;
  })();
  const result = await Promise.race([work, new Promise<null>((r) => setTimeout(() => r(null), HELD_DEADLINE_MS))]);
  await pool.release();
  await work.catch(() => {});
  await new Promise<void>((r) => c.close(() => r()));
  return result === null ? null : r2(result);
}

const variants: Variant[] = ["serialport", "main-thread"];
const rounds: Record<Variant, Round[]> = { serialport: [], "main-thread": [] };
for (let i = 0; i < ROUNDS; i++) for (const v of i % 2 ? [...variants].reverse() : variants) rounds[v].push(await round(v));
const idleRuns: Record<Variant, Array<{ cpuUsPerS: number; switchesPerS: number }>> = { serialport: [], "main-thread": [] };
for (const v of ["serialport", "main-thread", "main-thread", "serialport"] as const) idleRuns[v].push(await paced(v));
const idle = (v: Variant, k: "cpuUsPerS" | "switchesPerS") => idleRuns[v].map((r) => r[k]).join(" / ");
const idleMean = (v: Variant) => idleRuns[v].reduce((a, r) => a + r.cpuUsPerS, 0) / idleRuns[v].length;
const held: Record<Variant, number | null> = { serialport: await whilePoolHeld("serialport"), "main-thread": await whilePoolHeld("main-thread") };
await bench.stop();

const show = (v: Variant, k: keyof Round) => rounds[v].map((r) => r[k]).join(" / ");
const mean = (v: Variant, k: keyof Round) => rounds[v].reduce((a, r) => a + r[k], 0) / rounds[v].length;
console.log(`\nPTY to pymodbus, 9600 8N1 (a PTY does not pace bytes), ${N} transactions a round (flush + FC03 × 8 registers), ${ROUNDS} rounds alternated:\n`);
console.log("| measure | serialport's binding (thread pool) | main thread | main / serialport |");
console.log("| --- | --- | --- | --- |");
for (const [label, k] of [["CPU per transaction, µs (this process, all threads)", "cpuUsPerTx"], ["context switches per transaction", "switchesPerTx"], ["latency p50, ms", "p50Ms"], ["latency p99, ms", "p99Ms"]] as const)
  console.log(`| ${label} | ${show("serialport", k)} | ${show("main-thread", k)} | ${r2(mean("main-thread", k) / mean("serialport", k))} |`);
const heldText = (x: number | null) => (x === null ? `still waiting after ${HELD_DEADLINE_MS} ms` : `${x} ms`);
console.log(`| one transaction a second: CPU µs a second | ${idle("serialport", "cpuUsPerS")} | ${idle("main-thread", "cpuUsPerS")} | ${r2(idleMean("main-thread") / idleMean("serialport"))} |`);
console.log(`| one transaction a second: context switches a second | ${idle("serialport", "switchesPerS")} | ${idle("main-thread", "switchesPerS")} | |`);
console.log(`| 5 reads + a valve close with every pool thread held | ${heldText(held.serialport)} | ${heldText(held["main-thread"])} | |`);
console.log(`load average at end: ${machineInfo().loadStart.join(" ")}`);
console.log(JSON.stringify({ bench: "serial-binding", machine: { ...m, loadEnd: machineInfo().loadStart }, n: N, rounds, idle: idleRuns, heldMs: held, heldDeadlineMs: HELD_DEADLINE_MS }));

// The RS-485 bus against an independent Modbus slave (Debian's pymodbus) on a PTY line, with faults
// injected on the wire by the timed line: corrupt CRC, dropped and late replies, the port vanishing.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import modbusSerial from "modbus-serial";
import { Bus } from "../../gateway/src/transports/modbus/bus.js";
import { SerialLink } from "../../gateway/src/transports/modbus/link.js";
import { BusError } from "../../gateway/src/transports/modbus/errors.js";
import { benchAvailable, startBench, type Bench } from "../support/modbus-bench.js";

const avail = benchAvailable();
const skip = avail.ok ? false : avail.reason;
const SERIAL = { baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 } as const;
const T = { timeoutMs: 500, gapMs: 0 };
const benches: Bench[] = [];
after(async () => {
  for (const b of benches) await b.stop();
});

async function rig(timed: boolean) {
  const bench = await startBench({ devices: { co: 1, valve: 3 }, timed });
  benches.push(bench);
  const bus = new Bus(new SerialLink(bench.path, SERIAL), { name: "t", quietMs: 300, reconnectMinMs: 200, reconnectMaxMs: 1000 });
  const events: string[] = [];
  bus.on("down", (r) => events.push(`down:${r}`));
  bus.on("up", () => events.push("up"));
  await bus.start();
  return { bench, bus, events };
}

test("reads what the independent slave holds (CO detector map)", { skip }, async () => {
  const { bench, bus } = await rig(false);
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 137 });
  const regs = await bus.read(1, 3, 0, 8, T);
  assert.equal(regs[1], 137);
  assert.equal(regs[0], 1, "the detector raised its own alarm at ≥ 100 ppm");
  assert.equal(regs[2], 215);
  await bus.stop();
});

test("corrupt CRC, dropped and noisy replies: a clear error, never a wrong value, then recovery", { skip }, async () => {
  const { bench, bus } = await rig(true);
  const line = bench.line!;
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 42 });
  assert.equal((await bus.read(1, 3, 1, 1, T))[0], 42);

  await line.send({ fault: "crc", count: 1 });
  await assert.rejects(bus.read(1, 3, 1, 1, T), (e: BusError) => e.kind === "crc");
  assert.equal((await bus.read(1, 3, 1, 1, T))[0], 42);

  await line.send({ fault: "drop", count: 1 });
  await assert.rejects(bus.read(1, 3, 1, 1, T), (e: BusError) => e.kind === "timeout");
  assert.equal((await bus.read(1, 3, 1, 1, T))[0], 42);

  await line.send({ fault: "noise", count: 1 });
  assert.equal((await bus.read(1, 3, 1, 1, T))[0], 42, "leading noise is skipped");

  const c = bus.unitCounters(1);
  assert.equal(c.crc, 1);
  assert.equal(c.timeout, 1);
  assert.equal(c.consecutiveFailures, 0);
  await bus.stop();
});

test("a late reply is never taken as the next request's answer", { skip }, async () => {
  const { bench, bus } = await rig(true);
  // Two registers with the same unit, function and length: only the values tell them apart.
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 111 });
  await bench.slave.send({ cmd: "co", unit: 1, temp_c: 22.2 });
  for (let i = 0; i < 3; i++) {
    await bench.line!.send({ fault: "late", ms: 700, count: 1 });
    await assert.rejects(bus.read(1, 3, 1, 1, T), (e: BusError) => e.kind === "timeout");
    for (let j = 0; j < 4; j++) {
      assert.equal((await bus.read(1, 3, 2, 1, T))[0], 222, "temperature register, not the late ppm");
      assert.equal((await bus.read(1, 3, 1, 1, T))[0], 111);
    }
  }
  await bus.stop();
});

test("the same late reply shifts data for a bare modbus-serial client (the hazard the bus guards against)", { skip }, async () => {
  const bench = await startBench({ devices: { co: 1 }, timed: true });
  benches.push(bench);
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 111 });
  await bench.slave.send({ cmd: "co", unit: 1, temp_c: 22.2 });
  const Client = modbusSerial as unknown as typeof modbusSerial.default;
  const c = new Client();
  c.on("error", () => {});
  await c.connectRTUBuffered(bench.path, { ...SERIAL });
  c.setID(1);
  c.setTimeout(500);
  await bench.line!.send({ fault: "late", ms: 700, count: 1 });
  await assert.rejects(c.readHoldingRegisters(1, 1));
  const seen = [];
  for (let j = 0; j < 3; j++) seen.push((await c.readHoldingRegisters(2, 1)).data[0]);
  await new Promise<void>((r) => c.close(() => r()));
  assert.ok(seen.includes(111), `expected the bare client to read the late ppm as temperature, got ${seen.join(",")}`);
});

test("concurrent callers on one bus never see each other's data", { skip }, async () => {
  const { bench, bus } = await rig(true);
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 77 });
  await bench.line!.send({ fault: "crc", count: 2 });
  const jobs = Array.from({ length: 24 }, (_, i) =>
    i % 3 === 0 ? bus.read(1, 3, 1, 1, T).then((v) => ["ppm", v[0]]) : i % 3 === 1 ? bus.read(1, 3, 2, 1, T).then((v) => ["temp", v[0]]) : bus.read(3, 2, 0, 3, T).then((v) => ["di", v.join("")]),
  );
  const results = await Promise.allSettled(jobs);
  let ok = 0;
  for (const r of results) {
    if (r.status === "rejected") continue;
    ok++;
    const [what, v] = r.value;
    if (what === "ppm") assert.equal(v, 77);
    else if (what === "temp") assert.equal(v, 215);
    else assert.equal(v, "001", "valve open: not moving, not closed, open");
  }
  assert.ok(ok >= 20, `most requests succeed (${ok}/24)`);
  await bus.stop();
});

test("a safety write jumps ahead of queued polls", { skip }, async () => {
  const { bus } = await rig(true);
  const order: string[] = [];
  const polls = Array.from({ length: 6 }, () => bus.read(1, 3, 0, 8, T).then(() => order.push("poll")));
  const write = bus.write(3, 5, 1, true, T, "safety").then(() => order.push("close"));
  await Promise.all([...polls, write]);
  assert.ok(order.indexOf("close") <= 1, `close went out at position ${order.indexOf("close")}: ${order.join(",")}`);
  await bus.stop();
});

test("the port vanishing and returning: offline once, fast failures meanwhile, then recovery", { skip }, async () => {
  const { bench, bus, events } = await rig(true);
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 5 });
  assert.equal((await bus.read(1, 3, 1, 1, T))[0], 5);
  await bench.unplug();
  // The link watches its path, so the loss is noticed within about a second even with no traffic.
  for (let i = 0; i < 40 && bus.isUp; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(bus.isUp, false, "bus noticed the port went away");
  const t0 = performance.now();
  await assert.rejects(bus.read(1, 3, 1, 1, T), (e: BusError) => e.kind === "port_closed");
  assert.ok(performance.now() - t0 < 100, "requests fail at once while the port is gone");
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(events.filter((e) => e.startsWith("down")).length, 1, `one down event for the outage: ${events.join(",")}`);
  await bench.replug();
  for (let i = 0; i < 60 && !bus.isUp; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(bus.isUp, true, `bus reconnected: ${events.join(",")}`);
  assert.equal((await bus.read(1, 3, 1, 1, T))[0], 5);
  assert.deepEqual(events.map((e) => e.split(":")[0]), ["up", "down", "up"]);
  await bus.stop();
});

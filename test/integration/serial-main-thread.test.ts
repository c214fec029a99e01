// Serial I/O off libuv's thread pool (gateway/src/transports/serial/main-thread-binding.ts), on real PTYs:
// the RS-485 bus to Debian's pymodbus keeps working while every pool thread is held (as a stuck SD card
// would hold them), bulk bytes cross a socat pair intact both ways, a flush drops only what came before it,
// and a line whose other end goes away closes the port.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SerialPortStream } from "@serialport/stream";
import { mainThreadBinding, type MainThreadPort } from "../../gateway/src/transports/serial/main-thread-binding.js";
import { Bus } from "../../gateway/src/transports/modbus/bus.js";
import { SerialLink } from "../../gateway/src/transports/modbus/link.js";
import { benchAvailable, startBench, type Bench } from "../support/modbus-bench.js";
import { startPtyPair, type PtyPair } from "../support/pty-pair.js";
import { holdThreadPool, stuckAfter } from "../support/thread-pool.js";
import { socatAvailable } from "../support/znp/pty.js";

const avail = benchAvailable();
const skip = avail.ok ? false : avail.reason;
const socat = socatAvailable();
const noSocat = socat.ok ? false : socat.reason;
const SERIAL = { baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 } as const;
const T = { timeoutMs: 1000, gapMs: 0 };
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A socat PTY pair in its own folder, stopped after the file's tests. */
async function ptyPair(): Promise<PtyPair> {
  const dir = mkdtempSync(path.join(tmpdir(), "anxin-pty-"));
  const pair = await startPtyPair(path.join(dir, "a"), path.join(dir, "b"));
  cleanups.push(async () => {
    await pair.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return pair;
}

function stream(p: string): Promise<SerialPortStream> {
  const s = new SerialPortStream({ binding: mainThreadBinding, path: p, baudRate: 115200 });
  cleanups.push(() => (s.isOpen ? new Promise<void>((r) => s.close(() => r())) : undefined));
  return new Promise((resolve, reject) => s.once("open", () => resolve(s)).once("error", reject));
}

test("the RS-485 bus reads a detector and closes a valve while every thread of libuv's pool is held", { skip }, async () => {
  const bench: Bench = await startBench({ devices: { co: 1, valve: 3 } });
  cleanups.push(() => bench.stop());
  const bus = new Bus(new SerialLink(bench.path, SERIAL), { name: "t", quietMs: 300, reconnectMinMs: 200, reconnectMaxMs: 1000 });
  cleanups.push(() => bus.stop());
  await bus.start(); // opening the port goes through the pool, as it does in serialport
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 420 });

  const pool = await holdThreadPool();
  const work = (async () => {
    for (let i = 0; i < 5; i++) assert.equal((await bus.read(1, 3, 1, 1, T))[0], 420, "CO ppm read with the pool held");
    await bus.write(3, 5, 1, true, T, "safety");
  })();
  // Through serialport's own binding this waits for the pool forever (the flush before each request is queued there).
  const deadline = stuckAfter(15_000);
  try {
    assert.notEqual(await Promise.race([work.then(() => "done"), deadline.stuck]), "stuck", "the bus waited for the thread pool");
  } finally {
    deadline.cancel();
    await pool.release();
  }
  assert.equal((await bench.slave.send({ cmd: "stats", unit: 3 })).close_commands, 1, "the valve got its close command");
});

test("bulk bytes cross a PTY pair intact both ways, through the kernel's full buffers", { skip: noSocat }, async () => {
  const pair = await ptyPair();
  const [a, b] = [await stream(pair.hubEnd), await stream(pair.deviceEnd)];
  const sizes = 256 * 1024; // far more than a PTY buffers, so writes meet EAGAIN and retry while reads go on
  const payload = (seed: number) => Buffer.from(Array.from({ length: sizes }, (_, i) => (i * 31 + seed) & 0xff));
  const receive = (s: SerialPortStream) =>
    new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      let n = 0;
      s.on("data", (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= sizes) resolve(Buffer.concat(chunks));
      });
    });
  const [atB, atA] = [receive(b), receive(a)];
  a.write(payload(1));
  b.write(payload(2));
  assert.ok((await atB).equals(payload(1)), "a → b intact");
  assert.ok((await atA).equals(payload(2)), "b → a intact");
});

test("a flush drops what arrived before it and nothing after", { skip: noSocat }, async () => {
  const pair = await ptyPair();
  const port: MainThreadPort = await mainThreadBinding.open({ path: pair.hubEnd, baudRate: 115200 });
  cleanups.push(() => (port.isOpen ? port.close() : undefined));
  const other = await mainThreadBinding.open({ path: pair.deviceEnd, baudRate: 115200 });
  cleanups.push(() => (other.isOpen ? other.close() : undefined));

  await other.write(Buffer.from("late reply"));
  await sleep(200); // socat relays it into the other PTY
  await port.flush();
  await other.write(Buffer.from("answer"));
  const buf = Buffer.alloc(64);
  let got = "";
  while (got.length < "answer".length) {
    const { bytesRead } = await port.read(buf, 0, buf.length);
    got += buf.subarray(0, bytesRead).toString();
  }
  assert.equal(got, "answer");
});

test("the port closes as disconnected when the line's other end goes away", { skip: noSocat }, async () => {
  const pair = await ptyPair();
  const s = await stream(pair.hubEnd);
  s.on("error", () => {});
  s.resume(); // reading, as every user of a port is
  const closed = new Promise<Error | null>((r) => s.once("close", (e: Error | null) => r(e)));
  await pair.stop();
  const err = await closed;
  assert.ok(err && (err as Error & { disconnected?: boolean }).disconnected, `closed as disconnected (${err?.message})`);
});

test("reads and writes on a closed port fail as canceled, which the stream takes for a close, not a fault", { skip: noSocat }, async () => {
  const pair = await ptyPair();
  const port = await mainThreadBinding.open({ path: pair.hubEnd, baudRate: 115200 });
  const pending = assert.rejects(port.read(Buffer.alloc(16), 0, 16), (e: Error & { canceled?: boolean }) => e.canceled === true);
  await port.close();
  await pending;
  await assert.rejects(port.read(Buffer.alloc(16), 0, 16), (e: Error & { canceled?: boolean }) => e.canceled === true);
  await assert.rejects(port.write(Buffer.from("x")), (e: Error & { canceled?: boolean }) => e.canceled === true);
});

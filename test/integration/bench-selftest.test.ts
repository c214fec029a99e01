/**
 * Proves the Modbus bench is a faithful, independent peer before any hub
 * test relies on it: an unrelated master (mbpoll / libmodbus, or raw
 * pyserial for timing) must see the emulated devices behave by their
 * manuals, and the timed line's faults must reach it as real errors.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { benchAvailable, startBench, type Bench, type BenchOptions } from "../support/modbus-bench.js";

interface Poll {
  code: number;
  out: string;
  err: string;
  values: Map<number, number>;
}

let mbpollChecked: string | null | undefined;

/** Why the tests cannot run here, or null when they can. */
function skipReason(): string | null {
  const avail = benchAvailable();
  if (!avail.ok) return avail.reason;
  if (mbpollChecked === undefined) {
    const r = spawnSync("mbpoll", ["-V"], { stdio: "ignore" });
    mbpollChecked = r.error ? "mbpoll not found: apt-get install mbpoll" : null;
  }
  return mbpollChecked;
}

/** Starts a bench for one test, or skips the test with the reason. */
async function benchFor(t: TestContext, opts: BenchOptions): Promise<Bench | undefined> {
  const reason = skipReason();
  if (reason) {
    t.skip(reason);
    return undefined;
  }
  const bench = await startBench(opts);
  t.after(() => bench.stop());
  return bench;
}

/** Runs mbpoll once: 8N1 (its default parity is even) and 0-based addresses. */
function mbpoll(path: string, args: string[], writes: string[] = [], timeoutS = 0.5): Promise<Poll> {
  const argv = ["-m", "rtu", "-b", "9600", "-P", "none", "-0", "-1", "-o", String(timeoutS), ...args, path, ...writes];
  return new Promise((resolve) => {
    execFile("mbpoll", argv, { timeout: 10_000 }, (error, stdout, stderr) => {
      const values = new Map<number, number>();
      for (const m of stdout.matchAll(/^\[(\d+)\]:\s+(-?\d+)/gm)) values.set(Number(m[1]), Number(m[2]));
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, out: stdout, err: stderr, values });
    });
  });
}

function read(p: Poll, addr: number): number {
  assert.equal(p.code, 0, `mbpoll failed: ${p.err.trim()}`);
  const v = p.values.get(addr);
  assert.notEqual(v, undefined, `mbpoll printed no value for ${addr}:\n${p.out}`);
  return v!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("CO detector: mbpoll reads the ppm set over the control channel, alarm bits follow", async (t) => {
  const bench = await benchFor(t, { devices: { co: 1 } });
  if (!bench) return;

  await bench.slave.send({ cmd: "co", unit: 1, ppm: 150 });
  let p = await mbpoll(bench.path, ["-a", "1", "-t", "4", "-r", "0", "-c", "8"]);
  assert.equal(read(p, 1), 150, "HR1 ppm");
  assert.equal(read(p, 0), 1, "HR0 status abnormal at >= 100 ppm");
  assert.equal(read(p, 4), 1, "HR4 relay 1");
  assert.equal(read(p, 2), 215, "HR2 temperature x0.1");

  await bench.slave.send({ cmd: "co", unit: 1, ppm: 40 });
  p = await mbpoll(bench.path, ["-a", "1", "-t", "4", "-r", "0", "-c", "2"]);
  assert.equal(read(p, 0), 0);
  assert.equal(read(p, 1), 40);

  // The status block is read-only on the device: FC06 there is an exception.
  p = await mbpoll(bench.path, ["-a", "1", "-t", "4", "-r", "1"], ["7"]);
  assert.notEqual(p.code, 0);
  assert.match(p.err, /Illegal data address/);

  // No device at unit 9: silence, not an exception.
  p = await mbpoll(bench.path, ["-a", "9", "-t", "4", "-r", "0"], [], 0.3);
  assert.match(p.err, /timed out/i);

  const stats = await bench.slave.send({ cmd: "stats", unit: 1 });
  assert.equal(stats.requests, 3, "unit 1 saw the three requests addressed to it");
  await assert.rejects(bench.slave.send({ cmd: "valve", unit: 1 }), /no 'valve' command/);
});

test("valve: coil 1 closes it after the travel time; a coil OFF write does not reopen it", async (t) => {
  const bench = await benchFor(t, { devices: { valve: 3 } });
  if (!bench) return;
  await bench.slave.send({ cmd: "valve", unit: 3, travel_ms: 1000 });

  let p = await mbpoll(bench.path, ["-a", "3", "-t", "1", "-r", "0", "-c", "3"]);
  assert.deepEqual([read(p, 0), read(p, 1), read(p, 2)], [0, 0, 1], "starts fully open");

  const t0 = Date.now();
  p = await mbpoll(bench.path, ["-a", "3", "-t", "0", "-r", "1"], ["1"]);
  assert.equal(p.code, 0, p.err);
  p = await mbpoll(bench.path, ["-a", "3", "-t", "1", "-r", "0", "-c", "3"]);
  assert.deepEqual([read(p, 0), read(p, 1), read(p, 2)], [1, 0, 0], "moving, no limit");

  let closedAt = 0;
  while (Date.now() - t0 < 4000) {
    p = await mbpoll(bench.path, ["-a", "3", "-t", "1", "-r", "1"]);
    if (read(p, 1) === 1) {
      closedAt = Date.now() - t0;
      break;
    }
    await sleep(50);
  }
  assert.ok(closedAt > 0, "DI1 closed limit never set");
  assert.ok(closedAt >= 900, `closed too early (${closedAt} ms for a 1000 ms travel)`);
  p = await mbpoll(bench.path, ["-a", "3", "-t", "4", "-r", "3"]);
  assert.equal(read(p, 3), 0, "HR3 position 0 % open");

  // Latched command: writing the coil OFF is not a counter-command.
  await mbpoll(bench.path, ["-a", "3", "-t", "0", "-r", "1"], ["0"]);
  await sleep(300);
  p = await mbpoll(bench.path, ["-a", "3", "-t", "1", "-r", "0", "-c", "3"]);
  assert.deepEqual([read(p, 0), read(p, 1), read(p, 2)], [0, 1, 0], "still closed");

  const stats = await bench.slave.send({ cmd: "stats", unit: 3 });
  assert.equal(stats.close_commands, 1);
});

test("valve: jam mode stops half way and never reaches the closed limit", async (t) => {
  const bench = await benchFor(t, { devices: { valve: 3 } });
  if (!bench) return;
  await bench.slave.send({ cmd: "valve", unit: 3, mode: "jam", travel_ms: 600 });

  let p = await mbpoll(bench.path, ["-a", "3", "-t", "4", "-r", "5"], ["1"]); // HR5 := 1 close
  assert.equal(p.code, 0, p.err);
  await sleep(1500); // well past the full travel time
  const di = await bench.slave.send({ cmd: "get", unit: 3, table: "di", address: 0, count: 12 });
  assert.deepEqual(di.values?.slice(0, 3), [0, 0, 0], "stopped, no limit");
  assert.equal(di.values?.[11], 1, "DI11 jammed");
  p = await mbpoll(bench.path, ["-a", "3", "-t", "1", "-r", "1"]);
  assert.equal(read(p, 1), 0, "mbpoll sees no closed limit");
  p = await mbpoll(bench.path, ["-a", "3", "-t", "4", "-r", "3"]);
  const pos = read(p, 3);
  assert.ok(pos > 0 && pos < 1000, `position ${pos} (tenths of a %) should be part-way`);
  assert.equal((await bench.slave.send({ cmd: "stats", unit: 3 })).close_commands, 1);
});

// Raw FC3 x5 transactions from pyserial: no library between us and the bytes.
const TIMING_MASTER = `
import json, os, select, struct, sys, termios, time, tty
def crc(b):
    c = 0xFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
    return struct.pack("<H", c)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)
termios.tcflush(fd, termios.TCIOFLUSH)
req = bytes([1, 3, 0, 0, 0, 5]); req += crc(req)
times, reads = [], []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); os.write(fd, req); got = b""; n = 0
    while len(got) < 15 and select.select([fd], [], [], 1.0)[0]:
        got += os.read(fd, 64); n += 1
    times.append((time.perf_counter() - t) * 1000); reads.append(n)
    assert got[:3] == bytes([1, 3, 10]) and got[-2:] == crc(got[:-2]), got.hex()
    time.sleep(0.01)
print(json.dumps({"ms": times, "reads": reads}))
`;

test("timed line: paced like 9600 baud, crc and drop faults reach mbpoll as errors", async (t) => {
  const bench = await benchFor(t, { devices: { co: 1 }, timed: true });
  if (!bench) return;
  const line = bench.line!;
  await bench.slave.send({ cmd: "co", unit: 1, ppm: 77 });
  const hr1 = ["-a", "1", "-t", "4", "-r", "1"];

  assert.equal(read(await mbpoll(bench.path, hr1), 1), 77);

  // 8 + 15 bytes at 1.042 ms plus two t3.5 gaps is ~31 ms; bytes arrive one by one.
  const timing = spawnSync("/usr/bin/python3", ["-c", TIMING_MASTER, bench.path, "20"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(timing.status, 0, timing.stderr);
  const { ms, reads } = JSON.parse(timing.stdout) as { ms: number[]; reads: number[] };
  const sorted = [...ms].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  t.diagnostic(`FC3 x5 @9600 via timed line: median ${median.toFixed(1)} ms, min ${sorted[0]!.toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)}`);
  // The floor is the pacing itself (load can only make a read slower, never faster than the line allows);
  // the ceiling only catches a line stuck far from 9600 baud, with room for a busy shared machine.
  assert.ok(median >= 28, `median ${median} ms: faster than 9600 baud allows (≥ 28 ms)`);
  assert.ok(median <= 250, `median ${median} ms: far slower than 9600 baud (≤ 250 ms)`);
  assert.ok(Math.min(...reads) > 1, "reply should arrive fragmented");

  await line.send({ fault: "crc", count: 1 });
  let p = await mbpoll(bench.path, hr1);
  assert.notEqual(p.code, 0, "corrupt CRC must fail");
  assert.match(p.err, /CRC/i);
  assert.equal(read(await mbpoll(bench.path, hr1), 1), 77, "next request is fine");

  await line.send({ fault: "drop", count: 1 });
  p = await mbpoll(bench.path, hr1, [], 0.3);
  assert.notEqual(p.code, 0, "dropped reply must fail");
  assert.match(p.err, /timed out/i);
  assert.equal(read(await mbpoll(bench.path, hr1), 1), 77, "next request is fine");

  const stats = await line.send({ cmd: "stats" });
  assert.deepEqual(stats.faults, { crc: 1, drop: 1, late: 0, noise: 0 });
  await assert.rejects(line.send({ fault: "late" } as never), /late needs ms/);
});

for (const timed of [false, true]) {
  test(`harness (${timed ? "timed" : "plain"}): unplug/replug and slave death/restart`, async (t) => {
    const bench = await benchFor(t, { devices: { co: 1 }, timed });
    if (!bench) return;
    const hr1 = ["-a", "1", "-t", "4", "-r", "1"];
    await bench.slave.send({ cmd: "co", unit: 1, ppm: 12 });
    assert.equal(read(await mbpoll(bench.path, hr1), 1), 12);

    await bench.killSlave();
    assert.match((await mbpoll(bench.path, hr1, [], 0.3)).err, /timed out/i);
    await bench.restartSlave(); // power cycle: back to defaults
    assert.equal(read(await mbpoll(bench.path, hr1), 1), 0);

    await bench.unplug();
    assert.match((await mbpoll(bench.path, hr1)).err, /No such file/);
    await bench.replug();
    assert.equal(read(await mbpoll(bench.path, hr1), 1), 0);

    await bench.stop();
    await bench.stop(); // idempotent
  });
}

// The Seeed "53 59" radar framing: published vectors, every report kind both ways, resync after every kind
// of broken frame, chunking at every byte boundary, the counters, and seeded fuzzing (random streams and
// single-byte corruption of valid frames). Deterministic: fixed seeds, no clock, no I/O.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { DecodedFrame, RadarReport, StreamParser } from "../../gateway/src/transports/uart/codec.js";
import {
  DEFAULT_MAX_DATA_LENGTH,
  Seeed5359Parser,
  encodeFrame,
  encodeHeartbeat,
  encodeProductInfo,
  encodeReport,
  seeed5359,
} from "../../gateway/src/transports/uart/seeed-5359.js";
import { PROTOCOLS, codecFor } from "../../gateway/src/transports/uart/codecs.js";
import { UART_PROTOCOLS } from "../../gateway/src/profiles/radar-schema.js";
import { seededRandom } from "../support/prng.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const MAX_FRAME = DEFAULT_MAX_DATA_LENGTH + 9;

const randInt = (rnd: () => number, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));

function parser(maxDataLength?: number): Seeed5359Parser {
  const p = seeed5359.createParser(maxDataLength === undefined ? undefined : { maxDataLength });
  assert.ok(p instanceof Seeed5359Parser);
  return p;
}

function feed(p: StreamParser, ...chunks: Buffer[]): DecodedFrame[] {
  const out: DecodedFrame[] = [];
  for (const c of chunks) out.push(...p.push(c));
  return out;
}

/** All report facts of a decoded stream, merged (later frames win, as they would at the device). */
function facts(frames: DecodedFrame[]): RadarReport {
  const r: RadarReport = {};
  for (const f of frames) if (f.kind === "report") Object.assign(r, f.report);
  return r;
}

const errorCounters = (p: StreamParser) => {
  const { oversize, checksum, tail, unknown, badValue } = p.counters;
  return { oversize, checksum, tail, unknown, badValue };
};
const noErrors = { oversize: 0, checksum: 0, tail: 0, unknown: 0, badValue: 0 };

// --- published vectors -----------------------------------------------------------------------------------

const VECTORS = [
  { name: "reset", ctrl: 0x01, cmd: 0x02, data: [0x0f], bytes: "53 59 01 02 00 01 0F BF 54 43" },
  { name: "real-time mode", ctrl: 0x84, cmd: 0x0f, data: [0x00], bytes: "53 59 84 0F 00 01 00 40 54 43" },
  { name: "firmware version query", ctrl: 0x02, cmd: 0xa4, data: [0x0f], bytes: "53 59 02 A4 00 01 0F 62 54 43" },
];

test("encodeFrame reproduces the published frames byte for byte", () => {
  for (const v of VECTORS) assert.deepEqual(encodeFrame(v.ctrl, v.cmd, v.data), hex(v.bytes), v.name);
  assert.deepEqual(encodeFrame(0x02, 0xa4, Uint8Array.of(0x0f)), hex(VECTORS[2]!.bytes), "Uint8Array data");
});

test("the parser accepts the published frames as valid frames", () => {
  const p = parser();
  const out = feed(p, ...VECTORS.map((v) => hex(v.bytes)));
  assert.deepEqual(out, [
    { kind: "other", ctrl: 0x01, cmd: 0x02 },
    { kind: "other", ctrl: 0x84, cmd: 0x0f },
    { kind: "query", ctrl: 0x02, cmd: 0xa4 }, // our own query heard back: valid, not an answer
  ]);
  assert.equal(p.counters.frames, 3);
  assert.equal(p.counters.bytes, 30);
  assert.equal(p.counters.noiseBytes, 0);
  assert.deepEqual(errorCounters(p), noErrors);
});

test("queries: heartbeat and the four product-information queries", () => {
  assert.deepEqual(encodeHeartbeat(), hex("53 59 01 01 00 01 0F BE 54 43"));
  assert.deepEqual(seeed5359.livenessQuery(), hex("53 59 02 A1 00 01 0F 5F 54 43"), "liveness is asked with the model query, whose answer is text");
  const q = seeed5359.productInfoQueries();
  assert.deepEqual(q.map((b) => b.toString("hex")), ["a1", "a2", "a3", "a4"].map((c) => encodeFrame(0x02, parseInt(c, 16), [0x0f]).toString("hex")));
  assert.deepEqual(q[3], hex(VECTORS[2]!.bytes));
});

test("encodeFrame refuses what is not a byte", () => {
  assert.throws(() => encodeFrame(0x100, 0x01, [0]), RangeError);
  assert.throws(() => encodeFrame(0x80, -1, [0]), RangeError);
  assert.throws(() => encodeFrame(0x80, 0x01, [256]), RangeError);
  assert.throws(() => encodeFrame(0x80, 0x01, [1.5]), RangeError);
});

// --- reports both ways ------------------------------------------------------------------------------------

const ROUND_TRIPS: { report: RadarReport; ctrl: number; cmd: number; decoded?: RadarReport }[] = [
  { report: { presence: true }, ctrl: 0x80, cmd: 0x01 },
  { report: { presence: false }, ctrl: 0x80, cmd: 0x01 },
  { report: { motion: "none" }, ctrl: 0x80, cmd: 0x02 },
  { report: { motion: "still" }, ctrl: 0x80, cmd: 0x02 },
  { report: { motion: "moving" }, ctrl: 0x80, cmd: 0x02 },
  { report: { distanceCm: 1 }, ctrl: 0x80, cmd: 0x04 },
  { report: { distanceCm: 300 }, ctrl: 0x80, cmd: 0x04 },
  { report: { distanceCm: 1000 }, ctrl: 0x80, cmd: 0x04 },
  { report: { distanceCm: null }, ctrl: 0x80, cmd: 0x04 },
  { report: { distanceCm: 0 }, ctrl: 0x80, cmd: 0x04, decoded: { distanceCm: null } },
  { report: { heartRate: 72 }, ctrl: 0x85, cmd: 0x02 },
  { report: { heartRate: 250 }, ctrl: 0x85, cmd: 0x02 },
  { report: { heartRate: 0 }, ctrl: 0x85, cmd: 0x02, decoded: { heartRate: null } },
  { report: { heartRate: null }, ctrl: 0x85, cmd: 0x02 },
  { report: { breathing: 16 }, ctrl: 0x81, cmd: 0x02 },
  { report: { breathing: 80 }, ctrl: 0x81, cmd: 0x02 },
  { report: { breathing: 0 }, ctrl: 0x81, cmd: 0x02, decoded: { breathing: null } },
  { report: { inBed: true }, ctrl: 0x84, cmd: 0x01 },
  { report: { inBed: false }, ctrl: 0x84, cmd: 0x01 },
  { report: { fall: "fall" }, ctrl: 0x83, cmd: 0x01 },
  { report: { fall: "clear" }, ctrl: 0x83, cmd: 0x01 },
];

test("every report kind round-trips: encodeReport -> parser -> the same facts; 0 decodes as null", () => {
  for (const rt of ROUND_TRIPS) {
    const frames = encodeReport(rt.report);
    assert.equal(frames.length, 1, JSON.stringify(rt.report));
    assert.equal(frames[0]![2], rt.ctrl);
    assert.equal(frames[0]![3], rt.cmd);
    const p = parser();
    const out = feed(p, ...frames);
    assert.deepEqual(out, [{ kind: "report", report: rt.decoded ?? rt.report, ctrl: rt.ctrl, cmd: rt.cmd }], JSON.stringify(rt.report));
    assert.deepEqual(errorCounters(p), noErrors);
  }
});

test("a report with every field becomes one frame per field and decodes to the same facts", () => {
  const all: RadarReport = { presence: true, motion: "still", fall: "fall", heartRate: 61, breathing: 14, inBed: true, distanceCm: 142 };
  const frames = encodeReport(all);
  assert.equal(frames.length, 7);
  assert.deepEqual(facts(feed(parser(), Buffer.concat(frames))), all);
  assert.deepEqual(encodeReport({}), []);
});

test("the distance is big-endian on the wire", () => {
  assert.deepEqual(encodeReport({ distanceCm: 0x0123 })[0]!.subarray(6, 8), Buffer.from([0x01, 0x23]));
  assert.deepEqual(feed(parser(), encodeFrame(0x80, 0x04, [0x02, 0x58])), [{ kind: "report", report: { distanceCm: 600 }, ctrl: 0x80, cmd: 0x04 }]);
});

test("encodeReport refuses what the radars cannot say", () => {
  assert.throws(() => encodeReport({ fall: "maybe" }), RangeError);
  assert.throws(() => encodeReport({ heartRate: 251 }), RangeError);
  assert.throws(() => encodeReport({ heartRate: 60.5 }), RangeError);
  assert.throws(() => encodeReport({ breathing: 81 }), RangeError);
  assert.throws(() => encodeReport({ distanceCm: 1001 }), RangeError);
  assert.throws(() => encodeReport({ distanceCm: -1 }), RangeError);
  assert.throws(() => encodeReport({ motion: "running" as never }), RangeError);
});

test("heartbeat and product information", () => {
  const p = parser();
  const out = feed(
    p,
    encodeHeartbeat(),
    encodeProductInfo("model", "MR60FDA1"),
    encodeProductInfo("id", "0123456789AB"),
    encodeProductInfo("hardware", "G60FD1SY_HW1"),
    encodeProductInfo("firmware", "G60FD1SYv010104"),
    encodeFrame(0x02, 0xa4, [...Buffer.from("v2"), 0, 0, 0]), // NUL-padded text
  );
  assert.deepEqual(out, [
    { kind: "heartbeat", ctrl: 0x01, cmd: 0x01 },
    { kind: "product", field: "model", value: "MR60FDA1", ctrl: 0x02, cmd: 0xa1 },
    { kind: "product", field: "id", value: "0123456789AB", ctrl: 0x02, cmd: 0xa2 },
    { kind: "product", field: "hardware", value: "G60FD1SY_HW1", ctrl: 0x02, cmd: 0xa3 },
    { kind: "product", field: "firmware", value: "G60FD1SYv010104", ctrl: 0x02, cmd: 0xa4 },
    { kind: "product", field: "firmware", value: "v2", ctrl: 0x02, cmd: 0xa4 },
  ]);
  assert.deepEqual(errorCounters(p), noErrors);
  assert.throws(() => encodeProductInfo("model", ""), RangeError);
  assert.throws(() => encodeProductInfo("model", "tab\there"), RangeError);
});

test("frames that carry nothing the hub uses decode as other; only never-seen ones count as unknown", () => {
  const p = parser();
  const out = feed(
    p,
    encodeFrame(0x85, 0x05, [1, 2, 3, 4, 5]), // heart waveform
    encodeFrame(0x84, 0x02, [1]),
    encodeFrame(0x84, 0x0e, [0]),
    encodeFrame(0x83, 0x02, [0]),
    encodeFrame(0x83, 0x03, [0, 0, 0, 0]),
    encodeFrame(0x81, 0x01, [2]), // breathing state "rapid": valid, not a report
  );
  assert.deepEqual(out.map((f) => f.kind), ["other", "other", "other", "other", "other", "other"]);
  assert.equal(p.counters.unknown, 0);
  const unknown = feed(p, encodeFrame(0x90, 0x01, [0]), encodeFrame(0x80, 0x81, [1]));
  assert.deepEqual(unknown, [
    { kind: "other", ctrl: 0x90, cmd: 0x01 },
    { kind: "other", ctrl: 0x80, cmd: 0x81 },
  ]);
  assert.equal(p.counters.unknown, 2);
  assert.equal(p.counters.frames, 8);
});

test("a known frame with an impossible value or payload length counts as badValue and yields no report", () => {
  const bad: [string, Buffer][] = [
    ["presence 7", encodeFrame(0x80, 0x01, [7])],
    ["motion 3", encodeFrame(0x80, 0x02, [3])],
    ["fall 2", encodeFrame(0x83, 0x01, [2])],
    ["heart rate 251", encodeFrame(0x85, 0x02, [251])],
    ["breathing 81", encodeFrame(0x81, 0x02, [81])],
    ["in bed 2", encodeFrame(0x84, 0x01, [2])],
    ["distance 1001 cm", encodeFrame(0x80, 0x04, [0x03, 0xe9])],
    ["breathing state 0", encodeFrame(0x81, 0x01, [0])],
    ["breathing state 5", encodeFrame(0x81, 0x01, [5])],
    ["presence, 2 bytes", encodeFrame(0x80, 0x01, [1, 1])],
    ["presence, no data", encodeFrame(0x80, 0x01, [])],
    ["distance, 1 byte", encodeFrame(0x80, 0x04, [1])],
    ["heart rate, 2 bytes", encodeFrame(0x85, 0x02, [0, 60])],
    ["heartbeat, no data", encodeFrame(0x01, 0x01, [])],
    ["product, empty", encodeFrame(0x02, 0xa1, [])],
    ["product, only NULs", encodeFrame(0x02, 0xa1, [0, 0])],
    ["product, control bytes", encodeFrame(0x02, 0xa1, [0x41, 0x07, 0x42])],
  ];
  const good = encodeReport({ heartRate: 60 })[0]!;
  for (const [name, frame] of bad) {
    const p = parser();
    const out = feed(p, frame, good);
    assert.deepEqual(out, [{ kind: "report", report: { heartRate: 60 }, ctrl: 0x85, cmd: 0x02 }], name);
    assert.deepEqual(errorCounters(p), { ...noErrors, badValue: 1 }, name);
    assert.equal(p.counters.frames, 1, name);
  }
});

// --- resync -----------------------------------------------------------------------------------------------

const PRESENT = encodeReport({ presence: true })[0]!;
const HR = encodeReport({ heartRate: 58 })[0]!;
const FALL = encodeReport({ fall: "fall" })[0]!;

function corrupt(frame: Buffer, at: number, value: number): Buffer {
  const b = Buffer.from(frame);
  b[at] = value;
  return b;
}

test("noise before and between frames is skipped and counted", () => {
  const p = parser();
  const noise1 = hex("00 FF 53 00 54 43 59"); // includes a lone 0x53 and a stray tail
  const noise2 = hex("53 53 12");
  const out = feed(p, Buffer.concat([noise1, PRESENT, noise2, HR]));
  assert.deepEqual(facts(out), { presence: true, heartRate: 58 });
  assert.equal(out.length, 2);
  assert.equal(p.counters.noiseBytes, noise1.length + noise2.length);
  assert.deepEqual(errorCounters(p), noErrors);
});

test("a frame with a bad checksum is dropped and the good frame right behind it is decoded", () => {
  const p = parser();
  const badSum = corrupt(FALL, 7, FALL[7]! ^ 0x01);
  const out = feed(p, Buffer.concat([badSum, HR]));
  assert.deepEqual(out, [{ kind: "report", report: { heartRate: 58 }, ctrl: 0x85, cmd: 0x02 }]);
  assert.equal(p.counters.checksum, 1);
  assert.equal(p.counters.noiseBytes, badSum.length);
  // a corrupted data byte (the fall flag) is a checksum failure too, never a different fall state
  const q = parser();
  assert.deepEqual(feed(q, corrupt(FALL, 6, 0x00), HR).map((f) => f.kind), ["report"]);
  assert.equal(q.counters.checksum, 1);
});

test("a bad tail is dropped and the next frame decoded", () => {
  const p = parser();
  const out = feed(p, Buffer.concat([corrupt(FALL, 9, 0x44), HR]));
  assert.deepEqual(facts(out), { heartRate: 58 });
  assert.deepEqual(errorCounters(p), { ...noErrors, tail: 1 });
});

test("a length byte corrupted to 40000 is rejected on the header alone; the frames behind it decode", () => {
  const p = parser();
  const broken = Buffer.from(PRESENT);
  broken.writeUInt16BE(40000, 4);
  // the header alone is enough to reject it: nothing is held back waiting for 40000 bytes
  assert.deepEqual(p.push(broken.subarray(0, 6)), []);
  assert.equal(p.counters.oversize, 1);
  assert.equal(p.buffered, 0);
  const out = feed(p, broken.subarray(6), HR, FALL);
  assert.deepEqual(facts(out), { heartRate: 58, fall: "fall" });
  assert.equal(p.counters.oversize, 1);
  assert.equal(p.counters.noiseBytes, broken.length);
});

test("a length byte corrupted to a plausible size does not swallow the good frames behind it", () => {
  const p = parser();
  const broken = corrupt(PRESENT, 5, 0x30); // announces 48 bytes: the parser waits, then sees the tail is wrong
  const out = feed(p, Buffer.concat([broken, HR, FALL, HR, FALL, HR, FALL]));
  assert.equal(out.length, 6);
  assert.deepEqual(facts(out), { heartRate: 58, fall: "fall" });
  assert.equal(p.counters.tail, 1);
  assert.equal(p.buffered, 0);
});

/** A stream with every kind of trouble in it, used for the chunking tests. */
function mixedStream(): Buffer {
  const broken = Buffer.from(PRESENT);
  broken.writeUInt16BE(40000, 4);
  return Buffer.concat([
    hex("00 53 11"),
    PRESENT,
    corrupt(FALL, 7, 0x00),
    HR,
    corrupt(HR, 8, 0x55),
    encodeProductInfo("firmware", "G60FD1SYv010104"),
    broken,
    FALL,
    corrupt(PRESENT, 5, 0x20),
    encodeFrame(0x80, 0x01, [9]),
    encodeHeartbeat(),
    encodeFrame(0x85, 0x05, [0x53, 0x59, 0x00, 0x01, 0x02]),
    ...encodeReport({ motion: "moving", distanceCm: 250, inBed: false, breathing: 0 }),
    hex("53 59"),
    FALL,
    encodeFrame(0x90, 0x02, []),
  ]);
}

test("a stream split at every byte boundary decodes identically, with identical counters", () => {
  const stream = mixedStream();
  const whole = parser();
  const expected = whole.push(stream);
  assert.ok(expected.length >= 12, "the mixed stream has plenty of good frames");
  for (let k = 0; k <= stream.length; k++) {
    const p = parser();
    const out = feed(p, stream.subarray(0, k), stream.subarray(k));
    assert.deepEqual(out, expected, `split at ${k}`);
    assert.deepEqual(p.counters, whole.counters, `split at ${k}`);
  }
  // every pair of split points on a shorter prefix too (three chunks)
  const short = stream.subarray(0, 90);
  const ref = parser();
  const refOut = ref.push(short);
  for (let a = 0; a <= short.length; a++) {
    for (let b = a; b <= short.length; b++) {
      const p = parser();
      assert.deepEqual(feed(p, short.subarray(0, a), short.subarray(a, b), short.subarray(b)), refOut, `split at ${a}, ${b}`);
      assert.deepEqual(p.counters, ref.counters, `split at ${a}, ${b}`);
    }
  }
});

test("byte by byte and random chunkings decode the same as one push", () => {
  const stream = mixedStream();
  const whole = parser();
  const expected = whole.push(stream);
  const p = parser();
  const out: DecodedFrame[] = [];
  for (let k = 0; k < stream.length; k++) {
    out.push(...p.push(stream.subarray(k, k + 1)));
    assert.ok(p.buffered < MAX_FRAME);
  }
  assert.deepEqual(out, expected);
  assert.deepEqual(p.counters, whole.counters);
  const rnd = seededRandom(7);
  for (let round = 0; round < 200; round++) {
    const q = parser();
    const got: DecodedFrame[] = [];
    for (let k = 0; k < stream.length; ) {
      const n = randInt(rnd, 0, 40);
      got.push(...q.push(stream.subarray(k, k + n)));
      k += n;
    }
    assert.deepEqual(got, expected, `round ${round}`);
    assert.deepEqual(q.counters, whole.counters, `round ${round}`);
  }
});

test("the partial frame is copied: the caller may reuse its read buffer", () => {
  const p = parser();
  const buf = Buffer.from(HR);
  assert.deepEqual(p.push(buf.subarray(0, 7)), []);
  buf.fill(0); // the serial port reuses the buffer for the next read
  buf.set(HR.subarray(7), 0);
  assert.deepEqual(facts(p.push(buf.subarray(0, HR.length - 7))), { heartRate: 58 });
});

test("the buffered partial never grows past one maximal frame", () => {
  const p = parser();
  // a header announcing the maximal payload, then a trickle of bytes that never complete it correctly
  p.push(hex("53 59 80 01 00 40"));
  const rnd = seededRandom(99);
  for (let k = 0; k < 5000; k++) {
    p.push(Buffer.from([randInt(rnd, 0, 255) === 0 ? 0x53 : randInt(rnd, 0, 255)]));
    assert.ok(p.buffered < MAX_FRAME, `buffered ${p.buffered}`);
  }
  const big = parser(1000);
  big.push(hex("53 59 80 01 03 E8"));
  big.push(Buffer.alloc(900));
  assert.equal(big.buffered, 906);
  big.push(Buffer.alloc(200)); // completes the 1009-byte candidate: wrong tail, so it is dropped
  assert.equal(big.counters.tail, 1);
  assert.ok(big.buffered < 1009);
});

test("maxDataLength: the default rejects long frames, an override accepts them, nonsense is refused", () => {
  const long = encodeProductInfo("model", "X".repeat(100));
  const def = parser();
  assert.deepEqual(def.push(long), []);
  assert.equal(def.counters.oversize, 1);
  const wide = parser(200);
  assert.deepEqual(wide.push(long), [{ kind: "product", field: "model", value: "X".repeat(100), ctrl: 0x02, cmd: 0xa1 }]);
  assert.equal(wide.maxDataLength, 200);
  for (const bad of [0, -1, 1.5, 65536, Number.NaN]) assert.throws(() => seeed5359.createParser({ maxDataLength: bad }), RangeError, String(bad));
});

// --- counters ---------------------------------------------------------------------------------------------

test("the counters add up exactly for a known mixed stream", () => {
  const oversize = Buffer.from(PRESENT.subarray(0, 6));
  oversize.writeUInt16BE(40000, 4);
  const unknown = encodeFrame(0x90, 0x01, [0]);
  const wave = encodeFrame(0x85, 0x05, [1, 2, 3, 4, 5]);
  const hb = encodeHeartbeat();
  const parts = [
    hex("00 11 22"), // 3 noise
    PRESENT, // frame
    corrupt(PRESENT, 7, 0x30), // checksum, 10 noise
    corrupt(PRESENT, 9, 0x44), // tail, 10 noise
    oversize, // oversize, 6 noise
    hex("53 00"), // not a header: 2 noise
    unknown, // frame, unknown
    wave, // frame
    encodeFrame(0x80, 0x01, [7]), // badValue, 10 noise
    hb, // frame
    PRESENT.subarray(0, 5), // held back
  ];
  const stream = Buffer.concat(parts);
  const p = parser();
  const out = p.push(stream);
  assert.deepEqual(out.map((f) => f.kind), ["report", "other", "other", "heartbeat"]);
  assert.deepEqual(p.counters, {
    frames: 4,
    bytes: stream.length,
    noiseBytes: 3 + 10 + 10 + 6 + 2 + 10,
    oversize: 1,
    checksum: 1,
    tail: 1,
    unknown: 1,
    badValue: 1,
  });
  assert.equal(p.buffered, 5);
  const frameBytes = PRESENT.length + unknown.length + wave.length + hb.length;
  assert.equal(p.counters.bytes, frameBytes + p.counters.noiseBytes + p.buffered);
  assert.deepEqual(facts(p.push(PRESENT.subarray(5))), { presence: true });
  assert.equal(p.counters.frames, 5);
  assert.equal(p.buffered, 0);
});

// --- fuzzing ----------------------------------------------------------------------------------------------

test("fuzz: 1.5 MB of random bytes never throws and yields no frame", () => {
  for (const seed of [1, 0xc0ffee, 20240611, 0xdeadbeef]) {
    const rnd = seededRandom(seed);
    const data = Buffer.allocUnsafe(384 * 1024);
    for (let k = 0; k < data.length; k += 4) data.writeUInt32LE((rnd() * 4294967296) >>> 0, k);
    // make headers common, so the header, length, tail and checksum paths are all exercised
    // (and half of them with a plausible length); tails are left to chance, or valid frames would be planted
    for (let k = 0; k + 5 < data.length; k += randInt(rnd, 1, 64)) {
      data[k] = 0x53;
      data[k + 1] = 0x59;
      if (rnd() < 0.5) data.writeUInt16BE(randInt(rnd, 0, 80), k + 4);
    }
    const p = parser();
    let frames = 0;
    for (let k = 0; k < data.length; ) {
      const n = randInt(rnd, 1, 4096);
      const out = p.push(data.subarray(k, k + n));
      frames += out.length;
      if (out.length > 0) console.log(`fuzz seed ${seed}: random bytes decoded as a frame`, out);
      k += n;
      assert.ok(p.buffered < MAX_FRAME);
    }
    assert.equal(frames, 0, `seed ${seed}`);
    assert.equal(p.counters.frames, 0, `seed ${seed}`);
    assert.equal(p.counters.bytes, data.length);
    assert.equal(p.counters.noiseBytes + p.buffered, data.length, `seed ${seed}: every byte is noise or held back`);
    assert.ok(p.counters.oversize > 1000 && p.counters.tail > 1000, `seed ${seed}: the rejection paths ran`);
  }
});

/** A random valid frame a radar of this family could send. */
function randomFrame(rnd: () => number): Buffer {
  switch (randInt(rnd, 0, 10)) {
    case 0: return encodeReport({ presence: rnd() < 0.5 })[0]!;
    case 1: return encodeReport({ motion: (["none", "still", "moving"] as const)[randInt(rnd, 0, 2)]! })[0]!;
    case 2: return encodeReport({ fall: rnd() < 0.5 ? "fall" : "clear" })[0]!;
    case 3: return encodeReport({ heartRate: randInt(rnd, 0, 250) })[0]!;
    case 4: return encodeReport({ breathing: randInt(rnd, 0, 80) })[0]!;
    case 5: return encodeReport({ inBed: rnd() < 0.5 })[0]!;
    case 6: return encodeReport({ distanceCm: randInt(rnd, 0, 1000) })[0]!;
    case 7: return encodeHeartbeat();
    case 8: return encodeProductInfo((["model", "id", "hardware", "firmware"] as const)[randInt(rnd, 0, 3)]!, rnd() < 0.5 ? "G60FD1SYv010104" : "MR60BHA1");
    case 9: return encodeFrame(0x85, 0x05, Array.from({ length: 5 }, () => randInt(rnd, 0, 255)));
    default: return encodeFrame(0x81, 0x01, [randInt(rnd, 1, 4)]);
  }
}

test("fuzz: a frame with one byte changed is always rejected, and the frames behind it still decode", () => {
  const decodeAlone = (b: Buffer): DecodedFrame => {
    const out = parser().push(b);
    assert.equal(out.length, 1);
    return out[0]!;
  };
  let trials = 0;
  for (const seed of [3, 17, 4242, 0x5359]) {
    const rnd = seededRandom(seed);
    const p = parser(); // one parser across all trials, as on a real port
    for (let t = 0; t < 1000; t++) {
      const before = randomFrame(rnd);
      const victim = randomFrame(rnd);
      // enough good frames behind the victim to complete any length it may now announce
      const after: Buffer[] = [];
      let afterLen = 0;
      while (afterLen < MAX_FRAME) {
        const f = randomFrame(rnd);
        after.push(f);
        afterLen += f.length;
      }
      const at = randInt(rnd, 0, victim.length - 1);
      const old = victim[at]!;
      const bad = corrupt(victim, at, (old + randInt(rnd, 1, 255)) & 0xff);
      const stream = Buffer.concat([before, bad, ...after]);
      const expected = [before, ...after].map(decodeAlone);
      const frames0 = p.counters.frames;
      const noise0 = p.counters.noiseBytes;
      const out: DecodedFrame[] = [];
      for (let k = 0; k < stream.length; ) {
        const n = randInt(rnd, 1, 48);
        out.push(...p.push(stream.subarray(k, k + n)));
        k += n;
      }
      const ctx = `seed ${seed} trial ${t}: byte ${at} ${old.toString(16)} -> ${bad[at]!.toString(16)} in ${victim.toString("hex")}`;
      assert.deepEqual(out, expected, ctx);
      // exactly the corrupted frame's bytes were thrown away, nothing else, nothing held back
      assert.equal(p.counters.frames - frames0, expected.length, ctx);
      assert.equal(p.counters.noiseBytes - noise0, bad.length, ctx);
      assert.equal(p.buffered, 0, ctx);
      trials++;
    }
  }
  assert.equal(trials, 4000);
});

// --- registry ---------------------------------------------------------------------------------------------

test("codecs registry: every listed protocol resolves to its codec; anything else to undefined", () => {
  for (const id of PROTOCOLS) assert.equal(codecFor(id)?.id, id);
  assert.equal(codecFor("seeed-5359"), seeed5359);
  // a device profile can only name a framing the hub can parse
  for (const id of UART_PROTOCOLS) assert.equal(codecFor(id)?.id, id, `profile protocol ${id}`);
  assert.equal(codecFor("mr24-55"), undefined);
  assert.equal(codecFor(""), undefined);
});

// The Seeed "53 59" framing spoken by the 60 GHz radars (MR60FDA1 fall, MR60BHA1 breathing/heart) over UART:
//
//   53 59 | ctrl | cmd | lenH lenL | data[len] | sum8 | 54 43      sum8 = (0x53 + ... + last data byte) & 0xFF
//
// One responsibility: find checked frames in a byte stream and map ctrl/cmd to `RadarReport` facts (and back,
// for the encoders the test generators and the simulator use). docs/radar-framing.md has the table.
//
// Nothing from the wire is trusted. Every rejected candidate (bad length, tail, checksum or value) is
// dropped and the scan resumes one byte after its 0x53, so a corrupted length byte never swallows the good
// frames behind it; its bytes are then counted as noise as they are rescanned. Hence, at any moment,
// `bytes` = (bytes of accepted frames) + `noiseBytes` + `buffered`.

import type { DecodedFrame, FrameCodec, ParseCounters, RadarReport, StreamParser } from "./codec.js";
import { emptyCounters } from "./codec.js";

const HEAD1 = 0x53;
const HEAD2 = 0x59;
const TAIL1 = 0x54;
const TAIL2 = 0x43;
/** header (2) + ctrl + cmd + length (2) + sum + tail (2) */
const OVERHEAD = 9;

/** The longest payload these radars send is a few dozen bytes (product text, sleep summaries). */
export const DEFAULT_MAX_DATA_LENGTH = 64;
export const MAX_HEART_RATE = 250;
export const MAX_BREATHING = 80;
/** Far beyond what any radar of this family can see (a few metres); a larger value is a broken frame. */
export const MAX_DISTANCE_CM = 1000;

/** The data byte of every query the hub sends (heartbeat, product information). */
const QUERY = 0x0f;

export type ProductField = "model" | "id" | "hardware" | "firmware";
const PRODUCT_CMD: Readonly<Record<ProductField, number>> = { model: 0xa1, id: 0xa2, hardware: 0xa3, firmware: 0xa4 };
const PRODUCT_FIELDS: readonly ProductField[] = ["model", "id", "hardware", "firmware"];

const key = (ctrl: number, cmd: number): number => (ctrl << 8) | cmd;

/**
 * Valid frames the radars send that carry nothing the hub uses: replies to settings, switches, waveforms,
 * sleep statistics. They are decoded as `other` without touching `unknown`, so `unknown` only moves for
 * frames nobody has looked at (a new firmware, a different model on the port).
 */
const KNOWN_OTHER: ReadonlySet<number> = new Set([
  key(0x01, 0x02), // reset acknowledged
  key(0x05, 0x01), // initialisation complete
  key(0x80, 0x00), key(0x80, 0x03), key(0x80, 0x05), // presence switch, body-movement parameter, position
  key(0x81, 0x00), key(0x81, 0x05), // breathing switch, breathing waveform
  key(0x83, 0x00), key(0x83, 0x02), key(0x83, 0x03), key(0x83, 0x05), // fall switch, fall detail, residency
  key(0x84, 0x00), key(0x84, 0x02), key(0x84, 0x0e), key(0x84, 0x0f), // sleep switch, sleep state, abnormal, mode
  key(0x85, 0x00), key(0x85, 0x05), // heart switch, heart waveform
]);

// --- encoding -------------------------------------------------------------------------------------------

function byte(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${name} must be a byte, got ${v}`);
  return v;
}

/** One frame, checksum and tail included. Used by the hub for queries and by tests to build radar output. */
export function encodeFrame(ctrl: number, cmd: number, data: Uint8Array | number[]): Buffer {
  const n = data.length;
  if (n > 0xffff) throw new RangeError(`data too long for a 53 59 frame: ${n} bytes`);
  const out = Buffer.allocUnsafe(n + OVERHEAD);
  out[0] = HEAD1;
  out[1] = HEAD2;
  out[2] = byte("ctrl", ctrl);
  out[3] = byte("cmd", cmd);
  out[4] = n >> 8;
  out[5] = n & 0xff;
  for (let k = 0; k < n; k++) out[6 + k] = byte("data byte", data[k]!);
  let sum = 0;
  for (let k = 0; k < 6 + n; k++) sum += out[k]!;
  out[6 + n] = sum & 0xff;
  out[7 + n] = TAIL1;
  out[8 + n] = TAIL2;
  return out;
}

/** A reading that may be "no reading": null (and 0) go on the wire as 0. */
function reading(name: string, v: number | null, max: number): number {
  if (v === null) return 0;
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer 0..${max} or null, got ${v}`);
  return v;
}

/**
 * The frames a radar would send for `report`, one per field, in `RADAR_READINGS` order. Throws for what
 * this family cannot say (fall "maybe", out-of-range numbers), so a test generator cannot build a lie.
 */
export function encodeReport(report: RadarReport): Buffer[] {
  const out: Buffer[] = [];
  if (report.presence !== undefined) out.push(encodeFrame(0x80, 0x01, [report.presence ? 1 : 0]));
  if (report.motion !== undefined) {
    const m = { none: 0, still: 1, moving: 2 }[report.motion];
    if (m === undefined) throw new RangeError(`unknown motion ${String(report.motion)}`);
    out.push(encodeFrame(0x80, 0x02, [m]));
  }
  if (report.fall !== undefined) {
    if (report.fall !== "fall" && report.fall !== "clear") throw new RangeError(`the 53 59 radars cannot report fall "${report.fall}"`);
    out.push(encodeFrame(0x83, 0x01, [report.fall === "fall" ? 1 : 0]));
  }
  if (report.heartRate !== undefined) out.push(encodeFrame(0x85, 0x02, [reading("heartRate", report.heartRate, MAX_HEART_RATE)]));
  if (report.breathing !== undefined) out.push(encodeFrame(0x81, 0x02, [reading("breathing", report.breathing, MAX_BREATHING)]));
  if (report.inBed !== undefined) out.push(encodeFrame(0x84, 0x01, [report.inBed ? 1 : 0]));
  if (report.distanceCm !== undefined) {
    const d = reading("distanceCm", report.distanceCm, MAX_DISTANCE_CM);
    out.push(encodeFrame(0x80, 0x04, [d >> 8, d & 0xff]));
  }
  return out;
}

/** The heartbeat frame; the query and the radar's reply are the same bytes. */
export function encodeHeartbeat(): Buffer {
  return encodeFrame(0x01, 0x01, [QUERY]);
}

/** A radar's answer to a product-information query: printable ASCII text. */
export function encodeProductInfo(field: ProductField, text: string): Buffer {
  const cmd = PRODUCT_CMD[field];
  if (cmd === undefined) throw new RangeError(`unknown product field ${String(field)}`);
  if (!/^[\x20-\x7e]+$/.test(text)) throw new RangeError("product text must be non-empty printable ASCII");
  return encodeFrame(0x02, cmd, Buffer.from(text, "latin1"));
}

// --- decoding -------------------------------------------------------------------------------------------

const BAD = 0;
const UNKNOWN = 1;
type Decoded = DecodedFrame | typeof BAD | typeof UNKNOWN;

function report(r: RadarReport, ctrl: number, cmd: number): DecodedFrame {
  return { kind: "report", report: r, ctrl, cmd };
}

/** Maps one checked frame (payload at buf[p .. p+len)) to what it means, BAD when its payload is impossible. */
function decode(buf: Buffer, ctrl: number, cmd: number, p: number, len: number): Decoded {
  const v = buf[p] ?? -1; // first data byte; -1 when there is none (the length checks below reject those)
  switch (key(ctrl, cmd)) {
    case 0x8001: // presence
      return len === 1 && v <= 1 ? report({ presence: v === 1 }, ctrl, cmd) : BAD;
    case 0x8002: // motion
      return len === 1 && v <= 2 ? report({ motion: v === 0 ? "none" : v === 1 ? "still" : "moving" }, ctrl, cmd) : BAD;
    case 0x8004: { // distance, big-endian cm
      if (len !== 2) return BAD;
      const d = (v << 8) | buf[p + 1]!;
      return d <= MAX_DISTANCE_CM ? report({ distanceCm: d === 0 ? null : d }, ctrl, cmd) : BAD;
    }
    case 0x8502: // heart rate
      return len === 1 && v <= MAX_HEART_RATE ? report({ heartRate: v === 0 ? null : v }, ctrl, cmd) : BAD;
    case 0x8102: // breathing value
      return len === 1 && v <= MAX_BREATHING ? report({ breathing: v === 0 ? null : v }, ctrl, cmd) : BAD;
    case 0x8101: // breathing state 1 normal .. 4 none: the value frame is what matters, but a 7 here is a broken frame
      return len === 1 && v >= 1 && v <= 4 ? { kind: "other", ctrl, cmd } : BAD;
    case 0x8401: // in bed
      return len === 1 && v <= 1 ? report({ inBed: v === 1 }, ctrl, cmd) : BAD;
    case 0x8301: // fall state
      return len === 1 && v <= 1 ? report({ fall: v === 1 ? "fall" : "clear" }, ctrl, cmd) : BAD;
    case 0x0101: // heartbeat, query or reply
      return len === 1 ? { kind: "heartbeat", ctrl, cmd } : BAD;
    case 0x02a1:
    case 0x02a2:
    case 0x02a3:
    case 0x02a4:
      return product(buf, ctrl, cmd, p, len);
  }
  return KNOWN_OTHER.has(key(ctrl, cmd)) ? { kind: "other", ctrl, cmd } : UNKNOWN;
}

function product(buf: Buffer, ctrl: number, cmd: number, p: number, len: number): Decoded {
  // Our own query (data 0x0F), heard back on a shared or looped line, is a valid frame but not an answer.
  if (len === 1 && buf[p] === QUERY) return { kind: "query", ctrl, cmd };
  let end = p + len;
  while (end > p && buf[end - 1] === 0) end--; // some firmwares pad the text with NULs
  if (end === p) return BAD;
  for (let k = p; k < end; k++) {
    const c = buf[k]!;
    if (c < 0x20 || c > 0x7e) return BAD;
  }
  const field = PRODUCT_FIELDS[cmd - 0xa1]!;
  return { kind: "product", field, value: buf.toString("latin1", p, end), ctrl, cmd };
}

// --- the stream parser ----------------------------------------------------------------------------------

/**
 * Keeps at most one partial frame between pushes, in a buffer allocated once. When nothing is left over,
 * a chunk is parsed in place; when something is, only the first (max frame - 1) bytes of the chunk are
 * copied behind it, which is all a frame starting in the leftover can reach, and the rest of the chunk is
 * again parsed in place.
 */
export class Seeed5359Parser implements StreamParser {
  readonly maxDataLength: number;
  private readonly maxFrame: number;
  /** leftover partial frame at [0, pending), then room for the head of the next chunk */
  private readonly work: Buffer;
  private pending = 0;
  private readonly c: ParseCounters = emptyCounters();

  constructor(maxDataLength: number = DEFAULT_MAX_DATA_LENGTH) {
    if (!Number.isInteger(maxDataLength) || maxDataLength < 1 || maxDataLength > 0xffff) {
      throw new RangeError(`maxDataLength must be an integer 1..65535, got ${maxDataLength}`);
    }
    this.maxDataLength = maxDataLength;
    this.maxFrame = maxDataLength + OVERHEAD;
    this.work = Buffer.alloc(2 * this.maxFrame);
  }

  get counters(): Readonly<ParseCounters> {
    return this.c;
  }

  /** Bytes held back as the start of a frame not yet complete; always less than one maximal frame. */
  get buffered(): number {
    return this.pending;
  }

  push(chunk: Buffer): DecodedFrame[] {
    const out: DecodedFrame[] = [];
    const n = chunk.length;
    this.c.bytes += n;
    if (n === 0) return out;
    let from = 0;
    if (this.pending > 0) {
      const carried = this.pending;
      const take = Math.min(n, this.maxFrame - 1);
      chunk.copy(this.work, carried, 0, take);
      const end = carried + take;
      const i = this.scan(this.work, 0, end, carried, out);
      if (i < carried) {
        // still inside the leftover: the whole chunk fitted in `work` and the frame is still incomplete
        this.work.copyWithin(0, i, end);
        this.pending = end - i;
        return out;
      }
      from = i - carried;
      this.pending = 0;
    }
    const j = this.scan(chunk, from, n, n, out);
    if (j < n) {
      chunk.copy(this.work, 0, j, n); // copied: the caller may reuse its buffer
      this.pending = n - j;
    }
    return out;
  }

  /**
   * Looks for frames starting in [i, limit) within buf[0, end). Returns where it stopped: `limit` or past it
   * when done, or the start of a frame that needs bytes beyond `end`.
   */
  private scan(buf: Buffer, i: number, end: number, limit: number, out: DecodedFrame[]): number {
    const c = this.c;
    const maxData = this.maxDataLength;
    while (i < limit) {
      if (buf[i] !== HEAD1) {
        // native search: line noise costs no per-byte JS
        let h = buf.indexOf(HEAD1, i);
        if (h < 0 || h > limit) h = limit;
        c.noiseBytes += h - i;
        i = h;
        continue;
      }
      if (i + 1 >= end) break;
      if (buf[i + 1] !== HEAD2) {
        c.noiseBytes++;
        i++;
        continue;
      }
      if (i + 6 > end) break;
      const len = (buf[i + 4]! << 8) | buf[i + 5]!;
      if (len > maxData) {
        // rejected on the header alone: never wait for a length the radar cannot send
        c.oversize++;
        c.noiseBytes++;
        i++;
        continue;
      }
      const sumAt = i + 6 + len;
      if (sumAt + 3 > end) break;
      if (buf[sumAt + 1] !== TAIL1 || buf[sumAt + 2] !== TAIL2) {
        c.tail++;
        c.noiseBytes++;
        i++;
        continue;
      }
      let sum = 0;
      for (let k = i; k < sumAt; k++) sum += buf[k]!;
      if ((sum & 0xff) !== buf[sumAt]) {
        c.checksum++;
        c.noiseBytes++;
        i++;
        continue;
      }
      const ctrl = buf[i + 2]!;
      const cmd = buf[i + 3]!;
      const d = decode(buf, ctrl, cmd, i + 6, len);
      if (d === BAD) {
        // A wrong payload length that still passed sum8 and tail is most likely a corrupted length byte:
        // treat it like any broken frame and rescan its bytes.
        c.badValue++;
        c.noiseBytes++;
        i++;
        continue;
      }
      c.frames++;
      if (d === UNKNOWN) {
        c.unknown++;
        out.push({ kind: "other", ctrl, cmd }); // still a sign of life from the radar
      } else {
        out.push(d);
      }
      i = sumAt + 3;
    }
    return i;
  }
}

export const seeed5359: FrameCodec = {
  id: "seeed-5359",
  createParser(opts?: { maxDataLength?: number }): StreamParser {
    return new Seeed5359Parser(opts?.maxDataLength);
  },
  // The heartbeat query and its reply are the same bytes, so an echo would pass for a live radar; the
  // model query's answer carries text and cannot be confused with the query.
  livenessQuery(): Buffer {
    return encodeFrame(0x02, PRODUCT_CMD.model, [QUERY]);
  },
  productInfoQueries(): Buffer[] {
    return PRODUCT_FIELDS.map((f) => encodeFrame(0x02, PRODUCT_CMD[f], [QUERY]));
  },
};

// The contract between a radar's wire framing and the rest of the hub. A codec turns a byte stream into
// frames it has checked (header, length, checksum, tail) and then into facts in the radar vocabulary
// (`RadarReport`); everything above it (devices, rules) never sees a framing. A second framing (for
// example the 24 GHz MR24FDB1: header 0x55, CRC-16) is a second implementation of `FrameCodec`, listed
// in `codecs.ts`; docs/radars.md says how.

/** What a radar says about the body in front of it: none (nobody), still (present, not moving), moving. */
export type Motion = "none" | "still" | "moving";

/** A radar's own fall verdict. `maybe` is a suspected fall some models report before they are sure. */
export type FallFlag = "fall" | "maybe" | "clear";

/**
 * One fact from a radar, in the same vocabulary the Zigbee radars are mapped to. Every field is optional:
 * a frame carries one or two of them. `null` for heart rate, breathing or distance means "the radar has
 * no reading now" (the wire's 0), never a low value.
 */
export interface RadarReport {
  presence?: boolean;
  motion?: Motion;
  fall?: FallFlag;
  /** beats per minute */
  heartRate?: number | null;
  /** breaths per minute */
  breathing?: number | null;
  inBed?: boolean;
  distanceCm?: number | null;
}

export const RADAR_READINGS = ["presence", "motion", "fall", "heartRate", "breathing", "inBed", "distanceCm"] as const;
export type RadarReading = (typeof RADAR_READINGS)[number];

/** Why bytes were thrown away, one counter each; all of them are bad input, none is ever a reading. */
export interface ParseCounters {
  /** frames that passed every check */
  frames: number;
  /** bytes fed in */
  bytes: number;
  /** bytes skipped while looking for a header (line noise, a partial frame) */
  noiseBytes: number;
  /** a header whose length field announces more than the codec's maximum */
  oversize: number;
  checksum: number;
  tail: number;
  /** a valid frame whose ctrl/cmd the codec does not know (counted, ignored) */
  unknown: number;
  /** a known frame whose payload has the wrong length or a value outside its meaning */
  badValue: number;
}

export type DecodedFrame =
  | { kind: "report"; report: RadarReport; ctrl: number; cmd: number }
  /** an answer to a heartbeat query, or the radar's own heartbeat */
  | { kind: "heartbeat"; ctrl: number; cmd: number }
  /** product information: model, id, hardware or firmware version, as text */
  | { kind: "product"; field: "model" | "id" | "hardware" | "firmware"; value: string; ctrl: number; cmd: number }
  /** one of the hub's own queries heard back (a looped or half-duplex line): proves nothing about the radar */
  | { kind: "query"; ctrl: number; cmd: number }
  /** a valid frame that carries nothing the hub uses (a reply to a setting, a waveform ...) */
  | { kind: "other"; ctrl: number; cmd: number };

/** A streaming parser: feed it chunks as they arrive; it keeps a partial frame across chunks. */
export interface StreamParser {
  push(chunk: Buffer): DecodedFrame[];
  readonly counters: Readonly<ParseCounters>;
}

export interface FrameCodec {
  /** the protocol id device profiles name, e.g. `seeed-5359` */
  readonly id: string;
  createParser(opts?: { maxDataLength?: number }): StreamParser;
  /** Asks for a sign of life whose answer cannot be mistaken for the query's own echo (on a UART-to-RS-485
   * pair the hub hears what it sends). */
  livenessQuery(): Buffer;
  /** Asks for the product information, one frame per field. */
  productInfoQueries(): Buffer[];
}

export function emptyCounters(): ParseCounters {
  return { frames: 0, bytes: 0, noiseBytes: 0, oversize: 0, checksum: 0, tail: 0, unknown: 0, badValue: 0 };
}

// Raw Modbus blocks → engineering values, by the profile. A value outside its declared range is
// rejected with a reason, never passed on: a wrong number must not look like a reading.
import type { PollBlock, Point, Profile } from "../profiles/schema.js";

export type PointValue = number | boolean;

export interface Decoded {
  values: Record<string, PointValue>;
  /** Enum labels for points that have them. */
  labels: Record<string, string>;
  problems: string[];
}

export type BlockData = ReadonlyArray<{ block: PollBlock; data: readonly number[] }>;

function wordsAt(blocks: BlockData, fc: number, address: number, n: number): number[] | undefined {
  for (const { block, data } of blocks) {
    if (block.fc !== fc) continue;
    const off = address - block.address;
    if (off >= 0 && off + n <= block.count && data.length >= off + n) return data.slice(off, off + n);
  }
  return undefined;
}

export function widthOf(p: Point): number {
  return p.type === "u32" || p.type === "s32" || p.type === "f32" ? 2 : 1;
}

function rawOf(p: Point, words: number[]): number {
  if (p.fc === 1 || p.fc === 2) return words[0] ? 1 : 0;
  const [a, b] = p.wordOrder === "little" ? [words[1] ?? 0, words[0]!] : [words[0]!, words[1] ?? 0];
  let v: number;
  switch (p.type) {
    case "s16":
      v = (words[0]! << 16) >> 16;
      break;
    case "u32":
      v = a * 65536 + b;
      break;
    case "s32":
      v = ((a << 16) | b) >> 0;
      break;
    case "f32": {
      const buf = Buffer.alloc(4);
      buf.writeUInt16BE(a, 0);
      buf.writeUInt16BE(b, 2);
      v = buf.readFloatBE(0);
      break;
    }
    default:
      v = words[0]!;
  }
  if (p.byte === "high") v = (v >> 8) & 0xff;
  else if (p.byte === "low") v = v & 0xff;
  return v;
}

export function decodePoints(profile: Profile, blocks: BlockData): Decoded {
  const out: Decoded = { values: {}, labels: {}, problems: [] };
  for (const p of profile.points) {
    const words = wordsAt(blocks, p.fc, p.address, widthOf(p));
    if (!words) {
      out.problems.push(`${p.name}: not in the data read`);
      continue;
    }
    const raw = rawOf(p, words);
    if (p.bit !== undefined && p.fc !== 1 && p.fc !== 2) {
      out.values[p.name] = ((raw >> p.bit) & 1) === 1;
      continue;
    }
    if (p.fc === 1 || p.fc === 2 || p.type === "bool") {
      out.values[p.name] = raw !== 0;
      continue;
    }
    if (!Number.isFinite(raw)) {
      out.problems.push(`${p.name}: not a number`);
      continue;
    }
    if (p.enum) {
      const label = p.enum[String(raw)];
      if (label === undefined) {
        out.problems.push(`${p.name}: raw value ${raw} is not one the device defines`);
        continue;
      }
      out.labels[p.name] = label;
    }
    const value = raw * p.scale + p.offset;
    if (p.range && (value < p.range[0] || value > p.range[1])) {
      out.problems.push(`${p.name}: ${value}${p.unit ? ` ${p.unit}` : ""} is outside the valid range ${p.range[0]}..${p.range[1]}`);
      continue;
    }
    out.values[p.name] = Math.round(value * 1e6) / 1e6;
  }
  return out;
}

// What about a device is news for the journal, and what is only a repeat: a fault flag flipping, a tamper or
// low-battery flag appearing or going away, and a detector's reading at most once per period while nothing
// happens. A first "all fine" is not news.
import type { EventDraft } from "../../../protocol/envelope.js";
import type { Reading } from "../devices/device.js";
import type { HubDevice } from "../devices/hub-device.js";
import { faultEvent, flagEvent } from "./event-shaping.js";

export class DeviceNews {
  private readonly faultShown = new Map<string, boolean>();
  private readonly flagsShown = new Map<string, boolean>();
  private readonly lastReadingAt = new Map<string, number>();

  /** `readingEveryMs`: how often a reading is journaled when nothing is happening. */
  constructor(private readonly readingEveryMs: number) {}

  /** A reading's fault signal, when it changed since the last one (a first "no fault" is not news). */
  fault(d: HubDevice, r: Reading): EventDraft | null {
    const fault = r.signals.fault === true || r.signals.fault === 1;
    if (r.signals.fault === undefined || this.faultShown.get(d.id) === fault) return null;
    const first = !this.faultShown.has(d.id);
    this.faultShown.set(d.id, fault);
    if (first && !fault) return null;
    return faultEvent(d, fault, r.values);
  }

  /** tamper / battery_low from a device's report, when the flag changed; `key` is where the report carries it. */
  flag(d: HubDevice, type: "tamper" | "battery_low", key: string | undefined, report: Record<string, unknown>, battery: unknown): EventDraft | null {
    if (!key || typeof report[key] !== "boolean") return null;
    const on = report[key];
    const k = `${d.id}/${type}`;
    const prev = this.flagsShown.get(k);
    if (prev === on) return null;
    this.flagsShown.set(k, on);
    if (prev === undefined && !on) return null;
    return flagEvent(d, type, on, battery);
  }

  /** True when a reading of this device at `at` is due for the journal; it then counts as journaled. */
  readingDue(id: string, at: number): boolean {
    const last = this.lastReadingAt.get(id) ?? 0;
    if (at - last < this.readingEveryMs) return false;
    this.lastReadingAt.set(id, at);
    return true;
  }
}

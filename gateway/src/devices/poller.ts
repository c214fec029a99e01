// Polls each device on its own period and supervises it: no good reading within its window → offline.
import { EventEmitter } from "node:events";
import type { Device, Reading } from "./device.js";
import type { BusError } from "../transports/modbus/errors.js";

export type DeviceStatus = "starting" | "online" | "offline";

export interface DeviceHealth {
  status: DeviceStatus;
  since: number;
  lastGoodAt: number | null;
  lastError: string | null;
  lastReading: Reading | null;
  /** Problems with the last reading's values (out of range, undefined enum ...). */
  problems: string[];
}

type PollerEvents = {
  reading: [reading: Reading];
  status: [device: Device, status: DeviceStatus, reason: string];
  readFailed: [device: Device, err: BusError | Error];
  valueProblems: [device: Device, problems: string[]];
};

interface Slot {
  device: Device;
  timer?: NodeJS.Timeout;
  inFlight: boolean;
  fastUntil: number;
  fastMs: number;
  health: DeviceHealth;
}

/** The longest the supervisor sleeps, whatever the deadlines say: a bound after a clock step. */
const SUPERVISE_MAX_SLEEP_MS = 10_000;

export class Poller extends EventEmitter<PollerEvents> {
  private readonly slots = new Map<string, Slot>();
  private supervisor?: NodeJS.Timeout;
  /** When the armed supervisor fires (the poller's clock). */
  private supervisorAt = Number.POSITIVE_INFINITY;
  private running = false;

  constructor(
    devices: Device[],
    private readonly now: () => number = Date.now,
  ) {
    super();
    const t = now();
    for (const device of devices)
      this.slots.set(device.id, { device, inFlight: false, fastUntil: 0, fastMs: 0, health: { status: "starting", since: t, lastGoodAt: null, lastError: null, lastReading: null, problems: [] } });
  }

  start(): void {
    this.running = true;
    // Spread the first polls over a period so each device keeps its own place in every round.
    const slots = [...this.slots.values()];
    const spread = Math.min(...slots.map((s) => s.device.pollMs), 1000);
    slots.forEach((s, i) => this.schedule(s, Math.floor((i * spread) / slots.length)));
    this.supervise();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.supervisor);
    this.supervisor = undefined;
    for (const s of this.slots.values()) clearTimeout(s.timer);
  }

  health(id: string): DeviceHealth | undefined {
    return this.slots.get(id)?.health;
  }

  devices(): Device[] {
    return [...this.slots.values()].map((s) => s.device);
  }

  /** Poll one device faster for a while (a valve being verified) and right now. */
  hurry(id: string, periodMs: number, forMs: number): void {
    const s = this.slots.get(id);
    if (!s) return;
    s.fastMs = periodMs;
    s.fastUntil = this.now() + forMs;
    if (!s.inFlight) this.schedule(s, 0);
  }

  private schedule(s: Slot, delay: number): void {
    if (!this.running) return;
    clearTimeout(s.timer);
    s.timer = setTimeout(() => void this.pollOnce(s), delay);
  }

  private period(s: Slot): number {
    return s.fastUntil > this.now() ? Math.min(s.fastMs, s.device.pollMs) : s.device.pollMs;
  }

  private async pollOnce(s: Slot): Promise<void> {
    if (s.inFlight || !this.running) return;
    s.inFlight = true;
    const started = this.now();
    try {
      const reading = await s.device.read(this.now);
      const h = s.health;
      h.lastGoodAt = reading.at;
      h.lastReading = reading;
      h.lastError = null;
      if (reading.problems.join("|") !== h.problems.join("|") && reading.problems.length) this.emit("valueProblems", s.device, reading.problems);
      h.problems = reading.problems;
      if (h.status !== "online") this.setStatus(s, "online", h.status === "offline" ? "readings again" : "first reading");
      this.emit("reading", reading);
    } catch (e) {
      s.health.lastError = (e as Error).message;
      this.emit("readFailed", s.device, e as Error);
    } finally {
      s.inFlight = false;
      this.supervise();
      this.schedule(s, Math.max(0, this.period(s) - (this.now() - started)));
    }
  }

  /**
   * Declares offline every device whose window has passed, then sleeps until the next window ends. Run after
   * every poll too, so a device whose reads hang or fail is judged at its deadline, and a home without RS-485
   * devices has no timer at all. An offline device comes back through its own polls.
   */
  private supervise(): void {
    const t = this.now();
    let next = Number.POSITIVE_INFINITY;
    for (const s of this.slots.values()) {
      const h = s.health;
      if (h.status === "offline") continue;
      const ref = h.lastGoodAt ?? h.since;
      if (t - ref > s.device.offlineAfterMs) this.setStatus(s, "offline", h.lastError ? `no good reading for ${t - ref} ms (last error: ${h.lastError})` : `no reading for ${t - ref} ms`);
      else next = Math.min(next, ref + s.device.offlineAfterMs + 1);
    }
    this.armSupervisor(t, next);
  }

  private armSupervisor(t: number, deadline: number): void {
    if (!this.running || deadline === Number.POSITIVE_INFINITY) {
      clearTimeout(this.supervisor);
      this.supervisor = undefined;
      this.supervisorAt = Number.POSITIVE_INFINITY;
      return;
    }
    const at = Math.min(deadline, t + SUPERVISE_MAX_SLEEP_MS);
    if (this.supervisor && at === this.supervisorAt) return;
    clearTimeout(this.supervisor);
    this.supervisorAt = at;
    this.supervisor = setTimeout(() => {
      this.supervisor = undefined;
      this.supervise();
    }, Math.max(0, at - t));
    this.supervisor.unref();
  }

  private setStatus(s: Slot, status: DeviceStatus, reason: string): void {
    s.health.status = status;
    s.health.since = this.now();
    this.emit("status", s.device, status, reason);
  }
}

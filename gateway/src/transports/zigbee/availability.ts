// Supervision of Zigbee devices (invariant 6). Mains devices are pinged when they have been quiet for
// `pingMs` and are offline when the ping fails. Battery devices cannot be pinged (they sleep): each must
// check in within the window of its most demanding role, and the hub sets up their reporting so they do
// (see checkInPlan). A missed window is an `offline` event; the next frame brings it back `online`.
import { EventEmitter } from "node:events";
import type { HubRole } from "../../devices/hub-device.js";

export interface CheckIn {
  /** How often the device is asked to report (battery devices), in seconds. */
  reportS: number;
  /** Silence longer than this is an offline event, in seconds. */
  windowS: number;
}

/**
 * Defaults per role, in seconds; docs/zigbee.md explains them. Safety devices report every 5 min and are
 * offline after three missed reports plus a minute; the others every 10 min, offline after three missed.
 */
export const DEFAULT_CHECK_IN: Record<HubRole, CheckIn> = {
  smoke_detector: { reportS: 300, windowS: 960 },
  gas_detector: { reportS: 300, windowS: 960 },
  co_detector: { reportS: 300, windowS: 960 },
  sos_button: { reportS: 300, windowS: 960 },
  valve: { reportS: 300, windowS: 960 },
  siren: { reportS: 300, windowS: 960 },
  fall_detector: { reportS: 600, windowS: 1860 },
  presence: { reportS: 600, windowS: 1860 },
  breathing_monitor: { reportS: 600, windowS: 1860 },
};

/** The strictest check-in among a device's roles (a device with no role is supervised like a sensor). */
export function checkInFor(roles: readonly HubRole[], table: Record<HubRole, CheckIn> = DEFAULT_CHECK_IN): CheckIn {
  const list = roles.length ? roles.map((r) => table[r]) : [table.presence];
  return { reportS: Math.min(...list.map((c) => c.reportS)), windowS: Math.min(...list.map((c) => c.windowS)) };
}

export interface Tracked {
  id: string;
  mains: boolean;
  windowMs: number;
  /** Mains devices: a ping that resolves when the device answered. */
  ping?: () => Promise<void>;
}

interface Slot extends Tracked {
  lastSeen: number;
  online: boolean | null;
  pinging: boolean;
  lastPingAt: number;
}

type AvailabilityEvents = { status: [id: string, online: boolean, reason: string] };

/** Longest sleep between two checks when nothing is due sooner (bounds the effect of a clock step). */
export const MAX_CHECK_SLEEP_MS = 10_000;

export class Availability extends EventEmitter<AvailabilityEvents> {
  private readonly slots = new Map<string, Slot>();
  private timer?: NodeJS.Timeout;
  /** When the armed timer fires (clock of `now`), so a sooner deadline re-arms it. */
  private timerAt = Number.POSITIVE_INFINITY;
  private running = false;
  private paused = false;

  /**
   * The checks run when the next window ends or the next ping is due (at most MAX_CHECK_SLEEP_MS apart),
   * not on a fixed period: an idle hub with windows of minutes is not woken several times a second, and a
   * window is judged the moment it ends. `maxSleepMs` lowers the bound (tests with a fake clock).
   */
  constructor(
    private readonly o: { pingMs: number; maxSleepMs?: number; now?: () => number },
  ) {
    super();
  }

  private get now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Starts (or updates) supervision of one device; its window starts now unless it was seen later. */
  track(t: Tracked, lastSeen?: number): void {
    const prev = this.slots.get(t.id);
    const s: Slot = { ...t, lastSeen: Math.max(prev?.lastSeen ?? 0, lastSeen ?? 0, this.now), online: prev?.online ?? null, pinging: false, lastPingAt: 0 };
    this.slots.set(t.id, s);
    // Heard within its window (it just paired, or the hub restarted quickly): it counts as online now.
    if (s.online === null && lastSeen !== undefined && this.now - lastSeen <= t.windowMs) this.set(s, true, "first frame");
    this.arm(this.dueAt(s));
  }

  untrack(id: string): void {
    this.slots.delete(id);
  }

  seen(id: string, at = this.now): void {
    const s = this.slots.get(id);
    if (!s) return;
    s.lastSeen = Math.max(s.lastSeen, at);
    if (s.online !== true) this.set(s, true, s.online === null ? "first frame" : "heard from again");
    // Back from offline, its window runs again.
    this.arm(this.dueAt(s));
  }

  status(id: string): { online: boolean | null; lastSeen: number; windowMs: number; mains: boolean } | undefined {
    const s = this.slots.get(id);
    return s && { online: s.online, lastSeen: s.lastSeen, windowMs: s.windowMs, mains: s.mains };
  }

  /** While the coordinator is down no frame can arrive: silence then says nothing about the devices. */
  pause(): void {
    this.paused = true;
  }

  /** Windows restart from now: devices get a full window to be heard after the coordinator is back. */
  resume(): void {
    this.paused = false;
    const t = this.now;
    for (const s of this.slots.values()) s.lastSeen = Math.max(s.lastSeen, t);
    if (this.running) this.check();
  }

  start(): void {
    this.running = true;
    this.check();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  check(): void {
    clearTimeout(this.timer);
    this.timerAt = Number.POSITIVE_INFINITY;
    const t = this.now;
    let next = Number.POSITIVE_INFINITY;
    if (!this.paused)
      for (const s of this.slots.values()) {
        const quiet = t - s.lastSeen;
        if (s.mains && s.ping) {
          if (quiet >= this.o.pingMs && !s.pinging && t - s.lastPingAt >= this.o.pingMs) void this.pingOnce(s);
        } else if (quiet > s.windowMs && s.online !== false) this.set(s, false, `no frame for ${Math.round(quiet / 1000)} s (check-in window ${Math.round(s.windowMs / 1000)} s)`);
        next = Math.min(next, this.dueAt(s));
      }
    this.arm(next);
  }

  /**
   * When this device next needs a check (clock of `now`): a mains device's next ping, a battery device's end
   * of window; never for one already offline (its next frame is what changes it). A frame moves these later,
   * so the timer already armed stays (it fires early and re-arms), unless the device was offline.
   */
  private dueAt(s: Slot): number {
    // A ping in flight (Z-Stack gives up on an unreachable device after ~17 s) re-arms when it ends.
    if (s.mains && s.ping) return s.pinging ? Number.POSITIVE_INFINITY : Math.max(s.lastSeen, s.lastPingAt) + this.o.pingMs;
    return s.online === false ? Number.POSITIVE_INFINITY : s.lastSeen + s.windowMs + 1;
  }

  /** Makes sure a check runs by `at` (and within the longest sleep); a later `at` keeps the timer armed. */
  private arm(at: number): void {
    if (!this.running) return;
    const t = this.now;
    const when = Math.min(at, t + (this.o.maxSleepMs ?? MAX_CHECK_SLEEP_MS));
    if (when >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = when;
    this.timer = setTimeout(() => this.check(), Math.max(0, when - t));
    this.timer.unref();
  }

  private async pingOnce(s: Slot): Promise<void> {
    s.pinging = true;
    s.lastPingAt = this.now;
    try {
      await s.ping!();
      this.seen(s.id);
    } catch (e) {
      if (!this.paused && this.slots.get(s.id) === s && s.online !== false) this.set(s, false, `no answer to ping after ${Math.round((this.now - s.lastSeen) / 1000)} s of silence (${(e as Error).message})`);
    } finally {
      s.pinging = false;
      if (this.slots.get(s.id) === s) this.arm(this.dueAt(s));
    }
  }

  private set(s: Slot, online: boolean, reason: string): void {
    s.online = online;
    this.emit("status", s.id, online, reason);
  }
}

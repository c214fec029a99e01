// The hub's power watch: reads the supplies every pollS, turns changes into journal events (events.ts), and
// keeps the last reading for `anxin-hub status`. A read never throws (sysfs.ts); an event the journal refuses
// is held, in order, and offered again at every later reading, so a busy or full disk delays news of a mains
// loss but does not lose it. Logs name supplies and states only: nothing here is secret or personal.
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import type { PowerConfig } from "../config/power.js";
import { powerSource, powerStep, type PowerSource, type PowerState } from "./events.js";
import { readPowerSnapshot, type BatteryStatus, type MainsState, type PowerSnapshot } from "./sysfs.js";

/** Runs fn once after ms; returns what cancels it. */
export type SetTimer = (fn: () => void, ms: number) => () => void;

export interface PowerWatchOptions {
  config: PowerConfig;
  /** The journal's append. */
  append: (d: EventDraft) => Promise<unknown>;
  log: Logger;
  now?: () => number;
  setTimer?: SetTimer;
  /** Milliseconds between reads instead of config.pollS (tests). */
  pollMs?: number;
}

export interface PowerStatus {
  mains: MainsState;
  batteryPercent: number | null;
  batteryStatus: BatteryStatus;
  batteryVoltageV: number | null;
  /** null before the first reading. */
  readAt: number | null;
  /** Where the hub draws power from, as the rules see it (a reading that cannot tell keeps the last known). */
  source: PowerSource;
  /** Every supply name found under sysfsDir. */
  supplies: string[];
  mainsSupplies: string[];
  batterySupply: string | null;
  /** Events the journal has not taken yet (offered again at each reading). */
  heldEvents: number;
}

// Changes are a few a day; this many held means the journal is down for good, and the oldest are dropped
// (said in the log) rather than growing without bound.
const MAX_HELD = 64;

const defaultTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  // The watch alone must not keep the process alive.
  t.unref();
  return () => clearTimeout(t);
};

export class PowerWatch {
  private readonly o: PowerWatchOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly setTimer: SetTimer;
  private readonly pollMs: number;
  private state: PowerState | null = null;
  private held: EventDraft[] = [];
  private running = false;
  private cancel: (() => void) | null = null;
  private inFlight: Promise<void> | null = null;
  private appendFailing = false;
  private lastSupplies: string | null = null;

  constructor(o: PowerWatchOptions) {
    this.o = o;
    this.log = o.log.child({ part: "power" });
    this.now = o.now ?? Date.now;
    this.setTimer = o.setTimer ?? defaultTimer;
    this.pollMs = o.pollMs ?? o.config.pollS * 1000;
  }

  /** Reads once (resolved when that reading's events are offered to the journal), then every pollS. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.log.info({ sysfsDir: this.o.config.sysfsDir, pollS: this.pollMs / 1000 }, "power: watching the hub's supply");
    await this.runTick();
  }

  /** Stops polling; resolves once a reading under way has finished. Held events stay unsent. */
  async stop(): Promise<void> {
    this.running = false;
    this.cancel?.();
    this.cancel = null;
    await this.inFlight;
    if (this.held.length > 0) this.log.warn({ held: this.held.length }, "power: stopped with events the journal did not take");
  }

  status(): PowerStatus {
    const s = this.state?.last;
    return {
      mains: s?.mains ?? "unknown",
      batteryPercent: s?.batteryPercent ?? null,
      batteryStatus: s?.batteryStatus ?? "unknown",
      batteryVoltageV: s?.batteryVoltageV ?? null,
      readAt: s?.readAt ?? null,
      source: this.state?.source ?? (s ? powerSource(s) : "unknown"),
      supplies: [...(s?.supplies ?? [])],
      mainsSupplies: [...(s?.mainsSupplies ?? [])],
      batterySupply: s?.batterySupply ?? null,
      heldEvents: this.held.length,
    };
  }

  private async runTick(): Promise<void> {
    const tick = this.tick();
    this.inFlight = tick;
    try {
      await tick;
    } finally {
      this.inFlight = null;
      this.schedule();
    }
  }

  private schedule(): void {
    if (!this.running) return;
    this.cancel = this.setTimer(() => {
      this.cancel = null;
      void this.runTick();
    }, this.pollMs);
  }

  private async tick(): Promise<void> {
    try {
      const c = this.o.config;
      const snap = await readPowerSnapshot({ dir: c.sysfsDir, mains: c.mains, battery: c.battery, now: this.now() });
      this.noteSupplies(snap);
      const step = powerStep(this.state, snap, c);
      this.state = step.state;
      for (const e of step.events) {
        this.log.info({ type: e.type, batteryPercent: snap.batteryPercent, mains: snap.mains }, `power: ${e.type}`);
        this.hold(e);
      }
      await this.flush();
    } catch (e) {
      // Not expected (reads do not throw, append failures are caught in flush); logged so the loop goes on.
      this.log.error({ err: (e as Error).message }, "power: reading failed");
    }
  }

  /** The supplies found, logged when they change: a HAT unplugged or a driver gone shows here. */
  private noteSupplies(s: PowerSnapshot): void {
    const key = JSON.stringify([s.supplies, s.mainsSupplies, s.batterySupply]);
    if (key === this.lastSupplies) return;
    const first = this.lastSupplies === null;
    this.lastSupplies = key;
    const found = { supplies: s.supplies, mainsSupplies: s.mainsSupplies, batterySupply: s.batterySupply };
    if (s.mainsSupplies.length === 0 && s.batterySupply === null) {
      this.log.warn(found, "power: no mains or battery supply found: a mains loss cannot be reported (docs/power.md)");
    } else if (first) {
      this.log.info(found, "power: supplies found");
    } else {
      this.log.info(found, "power: the supplies changed");
    }
  }

  private hold(e: EventDraft): void {
    this.held.push(e);
    if (this.held.length > MAX_HELD) {
      const dropped = this.held.splice(0, this.held.length - MAX_HELD);
      this.log.error({ dropped: dropped.length, types: dropped.map((d) => d.type) }, "power: journal unavailable too long; oldest power events dropped");
    }
  }

  /** Offers the held events in order; stops at the first refusal and keeps it and the rest for the next reading. */
  private async flush(): Promise<void> {
    while (this.held.length > 0) {
      const e = this.held[0]!;
      try {
        await this.o.append(e);
      } catch (err) {
        const detail = { err: String((err as Error)?.message ?? err).slice(0, 200), type: e.type, held: this.held.length };
        if (!this.appendFailing) this.log.warn(detail, "power: journal append failed; the event is kept and offered again at the next reading");
        else this.log.debug(detail, "power: journal append failed again");
        this.appendFailing = true;
        return;
      }
      this.held.shift();
      if (this.appendFailing) {
        this.appendFailing = false;
        this.log.info({ type: e.type, held: this.held.length }, "power: journal append works again");
      }
    }
  }
}

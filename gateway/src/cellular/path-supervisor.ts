// Which path the hub's events take, and the last resort for alarms. The broadband path (MQTT) is down once its
// connection has been lost for `primary.downAfterS`, or once something sent over it has waited
// `primary.ackTimeoutS` with no ack from the relay (a broker that takes events and answers nothing is no path).
// Then:
//  - the MQTT session moves to the module's data session when it has one (AT+CGPADDR: the socket binds to that
//    address), and moves back once a plain connection to the broker opens again (probed every data.probeEveryS);
//  - every alarm not yet acknowledged goes as one SMS to the relay's inbound number (protocol/sms-compact.ts):
//    at once when no data session carries it, after data.waitS without an ack when one does;
//  - after primary.noticeAfterS the hub journals `primary_path_down` (and texts it when no data session carries
//    it), so the relay can tell a home on its second path from a silent one; `primary_path_restored` follows.
// The journal is untouched by any of this: an event leaves it only on the relay's ack over MQTT (invariant 4),
// so what went by SMS is sent in full once a session is back, and the relay folds the two by the event id.
// A periodic test (test.everyH) texts a `second_path_test` so a dead SIM is found before the day it is needed.
import { readFile, writeFile, rename } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { Envelope, EventDraft, Severity } from "../../../protocol/envelope.js";
import { encodeCompactAlarm } from "../../../protocol/sms-compact.js";
import type { CellularConfig } from "../config/cellular.js";
import type { UplinkStatus } from "../uplink/uplink.js";
import type { SentSms } from "./at-modem.js";
import { CELLULAR_DEVICE_ID } from "./status.js";

export type PathMode = "primary" | "down" | "cellular_data";

export interface PathUplink {
  status(): UplinkStatus;
  bindTo(address: string | null): void;
}

export interface PathModem {
  canSend(): boolean;
  sendSms(text: string): Promise<SentSms>;
  dataAddress(): Promise<string | null>;
  status(): { state: string; error?: string };
}

export interface PathSupervisorOptions {
  config: CellularConfig;
  uplink: PathUplink;
  modem: PathModem;
  /** The hub's signing key (the SMS form's truncated HMAC). */
  key: Buffer;
  /** The daemon's journal path (it nudges the uplink and tells this supervisor of the event). */
  append: (draft: EventDraft) => Promise<Envelope>;
  /** Whether a plain connection to the broker opens (the broadband is back). */
  probePrimary: () => Promise<boolean>;
  /** Where the last test's time is kept across restarts (owner-only, like the rest of dataDir). */
  dataDir: string;
  log: Logger;
  now?: () => number;
  /** How often the paths are looked at; default 250 ms. */
  tickMs?: number;
}

export interface PathTestResult {
  ok: boolean;
  at: number;
  /** The network's message reference for the test SMS. */
  mr?: number;
  reason?: string;
}

export interface PathStatus {
  mode: PathMode;
  since: number;
  /** Why the primary path was taken as down, while it is. */
  reason?: string;
  boundTo: string | null;
  smsSent: number;
  smsFailed: number;
  /** Alarms waiting for the relay's ack, as far as this supervisor knows. */
  alarmsUnacked: number;
  lastSms: { event: string; type: string; at: number; mr: number } | null;
  lastTest: PathTestResult | null;
  nextTestAt: number | null;
}

interface Watched {
  env: Envelope;
  journaledAt: number;
  smsAt: number | null;
  /** After a failed send, not before this. */
  retryAt: number;
  failures: number;
}

const MAX_WATCHED = 1000;
const SMS_RETRY_MIN_MS = 5000;
const SMS_RETRY_MAX_MS = 60_000;
/** How long after leaving the data session before the hub asks the module for it again. */
const DATA_RETRY_MS = 15_000;
/** A reconnected broadband session with nothing to answer counts as working after this long. */
const QUIET_SESSION_OK_MS = 2000;
const RANK: Record<Severity, number> = { critical: 0, high: 1, warning: 2, info: 3 };
const STATE_FILE = "cellular-state.json";
const RETEST_AFTER_FAILURE_MS = 3600_000;

/** Why the primary path is down now, or null while it works (pure: the rule the documentation states). */
export function primaryDownReason(
  s: { connected: boolean; disconnectedSince: number | null; unansweredSince: number | null },
  now: number,
  c: { downAfterS: number; ackTimeoutS: number },
): string | null {
  if (!s.connected && s.disconnectedSince !== null && now - s.disconnectedSince >= c.downAfterS * 1000)
    return `no MQTT connection for ${Math.round((now - s.disconnectedSince) / 1000)} s`;
  if (s.connected && s.unansweredSince !== null && now - s.unansweredSince >= c.ackTimeoutS * 1000)
    return `no ack from the relay for ${Math.round((now - s.unansweredSince) / 1000)} s`;
  return null;
}

export class PathSupervisor {
  private mode: PathMode = "primary";
  private since: number;
  private downAt: number | null = null;
  private reason: string | undefined;
  private disconnectedSince: number | null;
  private noticed = false;
  private readonly watched = new Map<string, Watched>();
  private sending = false;
  private dataTry: Promise<void> | null = null;
  private lastDataTryAt = 0;
  private probing = false;
  private lastProbeAt = 0;
  /** Returns to broadband after a probe that did not last: each doubles the wait before the next probe. */
  private flaps = 0;
  private probeReturnAt: number | null = null;
  private testing: Promise<PathTestResult> | null = null;
  private lastTest: PathTestResult | null = null;
  private lastTestAt: number | null = null;
  /** After a failed test, the next one comes sooner than a week. */
  private retestAt: number | null = null;
  private readonly started: number;
  private stats = { smsSent: 0, smsFailed: 0 };
  private lastSms: PathStatus["lastSms"] = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  private readonly c: CellularConfig;

  constructor(private readonly o: PathSupervisorOptions) {
    this.now = o.now ?? Date.now;
    this.c = o.config;
    this.started = this.now();
    this.since = this.started;
    // A hub that never connects is down downAfterS after its start, as one that lost its connection.
    this.disconnectedSince = this.started;
  }

  async start(): Promise<void> {
    try {
      const saved = JSON.parse(await readFile(path.join(this.o.dataDir, STATE_FILE), "utf8")) as { lastTestAt?: unknown };
      if (typeof saved.lastTestAt === "number" && Number.isFinite(saved.lastTestAt)) this.lastTestAt = saved.lastTestAt;
    } catch {
      // First start, or a damaged file: the test is simply due.
    }
    this.timer = setInterval(() => this.tick(), this.o.tickMs ?? 250);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.testing?.catch(() => {});
  }

  /** Every journaled event: alarms are watched until the relay acknowledges them. */
  event(e: Envelope): void {
    if (e.kind !== "alarm") return;
    if (this.watched.size >= MAX_WATCHED) this.watched.delete(this.watched.keys().next().value as string);
    const at = this.now();
    this.watched.set(e.id, { env: e, journaledAt: at, smsAt: null, retryAt: at, failures: 0 });
    // An alarm while the path is down goes now, not at the next tick.
    if (this.mode === "down") this.sendDue();
  }

  /** Alarms already in the journal at start (an earlier run's, not yet acknowledged). */
  seed(events: readonly Envelope[]): void {
    for (const e of events) if (!this.watched.has(e.id)) this.event(e);
  }

  /** The relay acknowledged these events (over MQTT). */
  acked(ids: readonly string[]): void {
    for (const id of ids) this.watched.delete(id);
  }

  status(): PathStatus {
    return {
      mode: this.mode,
      since: this.since,
      ...(this.reason && this.mode !== "primary" ? { reason: this.reason } : {}),
      boundTo: this.o.uplink.status().boundTo ?? null,
      ...this.stats,
      alarmsUnacked: this.watched.size,
      lastSms: this.lastSms,
      lastTest: this.lastTest,
      nextTestAt: this.nextTestAt(),
    };
  }

  /** The second path's test: journals a `second_path_test` and texts it; a failure is journaled as a warning. */
  test(): Promise<PathTestResult> {
    this.testing ??= this.runTest().finally(() => (this.testing = null));
    return this.testing;
  }

  // --- the loop ------------------------------------------------------------------------------------

  private tick(): void {
    const t = this.now();
    const up = this.o.uplink.status();
    const connected = up.state === "connected";
    if (connected) this.disconnectedSince = null;
    else this.disconnectedSince ??= t;
    const lost = primaryDownReason({ connected, disconnectedSince: this.disconnectedSince, unansweredSince: up.unansweredSince ?? null }, t, this.c.primary);

    if (this.mode === "primary") {
      if (lost) this.enterDown(lost, t);
    } else if (this.mode === "down") {
      const sessionFor = up.lastConnectAt === null ? 0 : t - up.lastConnectAt;
      const answered = up.lastAckAt !== null && up.lastAckAt > this.since;
      if (connected && !up.boundTo && !lost && (answered || (up.inFlight === 0 && sessionFor >= QUIET_SESSION_OK_MS))) this.enterPrimary(t);
      else if (this.c.data.enabled && !this.dataTry && t - this.lastDataTryAt >= DATA_RETRY_MS) this.tryData();
    } else if (lost) {
      // The data session fails too: SMS is all that is left; the broadband may come back on its own.
      this.o.uplink.bindTo(null);
      this.setMode("down", t, `data session: ${lost}`);
    } else if (!this.probing && t - this.lastProbeAt >= this.c.data.probeEveryS * 1000 * 2 ** Math.min(this.flaps, 5)) this.probe();
    // A return to broadband that has held a minute ends the backoff of the probes.
    if (this.mode === "primary" && this.probeReturnAt !== null && t - this.probeReturnAt >= 60_000) {
      this.flaps = 0;
      this.probeReturnAt = null;
    }

    if (this.mode !== "primary" && !this.noticed && this.downAt !== null && t - this.downAt >= this.c.primary.noticeAfterS * 1000) void this.notice();
    this.sendDue();
    const due = this.nextTestAt();
    if (due !== null && t >= due && !this.testing) void this.test();
  }

  private enterDown(reason: string, t: number): void {
    if (this.probeReturnAt !== null) this.flaps++;
    this.probeReturnAt = null;
    this.downAt = t;
    this.noticed = false;
    this.setMode("down", t, reason);
    this.o.log.warn({ reason, alarmsUnacked: this.watched.size }, "path: the broadband path is down; alarms go over the cellular module");
    if (this.c.data.enabled) this.tryData();
    this.sendDue();
  }

  private enterPrimary(t: number): void {
    const downFor = this.downAt === null ? 0 : t - this.downAt;
    const noticed = this.noticed;
    this.setMode("primary", t, undefined);
    this.downAt = null;
    this.noticed = false;
    this.o.log.info({ downForS: Math.round(downFor / 1000) }, "path: the broadband path is back");
    if (noticed) void this.o.append({ kind: "device", type: "primary_path_restored", severity: "info", device: CELLULAR_DEVICE_ID, data: { downForS: Math.round(downFor / 1000), smsSent: this.stats.smsSent } }).catch(() => {});
  }

  private setMode(mode: PathMode, t: number, reason: string | undefined): void {
    this.mode = mode;
    this.since = t;
    this.reason = reason;
  }

  private tryData(): void {
    this.lastDataTryAt = this.now();
    this.dataTry = (async () => {
      const address = await this.o.modem.dataAddress();
      if (!address || this.mode !== "down") return;
      this.o.log.warn({ address }, "path: moving the MQTT session to the cellular data session");
      this.setMode("cellular_data", this.now(), this.reason);
      this.o.uplink.bindTo(address);
      // The new session gets downAfterS of its own to come up.
      this.disconnectedSince = this.now();
    })().finally(() => (this.dataTry = null));
  }

  private probe(): void {
    this.probing = true;
    this.lastProbeAt = this.now();
    void this.o
      .probePrimary()
      .then((ok) => {
        if (!ok || this.mode !== "cellular_data") return;
        this.o.log.info("path: the broker answers over the broadband again; moving the MQTT session back");
        this.o.uplink.bindTo(null);
        this.disconnectedSince = this.now();
        this.enterPrimary(this.now());
        this.probeReturnAt = this.now();
      })
      .finally(() => (this.probing = false));
  }

  /** Which watched alarms must go by SMS now. */
  private due(t: number): Watched[] {
    if (this.mode === "primary") return [];
    const out: Watched[] = [];
    for (const w of this.watched.values()) {
      if (w.smsAt !== null || t < w.retryAt) continue;
      if (this.mode === "cellular_data" && t - Math.max(w.journaledAt, this.since) < this.c.data.waitS * 1000) continue;
      out.push(w);
    }
    return out.sort((a, b) => RANK[a.env.severity] - RANK[b.env.severity] || a.journaledAt - b.journaledAt);
  }

  /** One SMS at a time (the module takes one AT+CMGS at a time), most severe first. */
  private sendDue(): void {
    if (this.sending) return;
    const next = this.due(this.now())[0];
    if (!next) return;
    this.sending = true;
    void this.sendOne(next).finally(() => {
      this.sending = false;
      this.sendDue();
    });
  }

  private async sendOne(w: Watched): Promise<void> {
    const env = w.env;
    let text: string;
    try {
      text = encodeCompactAlarm(env, this.o.key);
    } catch (e) {
      // Commissioning checks every id fits; an event that still does not is sent in full only.
      w.smsAt = this.now();
      this.o.log.error({ event: env.id, err: (e as Error).message }, "path: alarm cannot take the SMS form");
      return;
    }
    try {
      const sent = await this.o.modem.sendSms(text);
      const at = this.now();
      w.smsAt = at;
      this.stats.smsSent++;
      this.lastSms = { event: env.id, type: env.type, at, mr: sent.mr };
      this.o.log.warn({ event: env.id, type: env.type, mr: sent.mr }, "path: alarm sent by SMS");
      // A trace for the relay and the installer; it travels over MQTT like any audit.
      await this.o.append({ kind: "audit", type: "sms_sent", severity: "info", device: CELLULAR_DEVICE_ID, data: { event: env.id, eventType: env.type, mr: sent.mr } }).catch(() => {});
    } catch (e) {
      w.failures++;
      this.stats.smsFailed++;
      w.retryAt = this.now() + Math.min(SMS_RETRY_MAX_MS, SMS_RETRY_MIN_MS * 2 ** (w.failures - 1));
      this.o.log.error({ event: env.id, err: (e as Error).message, failures: w.failures }, "path: alarm SMS not sent; trying again");
    }
  }

  private async notice(): Promise<void> {
    this.noticed = true;
    const draft: EventDraft = {
      kind: "device",
      type: "primary_path_down",
      severity: "warning",
      device: CELLULAR_DEVICE_ID,
      data: { since: this.downAt, reason: this.reason ?? "unknown", path: this.mode },
    };
    try {
      const env = await this.o.append(draft);
      // Over the data session the notice reaches the relay by itself; with SMS only, it is texted.
      if (this.mode === "down") this.watched.set(env.id, { env, journaledAt: this.now(), smsAt: null, retryAt: this.now(), failures: 0 });
    } catch (e) {
      this.o.log.error({ err: (e as Error).message }, "path: primary_path_down not journaled");
    }
  }

  private nextTestAt(): number | null {
    if (this.retestAt !== null) return this.retestAt;
    const every = this.c.test.everyH * 3600_000;
    if (this.lastTestAt !== null && this.lastTestAt > this.started - every) return this.lastTestAt + every;
    return this.started + this.c.test.firstAfterS * 1000;
  }

  private async runTest(): Promise<PathTestResult> {
    const at = this.now();
    let result: PathTestResult;
    try {
      if (!this.o.modem.canSend()) {
        const s = this.o.modem.status();
        throw new Error(`the module cannot send (${s.error ?? s.state}; see anxin-hub status)`);
      }
      const env = await this.o.append({ kind: "device", type: "second_path_test", severity: "info", device: CELLULAR_DEVICE_ID, data: { every: `${this.c.test.everyH}h` } });
      const sent = await this.o.modem.sendSms(encodeCompactAlarm(env, this.o.key));
      result = { ok: true, at, mr: sent.mr };
      this.o.log.info({ mr: sent.mr }, "path: second path test SMS sent");
    } catch (e) {
      result = { ok: false, at, reason: (e as Error).message };
      this.o.log.warn({ err: result.reason }, "path: second path test failed");
      await this.o.append({ kind: "device", type: "second_path_test_failed", severity: "warning", device: CELLULAR_DEVICE_ID, data: { reason: result.reason } }).catch(() => {});
    }
    this.lastTest = result;
    this.retestAt = result.ok ? null : at + Math.min(this.c.test.everyH * 3600_000, RETEST_AFTER_FAILURE_MS);
    if (!result.ok) return result;
    this.lastTestAt = at;
    const file = path.join(this.o.dataDir, STATE_FILE);
    await writeFile(`${file}.tmp`, JSON.stringify({ lastTestAt: at }), { mode: 0o600 })
      .then(() => rename(`${file}.tmp`, file))
      .catch((e: Error) => this.o.log.warn({ err: e.message }, "path: last test time not saved"));
    return result;
  }
}

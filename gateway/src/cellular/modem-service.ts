// The hub's cellular module as a long-lived service: opens its AT port (again and again with backoff while it
// is missing: USB modules re-enumerate after a reset), initialises it, checks SIM, registration, signal and
// operator every `statusEveryS` and on the module's own news (RDY after a reset, +CPIN, +CREG), and journals a
// maintenance event when the path's health changes (status.ts). Sends an SMS or reads the data session's
// address on request; the AT channel keeps those one at a time.
import type { Logger } from "pino";
import type { EventDraft } from "../../../protocol/envelope.js";
import type { CellularConfig } from "../config/cellular.js";
import type { AtLink } from "./at-channel.js";
import { AtModem, type SentSms } from "./at-modem.js";
import { openSerialLink } from "./serial-link.js";
import { cellularFaultEvent, cellularHealth, cellularHealthEvent, type ModemStatus, type ReportedHealth } from "./status.js";

export interface ModemServiceOptions {
  config: CellularConfig;
  append: (draft: EventDraft) => Promise<unknown>;
  log: Logger;
  now?: () => number;
  /** Replaces how the port is opened (tests). */
  openLink?: (path: string, baudRate: number) => Promise<AtLink>;
  /** Per AT command; default 5 s. */
  commandTimeoutMs?: number;
}

export interface ModemServiceStatus {
  port: string;
  /** `opening`: the port is not open yet (or again); `ready`: the module answers; `fault`: it stopped answering. */
  state: "opening" | "ready" | "fault";
  modem: ModemStatus | null;
  health: ReportedHealth | null;
  error?: string;
}

/** Failed checks in a row after which the port is closed and opened again. */
const REOPEN_AFTER_FAILURES = 3;
const REOPEN_MIN_MS = 1000;
const REOPEN_MAX_MS = 60_000;
/** A module's news (RDY, +CPIN:, +CREG:) is followed by a check this soon, once the module has settled. */
const NEWS_CHECK_MS = 1500;

export class ModemService {
  private modem: AtModem | null = null;
  private state: ModemServiceStatus["state"] = "opening";
  private last: ModemStatus | null = null;
  private reported: ReportedHealth | null = null;
  private error: string | undefined;
  private failures = 0;
  private reopenDelay = REOPEN_MIN_MS;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private checking: Promise<void> | null = null;
  private readonly now: () => number;

  constructor(private readonly o: ModemServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    void this.open();
  }

  status(): ModemServiceStatus {
    return { port: this.o.config.port, state: this.state, modem: this.last, health: this.reported, ...(this.error ? { error: this.error } : {}) };
  }

  /** Whether an SMS could go now as far as the hub knows: the module answers, has its SIM and is registered. */
  canSend(): boolean {
    return this.state === "ready" && this.last !== null && cellularHealth(this.last) === "ok";
  }

  async sendSms(text: string): Promise<SentSms> {
    const m = this.ready();
    return m.sendSms(this.o.config.relayNumber, text);
  }

  /** The data session's address (AT+CGPADDR), or null when the module has none or cannot be asked now. */
  async dataAddress(): Promise<string | null> {
    if (this.state !== "ready" || !this.modem) return null;
    try {
      return await this.modem.dataAddress(this.o.config.data.cid);
    } catch (e) {
      this.noteFailure(e as Error);
      return null;
    }
  }

  /** Checks now (a test, commissioning) and returns the result. */
  async checkNow(): Promise<ModemServiceStatus> {
    await this.check();
    return this.status();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.checking?.catch(() => {});
    await this.modem?.close().catch(() => {});
    this.modem = null;
  }

  private ready(): AtModem {
    if (this.state !== "ready" || !this.modem) throw new Error(`the cellular module on ${this.o.config.port} is not ready (${this.error ?? this.state})`);
    return this.modem;
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.state = "opening";
    try {
      const link = await (this.o.openLink ?? openSerialLink)(this.o.config.port, this.o.config.baudRate);
      if (this.stopped) return void (await link.close());
      const modem = new AtModem(link, { commandTimeoutMs: this.o.commandTimeoutMs, now: this.now });
      modem.onUrc((line) => this.onNews(line));
      this.modem = modem;
      await modem.init();
      this.state = "ready";
      this.reopenDelay = REOPEN_MIN_MS;
      this.failures = 0;
      await this.check();
    } catch (e) {
      this.noteFailure(e as Error);
      await this.modem?.close().catch(() => {});
      this.modem = null;
      this.state = "opening";
      this.schedule(this.reopenDelay, () => void this.open());
      this.reopenDelay = Math.min(REOPEN_MAX_MS, this.reopenDelay * 2);
    }
  }

  private onNews(line: string): void {
    // A module that reset itself (RDY) has echo and numeric errors back on: initialise it again.
    if (/^RDY|^\+CPIN:|^\+C(E)?REG:|^\+CFUN:/.test(line)) this.schedule(NEWS_CHECK_MS, () => void this.check(/^RDY/.test(line)));
  }

  private check(reinit = false): Promise<void> {
    this.checking ??= (async () => {
      try {
        const modem = this.ready();
        if (reinit) await modem.init();
        const s = await modem.status();
        this.last = s;
        this.failures = 0;
        this.error = undefined;
        const draft = cellularHealthEvent(this.reported, s);
        this.reported = cellularHealth(s);
        if (draft) await this.o.append(draft).catch((e: Error) => this.o.log.error({ err: e.message }, "cellular: status event not journaled"));
      } catch (e) {
        this.noteFailure(e as Error);
      } finally {
        this.checking = null;
        if (this.state === "ready") this.schedule(this.o.config.statusEveryS * 1000, () => void this.check());
      }
    })();
    return this.checking;
  }

  private noteFailure(e: Error): void {
    this.error = e.message;
    this.failures++;
    if (this.failures === 1) this.o.log.warn({ port: this.o.config.port, err: e.message }, "cellular: the module did not answer");
    if (this.reported !== "fault" && (this.state === "opening" || this.failures >= REOPEN_AFTER_FAILURES)) {
      this.reported = "fault";
      void this.o.append(cellularFaultEvent(e.message)).catch((err: Error) => this.o.log.error({ err: err.message }, "cellular: fault event not journaled"));
    }
    if (this.state === "ready" && this.failures >= REOPEN_AFTER_FAILURES) {
      this.state = "fault";
      const modem = this.modem;
      this.modem = null;
      void modem?.close().catch(() => {});
      this.schedule(this.reopenDelay, () => void this.open());
    }
  }

  private schedule(ms: number, run: () => void): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      run();
    }, ms);
    this.timer.unref();
  }
}

// Delivers pending device retirements to the hubs: the signed `retire_device` command, each send with a fresh
// id and the relay's clock (the session stamps and signs it). A hub runs a command only within 60 s of its
// `ts`, and the broker keeps nothing for an offline hub, so a retirement is sent again and again until the
// hub's answer settles it (retirement-outcomes.ts): when the hub (re)connects (its birth), and every
// `resendMs` while it is online (the store's supervision state). A hub that already retired the device
// answers `already: true`, so an extra send (two relay instances, a birth and a sweep at once) does no harm.
//
// Each send first claims its row with a conditional update (`sends` unchanged), so of several instances
// polling one store only one sends a given round.
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { ulid } from "ulid";
import { stateSchema, type HubCommandRequest } from "../../../protocol/messages.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { retirementDb, type HouseholdRetirementsTable, type RetirementDb } from "./retirement-table.js";
import { SerialPasses } from "../../../lib/daemon/serial-passes.js";

/** How often the store is looked at for retirements due (new ones go out within this of their recording). */
export const RETIRE_POLL_MS = 2_000;
/** How long a pending retirement waits for the hub's answer before it is sent again while the hub is online. */
export const RETIRE_RESEND_MS = 120_000;
/**
 * After a birth, before sending: the hub publishes its birth just before it subscribes to its command topic,
 * so a command sent at once could reach the broker before the subscription does.
 */
export const RETIRE_AFTER_BIRTH_MS = 1_000;
/** How long a birth waits for the store to show the hub online before it is forgotten (the hub left again). */
const BIRTH_WAIT_MS = 60_000;
/** Rows sent per pass at most (the rest go on the next pass). */
const BATCH = 200;
/** Births looked up per query: after a district's reconnect storm there are thousands at once. */
const BIRTHS_PER_QUERY = 500;

export interface RetirementSenderOptions {
  db: Kysely<LoopDb>;
  /** Signs and publishes a command (RelaySession.publishCommand); rejects when it cannot. */
  publish(hub: string, cmd: HubCommandRequest): Promise<void>;
  /** Whether the relay's MQTT session is up: nothing is claimed while it is down. */
  connected(): boolean;
  log: Logger;
  now?: () => number;
  pollMs?: number;
  resendMs?: number;
  afterBirthMs?: number;
}

type Row = Pick<HouseholdRetirementsTable, "id" | "hub" | "device" | "sends">;
type PendingRow = Row & Pick<HouseholdRetirementsTable, "last_sent_at">;

export class RetirementSender {
  private readonly db: Kysely<RetirementDb>;
  private readonly now: () => number;
  private readonly passes: SerialPasses;
  private kick: NodeJS.Timeout | undefined;
  /** Hubs whose birth this instance saw, and when: their pending retirements go again once the store has them online. */
  private readonly births = new Map<string, number>();

  constructor(private readonly o: RetirementSenderOptions) {
    this.db = retirementDb(o.db);
    this.now = o.now ?? Date.now;
    this.passes = new SerialPasses({ everyMs: o.pollMs ?? RETIRE_POLL_MS, what: "retirements: send pass", log: o.log, pass: () => this.pass() });
  }

  start(): void {
    this.passes.start();
  }

  /** Stops the timers and waits for a send under way. */
  async stop(): Promise<void> {
    clearTimeout(this.kick);
    await this.passes.stop();
  }

  /** A message on `anxin/v1/{hub}/state`: after a birth, the hub's pending retirements go again (shortly). */
  onState(hub: string, payload: Buffer): void {
    if (this.passes.isStopped || !isBirth(payload)) return;
    this.births.set(hub, this.now());
    if (this.kick) return;
    this.kick = setTimeout(() => {
      this.kick = undefined;
      void this.sweep();
    }, this.o.afterBirthMs ?? RETIRE_AFTER_BIRTH_MS);
    this.kick.unref();
  }

  /**
   * One pass: for each hub born at least afterBirthMs ago, what it was not sent since it could receive it;
   * then whatever was never sent, or not answered within resendMs. Only to hubs the store has online: a birth
   * followed by the will (the hub came and went) sends nothing.
   */
  sweep(): Promise<void> {
    return this.passes.run();
  }

  private async pass(): Promise<void> {
    const settle = this.o.afterBirthMs ?? RETIRE_AFTER_BIRTH_MS;
    const ready = [...this.births].filter(([, at]) => this.now() - at >= settle);
    for (let i = 0; i < ready.length && !this.passes.isStopped; i += BIRTHS_PER_QUERY) {
      const chunk = ready.slice(i, i + BIRTHS_PER_QUERY);
      const online = await this.onlineOf(chunk.map(([hub]) => hub));
      const served = new Map<string, number>();
      for (const [hub, at] of chunk) {
        if (online.has(hub)) served.set(hub, at + settle);
        // The store may not have the birth yet; a hub gone again is dropped after a while.
        else if (this.now() - at > BIRTH_WAIT_MS) this.births.delete(hub);
      }
      if (served.size === 0) continue;
      for (const hub of served.keys()) this.births.delete(hub);
      // Also what went out between the birth and the subscription: it may have reached nobody.
      const rows = await this.pendingOf([...served.keys()]);
      await this.sendAll(rows.filter((r) => r.last_sent_at === null || Number(r.last_sent_at) < (served.get(r.hub) as number)));
    }
    // A hub still in `births` is served by its birth, once it can receive: not twice.
    if (!this.passes.isStopped) await this.sendAll((await this.due()).filter((r) => !this.births.has(r.hub)));
  }

  /** Of these hubs, those active and online in the store. */
  private async onlineOf(hubs: string[]): Promise<Set<string>> {
    const rows = await this.db.selectFrom("hubs").select("id").where("id", "in", hubs).where("status", "=", "active").where("online", "=", 1).execute();
    return new Set(rows.map((r) => r.id));
  }

  /** These hubs' pending retirements (few: a retirement follows a withdrawn consent). */
  private pendingOf(hubs: string[]): Promise<PendingRow[]> {
    return this.db
      .selectFrom("household_retirements")
      .select(["id", "hub", "device", "sends", "last_sent_at"])
      .where("state", "=", "pending")
      .where("hub", "in", hubs)
      .where("device", "is not", null)
      .orderBy("id")
      .execute();
  }

  private due(): Promise<Row[]> {
    const before = this.now() - (this.o.resendMs ?? RETIRE_RESEND_MS);
    return this.db
      .selectFrom("household_retirements as r")
      .innerJoin("hubs as h", "h.id", "r.hub")
      .select(["r.id", "r.hub", "r.device", "r.sends"])
      .where("r.state", "=", "pending")
      .where("r.device", "is not", null)
      .where("h.status", "=", "active")
      .where("h.online", "=", 1)
      .where((eb) => eb.or([eb("r.last_sent_at", "is", null), eb("r.last_sent_at", "<=", before)]))
      .orderBy("r.id")
      .limit(BATCH)
      .execute();
  }

  private async sendAll(rows: Row[]): Promise<void> {
    for (const r of rows) {
      if (this.passes.isStopped || !this.o.connected()) return;
      await this.send(r);
    }
  }

  private async send(r: Row): Promise<void> {
    const id = `retire-${ulid(this.now())}`;
    const at = this.now();
    const claimed = await this.db
      .updateTable("household_retirements")
      .set({ sends: Number(r.sends) + 1, last_sent_at: at, command_id: id })
      .where("id", "=", r.id)
      .where("state", "=", "pending")
      .where("sends", "=", r.sends)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return;
    try {
      await this.o.publish(r.hub, { cmd: "retire_device", id, device: r.device as string, reason: "consent_withdrawn" });
      this.o.log.info({ hub: r.hub, device: r.device, command: id, sends: Number(r.sends) + 1 }, "retirements: retire_device sent");
    } catch (err) {
      // Claimed but not sent: it is due again after resendMs, or at the hub's next birth.
      this.o.log.warn({ hub: r.hub, device: r.device, err: err instanceof Error ? err.message : String(err) }, "retirements: retire_device not sent");
    }
  }
}

function isBirth(payload: Buffer): boolean {
  try {
    const s = stateSchema.safeParse(JSON.parse(payload.toString("utf8")));
    return s.success && s.data.online;
  } catch {
    return false;
  }
}

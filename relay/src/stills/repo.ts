// The stills' rows: what an upload needs to know first (the home's camera consent, the alarm's incident), the
// insert that refuses a replayed id, the reads of the console, and the retention sweep.
import type { Kysely } from "kysely";
import { householdDb } from "../households/tables.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import { stillsDb, type StillsTable } from "./table.js";

export const HOUR_MS = 3_600_000;

/** The latest consent record for the camera of the home this hub serves; none recorded: false. */
export async function cameraConsented(db: Kysely<LoopDb>, hub: string): Promise<boolean> {
  const h = householdDb(db);
  const r = await h
    .selectFrom("household_consents as c")
    .innerJoin("households as hh", "hh.id", "c.household_id")
    .select(["c.granted"])
    .where("hh.hub", "=", hub)
    .where("c.device", "=", "camera")
    .orderBy("c.at", "desc")
    .orderBy("c.id", "desc")
    .executeTakeFirst();
  return r !== undefined && Number(r.granted) === 1;
}

export type AlarmLink = { ok: true; incidentId: string } | { ok: false; code: "unknown_event" | "not_alarm" | "no_incident" };

/**
 * The incident an alarm event of `hub` opened or joined. An event not stored (yet: the alarm travels over
 * MQTT, the still over HTTPS) is `unknown_event`, which the hub tries again later.
 */
export async function incidentOfAlarm(db: Kysely<LoopDb>, hub: string, eventId: string): Promise<AlarmLink> {
  const ev = await db.selectFrom("events").select(["hub", "kind"]).where("id", "=", eventId).executeTakeFirst();
  if (!ev || ev.hub !== hub) return { ok: false, code: "unknown_event" };
  if (ev.kind !== "alarm") return { ok: false, code: "not_alarm" };
  const opened = await db.selectFrom("incidents").select("id").where("event_id", "=", eventId).where("hub", "=", hub).executeTakeFirst();
  if (opened) return { ok: true, incidentId: opened.id };
  // An alarm joining an open incident is in its timeline (joined, or new evidence) with its event id.
  const joined = await db
    .selectFrom("incident_timeline as t")
    .innerJoin("incidents as i", "i.id", "t.incident_id")
    .select("i.id")
    .where("i.hub", "=", hub)
    .where("t.detail", "like", `%"eventId":"${eventId}"%`)
    .orderBy("t.at")
    .executeTakeFirst();
  return joined ? { ok: true, incidentId: joined.id } : { ok: false, code: "no_incident" };
}

export async function countStillsOfEvent(db: Kysely<LoopDb>, eventId: string): Promise<number> {
  const r = await stillsDb(db).selectFrom("anxin_stills").select((eb) => eb.fn.countAll<number>().as("n")).where("event_id", "=", eventId).executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** False when the id is stored already (a replay). */
export async function insertStill(db: Kysely<LoopDb>, row: StillsTable): Promise<boolean> {
  const got = await stillsDb(db).insertInto("anxin_stills").values(row).onConflict((oc) => oc.column("id").doNothing()).returning("id").execute();
  return got.length === 1;
}

export interface StillMeta {
  id: string;
  eventId: string;
  index: number;
  takenAt: number;
  receivedAt: number;
  bytes: number;
  /** When the sweep deletes it. */
  expiresAt: number;
}

const meta = (r: Omit<StillsTable, "data" | "hub" | "incident_id" | "sha256">, retentionMs: number): StillMeta => ({
  id: r.id,
  eventId: r.event_id,
  index: Number(r.idx),
  takenAt: Number(r.taken_at),
  receivedAt: Number(r.received_at),
  bytes: Number(r.size),
  expiresAt: Number(r.received_at) + retentionMs,
});

/** The incident's stills still within retention, in the order they were taken. */
export async function listStills(db: Kysely<LoopDb>, incidentId: string, now: number, retentionMs: number): Promise<StillMeta[]> {
  const rows = await stillsDb(db)
    .selectFrom("anxin_stills")
    .select(["id", "event_id", "idx", "taken_at", "received_at", "size"])
    .where("incident_id", "=", incidentId)
    .where("received_at", ">", now - retentionMs)
    .orderBy("taken_at")
    .orderBy("idx")
    .orderBy("id")
    .execute();
  return rows.map((r) => meta(r, retentionMs));
}

/** One still of the incident, within retention; undefined otherwise. */
export async function getStill(db: Kysely<LoopDb>, incidentId: string, id: string, now: number, retentionMs: number): Promise<{ meta: StillMeta; data: Buffer; hub: string } | undefined> {
  const r = await stillsDb(db).selectFrom("anxin_stills").selectAll().where("id", "=", id).where("incident_id", "=", incidentId).where("received_at", ">", now - retentionMs).executeTakeFirst();
  return r && { meta: meta(r, retentionMs), data: Buffer.from(r.data), hub: r.hub };
}

/** Deletes every still older than the retention; the number deleted. */
export async function sweepStills(db: Kysely<LoopDb>, now: number, retentionMs: number): Promise<number> {
  const r = await stillsDb(db).deleteFrom("anxin_stills").where("received_at", "<=", now - retentionMs).executeTakeFirst();
  return Number(r.numDeletedRows);
}

// What the closed-loop tests at the relay share: the care plan of one elder (Wang Lan) with her contacts'
// phone numbers, the telephony gateway's secret file, a log that keeps its lines, and a caller of the
// operator API. Each test states what its care plan has beyond the base (other contacts, its devices).
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import type { CarePlanInput } from "../../relay/src/careplans/schema.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";

/** The phone numbers of the elder, her contacts and the on-site team. */
export const PHONES = {
  elder: "+8613800000000",
  son: "+8613800000001",
  daughter: "+8613800000002",
  niece: "+8613800000003",
  committee: "+8613800000004",
  firestation: "+8613800000005",
  upstairs: "+8613800000006",
  onsite: "+8613800000009",
} as const;

type Contact = NonNullable<CarePlanInput["contacts"]>[number];
export type ContactId = "son" | "daughter" | "niece" | "committee" | "firestation" | "upstairs";

/** Every contact the fixture knows, in the care plan's (and so the person policy's) order. */
const CONTACTS: Record<ContactId, Contact> = {
  son: { id: "son", name: "Wang Wei", phone: PHONES.son, role: "emergency_contact" },
  daughter: { id: "daughter", name: "Wang Fang", phone: PHONES.daughter, role: "emergency_contact" },
  niece: { id: "niece", name: "Li Na", phone: PHONES.niece, role: "emergency_contact" },
  committee: { id: "committee", name: "Zhao Min", phone: PHONES.committee, role: "neighbourhood_committee" },
  firestation: { id: "firestation", name: "Duty desk", phone: PHONES.firestation, role: "property_fire_station" },
  upstairs: { id: "upstairs", name: "Chen Jie", phone: PHONES.upstairs, role: "relative_neighbour" },
};

/** The named contacts, in the order given. */
export function contacts(...ids: ContactId[]): Contact[] {
  return ids.map((id) => ({ ...CONTACTS[id] }));
}

/** Wang Lan's care plan: all six contacts, the on-site team, no devices; `overrides` replace whole fields. */
export function carePlan(overrides: Partial<CarePlanInput> = {}): CarePlanInput {
  return {
    elder: { name: "Wang Lan", phone: PHONES.elder, address: "Room 302, 12 Lane 88, Dinghai Road", riskLevel: "high" },
    contacts: contacts("son", "daughter", "niece", "committee", "firestation", "upstairs"),
    onsiteTeam: { name: "Platform team B", phone: PHONES.onsite },
    language: "en",
    ...overrides,
  };
}

/** What must never reach a log or a listing: the elder's name and address, and every number in `care` (without +86). */
export function personalData(care: CarePlanInput): string[] {
  const numbers = [care.elder.phone, ...(care.contacts ?? []).map((c) => c.phone), care.onsiteTeam.phone];
  return [care.elder.name, care.elder.address, ...numbers.map((n) => n.slice(3))];
}

/** Writes the telephony gateway's shared secret to `dir`/gateway.secret (mode 0600); returns its path. */
export async function writeGatewaySecret(dir: string, secret: string): Promise<string> {
  const f = path.join(dir, "gateway.secret");
  await writeFile(f, secret, { mode: 0o600 });
  return f;
}

/** A log that keeps its lines, to prove no personal data reaches it. */
export function capturingLog() {
  const lines: string[] = [];
  const log = pino({ level: "debug" }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  return { log, lines };
}

/** One call to the relay's HTTP API, with a bearer token when given; the body as JSON (null when there is none). */
export async function api(relay: RunningRelay, token: string | undefined, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${relay.httpUrl}${p}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

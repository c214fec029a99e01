// The duty console's live queue (relay/src/console/queue) over real HTTP: a relay started in-process takes
// signed alarms through its real ingest; the queue plugin runs in a fastify app of its own on the relay's
// database, with a stand-in sign-in that reads the person from an `x-test-user` header (the real sign-in is
// tested with the console's accounts). The stream is read as plain text/event-stream off fetch. On SQLite
// always; on PostgreSQL with ANXIN_TEST_PG_URL, where a second relay instance on the same schema makes
// changes the first one's streams must see through the poll alone.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import Fastify, { type preHandlerHookHandler } from "fastify";
import { pino } from "pino";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import type { Role } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import { consoleQueuePlugin } from "../../relay/src/console/queue/plugin.js";
import { createQueueNotifier, queueNotifier, type QueueNotifier } from "../../relay/src/console/queue/notifier.js";
import { queueDb } from "../../relay/src/console/queue/table.js";
import type { ConsoleUser } from "../../relay/src/console/queue/user.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { maskAddress } from "../../relay/src/households/mask.js";
import { createHousehold } from "../../relay/src/households/store.js";
import { getIncident, getTimeline, listIncidents } from "../../relay/src/incidents/repo.js";
import { carePlan } from "../support/care-plan-fixture.js";
import { startRelayForTest, type RelayRig } from "../support/relay-rig.js";
import { waitFor } from "../support/wait.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";

/** The bound the queue promises: a new incident reaches an open stream within this of the relay's commit. */
const ARRIVAL_BOUND_MS = 1000;

const USERS: Record<string, ConsoleUser> = {
  alice: { id: "acc-alice", username: "alice", displayName: "Alice Duty", role: "operator", actor: "console:alice" },
  bob: { id: "acc-bob", username: "bob", displayName: "Bob Night", role: "operator", actor: "console:bob" },
  root: { id: "acc-root", username: "root", displayName: "Root Admin", role: "admin", actor: "console:root" },
  ivan: { id: "acc-ivan", username: "ivan", displayName: "Ivan Installer", role: "installer", actor: "console:ivan" },
  sam: { id: "acc-sam", username: "sam", displayName: "Sam Street", role: "operator", streets: ["Street B"], actor: "console:sam" },
};

/** The stand-in sign-in: 401 without the header, 403 for a role the route does not admit. */
function authenticate(roles?: readonly Role[]): preHandlerHookHandler {
  return (req, reply, done) => {
    const user = USERS[String(req.headers["x-test-user"])];
    if (!user) return void reply.code(401).send({ error: "unauthorized", message: "sign in" });
    if (roles && !roles.includes(user.role)) return void reply.code(403).send({ error: "forbidden", message: "not for your role" });
    (req as typeof req & { consoleUser: ConsoleUser }).consoleUser = user;
    done();
  };
}

type Cleanup = () => Promise<unknown>;

/** A test's cleanups, run last-in first-out once it ends (node:test runs its own after-hooks in order). */
function cleanupsOf(t: TestContext): Cleanup[] {
  const list: Cleanup[] = [];
  t.after(async () => {
    for (const c of list.reverse()) await c().catch(() => undefined);
  });
  return list;
}

async function startConsole(cleanups: Cleanup[], db: RunningRelay["db"], notifier: QueueNotifier): Promise<string> {
  const app = Fastify();
  await app.register(consoleQueuePlugin, { db, now: Date.now, log: pino({ level: process.env.ANXIN_TEST_LOG ?? "silent" }), authenticate, notifier, heartbeatMs: 200 });
  await app.listen({ host: "127.0.0.1", port: 0 });
  cleanups.push(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function call(base: string, user: string | undefined, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${p}`, {
    method,
    headers: { ...(user ? { "x-test-user": user } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

interface SseEvent {
  event: string;
  data: any;
  /** Date.now() when the frame was parsed. */
  at: number;
}

interface SseClient {
  events: SseEvent[];
  comments: number;
  retry: number | undefined;
  /** The first event from index `from` on that `pred` accepts. */
  next(what: string, pred: (e: SseEvent) => boolean, from?: number): Promise<SseEvent>;
  close(): void;
}

/** Reads text/event-stream off fetch and parses it frame by frame (no EventSource in Node 20). */
async function openStream(cleanups: Cleanup[], base: string, user: string): Promise<SseClient> {
  const ac = new AbortController();
  const res = await fetch(`${base}/console/api/stream`, { headers: { "x-test-user": user }, signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
  const c: SseClient = {
    events: [],
    comments: 0,
    retry: undefined,
    next: (what, pred, from = 0) => waitFor(what, () => c.events.slice(from).find(pred), 5000),
    close: () => ac.abort(),
  };
  cleanups.push(async () => c.close());
  const parse = (block: string) => {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) c.comments++;
      else if (line.startsWith("retry: ")) c.retry = Number(line.slice(7));
      else if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length) c.events.push({ event, data: JSON.parse(data.join("\n")), at: Date.now() });
  };
  void (async () => {
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const dec = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
          parse(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return c;
}

let seq = 0;
interface Hub {
  hub: string;
  key: Buffer;
}

async function provisionHub(relay: RunningRelay, hub: string, household?: { address: string; street: string }): Promise<Hub> {
  const key = Buffer.from((await relay.registry.provisionDirect(hub)).key, "base64");
  const at = Date.now();
  await setCarePlan(relay.db, hub, parseCarePlan(carePlan(), "test"), { actor: "test", purpose: "setup", at });
  if (household) await createHousehold(relay.db, { hub, elder: { name: "Wang Lan" }, address: household.address, street: household.street, community: "Community 1" }, { actor: "test", purpose: "setup", at, owner: null });
  return { hub, key };
}

/** A signed alarm through the relay's real ingest; resolves once committed. */
async function alarm(relay: RunningRelay, h: Hub, type: string, severity: Envelope["severity"]): Promise<void> {
  const env = signEnvelope({ v: 1, hub: h.hub, boot: 1, seq: ++seq, id: ulid(), ts: Date.now(), kind: "alarm", type, severity, device: `${type}-1` }, h.key);
  relay.ingest.handle(h.hub, Buffer.from(JSON.stringify(env)));
  await relay.ingest.flush();
}

const incidentOf = async (relay: RunningRelay, hub: string) => waitFor(`an incident at ${hub}`, async () => (await listIncidents(relay.db, { hub }))[0]);

// Calls are never answered while a test runs: the call tree stands at its first step.
const TELEPHONY = { kind: "console", otherwise: { status: "no_answer", afterMs: 600_000 } };

type Backend = { name: string; store?: (cleanups: Cleanup[]) => Record<string, unknown> };
const BACKENDS: Backend[] = [
  { name: "SQLite" },
  {
    name: "PostgreSQL",
    store: (cleanups) => {
      const { url, schema } = tempPgSchema("anxin_queue", (f) => cleanups.push(f));
      return { kind: "postgres", url, schema, poolSize: 4 };
    },
  },
];

async function relayFor(store: Record<string, unknown> | undefined, cleanups: Cleanup[]): Promise<RelayRig> {
  const rig = await startRelayForTest({ config: { telephony: TELEPHONY, ...(store ? { store } : {}) } });
  cleanups.push(() => rig.stop());
  return rig;
}

for (const b of BACKENDS) {
  test(`the queue: order and masking, a new incident on the stream within ${ARRIVAL_BOUND_MS} ms, taking, roles and streets, closing [${b.name}]`, async (t) => {
    if (b.store && !PG_URL) return t.skip(pgSkipReason("the console queue on PostgreSQL"));
    const cleanups = cleanupsOf(t);
    // The schema drop first in the list, so it runs last: after everything let go of the schema.
    const store = b.store?.(cleanups);
    const rig = await relayFor(store, cleanups);
    const relay = rig.relay;
    const A_ADDRESS = "幸福路12弄3号401室";
    const hubA = await provisionHub(relay, "hub-q-a", { address: A_ADDRESS, street: "Street A" });
    const hubB = await provisionHub(relay, "hub-q-b", { address: "Room 302, No. 17 Lane 1130", street: "Street B" });
    const hubC = await provisionHub(relay, "hub-q-c"); // no household: shown by its hub id
    const base = await startConsole(cleanups, relay.db, queueNotifier);

    // Roles: installers may not see the queue; nobody signed in is a 401.
    assert.equal((await call(base, "ivan", "GET", "/console/api/incidents")).status, 403);
    assert.equal((await call(base, "ivan", "GET", "/console/api/stream")).status, 403);
    assert.equal((await call(base, "ivan", "POST", "/console/api/incidents/x/take", {})).status, 403);
    assert.equal((await call(base, undefined, "GET", "/console/api/incidents")).status, 401);
    assert.deepEqual((await call(base, "alice", "GET", "/console/api/incidents")).json, { incidents: [] });

    // A warning first, then a critical one: the critical comes first all the same.
    await alarm(relay, hubB, "inactivity", "warning");
    const welfare = await incidentOf(relay, hubB.hub);
    await alarm(relay, hubC, "sos", "critical");
    const sos = await incidentOf(relay, hubC.hub);

    const alice = await openStream(cleanups, base, "alice");
    const bob = await openStream(cleanups, base, "bob");
    const sam = await openStream(cleanups, base, "sam");
    // The stream begins with the open incidents (a reconnecting console is whole again).
    await alice.next("alice's starting rows", (e) => e.event === "incident" && e.data.id === welfare.id);
    await alice.next("alice's starting rows", (e) => e.event === "incident" && e.data.id === sos.id);

    // A gas leak: its row reaches the open stream within the bound, measured from the relay's stored time.
    const mark = alice.events.length;
    await alarm(relay, hubA, "gas", "critical");
    const gasEvent = await alice.next("the gas incident on alice's stream", (e) => e.event === "incident" && e.data.hub === hubA.hub, mark);
    const gas = gasEvent.data;
    const stored = await relay.db.selectFrom("events").select("received_at").where("hub", "=", hubA.hub).executeTakeFirstOrThrow();
    assert.equal(gas.receivedAt, Number(stored.received_at), "receivedAt is when the relay stored the first event");
    const tookMs = gasEvent.at - gas.receivedAt;
    t.diagnostic(`gas incident on the stream ${tookMs} ms after the relay stored its event`);
    assert.ok(tookMs <= ARRIVAL_BOUND_MS, `the new incident reached the stream ${tookMs} ms after the relay stored its event (bound ${ARRIVAL_BOUND_MS} ms)`);
    assert.equal(gas.type, "gas");
    assert.equal(gas.severity, "critical");
    assert.equal(gas.homeMasked, maskAddress(A_ADDRESS));
    assert.equal(gas.homeMasked, "幸福路12弄*号***室");
    assert.equal(gas.takenBy, null);

    // The call tree's first step, once the engine has claimed it.
    const running = await waitFor("the gas incident's first step under way with the next one scheduled", async () => {
      const list = (await call(base, "alice", "GET", "/console/api/incidents")).json.incidents as any[];
      const g = list.find((r) => r.id === gas.id);
      return g?.state === "confirming" && g.step?.nextAt !== undefined && list;
    });
    assert.deepEqual(
      running.map((r: any) => [r.hub, r.severity]),
      [
        [hubC.hub, "critical"],
        [hubA.hub, "critical"],
        [hubB.hub, "warning"],
      ],
      "critical first, then the oldest first",
    );
    const [sosRow, gasRow, welfareRow] = running;
    assert.equal(sosRow.homeMasked, hubC.hub, "a hub without a household shows its id");
    assert.equal(welfareRow.homeMasked, maskAddress("Room 302, No. 17 Lane 1130"));
    assert.ok(!JSON.stringify(running).includes("401室") && !JSON.stringify(running).includes("Wang"), "no flat, no name");
    const planned = JSON.parse((await relay.db.selectFrom("incidents").select("plan").where("id", "=", gas.id).executeTakeFirstOrThrow()).plan).steps.length;
    assert.ok(planned > 1);
    assert.deepEqual({ ...gasRow.step, nextAt: undefined }, { label: "elder and community responders at once", index: 1, of: planned, nextAt: undefined });
    assert.ok(gasRow.step.nextAt > gasRow.receivedAt);
    // The stream told of the same change.
    await alice.next("the step on the stream", (e) => e.event === "incident" && e.data.id === gas.id && e.data.step?.nextAt === gasRow.step.nextAt);

    // Street-limited: only the homes on Street B, in the listing, the stream and for taking.
    assert.deepEqual(((await call(base, "sam", "GET", "/console/api/incidents")).json.incidents as any[]).map((r) => r.id), [welfare.id]);
    assert.equal((await call(base, "sam", "POST", `/console/api/incidents/${gas.id}/take`, {})).status, 404);

    // Taking: alice takes it; bob's stream sees it at once; the lifecycle and the call tree are untouched.
    const before = await getIncident(relay.db, gas.id);
    const bobMark = bob.events.length;
    const took = await call(base, "alice", "POST", `/console/api/incidents/${gas.id}/take`, {});
    assert.equal(took.status, 200);
    assert.equal(took.json.id, gas.id);
    assert.equal(took.json.takenBy.username, "alice");
    assert.equal(took.json.takenBy.displayName, "Alice Duty");
    await bob.next("alice's take on bob's stream", (e) => e.event === "incident" && e.data.id === gas.id && e.data.takenBy?.username === "alice", bobMark);
    const after = await getIncident(relay.db, gas.id);
    assert.equal(after?.state, before?.state, "taking does not change the state");
    assert.equal(after?.escalation, "running", "taking does not stop the call tree");
    assert.equal((await call(base, "alice", "POST", `/console/api/incidents/${gas.id}/take`)).status, 200, "taking one's own again is fine (no body needed)");

    // Bob: refused, then takes it over with force.
    const refused = await call(base, "bob", "POST", `/console/api/incidents/${gas.id}/take`, {});
    assert.equal(refused.status, 409);
    assert.equal(refused.json.error, "taken");
    assert.equal(refused.json.takenBy.username, "alice");
    assert.equal(refused.json.takenBy.at, took.json.takenBy.at);
    const aliceMark = alice.events.length;
    const forced = await call(base, "bob", "POST", `/console/api/incidents/${gas.id}/take`, { force: true });
    assert.equal(forced.status, 200);
    assert.equal(forced.json.takenBy.username, "bob");
    await alice.next("bob's take-over on alice's stream", (e) => e.event === "incident" && e.data.id === gas.id && e.data.takenBy?.username === "bob", aliceMark);

    // Durable, audited, and in the timeline like any operator action; the hand-over names who had it.
    const takes = await queueDb(relay.db).selectFrom("console_incident_takes").selectAll().where("incident_id", "=", gas.id).orderBy("taken_at").orderBy("id").execute();
    assert.deepEqual(
      takes.map((r) => [r.username, r.current_key, r.ended_by]),
      [
        ["alice", null, "console:bob"],
        ["bob", gas.id, null],
      ],
    );
    assert.equal(takes[1]?.previous_id, takes[0]?.id);
    const audit = (await listAudit(relay.db, { subject: gas.id })).map((e) => `${e.actor} ${e.action} ${e.purpose}`);
    assert.deepEqual(audit, ["console:alice incident.take console", "console:bob incident.take_over console"]);
    const timeline = (await getTimeline(relay.db, gas.id)).filter((e) => e.kind === "taken");
    assert.deepEqual(
      timeline.map((e) => [e.actor, e.cause, e.detail]),
      [
        ["console:alice", "taken at the console", null],
        ["console:bob", "taken over at the console", { from: "console:alice" }],
      ],
    );

    // Bad input and unknown incidents.
    const bad = await call(base, "bob", "POST", `/console/api/incidents/${gas.id}/take`, { force: "yes" });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, "bad_request");
    assert.equal(typeof bad.json.message, "string");
    const unknown = await call(base, "root", "POST", "/console/api/incidents/01NOPE/take", {});
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error, "not_found");

    // Closing: the stream says removed; a closed incident cannot be taken.
    const removedMark = alice.events.length;
    await relay.incidents.act(welfare.id, { kind: "mark_false_alarm", reason: "other" }, { actor: "operator:test" });
    await relay.incidents.act(welfare.id, { kind: "close" }, { actor: "operator:test" });
    const removed = await alice.next("removed on alice's stream", (e) => e.event === "removed", removedMark);
    assert.deepEqual(removed.data, { id: welfare.id });
    await sam.next("removed on sam's stream too (it is on Street B)", (e) => e.event === "removed" && e.data.id === welfare.id);
    assert.equal((await call(base, "alice", "POST", `/console/api/incidents/${welfare.id}/take`, {})).status, 404);
    assert.deepEqual(((await call(base, "alice", "GET", "/console/api/incidents")).json.incidents as any[]).map((r) => r.id), [sos.id, gas.id]);

    // Sam's stream carried Street B only; every stream had its retry hint and heartbeats.
    assert.ok(sam.events.length > 0 && sam.events.every((e) => (e.event === "incident" ? e.data.hub === hubB.hub : e.data.id === welfare.id)), JSON.stringify(sam.events.map((e) => e.event)));
    await waitFor("heartbeat comments", () => alice.comments > 0 && bob.comments > 0);
    assert.equal(alice.retry, 2000);
  });
}

test("a change another relay instance makes reaches this instance's streams through the poll [PostgreSQL]", async (t) => {
  if (!PG_URL) return t.skip(pgSkipReason("the two-instance console queue"));
  const cleanups = cleanupsOf(t);
  const { url, schema } = tempPgSchema("anxin_queue2", (f) => cleanups.push(f));
  const store = { kind: "postgres", url, schema, poolSize: 4 };
  const A = await relayFor(store, cleanups);
  const B = await relayFor(store, cleanups);
  const hubD = await provisionHub(A.relay, "hub-q-d", { address: "Room 9, 7 Lane 5", street: "Street A" });
  // Instance A's console hears of nothing but what its poll reads: this notifier is never called.
  const baseA = await startConsole(cleanups, A.relay.db, createQueueNotifier());
  const baseB = await startConsole(cleanups, B.relay.db, queueNotifier);
  const watcher = await openStream(cleanups, baseA, "alice");
  await waitFor("the stream open", () => watcher.retry !== undefined);

  await alarm(B.relay, hubD, "sos", "critical");
  const opened = await watcher.next("B's new incident on A's stream", (e) => e.event === "incident" && e.data.hub === hubD.hub);
  const took = await call(baseB, "bob", "POST", `/console/api/incidents/${opened.data.id}/take`, {});
  assert.equal(took.status, 200);
  await watcher.next("B's take on A's stream", (e) => e.event === "incident" && e.data.id === opened.data.id && e.data.takenBy?.username === "bob");
  await B.relay.incidents.act(opened.data.id, { kind: "confirm" }, { actor: "operator:test" });
  await watcher.next("B's confirmation on A's stream", (e) => e.event === "incident" && e.data.id === opened.data.id && e.data.state === "confirmed" && e.data.step === null);
});

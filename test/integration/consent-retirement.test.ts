// Consent withdrawn for a vital-sign radar, end to end on the wire: the real relay (embedded broker, HTTP API,
// store), and the hub played by a real MQTT client with the key it was enrolled with. The hub's commissioning
// report names its radars; the withdrawal, recorded while the hub is offline, leaves a pending retirement per
// radar and sends nothing; the hub's birth brings a `retire_device` command signed with its key; a hub that
// drops without answering gets it again, with a fresh id, when it comes back; its signed `device_retired`
// settles one radar as done and `device_retire_refused` the other as refused (with an operator alert); nothing
// is sent after that. A camera (no hub driver) and a home without a report ask the hub for nothing.
// On SQLite and, with ANXIN_TEST_PG_URL, on PostgreSQL.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import mqtt, { type MqttClient } from "mqtt";
import { monotonicFactory } from "ulid";
import type { CommissioningReport } from "../../protocol/commissioning.js";
import type { EnrolResponse } from "../../protocol/messages.js";
import { COMMAND_MAX_AGE_MS, commandSchema, verifyCommand } from "../../protocol/messages.js";
import { signEnvelope } from "../../protocol/signing.js";
import { topics } from "../../protocol/topics.js";
import { listOperatorAlerts } from "../../relay/src/alerts/operator-alerts.js";
import { addToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { commissioningDb } from "../../relay/src/commissioning/tables.js";
import { RETIRE_AFTER_BIRTH_MS, RETIRE_POLL_MS } from "../../relay/src/households/retirement-sender.js";
import { BEDBOUND } from "../support/households.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "../support/pg.js";
import { startRelayForTest, type RelayRig } from "../support/relay-rig.js";
import { sleep, waitFor } from "../support/wait.js";

const HUB = "hub-retire-1";
const BARE_HUB = "hub-retire-2";
/** Long enough for a sweep and a birth's send to have happened had anything been due. */
const QUIET_MS = RETIRE_POLL_MS + RETIRE_AFTER_BIRTH_MS + 500;

interface Backend {
  name: string;
  skip: string | false;
  store(t: TestContext): Record<string, unknown> | undefined;
}
const BACKENDS: Backend[] = [
  { name: "SQLite", skip: false, store: () => undefined },
  {
    name: "PostgreSQL",
    skip: PG_URL ? false : pgSkipReason("consent retirement on PostgreSQL"),
    store: (t) => {
      const schema = uniquePgSchema("anxin_retire");
      t.after(() => dropPgSchema(PG_URL as string, schema));
      return { kind: "postgres", url: PG_URL, schema, poolSize: 4 };
    },
  },
];

function report(household: string): CommissioningReport {
  const at = Date.now() - 3_600_000;
  return {
    v: 1,
    hub: HUB,
    household,
    plan: { version: 2, level: "high", items: [{ kind: "vital_radar", count: 2, rooms: ["bedroom"] }, { kind: "fall_radar", count: 1, rooms: ["bedroom"] }, { kind: "gas_detector", count: 1, rooms: ["kitchen"] }] },
    installer: "ivan-li",
    startedAt: at,
    finishedAt: at + 60_000,
    state: "commissioned",
    devices: [
      { id: "radar-bed", kind: "vital_radar", model: "MR60BHA2", address: "uart:/dev/ttyS1", room: "bedroom", result: "passed" },
      { id: "radar-combo", kind: "vital_radar", model: "R60ABD1", address: "uart:/dev/ttyS2", room: "bedroom", result: "passed" },
      { id: "fall-bed", kind: "fall_radar", model: "R60AFD1", room: "bedroom", result: "passed" },
      { id: "gas-kitchen", kind: "gas_detector", model: "JT-GAS-485", room: "kitchen", result: "passed" },
    ],
  };
}

/** The hub on the wire: its own MQTT connection, its key, its boot; publishes signed events. */
class PlayedHub {
  private seq = 0;
  // Event ids as the hub's journal makes them: increasing within a millisecond too. The relay stores a batch
  // in id order, so two answers sent in the same millisecond with random ids could settle in either order.
  private readonly nextId = monotonicFactory();
  readonly commands: Array<Record<string, unknown>> = [];
  private client: MqttClient | undefined;

  constructor(
    private readonly rig: RelayRig,
    private readonly enrol: EnrolResponse,
    readonly key: Buffer,
    private boot = 1,
  ) {}

  /** Connects as the hub does: will set, birth published (retained), then the ack and cmd subscriptions. */
  async connect(): Promise<void> {
    this.boot++;
    const will = { topic: topics.state(HUB), payload: Buffer.from(JSON.stringify({ online: false, boot: this.boot, ts: Date.now() })), qos: 1 as const, retain: true };
    const c = await mqtt.connectAsync(this.rig.mqttUrl, { clientId: HUB, username: this.enrol.mqtt.username, password: this.enrol.mqtt.password, reconnectPeriod: 0, clean: true, will });
    c.on("message", (t, p) => {
      if (t === topics.cmd(HUB)) this.commands.push(JSON.parse(p.toString("utf8")) as Record<string, unknown>);
    });
    await c.publishAsync(topics.state(HUB), JSON.stringify({ online: true, boot: this.boot, version: "it", heartbeatS: 60, ts: Date.now() }), { qos: 1, retain: true });
    await c.subscribeAsync({ [topics.ack(HUB)]: { qos: 1 }, [topics.cmd(HUB)]: { qos: 1 } });
    this.client = c;
    this.seq = 0;
  }

  /** The connection is lost (no DISCONNECT): the broker publishes the will. */
  drop(): void {
    this.client?.stream.destroy();
    this.client = undefined;
  }

  async send(e: { type: string; data: Record<string, unknown>; device?: string }): Promise<string> {
    const env = signEnvelope({ v: 1, hub: HUB, boot: this.boot, seq: ++this.seq, id: this.nextId(), ts: Date.now(), kind: "audit", severity: "info", ...e }, this.key);
    await this.client!.publishAsync(topics.evt(HUB), JSON.stringify(env), { qos: 1 });
    return env.id;
  }
}

for (const b of BACKENDS) {
  test(`${b.name}: a withdrawn radar consent reaches the hub as signed retire_device until the hub answers`, { skip: b.skip, timeout: 90_000 }, async (t) => {
    const store = b.store(t);
    const rig = await startRelayForTest(store ? { config: { store } } : {});
    t.after(() => rig.stop());
    const db = rig.relay.db;
    const installer = (await addToken(db, "ivan", "installer", Date.now())).token;
    const admin = (await addToken(db, "root", "admin", Date.now())).token;
    const call = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(`${rig.httpUrl}${p}`, {
        method,
        headers: { authorization: `Bearer ${installer}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = (await res.json()) as Record<string, any>;
      assert.ok(res.status < 300, `${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const retirements = async (id: string) => (await call("GET", `/v1/households/${id}`)).retirements as Array<Record<string, unknown>>;

    // A bed-bound elder consents to the vital-sign radar and a camera: both join the plan, over the bed.
    const home = (await call("POST", "/v1/households", { hub: HUB, elder: { name: "王秀英" }, address: "长寿路1130弄17号302室", street: "长寿路街道", community: "1130弄" })).id as string;
    await call("PUT", `/v1/households/${home}/assessment`, BEDBOUND);
    await call("POST", `/v1/households/${home}/consents`, { device: "vital_radar", granted: true, givenBy: "elder" });
    const granted = await call("POST", `/v1/households/${home}/consents`, { device: "camera", granted: true, givenBy: "elder" });
    assert.deepEqual(
      (granted.plan.items as Array<{ kind: string; room: string }>).filter((i) => i.kind === "vital_radar" || i.kind === "camera").map((i) => `${i.kind}@${i.room}`),
      ["vital_radar@bedroom", "camera@living"],
    );

    // The hub enrols, commissions (its signed report names two radars over the bed), then loses its connection.
    const enrol = await rig.enrolHub(HUB);
    const hub = new PlayedHub(rig, enrol, Buffer.from(enrol.key, "base64"));
    await hub.connect();
    await hub.send({ type: "commissioning_report", data: report(home) });
    await waitFor("the report stored", async () => (await commissioningDb(db).selectFrom("commissioning_reports").select("id").where("hub", "=", HUB).execute()).length === 1);
    await waitFor("the hub online", async () => (await rig.relay.store.getHub(HUB))?.online === true);
    hub.drop();
    await waitFor("the hub offline", async () => (await rig.relay.store.getHub(HUB))?.online === false);

    // A spy with the hub's credentials sees every command on its topic, sent or not to a live hub.
    const spied: Array<Record<string, unknown>> = [];
    const spy = await mqtt.connectAsync(rig.mqttUrl, { clientId: `${HUB}:spy`, username: enrol.mqtt.username, password: enrol.mqtt.password, reconnectPeriod: 0 });
    t.after(() => spy.endAsync(true));
    spy.on("message", (_t, p) => spied.push(JSON.parse(p.toString("utf8")) as Record<string, unknown>));
    await spy.subscribeAsync(topics.cmd(HUB), { qos: 1 });

    // Withdrawn while the hub is offline: pending per radar, nothing sent. The camera's withdrawal asks nothing.
    const camera = await call("POST", `/v1/households/${home}/consents`, { device: "camera", granted: false, givenBy: "elder" });
    assert.deepEqual(camera.retirements, []);
    const withdrawn = await call("POST", `/v1/households/${home}/consents`, { device: "vital_radar", granted: false, givenBy: "guardian" });
    const radar = (withdrawn.plan.items as Array<{ kind: string; retiredAt?: number }>).find((i) => i.kind === "vital_radar");
    assert.ok(radar?.retiredAt, "the plan item is retired");
    const requested = withdrawn.retirements as Array<Record<string, unknown>>;
    assert.deepEqual(
      requested.map((r) => [r.device, r.kind, r.room, r.state, r.commands]),
      [
        ["radar-bed", "vital_radar", "bedroom", "pending", 0],
        ["radar-combo", "vital_radar", "bedroom", "pending", 0],
      ],
    );
    await sleep(QUIET_MS);
    assert.deepEqual(spied, [], "nothing is sent to an offline hub");
    assert.deepEqual(
      (await retirements(home)).map((r) => [r.device, r.state, r.commands]),
      [
        ["radar-bed", "pending", 0],
        ["radar-combo", "pending", 0],
      ],
    );

    // The hub comes back: each radar's command arrives, signed with the hub's key, fresh.
    const check = (raw: Record<string, unknown>, device: string) => {
      assert.equal(verifyCommand(HUB, raw, hub.key), true, "signed with the hub's key");
      assert.equal(verifyCommand(HUB, { ...raw, device: "gas-kitchen" }, hub.key), false);
      const c = commandSchema.parse(raw);
      assert.ok(c.cmd === "retire_device");
      assert.deepEqual([c.device, c.reason], [device, "consent_withdrawn"]);
      assert.ok(Math.abs(c.ts - Date.now()) < COMMAND_MAX_AGE_MS, "within the hub's freshness window");
      return c.id;
    };
    await hub.connect();
    await waitFor("both commands at the hub", () => hub.commands.length >= 2);
    const first = new Map(hub.commands.map((c) => [c.device as string, check(c, c.device as string)]));
    assert.deepEqual([...first.keys()].sort(), ["radar-bed", "radar-combo"]);
    assert.equal(new Set(first.values()).size, 2, "one id per command");
    assert.deepEqual((await retirements(home)).map((r) => [r.state, r.commands]), [["pending", 1], ["pending", 1]]);

    // It drops without answering: at its next birth both go again, each with a new id.
    hub.drop();
    await waitFor("the hub offline", async () => (await rig.relay.store.getHub(HUB))?.online === false);
    hub.commands.length = 0;
    await hub.connect();
    await waitFor("both commands again", () => hub.commands.length >= 2);
    await sleep(300);
    assert.equal(hub.commands.length, 2, "once each per birth");
    const second = new Map(hub.commands.map((c) => [c.device as string, check(c, c.device as string)]));
    for (const [device, id] of second) assert.notEqual(id, first.get(device), `${device}: a fresh command id`);
    assert.deepEqual((await retirements(home)).map((r) => [r.state, r.commands]), [["pending", 2], ["pending", 2]]);

    // The hub answers: one radar retired, the other refused.
    const retiredEvent = await hub.send({ type: "device_retired", data: { device: "radar-bed", reason: "consent_withdrawn", command: second.get("radar-bed") } });
    const refusedEvent = await hub.send({ type: "device_retire_refused", data: { device: "radar-combo", reason: "it also serves as the fall detector over the bed", command: second.get("radar-combo") } });
    await waitFor("both settled", async () => (await retirements(home)).every((r) => r.state !== "pending"));
    const settled = await retirements(home);
    assert.deepEqual(
      settled.map((r) => [r.device, r.state, r.reason ?? null, typeof r.doneAt]),
      [
        ["radar-bed", "done", null, "number"],
        ["radar-combo", "refused", "it also serves as the fall detector over the bed", "number"],
      ],
    );
    const alerts = (await listOperatorAlerts(db, { openOnly: true })).filter((a) => a.kind === "device_retire_refused");
    assert.equal(alerts.length, 1);
    assert.match(alerts[0]!.detail, new RegExp(`household ${home} \\(hub ${HUB}\\): the hub refused to retire device radar-combo`));
    assert.ok(!alerts[0]!.detail.includes("王"), "no personal data in the alert");

    // Settled: a sweep and another birth send nothing more.
    hub.commands.length = 0;
    const sentSoFar = spied.length;
    hub.drop();
    await waitFor("the hub offline", async () => (await rig.relay.store.getHub(HUB))?.online === false);
    await hub.connect();
    await sleep(QUIET_MS);
    assert.deepEqual(hub.commands, [], "nothing after the hub answered");
    assert.equal(spied.length, sentSoFar);
    assert.equal(sentSoFar, 4, "two rounds of two commands in all");

    // Audited: the request (device and room ids only) and each answer, by the hub.
    const audit = (await listAudit(db, { subject: HUB })).filter((a) => /retire/.test(a.action));
    assert.deepEqual(
      audit.map((a) => [a.action, a.actor]),
      [
        ["household.retire_device", "installer:ivan"],
        ["household.device_retired", `hub:${HUB}`],
        ["household.device_retire_refused", `hub:${HUB}`],
      ],
    );
    assert.match(audit[0]!.purpose, /vital_radar radar-bed in bedroom: retire_device pending; vital_radar radar-combo in bedroom: retire_device pending/);
    assert.match(audit[1]!.purpose, new RegExp(`event ${retiredEvent}; household ${home}; device radar-bed; command ${second.get("radar-bed")}`));
    assert.match(audit[2]!.purpose, new RegExp(`event ${refusedEvent}.*device radar-combo`));

    // A home whose hub never reported: nothing is known to retire, and the record says so.
    const bare = (await call("POST", "/v1/households", { hub: BARE_HUB, elder: { name: "李建国" }, address: "长寿路1130弄18号101室", street: "长寿路街道", community: "1130弄" })).id as string;
    await call("PUT", `/v1/households/${bare}/assessment`, BEDBOUND);
    await call("POST", `/v1/households/${bare}/consents`, { device: "vital_radar", granted: true, givenBy: "elder" });
    const none = await call("POST", `/v1/households/${bare}/consents`, { device: "vital_radar", granted: false, givenBy: "elder" });
    assert.deepEqual(
      (none.retirements as Array<Record<string, unknown>>).map((r) => [r.device, r.room, r.state, r.reason]),
      [[null, "bedroom", "no_device", "no commissioning report from the hub: its device ids are not known"]],
    );
    assert.deepEqual((await retirements(bare)).map((r) => r.state), ["no_device"]);
    const bareAudit = (await listAudit(db, { subject: BARE_HUB })).find((a) => a.action === "household.retire_device");
    assert.match(bareAudit?.purpose ?? "", /vital_radar in bedroom: no hub device \(no commissioning report from the hub/);

    // The admin's view of the record carries the same.
    const adminView = await fetch(`${rig.httpUrl}/v1/households/${home}`, { headers: { authorization: `Bearer ${admin}` } });
    assert.deepEqual(((await adminView.json()) as { retirements: unknown[] }).retirements.length, 2);
  });
}

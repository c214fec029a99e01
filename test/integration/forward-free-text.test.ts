// Free text stays home unless a destination may receive it. A real relay (SQLite; PostgreSQL too when
// ANXIN_TEST_PG_URL is set) forwards to two real HTTP receivers: the duty platform, configured with
// `freeText: true`, and the district centre, left at the default. An operator walks one incident to closed
// with a note at every step, a summary, a dispatch naming who went and a follow-up naming the visitor, and
// marks a second one a false alarm with a note. The district centre's bodies — as received, and as stored in
// its outbox rows — hold none of those strings, nor the operator's token name, while the codes are there;
// the duty platform gets all of it.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ulid } from "ulid";
import { signEnvelope } from "../../protocol/signing.js";
import { addToken } from "../../relay/src/auth/tokens.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { api, carePlan, writeGatewaySecret } from "../support/care-plan-fixture.js";
import { PG_URL, pgSkipReason, tempPgSchema } from "../support/pg.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { startTelephonyStub } from "../support/telephony-stub.js";
import { waitFor } from "../support/wait.js";
import { startWebhookStub, type WebhookStub } from "../support/webhook-stub.js";

const GW_SECRET = "free-text-test-gateway-secret-0123456789";
const HOOK_SECRET = "free-text-test-hook-secret-0123456789";
const CARE = carePlan({ devices: { "smoke-1": { model: "acme-smoke-9" } } });

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/** Strings typed by people in this test: unique, so finding one anywhere is proof it leaked. */
function typed() {
  const u = () => randomBytes(6).toString("hex");
  return {
    ackNote: `ack-note-${u()} calling Mrs Wang's son by hand`,
    dispatchNote: `dispatch-note-${u()}`,
    dispatchBy: `committee member Zhou ${u()}`,
    dispatchRef: `119-${u()}`,
    ticketRef: `QX-${u()}`,
    summary: `summary-${u()} kitchen fire put out, elder unhurt`,
    visitedBy: `community worker Liu ${u()}`,
    followUpNote: `follow-up-note-${u()}`,
    closeNote: `close-note-${u()} loop closed`,
    falseAlarmNote: `false-alarm-note-${u()} burnt toast`,
  };
}

async function deliverAll(relay: RunningRelay, hooks: WebhookStub[], rows: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    await relay.forwarder.runDue();
    if (hooks.reduce((n, h) => n + h.delivered.length, 0) >= rows) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not every forward was delivered: ${hooks.map((h) => h.delivered.length).join(" + ")} of ${rows}`);
}

for (const backend of ["sqlite", "postgres"] as const) {
  test(`${backend}: notes, summaries and who visited reach only the destination allowed free text`, async (t) => {
    if (backend === "postgres" && !PG_URL) return t.skip(pgSkipReason("free text forwarding on PostgreSQL"));
    const store = backend === "postgres" ? { kind: "postgres", ...tempPgSchema("anxin_ftxt", (f) => cleanups.push(f)), poolSize: 4 } : undefined;
    const clock = { now: Date.now() };
    const gw = await startTelephonyStub({ secret: GW_SECRET, now: () => clock.now, defaultStep: { status: "no_answer", silent: true } });
    const platform = await startWebhookStub({ secret: HOOK_SECRET, now: () => clock.now });
    const district = await startWebhookStub({ secret: HOOK_SECRET, now: () => clock.now });
    const tmp = await mkdtemp(path.join(os.tmpdir(), "anxin-ftxt-"));
    cleanups.push(() => gw.close(), () => platform.close(), () => district.close(), () => rm(tmp, { recursive: true, force: true }));
    const rig = await startRelayForTest({
      now: () => clock.now,
      config: {
        ...(store ? { store } : {}),
        telephony: { kind: "http", url: gw.url, secretFile: await writeGatewaySecret(tmp, GW_SECRET), retries: 0, backoffMs: 0, timeoutMs: 3000 },
        escalation: { pollMs: 50 },
        forwarders: {
          pollMs: 60_000, // the test drives delivery itself
          destinations: [
            { name: "duty_platform", url: platform.url, secret: HOOK_SECRET, freeText: true },
            { name: "district_centre", url: district.url, secret: HOOK_SECRET },
          ],
        },
      },
    });
    cleanups.push(() => rig.stop());
    const relay = rig.relay;
    const hub = `hub-ftxt-${backend}`;
    const key = Buffer.from((await relay.registry.provisionDirect(hub)).key, "base64");
    await setCarePlan(relay.db, hub, parseCarePlan(CARE, "test"), { actor: "test", purpose: "setup", at: clock.now });
    const tokenName = `wang.xiuying@district-${randomBytes(3).toString("hex")}`;
    const tok = await addToken(relay.db, tokenName, "operator", clock.now);
    const s = typed();

    let seq = 0;
    const alarm = async () => {
      const env = signEnvelope({ v: 1, hub, boot: 1, seq: ++seq, id: ulid(), ts: clock.now, kind: "alarm", type: "smoke", severity: "critical", device: "smoke-1" }, key);
      relay.ingest.handle(hub, Buffer.from(JSON.stringify(env)));
      await relay.ingest.flush();
      // The first call moves it to confirming; act after that, as a duty operator would.
      return waitFor("the calls start", async () => {
        const list = await api(relay, tok.token, "GET", "/v1/incidents");
        const inc = list.json.incidents.find((i: { hub: string; state: string }) => i.hub === hub && i.state === "confirming");
        return inc ? (inc.id as string) : false;
      });
    };
    const ok = async (id: string, p: string, body: unknown) => {
      const r = await api(relay, tok.token, "POST", `/v1/incidents/${id}/${p}`, body);
      assert.equal(r.status, 200, `${p}: ${JSON.stringify(r.json)}`);
    };

    const first = await alarm();
    await ok(first, "acknowledge", { note: s.ackNote });
    await ok(first, "confirm", {});
    await ok(first, "dispatches", { service: "door", by: s.dispatchBy, ref: s.dispatchRef, note: s.dispatchNote });
    await ok(first, "tickets", { centre: "district", ref: s.ticketRef });
    await ok(first, "resolve", { summary: s.summary });
    await ok(first, "follow-up", { visitedBy: s.visitedBy, outcome: "needs_support", note: s.followUpNote });
    await ok(first, "close", { note: s.closeNote });
    const second = await alarm();
    await ok(second, "false-alarm", { reason: "cooking_smoke", note: s.falseAlarmNote });
    await ok(second, "close", {});

    const outbox = await (relay.db as any).selectFrom("forward_outbox").select(["destination", "payload", "idempotency_key"]).execute() as Array<{ destination: string; payload: string; idempotency_key: string }>;
    const stored = (d: string) => outbox.filter((r) => r.destination === d);
    assert.ok(stored("district_centre").length >= 12, `district rows: ${stored("district_centre").length}`);
    assert.equal(stored("district_centre").length, stored("duty_platform").length, "both get every alarm update");
    await deliverAll(relay, [platform, district], outbox.length);
    assert.ok(platform.requests.every((r) => r.signatureOk) && district.requests.every((r) => r.signatureOk));

    // Nothing anybody typed, nor the operator's token name, reaches the district centre: not in what it
    // received, and not in the outbox rows it was sent from.
    const secrets = [...Object.values(s), tokenName];
    const districtRaw = district.delivered.map((r) => r.body).join("\n");
    const districtRows = stored("district_centre").map((r) => r.payload).join("\n");
    for (const text of secrets) {
      assert.ok(!districtRaw.includes(text), `district centre received "${text}"`);
      assert.ok(!districtRows.includes(text), `district centre's outbox row holds "${text}"`);
    }
    // The structured fields are all there.
    type Body = { freeText: boolean; incident: { id: string; state: string; falseAlarmReason: string | null; closeReason: string | null }; update: { kind: string; to: string | null; actor: string; detail: Record<string, unknown> | null } };
    const dBodies = district.delivered.map((r) => r.json as Body);
    assert.ok(dBodies.every((b) => b.freeText === false));
    const byKind = (bodies: Body[], id: string, kind: string) => bodies.filter((b) => b.incident.id === id && b.update.kind === kind);
    const dDispatch = byKind(dBodies, first, "dispatch")[0] ?? byKind(dBodies, first, "transition").find((b) => b.update.to === "responding");
    assert.equal(dDispatch?.update.detail?.service, "door");
    assert.equal(byKind(dBodies, first, "transition").find((b) => b.update.to === "coordinated")?.update.detail?.centre, "district");
    const dFollowUp = dBodies.find((b) => b.incident.id === first && b.update.detail?.outcome !== undefined);
    assert.equal(dFollowUp?.update.detail?.outcome, "needs_support");
    const dClosed = dBodies.find((b) => b.incident.id === first && b.update.to === "closed");
    assert.deepEqual([dClosed?.incident.state, dClosed?.incident.closeReason, dClosed?.update.detail], ["closed", "follow_up_done", null]);
    const dFalse = dBodies.find((b) => b.incident.id === second && b.update.to === "false_alarm");
    assert.deepEqual([dFalse?.incident.falseAlarmReason, dFalse?.update.detail?.reason], ["cooking_smoke", "cooking_smoke"]);
    assert.equal(dBodies.find((b) => b.incident.id === second && b.update.to === "closed")?.incident.closeReason, "false_alarm");
    const dAck = byKind(dBodies, first, "acknowledged")[0];
    assert.equal(dAck?.update.actor, `operator:${tok.id}`, "who acted: the role and the token's id, not its name");
    assert.ok(dBodies.some((b) => b.update.actor === `hub:${hub}`), "hub and system actors are kept");

    // The duty platform is allowed free text: it gets every note, the summary, who went and who visited.
    const platformRaw = platform.delivered.map((r) => r.body).join("\n");
    for (const text of secrets) assert.ok(platformRaw.includes(text), `duty platform did not receive "${text}"`);
    const pBodies = platform.delivered.map((r) => r.json as Body);
    assert.ok(pBodies.every((b) => b.freeText === true));
    assert.equal(byKind(pBodies, first, "acknowledged")[0]?.update.actor, `operator:${tokenName}`);
    assert.equal(pBodies.find((b) => b.incident.id === first && b.update.to === "closed")?.update.detail?.note, s.closeNote);
  });
}

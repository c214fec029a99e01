// Spoken prompts end to end with the real relay: prompts rendered with espeak-ng (Mandarin) into a temp dir;
// the real hub daemon with a (virtual) Zigbee one-key call button, voice on, playing with aplay to an ALSA file
// device; the relay with a care plan and a telephony stub. One press: "呼叫已发出" at once (local), then
// "平台已收到" after the relay's signed ack of that very event, then, once the son pressed 1 ("I will go to the
// door") in the call tree, the relay's signed `announce` command and "您的家人正在赶来" — in that order, each
// played to the end by aplay, the last one's samples in the file the ALSA device wrote.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../lib/daemon/logger.js";
import { startHub } from "../../gateway/src/daemon/run.js";
import { provision } from "../../gateway/src/uplink/provision.js";
import { streamDaemon } from "../../gateway/src/control/client.js";
import { renderPrompts } from "../../gateway/src/voice/render.js";
import { promptFile } from "../../gateway/src/voice/prompts.js";
import type { Envelope } from "../../protocol/envelope.js";
import { listIncidents, getTimeline } from "../../relay/src/incidents/repo.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import { startRelayForTest } from "../support/relay-rig.js";
import { startTelephonyStub } from "../support/telephony-stub.js";
import { waitFor } from "../support/hub-rig.js";
import { installFakeZigbee } from "../support/zigbee/rig.js";
import * as products from "../support/zigbee/products.js";
import { pcmOf } from "../support/wav.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
const log = () => createLogger({ name: "test", level: process.env.ANXIN_TEST_LOG ?? "silent" });

const missing = (program: string) => spawnSync(program, ["--version"], { encoding: "utf8" }).error !== undefined;
const skip = missing("espeak-ng") ? "espeak-ng is not installed (apt-get install espeak-ng)" : missing("aplay") ? "aplay is not installed (apt-get install alsa-utils)" : false;

const ELDER = "+8613800000300";
const SON = "+8613800000301";

test("one press: call sent at once, platform received after the relay's ack, family coming after the son's key press", { skip, timeout: 90_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-voice-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const promptsDir = path.join(dir, "prompts");
  await renderPrompts({ dir: promptsDir, languages: ["zh-CN"], volume: 100 });

  const secret = "voice-gateway-secret-0123456789abcdef";
  const gw = await startTelephonyStub({ secret });
  cleanups.push(() => gw.close());
  const secretFile = path.join(dir, "gw.secret");
  await writeFile(secretFile, secret, { mode: 0o600 });
  const rig = await startRelayForTest({ config: { telephony: { kind: "http", url: gw.url, secretFile, retries: 0, backoffMs: 0, timeoutMs: 3000 }, escalation: { pollMs: 50 } } });
  cleanups.push(() => rig.stop());
  const hubId = "hub-voice-1";
  await setCarePlan(
    rig.relay.db,
    hubId,
    parseCarePlan({ elder: { name: "Test Elder", phone: ELDER, address: "Flat 3, Test Road", riskLevel: "low" }, contacts: [{ id: "son", name: "Test Son", phone: SON, role: "emergency_contact" }], onsiteTeam: { name: "Team", phone: "+8613800000309" }, language: "en" }, "test"),
    { actor: "test", purpose: "setup", at: Date.now() },
  );
  // The elder does not answer; the son answers a moment later and presses 1: "I will go to the door".
  gw.script(ELDER, { status: "no_answer" });
  gw.script(SON, { status: "answered", digits: "1", afterMs: 1500 });

  const sosButton = products.heimanSosHS1EB();
  const fake = installFakeZigbee({ devices: [sosButton] });
  cleanups.push(async () => fake.restore());
  const { code } = await rig.relay.registry.createClaim(hubId);
  await provision({ relay: rig.httpUrl, hub: hubId, code, dataDir: path.join(dir, "data"), secretsFile: path.join(dir, "data", "secrets.json") });
  const raw = path.join(dir, "speaker.raw");
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: ${hubId}, dataDir: ./data }
zigbee:
  adapter: zstack
  path: /dev/ttyFAKE0
  channel: 20
  devices:
    - { ieee: "${sosButton.ieee}", id: bed-sos, room: bedroom }
uplink: { reconnectMaxMs: 2000 }
voice:
  language: zh-CN
  promptsDir: ./prompts
  device: ${JSON.stringify(`file:"${raw}",raw`)}
`,
  );
  const hub = await startHub(file, { log: log() });
  cleanups.push(() => hub.stop());
  assert.ok(hub.voice, "voice is on");
  await waitFor("uplink connected", () => hub.uplink?.status().state === "connected", 15_000);
  // The installer pairs the button.
  const paired = await streamDaemon(hub.config.hub.controlSocket!, { cmd: "pair", seconds: 10, expect: [sosButton.ieee] }, (p) => {
    if ((p as { event: string }).event === "open") void sosButton.join();
  });
  assert.equal(paired.ok, true, JSON.stringify(paired));

  const pressedAt = Date.now();
  await sosButton.zoneStatus(1);
  await sosButton.zoneStatus(0);
  const played = () => hub.voice!.player.played;
  const callSent = await waitFor("call sent spoken", () => played().find((p) => p.id === "call_sent"), 10_000);
  assert.equal(callSent.ok, true, JSON.stringify(callSent));
  assert.ok(callSent.startedAt - pressedAt < 2000, `started ${callSent.startedAt - pressedAt} ms after the press`);

  const relayEvents = async () => (await rig.relay.store.listEvents({ hub: hubId, limit: 1000 })).map((r) => JSON.parse(r.payload) as Envelope);
  const sos = await waitFor("the SOS at the relay", async () => (await relayEvents()).find((e) => e.kind === "alarm" && e.type === "sos"), 10_000);
  const received = await waitFor("platform received spoken", () => played().find((p) => p.id === "platform_received"), 15_000);
  assert.equal(received.ok, true, JSON.stringify(received));
  assert.ok(hub.uplink!.status().acked >= 1 && hub.uplink!.status().lastAckAt! <= received.startedAt, "said after the relay's ack");

  const incident = await waitFor("an SOS incident", async () => (await listIncidents(rig.relay.db, { hub: hubId })).find((i) => i.type === "sos"), 10_000);
  const family = await waitFor("family coming spoken", () => played().find((p) => p.id === "family_coming"), 30_000);
  assert.equal(family.ok, true, JSON.stringify(family));
  assert.deepEqual(played().map((p) => p.id), ["call_sent", "platform_received", "family_coming"], "in that order, each once");
  assert.ok(played().every((p) => p.ok), "aplay ran each to the end");

  // The relay's side: the announcement claimed once on the incident's timeline; the hub's signed answer says it was spoken.
  const timeline = await getTimeline(rig.relay.db, incident.id);
  assert.deepEqual(timeline.filter((e) => e.kind === "announce").map((e) => e.cause), ["family_coming"]);
  assert.ok(timeline.some((e) => e.kind === "acknowledged" && e.actor === "emergency_contact:son"));
  const answer = await waitFor("the hub's announcement audit", async () => (await relayEvents()).find((e) => e.kind === "audit" && e.type === "announcement"), 10_000);
  assert.deepEqual(answer.data, { id: (answer.data as { id: string }).id, announcement: "family_coming", alarm: "sos", incident: incident.id, spoken: true });
  assert.equal(sos.hub, hubId);

  // What the ALSA device wrote last is the family-coming prompt's audio (the file plugin pads to its period).
  const written = await readFile(raw);
  const pcm = pcmOf(await readFile(path.join(promptsDir, promptFile("zh-CN", "family_coming"))));
  assert.ok(written.length >= pcm.length, `${written.length} bytes written for ${pcm.length}`);
  assert.ok(written.subarray(0, pcm.length).equals(pcm), "the prompt's samples, byte for byte");
});

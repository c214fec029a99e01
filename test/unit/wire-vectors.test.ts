// The published wire test vectors (protocol/test-vectors.json, specified in docs/wire-protocol.md):
// (a) this implementation reproduces every one byte for byte, (b) an independent Python implementation written
// from the specification (test/bench/anxin_wire.py) agrees on every one, (c) the receiver's verifiers (the
// relay's for events and state, the hub's for acks and commands) accept each as sent and refuse it with one
// byte of its signature changed, and (d) a relay → hub signature is good for its own hub and kind only.
//
// The vectors are generated here from the inputs below and compared with the committed file as text, so any
// change to the canonical form or the signature fails this test. After a deliberate change to the wire
// contract (a new protocol version), regenerate with: ANXIN_WRITE_VECTORS=1 node --import tsx --test test/unit/wire-vectors.test.ts
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Envelope } from "../../protocol/envelope.js";
import {
  ackSchema,
  commandSchema,
  relaySignedPart,
  signAck,
  signCommand,
  signState,
  stateSchema,
  verifyAck,
  verifyCommand,
  verifyState,
  type Ack,
  type HubCommand,
  type HubState,
} from "../../protocol/messages.js";
import { canonicalJson, signEnvelope } from "../../protocol/signing.js";
import { checkSignature, parseEnvelope } from "../../relay/src/ingest/verify-check.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const VECTORS_FILE = path.join(ROOT, "protocol/test-vectors.json");
const PY_SCRIPT = path.join(ROOT, "test/bench/anxin_wire.py");
const PYTHON = "/usr/bin/python3";

/** Key A: the bytes 0x00..0x1f. Key B: a key whose base64 uses `+` and `/` (standard alphabet, not base64url). */
const KEY_A = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex");
const KEY_B = Buffer.from(Array.from({ length: 32 }, (_, i) => (0xfb + i * 0x3d) & 0xff));

const HEAD = { v: 1, hub: "hub-0001", boot: 7 } as const;
const ID = (n: number) => `01JDX3Q4Z8K6M2N5P7R9T1V3W${"0123456789ABCDEFGHJKMNPQRSTVWXYZ"[n]}`;
const TS = 1764385012345;

type MessageKind = "event" | "state" | "ack" | "cmd";

interface Input {
  name: string;
  description: string;
  message: MessageKind;
  /** For a relay → hub message (ack, cmd): the topic it is published on; its hub is signed with it. */
  topic?: string;
  key: Buffer;
  value: Record<string, unknown>;
  /** The message as published, when it is not plain JSON.stringify of the signed message (given the sig). */
  wire?: (sig: string) => string;
}

const INPUTS: Input[] = [
  {
    name: "alarm_gas",
    description: "A gas alarm as the hub sends it (the worked example of docs/wire-protocol.md).",
    message: "event",
    key: KEY_A,
    value: {
      ...HEAD, seq: 42, id: ID(0), ts: TS, kind: "alarm", type: "gas", severity: "critical",
      device: "kitchen-gas", room: "kitchen",
      data: { value: 23, unit: "%LEL", setpoint: 20, trigger: "device alarm output", model: "greystone-cmd5b4" },
      actions: [
        { action: "valve_close", target: "gas-valve", detail: "commanded; verification follows" },
        { action: "siren_on", ok: true },
      ],
    },
  },
  {
    name: "heartbeat",
    description: "The heartbeat: kind and type `heartbeat`, severity `info`, no device or room; journalRows may be null.",
    message: "event",
    key: KEY_A,
    value: { ...HEAD, seq: 43, id: ID(1), ts: TS + 60000, kind: "heartbeat", type: "heartbeat", severity: "info", data: { uptimeS: 3600, journalRows: 12 } },
  },
  {
    name: "heartbeat_null",
    description: "A heartbeat whose journal count is unknown: a null member is kept and signed (`\"journalRows\":null`).",
    message: "event",
    key: KEY_A,
    value: { ...HEAD, seq: 44, id: ID(2), ts: TS + 120000, kind: "heartbeat", type: "heartbeat", severity: "info", data: { uptimeS: 3660, journalRows: null } },
  },
  {
    name: "heartbeat_absent",
    description: "The same heartbeat with journalRows absent: a different canonical form and signature from the null one.",
    message: "event",
    key: KEY_A,
    value: { ...HEAD, seq: 44, id: ID(2), ts: TS + 120000, kind: "heartbeat", type: "heartbeat", severity: "info", data: { uptimeS: 3660 } },
  },
  {
    name: "nested_data_and_arrays",
    description: "Keys sorted at every depth, inside arrays too; arrays keep their order; empty object and array; booleans and null in arrays.",
    message: "event",
    key: KEY_A,
    value: {
      ...HEAD, seq: 45, id: ID(3), ts: TS, kind: "device", type: "unsupported", severity: "warning", device: "zb-a1b2c3",
      data: {
        z: { y: { x: { b: 2, a: 1 } } },
        list: [3, 1, 2, { k: [], j: {} }, [true, false, null], "s"],
        empty: {},
        none: [],
        a: { c: [{ d: 1, b: 2 }, { b: 3, a: 4 }] },
      },
    },
  },
  {
    name: "unicode_text",
    description: "Non-ASCII is not escaped: written as its UTF-8 bytes (Chinese text, an emoji outside the BMP, Latin accents).",
    message: "event",
    key: KEY_A,
    value: {
      ...HEAD, seq: 46, id: ID(4), ts: TS, kind: "alarm", type: "fall", severity: "critical", device: "radar-1", room: "卧室",
      data: { note: "张奶奶在卧室摔倒了 😀", reportedAt: TS - 30000, confirmedAfterMs: 30000, presence: true, city: "Zürich" },
    },
  },
  {
    name: "key_order_utf16",
    description: "Keys are ordered by UTF-16 code units, not code points: \"😀\" (U+1F600, D83D DE00) sorts before \"ｱ\" (U+FF71); digits are keys like any other (\"10\" before \"9\").",
    message: "event",
    key: KEY_A,
    value: {
      ...HEAD, seq: 47, id: ID(5), ts: TS, kind: "reading", type: "detector_level", severity: "info", device: "gas-1",
      data: { "ｱ": 1, "😀": 2, a: 3, Z: 4, "10": 5, "9": 6, "é": 7, "": 8, "a b": 9, _: 10 },
    },
  },
  {
    name: "string_escapes",
    description: "Escapes: \\\" \\\\ \\b \\f \\n \\r \\t, other U+0000..U+001F as \\u00xx (lower-case hex), a lone surrogate as \\udxxx; DEL, '/', U+2028 and U+2029 are written as they are.",
    message: "event",
    key: KEY_A,
    value: {
      ...HEAD, seq: 48, id: ID(6), ts: TS, kind: "audit", type: "valve_reopen", severity: "warning",
      data: {
        quote: 'say "hi"', backslash: "C:\\temp\\", named: "\b\f\n\r\t", control: "\u0000\u0001\u001f", del: "\u007f",
        slash: "a/b", separators: "\u2028\u2029", lone: "x\ud800y", "k\"\\\n": "key escapes too",
      },
    },
  },
  {
    name: "integers",
    description: "Integers in plain decimal: zero, negative, 2^53-1, and 10^20 (the largest written without an exponent is below 10^21).",
    message: "event",
    key: KEY_B,
    value: {
      ...HEAD, seq: 49, id: ID(7), ts: TS, kind: "reading", type: "detector_level", severity: "info", device: "gas-1",
      data: { zero: 0, one: 1, neg: -1, negBig: -123456789, maxSafe: 9007199254740991, e20: 1e20 },
    },
  },
  {
    name: "floats",
    description: "Numbers as ECMAScript Number::toString: shortest round-trip digits, exponent form from 1e21 up and below 1e-6 (`e+21`, `e-7`).",
    message: "event",
    key: KEY_B,
    value: {
      ...HEAD, seq: 50, id: ID(8), ts: TS, kind: "reading", type: "breathing_rate", severity: "info", device: "radar-1",
      data: {
        tenth: 0.1, sum: 0.1 + 0.2, lel: 23.5, neg: -2.5, e21: 1e21, big: 1.2345678901234568e20, huge: 1.5e300,
        micro: 0.000001, small: 1e-7, tiny: 1.23e-18, min: 5e-324, negSmall: -4.5e-10, third: 1 / 3,
      },
    },
  },
  {
    name: "wire_not_canonical",
    description: "A receiver canonicalises the parsed value, not the bytes received: whitespace, key order, `1.0`, `1E2`, `-0`, `2.50e1`, `\\u00e9`, `\\/` and a surrogate pair escape all come out canonical.",
    message: "event",
    key: KEY_A,
    value: {
      ...HEAD, seq: 51, id: ID(9), ts: TS, kind: "reading", type: "detector_level", severity: "info", device: "gas-1",
      data: { one: 1, hundred: 100, negZero: 0, f: 25, text: "café/😀" },
    },
    wire: (sig) =>
      `{ "sig" : "${sig}",\n  "data": {"text": "caf\\u00e9\\/\\ud83d\\ude00", "f": 2.50e1, "negZero": -0, "hundred": 1E2, "one": 1.0},\n` +
      `  "device":"gas-1", "severity":"info", "type":"detector_level", "kind":"reading", "ts":${TS}, "id":"${ID(9)}",\n` +
      `  "seq":51, "boot":7, "hub":"hub-0001", "v":1 }`,
  },
  {
    name: "historical_resend",
    description: "A resend carries `historical: true`, which is not signed: same canonical form and signature as `alarm_gas`.",
    message: "event",
    key: KEY_A,
    value: {
      ...HEAD, seq: 42, id: ID(0), ts: TS, kind: "alarm", type: "gas", severity: "critical",
      device: "kitchen-gas", room: "kitchen",
      data: { value: 23, unit: "%LEL", setpoint: 20, trigger: "device alarm output", model: "greystone-cmd5b4" },
      actions: [
        { action: "valve_close", target: "gas-valve", detail: "commanded; verification follows" },
        { action: "siren_on", ok: true },
      ],
      historical: true,
    },
  },
  {
    name: "sos_minimal",
    description: "Only the required fields and `data`, signed with key B (standard base64 with `+` and `/`).",
    message: "event",
    key: KEY_B,
    value: { ...HEAD, boot: 0, seq: 1, id: ID(10), ts: 0, kind: "alarm", type: "sos", severity: "critical", data: { action: "single" } },
  },
  {
    name: "planned_stop",
    description: "The signed planned stop on anxin/v1/{hub}/state: every field but `sig`, same canonical form and key as events.",
    message: "state",
    key: KEY_A,
    value: { online: false, boot: 7, ts: TS, planned: true, reason: "stopping", expectBackWithinS: 300 },
  },
  {
    name: "ack",
    description: "The relay's ack on anxin/v1/hub-0001/ack, signed with the hub's key over the ack without `sig` plus `t: \"ack\"` and the topic's hub.",
    message: "ack",
    topic: "anxin/v1/hub-0001/ack",
    key: KEY_A,
    value: { ids: [ID(0), ID(1), ID(2)], now: TS + 61_000 },
  },
  {
    name: "cmd_siren_test",
    description: "A siren test the relay asks for on anxin/v1/hub-0001/cmd: `ts` is the relay's clock; signed over the command without `sig` plus `t: \"cmd\"` and the topic's hub.",
    message: "cmd",
    topic: "anxin/v1/hub-0001/cmd",
    key: KEY_A,
    value: { cmd: "siren_test", id: "st-0001", seconds: 3, ts: TS + 90_000 },
  },
  {
    name: "cmd_ping",
    description: "A ping for another hub (its topic names it), signed with that hub's key B.",
    message: "cmd",
    topic: "anxin/v1/hub-0002/cmd",
    key: KEY_B,
    value: { cmd: "ping", id: "ping-0001", ts: TS + 95_000 },
  },
  {
    name: "cmd_retire_device",
    description: "The relay asks hub-0001 to retire its device `radar-bed` (the elder withdrew consent): `device` is the hub's device id, `reason` always `consent_withdrawn`; signed like every command.",
    message: "cmd",
    topic: "anxin/v1/hub-0001/cmd",
    key: KEY_A,
    value: { cmd: "retire_device", id: "retire-0001", device: "radar-bed", reason: "consent_withdrawn", ts: TS + 100_000 },
  },
  {
    name: "cmd_announce",
    description: "The relay asks hub-0001 to tell the elder that family is on the way (a contact acknowledged the SOS incident `01JDX3Q4Z8K6M2N5P7R9T1V3WA`): a fixed announcement id, never text; signed like every command.",
    message: "cmd",
    topic: "anxin/v1/hub-0001/cmd",
    key: KEY_A,
    value: { cmd: "announce", id: "announce-0001", announcement: "family_coming", alarm: "sos", incident: "01JDX3Q4Z8K6M2N5P7R9T1V3WA", ts: TS + 105_000 },
  },
];

interface Vector {
  name: string;
  description: string;
  message: MessageKind;
  topic?: string;
  keyBase64: string;
  wire: string;
  envelope: Record<string, unknown>;
  canonical: string;
  canonicalHex: string;
  sig: string;
}

/** `anxin/v1/{hub}/ack` → hub. */
const topicHub = (topic: string | undefined) => (topic ?? "").split("/")[2] as string;

/** What is signed: an event without sig and historical, a state without sig, an ack or command as relaySignedPart says. */
function unsignedPart(message: MessageKind, m: Record<string, unknown>, topic?: string): Record<string, unknown> {
  if (message === "ack" || message === "cmd") return relaySignedPart(message, topicHub(topic), m);
  const { sig: _s, ...rest } = m;
  if (message === "event") delete rest.historical;
  return rest;
}

function sign(i: Input): Record<string, unknown> {
  switch (i.message) {
    case "event":
      return signEnvelope(i.value as unknown as Envelope, i.key);
    case "state":
      return signState(i.value as unknown as HubState, i.key);
    case "ack":
      return signAck(topicHub(i.topic), i.value as unknown as Ack, i.key);
    case "cmd":
      return signCommand(topicHub(i.topic), i.value as unknown as HubCommand, i.key);
  }
}

function generate(): Vector[] {
  return INPUTS.map((i) => {
    const signed = sign(i);
    const sig = signed.sig as string;
    const wire = i.wire ? i.wire(sig) : JSON.stringify(signed);
    const canonical = canonicalJson(unsignedPart(i.message, signed, i.topic));
    return {
      name: i.name,
      description: i.description,
      message: i.message,
      topic: i.topic,
      keyBase64: i.key.toString("base64"),
      wire,
      envelope: signed,
      canonical,
      canonicalHex: Buffer.from(canonical, "utf8").toString("hex"),
      sig,
    };
  });
}

const render = (vs: Vector[]) =>
  `${JSON.stringify({ about: "Anxin wire contract v1 signature test vectors; see docs/wire-protocol.md (Canonical form and signature; Acks and commands). Generated and checked by test/unit/wire-vectors.test.ts.", vectors: vs }, null, 2)}\n`;

if (process.env.ANXIN_WRITE_VECTORS === "1") writeFileSync(VECTORS_FILE, render(generate()));

const committed = JSON.parse(readFileSync(VECTORS_FILE, "utf8")) as { vectors: Vector[] };

test("vectors: the committed file is exactly what this implementation produces", () => {
  assert.equal(readFileSync(VECTORS_FILE, "utf8"), render(generate()));
  assert.ok(committed.vectors.length >= 10);
});

test("vectors: canonical, its bytes and the HMAC agree with each other, from the wire text", () => {
  for (const v of committed.vectors) {
    const key = Buffer.from(v.keyBase64, "base64");
    assert.equal(key.length, 32, v.name);
    const parsed = JSON.parse(v.wire) as Record<string, unknown>;
    assert.equal(canonicalJson(unsignedPart(v.message, parsed, v.topic)), v.canonical, v.name);
    assert.equal(canonicalJson(parsed), canonicalJson(v.envelope), v.name);
    assert.equal(Buffer.from(v.canonical, "utf8").toString("hex"), v.canonicalHex, v.name);
    assert.equal(createHmac("sha256", key).update(Buffer.from(v.canonicalHex, "hex")).digest("hex"), v.sig, v.name);
    assert.equal(parsed.sig, v.sig, v.name);
  }
  const by = new Map(committed.vectors.map((v) => [v.name, v]));
  assert.equal(by.get("historical_resend")?.sig, by.get("alarm_gas")?.sig);
  assert.notEqual(by.get("heartbeat_null")?.sig, by.get("heartbeat_absent")?.sig);
  for (const name of ["ack", "cmd_siren_test", "cmd_ping", "cmd_retire_device", "cmd_announce"]) {
    const v = by.get(name)!;
    assert.ok(v.topic?.startsWith("anxin/v1/") && v.topic.endsWith(`/${v.message}`), name);
    assert.match(v.canonical, new RegExp(`"hub":"${topicHub(v.topic)}"`), name);
    assert.match(v.canonical, new RegExp(`[{,]"t":"${v.message}"[,}]`), name);
  }
});

test("vectors: an independent Python implementation agrees on every vector", (t) => {
  if (!existsSync(PYTHON)) {
    t.skip(`${PYTHON} is missing (install Debian's python3 to run the second implementation)`);
    return;
  }
  const r = spawnSync(PYTHON, [PY_SCRIPT, VECTORS_FILE], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" } });
  assert.equal(r.status, 0, `python failed:\n${r.stdout}\n${r.stderr}`);
  for (const v of committed.vectors) assert.match(r.stdout, new RegExp(`^ok +${v.name} `, "m"), v.name);
});

/** One byte of the signature changed (its first byte XOR 1), still 64 lower-case hex digits. */
function tamper(wire: string, sig: string): string {
  const bad = ((parseInt(sig.slice(0, 2), 16) ^ 1).toString(16).padStart(2, "0")) + sig.slice(2);
  return wire.replace(sig, bad);
}

test("vectors: the receivers' verifiers accept each as sent and refuse one changed byte of its sig", () => {
  for (const v of committed.vectors) {
    const key = Buffer.from(v.keyBase64, "base64");
    if (v.message === "ack" || v.message === "cmd") {
      // The hub's side (gateway/src/uplink): the schema, then the signature on the message as received.
      const hub = topicHub(v.topic);
      const [schema, verify] = v.message === "ack" ? [ackSchema, verifyAck] : [commandSchema, verifyCommand];
      const wire = JSON.parse(v.wire) as Record<string, unknown>;
      assert.ok(schema.safeParse(wire).success, v.name);
      assert.equal(verify(hub, wire, key), true, v.name);
      const bad = JSON.parse(tamper(v.wire, v.sig)) as Record<string, unknown>;
      assert.ok(schema.safeParse(bad).success, v.name);
      assert.equal(verify(hub, bad, key), false, v.name);
    } else if (v.message === "event") {
      const hub = (v.envelope as { hub: string }).hub;
      const ok = parseEnvelope(hub, v.wire);
      assert.ok(ok.ok, `${v.name}: ${JSON.stringify(ok)}`);
      assert.equal(checkSignature(ok.env, key), null, v.name);
      const bad = parseEnvelope(hub, tamper(v.wire, v.sig));
      assert.ok(bad.ok, v.name);
      assert.equal(checkSignature(bad.env, key)?.reason, "bad_signature", v.name);
    } else {
      const ok = stateSchema.safeParse(JSON.parse(v.wire));
      assert.ok(ok.success, v.name);
      assert.equal(verifyState(ok.data, key), true, v.name);
      const bad = stateSchema.safeParse(JSON.parse(tamper(v.wire, v.sig)));
      assert.ok(bad.success, v.name);
      assert.equal(verifyState(bad.data, key), false, v.name);
    }
  }
});

test("vectors: a relay → hub signature is good for its own hub, key and kind only; no signature crosses kinds", () => {
  const by = new Map(committed.vectors.map((v) => [v.name, v]));
  const ack = by.get("ack")!;
  const cmd = by.get("cmd_siren_test")!;
  const keyA = Buffer.from(ack.keyBase64, "base64");
  const ackWire = JSON.parse(ack.wire) as Record<string, unknown>;
  const cmdWire = JSON.parse(cmd.wire) as Record<string, unknown>;
  assert.equal(verifyAck("hub-0001", ackWire, keyA), true);
  assert.equal(verifyAck("hub-0002", ackWire, keyA), false, "another hub's topic");
  assert.equal(verifyAck("hub-0001", ackWire, Buffer.from(by.get("cmd_ping")!.keyBase64, "base64")), false, "another key");
  assert.equal(verifyAck("hub-0001", { ...ackWire, now: (ackWire.now as number) + 1 }, keyA), false, "its clock changed");
  assert.equal(verifyAck("hub-0001", { ...ackWire, ids: (ackWire.ids as string[]).slice(1) }, keyA), false, "fewer ids");
  assert.equal(verifyAck("hub-0001", { ids: ackWire.ids, now: ackWire.now }, keyA), false, "unsigned");
  // The same key signs the hub's events and state, and the relay's acks and commands: `t` keeps them apart.
  assert.equal(verifyCommand("hub-0001", { ...cmdWire, sig: ackWire.sig }, keyA), false);
  assert.equal(verifyAck("hub-0001", { ...ackWire, sig: cmdWire.sig }, keyA), false);
  const heartbeat = JSON.parse(by.get("heartbeat")!.wire) as Record<string, unknown>;
  assert.equal(verifyAck("hub-0001", { ...ackWire, sig: heartbeat.sig }, keyA), false);
  assert.equal(verifyState(JSON.parse(by.get("planned_stop")!.wire) as HubState, keyA), true);
  assert.equal(verifyState({ ...(JSON.parse(by.get("planned_stop")!.wire) as HubState), sig: ackWire.sig as string }, keyA), false);
  // A retirement names one device of one hub: the same signature does not retire another device.
  const retire = JSON.parse(by.get("cmd_retire_device")!.wire) as Record<string, unknown>;
  assert.equal(verifyCommand("hub-0001", retire, keyA), true);
  assert.equal(verifyCommand("hub-0001", { ...retire, device: "gas-1" }, keyA), false, "another device");
  assert.equal(verifyCommand("hub-0002", retire, keyA), false, "another hub's topic");
  assert.equal(commandSchema.safeParse({ ...retire, reason: "operator_request" }).success, false, "consent withdrawn is the only reason");
  assert.equal(commandSchema.safeParse({ ...retire, device: "" }).success, false, "a device id");
  assert.equal(commandSchema.safeParse({ ...retire, device: "d".repeat(65) }).success, false, "at most 64 characters");
  assert.equal(commandSchema.safeParse({ cmd: "retire_device", id: "x", ts: 1, reason: "consent_withdrawn" }).success, false, "no device, no command");
  // A command's default (seconds: 3) is not what was signed when the relay left it out: checked on the wire form.
  const implicit = signCommand("hub-0001", { cmd: "siren_test", id: "x", ts: 1 } as HubCommand, keyA);
  assert.equal(verifyCommand("hub-0001", implicit, keyA), true);
  assert.equal(verifyCommand("hub-0001", commandSchema.parse(implicit), keyA), false);
});

test("canonical form: non-JSON values are written as JSON.stringify sends them", () => {
  // Sign what is sent: an undefined array element goes out as null, an undefined member not at all.
  const value = { a: [1, undefined, 2], b: undefined, c: () => 1 };
  assert.equal(canonicalJson(value), JSON.stringify(JSON.parse(JSON.stringify(value)), ["a"]));
  assert.equal(canonicalJson(value), '{"a":[1,null,2]}');
});

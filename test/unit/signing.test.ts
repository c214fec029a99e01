// The signature both daemons compute: a fixed vector pins the canonical form, so a change to how it is
// built (it was rewritten for speed) can never silently split hubs and relays running different versions.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Envelope } from "../../protocol/envelope.js";
import { canonicalJson, signEnvelope, verifyEnvelope } from "../../protocol/signing.js";

const KEY = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex");
const EVENT = {
  v: 1,
  hub: "hub-7",
  boot: 2,
  seq: 41,
  id: "01JD0000000000000000000000",
  ts: 1764390000000,
  kind: "alarm",
  type: "gas",
  severity: "critical",
  device: "gas-1",
  room: "厨房",
  data: { lel: 23.5, b: [1, { z: 1, a: null }] },
  actions: [{ target: "valve-1", action: "valve_closed", ok: true }],
} as unknown as Envelope;

test("canonical form: keys sorted at every depth, arrays in order, undefined left out", () => {
  assert.equal(
    canonicalJson(EVENT),
    '{"actions":[{"action":"valve_closed","ok":true,"target":"valve-1"}],"boot":2,"data":{"b":[1,{"a":null,"z":1}],"lel":23.5},"device":"gas-1","hub":"hub-7","id":"01JD0000000000000000000000","kind":"alarm","room":"厨房","seq":41,"severity":"critical","ts":1764390000000,"type":"gas","v":1}',
  );
  assert.equal(canonicalJson({ b: undefined, a: [3, 2, 1], "10": 1, "9": 2 }), '{"10":1,"9":2,"a":[3,2,1]}');
  assert.equal(canonicalJson({ s: 'q"\n' }), '{"s":"q\\"\\n"}');
  assert.equal(canonicalJson([]), "[]");
  assert.equal(canonicalJson({}), "{}");
});

test("signature: fixed vector, independent of key order, historical and sig not signed", () => {
  const signed = signEnvelope(EVENT, KEY);
  assert.equal(signed.sig, "7408bac5d7effd53e6b152705ed06357e4147903a753d2a1ffb260617d0f855d");
  const reordered = Object.fromEntries(Object.entries(signed).reverse()) as Envelope;
  assert.equal(verifyEnvelope(reordered, KEY), true);
  assert.equal(verifyEnvelope({ ...signed, historical: true }, KEY), true);
});

test("signature: any change to a signed field, a wrong key or no signature fails", () => {
  const signed = signEnvelope(EVENT, KEY);
  assert.equal(verifyEnvelope({ ...signed, seq: 42 }, KEY), false);
  assert.equal(verifyEnvelope({ ...signed, data: { ...signed.data, lel: 2.35 } }, KEY), false);
  assert.equal(verifyEnvelope({ ...signed, room: undefined }, KEY), false);
  assert.equal(verifyEnvelope(signed, Buffer.alloc(32, 1)), false);
  assert.equal(verifyEnvelope({ ...signed, sig: undefined }, KEY), false);
  assert.equal(verifyEnvelope({ ...signed, sig: "00" }, KEY), false);
});

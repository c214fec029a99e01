// What an SMS from the hub may carry (gateway/src/cellular/gsm7.ts): the GSM-7 default alphabet, one SMS
// long, none of the characters that collide with text entry's control bytes; encoded as septet values.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { encodeGsm7Text, gsm7Problem, Gsm7Error } from "../../gateway/src/cellular/gsm7.js";
import { encodeCompactAlarm } from "../../protocol/sms-compact.js";

test("plain text, the alphabet's own letters and exactly 160 characters pass", () => {
  for (const t of ["AX1 hub-1 x", "Grüße Ñ £5 @home", "ΔΦΓΛΩΠΨΣΘ ÆæßÉ", "a".repeat(160), "line\nnext"]) assert.equal(gsm7Problem(t), null, t);
  const alarm = encodeCompactAlarm({ v: 1, hub: "hub-1", boot: 1, seq: 1, id: "01JF3Z8Y7XWV6T5S4R3Q2P1N0M", ts: 1, kind: "alarm", type: "vital_absent", severity: "critical" }, randomBytes(32));
  assert.equal(gsm7Problem(alarm), null);
});

test("outside the alphabet, extension characters, control collisions, too long, empty", () => {
  const reason = (t: string) => gsm7Problem(t)?.reason ?? null;
  assert.equal(reason("跌倒"), "outside_alphabet");
  assert.equal(reason("café"), null, "é is in the table");
  assert.equal(reason("naïve"), "outside_alphabet");
  assert.equal(reason("😀"), "outside_alphabet");
  assert.equal(reason("`"), "outside_alphabet");
  for (const c of ["{", "}", "[", "]", "~", "\\", "^", "|", "€"]) assert.equal(reason(`a${c}`), "control_collision", c);
  assert.equal(reason("Ξ"), "control_collision", "0x1A would end the text");
  assert.equal(reason("a\rb"), "control_collision");
  assert.equal(reason("\u001b"), "outside_alphabet", "the escape itself is no character");
  assert.equal(reason("a".repeat(161)), "too_long");
  assert.equal(reason(""), "empty");
  assert.match(gsm7Problem("跌")!.message, /U\+8DCC/);
});

test("encoding gives the septet values, not the ASCII bytes", () => {
  assert.deepEqual([...encodeGsm7Text("A_@$a")], [0x41, 0x11, 0x00, 0x02, 0x61]);
  assert.deepEqual([...encodeGsm7Text("§¿à")], [0x5f, 0x60, 0x7f]);
  assert.throws(() => encodeGsm7Text("€"), Gsm7Error);
});

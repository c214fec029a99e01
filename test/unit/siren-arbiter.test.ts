// The siren arbitration on its own: which mode wins when rules want different things, and that a siren is
// commanded only when the wanted mode changes (a rule's every step must not re-trigger or silence it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../lib/daemon/logger.js";
import { Actuators } from "../../gateway/src/actions/actuators.js";
import { SirenArbiter, sirenModeFor } from "../../gateway/src/actions/siren-arbiter.js";
import type { CommandOptions, HubCommand, HubDevice, HubRole } from "../../gateway/src/devices/hub-device.js";

const log = createLogger({ name: "test", level: "silent" });

/** A device that records the commands it is sent. */
function device(id: string, roles: HubRole[], commands: HubCommand[], sent: string[]): HubDevice {
  return {
    id, transport: "zigbee", model: "test", roles,
    has: (r) => roles.includes(r),
    canDo: (c) => commands.includes(c),
    command: (c: HubCommand, _p, o?: CommandOptions) => {
      sent.push(`${id} ${c}${o?.mode ? ` ${o.mode}` : ""}`);
      return Promise.resolve();
    },
    read: () => Promise.reject(new Error("not read in this test")),
  };
}

test("fire wins over emergency; nothing wanted is silence", () => {
  assert.equal(sirenModeFor({ fire: false, emergency: false }), null);
  assert.equal(sirenModeFor({ fire: false, emergency: true }), "emergency");
  assert.equal(sirenModeFor({ fire: true, emergency: false }), "fire");
  assert.equal(sirenModeFor({ fire: true, emergency: true }), "fire");
});

test("sirens are commanded only when the wanted mode changes", () => {
  const sent: string[] = [];
  const a = new Actuators([device("s1", ["siren"], ["siren_on", "siren_off"], sent), device("s2", ["siren"], ["siren_on", "siren_off"], sent)], log);
  const arb = new SirenArbiter(a);
  arb.settle({ fire: false, emergency: false });
  assert.deepEqual(sent, [], "silent at start: nothing to say");
  arb.settle({ fire: false, emergency: true });
  arb.settle({ fire: false, emergency: true });
  assert.deepEqual(sent, ["s1 siren_on emergency", "s2 siren_on emergency"]);
  assert.equal(arb.mode, "emergency");
  // Smoke joins a gas alarm: fire mode, once.
  arb.settle({ fire: true, emergency: true });
  arb.settle({ fire: true, emergency: false });
  assert.deepEqual(sent.slice(2), ["s1 siren_on fire", "s2 siren_on fire"]);
  // Smoke clears while gas still wants the siren: back to emergency, not silence.
  arb.settle({ fire: false, emergency: true });
  assert.deepEqual(sent.slice(4), ["s1 siren_on emergency", "s2 siren_on emergency"]);
  arb.settle({ fire: false, emergency: false });
  assert.deepEqual(sent.slice(6), ["s1 siren_off", "s2 siren_off"]);
  assert.equal(arb.mode, null);
});

test("a siren that joins during an alarm sounds at once in the current mode; otherwise it is left alone", () => {
  const sent: string[] = [];
  const a = new Actuators([], log);
  const arb = new SirenArbiter(a);
  const late = device("late", ["siren"], ["siren_on", "siren_off"], sent);
  a.add(late);
  arb.joined(late);
  assert.deepEqual(sent, [], "no alarm: a new siren stays quiet");
  arb.settle({ fire: true, emergency: false });
  sent.length = 0;
  const later = device("later", ["siren"], ["siren_on", "siren_off"], sent);
  a.add(later);
  arb.joined(later);
  const valve = device("valve", ["valve"], ["close", "open"], sent);
  a.add(valve);
  arb.joined(valve);
  assert.deepEqual(sent, ["later siren_on fire"], "only the siren, in fire mode");
});
